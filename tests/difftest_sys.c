/*
 * difftest-sys: the differential oracle for system-level behaviour, in
 * 64-bit long mode (4-level paging, 2 MiB and 1 GiB pages) and 32-bit
 * protected mode (2-level paging with 4 MiB pages; PAE with NX and 2 MiB
 * pages), ring 3 and ring 0. Templates (tname[]): privileged and I/O
 * instructions (CPL, IOPL, the TSS I/O bitmap); int n through gates of
 * DPL 0 and 3 and a missing one, #UD/#DE/#BP/#DB/#OF/#BR sources; loads,
 * stores, read-modify-writes and cmp/test on every kind of page (not
 * present, supervisor, read-only under CR0.WP, NX, non-canonical, #AC under
 * CR0.AM); fetches from forbidden pages; page-table and large-page edits
 * followed by accesses (P/RW/US/NX/A/D, reserved and ignored bits); segment
 * loads and lar/lsl/verr/verw with every kind of selector; rep string
 * instructions faulting mid-way; syscall; refused CR and MSR writes and
 * CR0.WP; push/pop/call on every kind of stack page; iret to the same and
 * an outer level with every kind of bad CS and SS.
 *
 *   tests/difftest-sys [--seed S] [--count N] [--ring 0|3|all]
 *                      [--mode long64|prot32|pae32|all] [-v]
 *
 * Each case is one instruction under test followed by `out 0x99, al` in
 * a code page of its own, started from random registers. The IDT has
 * vectors 0-31, 0x80 (DPL 0), 0x81 (DPL 3) and 0x82 (not present); the
 * handler pushes the vector (and 0 for vectors without an error code) and
 * does `out`. In 64-bit mode every gate uses IST1, so the frame always
 * lands in one place; in 32-bit mode the handler stores esp at FRAMEPTR.
 * A case ends either at its own out (completed) or at a handler's
 * (exception): the harness reads the frame, CR2, the registers, and the
 * pages the case could touch, including the page-table page (A/D bits).
 *
 * tcg runs every case twice (the second time from the blocks it kept, the
 * code being unchanged), and both runs must agree. Two checks:
 *   - every accelerator's outcome against what the generator expects from
 *     the SDM (vector, error code, faulting or next rip, CR2; A/D bits of
 *     the entries that must change; selectors loaded): this runs on tcg
 *     everywhere, so tcg's system semantics are checked without /dev/kvm;
 *   - tcg against kvm, everything (registers, frame, CR2, memory), for the
 *     forms where kvm itself agrees with the expectation. Where kvm does
 *     not (a software KVM's instruction emulator runs ring-0 code and some
 *     of ring 3 here), the form is reported and left out of the
 *     comparison, as tests/difftest does.
 * Exit status: 0 all agree, 1 a mismatch, 99 the harness failed.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>
#include <libvx/x86.h>

#include "dt_machine.h"

/* ---- the guest's memory -------------------------------------------------- */

#define RAM 0x200000u
#define PML4 0x1000u
#define PDPT 0x2000u
#define PD 0x3000u
#define PT 0x4000u /* maps 0 .. 2 MiB; user-writable (page-table edits) */
#define GDT 0x5000u
#define IDT 0x6000u
#define PD2 0x7000u   /* the page directory of 1 GiB .. 2 GiB: large-page edits */
#define STUBS 0x8000u /* 16 bytes per vector */
#define SYSCALL_STUB (STUBS + 16 * 0xff) /* LSTAR: out, hlt */
#define GATE_STUB (STUBS + 16 * 0xfe)    /* ring-0 target of far calls and jumps */
#define USTUB (CODE + 0x800)               /* ring-3 target */
#define GATE_VECTOR 0x101                  /* a case that reached GATE_STUB */
#define USTUB_VECTOR 0x102                 /* ... or USTUB */
#define SYSCALL_VECTOR 0x100              /* how a case that reached it is reported */
#define STAR_VALUE ((uint64_t)SEL_KCODE << 32)
#define FMASK_VALUE 0x47700ull            /* TF DF IF IOPL NT AC */
#define LARGE_BASE 0x40000000ull /* PDPT[1] -> PD2: 2 MiB pages */
#define HUGE_BASE 0x80000000ull  /* PDPT[2]: a 1 GiB page */
#define TSS 0x10000u
#define TSS_LIMIT (104 + 8192)
#define IST_TOP 0x21000u
#define CODE 0x30000u
#define DATA 0x40000u   /* user RW NX, A and D clear at the start */
#define ROPAGE 0x41000u /* user read-only */
#define SUPER 0x42000u  /* supervisor RW */
#define NPAGE 0x43000u  /* not present */
#define NXPAGE 0x44000u /* user RW NX */
#define WINDOW 0x47000u /* its PTE is what a page-table-edit case writes */
#define STACK 0x48000u  /* user RW */
#define FRAME 0x49000u  /* where the window's PTE points */
#define FRAMEPTR 0x20000u /* 32-bit handlers store esp here (no IST outside 64-bit mode) */
#define PORT 0x99       /* the end of every case */
#define PORT_OK 0x9a    /* the other port the I/O bitmap allows */

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_NX (1ull << 63)
#define PTE_RSVD (1ull << 51) /* reserved below MAXPHYADDR 52 on any host we run on */

#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_AM 0x40000ull
#define CR0_PG 0x80000000ull

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x18
#define SEL_UCODE 0x20
#define SEL_TSS 0x28
#define SEL_NPDATA 0x40
#define SEL_RODATA 0x48
#define SEL_GATE3 0x50  /* 64-bit call gate, DPL 3 -> SEL_KCODE:GATE_STUB */
#define SEL_GATE0 0x60  /* DPL 0, same target */
#define SEL_GATENP 0x70 /* DPL 3, not present */
#define SEL_GATEU 0x80  /* DPL 3 -> SEL_UCODE|3:USTUB */
#define SEL_GATED 0x90  /* DPL 3 -> SEL_KDATA (not code) */
#define GDT_LIMIT 0x9f

/* The paging modes: 64-bit (4-level), 32-bit protected mode with 2-level
 * paging and 4 MiB pages (CR4.PSE), and 32-bit with PAE and NX. */
enum { M64, M32, MPAE, NMODES };
static const char *mname[NMODES] = { "long64", "prot32", "pae32" };

/* ---- options and the two sides --------------------------------------------- */

static struct {
    uint64_t seed, count;
    int rings; /* bit 0: ring 0, bit 3: ring 3 */
    int modes; /* bit per M* */
    int verbose;
} opt = { 1, 20000, 1 | 8, 7, 0 };

struct side {
    const char *name;
    vx_machine *m;
    vx_vcpu *v;
    uint8_t *ram;
};

static void side_open(struct side *s, vx_accel accel, const char *name)
{
    s->m = dt_machine(accel, name, RAM, &s->ram);
    s->v = vx_machine_vcpu(s->m, 0);
    s->name = name;
}

/* ---- the fixed tables ------------------------------------------------------ */

static void w64(uint8_t *ram, uint64_t at, uint64_t v)
{
    memcpy(ram + at, &v, 8);
}

static uint64_t r64(const uint8_t *ram, uint64_t at)
{
    uint64_t v;
    memcpy(&v, ram + at, 8);
    return v;
}

static int has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static uint64_t pte_initial(unsigned page)
{
    uint64_t a = (uint64_t)page << 12, ad = PTE_A | PTE_D;
    switch (a) {
    case PD: case GDT: case IDT: case STUBS: case 0x20000:
    case TSS: case TSS + 0x1000: case TSS + 0x2000:
        return a | PTE_P | PTE_RW | ad;
    case PML4: case PT: case PDPT: case PD2: /* paging structures a case edits */
        return a | PTE_P | PTE_RW | PTE_US | ad;
    case CODE:
        return a | PTE_P | PTE_US | ad;
    case DATA:
        return a | PTE_P | PTE_RW | PTE_US | PTE_NX; /* A, D: the CPU's to set */
    case ROPAGE:
        return a | PTE_P | PTE_US | PTE_NX | ad;
    case SUPER:
        return a | PTE_P | PTE_RW | PTE_NX | ad;
    case NXPAGE: case STACK:
        return a | PTE_P | PTE_RW | PTE_US | PTE_NX | ad;
    case FRAME:
        return a | PTE_P | PTE_RW | PTE_NX | ad;
    default:
        return 0; /* NPAGE, WINDOW, everything else */
    }
}

/* The tables, built once per mode; a case rewrites what it may have changed. */
static uint8_t image[NMODES][0x22000];

static void w32(uint8_t *ram, uint64_t at, uint32_t v)
{
    memcpy(ram + at, &v, 4);
}

static void build_tables(uint8_t *ram, int mode)
{
    memset(ram, 0, sizeof image[0]);
    if (mode == M64) {
        w64(ram, PML4, PDPT | 0x27);
        w64(ram, PDPT, PD | 0x27);
        w64(ram, PDPT + 8, PD2 | 0x27);
    } else if (mode == MPAE) {
        w64(ram, PDPT, PD | 1); /* PAE PDPTEs: present and the address only */
        w64(ram, PDPT + 8, PD2 | 1);
    }
    if (mode == M32) {
        /* 2-level: the page directory at PML4, 4-byte entries, no NX */
        w32(ram, PML4, PT | 0x27);
        for (unsigned i = 0; i < 512; i++)
            w32(ram, PT + 4 * i, (uint32_t)pte_initial(i));
    } else {
        w64(ram, PD, PT | 0x27);
        for (unsigned i = 0; i < 512; i++)
            w64(ram, PT + 8 * i, pte_initial(i));
    }

    static const uint64_t gdt64[] = {
        0, 0x00af9a000000ffffull, 0x00cf92000000ffffull, 0x00cff2000000ffffull,
        0x00affa000000ffffull, 0, 0, 0, 0x00cf72000000ffffull, 0x00cff0000000ffffull,
    };
    memcpy(ram + GDT, gdt64, sizeof gdt64);
    if (mode != M64) {
        w64(ram, GDT + SEL_KCODE, 0x00cf9a000000ffffull);
        w64(ram, GDT + SEL_UCODE, 0x00cffa000000ffffull);
    }
    uint64_t base = TSS, limit = TSS_LIMIT;
    w64(ram, GDT + SEL_TSS, (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
                                ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56);
    if (mode == M64)
        w64(ram, GDT + SEL_TSS + 8, base >> 32);

    /* TSS: the ring-0 stack (and IST1 in 64-bit mode) at the handler
     * stack, an I/O bitmap that allows PORT and PORT_OK only. */
    if (mode == M64) {
        w64(ram, TSS + 4, IST_TOP);
        w64(ram, TSS + 0x24, IST_TOP);
    } else {
        w32(ram, TSS + 4, IST_TOP);
        w32(ram, TSS + 8, SEL_KDATA);
    }
    ram[TSS + 0x66] = 104;
    memset(ram + TSS + 104, 0xff, 8192 + 1);
    ram[TSS + 104 + PORT / 8] &= (uint8_t)~(1u << (PORT % 8));
    ram[TSS + 104 + PORT_OK / 8] &= (uint8_t)~(1u << (PORT_OK % 8));

    for (unsigned v = 0; v < 256; v++) {
        unsigned attr;
        if (v < 32)
            attr = (v == 3 || v == 4) ? 0xee : 0x8e;
        else if (v == 0x80)
            attr = 0x8e;
        else if (v == 0x81)
            attr = 0xee;
        else if (v == 0x82)
            attr = 0x6e; /* DPL 3, not present */
        else
            continue;
        uint64_t h = STUBS + 16 * v;
        uint64_t gate = (h & 0xffff) | (uint64_t)SEL_KCODE << 16 | (uint64_t)attr << 40 |
                        ((h >> 16) & 0xffff) << 48;
        if (mode == M64) {
            w64(ram, IDT + 16 * v, gate | 1ull << 32); /* IST1 */
            w64(ram, IDT + 16 * v + 8, h >> 32);
        } else {
            w64(ram, IDT + 8 * v, gate);
        }
        uint8_t *p = ram + h;
        if (!has_error_code(v))
            *p++ = 0x6a, *p++ = 0;                            /* push 0 */
        *p++ = 0x68;                                          /* push v */
        memcpy(p, &v, 4), p += 4;
        if (mode != M64) {
            uint32_t at = FRAMEPTR;
            *p++ = 0x89, *p++ = 0x25;                         /* mov [FRAMEPTR], esp */
            memcpy(p, &at, 4), p += 4;
        }
        *p++ = 0xe6, *p++ = PORT;                             /* out PORT, al */
        if (p < ram + h + 16)
            *p++ = 0xf4;                                      /* hlt */
    }
    if (mode == M64) {
        uint8_t *p = ram + SYSCALL_STUB;
        *p++ = 0xe6, *p++ = PORT, *p++ = 0xf4;
        p = ram + GATE_STUB;
        *p++ = 0xe6, *p++ = PORT, *p++ = 0xf4;
        /* 64-bit call gates: offset, selector, type 0xc, DPL, P */
        static const struct { unsigned at, sel, dpl, p; uint64_t off; } g[] = {
            { SEL_GATE3, SEL_KCODE, 3, 1, GATE_STUB }, { SEL_GATE0, SEL_KCODE, 0, 1, GATE_STUB },
            { SEL_GATENP, SEL_KCODE, 3, 0, GATE_STUB }, { SEL_GATEU, SEL_UCODE | 3, 3, 1, USTUB },
            { SEL_GATED, SEL_KDATA, 3, 1, GATE_STUB },
        };
        for (unsigned k = 0; k < sizeof g / sizeof g[0]; k++) {
            w64(ram, GDT + g[k].at, (g[k].off & 0xffff) | (uint64_t)g[k].sel << 16 |
                                        (uint64_t)(0xc | g[k].dpl << 5 | g[k].p << 7) << 40 |
                                        ((g[k].off >> 16) & 0xffff) << 48);
            w64(ram, GDT + g[k].at + 8, g[k].off >> 32);
        }
    }
}

/* ---- cases -------------------------------------------------------------------- */

enum { T_PRIV, T_INT, T_ARITH, T_MEM, T_FETCH, T_PTEDIT, T_LARGE, T_SEG, T_STRING, T_SYSCALL,
       T_CRMSR, T_DESC, T_STACK, T_IRET, T_FAR, T_COUNT };
static const char *tname[T_COUNT] = { "priv", "int", "arith", "mem", "fetch", "ptedit", "large",
                                      "seg", "string", "syscall", "crmsr", "desc", "stack",
                                      "iret", "far" };
#define FORMS 128

struct expect {
    int vector;          /* -1: completes */
    uint32_t err;
    uint64_t rip;        /* frame rip (exception) */
    int check_cr2;
    uint64_t cr2;
    int check_pte;       /* this PTE's A/D after the case */
    unsigned pte_size;   /* 4 or 8 bytes */
    uint64_t pte_at, pte_want;
    int check_sel;       /* the data segment register loaded */
    int sreg;            /* 0 ds 1 es 2 fs 3 gs 4 ss 5 cs */
    uint16_t sel;
    int check_sel2;      /* and SS (iret) */
    uint16_t sel2;
    unsigned nregs;      /* general registers with known final values */
    unsigned reg[4];
    uint64_t val[4];
    uint64_t flag_mask, flag_val; /* rflags bits with known final values */
    unsigned npush;      /* far call landings: the qwords it pushed, at rSP */
    uint64_t push[4];
    uint16_t land_cs;
    int check_frame_sp;  /* the interrupted rSP in the frame */
    uint64_t frame_sp;
    int shutdown;        /* a triple fault: the exception cannot be delivered */
};

struct tcase {
    uint64_t seed;
    int mode, ring, tmpl, form;
    uint8_t code[32];
    unsigned len;
    vx_x86_regs regs;
    uint64_t cr0;
    /* Bytes the case needs in a data page (bound's pair, a far pointer,
     * an iret frame), placed after the page's random fill. */
    uint64_t placed_at;
    uint8_t placed[40];
    unsigned placed_len;
    struct expect x;
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    return r->s = mix(r->s);
}

static unsigned pick(struct rng *r, unsigned n)
{
    return (unsigned)(rnd(r) % n);
}

static uint64_t *gpr(vx_x86_regs *r, unsigned n)
{
    uint64_t *t[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                        &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
    return t[n & 15];
}

static void emit(struct tcase *c, const uint8_t *b, unsigned n)
{
    memcpy(c->code + c->len, b, n);
    c->len += n;
}

#define EMIT(c, ...)                                                                         \
    do {                                                                                     \
        static const uint8_t b_[] = { __VA_ARGS__ };                                         \
        emit(c, b_, sizeof b_);                                                              \
    } while (0)

/* A memory operand [base + disp32] for an instruction whose opcode bytes
 * follow an optional 0x66 and REX: reg field, base register. */
static void emit_mem(struct tcase *c, int osz16, int w, const uint8_t *op, unsigned oplen,
                     unsigned reg, unsigned base, int32_t disp)
{
    if (osz16)
        c->code[c->len++] = 0x66;
    unsigned rex = (w ? 8u : 0) | (reg >> 3 << 2) | (base >> 3);
    if (rex)
        c->code[c->len++] = (uint8_t)(0x40 | rex);
    emit(c, op, oplen);
    c->code[c->len++] = (uint8_t)(0x80 | (reg & 7) << 3 | (base & 7));
    if ((base & 7) == 4)
        c->code[c->len++] = 0x24;
    memcpy(c->code + c->len, &disp, 4);
    c->len += 4;
}

static void expect_reg(struct tcase *c, unsigned reg, uint64_t v)
{
    c->x.reg[c->x.nregs] = reg;
    c->x.val[c->x.nregs++] = v;
}

/* The #AC forms' loop: inc reg (the 64-bit register in 64-bit mode), then
 * jmp back to the access at code offset `at`. Its first pass is aligned,
 * its second misaligned by one and run from a translated block. */
static void emit_inc_and_loop(struct tcase *c, unsigned reg, unsigned at)
{
    if (c->mode == M64)
        c->code[c->len++] = (uint8_t)(0x48 | (reg >> 3));
    c->code[c->len++] = 0xff;
    c->code[c->len++] = (uint8_t)(0xc0 | (reg & 7));
    c->code[c->len++] = 0xeb;
    c->code[c->len] = (uint8_t)(at - (c->len + 1));
    c->len++;
}

static void place(struct tcase *c, uint64_t gpa, const void *bytes, unsigned len)
{
    c->placed_at = gpa;
    memcpy(c->placed, bytes, len);
    c->placed_len = len;
}

static void fault(struct tcase *c, int vector, uint32_t err)
{
    c->x.vector = vector;
    c->x.err = err;
    c->x.rip = CODE; /* the instruction under test is first */
}

/* Privileged and I/O instructions. */
static void gen_priv(struct tcase *c, struct rng *r)
{
    int r3 = c->ring == 3;
    int iopl = (int)((c->regs.rflags >> 12) & 3);
    int io_ok = !r3 || iopl == 3;
    c->form = (int)pick(r, 26);
    c->regs.rdi = DATA + 8 * pick(r, 500);
    switch (c->form) {
    case 0: EMIT(c, 0xfa); if (!io_ok) fault(c, 13, 0); break;          /* cli */
    case 1: EMIT(c, 0xfb); if (!io_ok) fault(c, 13, 0); break;          /* sti */
    case 2: EMIT(c, 0x0f, 0x20, 0xc0); if (r3) fault(c, 13, 0); break;  /* mov rax, cr0 */
    case 3: EMIT(c, 0x0f, 0x20, 0xd8); if (r3) fault(c, 13, 0); break;  /* mov rax, cr3 */
    case 4: EMIT(c, 0x0f, 0x20, 0xe0); if (r3) fault(c, 13, 0); break;  /* mov rax, cr4 */
    case 5: EMIT(c, 0x0f, 0x21, 0xf8); if (r3) fault(c, 13, 0); break;  /* mov rax, dr7 */
    case 6: EMIT(c, 0x0f, 0x01, 0x07); break;                           /* sgdt [rdi] */
    case 7: EMIT(c, 0x0f, 0x01, 0x0f); break;                           /* sidt [rdi] */
    case 8: EMIT(c, 0x0f, 0x00, 0xc0); break;                           /* sldt eax */
    case 9: EMIT(c, 0x0f, 0x00, 0xc8); break;                           /* str eax */
    case 10: EMIT(c, 0x0f, 0x01, 0xe0); break;                          /* smsw eax */
    case 11: EMIT(c, 0x0f, 0x01, 0x3f); if (r3) fault(c, 13, 0); break; /* invlpg [rdi] */
    case 12: /* rdmsr EFER */
        c->regs.rcx = 0xc0000080u;
        EMIT(c, 0x0f, 0x32);
        if (r3)
            fault(c, 13, 0);
        break;
    case 13: EMIT(c, 0x0f, 0x06); if (r3) fault(c, 13, 0); break;       /* clts */
    case 14: /* swapgs: #UD outside 64-bit mode */
        EMIT(c, 0x0f, 0x01, 0xf8);
        if (c->mode != M64)
            fault(c, 6, 0);
        else if (r3)
            fault(c, 13, 0);
        break;
    case 15: /* in al, PORT_OK (the bitmap allows it) */
        EMIT(c, 0xe4, PORT_OK);
        break;
    case 16: /* in al, 0x60 (the bitmap denies it) */
        EMIT(c, 0xe4, 0x60);
        if (!io_ok)
            fault(c, 13, 0);
        break;
    case 17: /* out dx, al to a denied port */
        c->regs.rdx = 0x3f8 + pick(r, 8);
        EMIT(c, 0xee);
        if (!io_ok)
            fault(c, 13, 0);
        break;
    /* ring 3 only from here: in ring 0 they would change what the harness
     * relies on (or halt) */
    case 18: EMIT(c, 0xf4); fault(c, 13, 0); break;                     /* hlt */
    case 19: EMIT(c, 0x0f, 0x22, 0xc0); fault(c, 13, 0); break;         /* mov cr0, rax */
    case 20: EMIT(c, 0x0f, 0x22, 0xd8); fault(c, 13, 0); break;         /* mov cr3, rax */
    case 21: EMIT(c, 0x0f, 0x01, 0x17); fault(c, 13, 0); break;         /* lgdt [rdi] */
    case 22: EMIT(c, 0x0f, 0x00, 0xd8); fault(c, 13, 0); break;         /* ltr ax */
    case 23: EMIT(c, 0x0f, 0x30); fault(c, 13, 0); break;               /* wrmsr */
    case 24: /* sysret: #UD outside 64-bit mode, else #GP(0) from ring 3 */
        if (c->mode == M64)
            EMIT(c, 0x48, 0x0f, 0x07);
        else
            EMIT(c, 0x0f, 0x07);
        fault(c, c->mode == M64 ? 13 : 6, 0);
        break;
    default: EMIT(c, 0x0f, 0x09); fault(c, 13, 0); break;               /* wbinvd */
    }
    if (!r3 && c->form >= 18) {
        c->len = 0; /* not in ring 0: a plain nop case instead */
        c->x.vector = -1;
        c->form = 18;
        EMIT(c, 0x90);
    }
}

/* Software interrupts and the instructions that raise an exception. */
static void gen_int(struct tcase *c, struct rng *r)
{
    int r3 = c->ring == 3;
    c->form = (int)pick(r, 9);
    switch (c->form) {
    case 0: EMIT(c, 0xcc); c->x.vector = 3; c->x.rip = CODE + 1; break;        /* int3 */
    case 1: EMIT(c, 0xcd, 0x03); c->x.vector = 3; c->x.rip = CODE + 2; break;  /* int 3 */
    case 2: /* int 0x80: a DPL-0 gate */
        EMIT(c, 0xcd, 0x80);
        if (r3)
            fault(c, 13, 0x80 * 8 + 2);
        else
            c->x.vector = 0x80, c->x.rip = CODE + 2;
        break;
    case 3: EMIT(c, 0xcd, 0x81); c->x.vector = 0x81; c->x.rip = CODE + 2; break; /* DPL 3 */
    case 4: EMIT(c, 0xcd, 0x82); fault(c, 11, 0x82 * 8 + 2); break;  /* gate not present */
    case 5: /* into: #UD in 64-bit mode; elsewhere #OF (a trap) when OF is set */
        EMIT(c, 0xce);
        if (c->mode == M64)
            fault(c, 6, 0);
        else if (c->regs.rflags & 0x800)
            c->x.vector = 4, c->x.rip = CODE + 1;
        break;
    case 6: EMIT(c, 0x0f, 0x0b); fault(c, 6, 0); break;              /* ud2 */
    case 7: EMIT(c, 0xf0, 0x90); fault(c, 6, 0); break;              /* lock nop */
    default: EMIT(c, 0xf1); c->x.vector = 1; c->x.rip = CODE + 1; break; /* int1 */
    }
    if (c->mode != M64 && c->form == 6 && pick(r, 2)) {
        /* bound eax, [edi]: #BR (a fault) outside [lo, hi] */
        c->len = 0;
        c->form = 9;
        int32_t lo = (int32_t)rnd(r) >> pick(r, 31), hi = (int32_t)rnd(r) >> pick(r, 31);
        int32_t v = pick(r, 2) ? (int32_t)rnd(r) >> pick(r, 31) : lo + (int32_t)pick(r, 3) - 1;
        c->regs.rax = (uint32_t)v;
        c->regs.rdi = DATA + 8 * pick(r, 500);
        place(c, c->regs.rdi, (const int32_t[]){ lo, hi }, 8);
        EMIT(c, 0x62, 0x07);
        if (v < lo || v > hi)
            fault(c, 5, 0);
        else
            c->x.vector = -1;
    }
    c->x.err = c->x.vector == 13 || c->x.vector == 11 ? c->x.err : 0;
}

/* #DE from div and idiv, every width: a zero divisor, an unsigned
 * quotient too wide, and the signed minimum divided by -1. */
static void gen_arith(struct tcase *c, struct rng *r)
{
    unsigned w = pick(r, c->mode == M64 ? 4 : 3), signed_ = pick(r, 2), zero = pick(r, 3) == 0;
    unsigned src = 3 + pick(r, 5); /* rbx, rbp, rsi, rdi or r11; not rsp */
    if (src == 4)
        src = c->mode == M64 ? 11 : 7;
    if (c->mode != M64 && w == 0)
        src = 3; /* without REX, byte registers 4-7 are ah..bh */
    c->form = (int)(w * 4 + signed_ * 2 + zero);
    uint64_t *s = gpr(&c->regs, src);
    unsigned bits = 8u << w;
    uint64_t top = 1ull << (bits - 1);
    if (zero) {
        *s = 0;
    } else if (signed_) {
        *s = ~0ull; /* -1 at every width */
        if (w == 0) {
            c->regs.rax = (c->regs.rax & ~0xffffull) | 0x8000; /* AX = -2^15 */
        } else {
            uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
            c->regs.rdx = (c->regs.rdx & ~mask) | top; /* rDX:rAX = -2^(2 bits - 1) */
            c->regs.rax &= ~mask;
        }
    } else {
        *s = 1 + pick(r, 100); /* the dividend's high half is at least 2^(bits-1) */
        if (w == 0)
            c->regs.rax |= 0xff00;
        else
            c->regs.rdx |= top;
    }
    /* REX always for bytes, so registers 5-7 are bpl/sil/dil, not ch/dh/bh */
    unsigned rex = 0x40 | (w == 3 ? 8u : 0) | (src >> 3);
    if (w == 1)
        c->code[c->len++] = 0x66;
    if (c->mode == M64 && (rex != 0x40 || w == 0))
        c->code[c->len++] = (uint8_t)rex;
    c->code[c->len++] = w == 0 ? 0xf6 : 0xf7;
    c->code[c->len++] = (uint8_t)(0xc0 | (signed_ ? 7u : 6u) << 3 | (src & 7));
    fault(c, 0, 0);
}

/* Page-fault error code of an access by this case. */
static uint32_t pf_err(const struct tcase *c, int present, int write, int fetch, int rsvd)
{
    /* I/D only where NX exists (EFER.NXE: 64-bit and PAE here) */
    return (present ? 1u : 0) | (write ? 2u : 0) | (c->ring == 3 ? 4u : 0) | (rsvd ? 8u : 0) |
           (fetch && c->mode != M32 ? 16u : 0);
}

/* Loads, stores, read-modify-writes and locked exchanges on every kind of page. */
static void gen_mem(struct tcase *c, struct rng *r)
{
    static const uint8_t op[6][4] = {
        { 0x8a, 0x8b, 0x8b, 0x8b }, /* load  */
        { 0x88, 0x89, 0x89, 0x89 }, /* store */
        { 0x00, 0x01, 0x01, 0x01 }, /* add [m], r */
        { 0x86, 0x87, 0x87, 0x87 }, /* xchg [m], r */
        { 0x38, 0x39, 0x39, 0x39 }, /* cmp [m], r: reads only */
        { 0x84, 0x85, 0x85, 0x85 }, /* test [m], r: reads only */
    };
    static const uint64_t pages[] = { DATA, ROPAGE, SUPER, NPAGE, NXPAGE, 0x800000000000ull };
    unsigned kind = pick(r, 6), w = pick(r, c->mode == M64 ? 4 : 3),
             pg = pick(r, c->mode == M64 ? 6 : 5);
    int ac = 0;
    unsigned size = 1u << w;
    uint64_t off = (rnd(r) % (4096 / size)) * size;
    if (pg == 0 && c->ring == 3 && w && pick(r, 4) == 0) {
        /* alignment check: AM, AC, ring 3; aligned on the first pass of a
         * loop, misaligned by one on the second (by then the block is a
         * translated one, with its fast paths) */
        ac = 1;
        off = (8 + pick(r, 4096 - 16)) & ~7ull;
    }
    unsigned base;
    do
        base = pick(r, c->mode == M64 ? 16 : 8);
    while (base == 4 || base == 1 || base == 0);
    int32_t disp = (int32_t)(rnd(r) % 0x2000) - 0x1000;
    uint64_t target = pages[pg] + off;
    *gpr(&c->regs, base) = target - (uint64_t)(int64_t)disp;
    c->form = (int)(pg * 12 + kind * 2 + (w == 3)) + (ac ? 72 : 0);
    if (c->form >= FORMS)
        c->form = FORMS - 1;
    unsigned at = c->len;
    emit_mem(c, w == 1, w == 3, &op[kind][w ? 1 : 0], 1, 1 /* rcx/cl */, base, disp);
    if (ac) {
        emit_inc_and_loop(c, base, at);
        c->cr0 |= CR0_AM;
        c->regs.rflags |= 1u << 18;
        fault(c, 17, 0);
        c->x.rip = CODE + at;
        expect_reg(c, base, *gpr(&c->regs, base) + 1);
        return;
    }
    int write = kind == 1 || kind == 2 || kind == 3;
    int user = c->ring == 3;
    c->x.vector = -1;
    switch (pg) {
    case 0:
        c->x.check_pte = 1;
        c->x.pte_size = c->mode == M32 ? 4 : 8;
        c->x.pte_at = PT + c->x.pte_size * (DATA >> 12);
        c->x.pte_want = pte_initial(DATA >> 12) | PTE_A | (write ? PTE_D : 0);
        if (c->mode == M32)
            c->x.pte_want = (uint32_t)c->x.pte_want;
        break;
    case 1:
        if (write) /* CR0.WP: ring 0 too */
            fault(c, 14, pf_err(c, 1, 1, 0, 0));
        break;
    case 2:
        if (user)
            fault(c, 14, pf_err(c, 1, write, 0, 0));
        break;
    case 3:
        fault(c, 14, pf_err(c, 0, write, 0, 0));
        break;
    case 4:
        break;
    default: /* non-canonical: #SS(0) through rbp, else #GP(0) */
        fault(c, base == 5 ? 12 : 13, 0);
        return;
    }
    if (c->x.vector == 14)
        c->x.check_cr2 = 1, c->x.cr2 = target;
}

/* Instruction fetch from a page that forbids it: call through a register. */
static void gen_fetch(struct tcase *c, struct rng *r)
{
    static const uint64_t pages[] = { NXPAGE, SUPER, NPAGE, DATA };
    unsigned pg = pick(r, 4), reg = 3 + pick(r, 5);
    if (reg == 4)
        reg = c->mode == M64 ? 10 : 6;
    if (c->mode == M32) /* no NX: only what faults without it */
        pg = c->ring == 3 && pick(r, 2) ? 1 : 2;
    uint64_t target = pages[pg] + pick(r, 4096);
    *gpr(&c->regs, reg) = target;
    c->form = (int)pg;
    if (reg >= 8)
        c->code[c->len++] = 0x41;
    c->code[c->len++] = 0xff;
    c->code[c->len++] = (uint8_t)(0xd0 | (reg & 7)); /* call reg */
    c->x.vector = 14;
    c->x.rip = target; /* the call happened; the fetch at the target faults */
    c->x.check_cr2 = 1;
    c->x.cr2 = target;
    int user = c->ring == 3;
    if (pg == 2)
        c->x.err = pf_err(c, 0, 0, 1, 0);
    else /* present: NX (all these pages), and from ring 3 U/S too */
        c->x.err = pf_err(c, 1, 0, 1, 0);
    (void)user;
}

/* Store the entry (4 or 8 bytes) at rbx, then access [rsi] with the
 * width and direction picked; the expectation follows from the entry. In
 * 32-bit mode with PAE an 8-byte entry is two stores, the upper half first
 * (it is not present until the lower half lands). */
static void emit_edit_and_access(struct tcase *c, uint64_t entry, unsigned esize, unsigned write,
                                 unsigned w, unsigned *at)
{
    if (esize == 8 && c->mode == M64) {
        c->regs.rax = entry;
        EMIT(c, 0x48, 0x89, 0x03); /* mov [rbx], rax */
    } else {
        c->regs.rax = (uint32_t)entry;
        if (esize == 8) {
            c->regs.rdx = entry >> 32;
            EMIT(c, 0x89, 0x53, 0x04); /* mov [ebx + 4], edx */
        }
        EMIT(c, 0x89, 0x03); /* mov [ebx], eax */
    }
    *at = c->len;
    uint8_t op = w ? (write ? 0x89 : 0x8b) : (write ? 0x88 : 0x8a);
    emit_mem(c, w == 1, w == 3, &op, 1, 1, 6 /* rsi */, 0);
}

/* What an access through a freshly written entry does. */
static void expect_edit(struct tcase *c, uint64_t entry, unsigned esize, int present, int rsvd,
                        unsigned write, unsigned at, uint64_t lin)
{
    int user = c->ring == 3;
    int ok = present && !rsvd && (!user || (entry & PTE_US)) && (!write || (entry & PTE_RW));
    c->x.check_pte = 1;
    c->x.pte_at = c->regs.rbx;
    c->x.pte_size = esize;
    c->x.pte_want = entry | (ok ? PTE_A | (write ? PTE_D : 0) : 0);
    if (ok) {
        c->x.vector = -1;
        return;
    }
    c->x.vector = 14;
    c->x.err = pf_err(c, present, (int)write, 0, present && rsvd);
    c->x.rip = CODE + at;
    c->x.check_cr2 = 1;
    c->x.cr2 = lin;
    if (present && !rsvd)
        c->x.check_pte = 0; /* whether A is set on a protection fault is the CPU's choice */
}

/* Write a PTE for the window, then touch the window. Bits 62:52 are
 * ignored in 4-level paging and reserved with PAE; 32-bit entries have
 * neither NX nor reserved bits. */
static void gen_ptedit(struct tcase *c, struct rng *r)
{
    uint64_t bits = rnd(r);
    unsigned esize = c->mode == M32 ? 4 : 8;
    uint64_t pte = FRAME | (bits & (PTE_RW | PTE_US | PTE_A | PTE_D));
    int present = (bits >> 8) % 5 != 0, rsvd = 0;
    if (present)
        pte |= PTE_P;
    if (esize == 8) {
        if ((bits >> 12) & 1)
            pte |= PTE_NX;
        if ((bits >> 16) % 9 == 0)
            pte |= PTE_RSVD, rsvd = 1;
        if ((bits >> 20) % 3 == 0) {
            pte |= (bits >> 24 & 0x7f) << 52;
            rsvd |= c->mode == MPAE && (bits >> 24 & 0x7f);
        }
    }
    unsigned write = pick(r, 2), w = pick(r, c->mode == M64 ? 4 : 3);
    uint64_t off = (rnd(r) % (4096u >> w)) << w;
    c->regs.rbx = PT + esize * (WINDOW >> 12);
    c->regs.rsi = WINDOW + off;
    unsigned at;
    emit_edit_and_access(c, pte, esize, write, w, &at);
    c->form = (int)((present ? 1 : 0) | (pte & PTE_RW ? 2 : 0) | (pte & PTE_US ? 4 : 0) |
                    (rsvd ? 8 : 0) | (write ? 16 : 0));
    expect_edit(c, pte, esize, present, rsvd, write, at, WINDOW + off);
}

/* Write a large-page entry mapping guest-physical 0, then touch the DATA
 * page through it: a 2 MiB PDE (PD2; 64-bit and PAE), a 1 GiB PDPTE
 * (PDPT[2]; 64-bit) or a 4 MiB PDE (the 32-bit page directory, CR4.PSE).
 * Reserved: bits 20:13 of a 2 MiB entry and 29:13 of a 1 GiB one (bit 12
 * is PAT), bit 21 of a 4 MiB one (PSE-36 stops at 40 address bits). */
static void gen_large(struct tcase *c, struct rng *r)
{
    uint64_t bits = rnd(r);
    int huge = c->mode == M64 && pick(r, 3) == 0;
    unsigned esize = c->mode == M32 ? 4 : 8;
    uint64_t pte = 0x80 /* PS */ | (bits & (PTE_RW | PTE_US | PTE_A | PTE_D));
    int present = (bits >> 8) % 5 != 0, rsvd = (bits >> 16) % 7 == 0;
    if (present)
        pte |= PTE_P;
    if (rsvd)
        pte |= c->mode == M32 ? 1ull << 21 : 1ull << (13 + pick(r, huge ? 17 : 8));
    if (esize == 8) {
        if ((bits >> 12) & 1)
            pte |= PTE_NX;
        if ((bits >> 20) % 3 == 0) {
            pte |= (bits >> 24 & 0x7f) << 52;
            rsvd |= c->mode == MPAE && (bits >> 24 & 0x7f);
        }
    }
    unsigned slot = pick(r, 512), write = pick(r, 2), w = pick(r, c->mode == M64 ? 4 : 3);
    uint64_t off = DATA + ((rnd(r) % (4096u >> w)) << w), lin;
    if (c->mode == M32) {
        slot = 1 + pick(r, 1023);
        lin = ((uint64_t)slot << 22) + off;
        c->regs.rbx = PML4 + 4 * slot;
    } else if (huge) {
        lin = HUGE_BASE + off;
        c->regs.rbx = PDPT + 16;
    } else {
        lin = LARGE_BASE + ((uint64_t)slot << 21) + off;
        c->regs.rbx = PD2 + 8 * slot;
    }
    c->regs.rsi = lin;
    unsigned at;
    emit_edit_and_access(c, pte, esize, write, w, &at);
    c->form = (int)((present ? 1 : 0) | (pte & PTE_RW ? 2 : 0) | (pte & PTE_US ? 4 : 0) |
                    (rsvd ? 8 : 0) | (write ? 16 : 0) | (huge ? 32 : 0));
    expect_edit(c, pte, esize, present, rsvd, write, at, lin);
}

/* rep stos/movs/lods whose destination runs forward into the read-only
 * page after DATA, or whose source runs backward into the not-present
 * page below NXPAGE: the iterations before the faulting element are done
 * (memory, rCX, rSI, rDI) and the fault points at the instruction. A zero
 * count does nothing at all. */
static void gen_string(struct tcase *c, struct rng *r)
{
    unsigned w = pick(r, c->mode == M64 ? 4 : 3), size = 1u << w, op = pick(r, 3); /* stos movs lods */
    int src_fault = op != 0 && pick(r, 2);
    unsigned done = pick(r, 9), extra = pick(r, 5);
    if (op == 2)
        src_fault = 1;
    if (!extra && !done)
        extra = pick(r, 2);
    uint64_t count = done + extra, rsi = 0, rdi = 0, fault_at = 0;
    int dfl = src_fault; /* backward through the source; forward through the destination */
    if (src_fault) {
        rsi = NXPAGE + (uint64_t)(done ? done - 1 : 0) * size;
        /* with done = 0 the first element already faults */
        if (!done)
            rsi = NXPAGE - size;
        rdi = DATA + 0x800;
        fault_at = NXPAGE - size;
        if (!done)
            fault_at = rsi;
    } else {
        rdi = ROPAGE - (uint64_t)done * size;
        rsi = DATA + 0x100;
        fault_at = ROPAGE;
    }
    uint64_t m = c->mode == M64 ? ~0ull : 0xffffffffull;
    c->regs.rcx = (c->regs.rcx & ~m) | count;
    c->regs.rsi = (c->regs.rsi & ~m) | rsi;
    c->regs.rdi = (c->regs.rdi & ~m) | rdi;
    c->regs.rflags = (c->regs.rflags & ~0x400ull) | (dfl ? 0x400 : 0);
    if (size == 2)
        c->code[c->len++] = 0x66;
    c->code[c->len++] = 0xf3; /* rep */
    if (size == 8)
        c->code[c->len++] = 0x48;
    static const uint8_t opc[3] = { 0xaa, 0xa4, 0xac };
    c->code[c->len++] = (uint8_t)(opc[op] + (size > 1));
    c->form = (int)(op * 8 + w * 2 + src_fault);
    /* how far each pointer moved, and the fault */
    int64_t step = dfl ? -(int64_t)size : (int64_t)size;
    uint64_t n = extra ? done : count; /* iterations that complete */
    expect_reg(c, 1, count - n);
    if (op != 0)
        expect_reg(c, 6, (rsi + (uint64_t)step * n) & m);
    if (op != 2)
        expect_reg(c, 7, (rdi + (uint64_t)step * n) & m);
    if (!extra) {
        c->x.vector = -1;
        return;
    }
    fault(c, 14, pf_err(c, !src_fault, !src_fault, 0, 0));
    c->x.check_cr2 = 1;
    c->x.cr2 = fault_at;
}

/* syscall from ring 3 (or ring 0) into the 64-bit handler at LSTAR: rcx
 * gets the return rip, r11 rflags, rflags loses FMASK's bits, CS and SS
 * come from STAR[47:32]. Outside 64-bit mode (EFER.LMA = 0, which the
 * 32-bit cases have) SCE is clear too: #UD. */
static void gen_syscall(struct tcase *c, struct rng *r)
{
    (void)r;
    EMIT(c, 0x0f, 0x05);
    c->form = 0;
    if (c->mode != M64) {
        fault(c, 6, 0);
        return;
    }
    c->x.vector = SYSCALL_VECTOR;
    c->x.rip = CODE + 2;
    expect_reg(c, 1, CODE + 2);
    expect_reg(c, 11, c->regs.rflags);
    c->x.flag_mask = 0x3f7fd5; /* every defined bit but RF */
    c->x.flag_val = c->regs.rflags & ~FMASK_VALUE & c->x.flag_mask;
}

/* What control-register and MSR writes refuse (#GP(0)), and CR0.WP. From
 * ring 3 each form faults at its first (privileged) instruction. */
static void gen_crmsr(struct tcase *c, struct rng *r)
{
    static const uint64_t efer[NMODES] = { 0xd01, 0, 0x800 };
    int m64 = c->mode == M64;
    c->form = (int)pick(r, 8);
    if (!m64 && (c->form == 2 || c->form == 3 || c->form == 4))
        c->form = 0;
    switch (c->form) {
    case 0: /* rdmsr of an MSR no CPU has */
        c->regs.rcx = 0x12345678;
        EMIT(c, 0x0f, 0x32);
        fault(c, 13, 0);
        break;
    case 1: /* wrmsr EFER with a reserved bit */
        c->regs.rcx = 0xc0000080;
        c->regs.rax = (uint32_t)(efer[c->mode] | 4);
        c->regs.rdx = 0;
        EMIT(c, 0x0f, 0x30);
        fault(c, 13, 0);
        break;
    case 2: /* wrmsr FS_BASE, non-canonical */
    case 3: /* ... canonical */
        c->regs.rcx = 0xc0000100;
        c->regs.rax = c->form == 2 ? 0 : DATA;
        c->regs.rdx = c->form == 2 ? 0x8000 : 0;
        EMIT(c, 0x0f, 0x30);
        if (c->form == 2 || c->ring == 3)
            fault(c, 13, 0);
        break;
    case 4: /* mov cr4, rax with a bit above 31 */
        c->regs.rax = 0x620 | 1ull << (32 + pick(r, 32));
        EMIT(c, 0x0f, 0x22, 0xe0);
        fault(c, 13, 0);
        break;
    case 5: /* mov cr0: paging without protection */
        c->regs.rax = c->cr0 & ~CR0_PE;
        EMIT(c, 0x0f, 0x22, 0xc0);
        fault(c, 13, 0);
        break;
    case 6: /* mov cr0: NW without CD */
        c->regs.rax = c->cr0 | 1ull << 29;
        EMIT(c, 0x0f, 0x22, 0xc0);
        fault(c, 13, 0);
        break;
    default: /* clear CR0.WP, then ring 0 writes the read-only page */
        c->regs.rbx = ROPAGE + pick(r, 4096);
        EMIT(c, 0x0f, 0x20, 0xc0);                   /* mov rax, cr0 */
        EMIT(c, 0x25, 0xff, 0xff, 0xfe, 0xff);       /* and eax, ~WP */
        EMIT(c, 0x0f, 0x22, 0xc0);                   /* mov cr0, rax */
        EMIT(c, 0x88, 0x0b);                         /* mov [rbx], cl */
        if (c->ring == 3)
            fault(c, 13, 0);
        break;
    }
}

/* lar, lsl, verr and verw on every kind of selector: ZF (kept by setz dl)
 * and what lar/lsl load. lar's bits 19:16 are undefined, so the case masks
 * them off (and eax, 0x00f0ff00); lsl's result goes through and eax, -1 so
 * a failed lsl in 64-bit mode leaves a defined register too. */
static void gen_desc(struct tcase *c, struct rng *r)
{
    static const uint16_t sels[] = { 0, 3, SEL_KDATA, SEL_KDATA | 3, SEL_UDATA | 3, SEL_UCODE | 3,
                                     SEL_KCODE, SEL_KCODE | 3, SEL_NPDATA | 3, SEL_RODATA | 3,
                                     0x7f3, 0x57, SEL_TSS, SEL_TSS | 3, 0x38 };
    unsigned si = pick(r, sizeof sels / sizeof sels[0]), op = pick(r, 4); /* lar lsl verr verw */
    uint16_t sel = sels[si];
    c->regs.rax = (c->regs.rax & ~0xffffull) | sel;
    c->form = (int)(si * 4 + op);
    static const uint8_t code[4][3] = { { 0x0f, 0x02, 0xc0 }, { 0x0f, 0x03, 0xc0 },
                                        { 0x0f, 0x00, 0xe0 }, { 0x0f, 0x00, 0xe8 } };
    emit(c, code[op], 3);
    EMIT(c, 0x0f, 0x94, 0xc2); /* setz dl */
    if (op == 0)
        EMIT(c, 0x25, 0x00, 0xff, 0xf0, 0x00); /* and eax, 0x00f0ff00 */
    else if (op == 1)
        EMIT(c, 0x83, 0xe0, 0xff);             /* and eax, -1 */

    /* the descriptor, as the GDT of this mode has it */
    unsigned cpl = c->ring == 3 ? 3 : 0, rpl = sel & 3, index = sel & ~7u;
    int zf = 0;
    uint64_t d = 0;
    if ((sel & ~3u) && !(sel & 4) && index + 7 <= GDT_LIMIT) {
        d = r64(image[c->mode], GDT + index);
        unsigned type = (unsigned)(d >> 40) & 0xf, s_ = (unsigned)(d >> 44) & 1;
        unsigned dpl = (unsigned)(d >> 45) & 3;
        int code_ = s_ && (type & 8), conforming = code_ && (type & 4);
        int priv_ok = conforming || (dpl >= cpl && dpl >= rpl);
        int sys_lar, sys_lsl;
        if (c->mode == M64) {
            sys_lar = type == 2 || type == 9 || type == 0xb || type == 0xc;
            sys_lsl = type == 2 || type == 9 || type == 0xb;
        } else {
            sys_lar = type && type != 8 && type != 0xa && type != 0xd && type != 0xe && type != 0xf;
            sys_lsl = type == 1 || type == 2 || type == 3 || type == 9 || type == 0xb;
        }
        if (d == 0)
            zf = 0;
        else if (op == 0)
            zf = (s_ || sys_lar) && priv_ok;
        else if (op == 1)
            zf = (s_ || sys_lsl) && priv_ok;
        else if (op == 2)
            zf = s_ && (!code_ || (type & 2)) && priv_ok;
        else
            zf = s_ && !code_ && (type & 2) && priv_ok;
    }
    uint64_t eax0 = (uint32_t)c->regs.rax;
    uint64_t limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
    if (d >> 55 & 1)
        limit = limit << 12 | 0xfff;
    if (op == 0)
        expect_reg(c, 0, (zf ? (d >> 32) : eax0) & 0x00f0ff00);
    else if (op == 1)
        expect_reg(c, 0, zf ? limit : eax0);
    expect_reg(c, 2, (c->regs.rdx & ~0xffull) | (unsigned)zf);
}

/* push, pop and call with the stack pointer in every kind of page, and
 * misaligned under alignment checking: a fault leaves rSP as it was. */
static void gen_stack(struct tcase *c, struct rng *r)
{
    static const uint64_t pages[] = { STACK, STACK, ROPAGE, NPAGE, SUPER };
    unsigned size = c->mode == M64 ? 8 : 4, op = pick(r, 4); /* push r, push imm, pop r, call */
    unsigned pg = pick(r, 5), reg = pick(r, 8);
    if (reg == 4)
        reg = 3;
    int ac = c->ring == 3 && pg == 0 && pick(r, 3) == 0;
    uint64_t sp = pages[pg] + 16 + (uint64_t)pick(r, 4096 / size - 8) * size;
    if (ac) {
        sp += 1 + pick(r, size - 1);
        c->cr0 |= CR0_AM;
        c->regs.rflags |= 1u << 18;
    }
    c->regs.rsp = sp;
    unsigned loop_at = 0;
    if (ac) /* aligned on the first pass of a loop, misaligned by one on the second */
        sp &= ~7ull, c->regs.rsp = sp;
    switch (op) {
    case 0: c->code[c->len++] = (uint8_t)(0x50 + reg); break;
    case 1: c->code[c->len++] = 0x6a; c->code[c->len++] = (uint8_t)pick(r, 256); break;
    case 2: c->code[c->len++] = (uint8_t)(0x58 + reg); break;
    default: EMIT(c, 0xe8, 0, 0, 0, 0); break; /* call the next instruction */
    }
    if (ac)
        emit_inc_and_loop(c, 4 /* rsp */, loop_at);
    c->form = (int)(op * 10 + pg * 2 + ac);
    int write = op != 2;
    uint64_t at = write ? sp - size : sp;
    int user = c->ring == 3, ok;
    switch (pg) {
    case 0: case 1: ok = 1; break;
    case 2: ok = !write; break;              /* read-only (WP in ring 0 too) */
    case 3: ok = 0; break;                   /* not present */
    default: ok = !user; break;              /* supervisor */
    }
    if (!ac && !ok && c->mode != M64 && c->ring == 0) {
        /* no stack switch: delivering the #PF pushes on the same bad
         * stack, so does the #DF after it: a triple fault */
        c->x.shutdown = 1;
        return;
    }
    if (ac || !ok) {
        if (ac) {
            fault(c, 17, 0);
            c->x.rip = CODE + loop_at;
            sp = (op == 2 ? sp + size : sp - size) + 1; /* after the first pass */
        } else {
            fault(c, 14, pf_err(c, pg != 3, write, 0, 0));
            c->x.check_cr2 = 1;
            c->x.cr2 = at;
        }
        c->x.check_frame_sp = 1; /* rSP as it was */
        c->x.frame_sp = sp;
        return;
    }
    c->x.vector = -1;
    expect_reg(c, 4, write ? sp - size : sp + size);
}

/* iret from ring 0 to ring 3 or ring 0, and from ring 3 to ring 3, with
 * frames whose CS or SS the CPU must refuse (SDM IRET, protected-mode
 * return): the checks on CS come first (null #GP(0); beyond the table,
 * not code, RPL < CPL, DPL != RPL #GP(cs); not present #NP(cs)), then for
 * a return to an outer level those on SS (null at CPL 3 #GP(0); RPL or
 * DPL != CS.RPL, not writable data #GP(ss); not present #SS(ss)). */
static void gen_iret(struct tcase *c, struct rng *r)
{
    static const struct { uint16_t cs, ss; } frames[] = {
        { SEL_UCODE | 3, SEL_UDATA | 3 }, { SEL_UCODE | 3, SEL_UDATA | 3 },
        { SEL_KCODE, SEL_KDATA },         { 0, SEL_UDATA | 3 },
        { SEL_KDATA, SEL_KDATA },         { SEL_UCODE, SEL_KDATA },
        { 0x7f3, SEL_UDATA | 3 },         { SEL_UCODE | 3, SEL_KDATA },
        { SEL_UCODE | 3, SEL_NPDATA | 3 }, { SEL_UCODE | 3, SEL_RODATA | 3 },
        { SEL_UCODE | 3, 3 },             { SEL_UCODE | 3, SEL_UCODE | 3 },
        { SEL_KCODE, 3 },                 { SEL_KCODE, 0 }, /* null SS: RPL must be the CPL */
    };
    unsigned f = pick(r, sizeof frames / sizeof frames[0]);
    uint16_t cs = frames[f].cs, ss = frames[f].ss;
    unsigned w = c->mode == M64 ? 8 : 4, cpl = c->ring == 3 ? 3 : 0, rpl = cs & 3;
    c->form = (int)f;
    if (c->mode == M64)
        c->code[c->len++] = 0x48;
    c->code[c->len++] = 0xcf;     /* iretq / iretd */
    uint64_t target = CODE + c->len; /* the case's closing out */
    uint64_t new_sp = STACK + 0x400 + 8 * pick(r, 64);
    uint64_t fl = 0x2 | (rnd(r) & 0x8d5) | (uint64_t)pick(r, 4) << 12 | (pick(r, 2) ? 0x200 : 0) |
                  (pick(r, 2) ? 0x400 : 0);
    c->regs.rsp = STACK + 0x800;
    uint64_t words[5] = { target, cs, fl, new_sp, ss };
    int outer = rpl > cpl;
    unsigned n = c->mode == M64 || outer ? 5 : 3;
    uint8_t frame[40];
    for (unsigned k = 0; k < n; k++)
        memcpy(frame + k * w, &words[k], w);
    place(c, c->regs.rsp, frame, n * w);

    /* CS */
    unsigned ci = cs & ~7u;
    int in_gdt = (cs & ~3u) && !(cs & 4) && ci + 7 <= GDT_LIMIT;
    uint64_t cd = in_gdt ? r64(image[c->mode], GDT + ci) : 0;
    int is_code = ((cd >> 43) & 3) == 3; /* S and the code bit */
    unsigned cdpl = (unsigned)(cd >> 45) & 3;
    if (!(cs & ~3u)) {
        fault(c, 13, 0);
    } else if (!in_gdt || !is_code || rpl < cpl || cdpl != rpl) {
        fault(c, 13, cs & 0xfffc);
    } else if (!((cd >> 47) & 1)) {
        fault(c, 11, cs & 0xfffc);
    } else if (outer || c->mode == M64) {
        /* SS, for a return to an outer level (and always in 64-bit mode,
         * where it is popped and checked for the same level too) */
        unsigned si = ss & ~7u;
        uint64_t sd = (ss & ~3u) && !(ss & 4) && si + 7 <= GDT_LIMIT ? r64(image[c->mode], GDT + si) : 0;
        int writable_data = ((sd >> 43) & 3) == 2 && ((sd >> 41) & 1);
        unsigned sdpl = (unsigned)(sd >> 45) & 3;
        if (!(ss & ~3u)) {
            if (c->mode != M64 || rpl == 3 || (ss & 3) != rpl)
                fault(c, 13, 0);
        } else if ((ss & 3) != rpl || !sd || !writable_data || sdpl != rpl) {
            fault(c, 13, ss & 0xfffc);
        } else if (!((sd >> 47) & 1)) {
            fault(c, 12, ss & 0xfffc);
        }
    }
    if (c->x.vector >= 0)
        return;
    /* Completed at the closing out, at CS's level. */
    c->x.check_sel = 1;
    c->x.sreg = 5;
    c->x.sel = cs;
    uint64_t want_fl = fl;
    if (cpl > 0) { /* IOPL only at CPL 0, IF only at CPL <= IOPL */
        unsigned iopl = (unsigned)(c->regs.rflags >> 12) & 3;
        want_fl = (want_fl & ~0x3000ull) | (c->regs.rflags & 0x3000);
        if (cpl > iopl)
            want_fl = (want_fl & ~0x200ull) | (c->regs.rflags & 0x200);
    }
    c->x.flag_mask = 0x3f7fd5 & ~0x10000ull;
    c->x.flag_val = want_fl & c->x.flag_mask;
    if (n == 5) {
        c->x.check_sel2 = 1;
        c->x.sel2 = ss;
        expect_reg(c, 4, new_sp);
    } else {
        expect_reg(c, 4, STACK + 0x800 + 3 * w);
    }
}

/* Far call and jmp through a pointer in DATA (m16:32) in 64-bit mode:
 * through 64-bit call gates of DPL 3 and 0, a missing one, one to ring-3
 * code and one to a data segment, and straight to ring-0 or ring-3 code
 * (jmp only: a direct far call's 32-bit pushes are left out). A call
 * through a gate to a more privileged level switches to TSS.RSP0 and
 * pushes SS, RSP, CS, RIP (8 bytes each; SS becomes null); at the same
 * level it pushes CS, RIP; a jmp pushes nothing and cannot change level. */
static void gen_far(struct tcase *c, struct rng *r)
{
    static const uint16_t sels[] = { SEL_GATE3 | 3, SEL_GATE0, SEL_GATENP | 3, SEL_GATEU | 3,
                                     SEL_GATED | 3, 0, SEL_UCODE | 3, SEL_KCODE };
    if (c->mode != M64) { /* 32-bit far transfers are not generated: a nop case */
        c->form = 0;
        EMIT(c, 0x90);
        return;
    }
    unsigned si = pick(r, sizeof sels / sizeof sels[0]), call = pick(r, 2);
    uint16_t sel = sels[si];
    if (sel == SEL_UCODE || sel == (SEL_UCODE | 3) || sel == SEL_KCODE)
        call = 0;
    c->form = (int)(si * 2 + call);
    uint64_t ptr = DATA + 8 * pick(r, 500);
    uint32_t off = sel == (SEL_UCODE | 3) ? USTUB : GATE_STUB;
    place(c, ptr, (const uint32_t[]){ off, sel }, 6); /* m16:32 */
    c->regs.rdi = ptr;
    c->code[c->len++] = 0xff;
    c->code[c->len++] = call ? 0x1f : 0x2f; /* call/jmp far [rdi] */
    uint64_t ret = CODE + c->len; /* the instruction after: the closing out */
    unsigned cpl = c->ring == 3 ? 3 : 0;
    uint64_t sp = c->regs.rsp;
    switch (sel & ~3u) {
    case 0:
        fault(c, 13, 0);
        return;
    case SEL_GATE3:
    case SEL_GATE0: {
        unsigned gdpl = (sel & ~3u) == SEL_GATE3 ? 3 : 0;
        if (gdpl < cpl || gdpl < (sel & 3u)) {
            fault(c, 13, sel & 0xfffc);
            return;
        }
        if (!call && cpl != 0) { /* jmp cannot change the level */
            fault(c, 13, SEL_KCODE);
            return;
        }
        c->x.vector = GATE_VECTOR;
        c->x.land_cs = SEL_KCODE;
        if (!call) {
            expect_reg(c, 4, sp);
        } else if (cpl == 3) { /* to ring 0: the ring-0 stack, SS:RSP of ring 3 */
            c->x.npush = 4;
            c->x.push[0] = ret, c->x.push[1] = SEL_UCODE | 3, c->x.push[2] = sp;
            c->x.push[3] = SEL_UDATA | 3;
            expect_reg(c, 4, IST_TOP - 32);
        } else {
            c->x.npush = 2;
            c->x.push[0] = ret, c->x.push[1] = SEL_KCODE;
            expect_reg(c, 4, sp - 16);
        }
        return;
    }
    case SEL_GATENP:
        fault(c, 11, SEL_GATENP);
        return;
    case SEL_GATEU:
        if (cpl == 0) { /* to a less privileged level: refused */
            fault(c, 13, SEL_UCODE);
            return;
        }
        c->x.vector = USTUB_VECTOR;
        c->x.land_cs = SEL_UCODE | 3;
        if (call) {
            c->x.npush = 2;
            c->x.push[0] = ret, c->x.push[1] = SEL_UCODE | 3;
            expect_reg(c, 4, sp - 16);
        } else {
            expect_reg(c, 4, sp);
        }
        return;
    case SEL_GATED:
        fault(c, 13, SEL_KDATA);
        return;
    case SEL_UCODE: /* jmp far to ring-3 code */
        if (cpl != 3) {
            fault(c, 13, SEL_UCODE);
            return;
        }
        c->x.vector = USTUB_VECTOR;
        c->x.land_cs = SEL_UCODE | 3;
        expect_reg(c, 4, sp);
        return;
    default: /* jmp far to ring-0 code */
        if (cpl != 0) {
            fault(c, 13, SEL_KCODE);
            return;
        }
        c->x.vector = GATE_VECTOR;
        c->x.land_cs = SEL_KCODE;
        expect_reg(c, 4, sp);
        return;
    }
}

/* mov Sreg, ax with every kind of selector. */
static void gen_seg(struct tcase *c, struct rng *r)
{
    static const uint16_t sels[] = { 0, 3, SEL_KDATA, SEL_KDATA | 3, SEL_UDATA | 3, SEL_UDATA,
                                     SEL_UCODE | 3, SEL_NPDATA | 3, SEL_RODATA | 3, 0x7f3,
                                     0x57, SEL_TSS | 3, SEL_KCODE };
    unsigned s = pick(r, sizeof sels / sizeof sels[0]), sreg = pick(r, 5);
    static const uint8_t modrm[5] = { 0xd8, 0xc0, 0xe0, 0xe8, 0xd0 }; /* ds es fs gs ss */
    uint16_t sel = sels[s];
    c->regs.rax = (c->regs.rax & ~0xffffull) | sel;
    c->code[c->len++] = 0x8e;
    c->code[c->len++] = modrm[sreg];
    c->form = (int)(s * 5 + sreg);
    unsigned cpl = c->ring == 3 ? 3 : 0, rpl = sel & 3, index = sel & ~7u;
    c->x.vector = -1;
    c->x.check_sel = 1;
    c->x.sreg = (int)sreg;
    c->x.sel = sel;
    if ((sel & ~3u) == 0) {
        /* SS may be null only in 64-bit mode, below ring 3, RPL = CPL */
        if (sreg == 4 && (c->mode != M64 || cpl == 3 || rpl != cpl))
            fault(c, 13, 0);
    } else if ((sel & 4) || index + 7 > GDT_LIMIT) {
        fault(c, 13, sel & 0xfffc);
    } else {
        unsigned dpl = index == SEL_KDATA || index == SEL_KCODE ? 0 : 3;
        int code = index == SEL_UCODE || index == SEL_KCODE, sys = index == SEL_TSS;
        int writable = index == SEL_KDATA || index == SEL_UDATA || index == SEL_NPDATA;
        int present = index != SEL_NPDATA;
        if (sreg == 4) {
            if (rpl != cpl || dpl != cpl || code || sys || !writable)
                fault(c, 13, sel & 0xfffc);
            else if (!present)
                fault(c, 12, sel & 0xfffc);
        } else {
            /* data or readable code (both code descriptors are readable) */
            if (sys || (dpl < cpl || dpl < rpl))
                fault(c, 13, sel & 0xfffc);
            else if (!present)
                fault(c, 11, sel & 0xfffc);
        }
    }
    if (c->x.vector >= 0)
        c->x.check_sel = 0;
}

static void generate(struct tcase *c, uint64_t seed, int mode, int ring)
{
    struct rng r = { seed };
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->mode = mode;
    c->ring = ring;
    c->x.vector = -1;
    for (unsigned i = 0; i < 16; i++)
        *gpr(&c->regs, i) = mode == M64 ? rnd(&r) : (uint32_t)rnd(&r);
    c->regs.rsp = STACK + 0xff0;
    unsigned iopl = ring == 3 ? pick(&r, 4) : 0;
    c->regs.rflags = 0x2 | (uint64_t)iopl << 12 | (rnd(&r) & 0x8d5); /* arithmetic flags, DF */
    c->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    c->tmpl = (int)pick(&r, T_COUNT);
    switch (c->tmpl) {
    case T_PRIV: gen_priv(c, &r); break;
    case T_INT: gen_int(c, &r); break;
    case T_ARITH: gen_arith(c, &r); break;
    case T_MEM: gen_mem(c, &r); break;
    case T_FETCH: gen_fetch(c, &r); break;
    case T_PTEDIT: gen_ptedit(c, &r); break;
    case T_LARGE: gen_large(c, &r); break;
    case T_STRING: gen_string(c, &r); break;
    case T_SYSCALL: gen_syscall(c, &r); break;
    case T_CRMSR: gen_crmsr(c, &r); break;
    case T_DESC: gen_desc(c, &r); break;
    case T_STACK: gen_stack(c, &r); break;
    case T_IRET: gen_iret(c, &r); break;
    case T_FAR: gen_far(c, &r); break;
    default: gen_seg(c, &r); break;
    }
    c->code[c->len++] = 0xe6;
    c->code[c->len++] = PORT; /* out PORT, al */
}

/* ---- running a case ------------------------------------------------------------- */

#define NWATCHED 10
#define NDATA 6 /* the first NDATA are data pages, filled anew for every case */
static const uint64_t watched[NWATCHED] = { DATA,  ROPAGE, SUPER, STACK, FRAME,
                                            NXPAGE, PT,   PDPT,  PD2,   PML4 };

struct outcome {
    int kind; /* 0 completed, 1 exception, 2 another exit */
    int reason; /* the last exit's VX_EXIT_* */
    char what[200];
    uint64_t frame[7]; /* vector, error code, rip, cs, rflags, rsp, ss */
    vx_x86_regs regs;
    vx_x86_sregs sregs;
    uint8_t pages[NWATCHED][4096]; /* watched[] */
};



static void put(struct side *s, uint64_t gpa, const void *p, size_t len)
{
    /* through the API, so tcg drops translations of what changed */
    if (vx_memory_write(s->m, gpa, p, len))
        die("%s: vx_memory_write: %s", s->name, vx_last_error());
}

static void run_case(struct side *s, const struct tcase *c, struct outcome *o)
{
    uint8_t *ram = s->ram;
    const uint8_t *img = image[c->mode];
    put(s, PML4, img + PML4, STUBS + 0x1000 - PML4); /* paging, GDT, IDT, handlers */
    put(s, TSS, img + TSS, 0x3000);
    static uint8_t page[4096];
    struct rng r = { mix(c->seed ^ 0x5eed) };
    for (unsigned p = 0; p < NDATA; p++) { /* the data pages; paging structures come from the image */
        for (unsigned k = 0; k < 4096; k += 8) {
            uint64_t v = rnd(&r);
            memcpy(page + k, &v, 8);
        }
        if (c->placed_len && c->placed_at - watched[p] < 4096)
            memcpy(page + (c->placed_at - watched[p]), c->placed, c->placed_len);
        put(s, watched[p], page, 4096);
    }
    memset(page, 0xcc, 4096);
    memcpy(page, c->code, c->len);
    memcpy(page + (USTUB - CODE), (const uint8_t[]){ 0xe6, PORT, 0xf4 }, 3);
    /* Unchanged code is not written again: a translator keeps its blocks
     * (from their second run on) and runs them as translated code. */
    if (memcmp(ram + CODE, page, 4096))
        put(s, CODE, page, 4096);

    vx_x86_sregs sr;
    memset(&sr, 0, sizeof sr);
    vx_x86_segment code = { 0, 0xffffffff, SEL_KCODE, 0xb, 1, 0, 0, 1, 1, 1, 0 };
    vx_x86_segment data = { 0, 0xffffffff, SEL_KDATA, 0x3, 1, 0, 1, 1, 0, 1, 0 };
    if (c->mode != M64)
        code.l = 0, code.db = 1;
    if (c->ring == 3) {
        code.selector = SEL_UCODE | 3, code.dpl = 3;
        data.selector = SEL_UDATA | 3, data.dpl = 3;
    }
    sr.cs = code;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
    sr.tr = (vx_x86_segment){ TSS, TSS_LIMIT, SEL_TSS, 0xb, 1, 0, 0, 0, 0, 0, 0 };
    sr.ldt = (vx_x86_segment){ 0, 0, 0, 0x2, 0, 0, 0, 0, 0, 0, 0 };
    sr.gdt = (vx_x86_dtable){ GDT, GDT_LIMIT };
    sr.idt = (vx_x86_dtable){ IDT, c->mode == M64 ? 256 * 16 - 1 : 256 * 8 - 1 };
    sr.cr0 = c->cr0;
    static const uint64_t cr3[NMODES] = { PML4, PML4, PDPT };
    static const uint64_t cr4[NMODES] = { 0x20, 0x10, 0x20 }; /* PAE; PSE; PAE */
    static const uint64_t efer[NMODES] = { 0x100 | 0x400 | 0x800 | 0x1, 0, 0x800 };
    sr.cr3 = cr3[c->mode];
    sr.cr4 = cr4[c->mode] | 0x200 | 0x400; /* OSFXSR, OSXMMEXCPT */
    sr.efer = efer[c->mode]; /* 64-bit: LME, LMA, NXE, SCE; PAE: NXE */
    sr.apic_base = 0xfee00900;
    vx_x86_regs regs = c->regs;
    regs.rip = CODE;
    if (vx_vcpu_set_sregs(s->v, &sr) || vx_vcpu_set_regs(s->v, &regs) ||
        (c->mode == M64 && (vx_vcpu_set_msr(s->v, 0xc0000081, STAR_VALUE) ||
                            vx_vcpu_set_msr(s->v, 0xc0000082, SYSCALL_STUB) ||
                            vx_vcpu_set_msr(s->v, 0xc0000084, FMASK_VALUE))))
        die("%s: setting up case %" PRIu64 ": %s", s->name, c->seed, vx_last_error());

    memset(o, 0, sizeof *o);
    vx_exit e = { .size = sizeof e };
    for (int steps = 0;; steps++) {
        if (vx_vcpu_run(s->v, &e))
            die("%s: vx_vcpu_run: %s", s->name, vx_last_error());
        if (e.reason == VX_EXIT_IO && e.u.io.port != PORT && steps < 4) {
            if (!e.u.io.is_write)
                e.u.io.value = 0x5a;
            continue;
        }
        break;
    }
    o->reason = (int)e.reason;
    if (vx_vcpu_get_regs(s->v, &o->regs) || vx_vcpu_get_sregs(s->v, &o->sregs))
        die("%s: %s", s->name, vx_last_error());
    if (e.reason != VX_EXIT_IO || e.u.io.port != PORT) {
        o->kind = 2;
        snprintf(o->what, sizeof o->what, "exit %d (%s)", (int)e.reason,
                 e.reason == VX_EXIT_IO ? "another port" : vx_last_error());
    } else if (c->mode == M64 && ((o->regs.rip >= GATE_STUB && o->regs.rip < GATE_STUB + 16) ||
                                  (o->regs.rip >= USTUB && o->regs.rip < USTUB + 16))) {
        /* a far call or jump landed: what is at rSP now (what a call pushed) */
        o->kind = 1;
        o->frame[0] = o->regs.rip < CODE ? GATE_VECTOR : USTUB_VECTOR;
        for (unsigned k = 0; k < 4; k++)
            if (o->regs.rsp >= 0x1000 && o->regs.rsp + 8 * k + 8 <= RAM)
                o->frame[2 + k] = r64(ram, o->regs.rsp + 8 * k);
    } else if (c->mode == M64 && o->regs.rip >= SYSCALL_STUB && o->regs.rip < SYSCALL_STUB + 16) {
        /* syscall has no frame: report what it leaves where a frame would be */
        o->kind = 1;
        o->frame[0] = SYSCALL_VECTOR;
        o->frame[2] = o->regs.rcx;
        o->frame[3] = o->sregs.cs.selector;
        o->frame[4] = o->regs.r11;
        o->frame[6] = o->sregs.ss.selector;
    } else if ((o->sregs.cs.selector & 3) == 0 && o->regs.rip >= STUBS &&
               o->regs.rip < STUBS + 256 * 16) {
        o->kind = 1;
        if (c->mode == M64) {
            for (unsigned k = 0; k < 7; k++)
                o->frame[k] = r64(ram, IST_TOP - 56 + 8 * k);
        } else {
            /* vector, error, eip, cs, eflags, and esp, ss after a ring change */
            uint32_t at, w;
            memcpy(&at, ram + FRAMEPTR, 4);
            unsigned words = c->ring == 3 ? 7 : 5;
            for (unsigned k = 0; k < words && at >= FRAMEPTR && at + 4 * k + 4 <= RAM; k++) {
                memcpy(&w, ram + at + 4 * k, 4);
                o->frame[k] = w;
            }
        }
    } else if (o->regs.rip == CODE + c->len) {
        o->kind = 0;
    } else {
        o->kind = 2;
        snprintf(o->what, sizeof o->what, "out at rip 0x%" PRIx64, o->regs.rip);
    }
    for (unsigned p = 0; p < NWATCHED; p++)
        memcpy(o->pages[p], ram + watched[p], 4096);
}

/* ---- checks ------------------------------------------------------------------- */

static const char *sreg_name[6] = { "ds", "es", "fs", "gs", "ss", "cs" };

static uint16_t sreg_sel(const vx_x86_sregs *s, int k)
{
    const vx_x86_segment *t[6] = { &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->cs };
    return t[k]->selector;
}

/* Against the expectation: NULL if it holds, else what differs. */
static const char *check_expect(const struct tcase *c, const struct outcome *o, char *buf,
                                size_t len)
{
    const struct expect *x = &c->x;
    if (x->shutdown) {
        if (o->reason == VX_EXIT_SHUTDOWN)
            return NULL;
        snprintf(buf, len, "want a triple fault (VX_EXIT_SHUTDOWN), got %s",
                 o->kind == 0 ? "completion" : o->kind == 1 ? "an exception" : o->what);
        return buf;
    }
    if (o->kind == 2) {
        snprintf(buf, len, "ended with %s", o->what);
        return buf;
    }
    if (x->vector < 0 && o->kind != 0) {
        snprintf(buf, len, "want no exception, got vector %" PRIu64 " error 0x%" PRIx64
                 " at 0x%" PRIx64, o->frame[0], o->frame[1], o->frame[2]);
        return buf;
    }
    if (x->vector >= 0) {
        if (o->kind != 1) {
            snprintf(buf, len, "want vector %d error 0x%x, it completed", x->vector, x->err);
            return buf;
        }
        if (x->vector == GATE_VECTOR || x->vector == USTUB_VECTOR) {
            if (o->frame[0] != (uint64_t)x->vector || o->sregs.cs.selector != x->land_cs) {
                snprintf(buf, len, "want landing %d with cs 0x%x, got %" PRIu64 " cs 0x%x",
                         x->vector, x->land_cs, o->frame[0], o->sregs.cs.selector);
                return buf;
            }
            for (unsigned k = 0; k < x->npush; k++)
                if (o->frame[2 + k] != x->push[k]) {
                    snprintf(buf, len, "pushed qword %u is 0x%" PRIx64 ", want 0x%" PRIx64, k,
                             o->frame[2 + k], x->push[k]);
                    return buf;
                }
        } else if (o->frame[0] != (uint64_t)x->vector || o->frame[1] != x->err ||
            o->frame[2] != x->rip) {
            snprintf(buf, len, "want vector %d error 0x%x rip 0x%" PRIx64 ", got vector %" PRIu64
                     " error 0x%" PRIx64 " rip 0x%" PRIx64, x->vector, x->err, x->rip,
                     o->frame[0], o->frame[1], o->frame[2]);
            return buf;
        }
        uint64_t want_cs = c->ring == 3 && x->vector != SYSCALL_VECTOR ? (SEL_UCODE | 3)
                                                                        : SEL_KCODE;
        if (x->vector < GATE_VECTOR && o->frame[3] != want_cs) {
            snprintf(buf, len, "frame cs 0x%" PRIx64 ", want 0x%" PRIx64, o->frame[3], want_cs);
            return buf;
        }
    }
    if (x->check_frame_sp && o->frame[5] != x->frame_sp) {
        snprintf(buf, len, "rSP in the frame 0x%" PRIx64 ", want 0x%" PRIx64, o->frame[5],
                 x->frame_sp);
        return buf;
    }
    if (x->check_cr2 && o->sregs.cr2 != x->cr2) {
        snprintf(buf, len, "CR2 0x%" PRIx64 ", want 0x%" PRIx64, o->sregs.cr2, x->cr2);
        return buf;
    }
    if (x->check_pte) {
        unsigned p = 0;
        while (p < NWATCHED && (x->pte_at & ~0xfffull) != watched[p])
            p++;
        if (p == NWATCHED)
            die("case %" PRIu64 ": PTE 0x%" PRIx64 " outside the watched pages", c->seed, x->pte_at);
        uint64_t got = 0;
        memcpy(&got, o->pages[p] + (x->pte_at & 0xfff), x->pte_size == 4 ? 4 : 8);
        if (got != x->pte_want) {
            snprintf(buf, len, "PTE at 0x%" PRIx64 " is 0x%" PRIx64 ", want 0x%" PRIx64,
                     x->pte_at, got, x->pte_want);
            return buf;
        }
    }
    uint64_t gm = c->mode == M64 ? ~0ull : 0xffffffffull;
    for (unsigned k = 0; k < x->nregs; k++) {
        uint64_t got = *gpr((vx_x86_regs *)&o->regs, x->reg[k]) & gm;
        if (got != (x->val[k] & gm)) {
            snprintf(buf, len, "register %u = 0x%" PRIx64 ", want 0x%" PRIx64, x->reg[k], got,
                     x->val[k] & gm);
            return buf;
        }
    }
    if ((o->regs.rflags & x->flag_mask) != x->flag_val) {
        snprintf(buf, len, "rflags 0x%" PRIx64 ", want 0x%" PRIx64 " in 0x%" PRIx64,
                 o->regs.rflags, x->flag_val, x->flag_mask);
        return buf;
    }
    if (x->check_sel2 && o->sregs.ss.selector != x->sel2) {
        snprintf(buf, len, "ss = 0x%x, want 0x%x", o->sregs.ss.selector, x->sel2);
        return buf;
    }
    if (x->check_sel && sreg_sel(&o->sregs, x->sreg) != x->sel) {
        snprintf(buf, len, "%s = 0x%x, want 0x%x", sreg_name[x->sreg],
                 sreg_sel(&o->sregs, x->sreg), x->sel);
        return buf;
    }
    return NULL;
}

/* tcg against kvm: NULL if they agree. RF in a pushed rflags and the
 * host-visible IF/IOPL are left out (kvm_pvm shows the host's). */
static const char *compare(const struct tcase *c, const struct outcome *a,
                           const struct outcome *b, char *buf, size_t len)
{
    /* outside 64-bit mode only the low halves exist for the guest */
    uint64_t gm = c->mode == M64 ? ~0ull : 0xffffffffull;
    if (a->kind != b->kind) {
        snprintf(buf, len, "outcome %d vs %d", a->kind, b->kind);
        return buf;
    }
    if (a->kind == 2) { /* a shutdown (the expectation held): the state after it is not defined */
        if (a->reason == b->reason)
            return NULL;
        snprintf(buf, len, "exit %d vs %d", a->reason, b->reason);
        return buf;
    }
    const uint64_t *ra = &a->regs.rax, *rb = &b->regs.rax;
    static const char *names[18] = { "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8",
                                     "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
                                     "rflags" };
    for (unsigned k = 0; k < 17; k++)
        if ((ra[k] & gm) != (rb[k] & gm)) {
            snprintf(buf, len, "%s 0x%" PRIx64 " vs 0x%" PRIx64, names[k], ra[k], rb[k]);
            return buf;
        }
    uint64_t fm = ~(0x10000ull | 0x3200ull);
    if ((a->regs.rflags & fm) != (b->regs.rflags & fm)) {
        snprintf(buf, len, "rflags 0x%" PRIx64 " vs 0x%" PRIx64, a->regs.rflags, b->regs.rflags);
        return buf;
    }
    if (a->kind == 1)
        for (unsigned k = 0; k < 7; k++) {
            uint64_t m = k == 4 ? fm : ~0ull;
            if ((a->frame[k] & m) != (b->frame[k] & m)) {
                snprintf(buf, len, "frame word %u 0x%" PRIx64 " vs 0x%" PRIx64, k, a->frame[k],
                         b->frame[k]);
                return buf;
            }
        }
    if (a->sregs.cr2 != b->sregs.cr2 || a->sregs.cr0 != b->sregs.cr0) {
        snprintf(buf, len, "cr0/cr2 0x%" PRIx64 "/0x%" PRIx64 " vs 0x%" PRIx64 "/0x%" PRIx64,
                 a->sregs.cr0, a->sregs.cr2, b->sregs.cr0, b->sregs.cr2);
        return buf;
    }
    for (unsigned p = 0; p < NWATCHED; p++)
        for (unsigned k = 0; k < 4096; k++)
            if (a->pages[p][k] != b->pages[p][k]) {
                snprintf(buf, len, "memory at 0x%" PRIx64 ": 0x%02x vs 0x%02x", watched[p] + k,
                         a->pages[p][k], b->pages[p][k]);
                return buf;
            }
    return NULL;
}

static void print_case(const struct tcase *c, const struct outcome *o, const char *who)
{
    printf("  case seed 0x%016" PRIx64 " (ring %d, %s form %d): code", c->seed, c->ring,
           tname[c->tmpl], c->form);
    for (unsigned k = 0; k < c->len; k++)
        printf(" %02x", c->code[k]);
    printf("\n  expected: %s", c->x.vector < 0 ? "completes" : "exception");
    if (c->x.vector >= 0)
        printf(" vector %d error 0x%x rip 0x%" PRIx64, c->x.vector, c->x.err, c->x.rip);
    printf("\n  %s: ", who);
    if (o->kind == 0)
        printf("completed");
    else if (o->kind == 1)
        printf("vector %" PRIu64 " error 0x%" PRIx64 " rip 0x%" PRIx64 " cs 0x%" PRIx64
               " rflags 0x%" PRIx64, o->frame[0], o->frame[1], o->frame[2], o->frame[3],
               o->frame[4]);
    else
        printf("%s", o->what);
    printf("; cr2 0x%" PRIx64 " rax 0x%" PRIx64 " rcx 0x%" PRIx64 " rdx 0x%" PRIx64 "\n",
           o->sregs.cr2, o->regs.rax, o->regs.rcx, o->regs.rdx);
}

/* ---- main ------------------------------------------------------------------------ */

/* Per mode and ring (index mode * 2 + (ring == 3)). */
#define SLOTS (NMODES * 2)
static uint64_t ran[SLOTS][T_COUNT], formseen[SLOTS][T_COUNT][FORMS];
static uint64_t kvm_compared, kvm_disagrees[SLOTS][T_COUNT][FORMS], failed[SLOTS][T_COUNT][FORMS];

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--seed") && i + 1 < argc)
            opt.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--count") && i + 1 < argc)
            opt.count = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "--ring") && i + 1 < argc) {
            const char *v = argv[++i];
            opt.rings = !strcmp(v, "0") ? 1 : !strcmp(v, "3") ? 8 : !strcmp(v, "all") ? 9 : -1;
            if (opt.rings < 0)
                die("--ring 0, 3 or all");
        } else if (!strcmp(a, "--mode") && i + 1 < argc) {
            const char *v = argv[++i];
            opt.modes = 0;
            for (int m = 0; m < NMODES; m++)
                if (!strcmp(v, mname[m]))
                    opt.modes = 1 << m;
            if (!strcmp(v, "all"))
                opt.modes = (1 << NMODES) - 1;
            if (!opt.modes)
                die("--mode long64, prot32, pae32 or all");
        } else if (!strcmp(a, "-v"))
            opt.verbose = 1;
        else {
            fprintf(stderr, "usage: difftest-sys [--seed S] [--count N] [--ring 0|3|all] "
                    "[--mode long64|prot32|pae32|all] [-v]\n");
            return 99;
        }
    }
    if (!vx_accel_available(VX_ACCEL_TCG)) {
        printf("SKIP: tcg is not available: %s\n", vx_last_error());
        return 77;
    }
    struct side tcg, kvm;
    for (int m = 0; m < NMODES; m++)
        build_tables(image[m], m);
    side_open(&tcg, VX_ACCEL_TCG, "tcg");
    int have_kvm = vx_accel_available(VX_ACCEL_KVM);
    if (have_kvm)
        side_open(&kvm, VX_ACCEL_KVM, "kvm");
    else
        printf("difftest-sys: kvm: not available (%s): tcg is checked against the SDM's "
               "expected results only\n", vx_last_error());

    int modes[NMODES], nmodes = 0;
    for (int m = 0; m < NMODES; m++)
        if (opt.modes & (1 << m))
            modes[nmodes++] = m;
    static struct tcase c;
    static struct outcome ot, ok;
    char buf[300];
    /* Each failing form is shown once (its first case); the run goes on
     * until 20 forms have failed. */
    int failures = 0, classes = 0;
    for (uint64_t n = 0; n < opt.count && classes < 20; n++) {
        int ring = opt.rings == 9 ? (n & 1 ? 3 : 0) : opt.rings == 1 ? 0 : 3;
        int mode = modes[(n >> (opt.rings == 9)) % (unsigned)nmodes];
        int si = mode * 2 + (ring == 3);
        generate(&c, mix(opt.seed * 0x10001ull + n), mode, ring);
        ran[si][c.tmpl]++;
        formseen[si][c.tmpl][c.form % FORMS]++;
        /* twice on tcg: the first run decodes as it goes, the second runs
         * the blocks it kept (translated, with their fast paths) */
        run_case(&tcg, &c, &ot);
        const char *why = check_expect(&c, &ot, buf, sizeof buf);
        if (!why) {
            static struct outcome again;
            run_case(&tcg, &c, &again);
            if ((why = check_expect(&c, &again, buf, sizeof buf)) ||
                (why = compare(&c, &ot, &again, buf, sizeof buf)))
                ot = again;
        }
        if (why) {
            failures++;
            if (!failed[si][c.tmpl][c.form % FORMS]++) {
                classes++;
                printf("FAIL: tcg against the expected result: %s\n", why);
                print_case(&c, &ot, "tcg");
            }
            continue;
        }
        if (!have_kvm)
            continue;
        run_case(&kvm, &c, &ok);
        if (check_expect(&c, &ok, buf, sizeof buf)) {
            /* kvm (or its emulator) disagrees with the SDM here: say so
             * once per form, do not compare */
            if (!kvm_disagrees[si][c.tmpl][c.form % FORMS]++ || opt.verbose) {
                printf("note: kvm disagrees with the expected result (form not compared): %s\n",
                       buf);
                print_case(&c, &ok, "kvm");
            }
            continue;
        }
        kvm_compared++;
        if ((why = compare(&c, &ot, &ok, buf, sizeof buf))) {
            failures++;
            if (!failed[si][c.tmpl][c.form % FORMS]++) {
                classes++;
                printf("FAIL: tcg and kvm differ: %s\n", why);
                print_case(&c, &ot, "tcg");
                print_case(&c, &ok, "kvm");
            }
        }
    }
    for (int si = 0; si < SLOTS; si++) {
        uint64_t total = 0;
        for (int t = 0; t < T_COUNT; t++)
            total += ran[si][t];
        if (!total)
            continue;
        printf("difftest-sys: %s ring %d:", mname[si / 2], si & 1 ? 3 : 0);
        for (int t = 0; t < T_COUNT; t++) {
            unsigned forms = 0;
            for (int f = 0; f < FORMS; f++)
                forms += formseen[si][t][f] != 0;
            printf(" %s %" PRIu64 " (%u forms)", tname[t], ran[si][t], forms);
        }
        printf("\n");
    }
    if (have_kvm)
        printf("difftest-sys: %" PRIu64 " cases compared between tcg and kvm\n", kvm_compared);
    if (failures)
        printf("difftest-sys: %d failing cases in %d forms (each form's first case shown)\n",
               failures, classes);
    printf("difftest-sys: %" PRIu64 " cases from seed %" PRIu64 ": %s\n", opt.count, opt.seed,
           failures ? "MISMATCHES" : "all agree");
    vx_machine_destroy(tcg.m);
    if (have_kvm)
        vx_machine_destroy(kvm.m);
    return failures ? 1 : 0;
}
