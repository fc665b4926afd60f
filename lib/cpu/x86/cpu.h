/*
 * The x86 CPU as the translator sees it: architectural state, lazy flags,
 * and the hooks through which instruction semantics reach memory and ports.
 *
 * What an instruction does lives here (lib/cpu/x86); how instructions are
 * grouped, cached and run lives in lib/accel-tcg, which fills in `mem_ops`
 * and the soft TLB.
 *
 * Semantics return an enum x86_status: X86_OK, or why the block must stop
 * (an exception is pending in cpu->exc, an exit to the application, a
 * branch the block ends on).
 */
#ifndef VX_CPU_X86_CPU_H
#define VX_CPU_X86_CPU_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <libvx/x86.h>

#include "cpu/x86/fpu.h"
#include "mmu/tlb.h"

/* General registers, in encoding order. */
enum { R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI,
       R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15 };

/* Segment registers, in encoding order (sreg field of ModRM). */
enum { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, S_NONE = 7 };

/* RFLAGS bits. */
#define F_CF (1u << 0)
#define F_PF (1u << 2)
#define F_AF (1u << 4)
#define F_ZF (1u << 6)
#define F_SF (1u << 7)
#define F_TF (1u << 8)
#define F_IF (1u << 9)
#define F_DF (1u << 10)
#define F_OF (1u << 11)
#define F_IOPL (3u << 12)
#define F_NT (1u << 14)
#define F_RF (1u << 16)
#define F_VM (1u << 17)
#define F_AC (1u << 18)
#define F_VIF (1u << 19)
#define F_VIP (1u << 20)
#define F_ID (1u << 21)
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_PGE (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_SMEP (1ull << 20)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* Exception vectors. */
enum {
    X86_DE = 0, X86_DB = 1, X86_NMI = 2, X86_BP = 3, X86_OF = 4, X86_BR = 5, X86_UD = 6,
    X86_NM = 7, X86_DF = 8, X86_TS = 10, X86_NP = 11, X86_SS = 12, X86_GP = 13,
    X86_PF = 14, X86_MF = 16, X86_AC = 17, X86_MC = 18, X86_XM = 19,
};

enum x86_status {
    X86_OK = 0,
    X86_EXCEPTION, /* cpu->exc holds it; rip is the faulting instruction's */
    X86_EXIT,      /* leave the run loop: cpu->exit_reason says why */
    X86_BRANCH,    /* done; control moved: end the block here */
    X86_REPEAT,    /* a rep string instruction paused, not retired: next_rip
                      is its own rip; run it again for the rest */
};

/* Why X86_EXIT. */
enum x86_exit_reason {
    X86_EXIT_NONE = 0,
    X86_EXIT_HLT,
    X86_EXIT_IO,       /* unclaimed port: cpu->io_* describe it */
    X86_EXIT_MMIO,     /* unclaimed MMIO: cpu->io_* describe it */
    X86_EXIT_CALLBACK, /* a device callback failed (vx_last_error says how) */
    X86_EXIT_SMC,      /* the instruction stored into translated code */
    X86_EXIT_MODE,     /* the CPU mode changed: blocks of the old mode are stale */
    X86_EXIT_SHUTDOWN, /* triple fault: the CPU shut down */
    X86_EXIT_UNSUPPORTED, /* something tcg does not model: cpu->unsupported says what */
};

/* Lazy flags: the last flag-setting operation and its operands. The
 * arithmetic flags are computed from these only when something reads them. */
enum x86_cc_op {
    CC_EFLAGS = 0, /* cpu->flags holds the arithmetic flags themselves */
    CC_ADD, CC_ADC, CC_SUB, CC_SBB, CC_LOGIC, CC_INC, CC_DEC,
    CC_SHL, CC_SHR, CC_SAR, CC_MUL, CC_IMUL, CC_NEG,
};

struct x86_lazy {
    uint8_t op;    /* enum x86_cc_op */
    uint8_t size;  /* operand bytes: 1, 2, 4, 8 */
    uint64_t res;  /* the result */
    uint64_t src;  /* the second operand (shift: see flags.c) */
    uint64_t aux;  /* ADC/SBB carry in; INC/DEC the old CF; MUL/IMUL the overflow bit */
};

struct x86_cpu;

/* What the accelerator provides beneath the semantics. */
struct x86_mem_ops {
    /* A data access that the TLB fast path could not serve: linear address,
     * size 1..16, store or load. It may cross a page boundary (the fast path
     * refuses those): the slow path splits it, checking both pages before a
     * store writes either. */
    enum x86_status (*load_slow)(struct x86_cpu *cpu, uint64_t lin, unsigned size, void *val);
    enum x86_status (*store_slow)(struct x86_cpu *cpu, uint64_t lin, unsigned size,
                                  const void *val);
    /* The read of a read-modify-write: translated for a store (a page the
     * store could not write faults now, with W in the error code; A and D
     * are set) and read; the TLB fill is the store TLB's. */
    enum x86_status (*load_for_store)(struct x86_cpu *cpu, uint64_t lin, unsigned size,
                                      void *val);
    /* Implicit supervisor accesses (descriptor tables, the TSS, the IDT):
     * translated with supervisor rights whatever the CPL, never through or
     * into the TLB, which holds the CPL's own view. */
    enum x86_status (*load_sys)(struct x86_cpu *cpu, uint64_t lin, unsigned size, void *val);
    enum x86_status (*store_sys)(struct x86_cpu *cpu, uint64_t lin, unsigned size,
                                 const void *val);
    /* A port access. On X86_EXIT the instruction is re-executed when the
     * application answers, with cpu->io_answered set. */
    enum x86_status (*port)(struct x86_cpu *cpu, uint16_t port, unsigned size, bool write,
                            uint64_t *val);
    /* Forget cached translations: one linear page (invlpg), or all of them
     * (lin == X86_FLUSH_ALL: CR3, CR0.PG/WP, CR4 paging bits, EFER.NXE). The
     * instruction that asked ends its block. */
    void (*tlb_flush)(struct x86_cpu *cpu, uint64_t lin);
};

#define X86_FLUSH_ALL (~0ull)

struct x86_msrs {
    uint64_t star, lstar, cstar, fmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, misc_enable, tsc_aux, tsc_offset;
};

struct x86_cpu {
    uint64_t regs[16];
    uint64_t rip;
    uint64_t next_rip;  /* the instruction after the executing one */
    uint64_t flags;     /* RFLAGS; arithmetic bits valid only when lazy.op == CC_EFLAGS */
    struct x86_lazy lazy;

    vx_x86_segment seg[6]; /* ES CS SS DS FS GS (hidden descriptor caches) */
    vx_x86_segment tr, ldt;
    vx_x86_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
    uint32_t apic_id;
    uint64_t dr[8];
    struct x86_msrs msr;

    /* Derived from the state above by x86_update_mode(). */
    uint8_t cpl;
    uint8_t code_size;  /* default operand/address size: 2, 4 or 8 bytes */
    uint8_t stack_size; /* 2, 4 or 8: SS.B, or 8 in 64-bit mode */
    bool long64;        /* 64-bit mode (CS.L in long mode) */
    bool flat;          /* no segment limit/base work needed for DS/ES/SS (all base 0, 4 GiB) */
    uint32_t mode_key;  /* what a translated block depends on besides its address */
#define X86_MODE_STEP (1u << 15) /* mode_key: RFLAGS.TF, single-stepping */

    /* Exception raised by the current instruction. */
    struct x86_exc {
        uint8_t vector;
        bool has_error;
        uint32_t error;
        uint64_t addr; /* CR2 for #PF */
    } exc;
    struct x86_exc exc_first; /* what x86_take_exception started from (messages) */
    const char *unsupported;  /* X86_EXIT_UNSUPPORTED: what (a static string) */

    /* Interrupt state. An interrupt shadow (sti, mov ss, pop ss) holds off
     * external interrupts before the instruction at shadow_rip (~0: none). */
    uint64_t shadow_rip;
    bool nmi_blocked; /* from NMI delivery to the next iret */

    enum x86_exit_reason exit_reason;
    /* Port/MMIO exit: what the guest accessed; the application's answer. */
    uint64_t io_addr, io_value;
    uint8_t io_size;
    bool io_write;
    bool io_answered; /* re-executing with the application's answer */
    bool exit_after;  /* an unclaimed port write is done: exit once the instruction
                         (or the string element) completes, as KVM does */

    /* End the block after the current instruction: a store invalidated
     * translated code, or a device callback asked the vCPU to stop. */
    bool end_block;
    /* Set with end_block, io_answered or an MMIO replay log: the run loop
     * looks at this one flag after each instruction. */
    bool attention;

    struct vx_tlb tlb;
    const struct x86_mem_ops *mem;
    void *opaque; /* the accelerator's */

    struct x86_fpu fpu; /* x87, MMX, SSE (fpu.h); last: the hot state stays together */
};

/* ---- registers ------------------------------------------------------------ */

static inline uint64_t x86_mask(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline uint64_t x86_sext(uint64_t v, unsigned size)
{
    switch (size) {
    case 1: return (uint64_t)(int64_t)(int8_t)v;
    case 2: return (uint64_t)(int64_t)(int16_t)v;
    case 4: return (uint64_t)(int64_t)(int32_t)v;
    default: return v;
    }
}

/* Byte registers are coded 0..15 for AL..R15B and 16..19 for AH..BH (the
 * decoder picks the coding from the REX prefix). */
static inline uint64_t x86_get_reg(const struct x86_cpu *c, unsigned r, unsigned size)
{
    if (size == 1 && r >= 16)
        return (c->regs[r - 16] >> 8) & 0xff;
    return c->regs[r] & x86_mask(size);
}

/* Writes of 32 bits zero the upper half; 8 and 16 bits merge. */
static inline void x86_set_reg(struct x86_cpu *c, unsigned r, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        if (r >= 16)
            c->regs[r - 16] = (c->regs[r - 16] & ~0xff00ull) | ((v & 0xff) << 8);
        else
            c->regs[r] = (c->regs[r] & ~0xffull) | (v & 0xff);
        break;
    case 2: c->regs[r] = (c->regs[r] & ~0xffffull) | (v & 0xffff); break;
    case 4: c->regs[r] = (uint32_t)v; break;
    default: c->regs[r] = v; break;
    }
}

/* ---- exceptions ----------------------------------------------------------- */

static inline enum x86_status x86_raise(struct x86_cpu *c, unsigned vector)
{
    c->exc.vector = (uint8_t)vector;
    c->exc.has_error = false;
    c->exc.error = 0;
    return X86_EXCEPTION;
}

static inline enum x86_status x86_raise_err(struct x86_cpu *c, unsigned vector, uint32_t error)
{
    c->exc.vector = (uint8_t)vector;
    c->exc.has_error = true;
    c->exc.error = error;
    return X86_EXCEPTION;
}

/* ---- flags (flags.c) ------------------------------------------------------ */

/* The arithmetic flags (F_ARITH bits) the lazy state stands for. */
uint32_t x86_lazy_flags(const struct x86_cpu *c);

/* RFLAGS with the arithmetic flags computed. */
static inline uint64_t x86_get_flags(const struct x86_cpu *c)
{
    if (c->lazy.op == CC_EFLAGS)
        return c->flags;
    return (c->flags & ~(uint64_t)F_ARITH) | x86_lazy_flags(c);
}

/* Materialise the lazy flags into cpu->flags (before changing some bits). */
static inline void x86_flush_flags(struct x86_cpu *c)
{
    if (c->lazy.op != CC_EFLAGS) {
        c->flags = x86_get_flags(c);
        c->lazy.op = CC_EFLAGS;
    }
}

static inline void x86_set_lazy(struct x86_cpu *c, enum x86_cc_op op, unsigned size,
                                uint64_t res, uint64_t src, uint64_t aux)
{
    c->lazy.op = (uint8_t)op;
    c->lazy.size = (uint8_t)size;
    c->lazy.res = res;
    c->lazy.src = src;
    c->lazy.aux = aux;
}

/* CF alone, cheaply where the lazy operation gives it directly. */
static inline bool x86_cf(const struct x86_cpu *c)
{
    const struct x86_lazy *l = &c->lazy;
    uint64_t m = x86_mask(l->size);
    switch (l->op) {
    case CC_ADD: return (l->res & m) < (l->src & m);
    case CC_SUB: return ((l->res + l->src) & m) < (l->src & m);
    case CC_LOGIC: return false;
    case CC_INC:
    case CC_DEC: return l->aux & F_CF; /* inc/dec keep the CF they found */
    default: return x86_lazy_flags(c) & F_CF;
    }
}

/* Condition code 0..15 (the low nibble of Jcc/SETcc/CMOVcc). */
bool x86_cond_slow(const struct x86_cpu *c, unsigned cc);

static inline bool x86_cond(const struct x86_cpu *c, unsigned cc)
{
    /* ZF and SF follow from the result for every lazy operation (but ZF
     * after mul/imul, which this model keeps clear as Intel does): the
     * loop-closing jnz after dec/sub/add needs nothing else. */
    const struct x86_lazy *l = &c->lazy;
    if (l->op != CC_EFLAGS && (cc >> 1) == 2 && l->op != CC_MUL && l->op != CC_IMUL)
        return ((l->res & x86_mask(l->size)) == 0) != (cc & 1);
    /* jb/jae after cmp or sub: the borrow. */
    if (l->op == CC_SUB && (cc >> 1) == 1) {
        uint64_t m = x86_mask(l->size);
        return (((l->res + l->src) & m) < (l->src & m)) != (cc & 1);
    }
    return x86_cond_slow(c, cc);
}

/* ---- mode ----------------------------------------------------------------- */

/* Recompute cpl, code_size, stack_size, long64, flat and mode_key after any
 * change to CS, SS, CR0, CR4, EFER or RFLAGS.VM/TF. */
void x86_update_mode(struct x86_cpu *c);

/* Reset state (real mode at F000:FFF0), as after power-on. */
void x86_cpu_reset(struct x86_cpu *c);

#endif
