/*
 * Guest programs (the nasm sources in tests/guests/) on every accelerator,
 * through the public API only. Each test runs once per accelerator (a loop
 * test over guest_accels[]); an accelerator that is not available prints
 * SKIP and the test passes. The expectations are the architecture's and the
 * API's, never one accelerator's: kvm and tcg must both meet them.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvx/vx.h>

#include "guest_util.h"

#define ACCEL guest_accels[_i]

#define RFLAGS_CF 0x1u
#define RFLAGS_ZF 0x40u
#define RFLAGS_SF 0x80u
#define RFLAGS_DF 0x400u
#define RFLAGS_OF 0x800u
#define RFLAGS_ARITH 0x8d5u /* CF PF AF ZF SF OF */

#define CR0_PE 0x1u
#define CR0_PG 0x80000000u
#define CR4_PAE 0x20u
#define CR4_OSFXSR 0x200u
#define EFER_SCE 0x1u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u
#define EFER_NXE 0x800u

static const struct {
    vx_cpu_mode mode;
    const char *bits; /* the suffix of the per-mode programs */
} modes[] = {
    {VX_MODE_REAL, "16"},
    {VX_MODE_PROT32, "32"},
    {VX_MODE_LONG64, "64"},
};
#define MODE_COUNT (sizeof(modes) / sizeof(modes[0]))

static void set_error(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error: later ones are usually its consequences. */
static void set_error(char *buf, size_t size, const char *fmt, ...)
{
    if (buf[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */
/* Scripted accesses: the port and MMIO accesses a program makes, in order.  */
/* The same script is checked whether callbacks or exits deliver them.       */
/* ------------------------------------------------------------------------ */

enum { PIO = 0, MMIO = 1 };

typedef struct access {
    uint8_t space;    /* PIO or MMIO */
    uint8_t is_write;
    uint8_t len;
    uint64_t addr;
    uint64_t value;   /* written, or to be read */
} access;

/* tests/guests/pio16/32/64.asm */
static const access pio_script[] = {
    {PIO, 1, 1, 0x10, 0x11},
    {PIO, 1, 2, 0x12, 0x2233},
    {PIO, 1, 4, 0x14, 0x44556677},
    {PIO, 1, 1, 0x17, 0x77},
    {PIO, 0, 1, 0x11, 0xa1},
    {PIO, 0, 2, 0x12, 0xb2c2},
    {PIO, 0, 4, 0x14, 0xd4e4f404},
};

/* tests/guests/mmio16/32/64.asm; the 8-byte accesses are in mmio64 only. */
static const access mmio_script[] = {
    {MMIO, 1, 1, 0xa0001, 0x11},
    {MMIO, 1, 2, 0xa0002, 0x2233},
    {MMIO, 1, 4, 0xa0004, 0x44556677},
    {MMIO, 1, 8, 0xa0008, 0x8899aabbccddeeffull},
    {MMIO, 0, 1, 0xa0010, 0x5a},
    {MMIO, 0, 2, 0xa0012, 0x5aa5},
    {MMIO, 0, 4, 0xa0014, 0xdeadbeef},
    {MMIO, 0, 8, 0xa0018, 0x0123456789abcdefull},
    {MMIO, 0, 4, 0xa0020, 0x100},
    {MMIO, 1, 4, 0xa0020, 0x180},
};

typedef struct script {
    access want[16];
    size_t count;
    size_t next;          /* index of the access expected next */
    unsigned callbacks;   /* accesses that arrived through callbacks */
    unsigned exits;       /* ... and through VX_EXIT_IO / VX_EXIT_MMIO */
    vx_vcpu *vcpu;        /* what vx_vcpu_current() must be in callbacks */
    bool stop_at_read;    /* vx_vcpu_stop() while the first read exit is answered */
    bool stopped;
    char error[512];
} script;

static void script_init(script *s, const access *src, size_t n, bool with_qwords, vx_vcpu *v)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++)
        if (with_qwords || src[i].len != 8)
            s->want[s->count++] = src[i];
    s->vcpu = v;
}

static void describe_access(char *buf, size_t size, uint8_t space, bool is_write,
                            uint64_t addr, unsigned len, uint64_t value)
{
    snprintf(buf, size, "%s %s 0x%" PRIx64 " len %u value 0x%" PRIx64,
             space == PIO ? "pio" : "mmio", is_write ? "write" : "read", addr, len, value);
}

/* Match one access against the script; for a read, *value gets the answer.
 * Returns false (with s->error set) on a mismatch. */
static bool script_take(script *s, uint8_t space, bool is_write, uint64_t addr, unsigned len,
                        uint64_t *value, const char *via)
{
    char got[128], want[128];
    describe_access(got, sizeof(got), space, is_write, addr, len, is_write ? *value : 0);
    if (s->next >= s->count) {
        set_error(s->error, sizeof(s->error), "unexpected access %s (%s) after the last one",
                  got, via);
        return false;
    }
    const access *w = &s->want[s->next];
    describe_access(want, sizeof(want), w->space, w->is_write, w->addr, w->len,
                    w->is_write ? w->value : 0);
    if (w->space != space || w->is_write != is_write || w->addr != addr || w->len != len ||
        (is_write && w->value != *value)) {
        set_error(s->error, sizeof(s->error), "access %zu: got %s (%s), want %s", s->next,
                  got, via, want);
        return false;
    }
    if (!is_write)
        *value = w->value;
    s->next++;
    return true;
}

static void script_callback(script *s, uint8_t space, bool is_write, uint64_t addr,
                            unsigned len, uint64_t *value)
{
    s->callbacks++;
    if (vx_vcpu_current() != s->vcpu)
        set_error(s->error, sizeof(s->error), "vx_vcpu_current() in a callback is %p, not %p",
                  (void *)vx_vcpu_current(), (void *)s->vcpu);
    if (!is_write && *value != 0)
        set_error(s->error, sizeof(s->error),
                  "a read callback's *value starts at 0x%" PRIx64 ", not 0", *value);
    script_take(s, space, is_write, addr, len, value, "callback");
}

static int script_pio_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    script_callback(opaque, PIO, false, addr, len, value);
    return 0;
}

static int script_pio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    script_callback(opaque, PIO, true, addr, len, &value);
    return 0;
}

static int script_mmio_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    script_callback(opaque, MMIO, false, addr, len, value);
    return 0;
}

static int script_mmio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    script_callback(opaque, MMIO, true, addr, len, &value);
    return 0;
}

static const vx_io_ops script_pio_ops = {
    .size = sizeof(vx_io_ops), .read = script_pio_read, .write = script_pio_write};
static const vx_io_ops script_mmio_ops = {
    .size = sizeof(vx_io_ops), .read = script_mmio_read, .write = script_mmio_write};

/* For ranges that must never be touched. */
static int never_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    (void)len;
    (void)value;
    set_error(opaque, 512, "callback read 0x%" PRIx64 " of a range nothing accesses", addr);
    return -1;
}

static int never_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)len;
    (void)value;
    set_error(opaque, 512, "callback write 0x%" PRIx64 " of a range nothing accesses", addr);
    return -1;
}

static const vx_io_ops never_ops = {
    .size = sizeof(vx_io_ops), .read = never_read, .write = never_write};

/* Run vCPU 0 to its hlt, answering the exits from the script. */
static void run_script(guest *g, script *s)
{
    vx_exit e;
    guest_exit_init(&e);
    for (size_t round = 0;; round++) {
        ck_assert_msg(round <= s->count, "%s: more exits than scripted accesses", g->label);
        guest_run_vcpu(g, g->v, &e);
        ck_assert_msg(s->error[0] == '\0', "%s: %s", g->label, s->error);
        if (e.reason == VX_EXIT_HLT)
            break;
        char what[160];
        guest_describe_exit(&e, what, sizeof(what));
        if (e.reason == VX_EXIT_IO) {
            uint64_t value = e.u.io.value;
            ck_assert_msg(e.u.io.is_write <= 1, "%s: io exit is_write = %u", g->label,
                          e.u.io.is_write);
            script_take(s, PIO, e.u.io.is_write, e.u.io.port, e.u.io.len, &value, "exit");
            e.u.io.value = value;
        } else if (e.reason == VX_EXIT_MMIO) {
            uint64_t value = e.u.mmio.value;
            ck_assert_msg(e.u.mmio.is_write <= 1, "%s: mmio exit is_write = %u", g->label,
                          e.u.mmio.is_write);
            script_take(s, MMIO, e.u.mmio.is_write, e.u.mmio.gpa, e.u.mmio.len, &value,
                        "exit");
            e.u.mmio.value = value;
        } else {
            ck_abort_msg("%s: unexpected exit %s after %zu accesses (last error \"%s\")",
                         g->label, what, s->next, vx_last_error());
        }
        s->exits++;
        ck_assert_msg(s->error[0] == '\0', "%s: %s", g->label, s->error);
        bool is_read = e.reason == VX_EXIT_IO ? !e.u.io.is_write : !e.u.mmio.is_write;
        if (s->stop_at_read && is_read && !s->stopped) {
            /* The answer is in the exit; the run that reports the stop must
             * not lose it. */
            s->stopped = true;
            ck_assert_int_eq(vx_vcpu_stop(g->v), 0);
            guest_run_vcpu(g, g->v, &e);
            ck_assert_msg(e.reason == VX_EXIT_STOPPED, "%s: exit %s after a stop, want stopped",
                          g->label, guest_describe_exit(&e, what, sizeof(what)));
        }
    }
    GUEST_EQ(g, "accesses made", s->next, s->count);
}

/* ------------------------------------------------------------------------ */
/* Modes: 16-, 32- and 64-bit code                                           */
/* ------------------------------------------------------------------------ */

START_TEST(test_real16)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "real16", VX_MODE_REAL))
        return;
    vx_x86_regs r = guest_get_regs(&g, g.v);
    r.rbx = 0x12340000;
    guest_set_regs(&g, g.v, &r);
    guest_run_to_hlt(&g);

    r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 0x34562345);
    GUEST_REG(&g, r, rbx, 0x12340000);
    GUEST_REG(&g, r, rcx, 0);
    GUEST_REG(&g, r, rdx, 55);
    GUEST_REG(&g, r, rsi, 0x12);
    GUEST_REG(&g, r, rdi, 0x5678);
    GUEST_REG(&g, r, rbp, 0x3456);
    GUEST_REG(&g, r, rsp, GUEST_STACK_TOP);
    GUEST_EQ(&g, "word at 0x8000", guest_read_u16(&g, 0x8000), 0x5678);
    GUEST_EQ(&g, "dword at 0x8004", guest_read_u32(&g, 0x8004), 0x34567800);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_prot32)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "prot32", VX_MODE_PROT32))
        return;
    guest_run_to_hlt(&g);

    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 0x55aa55aa);
    GUEST_REG(&g, r, rbx, 0x23456780);
    GUEST_REG(&g, r, rcx, 0);
    GUEST_REG(&g, r, rdx, 5050);
    GUEST_REG(&g, r, rsi, 1);
    GUEST_REG(&g, r, rdi, 0xdeadbeef);
    GUEST_REG(&g, r, rbp, 0x55aa55aa);
    GUEST_REG(&g, r, rsp, GUEST_STACK_TOP);
    GUEST_EQ(&g, "dword at 0x20000", guest_read_u32(&g, 0x20000), 0xdeadbeef);

    /* The guest reloaded every segment from the GDT: the caches say so. */
    vx_x86_sregs s = guest_get_sregs(&g, g.v);
    GUEST_EQ(&g, "cs.selector", s.cs.selector, VX_X86_SEL_CODE32);
    GUEST_EQ(&g, "cs.db", s.cs.db, 1);
    GUEST_EQ(&g, "cs.limit", s.cs.limit, 0xffffffffu);
    GUEST_EQ(&g, "ds.selector", s.ds.selector, VX_X86_SEL_DATA);
    GUEST_EQ(&g, "ds.limit", s.ds.limit, 0xffffffffu);
    GUEST_EQ(&g, "ss.selector", s.ss.selector, VX_X86_SEL_DATA);
    GUEST_EQ(&g, "gs.selector", s.gs.selector, VX_X86_SEL_DATA);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_long64)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "long64", VX_MODE_LONG64))
        return;
    guest_run_to_hlt(&g);

    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 4);
    GUEST_REG(&g, r, rdx, 2);
    GUEST_REG(&g, r, rcx, 4);
    GUEST_REG(&g, r, rbx, 0x12345678);
    GUEST_REG(&g, r, r8, 0x2222222222222222ull);
    GUEST_REG(&g, r, r9, 5);
    GUEST_REG(&g, r, r10, 0x300000000ull);
    GUEST_REG(&g, r, r11, 0x1100);
    GUEST_REG(&g, r, r12, 0xfeedfacecafebeefull);
    GUEST_REG(&g, r, r13, 0x0102030405060708ull);
    GUEST_REG(&g, r, r14, 0x0807060504030201ull);
    GUEST_REG(&g, r, r15, 0x0102030405060708ull);
    GUEST_REG(&g, r, rsp, GUEST_STACK_TOP);
    GUEST_EQ(&g, "qword at 0x20000", guest_read_u64(&g, 0x20000), 0x0102030405060708ull);

    vx_x86_sregs s = guest_get_sregs(&g, g.v);
    GUEST_EQ(&g, "cs.selector", s.cs.selector, VX_X86_SEL_CODE64);
    GUEST_EQ(&g, "cs.l", s.cs.l, 1);
    GUEST_EQ(&g, "ds.selector", s.ds.selector, VX_X86_SEL_DATA);
    GUEST_EQ(&g, "efer.LMA", s.efer & EFER_LMA, EFER_LMA);
    guest_destroy(&g);
}
END_TEST

static void check_flat_data(guest *g, const char *name, const vx_x86_segment *seg)
{
    char what[32];
    snprintf(what, sizeof(what), "%s.selector", name);
    GUEST_EQ(g, what, seg->selector, VX_X86_SEL_DATA);
    snprintf(what, sizeof(what), "%s.base", name);
    GUEST_EQ(g, what, seg->base, 0);
    snprintf(what, sizeof(what), "%s.limit", name);
    GUEST_EQ(g, what, seg->limit, 0xffffffffu);
    snprintf(what, sizeof(what), "%s.present", name);
    GUEST_EQ(g, what, seg->present, 1);
    snprintf(what, sizeof(what), "%s.type writable data", name);
    GUEST_EQ(g, what, seg->type & 0xa, 0x2);
}

/* What x86.h promises vx_vcpu_set_mode() leaves behind. */
START_TEST(test_set_mode_state)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        if (!guest_create(&g, ACCEL, 1, 0))
            return;
        int rc = vx_vcpu_set_mode(g.v, modes[i].mode, GUEST_TABLES_GPA);
        ck_assert_msg(rc == 0, "%s: set_mode %s: %s (%s)", g.label, modes[i].bits,
                      vx_strerror(rc), vx_last_error());
        vx_x86_regs r = guest_get_regs(&g, g.v);
        vx_x86_sregs s = guest_get_sregs(&g, g.v);
        GUEST_REG(&g, r, rflags, 0x2);
        GUEST_EQ(&g, "cs.base", s.cs.base, 0);
        GUEST_EQ(&g, "cs.dpl", s.cs.dpl, 0);

        switch (modes[i].mode) {
        case VX_MODE_REAL:
            GUEST_EQ(&g, "cr0.PE", s.cr0 & CR0_PE, 0);
            GUEST_EQ(&g, "efer.LMA", s.efer & EFER_LMA, 0);
            GUEST_EQ(&g, "cs.selector", s.cs.selector, 0);
            GUEST_EQ(&g, "cs.limit", s.cs.limit, 0xffff);
            GUEST_EQ(&g, "ds.selector", s.ds.selector, 0);
            GUEST_EQ(&g, "ds.base", s.ds.base, 0);
            GUEST_EQ(&g, "ds.limit", s.ds.limit, 0xffff);
            GUEST_EQ(&g, "ss.base", s.ss.base, 0);
            GUEST_EQ(&g, "ss.limit", s.ss.limit, 0xffff);
            break;
        case VX_MODE_PROT32:
            GUEST_EQ(&g, "cr0.PE", s.cr0 & CR0_PE, CR0_PE);
            GUEST_EQ(&g, "cr0.PG", s.cr0 & CR0_PG, 0);
            GUEST_EQ(&g, "efer.LMA", s.efer & EFER_LMA, 0);
            GUEST_EQ(&g, "cs.selector", s.cs.selector, VX_X86_SEL_CODE32);
            GUEST_EQ(&g, "cs.limit", s.cs.limit, 0xffffffffu);
            GUEST_EQ(&g, "cs.db", s.cs.db, 1);
            GUEST_EQ(&g, "cs.type code", s.cs.type & 0x8, 0x8);
            check_flat_data(&g, "ds", &s.ds);
            check_flat_data(&g, "es", &s.es);
            check_flat_data(&g, "ss", &s.ss);
            GUEST_EQ(&g, "ss.db", s.ss.db, 1);
            GUEST_EQ(&g, "gdt.base", s.gdt.base, GUEST_TABLES_GPA + 0x6000);
            ck_assert_msg(s.gdt.limit >= VX_X86_SEL_TSS + 15, "%s: gdt.limit 0x%x misses the TSS",
                          g.label, s.gdt.limit);
            break;
        case VX_MODE_LONG64: {
            GUEST_EQ(&g, "cr0.PE|PG", s.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
            GUEST_EQ(&g, "cr4.PAE|OSFXSR", s.cr4 & (CR4_PAE | CR4_OSFXSR),
                     CR4_PAE | CR4_OSFXSR);
            GUEST_EQ(&g, "efer.SCE|LME|LMA|NXE",
                     s.efer & (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE),
                     EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE);
            GUEST_EQ(&g, "cr3", s.cr3 & ~0xfffull, GUEST_TABLES_GPA);
            GUEST_EQ(&g, "cs.selector", s.cs.selector, VX_X86_SEL_CODE64);
            GUEST_EQ(&g, "cs.l", s.cs.l, 1);
            GUEST_EQ(&g, "cs.db", s.cs.db, 0);
            GUEST_EQ(&g, "ds.selector", s.ds.selector, VX_X86_SEL_DATA);
            GUEST_EQ(&g, "gdt.base", s.gdt.base, GUEST_TABLES_GPA + 0x6000);
            /* The page tables where x86.h says, identity-mapping 4 GiB with
             * 2 MiB pages that are present, writable, user and executable. */
            const uint64_t addr_mask = 0x000ffffffffff000ull;
            uint64_t pml4e = guest_read_u64(&g, GUEST_TABLES_GPA);
            GUEST_EQ(&g, "PML4[0] address", pml4e & addr_mask, GUEST_TABLES_GPA + 0x1000);
            GUEST_EQ(&g, "PML4[0] present", pml4e & 1, 1);
            for (unsigned j = 0; j < 4; j++) {
                uint64_t pdpte = guest_read_u64(&g, GUEST_TABLES_GPA + 0x1000 + 8 * j);
                GUEST_EQ(&g, "PDPT entry address", pdpte & addr_mask,
                         GUEST_TABLES_GPA + 0x2000 + 0x1000 * j);
                uint64_t pde = guest_read_u64(&g, GUEST_TABLES_GPA + 0x2000 + 0x1000 * j + 8 * 511);
                GUEST_EQ(&g, "last PDE of a directory", pde & (addr_mask | 0x87ull | (1ull << 63)),
                         ((uint64_t)j << 30) + (511ull << 21) + 0x87);
            }
            break;
        }
        }
        guest_destroy(&g);
    }

    guest g;
    if (!guest_create(&g, ACCEL, 1, 0))
        return;
    /* The tables would run past the end of RAM. */
    int rc = vx_vcpu_set_mode(g.v, VX_MODE_LONG64, GUEST_RAM_SIZE - 0x4000);
    GUEST_EQ(&g, "set_mode with tables past RAM", rc, VX_ERANGE);
    rc = vx_vcpu_set_mode(g.v, VX_MODE_PROT32, GUEST_TABLES_GPA + 0x800);
    ck_assert_msg(rc < 0, "%s: set_mode accepted unaligned tables", g.label);
    rc = vx_vcpu_set_mode(g.v, (vx_cpu_mode)9, GUEST_TABLES_GPA);
    GUEST_EQ(&g, "set_mode with mode 9", rc, VX_EINVAL);
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Port I/O                                                                  */
/* ------------------------------------------------------------------------ */

static void check_pio_regs(guest *g)
{
    vx_x86_regs r = guest_get_regs(g, g->v);
    GUEST_REG(g, r, rbx, 0xffffffa1);
    GUEST_REG(g, r, rcx, 0xffffb2c2);
    GUEST_REG(g, r, rax, 0xd4e4f404);
}

START_TEST(test_pio)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        char name[16];
        snprintf(name, sizeof(name), "pio%s", modes[i].bits);
        if (!guest_setup(&g, ACCEL, name, modes[i].mode))
            return;
        script s;
        script_init(&s, pio_script, sizeof(pio_script) / sizeof(pio_script[0]), true, g.v);
        /* vx.h: the ops are copied, so this one may die after the call. */
        vx_io_ops ops = script_pio_ops;
        int rc = vx_pio_register(g.m, GUEST_PORT, 8, &ops, &s);
        ck_assert_msg(rc == 0, "%s: vx_pio_register: %s (%s)", g.label, vx_strerror(rc),
                      vx_last_error());
        memset(&ops, 0, sizeof(ops));

        run_script(&g, &s);
        GUEST_EQ(&g, name, s.exits, 0);
        GUEST_EQ(&g, "callbacks", s.callbacks, s.count);
        check_pio_regs(&g);
        ck_assert_ptr_null(vx_vcpu_current());
        guest_destroy(&g);
    }
}
END_TEST

/* A claimed range ends where it says: port 0x17 is just past it. */
START_TEST(test_pio_range_end)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "pio32", VX_MODE_PROT32))
        return;
    script s;
    script_init(&s, pio_script, sizeof(pio_script) / sizeof(pio_script[0]), true, g.v);
    char never_error[512] = "";
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 7, &script_pio_ops, &s), 0);
    ck_assert_int_eq(vx_pio_register(g.m, 0x18, 1, &never_ops, never_error), 0);
    ck_assert_int_eq(vx_pio_register(g.m, 0x0f, 1, &never_ops, never_error), 0);
    /* Overlaps are refused. */
    GUEST_EQ(&g, "overlapping vx_pio_register",
             vx_pio_register(g.m, 0x16, 2, &never_ops, never_error), VX_EEXIST);

    run_script(&g, &s);
    ck_assert_msg(never_error[0] == '\0', "%s: %s", g.label, never_error);
    GUEST_EQ(&g, "exits (the write to 0x17)", s.exits, 1);
    GUEST_EQ(&g, "callbacks", s.callbacks, s.count - 1);
    check_pio_regs(&g);
    guest_destroy(&g);
}
END_TEST

/* Nobody claims the ports: every access is a VX_EXIT_IO, and reads complete
 * with the value the application stores in the exit. */
START_TEST(test_io_exit)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        char name[16];
        snprintf(name, sizeof(name), "pio%s", modes[i].bits);
        if (!guest_setup(&g, ACCEL, name, modes[i].mode))
            return;
        /* A range registered and removed again claims nothing. */
        char never_error[512] = "";
        ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 8, &never_ops, never_error), 0);
        ck_assert_int_eq(vx_pio_unregister(g.m, GUEST_PORT), 0);
        GUEST_EQ(&g, "second vx_pio_unregister", vx_pio_unregister(g.m, GUEST_PORT), VX_ENOENT);

        script s;
        script_init(&s, pio_script, sizeof(pio_script) / sizeof(pio_script[0]), true, g.v);
        run_script(&g, &s);
        ck_assert_msg(never_error[0] == '\0', "%s: %s", g.label, never_error);
        GUEST_EQ(&g, name, s.callbacks, 0);
        GUEST_EQ(&g, "exits", s.exits, s.count);
        check_pio_regs(&g);
        guest_destroy(&g);
    }
}
END_TEST

/* String I/O: one callback per element, in order, with the data landing in
 * guest memory for ins. See tests/guests/string32.asm. */
typedef struct string_dev {
    vx_vcpu *vcpu;
    unsigned writes;
    uint8_t write_len[16];
    uint64_t write_value[16];
    unsigned reads;
    char error[512];
} string_dev;

#define STRING_BIG_COUNT 5000u
#define STRING_BIG_GPA 0x20ff0u

/* The element-size sequence of the reads: 4 insb, 3 insw, 2 insd, then
 * STRING_BIG_COUNT insb. */
static unsigned string_read_len(unsigned n)
{
    return n < 4 ? 1 : n < 7 ? 2 : n < 9 ? 4 : 1;
}

/* Read n gives n+1 in every byte, so order and size both show. */
static uint64_t string_read_value(unsigned n, unsigned len)
{
    uint64_t v = (uint64_t)((n + 1) & 0xff) * 0x0101010101010101ull;
    return len == 8 ? v : v & ((1ull << (8 * len)) - 1);
}

static int string_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    string_dev *d = opaque;
    if (addr != GUEST_PORT)
        set_error(d->error, sizeof(d->error), "write to port 0x%" PRIx64, addr);
    if (vx_vcpu_current() != d->vcpu)
        set_error(d->error, sizeof(d->error), "vx_vcpu_current() wrong in a write callback");
    if (d->writes < 16) {
        d->write_len[d->writes] = (uint8_t)len;
        d->write_value[d->writes] = value;
    }
    d->writes++;
    return 0;
}

static int string_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    string_dev *d = opaque;
    unsigned n = d->reads++;
    if (addr != GUEST_PORT)
        set_error(d->error, sizeof(d->error), "read %u from port 0x%" PRIx64, n, addr);
    if (len != string_read_len(n))
        set_error(d->error, sizeof(d->error), "read %u has len %u, want %u", n, len,
                  string_read_len(n));
    *value = string_read_value(n, len);
    return 0;
}

/* What string32.asm leaves behind, however its accesses were delivered. */
static void check_string_io(guest *g, const string_dev *d)
{
    ck_assert_msg(d->error[0] == '\0', "%s: %s", g->label, d->error);

    static const struct { uint8_t len; uint64_t value; } want_writes[] = {
        {1, 'H'}, {1, 'e'}, {1, 'l'}, {1, 'l'}, {1, 'o'},
        {2, 0x1111}, {2, 0x2222}, {2, 0x3333},
        {4, 0x44444444}, {4, 0x55555555},
        {1, 'l'}, {1, 'e'}, {1, 'H'}, /* rep outsb with DF = 1 */
    };
    const unsigned nwrites = sizeof(want_writes) / sizeof(want_writes[0]);
    GUEST_EQ(g, "writes", d->writes, nwrites);
    for (unsigned i = 0; i < nwrites; i++) {
        char what[48];
        snprintf(what, sizeof(what), "write %u len", i);
        GUEST_EQ(g, what, d->write_len[i], want_writes[i].len);
        snprintf(what, sizeof(what), "write %u value", i);
        GUEST_EQ(g, what, d->write_value[i], want_writes[i].value);
    }

    GUEST_EQ(g, "reads", d->reads, 9 + STRING_BIG_COUNT);
    unsigned char want[18], got[18];
    unsigned off = 0;
    for (unsigned n = 0; n < 9; n++) {
        unsigned len = string_read_len(n);
        uint64_t v = string_read_value(n, len);
        for (unsigned b = 0; b < len; b++)
            want[off++] = (unsigned char)(v >> (8 * b));
    }
    guest_read(g, GUEST_DATA_GPA, got, sizeof(got));
    for (unsigned b = 0; b < sizeof(want); b++) {
        char what[48];
        snprintf(what, sizeof(what), "byte at 0x%x", GUEST_DATA_GPA + b);
        GUEST_EQ(g, what, got[b], want[b]);
    }
    unsigned char *big = malloc(STRING_BIG_COUNT);
    ck_assert(big != NULL);
    guest_read(g, STRING_BIG_GPA, big, STRING_BIG_COUNT);
    for (unsigned k = 0; k < STRING_BIG_COUNT; k++) {
        if (big[k] != (unsigned char)(10 + k)) {
            char what[64];
            snprintf(what, sizeof(what), "rep insb byte %u at 0x%x", k, STRING_BIG_GPA + k);
            GUEST_EQ(g, what, big[k], (unsigned char)(10 + k));
        }
    }
    free(big);

    vx_x86_regs r = guest_get_regs(g, g->v);
    GUEST_REG(g, r, rcx, 0);
    GUEST_REG(g, r, rdi, STRING_BIG_GPA + STRING_BIG_COUNT);
    GUEST_REG(g, r, rsi, 0x1100 - 1); /* after the backwards outsb from 0x1102 */
    GUEST_EQ(g, "rflags.DF", r.rflags & RFLAGS_DF, 0);
}

START_TEST(test_string_io)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "string32", VX_MODE_PROT32))
        return;
    string_dev d;
    memset(&d, 0, sizeof(d));
    d.vcpu = g.v;
    const vx_io_ops ops = {.size = sizeof(ops), .read = string_read, .write = string_write};
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 1, &ops, &d), 0);
    guest_run_to_hlt(&g);
    check_string_io(&g, &d);
    guest_destroy(&g);
}
END_TEST

/* The same with nobody claiming the port: one VX_EXIT_IO per element, as
 * with callbacks, each read completed from the exit. */
START_TEST(test_string_io_exit)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "string32", VX_MODE_PROT32))
        return;
    string_dev d;
    memset(&d, 0, sizeof(d));
    vx_exit e;
    guest_exit_init(&e);
    const unsigned most = 13 + 9 + STRING_BIG_COUNT;
    for (unsigned n = 0;; n++) {
        ck_assert_msg(n <= most, "%s: more than %u exits", g.label, most);
        guest_run_vcpu(&g, g.v, &e);
        if (e.reason == VX_EXIT_HLT)
            break;
        char what[160];
        ck_assert_msg(e.reason == VX_EXIT_IO, "%s: exit %s after %u exits (%s)", g.label,
                      guest_describe_exit(&e, what, sizeof(what)), n, vx_last_error());
        if (e.u.io.is_write) {
            string_write(&d, e.u.io.port, e.u.io.len, e.u.io.value);
        } else {
            uint64_t value = 0;
            string_read(&d, e.u.io.port, e.u.io.len, &value);
            e.u.io.value = value;
        }
    }
    check_string_io(&g, &d);
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* MMIO                                                                      */
/* ------------------------------------------------------------------------ */

static void check_mmio_regs(guest *g, vx_cpu_mode mode)
{
    vx_x86_regs r = guest_get_regs(g, g->v);
    GUEST_REG(g, r, rbx, 0xffffff5a);
    GUEST_REG(g, r, rcx, 0xffff5aa5);
    GUEST_REG(g, r, rdx, 0xdeadbeef);
    if (mode == VX_MODE_LONG64)
        GUEST_REG(g, r, rsi, 0x0123456789abcdefull);
}

START_TEST(test_mmio)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        char name[16];
        snprintf(name, sizeof(name), "mmio%s", modes[i].bits);
        if (!guest_setup(&g, ACCEL, name, modes[i].mode))
            return;
        script s;
        script_init(&s, mmio_script, sizeof(mmio_script) / sizeof(mmio_script[0]),
                    modes[i].mode == VX_MODE_LONG64, g.v);
        int rc = vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x100, &script_mmio_ops, &s);
        ck_assert_msg(rc == 0, "%s: vx_mmio_register: %s (%s)", g.label, vx_strerror(rc),
                      vx_last_error());
        run_script(&g, &s);
        GUEST_EQ(&g, name, s.exits, 0);
        GUEST_EQ(&g, "callbacks", s.callbacks, s.count);
        check_mmio_regs(&g, modes[i].mode);
        guest_destroy(&g);
    }
}
END_TEST

/* A claimed MMIO range ends where it says, with no alignment: the dword at
 * 0xa0020 lies just past [0xa0000, 0xa0020) and just before a range at
 * 0xa0024, so it exits; the rest goes to the callbacks. */
START_TEST(test_mmio_range_end)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "mmio64", VX_MODE_LONG64))
        return;
    script s;
    script_init(&s, mmio_script, sizeof(mmio_script) / sizeof(mmio_script[0]), true, g.v);
    char never_error[512] = "";
    ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x20, &script_mmio_ops, &s), 0);
    ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA + 0x24, 3, &never_ops, never_error),
                     0);
    GUEST_EQ(&g, "vx_mmio_register overlapping a range",
             vx_mmio_register(g.m, GUEST_MMIO_GPA + 0x1f, 2, &never_ops, never_error), VX_EEXIST);
    GUEST_EQ(&g, "vx_mmio_register overlapping RAM",
             vx_mmio_register(g.m, GUEST_RAM_SIZE - 1, 2, &never_ops, never_error), VX_EEXIST);

    run_script(&g, &s);
    ck_assert_msg(never_error[0] == '\0', "%s: %s", g.label, never_error);
    GUEST_EQ(&g, "exits (the or at 0xa0020)", s.exits, 2);
    GUEST_EQ(&g, "callbacks", s.callbacks, s.count - 2);
    check_mmio_regs(&g, VX_MODE_LONG64);
    guest_destroy(&g);
}
END_TEST

/* Unclaimed MMIO: every access is a VX_EXIT_MMIO; reads complete with
 * exit->u.mmio.value. */
START_TEST(test_mmio_exit)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        char name[16];
        snprintf(name, sizeof(name), "mmio%s", modes[i].bits);
        if (!guest_setup(&g, ACCEL, name, modes[i].mode))
            return;
        char never_error[512] = "";
        ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x100, &never_ops, never_error),
                         0);
        ck_assert_int_eq(vx_mmio_unregister(g.m, GUEST_MMIO_GPA), 0);
        GUEST_EQ(&g, "second vx_mmio_unregister", vx_mmio_unregister(g.m, GUEST_MMIO_GPA),
                 VX_ENOENT);

        script s;
        script_init(&s, mmio_script, sizeof(mmio_script) / sizeof(mmio_script[0]),
                    modes[i].mode == VX_MODE_LONG64, g.v);
        run_script(&g, &s);
        ck_assert_msg(never_error[0] == '\0', "%s: %s", g.label, never_error);
        GUEST_EQ(&g, name, s.callbacks, 0);
        GUEST_EQ(&g, "exits", s.exits, s.count);
        check_mmio_regs(&g, modes[i].mode);
        guest_destroy(&g);
    }
}
END_TEST

/* vx.h: a NULL read returns all ones, a NULL write ignores the store; the
 * access is still claimed (no exit). */
START_TEST(test_null_callbacks)
{
    const vx_io_ops none = {.size = sizeof(none), .read = NULL, .write = NULL};
    guest g;
    if (!guest_setup(&g, ACCEL, "pio32", VX_MODE_PROT32))
        return;
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 8, &none, NULL), 0);
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rbx, 0xffffffff);
    GUEST_REG(&g, r, rcx, 0xffffffff);
    GUEST_REG(&g, r, rax, 0xffffffff);
    guest_destroy(&g);

    if (!guest_setup(&g, ACCEL, "mmio64", VX_MODE_LONG64))
        return;
    ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x100, &none, NULL), 0);
    guest_run_to_hlt(&g);
    r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rbx, 0xffffffff);
    GUEST_REG(&g, r, rcx, 0xffffffff);
    GUEST_REG(&g, r, rdx, 0xffffffff);
    GUEST_REG(&g, r, rsi, 0xffffffffffffffffull);
    guest_destroy(&g);
}
END_TEST

/* VX_MACHINE_IGNORE_UNCLAIMED_IO: unclaimed ports read as all ones and
 * swallow writes, as on a PC; unclaimed MMIO still exits. */
START_TEST(test_ignore_unclaimed_io)
{
    guest g;
    if (!guest_create(&g, ACCEL, 1, VX_MACHINE_IGNORE_UNCLAIMED_IO))
        return;
    guest_load(&g, "pio32");
    guest_start_vcpu(&g, g.v, VX_MODE_PROT32);
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rbx, 0xffffffff);
    GUEST_REG(&g, r, rcx, 0xffffffff);
    GUEST_REG(&g, r, rax, 0xffffffff);
    guest_destroy(&g);

    if (!guest_create(&g, ACCEL, 1, VX_MACHINE_IGNORE_UNCLAIMED_IO))
        return;
    guest_load(&g, "mmio32");
    guest_start_vcpu(&g, g.v, VX_MODE_PROT32);
    script s;
    script_init(&s, mmio_script, sizeof(mmio_script) / sizeof(mmio_script[0]), false, g.v);
    run_script(&g, &s);
    GUEST_EQ(&g, "mmio exits", s.exits, s.count);
    check_mmio_regs(&g, VX_MODE_PROT32);
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* ROM                                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(test_rom)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "rom32", VX_MODE_PROT32))
        return;
    static unsigned char rom[GUEST_ROM_SIZE];
    memset(rom, 0, sizeof(rom));
    static const unsigned char head[] = {0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55};
    memcpy(rom, head, sizeof(head));
    for (unsigned i = 0; i < 4; i++)
        memcpy(rom + 0x10 + 4 * i, "\xcc\xbb\xaa\x99", 4);
    /* mov edx, 0x600d; ret */
    memcpy(rom + 0x100, "\xba\x0d\x60\x00\x00\xc3", 6);

    int rc = vx_memory_map(g.m, GUEST_ROM_GPA, GUEST_ROM_SIZE, NULL, VX_MEM_READ | VX_MEM_EXEC);
    ck_assert_msg(rc == 0, "%s: mapping ROM: %s (%s)", g.label, vx_strerror(rc),
                  vx_last_error());
    /* The host may load a ROM with vx_memory_write. */
    guest_write(&g, GUEST_ROM_GPA, rom, sizeof(rom));

    /* The dropped writes never reach the application as exits. */
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 0x11223344);
    GUEST_REG(&g, r, rbx, 0x55667788);
    GUEST_REG(&g, r, rsi, 0x99aabbcc);
    GUEST_REG(&g, r, rdx, 0x600d);
    GUEST_REG(&g, r, rcx, 0xdddddddd);

    static unsigned char after[GUEST_ROM_SIZE];
    guest_read(&g, GUEST_ROM_GPA, after, sizeof(after));
    for (unsigned i = 0; i < sizeof(rom); i++) {
        if (after[i] != rom[i]) {
            char what[48];
            snprintf(what, sizeof(what), "ROM byte at 0x%x", GUEST_ROM_GPA + i);
            GUEST_EQ(&g, what, after[i], rom[i]);
        }
    }
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Exits: hlt, failing callbacks, triple fault                               */
/* ------------------------------------------------------------------------ */

START_TEST(test_hlt)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        if (!guest_setup(&g, ACCEL, "hlt", modes[i].mode))
            return;
        vx_exit e;
        guest_exit_init(&e);
        guest_run_expect(&g, &e, VX_EXIT_HLT);
        vx_x86_regs r = guest_get_regs(&g, g.v);
        GUEST_EQ(&g, modes[i].bits, r.rip, GUEST_CODE_GPA + 0x11);
        /* Running again resumes after the hlt. */
        guest_run_expect(&g, &e, VX_EXIT_HLT);
        r = guest_get_regs(&g, g.v);
        GUEST_EQ(&g, modes[i].bits, r.rip, GUEST_CODE_GPA + 0x21);
        guest_destroy(&g);
    }
}
END_TEST

#define CALLBACK_FAILURE (-77)

static int failing_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    (void)addr;
    (void)len;
    (void)value;
    ++*(unsigned *)opaque;
    return CALLBACK_FAILURE;
}

static int failing_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)addr;
    (void)len;
    (void)value;
    ++*(unsigned *)opaque;
    return CALLBACK_FAILURE;
}

/* A callback's failure stops the vCPU with VX_EXIT_INTERNAL and says why. */
START_TEST(test_callback_error)
{
    static const char *const kinds[] = {"pio write", "pio read", "mmio write", "mmio read"};
    const vx_io_ops ops = {.size = sizeof(ops), .read = failing_read, .write = failing_write};
    for (unsigned kind = 0; kind < 4; kind++) {
        guest g;
        if (!guest_setup(&g, ACCEL, "cbfail32", VX_MODE_PROT32))
            return;
        unsigned calls = 0;
        ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 1, &ops, &calls), 0);
        ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x10, &ops, &calls), 0);
        vx_x86_regs r = guest_get_regs(&g, g.v);
        r.rbx = kind;
        guest_set_regs(&g, g.v, &r);

        vx_exit e;
        guest_exit_init(&e);
        guest_run_vcpu(&g, g.v, &e);
        char why[512];
        snprintf(why, sizeof(why), "%s", vx_last_error());
        char what[160];
        ck_assert_msg(e.reason == VX_EXIT_INTERNAL, "%s: %s: exit %s, want internal", g.label,
                      kinds[kind], guest_describe_exit(&e, what, sizeof(what)));
        GUEST_EQ(&g, kinds[kind], calls, 1);
        ck_assert_msg(why[0] != '\0', "%s: %s: vx_last_error() is empty after the exit",
                      g.label, kinds[kind]);
        /* vx.h: "the return value and the access are named in vx_last_error()". */
        ck_assert_msg(strstr(why, "77") != NULL,
                      "%s: %s: vx_last_error() \"%s\" does not name the return value -77",
                      g.label, kinds[kind], why);
        guest_destroy(&g);
    }
}
END_TEST

/* Protected and long mode only: in real mode the IDT limit check that would
 * turn the #UD into a triple fault is missing from KVM's instruction
 * emulator, which runs ring-0 code under a software KVM such as kvm_pvm
 * (it delivers through IVT entry 6 regardless), so the test could not pass
 * there. */
START_TEST(test_triple_fault)
{
    for (size_t i = 1; i < MODE_COUNT; i++) {
        guest g;
        char name[16];
        snprintf(name, sizeof(name), "triple%s", modes[i].bits);
        if (!guest_setup(&g, ACCEL, name, modes[i].mode))
            return;
        vx_exit e;
        guest_exit_init(&e);
        guest_run_expect(&g, &e, VX_EXIT_SHUTDOWN);
        GUEST_EQ(&g, name, e.u.shutdown.kind, VX_SHUTDOWN_TRIPLE_FAULT);
        guest_destroy(&g);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* vx_vcpu_current()                                                         */
/* ------------------------------------------------------------------------ */

typedef struct current_log {
    unsigned count;
    vx_vcpu *vcpu[8];
    uint64_t value[8];
    uint8_t space[8];
} current_log;

static void current_note(current_log *l, uint8_t space, uint64_t value)
{
    if (l->count < 8) {
        l->vcpu[l->count] = vx_vcpu_current();
        l->value[l->count] = value;
        l->space[l->count] = space;
    }
    l->count++;
}

static int current_pio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)addr;
    (void)len;
    current_note(opaque, PIO, value);
    return 0;
}

static int current_mmio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)addr;
    (void)len;
    current_note(opaque, MMIO, value);
    return 0;
}

/* Two vCPUs of one machine, run one after the other, vCPU 1 first: each
 * callback sees the vCPU whose access it is. */
START_TEST(test_current)
{
    guest g;
    if (!guest_create(&g, ACCEL, 2, 0))
        return;
    guest_load(&g, "current32");
    vx_vcpu *v1 = vx_machine_vcpu(g.m, 1);
    ck_assert_ptr_nonnull(v1);
    ck_assert_ptr_null(vx_machine_vcpu(g.m, 2));
    GUEST_EQ(&g, "vx_vcpu_index(v1)", vx_vcpu_index(v1), 1);
    ck_assert_ptr_eq(vx_vcpu_machine(v1), g.m);

    current_log log;
    memset(&log, 0, sizeof(log));
    const vx_io_ops pio = {.size = sizeof(pio), .write = current_pio_write};
    const vx_io_ops mmio = {.size = sizeof(mmio), .write = current_mmio_write};
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 1, &pio, &log), 0);
    ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x10, &mmio, &log), 0);

    vx_vcpu *order[2] = {v1, g.v};
    for (unsigned k = 0; k < 2; k++) {
        guest_start_vcpu(&g, order[k], VX_MODE_PROT32);
        vx_x86_regs r = guest_get_regs(&g, order[k]);
        r.rax = 0x40 + vx_vcpu_index(order[k]);
        guest_set_regs(&g, order[k], &r);
    }
    ck_assert_ptr_null(vx_vcpu_current());
    for (unsigned k = 0; k < 2; k++) {
        vx_exit e;
        guest_exit_init(&e);
        guest_run_vcpu(&g, order[k], &e);
        char what[160];
        ck_assert_msg(e.reason == VX_EXIT_HLT, "%s: vCPU %u: exit %s, want hlt (%s)", g.label,
                      vx_vcpu_index(order[k]), guest_describe_exit(&e, what, sizeof(what)),
                      vx_last_error());
        ck_assert_ptr_null(vx_vcpu_current());
    }

    GUEST_EQ(&g, "callbacks", log.count, 4);
    for (unsigned c = 0; c < 4; c++) {
        vx_vcpu *want = order[c / 2];
        ck_assert_msg(log.vcpu[c] == want,
                      "%s: callback %u (%s): vx_vcpu_current() = %p, want vCPU %u (%p)",
                      g.label, c, log.space[c] == PIO ? "pio" : "mmio", (void *)log.vcpu[c],
                      vx_vcpu_index(want), (void *)want);
        GUEST_EQ(&g, "value written", log.value[c], 0x40 + vx_vcpu_index(want));
        GUEST_EQ(&g, "callback kind", log.space[c], c % 2 == 0 ? PIO : MMIO);
    }
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Threads: two vCPUs at once, two machines at once, vx_vcpu_stop()          */
/* ------------------------------------------------------------------------ */

#define COUNT_ROUNDS 400u

typedef struct runner {
    vx_vcpu *v;
    pthread_barrier_t *start; /* NULL: start at once */
    int rc;
    vx_exit exit;
    char error[512];
} runner;

/* No Check assertions off the main thread: record, and let it judge. */
static void *runner_main(void *arg)
{
    runner *r = arg;
    memset(&r->exit, 0, sizeof(r->exit));
    r->exit.size = sizeof(r->exit);
    if (r->start != NULL)
        pthread_barrier_wait(r->start);
    r->rc = vx_vcpu_run(r->v, &r->exit);
    if (r->rc != 0 || r->exit.reason != VX_EXIT_HLT)
        snprintf(r->error, sizeof(r->error), "%s", vx_last_error());
    return NULL;
}

static void check_runner(guest *g, const char *who, runner *r)
{
    char what[160];
    ck_assert_msg(r->rc == 0, "%s: %s: vx_vcpu_run: %s (%s)", g->label, who,
                  vx_strerror(r->rc), r->error);
    ck_assert_msg(r->exit.reason == VX_EXIT_HLT, "%s: %s: exit %s, want hlt (%s)", g->label,
                  who, guest_describe_exit(&r->exit, what, sizeof(what)), r->error);
}

/* One device per machine, with its own callback functions (tag 'A' or 'B')
 * and its own answer, so any mix-up shows. */
typedef struct counter_dev {
    char tag;
    vx_machine *m;
    uint32_t next;    /* the value the next write must carry */
    uint32_t answer;  /* what reads return */
    unsigned writes, reads;
    char error[512];
} counter_dev;

static void counter_write(counter_dev *d, char tag, uint64_t addr, unsigned len,
                          uint64_t value)
{
    if (d->tag != tag)
        set_error(d->error, sizeof(d->error), "device %c got machine %c's write callback",
                  d->tag, tag);
    if (addr != GUEST_PORT || len != 4 || value != d->next)
        set_error(d->error, sizeof(d->error),
                  "write %u: port 0x%" PRIx64 " len %u value 0x%" PRIx64 ", want 0x%x",
                  d->writes, addr, len, value, d->next);
    vx_vcpu *v = vx_vcpu_current();
    if (v == NULL || vx_vcpu_machine(v) != d->m)
        set_error(d->error, sizeof(d->error), "vx_vcpu_current() is not machine %c's", d->tag);
    d->next++;
    d->writes++;
}

static void counter_read(counter_dev *d, char tag, uint64_t addr, unsigned len,
                         uint64_t *value)
{
    if (d->tag != tag)
        set_error(d->error, sizeof(d->error), "device %c got machine %c's read callback",
                  d->tag, tag);
    if (addr != GUEST_PORT + 4 || len != 4)
        set_error(d->error, sizeof(d->error), "read %u: port 0x%" PRIx64 " len %u", d->reads,
                  addr, len);
    vx_vcpu *v = vx_vcpu_current();
    if (v == NULL || vx_vcpu_machine(v) != d->m)
        set_error(d->error, sizeof(d->error), "vx_vcpu_current() is not machine %c's", d->tag);
    *value = d->answer;
    d->reads++;
}

static int counter_a_write(void *o, uint64_t a, unsigned l, uint64_t v)
{
    counter_write(o, 'A', a, l, v);
    return 0;
}

static int counter_a_read(void *o, uint64_t a, unsigned l, uint64_t *v)
{
    counter_read(o, 'A', a, l, v);
    return 0;
}

static int counter_b_write(void *o, uint64_t a, unsigned l, uint64_t v)
{
    counter_write(o, 'B', a, l, v);
    return 0;
}

static int counter_b_read(void *o, uint64_t a, unsigned l, uint64_t *v)
{
    counter_read(o, 'B', a, l, v);
    return 0;
}

/* Two machines run at once on two threads, the same program on the same
 * ports, each with its own callbacks: nothing crosses over. */
START_TEST(test_two_machines)
{
    static const vx_io_ops ops[2] = {
        {.size = sizeof(vx_io_ops), .read = counter_a_read, .write = counter_a_write},
        {.size = sizeof(vx_io_ops), .read = counter_b_read, .write = counter_b_write},
    };
    guest g[2];
    counter_dev dev[2];
    for (unsigned k = 0; k < 2; k++) {
        if (!guest_setup(&g[k], ACCEL, "count32", VX_MODE_PROT32)) {
            if (k == 1)
                guest_destroy(&g[0]);
            return;
        }
        memset(&dev[k], 0, sizeof(dev[k]));
        dev[k].tag = (char)('A' + k);
        dev[k].m = g[k].m;
        dev[k].next = 0x100000u * (k + 1);
        dev[k].answer = 0x11u * (k + 1);
        ck_assert_int_eq(vx_pio_register(g[k].m, GUEST_PORT, 8, &ops[k], &dev[k]), 0);
        vx_x86_regs r = guest_get_regs(&g[k], g[k].v);
        r.rbx = dev[k].next;
        r.rcx = COUNT_ROUNDS;
        guest_set_regs(&g[k], g[k].v, &r);
    }

    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
    runner run[2];
    pthread_t thread[2];
    for (unsigned k = 0; k < 2; k++) {
        memset(&run[k], 0, sizeof(run[k]));
        run[k].v = g[k].v;
        run[k].start = &start;
        ck_assert_int_eq(pthread_create(&thread[k], NULL, runner_main, &run[k]), 0);
    }
    for (unsigned k = 0; k < 2; k++)
        pthread_join(thread[k], NULL);
    pthread_barrier_destroy(&start);

    for (unsigned k = 0; k < 2; k++) {
        char who[16];
        snprintf(who, sizeof(who), "machine %c", dev[k].tag);
        check_runner(&g[k], who, &run[k]);
        ck_assert_msg(dev[k].error[0] == '\0', "%s: %s: %s", g[k].label, who, dev[k].error);
        GUEST_EQ(&g[k], "writes", dev[k].writes, COUNT_ROUNDS);
        GUEST_EQ(&g[k], "reads", dev[k].reads, COUNT_ROUNDS);
        vx_x86_regs r = guest_get_regs(&g[k], g[k].v);
        GUEST_REG(&g[k], r, rsi, (uint32_t)(COUNT_ROUNDS * dev[k].answer));
        GUEST_REG(&g[k], r, rbx, 0x100000u * (k + 1) + COUNT_ROUNDS);
    }
    guest_destroy(&g[0]);
    guest_destroy(&g[1]);
}
END_TEST

/* One machine, two vCPUs running at once on two threads, one device: in
 * every callback vx_vcpu_current() is the vCPU that made the access. vCPU k
 * writes values (k << 24) + i and reads k + 1. */
typedef struct smp_dev {
    vx_vcpu *vcpu[2];
    uint32_t next[2];
    atomic_uint writes[2], reads[2];
    atomic_uint wrong;
    char error[512];
    atomic_flag error_taken;
} smp_dev;

static void smp_error(smp_dev *d, const char *what, uint64_t value)
{
    atomic_fetch_add(&d->wrong, 1);
    if (!atomic_flag_test_and_set(&d->error_taken))
        snprintf(d->error, sizeof(d->error), "%s (value 0x%" PRIx64 ")", what, value);
}

static int smp_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    smp_dev *d = opaque;
    (void)addr;
    (void)len;
    unsigned k = (unsigned)(value >> 24);
    if (k > 1) {
        smp_error(d, "a write from no vCPU", value);
        return 0;
    }
    if (vx_vcpu_current() != d->vcpu[k])
        smp_error(d, "vx_vcpu_current() is not the writing vCPU", value);
    /* Only vCPU k's thread writes these values, so no race on next[k]. */
    if ((uint32_t)value != d->next[k])
        smp_error(d, "writes out of order", value);
    d->next[k] = (uint32_t)value + 1;
    atomic_fetch_add(&d->writes[k], 1);
    return 0;
}

static int smp_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    smp_dev *d = opaque;
    (void)addr;
    (void)len;
    vx_vcpu *v = vx_vcpu_current();
    unsigned k = v == d->vcpu[0] ? 0 : v == d->vcpu[1] ? 1 : 2;
    if (k > 1) {
        smp_error(d, "vx_vcpu_current() is neither vCPU in a read", 0);
        return 0;
    }
    *value = k + 1;
    atomic_fetch_add(&d->reads[k], 1);
    return 0;
}

START_TEST(test_current_smp)
{
    guest g;
    if (!guest_create(&g, ACCEL, 2, 0))
        return;
    guest_load(&g, "count32");
    smp_dev d;
    memset(&d, 0, sizeof(d));
    atomic_flag_clear(&d.error_taken);
    const vx_io_ops ops = {.size = sizeof(ops), .read = smp_read, .write = smp_write};
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 8, &ops, &d), 0);
    for (unsigned k = 0; k < 2; k++) {
        d.vcpu[k] = vx_machine_vcpu(g.m, k);
        ck_assert_ptr_nonnull(d.vcpu[k]);
        d.next[k] = k << 24;
        guest_start_vcpu(&g, d.vcpu[k], VX_MODE_PROT32);
        vx_x86_regs r = guest_get_regs(&g, d.vcpu[k]);
        r.rbx = d.next[k];
        r.rcx = COUNT_ROUNDS;
        guest_set_regs(&g, d.vcpu[k], &r);
    }

    pthread_barrier_t start;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
    runner run[2];
    pthread_t thread[2];
    for (unsigned k = 0; k < 2; k++) {
        memset(&run[k], 0, sizeof(run[k]));
        run[k].v = d.vcpu[k];
        run[k].start = &start;
        ck_assert_int_eq(pthread_create(&thread[k], NULL, runner_main, &run[k]), 0);
    }
    for (unsigned k = 0; k < 2; k++)
        pthread_join(thread[k], NULL);
    pthread_barrier_destroy(&start);

    for (unsigned k = 0; k < 2; k++) {
        char who[16];
        snprintf(who, sizeof(who), "vCPU %u", k);
        check_runner(&g, who, &run[k]);
    }
    ck_assert_msg(atomic_load(&d.wrong) == 0, "%s: %u bad callbacks, first: %s", g.label,
                  atomic_load(&d.wrong), d.error);
    for (unsigned k = 0; k < 2; k++) {
        GUEST_EQ(&g, "writes", atomic_load(&d.writes[k]), COUNT_ROUNDS);
        GUEST_EQ(&g, "reads", atomic_load(&d.reads[k]), COUNT_ROUNDS);
        vx_x86_regs r = guest_get_regs(&g, d.vcpu[k]);
        GUEST_REG(&g, r, rsi, COUNT_ROUNDS * (k + 1));
    }
    guest_destroy(&g);
}
END_TEST

/* tests/guests/spin32.asm: a counter and a flag in guest RAM. */
#define SPIN_COUNTER_GPA GUEST_DATA_GPA
#define SPIN_FLAG_GPA (GUEST_DATA_GPA + 4)

typedef struct stopper {
    vx_vcpu *v;
    volatile uint32_t *counter; /* the guest's counter, seen in place */
    pthread_t target;           /* for the signal variant */
    bool by_signal;
    bool saw_progress;
    struct timespec stopped_at;
    int rc;
} stopper;

static vx_vcpu *volatile signal_vcpu;
static volatile sig_atomic_t signal_rc = 1;

static void stop_on_signal(int sig)
{
    (void)sig;
    signal_rc = vx_vcpu_stop(signal_vcpu);
}

/* Wait until the guest is really looping, then stop it. */
static void *stopper_main(void *arg)
{
    stopper *s = arg;
    for (unsigned waited = 0; waited < 3000 && *s->counter == 0; waited++)
        sleep_ms(1);
    s->saw_progress = *s->counter != 0;
    sleep_ms(20);
    clock_gettime(CLOCK_MONOTONIC, &s->stopped_at);
    if (s->by_signal)
        s->rc = pthread_kill(s->target, SIGALRM);
    else
        s->rc = vx_vcpu_stop(s->v);
    return NULL;
}

static void stop_a_spinning_guest(vx_accel accel, bool by_signal)
{
    guest g;
    if (!guest_setup(&g, accel, "spin32", VX_MODE_PROT32))
        return;
    stopper s;
    memset(&s, 0, sizeof(s));
    s.v = g.v;
    s.by_signal = by_signal;
    s.target = pthread_self();
    s.counter = vx_memory_ptr(g.m, SPIN_COUNTER_GPA, 4);
    ck_assert_msg(s.counter != NULL, "%s: vx_memory_ptr: %s", g.label, vx_last_error());

    if (by_signal) {
        signal_vcpu = g.v;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = stop_on_signal;
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    }

    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, stopper_main, &s), 0);
    vx_exit e;
    guest_exit_init(&e);
    int rc = vx_vcpu_run(g.v, &e);
    struct timespec returned_at;
    clock_gettime(CLOCK_MONOTONIC, &returned_at);
    char why[512];
    snprintf(why, sizeof(why), "%s", vx_last_error());
    pthread_join(thread, NULL);

    ck_assert_msg(rc == 0, "%s: vx_vcpu_run: %s (%s)", g.label, vx_strerror(rc), why);
    ck_assert_msg(s.saw_progress, "%s: the guest's counter never moved", g.label);
    GUEST_EQ(&g, by_signal ? "pthread_kill" : "vx_vcpu_stop", s.rc, 0);
    if (by_signal)
        GUEST_EQ(&g, "vx_vcpu_stop in the signal handler", signal_rc, 0);
    char what[160];
    ck_assert_msg(e.reason == VX_EXIT_STOPPED, "%s: exit %s, want stopped (%s)", g.label,
                  guest_describe_exit(&e, what, sizeof(what)), why);
    double late = seconds_between(&s.stopped_at, &returned_at);
    ck_assert_msg(late < 1.0, "%s: vx_vcpu_run returned %.3f s after the stop", g.label, late);

    /* Stopped cleanly: the guest resumes where it was and, told to, halts
     * at its one hlt (the last byte of the program). */
    guest_write_u32(&g, SPIN_FLAG_GPA, 1);
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rip, GUEST_CODE_GPA + g.image_len);
    if (by_signal) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGALRM, &sa, NULL);
    }
    guest_destroy(&g);
}

START_TEST(test_stop_thread)
{
    stop_a_spinning_guest(ACCEL, false);
}
END_TEST

START_TEST(test_stop_signal)
{
    stop_a_spinning_guest(ACCEL, true);
}
END_TEST

/* vx.h: a stop while the vCPU is not running makes the next run return
 * VX_EXIT_STOPPED at once, without running the guest; the one after runs. */
START_TEST(test_stop_before_run)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "spin32", VX_MODE_PROT32))
        return;
    guest_write_u32(&g, SPIN_FLAG_GPA, 1);
    ck_assert_int_eq(vx_vcpu_stop(g.v), 0);
    vx_exit e;
    guest_exit_init(&e);
    guest_run_expect(&g, &e, VX_EXIT_STOPPED);
    GUEST_EQ(&g, "counter after the stopped run", guest_read_u32(&g, SPIN_COUNTER_GPA), 0);
    guest_run_expect(&g, &e, VX_EXIT_HLT);
    GUEST_EQ(&g, "counter after the next run", guest_read_u32(&g, SPIN_COUNTER_GPA), 1);
    guest_destroy(&g);
}
END_TEST

/* While a vCPU runs on one thread, another thread can neither run it nor
 * touch its registers (VX_EBUSY), and can stop it. */
typedef struct spinner {
    vx_vcpu *v;
    int rc;
    vx_exit exit;
    char error[512];
} spinner;

static void *spinner_main(void *arg)
{
    spinner *s = arg;
    memset(&s->exit, 0, sizeof(s->exit));
    s->exit.size = sizeof(s->exit);
    s->rc = vx_vcpu_run(s->v, &s->exit);
    snprintf(s->error, sizeof(s->error), "%s", vx_last_error());
    return NULL;
}

START_TEST(test_busy)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "spin32", VX_MODE_PROT32))
        return;
    volatile uint32_t *counter = vx_memory_ptr(g.m, SPIN_COUNTER_GPA, 4);
    ck_assert_ptr_nonnull((void *)counter);
    spinner sp;
    memset(&sp, 0, sizeof(sp));
    sp.v = g.v;
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, spinner_main, &sp), 0);
    for (unsigned waited = 0; waited < 3000 && *counter == 0; waited++)
        sleep_ms(1);
    bool running = *counter != 0;

    vx_exit e;
    guest_exit_init(&e);
    int run_rc = vx_vcpu_run(g.v, &e);
    vx_x86_regs r;
    int get_rc = vx_vcpu_get_regs(g.v, &r);
    vx_x86_sregs sr;
    int sget_rc = vx_vcpu_get_sregs(g.v, &sr);
    int stop_rc = vx_vcpu_stop(g.v);
    pthread_join(thread, NULL);

    ck_assert_msg(running, "%s: the guest's counter never moved", g.label);
    GUEST_EQ(&g, "vx_vcpu_run on a running vCPU", run_rc, VX_EBUSY);
    GUEST_EQ(&g, "vx_vcpu_get_regs on a running vCPU", get_rc, VX_EBUSY);
    GUEST_EQ(&g, "vx_vcpu_get_sregs on a running vCPU", sget_rc, VX_EBUSY);
    GUEST_EQ(&g, "vx_vcpu_stop", stop_rc, 0);
    ck_assert_msg(sp.rc == 0, "%s: vx_vcpu_run: %s (%s)", g.label, vx_strerror(sp.rc),
                  sp.error);
    char what[160];
    ck_assert_msg(sp.exit.reason == VX_EXIT_STOPPED, "%s: exit %s, want stopped (%s)", g.label,
                  guest_describe_exit(&sp.exit, what, sizeof(what)), sp.error);
    guest_destroy(&g);
}
END_TEST

/* A stop requested while the application answers a read exit: the next run
 * reports VX_EXIT_STOPPED, and the guest's read still completes with the
 * answer. */
START_TEST(test_stop_during_read_exit)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "pio32", VX_MODE_PROT32))
        return;
    script s;
    script_init(&s, pio_script, sizeof(pio_script) / sizeof(pio_script[0]), true, g.v);
    s.stop_at_read = true;
    run_script(&g, &s);
    ck_assert(s.stopped);
    check_pio_regs(&g);
    guest_destroy(&g);

    if (!guest_setup(&g, ACCEL, "mmio32", VX_MODE_PROT32))
        return;
    script_init(&s, mmio_script, sizeof(mmio_script) / sizeof(mmio_script[0]), false, g.v);
    s.stop_at_read = true;
    run_script(&g, &s);
    ck_assert(s.stopped);
    check_mmio_regs(&g, VX_MODE_PROT32);
    guest_destroy(&g);
}
END_TEST

/* A device stops its own vCPU from inside a callback (as a debug-exit port
 * would): the access completes, vx_vcpu_run returns VX_EXIT_STOPPED right
 * after the instruction, and the next run carries on. Running the vCPU
 * again from inside its own callback is refused. */
typedef struct stopping_dev {
    unsigned pio_writes, mmio_writes;
    int stop_rc, nested_rc;
} stopping_dev;

static int stopping_pio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    stopping_dev *d = opaque;
    (void)addr;
    (void)len;
    (void)value;
    d->pio_writes++;
    vx_exit e;
    memset(&e, 0, sizeof(e));
    e.size = sizeof(e);
    d->nested_rc = vx_vcpu_run(vx_vcpu_current(), &e);
    d->stop_rc = vx_vcpu_stop(vx_vcpu_current());
    return 0;
}

static int stopping_mmio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)addr;
    (void)len;
    (void)value;
    ((stopping_dev *)opaque)->mmio_writes++;
    return 0;
}

START_TEST(test_stop_from_callback)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "current32", VX_MODE_PROT32))
        return;
    stopping_dev d;
    memset(&d, 0, sizeof(d));
    const vx_io_ops pio = {.size = sizeof(pio), .write = stopping_pio_write};
    const vx_io_ops mmio = {.size = sizeof(mmio), .write = stopping_mmio_write};
    ck_assert_int_eq(vx_pio_register(g.m, GUEST_PORT, 1, &pio, &d), 0);
    ck_assert_int_eq(vx_mmio_register(g.m, GUEST_MMIO_GPA, 0x10, &mmio, &d), 0);

    vx_exit e;
    guest_exit_init(&e);
    guest_run_expect(&g, &e, VX_EXIT_STOPPED);
    GUEST_EQ(&g, "vx_vcpu_stop in the callback", d.stop_rc, 0);
    ck_assert_msg(d.nested_rc < 0, "%s: vx_vcpu_run inside the vCPU's own callback returned %d",
                  g.label, d.nested_rc);
    GUEST_EQ(&g, "pio writes", d.pio_writes, 1);
    GUEST_EQ(&g, "mmio writes when stopped", d.mmio_writes, 0);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rip, GUEST_CODE_GPA + 2); /* just after out 0x10, al */

    guest_run_expect(&g, &e, VX_EXIT_HLT);
    GUEST_EQ(&g, "pio writes", d.pio_writes, 1);
    GUEST_EQ(&g, "mmio writes", d.mmio_writes, 1);
    guest_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Register state                                                            */
/* ------------------------------------------------------------------------ */

#define REGS_FIELDS(X)                                                                   \
    X(rax) X(rbx) X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11)   \
    X(r12) X(r13) X(r14) X(r15)

START_TEST(test_regs_roundtrip)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "regs64", VX_MODE_LONG64))
        return;
    vx_x86_regs want;
    memset(&want, 0, sizeof(want));
    uint64_t seed = 0x0123456789abcdefull;
#define SET_DISTINCT(f) want.f = (seed = seed * 6364136223846793005ull + 1442695040888963407ull);
    REGS_FIELDS(SET_DISTINCT)
#undef SET_DISTINCT
    want.rip = GUEST_CODE_GPA;
    want.rflags = 0x2 | RFLAGS_CF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF;
    guest_set_regs(&g, g.v, &want);

    vx_x86_regs got = guest_get_regs(&g, g.v);
#define SAME(f) GUEST_EQ(&g, #f " read back", got.f, want.f);
    REGS_FIELDS(SAME) SAME(rip) SAME(rflags)
#undef SAME

    guest_run_to_hlt(&g);
    got = guest_get_regs(&g, g.v);
#define PLUS_ONE(f) GUEST_EQ(&g, #f " after the guest", got.f, want.f + 1);
    REGS_FIELDS(PLUS_ONE)
#undef PLUS_ONE
    GUEST_EQ(&g, "rip after the guest", got.rip, GUEST_CODE_GPA + g.image_len);
    GUEST_EQ(&g, "rflags after the guest", got.rflags & RFLAGS_ARITH,
             want.rflags & RFLAGS_ARITH);

    /* x86.h: rflags bit 1 always reads as 1. */
    got.rflags = RFLAGS_CF;
    guest_set_regs(&g, g.v, &got);
    got = guest_get_regs(&g, g.v);
    GUEST_EQ(&g, "rflags set to 0x1", got.rflags, 0x2 | RFLAGS_CF);
    guest_destroy(&g);
}
END_TEST

/* The first field that differs, or NULL. */
static const char *sregs_diff(const vx_x86_sregs *a, const vx_x86_sregs *b, char *buf,
                              size_t size)
{
#define SEG(n)                                                                             \
    if (a->n.base != b->n.base || a->n.limit != b->n.limit ||                              \
        a->n.selector != b->n.selector || a->n.type != b->n.type ||                        \
        a->n.present != b->n.present || a->n.dpl != b->n.dpl || a->n.db != b->n.db ||      \
        a->n.s != b->n.s || a->n.l != b->n.l || a->n.g != b->n.g || a->n.avl != b->n.avl) { \
        snprintf(buf, size,                                                                \
                 #n " (sel 0x%x base 0x%" PRIx64 " limit 0x%x type %u p%u dpl%u db%u s%u l%u " \
                 "g%u avl%u vs sel 0x%x base 0x%" PRIx64 " limit 0x%x type %u p%u dpl%u db%u " \
                 "s%u l%u g%u avl%u)",                                                     \
                 a->n.selector, a->n.base, a->n.limit, a->n.type, a->n.present, a->n.dpl,  \
                 a->n.db, a->n.s, a->n.l, a->n.g, a->n.avl, b->n.selector, b->n.base,      \
                 b->n.limit, b->n.type, b->n.present, b->n.dpl, b->n.db, b->n.s, b->n.l,   \
                 b->n.g, b->n.avl);                                                        \
        return buf;                                                                        \
    }
#define VAL(n)                                                                             \
    if (a->n != b->n) {                                                                    \
        snprintf(buf, size, #n " (0x%" PRIx64 " vs 0x%" PRIx64 ")", (uint64_t)a->n,        \
                 (uint64_t)b->n);                                                          \
        return buf;                                                                        \
    }
    SEG(cs) SEG(ds) SEG(es) SEG(fs) SEG(gs) SEG(ss) SEG(tr) SEG(ldt)
    VAL(gdt.base) VAL(gdt.limit) VAL(idt.base) VAL(idt.limit)
    VAL(cr0) VAL(cr2) VAL(cr3) VAL(cr4) VAL(cr8) VAL(efer) VAL(apic_base)
#undef SEG
#undef VAL
    return NULL;
}

/* get, set the same, get again: nothing changes, and the vCPU still runs. */
START_TEST(test_sregs_roundtrip)
{
    for (size_t i = 0; i < MODE_COUNT; i++) {
        guest g;
        if (!guest_setup(&g, ACCEL, "hlt", modes[i].mode))
            return;
        vx_x86_sregs first = guest_get_sregs(&g, g.v);
        guest_set_sregs(&g, g.v, &first);
        vx_x86_sregs second = guest_get_sregs(&g, g.v);
        char diff[512];
        const char *d = sregs_diff(&first, &second, diff, sizeof(diff));
        ck_assert_msg(d == NULL, "%s: mode %s: set_sregs(get_sregs()) changed %s", g.label,
                      modes[i].bits, d);
        guest_run_to_hlt(&g);
        vx_x86_regs r = guest_get_regs(&g, g.v);
        GUEST_EQ(&g, modes[i].bits, r.rip, GUEST_CODE_GPA + 0x11);
        guest_destroy(&g);
    }
}
END_TEST

/* Segments set through vx_vcpu_set_sregs() are the ones the guest uses,
 * and a segment the guest loads shows in vx_vcpu_get_sregs(). */
START_TEST(test_sregs_real)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "sregs16", VX_MODE_REAL))
        return;
    guest_write(&g, 0x20000, "\x34\x12", 2);
    guest_write(&g, 0x30000, "\x78\x56", 2);
    guest_write(&g, 0x40000, "\xbc\x9a", 2);
    vx_x86_sregs s = guest_get_sregs(&g, g.v);
    s.ds.selector = 0x2000;
    s.ds.base = 0x20000;
    s.es.selector = 0x3000;
    s.es.base = 0x30000;
    guest_set_sregs(&g, g.v, &s);
    guest_run_to_hlt(&g);

    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_EQ(&g, "ax (ds:0)", r.rax & 0xffff, 0x1234);
    GUEST_EQ(&g, "bx (es:0)", r.rbx & 0xffff, 0x5678);
    GUEST_EQ(&g, "dx (fs:0)", r.rdx & 0xffff, 0x9abc);
    s = guest_get_sregs(&g, g.v);
    GUEST_EQ(&g, "ds.selector", s.ds.selector, 0x2000);
    GUEST_EQ(&g, "ds.base", s.ds.base, 0x20000);
    GUEST_EQ(&g, "fs.selector", s.fs.selector, 0x4000);
    GUEST_EQ(&g, "fs.base", s.fs.base, 0x40000);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_sregs_long)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "sregs64", VX_MODE_LONG64))
        return;
    guest_write_u64(&g, 0x20000, 0x1111222233334444ull);
    guest_write_u64(&g, 0x30008, 0x5555666677778888ull);
    vx_x86_sregs s = guest_get_sregs(&g, g.v);
    s.fs.base = 0x20000;
    s.gs.base = 0x30000;
    guest_set_sregs(&g, g.v, &s);
    guest_run_to_hlt(&g);

    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 0x1111222233334444ull);
    GUEST_REG(&g, r, rbx, 0x5555666677778888ull);
    s = guest_get_sregs(&g, g.v);
    GUEST_EQ(&g, "fs.base", s.fs.base, 0x20000);
    GUEST_EQ(&g, "gs.base", s.gs.base, 0x30000);
    guest_destroy(&g);
}
END_TEST

/* Ring 3 through the GDT that set_mode wrote, leaving by unclaimed MMIO. */
START_TEST(test_user_mode)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "user64", VX_MODE_LONG64))
        return;
    script s;
    static const access user_script[] = {
        {MMIO, 1, 8, GUEST_UNCLAIMED_GPA, 0x1122334455667788ull},
        {MMIO, 0, 4, GUEST_UNCLAIMED_GPA + 8, 0x1000},
        {MMIO, 1, 4, GUEST_UNCLAIMED_GPA + 0x10, 0x1000 + 5050},
    };
    script_init(&s, user_script, 3, true, g.v);
    vx_exit e;
    guest_exit_init(&e);
    for (unsigned k = 0; k < 3; k++) {
        guest_run_expect(&g, &e, VX_EXIT_MMIO);
        uint64_t value = e.u.mmio.value;
        script_take(&s, MMIO, e.u.mmio.is_write, e.u.mmio.gpa, e.u.mmio.len, &value, "exit");
        ck_assert_msg(s.error[0] == '\0', "%s: %s", g.label, s.error);
        e.u.mmio.value = value;
        if (k == 0) {
            vx_x86_sregs sr = guest_get_sregs(&g, g.v);
            GUEST_EQ(&g, "cs.selector in ring 3", sr.cs.selector, VX_X86_SEL_USER_CODE64 | 3);
            GUEST_EQ(&g, "cs.dpl in ring 3", sr.cs.dpl, 3);
            GUEST_EQ(&g, "ss.selector in ring 3", sr.ss.selector, VX_X86_SEL_USER_DATA | 3);
            vx_x86_regs r = guest_get_regs(&g, g.v);
            GUEST_REG(&g, r, rax, 5050);
            GUEST_REG(&g, r, rbx, 0x1122334455667788ull);
        }
    }
    guest_destroy(&g);
}
END_TEST

/* vx_vcpu_run's own argument checks. */
START_TEST(test_run_bad_args)
{
    guest g;
    if (!guest_setup(&g, ACCEL, "hlt", VX_MODE_REAL))
        return;
    GUEST_EQ(&g, "vx_vcpu_run(v, NULL)", vx_vcpu_run(g.v, NULL), VX_EINVAL);
    vx_exit e;
    guest_exit_init(&e);
    e.size = sizeof(uint32_t);
    GUEST_EQ(&g, "vx_vcpu_run with a small exit->size", vx_vcpu_run(g.v, &e), VX_EINVAL);
    GUEST_EQ(&g, "vx_vcpu_run(NULL, e)", vx_vcpu_run(NULL, &e), VX_EINVAL);
    /* None of that ran the guest. */
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rip, GUEST_CODE_GPA);
    guest_run_to_hlt(&g);
    guest_destroy(&g);
}
END_TEST

static Suite *guests_suite(void)
{
    Suite *s = suite_create("guests");
    TCase *tc = tcase_create("guests");
    /* Each test takes well under a second on kvm_pvm, a software KVM (ring-0
     * code emulated, every exit tens of microseconds); a hang fails fast. */
    tcase_set_timeout(tc, 5);
#define ADD(t) tcase_add_loop_test(tc, t, 0, GUEST_ACCEL_COUNT)
    ADD(test_real16);
    ADD(test_prot32);
    ADD(test_long64);
    ADD(test_set_mode_state);
    ADD(test_pio);
    ADD(test_pio_range_end);
    ADD(test_io_exit);
    ADD(test_string_io);
    ADD(test_string_io_exit);
    ADD(test_mmio);
    ADD(test_mmio_range_end);
    ADD(test_mmio_exit);
    ADD(test_null_callbacks);
    ADD(test_ignore_unclaimed_io);
    ADD(test_rom);
    ADD(test_hlt);
    ADD(test_callback_error);
    ADD(test_triple_fault);
    ADD(test_current);
    ADD(test_current_smp);
    ADD(test_two_machines);
    ADD(test_stop_thread);
    ADD(test_stop_signal);
    ADD(test_stop_before_run);
    ADD(test_busy);
    ADD(test_stop_during_read_exit);
    ADD(test_stop_from_callback);
    ADD(test_regs_roundtrip);
    ADD(test_sregs_roundtrip);
    ADD(test_sregs_real);
    ADD(test_sregs_long);
    ADD(test_user_mode);
    ADD(test_run_bad_args);
#undef ADD
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(guests_suite());
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists every test */
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
