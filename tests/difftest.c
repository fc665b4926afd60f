/*
 * difftest: the differential oracle. Random instruction sequences run on kvm
 * (the real CPU, for code it runs natively) and on tcg (the translator);
 * registers, the flags the SDM defines and the memory they touched must match.
 *
 *   tests/difftest --seed S --count N [--mode long64|prot32|all] [--ring 0|3]
 *                  [--template NAME[,NAME...]] [--list] [-v]
 *
 * Uses only the public API. How a batch runs: each sequence gets a data page
 * (its memory operands and its stack) and a control slot. The guest code is
 *
 *     load stub 0: rsp -> slot 0's initial rflags; popf; every register from slot 0
 *     sequence 0
 *     save stub 0: every register to slot 0; rsp -> slot 0's rflags; pushf
 *     load stub 1 ... sequence 1 ... save stub 1 ...
 *     out DT_PORT, al
 *
 * so one vx_vcpu_run() (one exit, ~57 us from ring 3 on kvm_pvm) covers a
 * whole batch, and a difference is still pinned to one sequence: its slot
 * and its page. The stubs never write the data pages. A failing sequence is
 * run again alone in the same slot, then minimised: instances are dropped
 * while it still fails and the generator's model (dt_validate) still calls it
 * valid. Every 32 batches, and for every single run, all memory below the
 * tables is compared too (stray stores).
 *
 * Before the random sequences, the run checks what it relies on and what
 * this kvm can be trusted with, and prints what it finds:
 *   - api_checks(): rip after an `out` exit, and code rewritten by the host,
 *     on the second machine as on kvm;
 *   - detect_quirks(): kvm_pvm runs guest ring 3 at the CPU's ring 3, so its
 *     pushf shows the host's IF/IOPL and `mov r, ds` the CPU's selector in
 *     64-bit mode (those are then not compared / not generated); and it runs
 *     32-bit ring-3 code and all ring-0 code in KVM's instruction emulator
 *     (found by lzcnt), whose known mistakes are then left out;
 *   - probe_kvm(): templates kvm cannot run at all here are skipped.
 *
 * Exit status: 0 all matched, 1 a mismatch, 77 skipped (no /dev/kvm or no
 * tcg), 99 the harness itself failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvx/vx.h>

#include "difftest_gen.h"
#include "dt_machine.h"

/* ---- options ---------------------------------------------------------------- */

static struct {
    uint64_t seed, count, first;
    int modes;            /* bit per dt_mode */
    int ring;
    const char *templates;
    int list, verbose, self, nomask, keep_going;
    int twice;            /* tcg against tcg's own translated blocks (no kvm needed) */
    int inject;           /* 0, 1 adc->add, 2 flip a register after xadd */
    int fresh;            /* a new second machine for every run (works around stale code) */
    int batch, maxlen;
    int slot;             /* the first batch slot to use (reproducing a sequence in place) */
} opt = { .seed = 1, .count = 10000, .modes = 3, .ring = 3, .batch = DT_MAX_SLOTS,
          .maxlen = 12 };

static const char *mode_name[DM_COUNT] = { "long64", "prot32" };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the two machines ---------------------------------------------------- */

struct side {
    const char *name;
    vx_machine *m;
    vx_vcpu *v;
    uint8_t *ram;
    int mode;             /* the mode its vCPU is set up for, or -1 */
    vx_accel accel;
};

static struct side sides[2];

static void side_open(struct side *s, vx_accel accel, const char *name)
{
    s->accel = accel;
    s->m = dt_machine(accel, name, DT_RAM_SIZE, &s->ram);
    s->v = vx_machine_vcpu(s->m, 0);
    s->name = name;
    s->mode = -1;
}

static void side_mode(struct side *s, int mode)
{
    if (s->mode == mode)
        return;
    int err = vx_vcpu_set_mode(s->v, mode == DM_LONG64 ? VX_MODE_LONG64 : VX_MODE_PROT32,
                               DT_TABLES_GPA);
    if (err)
        die("%s: vx_vcpu_set_mode: %s: %s", s->name, vx_strerror(err), vx_last_error());
    vx_x86_sregs sr;
    if ((err = vx_vcpu_get_sregs(s->v, &sr)))
        die("%s: vx_vcpu_get_sregs: %s: %s", s->name, vx_strerror(err), vx_last_error());
    vx_x86_segment data = sr.ds;
    if (opt.ring == 3) {
        sr.cs.selector = (mode == DM_LONG64 ? VX_X86_SEL_USER_CODE64 : VX_X86_SEL_USER_CODE32) | 3;
        sr.cs.dpl = 3;
        data = sr.ss;
        data.selector = VX_X86_SEL_USER_DATA | 3;
        data.dpl = 3;
        sr.ss = sr.ds = sr.es = data;
    }
    sr.fs = sr.gs = data;
    sr.fs.base = mode == DM_LONG64 ? DT_FS_BASE64 : DT_FS_BASE32;
    sr.gs.base = mode == DM_LONG64 ? DT_GS_BASE64 : DT_GS_BASE32;
    if ((err = vx_vcpu_set_sregs(s->v, &sr)))
        die("%s: vx_vcpu_set_sregs: %s: %s", s->name, vx_strerror(err), vx_last_error());
    s->mode = mode;
}

/* ---- batches ------------------------------------------------------------- */

static int slots_for(int mode)
{
    return mode == DM_LONG64 ? DT_SLOTS_LONG64 : DT_SLOTS_PROT32;
}

static uint64_t page_of(int slot)
{
    return DT_PAGE_LO + (uint64_t)slot * 0x1000;
}

static uint64_t slot_of(int slot)
{
    return DT_CTRL_GPA + (uint64_t)slot * DT_SLOT_SIZE;
}

struct batch {
    int n, mode;
    int slot0;                       /* the slot of the first sequence */
    struct seq *seq[DT_MAX_SLOTS];
    uint64_t index[DT_MAX_SLOTS];    /* the sequence numbers, for reports */
    uint8_t code[2][DT_CODE_MAX];    /* [1]: the second machine's (--inject-bug) */
    size_t codelen;
    uint64_t seq_at[DT_MAX_SLOTS];   /* where each sequence's instances start */
    uint64_t seq_end[DT_MAX_SLOTS];
    uint64_t out_end;                /* rip after the final out */
    uint8_t ctrl[DT_MAX_SLOTS * DT_SLOT_SIZE];
    uint8_t pages[DT_MAX_SLOTS][4096];
    uint8_t fpu[DT_MAX_SLOTS][DT_FPU_SLOT];   /* 64-bit mode: initial image, zeroed save area */
};

static void put32(uint8_t *p, size_t *n, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[(*n)++] = (uint8_t)(v >> (8 * i));
}

static uint64_t fpu_of(int slot)
{
    return DT_FPU_GPA + (uint64_t)slot * DT_FPU_SLOT;
}

/* fxrstor64 / fxsave64 [abs32] (64-bit mode: there the oracle is the CPU) */
static size_t stub_fx(uint8_t *p, int reg, uint64_t addr)
{
    size_t n = 0;
    p[n++] = 0x48;
    p[n++] = 0x0f;
    p[n++] = 0xae;
    p[n++] = (uint8_t)(0x04 | reg << 3);
    p[n++] = 0x25;
    put32(p, &n, (uint32_t)addr);
    return n;
}

static size_t stub_load(uint8_t *p, int mode, uint64_t slot, uint64_t fpu)
{
    size_t n = 0;
    if (mode == DM_LONG64)
        n += stub_fx(p, 1, fpu);
    p[n++] = 0xbc;                                /* mov esp, &init.rflags */
    put32(p, &n, (uint32_t)(slot + DT_SLOT_INIT + 128));
    p[n++] = 0x9d;                                /* popf */
    int nr = mode == DM_LONG64 ? 16 : 8;
    for (int r = 0; r < nr; r++) {                /* mov reg, [init + 8 * reg] */
        if (mode == DM_LONG64) {
            p[n++] = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
            p[n++] = 0x8b;
            p[n++] = (uint8_t)(0x04 | (r & 7) << 3);
            p[n++] = 0x25;
        } else {
            p[n++] = 0x8b;
            p[n++] = (uint8_t)(0x05 | (r & 7) << 3);
        }
        put32(p, &n, (uint32_t)(slot + DT_SLOT_INIT + 8 * r));
    }
    return n;
}

static size_t stub_save(uint8_t *p, int mode, uint64_t slot, uint64_t fpu)
{
    size_t n = 0;
    if (mode == DM_LONG64)
        n += stub_fx(p, 0, fpu + DT_FPU_SAVE);
    int nr = mode == DM_LONG64 ? 16 : 8;
    for (int r = 0; r < nr; r++) {                /* mov [save + 8 * reg], reg */
        if (mode == DM_LONG64) {
            p[n++] = (uint8_t)(0x48 | (r >= 8 ? 4 : 0));
            p[n++] = 0x89;
            p[n++] = (uint8_t)(0x04 | (r & 7) << 3);
            p[n++] = 0x25;
        } else {
            p[n++] = 0x89;
            p[n++] = (uint8_t)(0x05 | (r & 7) << 3);
        }
        put32(p, &n, (uint32_t)(slot + DT_SLOT_SAVE + 8 * r));
    }
    p[n++] = 0xbc;                                /* mov esp, &save.rflags + width */
    put32(p, &n, (uint32_t)(slot + DT_SLOT_SAVE + 128 + (mode == DM_LONG64 ? 8 : 4)));
    p[n++] = 0x9c;                                /* pushf */
    return n;
}

/* Lay out a batch: control slots, pages, code for both machines. */
static void batch_build(struct batch *bt)
{
    memset(bt->ctrl, 0, (size_t)bt->n * DT_SLOT_SIZE);
    size_t n = 0;
    for (int i = 0; i < bt->n; i++) {
        const struct seq *s = bt->seq[i];
        uint64_t pb = page_of(bt->slot0 + i), slot = slot_of(bt->slot0 + i);
        uint8_t *c = bt->ctrl + (size_t)i * DT_SLOT_SIZE;
        for (int r = 0; r < NGPR; r++) {
            uint64_t v = dt_value(&s->init[r], pb, bt->mode);
            memcpy(c + DT_SLOT_INIT + 8 * r, &v, 8);
        }
        uint64_t f = s->init_flags;
        memcpy(c + DT_SLOT_INIT + 128, &f, 8);
        dt_fill_page(s->seed, bt->pages[i]);
        memset(bt->fpu[i], 0, DT_FPU_SLOT);
        dt_fill_fpu(s->seed, bt->fpu[i]);

        size_t k = stub_load(bt->code[0] + n, bt->mode, slot, fpu_of(bt->slot0 + i));
        memcpy(bt->code[1] + n, bt->code[0] + n, k);
        n += k;
        bt->seq_at[i] = DT_CODE_GPA + n;
        for (int j = 0; j < s->n; j++) {
            const struct inst *in = &s->ins[j];
            dt_place(in, DT_CODE_GPA + n, pb, bt->mode, bt->code[0] + n);
            memcpy(bt->code[1] + n, bt->code[0] + n, in->len);
            if (opt.inject == 1 && in->bug_off >= 0)
                bt->code[1][n + (size_t)in->bug_off] ^= in->bug_xor;
            n += in->len;
        }
        bt->seq_end[i] = DT_CODE_GPA + n;
        k = stub_save(bt->code[0] + n, bt->mode, slot, fpu_of(bt->slot0 + i));
        memcpy(bt->code[1] + n, bt->code[0] + n, k);
        n += k;
    }
    bt->code[0][n] = bt->code[1][n] = 0xe6;       /* out DT_PORT, al */
    bt->code[0][n + 1] = bt->code[1][n + 1] = DT_PORT;
    n += 2;
    bt->out_end = DT_CODE_GPA + n;
    bt->codelen = n;
}

struct result {
    uint32_t reason;
    uint16_t port;
    uint64_t rip;
    char err[256];
};

static int has_template(const struct seq *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(dt_templates[s->ins[i].tmpl].name, name))
            return 1;
    return 0;
}

static void side_run(struct side *s, int which, struct batch *bt, struct result *res)
{
    if ((opt.fresh && which == 1) || (opt.twice && which == 0)) {
        /* --fresh-tcg: a new machine, no translations or pending I/O left;
         * --tcg-twice: the first machine, so that it always runs the code
         * as new (nothing kept from an earlier run at the same address) */
        uint8_t *keep = malloc(DT_TABLES_GPA);
        if (!keep)
            die("out of memory");
        memcpy(keep, s->ram, DT_TABLES_GPA);
        vx_machine_destroy(s->m);
        side_open(s, s->accel, s->name);
        vx_memory_write(s->m, 0, keep, DT_TABLES_GPA);
        free(keep);
    }
    /* --tcg-twice: the second machine runs the batch again from the same
     * state, its code left as it is: tcg keeps a block from its second run
     * on, so that run goes through translated blocks and their fast paths,
     * and it is the one compared with the first machine's. */
    int passes = opt.twice && which == 1 ? 2 : 1, err;
    vx_x86_regs r;
    vx_exit ex = { .size = sizeof ex };
    memset(res, 0, sizeof *res);
    for (int pass = 0; pass < passes; pass++) {
        side_mode(s, bt->mode);
        if ((err = vx_memory_write(s->m, slot_of(bt->slot0), bt->ctrl,
                                   (size_t)bt->n * DT_SLOT_SIZE)) ||
            (err = vx_memory_write(s->m, page_of(bt->slot0), bt->pages, (size_t)bt->n * 4096)) ||
            (pass == 0 && (err = vx_memory_write(s->m, DT_CODE_GPA, bt->code[which], bt->codelen))) ||
            (bt->mode == DM_LONG64 &&
             (err = vx_memory_write(s->m, fpu_of(bt->slot0), bt->fpu,
                                    (size_t)bt->n * DT_FPU_SLOT))))
            die("%s: vx_memory_write: %s: %s", s->name, vx_strerror(err), vx_last_error());
        r = (vx_x86_regs){ .rip = DT_CODE_GPA, .rflags = 2 | F_IOPL3 };
        if ((err = vx_vcpu_set_regs(s->v, &r)))
            die("%s: vx_vcpu_set_regs: %s: %s", s->name, vx_strerror(err), vx_last_error());
        if ((err = vx_vcpu_run(s->v, &ex)))
            die("%s: vx_vcpu_run: %s: %s", s->name, vx_strerror(err), vx_last_error());
        if (ex.reason != VX_EXIT_IO)
            s->mode = -1; /* set the vCPU up again after a fault */
    }
    res->reason = ex.reason;
    if (ex.reason == VX_EXIT_IO)
        res->port = ex.u.io.port;
    else
        snprintf(res->err, sizeof res->err, "%s", vx_last_error());
    if ((err = vx_vcpu_get_regs(s->v, &r)))
        die("%s: vx_vcpu_get_regs: %s: %s", s->name, vx_strerror(err), vx_last_error());
    res->rip = r.rip;
    if (opt.inject == 2 && which == 1)
        for (int i = 0; i < bt->n; i++)
            if (has_template(bt->seq[i], "xadd"))
                s->ram[slot_of(bt->slot0 + i) + DT_SLOT_SAVE + 8 * R_AX] ^= 8;
}

static int exit_ok(const struct batch *bt, const struct result *r)
{
    /* --fresh-tcg also forgives rip left at the out (tcg replays it) */
    return r->reason == VX_EXIT_IO && r->port == DT_PORT &&
           (r->rip == bt->out_end || (opt.fresh && r->rip == bt->out_end - 2));
}

/* ---- comparison -------------------------------------------------------------- */

static const char *reg_name(int mode, int r)
{
    static const char *n64[] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                 "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
    static const char *n32[] = { "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi" };
    return mode == DM_LONG64 ? n64[r] : n32[r];
}

/* kvm_pvm runs guest ring 3 at the CPU's ring 3: pushf there shows the
 * host's IF and IOPL, not the guest's. Detected per mode at start. */
static int if_iopl_quirk[DM_COUNT];
/* ... and in 64-bit mode `mov r, ds` reads the CPU's selector, not the guest's */
static unsigned sreg_ok[DM_COUNT] = { 0x3f, 0x3f };

static uint32_t flag_mask(const struct seq *s)
{
    uint32_t m = opt.nomask ? 0xffffffffu : ~s->final_undef;
    if (if_iopl_quirk[s->mode])
        m &= ~(F_IF | 0x3000u);
    return m;
}

/* What to compare and show of one sequence's end: its save slot and page on
 * both machines, and (single runs) all the memory below the tables. */
struct view {
    const uint8_t *save[2];
    const uint8_t *page[2];
    const uint8_t *low[2];
    const uint8_t *fpu[2];     /* the saved FXSAVE images (64-bit mode) */
    uint64_t page_gpa;
};

static void view_live(struct view *v, int slot)
{
    for (int k = 0; k < 2; k++) {
        v->save[k] = sides[k].ram + slot_of(slot) + DT_SLOT_SAVE;
        v->page[k] = sides[k].ram + page_of(slot);
        v->low[k] = sides[k].ram;
        v->fpu[k] = sides[k].ram + fpu_of(slot) + DT_FPU_SAVE;
    }
    v->page_gpa = page_of(slot);
}

/* A copy of a batch slot, taken before single runs overwrite the memory. */
struct dump {
    uint8_t save[2][DT_SLOT_SIZE - DT_SLOT_SAVE];
    uint8_t page[2][4096];
    uint8_t fpu[2][512];
};

static void view_dump(struct view *v, struct dump *d, int slot)
{
    for (int k = 0; k < 2; k++) {
        memcpy(d->save[k], sides[k].ram + slot_of(slot) + DT_SLOT_SAVE, sizeof d->save[k]);
        memcpy(d->page[k], sides[k].ram + page_of(slot), 4096);
        memcpy(d->fpu[k], sides[k].ram + fpu_of(slot) + DT_FPU_SAVE, 512);
        v->fpu[k] = d->fpu[k];
        v->save[k] = d->save[k];
        v->page[k] = d->page[k];
        v->low[k] = NULL;
    }
    v->page_gpa = page_of(slot);
}

static uint64_t vsaved(const struct view *v, int k, int what, int mode)
{
    uint64_t x;
    memcpy(&x, v->save[k] + 8 * what, 8);
    return mode == DM_LONG64 ? x : x & 0xffffffffull;
}

/* Which bytes of an FXSAVE image are compared: not FOP, FIP, FCS, FDP, FDS
 * (what they hold after some instructions is the implementation's), not the
 * six reserved bytes of each x87 register. */
static int fx_compared(unsigned off)
{
    if (off >= 6 && off < 24)
        return 0;
    if (off >= 32 && off < 160 && (off - 32) % 16 >= 10)
        return 0;
    return 1;
}

static int fpu_differs(const struct seq *s, const struct view *v)
{
    if (s->mode != DM_LONG64)
        return 0;
    for (unsigned k = 0; k < 512; k++)
        if (v->fpu[0][k] != v->fpu[1][k] && fx_compared(k))
            return 1;
    return 0;
}

static void print_fpu(const struct view *v)
{
    const char *an = sides[0].name, *bn = sides[1].name;
    printf("  x87/SSE state (FXSAVE; FOP/FIP/FDP not compared)  %s / %s\n", an, bn);
    struct { const char *name; unsigned off, len; } f[] = {
        { "fcw", 0, 2 }, { "fsw", 2, 2 }, { "ftw", 4, 1 }, { "mxcsr", 24, 4 },
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        uint32_t a = 0, b = 0;
        memcpy(&a, v->fpu[0] + f[k].off, f[k].len);
        memcpy(&b, v->fpu[1] + f[k].off, f[k].len);
        printf("    %-6s 0x%08x   0x%08x%s\n", f[k].name, a, b, a != b ? "   <<< differs" : "");
    }
    for (unsigned r = 0; r < 8; r++) {
        const uint8_t *a = v->fpu[0] + 32 + 16 * r, *b = v->fpu[1] + 32 + 16 * r;
        uint64_t ma, mb;
        uint16_t ea, eb;
        memcpy(&ma, a, 8);
        memcpy(&mb, b, 8);
        memcpy(&ea, a + 8, 2);
        memcpy(&eb, b + 8, 2);
        printf("    st%u    %04x:%016" PRIx64 "   %04x:%016" PRIx64 "%s\n", r, ea, ma, eb, mb,
               memcmp(a, b, 10) ? "   <<< differs" : "");
    }
    for (unsigned r = 0; r < 16; r++) {
        const uint8_t *a = v->fpu[0] + 160 + 16 * r, *b = v->fpu[1] + 160 + 16 * r;
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&a1, a + 8, 8);
        memcpy(&b0, b, 8);
        memcpy(&b1, b + 8, 8);
        if (a0 == b0 && a1 == b1)
            continue;
        printf("    xmm%-2u  %016" PRIx64 "%016" PRIx64 "\n           %016" PRIx64 "%016" PRIx64
               "   <<< differs\n", r, a1, a0, b1, b0);
    }
}

static int view_differs(const struct seq *s, const struct view *v)
{
    if (fpu_differs(s, v))
        return 1;
    int nr = s->mode == DM_LONG64 ? 16 : 8;
    for (int r = 0; r < nr; r++)
        if (vsaved(v, 0, r, s->mode) != vsaved(v, 1, r, s->mode))
            return 1;
    if ((vsaved(v, 0, 16, s->mode) ^ vsaved(v, 1, 16, s->mode)) & flag_mask(s))
        return 1;
    return memcmp(v->page[0], v->page[1], 4096) != 0;
}

/* Does slot `i` differ between the machines? */
static int slot_differs(const struct batch *bt, int i)
{
    struct view v;
    view_live(&v, bt->slot0 + i);
    return view_differs(bt->seq[i], &v);
}

/* Memory the report shows byte by byte: not the control slots (their
 * registers are shown as such), not the code when --inject-bug changed it. */
static int shown_mem(uint64_t gpa)
{
    if (gpa >= DT_CTRL_GPA && gpa < DT_CTRL_GPA + DT_MAX_SLOTS * DT_SLOT_SIZE)
        return 0;
    if (opt.inject == 1 && gpa >= DT_CODE_GPA && gpa < DT_CODE_GPA + DT_CODE_MAX)
        return 0;
    return 1;
}

/* Everything below the tables but the control slots (compared register by
 * register): pages, code, gaps. A translator's stray store lands here. */
static int low_differs(uint64_t *where)
{
    const uint8_t *a = sides[0].ram, *b = sides[1].ram;
    if (!memcmp(a, b, DT_TABLES_GPA))
        return 0;
    for (uint64_t i = 0; i < DT_TABLES_GPA; i++)
        if (a[i] != b[i] && shown_mem(i)) {
            *where = i;
            return 1;
        }
    return 0;
}

/* ---- single runs, minimisation, reports ---------------------------------------- */

static struct batch single;   /* a batch of one, for pinning and minimising */
static const uint8_t zeros[DT_TABLES_GPA];

struct single_res {
    struct result r[2];
    int differs;
    char why[200];
};

/* Run one sequence alone on both machines from the same clean memory, in
 * the slot it had in its batch (its pointers depend on the page's address). */
static int single_slot;

static int run_single(struct seq *s, struct single_res *out)
{
    memset(out, 0, sizeof *out);
    single.n = 1;
    single.slot0 = single_slot;
    single.mode = s->mode;
    single.seq[0] = s;
    batch_build(&single);
    for (int k = 0; k < 2; k++) {
        int err = vx_memory_write(sides[k].m, 0, zeros, sizeof zeros);
        if (err)
            die("%s: vx_memory_write: %s", sides[k].name, vx_last_error());
        side_run(&sides[k], k, &single, &out->r[k]);
    }
    int ok0 = exit_ok(&single, &out->r[0]), ok1 = exit_ok(&single, &out->r[1]);
    if (!ok0 || !ok1) {
        if (ok0 != ok1 || out->r[0].reason != out->r[1].reason || out->r[0].rip != out->r[1].rip) {
            snprintf(out->why, sizeof out->why, "the runs ended differently");
            out->differs = 1;
        } else {
            snprintf(out->why, sizeof out->why, "both runs faulted (a generator bug)");
            out->differs = 2;
        }
        return out->differs;
    }
    uint64_t where;
    if (slot_differs(&single, 0)) {
        snprintf(out->why, sizeof out->why, "the final states differ");
        out->differs = 1;
    } else if (low_differs(&where)) {
        snprintf(out->why, sizeof out->why, "memory outside the data page differs at 0x%" PRIx64,
                 where);
        out->differs = 1;
    }
    return out->differs;
}

static int minimise(struct seq *s, int want)
{
    struct single_res sr;
    static struct seq cand;
    int runs = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int j = s->n - 1; j >= 0; j--) {
            cand = *s;
            memmove(&cand.ins[j], &cand.ins[j + 1], sizeof cand.ins[0] * (size_t)(cand.n - j - 1));
            cand.n--;
            if (!dt_validate(&cand))
                continue;
            runs++;
            if (run_single(&cand, &sr) == want) {
                *s = cand;
                changed = 1;
                if (opt.verbose)
                    printf("  minimise: %d instances still fail\n", s->n);
            }
        }
    }
    return runs;
}

static void flags_str(uint64_t f, char *buf, size_t len)
{
    static const struct { uint32_t bit; const char *name; } fl[] = {
        { F_CF, "CF" }, { F_PF, "PF" }, { F_AF, "AF" }, { F_ZF, "ZF" }, { F_SF, "SF" },
        { F_TF, "TF" }, { F_IF, "IF" }, { F_DF, "DF" }, { F_OF, "OF" }, { F_NT, "NT" },
        { F_AC, "AC" }, { F_ID, "ID" },
    };
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        if (f & fl[i].bit)
            n += (size_t)snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? " " : "", fl[i].name);
    if (f & 0x3000)
        snprintf(buf + n, len > n ? len - n : 0, "%sIOPL%u", n ? " " : "", (unsigned)(f >> 12 & 3));
}

static int have_objdump(void)
{
    static int have = -1;
    if (have < 0)
        have = system("command -v objdump >/dev/null 2>&1") == 0;
    return have;
}

static void disassemble(const uint8_t *code, size_t len, uint64_t addr, int mode)
{
    if (!have_objdump() || !len)
        return;
    char path[] = "/tmp/difftest.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    if (write(fd, code, len) != (ssize_t)len) {
        close(fd);
        unlink(path);
        return;
    }
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "objdump -D -b binary -m %s --adjust-vma=0x%" PRIx64 " %s 2>&1",
             mode == DM_LONG64 ? "i386:x86-64" : "i386", addr, path);
    FILE *p = popen(cmd, "r");
    if (p) {
        char line[512];
        int on = 0;
        while (fgets(line, sizeof line, p)) {
            if (strstr(line, "<.data>:")) {
                on = 1;
                continue;
            }
            if (on && line[0] != '\n')
                printf("    %s", line);
        }
        pclose(p);
    }
    unlink(path);
}

static void print_seq(const struct seq *s)
{
    const uint8_t *code = single.code[0] + (single.seq_at[0] - DT_CODE_GPA);
    size_t off = 0;
    for (int j = 0; j < s->n; j++) {
        const struct inst *in = &s->ins[j];
        char fn[96];
        printf("    #%-2d %-30s", j, dt_form_name(in->tmpl, in->form, fn, sizeof fn));
        for (int k = 0; k < in->len; k++)
            printf(" %02x", code[off + (size_t)k]);
        printf("\n");
        off += in->len;
    }
    printf("  disassembly (code at 0x%" PRIx64 "%s):\n", single.seq_at[0],
           opt.inject == 1 ? "; as the first machine runs it" : "");
    if (have_objdump())
        disassemble(code, off, single.seq_at[0], s->mode);
    else
        printf("    (objdump not found)\n");
}

static void print_initial(const struct seq *s, uint64_t pb)
{
    int mode = s->mode, nr = mode == DM_LONG64 ? 16 : 8;
    char fb[160];
    printf("  initial state (data page at 0x%" PRIx64 ", random from seed 0x%" PRIx64 "):\n", pb,
           s->seed);
    for (int r = 0; r < nr; r++) {
        uint64_t v = dt_value(&s->init[r], pb, mode);
        printf("    %-4s 0x%0*" PRIx64 "%s", reg_name(mode, r), mode == DM_LONG64 ? 16 : 8, v,
               s->init[r].rel ? "*" : " ");
        if (r % 4 == 3 || r == nr - 1)
            printf("\n");
    }
    flags_str(s->init_flags, fb, sizeof fb);
    printf("    rflags 0x%08x [%s]   (* points into the data page)\n", s->init_flags, fb);
    if (mode == DM_LONG64) {
        uint8_t img[512];
        uint16_t w[2];
        uint32_t mx;
        dt_fill_fpu(s->seed, img);
        memcpy(w, img, 4);
        memcpy(&mx, img + 24, 4);
        printf("    fcw 0x%04x fsw 0x%04x ftw 0x%02x mxcsr 0x%08x\n   ", w[0], w[1], img[4], mx);
        for (unsigned r = 0; r < 8; r++) {
            uint64_t m;
            uint16_t e;
            memcpy(&m, img + 32 + 16 * r, 8);
            memcpy(&e, img + 40 + 16 * r, 2);
            printf(" st%u %04x:%016" PRIx64 "%s", r, e, m, r % 3 == 2 ? "\n   " : "");
        }
        printf("\n");
    }
}

static void print_final(const struct seq *s, const struct view *v)
{
    int mode = s->mode, nr = mode == DM_LONG64 ? 16 : 8;
    const char *an = sides[0].name, *bn = sides[1].name;
    char fb[160];
    printf("  final state            %-20s %-20s\n", an, bn);
    for (int r = 0; r < nr; r++) {
        uint64_t a = vsaved(v, 0, r, mode), b = vsaved(v, 1, r, mode);
        printf("    %-6s    0x%0*" PRIx64 "   0x%0*" PRIx64 "%s\n", reg_name(mode, r),
               mode == DM_LONG64 ? 16 : 8, a, mode == DM_LONG64 ? 16 : 8, b,
               a != b ? "   <<< differs" : "");
    }
    uint64_t fa = vsaved(v, 0, 16, mode), fbv = vsaved(v, 1, 16, mode);
    uint32_t mask = flag_mask(s);
    printf("    rflags    0x%08" PRIx64 "           0x%08" PRIx64, fa, fbv);
    if ((fa ^ fbv) & mask) {
        flags_str((fa ^ fbv) & mask, fb, sizeof fb);
        printf("           <<< differs in %s", fb);
    }
    printf("\n");
    flags_str(fa, fb, sizeof fb);
    printf("              %s: [%s]\n", an, fb);
    flags_str(fbv, fb, sizeof fb);
    printf("              %s: [%s]\n", bn, fb);
    if (~mask & 0xffffffffu) {
        flags_str(~mask & 0xffffffffu & (F_ARITH | F_IF | F_DF | 0x3000), fb, sizeof fb);
        printf("              not compared (undefined, or not the guest's on this kvm): %s\n", fb);
    }
    /* memory: the page, or everything below the tables */
    const uint8_t *ma = v->low[0] ? v->low[0] : v->page[0];
    const uint8_t *mb = v->low[1] ? v->low[1] : v->page[1];
    uint64_t base = v->low[0] ? 0 : v->page_gpa, len = v->low[0] ? DT_TABLES_GPA : 4096;
    int shown = 0, total = 0;
    for (uint64_t i = 0; i < len; i += 16) {
        if (!memcmp(ma + i, mb + i, 16) || !shown_mem(base + i))
            continue;
        for (int k = 0; k < 16; k++)
            total += ma[i + k] != mb[i + k];
        if (shown++ >= 16)
            continue;
        uint64_t gpa = base + i;
        printf("    mem 0x%05" PRIx64 "%s %s:", gpa,
               gpa >= v->page_gpa && gpa < v->page_gpa + 4096 ? " (page)" : "       ", an);
        for (int k = 0; k < 16; k++)
            printf(" %02x", ma[i + k]);
        printf("\n                   %*s:", (int)strlen(an), bn);
        for (int k = 0; k < 16; k++)
            printf("%c%02x", ma[i + k] != mb[i + k] ? '*' : ' ', mb[i + k]);
        printf("\n");
    }
    if (total)
        printf("    %d byte%s of memory differ%s\n", total, total == 1 ? "" : "s",
               total == 1 ? "s" : "");
    if (fpu_differs(s, v))
        print_fpu(v);
}

static void report(const struct seq *s, const struct single_res *sr)
{
    int nins = 0;
    for (int j = 0; j < s->n; j++)
        nins += s->ins[j].nins;
    printf("  minimal sequence: %d instance%s, %d instruction%s:\n", s->n, s->n == 1 ? "" : "s",
           nins, nins == 1 ? "" : "s");
    print_seq(s);
    print_initial(s, page_of(single.slot0));
    int bad = 0;
    for (int k = 0; k < 2; k++)
        if (!exit_ok(&single, &sr->r[k])) {
            bad = 1;
            printf("  %s: exit reason %u at rip 0x%" PRIx64 " (expected an out to 0x%x ending at "
                   "0x%" PRIx64 "): %s\n", sides[k].name, sr->r[k].reason, sr->r[k].rip, DT_PORT,
                   single.out_end, sr->r[k].err);
        }
    if (bad)
        return;
    struct view v;
    view_live(&v, single.slot0);
    print_final(s, &v);
}

/* ---- statistics --------------------------------------------------------------- */

static uint64_t hits[DM_COUNT][512];
static uint8_t forms[DM_COUNT][512][256 / 8];
static uint64_t n_seq[DM_COUNT], n_ins[DM_COUNT];
static uint8_t enabled[DM_COUNT][512];
static int mismatches;

static void tally(const struct seq *s)
{
    n_seq[s->mode]++;
    for (int j = 0; j < s->n; j++) {
        const struct inst *in = &s->ins[j];
        hits[s->mode][in->tmpl]++;
        forms[s->mode][in->tmpl][in->form / 8] |= (uint8_t)(1u << (in->form % 8));
        n_ins[s->mode] += in->nins;
    }
}

static uint64_t seq_seed(int mode, uint64_t index)
{
    return dt_mix(dt_mix(opt.seed) ^ dt_mix((uint64_t)(mode + 1) << 56 ^ index));
}

static void fail_header(int mode, uint64_t index, int slot, const char *why)
{
    printf("\ndifftest: MISMATCH between %s and %s: %s ring %d, sequence %" PRIu64 " of seed %"
           PRIu64 ": %s\n", sides[0].name, sides[1].name, mode_name[mode], opt.ring, index,
           opt.seed, why);
    printf("  reproduce: tests/difftest --seed %" PRIu64 " --mode %s --ring %d --first %" PRIu64
           " --slot %d --count 1 --maxlen %d%s%s%s%s\n", opt.seed, mode_name[mode], opt.ring,
           index, slot, opt.maxlen, opt.templates ? " --template '" : "",
           opt.templates ? opt.templates : "", opt.templates ? "'" : "", opt.self ? " --self" : "");
}

/* A sequence failed (in a batch or alone): pin, minimise, report. `d` is the
 * batch's view of it (NULL if the batch as a whole went wrong). */
static void investigate(struct seq *s, uint64_t index, int slot, const struct view *d)
{
    struct single_res sr;
    single_slot = slot;
    int res = run_single(s, &sr);
    if (!res) {
        fail_header(s->mode, index, slot, "in its batch only: alone it matches");
        printf("  (state left over from an earlier sequence of the batch? stale translations?)\n");
        printf("  the sequence, as placed in slot %d of its batch:\n", slot);
        print_seq(s);
        print_initial(s, page_of(slot));
        if (d)
            print_final(s, d);
        mismatches++;
        return;
    }
    struct seq m = *s;
    int runs = minimise(&m, res);
    run_single(&m, &sr);
    fail_header(s->mode, index, slot, sr.why[0] ? sr.why : "differs");
    printf("  (minimised from %d instances in %d runs)\n", s->n, runs);
    report(&m, &sr);
    mismatches++;
}

/* ---- the main loop ----------------------------------------------------------- */

static struct batch bt;
static struct seq seqs[DT_MAX_SLOTS];

static void run_mode(int mode, uint64_t count)
{
    struct gen_cfg cfg = { .mode = mode, .ring = opt.ring, .maxlen = opt.maxlen,
                           .enabled = enabled[mode], .mask_if_iopl = if_iopl_quirk[mode],
                           .sreg_ok = sreg_ok[mode] };
    if (opt.slot >= slots_for(mode))
        die("--slot %d: %s has slots 0..%d", opt.slot, mode_name[mode], slots_for(mode) - 1);
    int per = slots_for(mode) - opt.slot < opt.batch ? slots_for(mode) - opt.slot : opt.batch;
    bt.slot0 = opt.slot;
    uint64_t done = 0, nbatch = 0;
    while (done < count && (opt.keep_going || !mismatches)) {
        int n = (int)(count - done < (uint64_t)per ? count - done : (uint64_t)per);
        bt.n = n;
        bt.mode = mode;
        for (int i = 0; i < n; i++) {
            bt.index[i] = opt.first + done + (uint64_t)i;
            dt_generate(&cfg, seq_seed(mode, bt.index[i]), &seqs[i]);
            bt.seq[i] = &seqs[i];
        }
        batch_build(&bt);
        struct result r[2];
        side_run(&sides[0], 0, &bt, &r[0]);
        side_run(&sides[1], 1, &bt, &r[1]);
        int bad = 0;
        if (!exit_ok(&bt, &r[0]) || !exit_ok(&bt, &r[1])) {
            if (opt.verbose)
                printf("batch %" PRIu64 ": %s exit %u rip 0x%" PRIx64 " / %s exit %u rip 0x%"
                       PRIx64 ": pinning\n", nbatch, sides[0].name, r[0].reason, r[0].rip,
                       sides[1].name, r[1].reason, r[1].rip);
            bad = 2;   /* every sequence of the batch is suspect */
        } else {
            for (int i = 0; i < n; i++)
                if (slot_differs(&bt, i))
                    bad = 1;
            uint64_t where;
            if (!bad && (nbatch % 32 == 31 || done + (uint64_t)n == count) && low_differs(&where)) {
                if (opt.verbose)
                    printf("batch %" PRIu64 ": memory differs at 0x%" PRIx64 ": pinning\n",
                           nbatch, where);
                bad = 2;
            }
        }
        if (bad) {
            /* the batch's verdicts, before single runs overwrite memory */
            static struct dump dumps[DT_MAX_SLOTS];
            static struct view views[DT_MAX_SLOTS];
            int which[DT_MAX_SLOTS];
            for (int i = 0; i < n; i++) {
                which[i] = bad == 2 || slot_differs(&bt, i);
                if (which[i])
                    view_dump(&views[i], &dumps[i], i);
            }
            int found = 0;
            for (int i = 0; i < n && (opt.keep_going || !mismatches); i++) {
                if (!which[i])
                    continue;
                struct single_res sr;
                single_slot = bt.slot0 + i;
                if (bad == 2 && !run_single(bt.seq[i], &sr))
                    continue;
                investigate(bt.seq[i], bt.index[i], bt.slot0 + i, bad == 1 ? &views[i] : NULL);
                found = 1;
            }
            if (!found) {
                printf("\ndifftest: MISMATCH between %s and %s: %s ring %d, batch of sequences %"
                       PRIu64 "..%" PRIu64 ": the batch differs but every sequence matches alone\n",
                       sides[0].name, sides[1].name, mode_name[mode], opt.ring, bt.index[0],
                       bt.index[n - 1]);
                printf("  %s: exit %u rip 0x%" PRIx64 " %s\n  %s: exit %u rip 0x%" PRIx64 " %s\n",
                       sides[0].name, r[0].reason, r[0].rip, r[0].err, sides[1].name, r[1].reason,
                       r[1].rip, r[1].err);
                mismatches++;
            }
            /* both machines start the next batch from the same memory */
            for (int k = 0; k < 2; k++)
                vx_memory_write(sides[k].m, 0, zeros, sizeof zeros);
        }
        for (int i = 0; i < n; i++)
            tally(bt.seq[i]);
        done += (uint64_t)n;
        nbatch++;
        if (opt.verbose && nbatch % 500 == 0)
            printf("  %s: %" PRIu64 " sequences\n", mode_name[mode], done);
    }
}

/* kvm is the oracle only where it runs the code: find the templates it
 * cannot run at all here and leave them out, loudly. In ring 0 kvm_pvm's
 * instruction emulator runs the guest and gives up on some instructions; in
 * ring 3 kvm_pvm runs the guest at the CPU's ring 3, where cli faults in
 * 64-bit mode whatever the IOPL. */
static void probe_kvm(int mode)
{
    static uint8_t only[512];
    int first = 1;
    for (unsigned t = 0; t < dt_ntemplates; t++) {
        if (!enabled[mode][t])
            continue;
        memset(only, 0, sizeof only);
        only[t] = 1;
        struct gen_cfg cfg = { .mode = mode, .ring = opt.ring, .maxlen = 1, .enabled = only,
                               .mask_if_iopl = if_iopl_quirk[mode], .sreg_ok = sreg_ok[mode] };
        for (int k = 0; k < 6; k++) {
            static struct seq s;
            dt_generate(&cfg, seq_seed(mode, 0xff000000ull + t * 16 + (unsigned)k), &s);
            if (!s.n)
                continue;
            single.n = 1;
            single.slot0 = 0;
            single.mode = mode;
            single.seq[0] = &s;
            batch_build(&single);
            struct result r;
            side_run(&sides[0], 0, &single, &r);
            if (!exit_ok(&single, &r)) {
                if (first)
                    printf("difftest: ring %d %s: %s cannot run these templates; skipped:\n",
                           opt.ring, mode_name[mode], sides[0].name);
                first = 0;
                printf("  %-20s exit %u: %.120s\n", dt_templates[t].name, r.reason, r.err);
                enabled[mode][t] = 0;
                break;
            }
        }
    }
}

/* What the random sequences take for granted of the second machine, checked
 * against kvm first so a failure says what is wrong, not which sequence:
 *   1. rip after an exit for `out` is past the instruction, as kvm has it;
 *   2. after vx_vcpu_set_regs() moves rip, the next `out` to that port, from
 *      elsewhere, exits again (no pending I/O left over);
 *   3. code rewritten with vx_memory_write() runs as rewritten.
 * Returns the number of failed checks. */
static int api_checks(void)
{
    static const uint8_t code1[] = { 0xb8, 1, 0, 0, 0, 0xe6, DT_PORT };   /* mov eax, 1; out */
    static const uint8_t code2[] = { 0xb8, 2, 0, 0, 0, 0xe6, DT_PORT };
    static const uint8_t code3[] = { 0xb8, 3, 0, 0, 0, 0xe6, DT_PORT };
    struct { uint64_t rip, rax; uint32_t reason; } got[2][3];
    for (int k = 0; k < 2; k++) {
        struct side *sd = &sides[k];
        side_mode(sd, DM_LONG64);
        const uint8_t *codes[3] = { code1, code2, code3 };
        uint64_t at[3] = { DT_CODE_GPA, DT_CODE_GPA + 0x100, DT_CODE_GPA };
        vx_memory_write(sd->m, DT_CODE_GPA, zeros, 0x1000);
        for (int i = 0; i < 3; i++) {
            vx_memory_write(sd->m, at[i], codes[i], sizeof code1);
            vx_x86_regs r = { .rip = at[i], .rflags = 2 | F_IOPL3, .rsp = page_of(0) + 0x800 };
            vx_vcpu_set_regs(sd->v, &r);
            vx_exit ex = { .size = sizeof ex };
            vx_vcpu_run(sd->v, &ex);
            vx_vcpu_get_regs(sd->v, &r);
            got[k][i].rip = r.rip;
            got[k][i].rax = r.rax & 0xffffffff;
            got[k][i].reason = ex.reason;
            if (ex.reason != VX_EXIT_IO)
                sd->mode = -1;
        }
        vx_memory_write(sd->m, DT_CODE_GPA, zeros, 0x1000);
    }
    int bad = 0;
    const char *b = sides[1].name, *a = sides[0].name;
    if (got[1][0].reason != VX_EXIT_IO || got[1][0].rip != got[0][0].rip) {
        printf("difftest: FAIL: after the exit for `out 0x%x, al` at 0x%x, %s has rip 0x%" PRIx64
               " (exit %u), %s 0x%" PRIx64 " (past the instruction)\n", DT_PORT, DT_CODE_GPA, b,
               got[1][0].rip, got[1][0].reason, a, got[0][0].rip);
        bad++;
    }
    if (got[1][1].reason != VX_EXIT_IO || got[1][1].rax != 2 ||
        (got[1][1].rip != got[0][1].rip && got[1][1].rip != got[0][1].rip - 2)) {
        printf("difftest: FAIL: after vx_vcpu_set_regs() to 0x%x, the `out 0x%x, al` there did "
               "not exit on %s as on %s: exit %u at rip 0x%" PRIx64 " (%s: exit %u at 0x%" PRIx64
               "); is the earlier out's pending I/O still answered?\n", DT_CODE_GPA + 0x100,
               DT_PORT, b, a, got[1][1].reason, got[1][1].rip, a, got[0][1].reason,
               got[0][1].rip);
        bad++;
    }
    if (got[1][2].rax != got[0][2].rax) {
        printf("difftest: FAIL: code rewritten with vx_memory_write() (mov eax, 1 -> mov eax, 3, "
               "at 0x%x, already run) ran as the old code on %s: eax %" PRIu64 ", %s: %" PRIu64
               " (stale translations)\n", DT_CODE_GPA, b, got[1][2].rax, a, got[0][2].rax);
        bad++;
    }
    return bad;
}

/* Does the oracle's pushf show the rflags the guest was given? */
static void detect_quirks(int mode)
{
    static const uint8_t none[512];
    static struct seq s;
    struct gen_cfg cfg = { .mode = mode, .ring = opt.ring, .maxlen = 1, .enabled = none };
    dt_generate(&cfg, seq_seed(mode, 0xfe000000ull), &s);
    single.n = 1;
    single.slot0 = 0;
    single.mode = mode;
    single.seq[0] = &s;
    batch_build(&single);
    struct result r;
    side_run(&sides[0], 0, &single, &r);
    if (!exit_ok(&single, &r))
        die("%s: an empty sequence does not run in %s ring %d: exit %u: %s", sides[0].name,
            mode_name[mode], opt.ring, r.reason, r.err);
    uint64_t f;
    memcpy(&f, sides[0].ram + slot_of(0) + DT_SLOT_SAVE + 128, 8);
    if ((f ^ s.init_flags) & (F_IF | 0x3000u)) {
        if_iopl_quirk[mode] = 1;
        printf("difftest: ring %d %s: %s's pushf shows IF/IOPL %u/%u for the guest's %u/%u; "
               "IF and IOPL are not compared\n", opt.ring, mode_name[mode], sides[0].name,
               (unsigned)(f >> 9 & 1), (unsigned)(f >> 12 & 3), s.init_flags >> 9 & 1,
               s.init_flags >> 12 & 3);
    }
    /* the selectors mov r, sreg reads, against what the vCPU was given */
    vx_x86_sregs sr;
    vx_vcpu_get_sregs(sides[0].v, &sr);
    const vx_x86_segment *segs[6] = { &sr.es, &sr.cs, &sr.ss, &sr.ds, &sr.fs, &sr.gs };
    static const char *names[6] = { "es", "cs", "ss", "ds", "fs", "gs" };
    for (int k = 0; k < 6; k++) {
        const uint8_t mov[2] = { 0x8c, (uint8_t)(0xc0 | k << 3) };   /* mov eax, sreg */
        dt_raw_seq(&s, mode, mov, 2);
        batch_build(&single);
        side_run(&sides[0], 0, &single, &r);
        uint64_t v;
        memcpy(&v, sides[0].ram + slot_of(0) + DT_SLOT_SAVE, 8);
        if (exit_ok(&single, &r) && (v & 0xffff) == segs[k]->selector)
            continue;
        sreg_ok[mode] &= ~(1u << k);
        printf("difftest: ring %d %s: %s's mov eax, %s reads 0x%x, not the guest's selector "
               "0x%x; not tested\n", opt.ring, mode_name[mode], sides[0].name, names[k],
               (unsigned)(v & 0xffff), segs[k]->selector);
    }
    /* Does the CPU run this mode, or KVM's instruction emulator? The emulator
     * has no lzcnt (it runs bsr: lzcnt of 1 gives 0, not 31), computes
     * aam/aad's SF/ZF/PF on all of eax, and zero-extends a 32-bit register
     * destination of a cmpxchg that fails its compare (the CPU leaves it).
     * Those templates would compare tcg with the emulator's mistakes: leave
     * them out. */
    static const uint8_t lz[] = { 0xb8, 1, 0, 0, 0, 0xf3, 0x0f, 0xbd, 0xc0 };
    dt_raw_seq(&s, mode, lz, sizeof lz);
    batch_build(&single);
    side_run(&sides[0], 0, &single, &r);
    uint64_t v;
    memcpy(&v, sides[0].ram + slot_of(0) + DT_SLOT_SAVE, 8);
    if (!exit_ok(&single, &r) || (v & 0xffffffff) != 31) {
        static const char *wrong[] = { "lzcnt", "tzcnt", "aam", "aad", "cmpxchg" };
        printf("difftest: ring %d %s: %s runs this mode in its instruction emulator, not on the "
               "CPU (lzcnt of 1 gives %u): a check against the emulator; skipping what it gets "
               "wrong:", opt.ring, mode_name[mode], sides[0].name, (unsigned)v);
        for (unsigned t = 0; t < dt_ntemplates; t++)
            for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++)
                if (!strcmp(dt_templates[t].name, wrong[k]) && enabled[mode][t] &&
                    (k < 4 || mode == DM_LONG64)) {
                    enabled[mode][t] = 0;
                    printf(" %s", wrong[k]);
                }
        printf("\n");
    }
}

static void list_templates(void)
{
    printf("%-20s %-8s %-8s %s\n", "template", "long64", "prot32", "ring 0");
    for (unsigned t = 0; t < dt_ntemplates; t++) {
        const struct tmpl *tp = &dt_templates[t];
        printf("%-20s %-8s %-8s %s\n", tp->name, tp->props & T_LONG64 ? "yes" : "-",
               tp->props & T_PROT32 ? "yes" : "-", tp->props & T_NORING0 ? "no" : "yes");
    }
    printf("%u templates\n", dt_ntemplates);
}

static void summary(double secs)
{
    uint64_t seqs_total = n_seq[0] + n_seq[1], ins = n_ins[0] + n_ins[1];
    printf("difftest: %s vs %s, ring %d, seed %" PRIu64 ": %" PRIu64 " sequences (long64 %" PRIu64
           ", prot32 %" PRIu64 "), %" PRIu64 " instructions, %d mismatch%s, %.1f s (%.0f "
           "sequences/s)\n", sides[0].name, sides[1].name, opt.ring, opt.seed, seqs_total,
           n_seq[0], n_seq[1], ins, mismatches, mismatches == 1 ? "" : "es", secs,
           secs > 0 ? (double)seqs_total / secs : 0.0);
    unsigned nforms[DM_COUNT] = { 0 }, never = 0;
    printf("template hits (long64 / prot32), forms covered:\n");
    int col = 0;
    for (unsigned t = 0; t < dt_ntemplates; t++) {
        unsigned f[DM_COUNT] = { 0 };
        for (int m = 0; m < DM_COUNT; m++)
            for (int i = 0; i < 32; i++)
                f[m] += (unsigned)__builtin_popcount(forms[m][t][i]);
        nforms[0] += f[0];
        nforms[1] += f[1];
        int want = 0, got = 0;
        for (int m = 0; m < DM_COUNT; m++)
            if (opt.modes >> m & 1 && enabled[m][t]) {
                want = 1;
                got |= hits[m][t] != 0;
            }
        if (want && !got)
            never++;
        if (!want && !hits[0][t] && !hits[1][t])
            continue;
        printf("  %-17s %7" PRIu64 " %7" PRIu64 " %4u%s", dt_templates[t].name, hits[0][t],
               hits[1][t], f[0] + f[1], ++col % 2 ? "  |" : "\n");
    }
    if (col % 2)
        printf("\n");
    printf("forms covered: %u (long64 %u, prot32 %u); templates enabled but never hit: %u\n",
           nforms[0] + nforms[1], nforms[0], nforms[1], never);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: difftest [--seed S] [--count N] [--mode long64|prot32|all] [--ring 0|3]\n"
            "                [--template NAME[,NAME...]] [--first I] [--slot K] [--maxlen N]\n"
            "                [--batch N] [--keep-going] [--list] [-v]\n"
            "--tcg-twice: no kvm; each batch runs on tcg once, and on a second tcg machine\n"
            "twice, whose second run (translated blocks, fast paths) is compared\n"
            "debugging: --self (kvm against a second kvm), --nomask (compare undefined flags\n"
            "too), --inject-bug[=adc|flip] (corrupt the second machine), --fresh-tcg (a new\n"
            "second machine for every run)\n");
    exit(99);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (ARG("--seed"))
            opt.seed = strtoull(v, NULL, 0);
        else if (ARG("--count"))
            opt.count = strtoull(v, NULL, 0);
        else if (ARG("--first"))
            opt.first = strtoull(v, NULL, 0);
        else if (ARG("--mode")) {
            if (!strcmp(v, "long64"))
                opt.modes = 1;
            else if (!strcmp(v, "prot32"))
                opt.modes = 2;
            else if (!strcmp(v, "all"))
                opt.modes = 3;
            else
                usage();
        } else if (ARG("--ring")) {
            opt.ring = atoi(v);
            if (opt.ring != 0 && opt.ring != 3)
                usage();
        } else if (ARG("--template"))
            opt.templates = v;
        else if (ARG("--maxlen")) {
            opt.maxlen = atoi(v);
            if (opt.maxlen < 1 || opt.maxlen > SEQ_MAX)
                usage();
        } else if (ARG("--slot")) {
            opt.slot = atoi(v);
            if (opt.slot < 0 || opt.slot >= DT_MAX_SLOTS)
                usage();
        } else if (ARG("--batch")) {
            opt.batch = atoi(v);
            if (opt.batch < 1)
                usage();
        } else if (!strcmp(a, "--list"))
            opt.list = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            opt.verbose = 1;
        else if (!strcmp(a, "--keep-going"))
            opt.keep_going = 1;
        else if (!strcmp(a, "--self"))          /* kvm against a second kvm */
            opt.self = 1;
        else if (!strcmp(a, "--tcg-twice"))     /* tcg against its translated blocks */
            opt.twice = 1;
        else if (!strcmp(a, "--nomask"))        /* compare undefined flags too */
            opt.nomask = 1;
        else if (!strcmp(a, "--inject-bug") || !strcmp(a, "--inject-bug=adc"))
            opt.inject = 1;
        else if (!strcmp(a, "--inject-bug=flip"))
            opt.inject = 2;
        else if (!strcmp(a, "--fresh-tcg"))
            opt.fresh = 1;
        else
            usage();
#undef ARG
    }
    if (opt.list) {
        list_templates();
        return 0;
    }

    /* which templates */
    for (int m = 0; m < DM_COUNT; m++)
        for (unsigned t = 0; t < dt_ntemplates; t++) {
            const struct tmpl *tp = &dt_templates[t];
            int on = tp->props & (m == DM_LONG64 ? T_LONG64 : T_PROT32);
            if (opt.ring == 0 && (tp->props & T_NORING0))
                on = 0;
            if (on && opt.templates) {
                int match = 0;
                char buf[1024];
                snprintf(buf, sizeof buf, "%s", opt.templates);
                for (char *save, *tok = strtok_r(buf, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save))
                    if (!fnmatch(tok, tp->name, 0))
                        match = 1;
                on = match;
            }
            enabled[m][t] = (uint8_t)!!on;
        }
    int any = 0;
    for (int m = 0; m < DM_COUNT; m++)
        for (unsigned t = 0; t < dt_ntemplates; t++)
            any |= (opt.modes >> m & 1) && enabled[m][t];
    if (!any) {
        fprintf(stderr, "difftest: no template matches '%s' in the chosen modes\n",
                opt.templates ? opt.templates : "");
        return 99;
    }

    if (!opt.twice && !vx_accel_available(VX_ACCEL_KVM)) {
        printf("SKIP: kvm is not available (the oracle): %s\n", vx_last_error());
        return 77;
    }
    if (!opt.self && !vx_accel_available(VX_ACCEL_TCG)) {
        vx_machine *m = NULL;
        vx_machine_opts o = { .size = sizeof o, .accel = VX_ACCEL_TCG };
        vx_machine_create(&o, &m);
        printf("SKIP: the tcg accelerator is not available: %s\n", vx_last_error());
        vx_machine_destroy(m);
        return 77;
    }
    if (opt.twice) {
        side_open(&sides[0], VX_ACCEL_TCG, "tcg");
        side_open(&sides[1], VX_ACCEL_TCG, "tcg-translated");
    } else {
        side_open(&sides[0], VX_ACCEL_KVM, "kvm");
        side_open(&sides[1], opt.self ? VX_ACCEL_KVM : VX_ACCEL_TCG, opt.self ? "kvm#2" : "tcg");
    }

    double t0 = now();
    if (!opt.fresh) {
        int bad = api_checks();
        if (bad) {
            mismatches += bad;
            if (!opt.keep_going) {
                printf("difftest: the random sequences need these first (--fresh-tcg works "
                       "around them with a new %s machine for every run)\n", sides[1].name);
                return 1;
            }
        }
    }
    for (int m = 0; m < DM_COUNT; m++)
        if (opt.modes >> m & 1) {
            detect_quirks(m);
            probe_kvm(m);
        }
    uint64_t per[DM_COUNT] = { 0 };
    if (opt.modes == 3) {
        per[DM_LONG64] = (opt.count + 1) / 2;
        per[DM_PROT32] = opt.count / 2;
    } else {
        per[opt.modes == 1 ? DM_LONG64 : DM_PROT32] = opt.count;
    }
    for (int m = 0; m < DM_COUNT && (opt.keep_going || !mismatches); m++)
        if (per[m])
            run_mode(m, per[m]);
    summary(now() - t0);
    vx_machine_destroy(sides[0].m);
    vx_machine_destroy(sides[1].m);
    return mismatches ? 1 : 0;
}
