/*
 * Integer arithmetic and logic: the eight group-1 operations in every form,
 * test, inc/dec, not/neg, flag instructions, sign extension of the
 * accumulator and the BCD adjustments.
 *
 * Flags after each (SDM): add/adc/sub/sbb/cmp/neg set all six; and/or/xor/
 * test clear CF/OF, set SF/ZF/PF, leave AF undefined (this model: 0);
 * inc/dec set all but CF, which they keep; not changes none.
 */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* a op b with the lazy flags set; CMP computes without a result to store. */
static inline __attribute__((always_inline)) uint64_t alu(struct x86_cpu *c, unsigned op,
                                                         unsigned size, uint64_t a, uint64_t b)
{
    uint64_t m = x86_mask(size), r, cin;
    switch (op) {
    case ALU_ADD:
        r = (a + b) & m;
        x86_set_lazy(c, CC_ADD, size, r, b, 0);
        return r;
    case ALU_OR:
        r = a | b;
        x86_set_lazy(c, CC_LOGIC, size, r, 0, 0);
        return r;
    case ALU_ADC:
        cin = x86_cf(c);
        r = (a + b + cin) & m;
        x86_set_lazy(c, CC_ADC, size, r, b, cin);
        return r;
    case ALU_SBB:
        cin = x86_cf(c);
        r = (a - b - cin) & m;
        x86_set_lazy(c, CC_SBB, size, r, b, cin);
        return r;
    case ALU_AND:
        r = a & b;
        x86_set_lazy(c, CC_LOGIC, size, r, 0, 0);
        return r;
    case ALU_XOR:
        r = a ^ b;
        x86_set_lazy(c, CC_LOGIC, size, r, 0, 0);
        return r;
    default: /* SUB, CMP */
        r = (a - b) & m;
        x86_set_lazy(c, CC_SUB, size, r, b, 0);
        return r;
    }
}


/* A store to memory can fault after the flags were set: faults restart the
 * instruction, so the flags must be put back. */
static inline __attribute__((always_inline)) enum x86_status rmw_alu(struct x86_cpu *c, const struct x86_insn *i, unsigned op,
                                      uint64_t b)
{
    unsigned size = i->opsize;
    struct x86_rmw w;
    uint64_t a;
    if (op == ALU_CMP) { /* only reads its destination */
        enum x86_status st = x86_rm_read(c, i, size, &a);
        if (st)
            return st;
        alu(c, op, size, a, b);
        return X86_OK;
    }
    enum x86_status st = x86_rmw_read(c, i, size, &w, &a);
    if (st)
        return st;
    struct x86_lazy saved = c->lazy;
    uint64_t saved_flags = c->flags;
    uint64_t r = alu(c, op, size, a, b);
    st = x86_rmw_write(c, i, size, &w, r);
    if (st) {
        c->lazy = saved;
        c->flags = saved_flags;
    }
    return st;
}

X86_OP(op_alu_rm_r)
{
    return rmw_alu(c, i, (i->opcode >> 3) & 7, x86_get_reg(c, i->reg, i->opsize));
}

X86_OP(op_alu_r_rm)
{
    unsigned size = i->opsize, op = (i->opcode >> 3) & 7;
    uint64_t b;
    enum x86_status st = x86_rm_read(c, i, size, &b);
    if (st)
        return st;
    uint64_t r = alu(c, op, size, x86_get_reg(c, i->reg, size), b);
    if (op != ALU_CMP)
        x86_set_reg(c, i->reg, size, r);
    return X86_OK;
}

X86_OP(op_alu_a_imm)
{
    unsigned size = i->opsize, op = (i->opcode >> 3) & 7;
    uint64_t r = alu(c, op, size, x86_get_reg(c, R_AX, size), i->imm);
    if (op != ALU_CMP)
        x86_set_reg(c, R_AX, size, r);
    return X86_OK;
}

X86_OP(op_alu_rm_imm)
{
    return rmw_alu(c, i, i->sub, i->imm & x86_mask(i->opsize));
}

X86_OP(op_test_rm_r)
{
    uint64_t a;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &a);
    if (st)
        return st;
    alu(c, ALU_AND, i->opsize, a, x86_get_reg(c, i->reg, i->opsize));
    return X86_OK;
}

X86_OP(op_test_a_imm)
{
    alu(c, ALU_AND, i->opsize, x86_get_reg(c, R_AX, i->opsize), i->imm);
    return X86_OK;
}

static void set_incdec(struct x86_cpu *c, bool dec, unsigned size, uint64_t r)
{
    uint64_t cf = x86_cf(c) ? F_CF : 0;
    x86_set_lazy(c, dec ? CC_DEC : CC_INC, size, r, 1, cf);
}

X86_OP(op_inc_dec_r)
{
    unsigned size = i->opsize;
    bool dec = i->opcode & 8;
    uint64_t r = (x86_get_reg(c, i->reg, size) + (dec ? -1ull : 1)) & x86_mask(size);
    set_incdec(c, dec, size, r);
    x86_set_reg(c, i->reg, size, r);
    return X86_OK;
}

X86_OP(op_inc_dec_rm)
{
    unsigned size = i->opsize;
    bool dec = i->sub == 1;
    struct x86_rmw w;
    uint64_t a;
    enum x86_status st = x86_rmw_read(c, i, size, &w, &a);
    if (st)
        return st;
    uint64_t r = (a + (dec ? -1ull : 1)) & x86_mask(size);
    st = x86_rmw_write(c, i, size, &w, r);
    if (st)
        return st;
    set_incdec(c, dec, size, r);
    return X86_OK;
}

/* f6/f7 /0../3; /4../7 (mul, div) have their own handlers. */
X86_OP(op_grp3)
{
    unsigned size = i->opsize;
    struct x86_rmw w;
    uint64_t a;
    enum x86_status st;
    switch (i->sub) {
    case 0:
    case 1: /* test r/m, imm */
        st = x86_rm_read(c, i, size, &a);
        if (st)
            return st;
        alu(c, ALU_AND, size, a, i->imm);
        return X86_OK;
    case 2: /* not */
        st = x86_rmw_read(c, i, size, &w, &a);
        return st ? st : x86_rmw_write(c, i, size, &w, ~a & x86_mask(size));
    default: { /* neg */
        st = x86_rmw_read(c, i, size, &w, &a);
        if (st)
            return st;
        uint64_t r = (0 - a) & x86_mask(size);
        st = x86_rmw_write(c, i, size, &w, r);
        if (st)
            return st;
        x86_set_lazy(c, CC_NEG, size, r, a, 0);
        return X86_OK;
    }
    }
}

X86_OP(op_cbw)
{
    unsigned size = i->opsize, half = size / 2;
    x86_set_reg(c, R_AX, size, x86_sext(x86_get_reg(c, R_AX, half), half));
    return X86_OK;
}

X86_OP(op_cwd)
{
    unsigned size = i->opsize;
    uint64_t a = x86_get_reg(c, R_AX, size);
    x86_set_reg(c, R_DX, size, ((a >> (size * 8 - 1)) & 1) ? ~0ull : 0);
    return X86_OK;
}

#define LAHF_MASK (F_SF | F_ZF | F_AF | F_PF | F_CF)

X86_OP(op_lahf)
{
    uint64_t f = x86_get_flags(c);
    c->regs[R_AX] = (c->regs[R_AX] & ~0xff00ull) | (((f & LAHF_MASK) | 2) << 8);
    return X86_OK;
}

X86_OP(op_sahf)
{
    x86_flush_flags(c);
    uint64_t ah = (c->regs[R_AX] >> 8) & 0xff;
    c->flags = (c->flags & ~(uint64_t)LAHF_MASK) | (ah & LAHF_MASK);
    return X86_OK;
}

/* cli/sti need IOPL >= CPL in protected mode (no VME/PVI in this model). */
static enum x86_status iopl_check(struct x86_cpu *c)
{
    if ((c->cr0 & CR0_PE) && c->cpl > ((c->flags & F_IOPL) >> 12))
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

X86_OP(op_flag)
{
    enum x86_status st;
    switch (i->opcode) {
    case 0xf5: x86_flush_flags(c); c->flags ^= F_CF; break;
    case 0xf8: x86_flush_flags(c); c->flags &= ~(uint64_t)F_CF; break;
    case 0xf9: x86_flush_flags(c); c->flags |= F_CF; break;
    case 0xfc: c->flags &= ~(uint64_t)F_DF; break;
    case 0xfd: c->flags |= F_DF; break;
    case 0xfa:
        if ((st = iopl_check(c)))
            return st;
        c->flags &= ~(uint64_t)F_IF;
        break;
    default: /* 0xfb sti */
        if ((st = iopl_check(c)))
            return st;
        if (!(c->flags & F_IF))
            c->shadow_rip = c->next_rip; /* no interrupt before the next instruction */
        c->flags |= F_IF;
        break;
    }
    return X86_OK;
}

static void set_szp8(struct x86_cpu *c, uint64_t al)
{
    /* SF, ZF, PF from AL; the others as already placed in c->flags. */
    uint64_t f = c->flags & ~(uint64_t)(F_SF | F_ZF | F_PF);
    if ((al & 0xff) == 0)
        f |= F_ZF;
    if (al & 0x80)
        f |= F_SF;
    if (!__builtin_parity((unsigned)(al & 0xff)))
        f |= F_PF;
    c->flags = f;
}

X86_OP(op_bcd)
{
    x86_flush_flags(c);
    uint64_t al = c->regs[R_AX] & 0xff, ah = (c->regs[R_AX] >> 8) & 0xff;
    bool cf = c->flags & F_CF, af = c->flags & F_AF;
    uint64_t f = c->flags & ~(uint64_t)(F_CF | F_AF);
    switch (i->opcode) {
    case 0x27: { /* daa */
        /* CF comes from the second test alone (SDM: ELSE CF <- 0). */
        uint64_t old = al;
        bool ncf = old > 0x99 || cf;
        if ((al & 0xf) > 9 || af) {
            al = (al + 6) & 0xff;
            f |= F_AF;
        }
        if (ncf)
            al = (al + 0x60) & 0xff;
        if (ncf)
            f |= F_CF;
        c->flags = f;
        break;
    }
    case 0x2f: { /* das */
        uint64_t old = al;
        bool ncf = false;
        if ((al & 0xf) > 9 || af) {
            ncf = cf || al < 6;
            al = (al - 6) & 0xff;
            f |= F_AF;
        }
        if (old > 0x99 || cf) {
            al = (al - 0x60) & 0xff;
            ncf = true;
        }
        if (ncf)
            f |= F_CF;
        c->flags = f;
        break;
    }
    case 0x37: /* aaa */
    case 0x3f: /* aas */
        if ((al & 0xf) > 9 || af) {
            if (i->opcode == 0x37) {
                uint64_t ax = ((ah << 8) | al) + 0x106;
                al = ax & 0xff;
                ah = (ax >> 8) & 0xff;
            } else {
                uint64_t ax = (((ah << 8) | al) - 6) & 0xffff;
                al = ax & 0xff;
                ah = ((ax >> 8) - 1) & 0xff;
            }
            f |= F_AF | F_CF;
        }
        al &= 0xf;
        c->flags = f;
        c->regs[R_AX] = (c->regs[R_AX] & ~0xffffull) | (ah << 8) | al;
        return X86_OK;
    case 0xd4: /* aam */
        if ((i->imm & 0xff) == 0)
            return x86_raise(c, X86_DE);
        ah = al / (i->imm & 0xff);
        al = al % (i->imm & 0xff);
        c->regs[R_AX] = (c->regs[R_AX] & ~0xffffull) | (ah << 8) | al;
        c->flags = f;
        set_szp8(c, al);
        return X86_OK;
    default: /* 0xd5 aad */
        al = (al + ah * (i->imm & 0xff)) & 0xff;
        c->regs[R_AX] = (c->regs[R_AX] & ~0xffffull) | al;
        c->flags = f;
        set_szp8(c, al);
        return X86_OK;
    }
    c->regs[R_AX] = (c->regs[R_AX] & ~0xffull) | al;
    set_szp8(c, al);
    return X86_OK;
}

X86_OP(op_salc)
{
    c->regs[R_AX] = (c->regs[R_AX] & ~0xffull) | (x86_cf(c) ? 0xff : 0);
    return X86_OK;
}

/* ---- register forms specialised at decode time ------------------------------
 * The generic handlers above pick the operation and width at run time; the
 * common register-to-register and register-immediate forms of 32 and 64 bits
 * get a handler each, with both known at compile time. */

#define SPEC_GET(size, r) ((size) == 8 ? c->regs[r] : (uint32_t)c->regs[r])

#define SPEC_ALU(op, size)                                                        \
    static enum x86_status alu_rr_##op##_##size(struct x86_cpu *c,                \
                                                const struct x86_insn *i)         \
    { /* op r/m(reg), reg */                                                      \
        uint64_t r = alu(c, op, size, SPEC_GET(size, i->rm), SPEC_GET(size, i->reg)); \
        if (op != ALU_CMP)                                                        \
            c->regs[i->rm] = r;                                                   \
        return X86_OK;                                                            \
    }                                                                             \
    static enum x86_status alu_ri_##op##_##size(struct x86_cpu *c,                \
                                                const struct x86_insn *i)         \
    { /* op r/m(reg), imm */                                                      \
        uint64_t r = alu(c, op, size, SPEC_GET(size, i->rm), i->imm & x86_mask(size)); \
        if (op != ALU_CMP)                                                        \
            c->regs[i->rm] = r;                                                   \
        return X86_OK;                                                            \
    }                                                                             \
    static enum x86_status alu_ai_##op##_##size(struct x86_cpu *c,                \
                                                const struct x86_insn *i)         \
    { /* op eax/rax, imm */                                                       \
        uint64_t r = alu(c, op, size, SPEC_GET(size, R_AX), i->imm & x86_mask(size)); \
        if (op != ALU_CMP)                                                        \
            c->regs[R_AX] = r;                                                    \
        return X86_OK;                                                            \
    }

/* op reg, [mem] with a 64-bit-mode operand (x86_fast64_operand): the TLB
 * probed directly; a miss runs op_alu_r_rm. */
#define SPEC_ALU_LOAD(op, size)                                                   \
    static enum x86_status alu_rm64_##op##_##size(struct x86_cpu *c,             \
                                                  const struct x86_insn *i)      \
    {                                                                             \
        const uint8_t *p = x86_tlb_aligned(c->tlb.load, x86_ea64(c, i), size);   \
        if (__builtin_expect(!p, 0))                                              \
            return op_alu_r_rm(c, i);                                             \
        uint64_t r = alu(c, op, size, SPEC_GET(size, i->reg), x86_host_read(p, size)); \
        if (op != ALU_CMP)                                                        \
            c->regs[i->reg] = r;                                                  \
        return X86_OK;                                                            \
    }

#define SPEC_SIZES(op) SPEC_ALU(op, 4) SPEC_ALU(op, 8) SPEC_ALU_LOAD(op, 4) SPEC_ALU_LOAD(op, 8)
SPEC_SIZES(ALU_ADD)
SPEC_SIZES(ALU_OR)
SPEC_SIZES(ALU_ADC)
SPEC_SIZES(ALU_SBB)
SPEC_SIZES(ALU_AND)
SPEC_SIZES(ALU_SUB)
SPEC_SIZES(ALU_XOR)
SPEC_SIZES(ALU_CMP)

#define SPEC_ROW(form, size)                                                       \
    { form##_ALU_ADD_##size, form##_ALU_OR_##size, form##_ALU_ADC_##size,          \
      form##_ALU_SBB_##size, form##_ALU_AND_##size, form##_ALU_SUB_##size,         \
      form##_ALU_XOR_##size, form##_ALU_CMP_##size }

static const x86_handler spec_rr[2][8] = { SPEC_ROW(alu_rr, 4), SPEC_ROW(alu_rr, 8) };
static const x86_handler spec_ri[2][8] = { SPEC_ROW(alu_ri, 4), SPEC_ROW(alu_ri, 8) };
static const x86_handler spec_ai[2][8] = { SPEC_ROW(alu_ai, 4), SPEC_ROW(alu_ai, 8) };
static const x86_handler spec_rm64[2][8] = { SPEC_ROW(alu_rm64, 4), SPEC_ROW(alu_rm64, 8) };

#define SPEC_INCDEC(name, size, delta, ccop)                                      \
    static enum x86_status name(struct x86_cpu *c, const struct x86_insn *i)      \
    {                                                                             \
        unsigned r_ = i->opcode == 0xff ? i->rm : i->reg;                         \
        uint64_t r = (SPEC_GET(size, r_) + (delta)) & x86_mask(size);             \
        set_incdec(c, ccop == CC_DEC, size, r);                                   \
        c->regs[r_] = r;                                                          \
        return X86_OK;                                                            \
    }
SPEC_INCDEC(inc_r_4, 4, 1, CC_INC)
SPEC_INCDEC(inc_r_8, 8, 1, CC_INC)
SPEC_INCDEC(dec_r_4, 4, -1ull, CC_DEC)
SPEC_INCDEC(dec_r_8, 8, -1ull, CC_DEC)

#define SPEC_TEST(size)                                                          \
    static enum x86_status test_rr_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        alu(c, ALU_AND, size, SPEC_GET(size, i->rm), SPEC_GET(size, i->reg));    \
        return X86_OK;                                                           \
    }
SPEC_TEST(4)
SPEC_TEST(8)

x86_handler x86_specialize_alu(const struct x86_insn *i)
{
    if ((i->opsize != 4 && i->opsize != 8) || i->lock)
        return i->fn;
    unsigned w = i->opsize == 8;
    if (i->fn == op_test_rm_r && !i->mem)
        return w ? test_rr_8 : test_rr_4;
    if (i->fn == op_alu_rm_r && !i->mem)
        return spec_rr[w][(i->opcode >> 3) & 7];
    if (i->fn == op_alu_rm_imm && !i->mem)
        return spec_ri[w][i->sub];
    if (i->fn == op_alu_a_imm)
        return spec_ai[w][(i->opcode >> 3) & 7];
    if (i->fn == op_alu_r_rm && x86_fast64_operand(i))
        return spec_rm64[w][(i->opcode >> 3) & 7];
    if ((i->fn == op_inc_dec_rm && !i->mem) || i->fn == op_inc_dec_r) {
        bool dec = i->fn == op_inc_dec_r ? (i->opcode & 8) : i->sub == 1;
        return dec ? (w ? dec_r_8 : dec_r_4) : (w ? inc_r_8 : inc_r_4);
    }
    return i->fn;
}

/* The lazy operation an instruction always leaves when it completes (its
 * size is i->opsize), for the block-level rewrite of a following jcc; -1
 * when it is not one of these. */
int x86_flags_left(const struct x86_insn *i)
{
    static const int8_t cc_of_alu[8] = { CC_ADD, CC_LOGIC, -1, -1, CC_LOGIC, CC_SUB, CC_LOGIC,
                                         CC_SUB }; /* adc and sbb: not here */
    x86_handler fn = i->fn;
    if (fn == op_alu_rm_r || fn == op_alu_r_rm || fn == op_alu_a_imm)
        return cc_of_alu[(i->opcode >> 3) & 7];
    if (fn == op_alu_rm_imm)
        return cc_of_alu[i->sub];
    if (fn == op_test_rm_r || fn == op_test_a_imm || fn == test_rr_4 || fn == test_rr_8 ||
        (fn == op_grp3 && i->sub <= 1))
        return CC_LOGIC;
    if (fn == inc_r_4 || fn == inc_r_8)
        return CC_INC;
    if (fn == dec_r_4 || fn == dec_r_8)
        return CC_DEC;
    if (fn == op_inc_dec_r)
        return i->opcode & 8 ? CC_DEC : CC_INC;
    if (fn == op_inc_dec_rm)
        return i->sub == 1 ? CC_DEC : CC_INC;
    for (unsigned w = 0; w < 2; w++)
        for (unsigned op = 0; op < 8; op++)
            if (fn == spec_rr[w][op] || fn == spec_ri[w][op] || fn == spec_ai[w][op] ||
                fn == spec_rm64[w][op])
                return cc_of_alu[op];
    return -1;
}
