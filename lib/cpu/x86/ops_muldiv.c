/*
 * Multiplication and division: mul, the three imul forms, div and idiv.
 *
 * Flags after each (SDM vol. 2). "u" marks what the SDM leaves undefined
 * (the differential tester masks it); in brackets what this model gives,
 * which is what Intel hardware gives (tests/check_x86_shift.c compares
 * with the host CPU) except where marked "!".
 *
 *   instruction          CF = OF                        SF       ZF     PF       AF
 *   mul                  high half != 0                 u[low]   u[!]   u[low]   u[0]
 *   imul (one operand)   high half != sign of low half  u[low]   u[!]   u[low]   u[0]
 *   imul r, r/m [, imm]  truncated != full product      u[low]   u[!]   u[low]   u[0]
 *   div, idiv            u[-]                           u[-]     u[-]   u[-]     u[-]
 *
 *   [low]: from the low half of the product (the destination for imul
 *   r, r/m), as flags.c's CC_MUL/CC_IMUL compute it. [-]: unchanged.
 *   ! flags.c gives ZF = (low half == 0); Intel clears ZF.
 *
 * div and idiv raise #DE for a zero divisor and for a quotient that does
 * not fit the destination (including INT_MIN / -1), before changing
 * anything. The 128-bit arithmetic of the 64-bit forms uses __int128 where
 * the compiler has it and portable 64-bit code elsewhere (VX_NO_INT128
 * forces the latter, for testing).
 */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

#if defined(__SIZEOF_INT128__) && !defined(VX_NO_INT128)
#define HAVE_INT128 1
__extension__ typedef unsigned __int128 u128; /* quiet under -pedantic */
#endif

/* a * b as 128 bits: returns the low half, *hi the high half. */
static inline uint64_t umul128(uint64_t a, uint64_t b, uint64_t *hi)
{
#ifdef HAVE_INT128
    u128 p = (u128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
#else
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
    *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (uint32_t)ll;
#endif
}

/* The signed product: the unsigned one, corrected for negative factors. */
static inline uint64_t smul128(uint64_t a, uint64_t b, uint64_t *hi)
{
    uint64_t lo = umul128(a, b, hi);
    if ((int64_t)a < 0)
        *hi -= b;
    if ((int64_t)b < 0)
        *hi -= a;
    return lo;
}

/* hi:lo / d where hi < d (so the quotient fits 64 bits). */
static inline uint64_t udiv128(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem)
{
#ifdef HAVE_INT128
    u128 n = ((u128)hi << 64) | lo;
    *rem = (uint64_t)(n % d);
    return (uint64_t)(n / d);
#else
    /* Restoring division, one quotient bit per step. */
    for (int k = 0; k < 64; k++) {
        uint64_t top = hi >> 63;
        hi = (hi << 1) | (lo >> 63);
        lo <<= 1;
        if (top || hi >= d) {
            hi -= d;
            lo |= 1;
        }
    }
    *rem = hi;
    return lo;
#endif
}

/* The accumulator halves of a double-width result: AX (AH:AL for bytes),
 * DX:AX, EDX:EAX or RDX:RAX. */
static inline void set_acc(struct x86_cpu *c, unsigned size, uint64_t lo, uint64_t hi)
{
    if (size == 1) {
        x86_set_reg(c, R_AX, 2, (lo & 0xff) | ((hi & 0xff) << 8));
        return;
    }
    x86_set_reg(c, R_AX, size, lo);
    x86_set_reg(c, R_DX, size, hi);
}

/* The double-width dividend: AX, DX:AX, EDX:EAX (as one value when it fits
 * 64 bits), or RDX:RAX in two halves. */
static inline uint64_t dividend(const struct x86_cpu *c, unsigned size, uint64_t *hi)
{
    uint64_t ax = c->regs[R_AX], dx = c->regs[R_DX];
    *hi = 0;
    switch (size) {
    case 1: return ax & 0xffff;
    case 2: return ((dx & 0xffff) << 16) | (ax & 0xffff);
    case 4: return ((dx & 0xffffffff) << 32) | (ax & 0xffffffff);
    default: *hi = dx; return ax;
    }
}

X86_OP(op_mul)
{
    unsigned size = i->opsize;
    uint64_t m = x86_mask(size), src, lo, hi;
    enum x86_status st = x86_rm_read(c, i, size, &src);
    if (st)
        return st;
    uint64_t a = c->regs[R_AX] & m;
    if (size == 8) {
        lo = umul128(a, src, &hi);
    } else {
        uint64_t p = a * src; /* fits: 32 x 32 bits at most */
        lo = p & m;
        hi = (p >> (size * 8)) & m;
    }
    set_acc(c, size, lo, hi);
    x86_set_lazy(c, CC_MUL, size, lo, src, hi != 0);
    return X86_OK;
}

X86_OP(op_imul1)
{
    unsigned size = i->opsize;
    uint64_t m = x86_mask(size), src, lo, hi;
    enum x86_status st = x86_rm_read(c, i, size, &src);
    if (st)
        return st;
    uint64_t a = c->regs[R_AX] & m;
    bool ovf;
    if (size == 8) {
        lo = smul128(a, src, &hi);
        ovf = hi != (uint64_t)((int64_t)lo >> 63);
    } else {
        int64_t p = (int64_t)x86_sext(a, size) * (int64_t)x86_sext(src, size);
        lo = (uint64_t)p & m;
        hi = ((uint64_t)p >> (size * 8)) & m;
        ovf = (int64_t)x86_sext(lo, size) != p;
    }
    set_acc(c, size, lo, hi);
    x86_set_lazy(c, CC_IMUL, size, lo, src, ovf);
    return X86_OK;
}

X86_OP(op_div)
{
    unsigned size = i->opsize, bits = size * 8;
    uint64_t m = x86_mask(size), d, hi, lo, q, r;
    enum x86_status st = x86_rm_read(c, i, size, &d);
    if (st)
        return st;
    if (d == 0)
        return x86_raise(c, X86_DE);
    lo = dividend(c, size, &hi);
    if (size == 8) {
        if (hi >= d)
            return x86_raise(c, X86_DE);
        q = udiv128(hi, lo, d, &r);
    } else {
        q = lo / d;
        r = lo % d;
        if (q >> bits)
            return x86_raise(c, X86_DE);
    }
    set_acc(c, size, q & m, r & m);
    return X86_OK;
}

X86_OP(op_idiv)
{
    unsigned size = i->opsize;
    uint64_t m = x86_mask(size), d, hi, lo, q, r;
    enum x86_status st = x86_rm_read(c, i, size, &d);
    if (st)
        return st;
    if (d == 0)
        return x86_raise(c, X86_DE);
    lo = dividend(c, size, &hi);

    /* Divide the magnitudes, then apply the signs: no C overflow for any
     * operands, INT_MIN / -1 included. */
    bool nd = x86_sext(d, size) >> 63; /* divisor negative */
    bool nn;                           /* dividend negative */
    uint64_t ud = nd ? (0 - x86_sext(d, size)) : d;
    if (size == 8) {
        nn = hi >> 63;
        if (nn) { /* negate hi:lo */
            hi = ~hi + (lo == 0);
            lo = 0 - lo;
        }
        if (hi >= ud)
            return x86_raise(c, X86_DE);
        q = udiv128(hi, lo, ud, &r);
    } else {
        /* Sign-extend the 2*size dividend to 64 bits (size 4: already 64). */
        int64_t sn = size == 4 ? (int64_t)lo : (int64_t)x86_sext(lo, size * 2);
        nn = sn < 0;
        uint64_t un = nn ? 0 - (uint64_t)sn : (uint64_t)sn;
        q = un / ud;
        r = un % ud;
    }
    /* The quotient's magnitude may reach 2^(n-1) only when it is negative. */
    uint64_t limit = (1ull << (size * 8 - 1)) - (nn == nd);
    if (q > limit)
        return x86_raise(c, X86_DE);
    if (nn != nd)
        q = 0 - q;
    if (nn)
        r = 0 - r;
    set_acc(c, size, q & m, r & m);
    return X86_OK;
}

/* dest = a * b truncated to the operand size; CF = OF = it did not fit. */
static inline void imul_trunc(struct x86_cpu *c, unsigned size, unsigned reg, uint64_t a,
                              uint64_t b)
{
    uint64_t m = x86_mask(size), lo, hi;
    bool ovf;
    if (size == 8) {
        lo = smul128(a, b, &hi);
        ovf = hi != (uint64_t)((int64_t)lo >> 63);
    } else {
        int64_t p = (int64_t)x86_sext(a, size) * (int64_t)x86_sext(b, size);
        lo = (uint64_t)p & m;
        ovf = (int64_t)x86_sext(lo, size) != p;
    }
    x86_set_reg(c, reg, size, lo);
    x86_set_lazy(c, CC_IMUL, size, lo, b, ovf);
}

X86_OP(op_imul_r_rm)
{
    uint64_t src;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &src);
    if (st)
        return st;
    imul_trunc(c, i->opsize, i->reg, x86_get_reg(c, i->reg, i->opsize), src);
    return X86_OK;
}

X86_OP(op_imul_r_rm_imm)
{
    unsigned size = i->opsize;
    uint64_t src;
    enum x86_status st = x86_rm_read(c, i, size, &src);
    if (st)
        return st;
    /* 6b: imm8, 69: imm16/imm32; both sign-extended (an imm32 to 64 bits),
     * whatever extension the decoder applied. */
    uint64_t imm = x86_sext(i->imm, size < 4 ? size : 4) & x86_mask(size);
    imul_trunc(c, size, i->reg, src, imm);
    return X86_OK;
}

/* ---- register forms specialised at decode time ------------------------------
 * imul reg, reg (0f af) of 32 and 64 bits: the same result and lazy flags as
 * imul_trunc, with the width fixed at compile time. */

static enum x86_status imul_rr_4(struct x86_cpu *c, const struct x86_insn *i)
{
    uint64_t b = (uint32_t)c->regs[i->rm];
    int64_t p = (int64_t)(int32_t)c->regs[i->reg] * (int64_t)(int32_t)b;
    uint64_t lo = (uint32_t)p;
    c->regs[i->reg] = lo;
    x86_set_lazy(c, CC_IMUL, 4, lo, b, p != (int64_t)(int32_t)p);
    return X86_OK;
}

static enum x86_status imul_rr_8(struct x86_cpu *c, const struct x86_insn *i)
{
    uint64_t b = c->regs[i->rm];
    int64_t p;
    /* The wrapped product is the low half; overflow is CF = OF. */
    bool ovf = __builtin_mul_overflow((int64_t)c->regs[i->reg], (int64_t)b, &p);
    c->regs[i->reg] = (uint64_t)p;
    x86_set_lazy(c, CC_IMUL, 8, (uint64_t)p, b, ovf);
    return X86_OK;
}

x86_handler x86_specialize_muldiv(const struct x86_insn *i)
{
    if (i->fn == op_imul_r_rm && !i->mem && (i->opsize == 4 || i->opsize == 8))
        return i->opsize == 8 ? imul_rr_8 : imul_rr_4;
    return i->fn;
}
