/*
 * The stack and control transfer: push/pop in all forms, pushf/popf,
 * enter/leave, near jumps, calls and returns, loops. Far transfers are in
 * ops_far.c.
 */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"
#include "cpu/x86/seg.h"

/* A near branch: the target is truncated to the operand size; outside
 * 64-bit mode it must lie within CS's limit, inside it must be canonical. */
static enum x86_status branch(struct x86_cpu *c, uint64_t target, unsigned opsize)
{
    target &= x86_mask(opsize);
    if (c->long64) {
        if ((uint64_t)(((int64_t)target >> 47) + 1) > 1)
            return x86_raise_err(c, X86_GP, 0);
    } else if (target > c->seg[S_CS].limit) {
        return x86_raise_err(c, X86_GP, 0);
    }
    c->next_rip = target;
    return X86_BRANCH;
}

X86_OP(op_push_r)
{
    return x86_push(c, i->opsize, x86_get_reg(c, i->reg, i->opsize));
}

X86_OP(op_pop_r)
{
    uint64_t v;
    enum x86_status st = x86_pop(c, i->opsize, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, v);
    return X86_OK;
}

X86_OP(op_push_imm)
{
    return x86_push(c, i->opsize, i->imm);
}

X86_OP(op_push_rm)
{
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &v);
    return st ? st : x86_push(c, i->opsize, v);
}

X86_OP(op_pop_rm)
{
    /* The destination's address is computed with rSP already incremented
     * (SDM: pop into a memory operand based on rSP). */
    uint64_t v, old_sp = c->regs[R_SP];
    enum x86_status st = x86_pop(c, i->opsize, &v);
    if (st)
        return st;
    st = x86_rm_write(c, i, i->opsize, v);
    if (st)
        c->regs[R_SP] = old_sp;
    return st;
}

static unsigned sreg_of(const struct x86_insn *i)
{
    switch (i->opcode) {
    case 0x06: case 0x07: return S_ES;
    case 0x0e: return S_CS;
    case 0x16: case 0x17: return S_SS;
    case 0x1e: case 0x1f: return S_DS;
    case 0x0fa0: case 0x0fa1: return S_FS;
    default: return S_GS;
    }
}

X86_OP(op_push_sreg)
{
    /* Current CPUs store only the 16-bit selector into the wider slot. */
    uint64_t sp = (c->regs[R_SP] - i->opsize) & x86_mask(c->stack_size);
    enum x86_status st = x86_store(c, S_SS, sp, 2, c->seg[sreg_of(i)].selector);
    if (st)
        return st;
    uint64_t m = x86_mask(c->stack_size);
    c->regs[R_SP] = (c->regs[R_SP] & ~m) | sp;
    return X86_OK;
}

X86_OP(op_pop_sreg)
{
    uint64_t v, old_sp = c->regs[R_SP];
    enum x86_status st = x86_pop(c, i->opsize, &v);
    if (st)
        return st;
    st = x86_load_sreg(c, sreg_of(i), (uint16_t)v);
    if (st)
        c->regs[R_SP] = old_sp;
    return st;
}

X86_OP(op_pusha)
{
    unsigned size = i->opsize;
    uint64_t sp = c->regs[R_SP], old = c->regs[R_SP];
    for (unsigned r = R_AX; r <= R_DI; r++) {
        enum x86_status st = x86_push(c, size, r == R_SP ? sp : c->regs[r]);
        if (st) {
            c->regs[R_SP] = old;
            return st;
        }
    }
    return X86_OK;
}

X86_OP(op_popa)
{
    unsigned size = i->opsize;
    uint64_t old = c->regs[R_SP], v[8];
    for (int r = R_DI; r >= R_AX; r--) {
        enum x86_status st = x86_pop(c, size, &v[r]);
        if (st) {
            c->regs[R_SP] = old;
            return st;
        }
    }
    for (unsigned r = R_AX; r <= R_DI; r++)
        if (r != R_SP)
            x86_set_reg(c, r, size, v[r]);
    return X86_OK;
}

X86_OP(op_pushf)
{
    if ((c->flags & F_VM) && ((c->flags & F_IOPL) >> 12) < 3)
        return x86_raise_err(c, X86_GP, 0);
    uint64_t f = x86_get_flags(c) & ~(uint64_t)(F_VM | F_RF);
    return x86_push(c, i->opsize, f);
}

X86_OP(op_popf)
{
    unsigned iopl = (c->flags & F_IOPL) >> 12;
    bool vm = c->flags & F_VM;
    if (vm && iopl < 3)
        return x86_raise_err(c, X86_GP, 0);
    uint64_t v;
    enum x86_status st = x86_pop(c, i->opsize, &v);
    if (st)
        return st;
    uint64_t can = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID | F_IF | F_IOPL;
    bool prot = c->cr0 & CR0_PE;
    if (vm) {
        can &= ~(uint64_t)F_IOPL;
    } else if (prot && c->cpl > 0) {
        can &= ~(uint64_t)F_IOPL;
        if (c->cpl > iopl)
            can &= ~(uint64_t)F_IF;
    }
    if (i->opsize == 2)
        can &= 0xffff;
    x86_flush_flags(c);
    uint64_t old = c->flags;
    c->flags = ((c->flags & ~can) | (v & can) | 2) & ~(uint64_t)F_RF;
    if ((old ^ c->flags) & F_TF)
        x86_update_mode(c); /* single-stepping starts or ends */
    return X86_OK;
}

X86_OP(op_enter)
{
    unsigned size = i->opsize;
    unsigned level = (unsigned)(i->imm2 & 31);
    uint64_t alloc = i->imm & 0xffff;
    uint64_t old_sp = c->regs[R_SP], old_bp = c->regs[R_BP];
    uint64_t sm = x86_mask(c->stack_size);
    enum x86_status st = x86_push(c, size, c->regs[R_BP]);
    if (st)
        return st;
    uint64_t frame = c->regs[R_SP] & sm;
    for (unsigned n = 1; n < level; n++) {
        uint64_t bp = (c->regs[R_BP] - (uint64_t)n * size) & sm, v;
        if ((st = x86_load(c, S_SS, bp, size, &v)) || (st = x86_push(c, size, v)))
            goto undo;
    }
    if (level > 0 && (st = x86_push(c, size, frame)))
        goto undo;
    /* The last stack byte the new frame reaches must be writable. */
    uint64_t new_sp = (c->regs[R_SP] - alloc) & sm;
    if (alloc) {
        uint64_t probe;
        if ((st = x86_linear(c, S_SS, new_sp, 1, true, &probe)))
            goto undo;
    }
    x86_set_reg(c, R_BP, c->stack_size == 2 ? 2 : size == 2 ? 2 : c->stack_size, frame);
    c->regs[R_SP] = (c->regs[R_SP] & ~sm) | new_sp;
    return X86_OK;
undo:
    c->regs[R_SP] = old_sp;
    c->regs[R_BP] = old_bp;
    return st;
}

X86_OP(op_leave)
{
    uint64_t sm = x86_mask(c->stack_size), old_sp = c->regs[R_SP], v;
    c->regs[R_SP] = (c->regs[R_SP] & ~sm) | (c->regs[R_BP] & sm);
    enum x86_status st = x86_pop(c, i->opsize, &v);
    if (st) {
        c->regs[R_SP] = old_sp;
        return st;
    }
    x86_set_reg(c, R_BP, i->opsize, v);
    return X86_OK;
}

X86_OP(op_jmp_rel)
{
    return branch(c, c->next_rip + i->imm, i->opsize);
}

X86_OP(op_jcc)
{
    if (!x86_cond(c, i->sub))
        return X86_OK;
    return branch(c, c->next_rip + i->imm, i->opsize);
}

X86_OP(op_call_rel)
{
    uint64_t target = (c->next_rip + i->imm) & x86_mask(i->opsize);
    if (!c->long64 && target > c->seg[S_CS].limit)
        return x86_raise_err(c, X86_GP, 0);
    enum x86_status st = x86_push(c, i->opsize, c->next_rip);
    return st ? st : branch(c, target, i->opsize);
}

X86_OP(op_ret)
{
    uint64_t old_sp = c->regs[R_SP], target;
    enum x86_status st = x86_pop(c, i->opsize, &target);
    if (st)
        return st;
    if (i->opcode == 0xc2) {
        uint64_t sm = x86_mask(c->stack_size);
        c->regs[R_SP] = (c->regs[R_SP] & ~sm) | ((c->regs[R_SP] + i->imm) & sm);
    }
    st = branch(c, target, i->opsize);
    if (st == X86_EXCEPTION)
        c->regs[R_SP] = old_sp;
    return st;
}

X86_OP(op_jmp_rm)
{
    uint64_t target;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &target);
    return st ? st : branch(c, target, i->opsize);
}

X86_OP(op_call_rm)
{
    uint64_t target;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &target);
    if (st)
        return st;
    target &= x86_mask(i->opsize);
    if (c->long64 ? (uint64_t)(((int64_t)target >> 47) + 1) > 1
                  : target > c->seg[S_CS].limit)
        return x86_raise_err(c, X86_GP, 0);
    st = x86_push(c, i->opsize, c->next_rip);
    return st ? st : branch(c, target, i->opsize);
}

X86_OP(op_loop)
{
    uint64_t m = x86_addr_mask(i->addrsize);
    uint64_t count = (c->regs[R_CX] - 1) & m;
    bool take = count != 0;
    if (i->opcode == 0xe0)
        take = take && !x86_cond(c, 4); /* loopne: ZF = 0 */
    else if (i->opcode == 0xe1)
        take = take && x86_cond(c, 4);  /* loope: ZF = 1 */
    uint64_t target = (c->next_rip + i->imm) & x86_mask(i->opsize);
    if (take && !c->long64 && target > c->seg[S_CS].limit)
        return x86_raise_err(c, X86_GP, 0);
    x86_set_reg(c, R_CX, i->addrsize, count);
    return take ? branch(c, target, i->opsize) : X86_OK;
}

X86_OP(op_jcxz)
{
    if ((c->regs[R_CX] & x86_addr_mask(i->addrsize)) != 0)
        return X86_OK;
    return branch(c, c->next_rip + i->imm, i->opsize);
}

/* ---- near branches with their target resolved at translation ---------------
 * In 64-bit mode a block's instructions have fixed addresses (CS's base is
 * 0 and blocks are cached by linear address), so jcc/jmp rel targets are
 * constants: computed and checked canonical once, kept in imm2. */

static enum x86_status jcc_fixed(struct x86_cpu *c, const struct x86_insn *i)
{
    if (!x86_cond(c, i->sub))
        return X86_OK;
    c->next_rip = i->imm2;
    return X86_BRANCH;
}

static enum x86_status jmp_fixed(struct x86_cpu *c, const struct x86_insn *i)
{
    c->next_rip = i->imm2;
    return X86_BRANCH;
}

static enum x86_status call_fixed(struct x86_cpu *c, const struct x86_insn *i)
{
    enum x86_status st = x86_push(c, 8, c->next_rip);
    if (st)
        return st;
    c->next_rip = i->imm2;
    return X86_BRANCH;
}

/* c3 in 64-bit mode with the default 64-bit operand: pop, check, go. */
static enum x86_status ret64(struct x86_cpu *c, const struct x86_insn *i)
{
    (void)i;
    uint64_t target, sp = c->regs[R_SP];
    enum x86_status st = x86_load(c, S_SS, sp, 8, &target);
    if (st)
        return st;
    if ((uint64_t)(((int64_t)target >> 47) + 1) > 1)
        return x86_raise_err(c, X86_GP, 0);
    c->regs[R_SP] = sp + 8;
    c->next_rip = target;
    return X86_BRANCH;
}

void x86_resolve_branch(const struct x86_cpu *c, struct x86_insn *i, uint64_t rip)
{
    if (!c->long64 || i->opsize != 8)
        return;
    if (i->fn == op_ret && i->opcode == 0xc3) {
        i->fn = ret64;
        return;
    }
    if (i->fn != op_jcc && i->fn != op_jmp_rel && i->fn != op_call_rel)
        return;
    uint64_t target = rip + i->len + i->imm;
    if ((uint64_t)(((int64_t)target >> 47) + 1) > 1)
        return; /* non-canonical: the generic handler raises #GP */
    i->imm2 = target;
    i->fn = i->fn == op_jcc ? jcc_fixed : i->fn == op_jmp_rel ? jmp_fixed : call_fixed;
}
