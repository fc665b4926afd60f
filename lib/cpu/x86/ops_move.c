/*
 * Data movement, exchanges, conditional moves and sets, and the small
 * miscellaneous instructions (nop, cpuid, rdtsc, hlt, ud2).
 */
#include "config.h"

#include <x86intrin.h>

#include "cpu/x86/cpuid.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"
#include "cpu/x86/seg.h"

X86_OP(op_mov_rm_r)
{
    return x86_rm_write(c, i, i->opsize, x86_get_reg(c, i->reg, i->opsize));
}

X86_OP(op_mov_r_rm)
{
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, v);
    return X86_OK;
}

X86_OP(op_mov_r_imm)
{
    x86_set_reg(c, i->reg, i->opsize, i->imm);
    return X86_OK;
}

X86_OP(op_mov_rm_imm)
{
    return x86_rm_write(c, i, i->opsize, i->imm);
}

X86_OP(op_mov_a_moffs)
{
    uint64_t v;
    enum x86_status st = x86_load(c, i->seg, i->disp & x86_addr_mask(i->addrsize), i->opsize, &v);
    if (st)
        return st;
    x86_set_reg(c, R_AX, i->opsize, v);
    return X86_OK;
}

X86_OP(op_mov_moffs_a)
{
    return x86_store(c, i->seg, i->disp & x86_addr_mask(i->addrsize), i->opsize,
                     x86_get_reg(c, R_AX, i->opsize));
}

X86_OP(op_mov_rm_sreg)
{
    if (i->sub > S_GS)
        return x86_raise(c, X86_UD);
    uint64_t sel = c->seg[i->sub].selector;
    /* To memory always 16 bits; to a register zero-extended to its size. */
    if (i->mem)
        return x86_store(c, i->seg, x86_ea(c, i), 2, sel);
    x86_set_reg(c, i->rm, i->opsize == 2 ? 2 : i->opsize == 8 ? 8 : 4, sel);
    return X86_OK;
}

X86_OP(op_mov_sreg_rm)
{
    if (i->sub > S_GS || i->sub == S_CS)
        return x86_raise(c, X86_UD);
    uint64_t sel;
    enum x86_status st = x86_rm_read(c, i, 2, &sel);
    if (st)
        return st;
    return x86_load_sreg(c, i->sub, (uint16_t)sel);
}

X86_OP(op_lea)
{
    x86_set_reg(c, i->reg, i->opsize, x86_ea(c, i));
    return X86_OK;
}

X86_OP(op_movzx)
{
    unsigned src = (i->opcode & 1) ? 2 : 1;
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, src, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, v);
    return X86_OK;
}

X86_OP(op_movsx)
{
    unsigned src = (i->opcode & 1) ? 2 : 1;
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, src, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, x86_sext(v, src));
    return X86_OK;
}

X86_OP(op_movsxd)
{
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, 4, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, x86_sext(v, 4));
    return X86_OK;
}

X86_OP(op_xchg_rm_r)
{
    unsigned size = i->opsize;
    uint64_t a, b = x86_get_reg(c, i->reg, size);
    if (!i->mem) {
        a = x86_get_reg(c, i->rm, size);
        x86_set_reg(c, i->rm, size, b);
        x86_set_reg(c, i->reg, size, a);
        return X86_OK;
    }
    struct x86_rmw w;
    enum x86_status st = x86_rmw_read(c, i, size, &w, &a);
    if (st || (st = x86_rmw_write(c, i, size, &w, b)))
        return st;
    x86_set_reg(c, i->reg, size, a);
    return X86_OK;
}

X86_OP(op_xchg_a_r)
{
    /* 90 without REX.B is nop (xchg eax, eax would zero rax's top half). */
    if (i->reg == R_AX)
        return X86_OK;
    unsigned size = i->opsize;
    uint64_t a = x86_get_reg(c, R_AX, size), b = x86_get_reg(c, i->reg, size);
    x86_set_reg(c, R_AX, size, b);
    x86_set_reg(c, i->reg, size, a);
    return X86_OK;
}

X86_OP(op_cmpxchg)
{
    unsigned size = i->opsize;
    uint64_t acc = x86_get_reg(c, R_AX, size), src = x86_get_reg(c, i->reg, size), dst;
    uint64_t lin = 0;
    enum x86_status st;
    if (i->mem) {
        if ((st = x86_linear(c, i->seg, x86_ea(c, i), size, true, &lin)))
            return st;
        dst = 0;
        if ((st = x86_load_for_store(c, lin, size, &dst)))
            return st;
    } else {
        dst = x86_get_reg(c, i->rm, size);
    }
    bool equal = acc == dst;
    /* The destination is always written (with its old value on a miss), as
     * the locked read-modify-write of the hardware does. */
    uint64_t out = equal ? src : dst;
    if (i->mem) {
        if ((st = x86_store_lin(c, lin, size, &out)))
            return st;
    } else if (equal) {
        x86_set_reg(c, i->rm, size, out);
    }
    x86_set_lazy(c, CC_SUB, size, (acc - dst) & x86_mask(size), dst, 0);
    if (!equal)
        x86_set_reg(c, R_AX, size, dst);
    return X86_OK;
}

X86_OP(op_cmpxchg8b)
{
    bool wide = i->opsize == 8; /* REX.W: cmpxchg16b */
    unsigned half = wide ? 8 : 4;
    uint64_t lin;
    enum x86_status st = x86_linear(c, i->seg, x86_ea(c, i), half * 2, true, &lin);
    if (st)
        return st;
    if (wide && (lin & 15))
        return x86_raise_err(c, X86_GP, 0);
    uint64_t lo = 0, hi = 0;
    if ((st = x86_load_for_store(c, lin, half, &lo)) ||
        (st = x86_load_for_store(c, lin + half, half, &hi)))
        return st;
    uint64_t m = x86_mask(half);
    bool equal = lo == (c->regs[R_AX] & m) && hi == (c->regs[R_DX] & m);
    uint64_t nlo = equal ? c->regs[R_BX] & m : lo, nhi = equal ? c->regs[R_CX] & m : hi;
    if ((st = x86_store_lin(c, lin, half, &nlo)) || (st = x86_store_lin(c, lin + half, half, &nhi)))
        return st;
    x86_flush_flags(c);
    if (equal) {
        c->flags |= F_ZF;
    } else {
        c->flags &= ~(uint64_t)F_ZF;
        x86_set_reg(c, R_AX, half, lo);
        x86_set_reg(c, R_DX, half, hi);
    }
    return X86_OK;
}

X86_OP(op_xadd)
{
    unsigned size = i->opsize;
    uint64_t src = x86_get_reg(c, i->reg, size), dst, lin = 0;
    enum x86_status st;
    if (i->mem) {
        if ((st = x86_linear(c, i->seg, x86_ea(c, i), size, true, &lin)))
            return st;
        dst = 0;
        if ((st = x86_load_for_store(c, lin, size, &dst)))
            return st;
    } else {
        dst = x86_get_reg(c, i->rm, size);
    }
    uint64_t sum = (src + dst) & x86_mask(size);
    if (i->mem) {
        if ((st = x86_store_lin(c, lin, size, &sum)))
            return st;
        x86_set_reg(c, i->reg, size, dst);
    } else {
        x86_set_reg(c, i->reg, size, dst);
        x86_set_reg(c, i->rm, size, sum);
    }
    x86_set_lazy(c, CC_ADD, size, sum, src, 0);
    return X86_OK;
}

X86_OP(op_setcc)
{
    return x86_rm_write(c, i, 1, x86_cond(c, i->sub));
}

X86_OP(op_cmovcc)
{
    /* The source is read (and may fault) whatever the condition; a 32-bit
     * destination is written (its top half cleared) whatever it too. */
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &v);
    if (st)
        return st;
    if (!x86_cond(c, i->sub))
        v = x86_get_reg(c, i->reg, i->opsize);
    x86_set_reg(c, i->reg, i->opsize, v);
    return X86_OK;
}

X86_OP(op_xlat)
{
    uint64_t off = (c->regs[R_BX] + (c->regs[R_AX] & 0xff)) & x86_addr_mask(i->addrsize);
    uint64_t v;
    enum x86_status st = x86_load(c, i->seg, off, 1, &v);
    if (st)
        return st;
    x86_set_reg(c, R_AX, 1, v);
    return X86_OK;
}

X86_OP(op_nop)
{
    return X86_OK;
}

X86_OP(op_cpuid)
{
    uint32_t r[4];
    x86_cpuid(c, (uint32_t)c->regs[R_AX], (uint32_t)c->regs[R_CX], r);
    c->regs[R_AX] = r[0];
    c->regs[R_BX] = r[1];
    c->regs[R_CX] = r[2];
    c->regs[R_DX] = r[3];
    return X86_OK;
}

X86_OP(op_rdtsc)
{
    if ((c->cr4 & (1ull << 2)) && c->cpl > 0 && (c->cr0 & CR0_PE)) /* CR4.TSD */
        return x86_raise_err(c, X86_GP, 0);
    uint64_t t = __rdtsc() + c->msr.tsc_offset;
    c->regs[R_AX] = (uint32_t)t;
    c->regs[R_DX] = t >> 32;
    return X86_OK;
}

X86_OP(op_hlt)
{
    if (c->cpl != 0)
        return x86_raise_err(c, X86_GP, 0);
    c->rip = c->next_rip;
    c->exit_reason = X86_EXIT_HLT;
    return X86_EXIT;
}

X86_OP(op_ud)
{
    return x86_raise(c, X86_UD);
}

X86_OP(op_gp0)
{
    return x86_raise_err(c, X86_GP, 0);
}

/* c4 les, c5 lds (not in 64-bit mode), 0f b2 lss, 0f b4 lfs, 0f b5 lgs:
 * a far pointer from memory, offset (operand size) then selector. The
 * segment is loaded (and checked) before the register is written. */
X86_OP(op_lxs)
{
    unsigned seg;
    switch (i->opcode) {
    case 0xc4: seg = S_ES; break;
    case 0xc5: seg = S_DS; break;
    case 0x0fb2: seg = S_SS; break;
    case 0x0fb4: seg = S_FS; break;
    default: seg = S_GS; break;
    }
    uint64_t ea = x86_ea(c, i), off, sel;
    enum x86_status st = x86_load(c, i->seg, ea, i->opsize, &off);
    if (!st)
        st = x86_load(c, i->seg, (ea + i->opsize) & x86_addr_mask(i->addrsize), 2, &sel);
    if (!st)
        st = x86_load_sreg(c, seg, (uint16_t)sel);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, off);
    return X86_OK;
}

/* 62 bound (not in 64-bit mode): #BR unless lower <= index <= upper, signed. */
X86_OP(op_bound)
{
    unsigned size = i->opsize;
    uint64_t ea = x86_ea(c, i), lo, hi;
    enum x86_status st = x86_load(c, i->seg, ea, size, &lo);
    if (!st)
        st = x86_load(c, i->seg, (ea + size) & x86_addr_mask(i->addrsize), size, &hi);
    if (st)
        return st;
    int64_t idx = (int64_t)x86_sext(x86_get_reg(c, i->reg, size), size);
    if (idx < (int64_t)x86_sext(lo, size) || idx > (int64_t)x86_sext(hi, size))
        return x86_raise(c, X86_BR);
    return X86_OK;
}

/* 63 arpl (outside 64-bit mode; #UD in real and virtual-8086 mode). */
X86_OP(op_arpl)
{
    if (!(c->cr0 & CR0_PE) || (c->flags & F_VM))
        return x86_raise(c, X86_UD);
    uint64_t dst;
    enum x86_status st = x86_rm_read(c, i, 2, &dst);
    if (st)
        return st;
    uint64_t src = x86_get_reg(c, i->reg, 2);
    bool adjust = (dst & 3) < (src & 3);
    if (adjust && (st = x86_rm_write(c, i, 2, (dst & ~3ull) | (src & 3))))
        return st;
    x86_flush_flags(c);
    if (adjust)
        c->flags |= F_ZF;
    else
        c->flags &= ~(uint64_t)F_ZF;
    return X86_OK;
}

/* ---- register and simple memory forms specialised at decode time -----------
 * mov between 32/64-bit registers and memory, with the width fixed at compile
 * time: the same loads and stores as op_mov_r_rm/op_mov_rm_r. */

#define SPEC_MOV(size)                                                           \
    static enum x86_status mov_load_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        uint64_t v;                                                              \
        enum x86_status st = x86_load(c, i->seg, x86_ea(c, i), size, &v);        \
        if (st)                                                                  \
            return st;                                                           \
        c->regs[i->reg] = v;                                                     \
        return X86_OK;                                                           \
    }                                                                            \
    static enum x86_status mov_store_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        return x86_store(c, i->seg, x86_ea(c, i), size, c->regs[i->reg] & x86_mask(size)); \
    }                                                                            \
    static enum x86_status mov_rr_##size(struct x86_cpu *c, const struct x86_insn *i) \
    { /* 89: r/m(reg) <- reg; 8b: reg <- r/m(reg) */                             \
        if (i->opcode == 0x89)                                                   \
            c->regs[i->rm] = c->regs[i->reg] & x86_mask(size);                   \
        else                                                                     \
            c->regs[i->reg] = c->regs[i->rm] & x86_mask(size);                   \
        return X86_OK;                                                           \
    }
SPEC_MOV(4)
SPEC_MOV(8)

/* The same loads and stores with a 64-bit-mode operand (x86_fast64_operand):
 * the TLB probed directly; a miss runs the handler above. */
#define SPEC_MOV64(size)                                                         \
    static enum x86_status mov_load64_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        const uint8_t *p = x86_tlb_aligned(c->tlb.load, x86_ea64(c, i), size);  \
        if (__builtin_expect(!p, 0))                                             \
            return mov_load_##size(c, i);                                        \
        c->regs[i->reg] = x86_host_read(p, size);                                \
        return X86_OK;                                                           \
    }                                                                            \
    static enum x86_status mov_store64_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        uint8_t *p = x86_tlb_aligned(c->tlb.store, x86_ea64(c, i), size);        \
        if (__builtin_expect(!p, 0))                                             \
            return mov_store_##size(c, i);                                       \
        x86_host_write(p, size, c->regs[i->reg]);                                \
        return X86_OK;                                                           \
    }
SPEC_MOV64(4)
SPEC_MOV64(8)

/* lea with a 64-bit address (64-bit mode without 0x67): no segment, no
 * address mask; the result truncated to a 32-bit destination. RIP-relative
 * and absolute forms are constants, resolved with the rip (lea_const). */
#define SPEC_LEA(size)                                                           \
    static enum x86_status lea_b_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        c->regs[i->reg] = (c->regs[i->base] + i->disp) & x86_mask(size);         \
        return X86_OK;                                                           \
    }                                                                            \
    static enum x86_status lea_bi_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        c->regs[i->reg] = (c->regs[i->base] + (c->regs[i->index] << i->scale) + i->disp) & \
                          x86_mask(size);                                        \
        return X86_OK;                                                           \
    }                                                                            \
    static enum x86_status lea_i_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        c->regs[i->reg] = ((c->regs[i->index] << i->scale) + i->disp) & x86_mask(size); \
        return X86_OK;                                                           \
    }
SPEC_LEA(4)
SPEC_LEA(8)

/* A value fixed at translation in imm (already truncated to the operand
 * size of 4 or 8): lea of a RIP-relative or absolute address in 64-bit mode. */
static enum x86_status lea_const(struct x86_cpu *c, const struct x86_insn *i)
{
    c->regs[i->reg] = i->imm;
    return X86_OK;
}

/* movzx/movsx from AL..R15B or a 16-bit register (not AH..BH), movsxd from a
 * 32-bit register, to a 32/64-bit register. */
static enum x86_status movzx_r8(struct x86_cpu *c, const struct x86_insn *i)
{
    c->regs[i->reg] = (uint8_t)c->regs[i->rm];
    return X86_OK;
}

static enum x86_status movzx_r16(struct x86_cpu *c, const struct x86_insn *i)
{
    c->regs[i->reg] = (uint16_t)c->regs[i->rm];
    return X86_OK;
}

#define SPEC_MOVSX(size)                                                         \
    static enum x86_status movsx_r8_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        c->regs[i->reg] = (uint64_t)(int64_t)(int8_t)c->regs[i->rm] & x86_mask(size); \
        return X86_OK;                                                           \
    }                                                                            \
    static enum x86_status movsx_r16_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        c->regs[i->reg] = (uint64_t)(int64_t)(int16_t)c->regs[i->rm] & x86_mask(size); \
        return X86_OK;                                                           \
    }
SPEC_MOVSX(4)
SPEC_MOVSX(8)

static enum x86_status movsxd_r(struct x86_cpu *c, const struct x86_insn *i)
{
    c->regs[i->reg] = (uint64_t)(int64_t)(int32_t)c->regs[i->rm];
    return X86_OK;
}

/* Memory sources of movzx/movsx/movsxd with the widths fixed. */
#define SPEC_MOVX_LOAD(name, src, expr)                                          \
    static enum x86_status name(struct x86_cpu *c, const struct x86_insn *i)     \
    {                                                                            \
        uint64_t v;                                                              \
        enum x86_status st = x86_load(c, i->seg, x86_ea(c, i), src, &v);         \
        if (st)                                                                  \
            return st;                                                           \
        c->regs[i->reg] = (expr);                                                \
        return X86_OK;                                                           \
    }
SPEC_MOVX_LOAD(movzx_m8, 1, v)
SPEC_MOVX_LOAD(movzx_m16, 2, v)
SPEC_MOVX_LOAD(movsx_m8_4, 1, (uint32_t)(int32_t)(int8_t)v)
SPEC_MOVX_LOAD(movsx_m8_8, 1, (uint64_t)(int64_t)(int8_t)v)
SPEC_MOVX_LOAD(movsx_m16_4, 2, (uint32_t)(int32_t)(int16_t)v)
SPEC_MOVX_LOAD(movsx_m16_8, 2, (uint64_t)(int64_t)(int16_t)v)
SPEC_MOVX_LOAD(movsxd_m, 4, (uint64_t)(int64_t)(int32_t)v)

static enum x86_status movzx_m8_64(struct x86_cpu *c, const struct x86_insn *i)
{
    const uint8_t *p = vx_tlb_lookup(c->tlb.load, x86_ea64(c, i), 1);
    if (__builtin_expect(!p, 0))
        return movzx_m8(c, i);
    c->regs[i->reg] = *p;
    return X86_OK;
}

/* cmovcc between 32/64-bit registers (a 32-bit destination is written, its
 * top half cleared, whatever the condition); setcc of AL..R15B. */
#define SPEC_CMOV(size)                                                          \
    static enum x86_status cmov_rr_##size(struct x86_cpu *c, const struct x86_insn *i) \
    {                                                                            \
        unsigned src = x86_cond(c, i->sub) ? i->rm : i->reg;                     \
        c->regs[i->reg] = c->regs[src] & x86_mask(size);                         \
        return X86_OK;                                                           \
    }
SPEC_CMOV(4)
SPEC_CMOV(8)

static enum x86_status setcc_r(struct x86_cpu *c, const struct x86_insn *i)
{
    c->regs[i->rm] = (c->regs[i->rm] & ~0xffull) | x86_cond(c, i->sub);
    return X86_OK;
}

x86_handler x86_specialize_mov(const struct x86_insn *i)
{
    bool w = i->opsize == 8, wide = i->opsize == 4 || i->opsize == 8;
    if (i->fn == op_lea) {
        if (!wide || i->addrsize != 8 || i->base == X86_RIPREL ||
            (i->base == X86_NOREG && i->index == X86_NOREG))
            return i->fn; /* RIP-relative and absolute: x86_resolve_branch */
        if (i->index == X86_NOREG)
            return w ? lea_b_8 : lea_b_4;
        if (i->base == X86_NOREG)
            return w ? lea_i_8 : lea_i_4;
        return w ? lea_bi_8 : lea_bi_4;
    }
    if (i->fn == op_movzx && wide) {
        if (i->mem && !(i->opcode & 1) && x86_fast64_operand(i))
            return movzx_m8_64;
        if (i->mem)
            return i->opcode & 1 ? movzx_m16 : movzx_m8;
        if (i->rm < 16)
            return i->opcode & 1 ? movzx_r16 : movzx_r8;
        return i->fn;
    }
    if (i->fn == op_movsx && wide) {
        if (i->mem)
            return i->opcode & 1 ? (w ? movsx_m16_8 : movsx_m16_4) : (w ? movsx_m8_8 : movsx_m8_4);
        if (i->rm < 16)
            return i->opcode & 1 ? (w ? movsx_r16_8 : movsx_r16_4) : (w ? movsx_r8_8 : movsx_r8_4);
        return i->fn;
    }
    if (i->fn == op_movsxd && w)
        return i->mem ? movsxd_m : movsxd_r;
    if (i->fn == op_cmovcc && wide && !i->mem)
        return w ? cmov_rr_8 : cmov_rr_4;
    if (i->fn == op_setcc && !i->mem && i->rm < 16)
        return setcc_r;
    if ((i->fn != op_mov_r_rm && i->fn != op_mov_rm_r) || !wide)
        return i->fn;
    if (!i->mem)
        return w ? mov_rr_8 : mov_rr_4;
    if (x86_fast64_operand(i)) {
        if (i->fn == op_mov_r_rm)
            return w ? mov_load64_8 : mov_load64_4;
        return w ? mov_store64_8 : mov_store64_4;
    }
    if (i->fn == op_mov_r_rm)
        return w ? mov_load_8 : mov_load_4;
    return w ? mov_store_8 : mov_store_4;
}

bool x86_resolve_lea(struct x86_insn *i, uint64_t next_rip)
{
    if (i->fn != op_lea || i->addrsize != 8 || (i->opsize != 4 && i->opsize != 8) ||
        i->index != X86_NOREG || (i->base != X86_RIPREL && i->base != X86_NOREG))
        return false;
    uint64_t v = i->disp + (i->base == X86_RIPREL ? next_rip : 0);
    i->imm = v & x86_mask(i->opsize);
    i->fn = lea_const;
    i->pure = 1;
    return true;
}

bool x86_pure_move(x86_handler fn)
{
    static const x86_handler pure[] = {
        op_mov_r_imm, op_xchg_a_r, op_nop, mov_rr_4, mov_rr_8, lea_b_4, lea_b_8, lea_bi_4,
        lea_bi_8, lea_i_4, lea_i_8, lea_const, movzx_r8, movzx_r16, movsx_r8_4, movsx_r8_8,
        movsx_r16_4, movsx_r16_8, movsxd_r, cmov_rr_4, cmov_rr_8, setcc_r,
    };
    for (unsigned k = 0; k < sizeof pure / sizeof pure[0]; k++)
        if (fn == pure[k])
            return true;
    return false;
}
