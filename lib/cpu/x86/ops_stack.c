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

static __attribute__((noinline)) enum x86_status call_fixed_slow(struct x86_cpu *c,
                                                                  const struct x86_insn *i)
{
    enum x86_status st = x86_push(c, 8, c->next_rip);
    if (st)
        return st;
    c->next_rip = i->imm2;
    return X86_BRANCH;
}

static enum x86_status call_fixed(struct x86_cpu *c, const struct x86_insn *i)
{
    if (!x86_try_push64(c, c->next_rip))
        return call_fixed_slow(c, i);
    c->next_rip = i->imm2;
    return X86_BRANCH;
}

/* c3 in 64-bit mode with the default 64-bit operand: pop, check, go. */
static __attribute__((noinline)) enum x86_status ret64_slow(struct x86_cpu *c)
{
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

static enum x86_status ret64(struct x86_cpu *c, const struct x86_insn *i)
{
    (void)i;
    uint64_t target;
    if (!x86_try_peek64(c, &target) || (uint64_t)(((int64_t)target >> 47) + 1) > 1)
        return ret64_slow(c);
    c->regs[R_SP] += 8;
    c->next_rip = target;
    return X86_BRANCH;
}

/* push and pop of a 64-bit register (64-bit mode, no 0x66). */
static enum x86_status push64_r(struct x86_cpu *c, const struct x86_insn *i)
{
    if (!x86_try_push64(c, c->regs[i->reg]))
        return op_push_r(c, i);
    return X86_OK;
}

static enum x86_status pop64_r(struct x86_cpu *c, const struct x86_insn *i)
{
    uint64_t v;
    if (!x86_try_peek64(c, &v))
        return op_pop_r(c, i);
    c->regs[R_SP] += 8;
    c->regs[i->reg] = v; /* after: pop rsp loads the popped value */
    return X86_OK;
}

x86_handler x86_specialize_stack(const struct x86_insn *i)
{
    if (i->opsize != 8)
        return i->fn;
    if (i->fn == op_push_r)
        return push64_r;
    if (i->fn == op_pop_r)
        return pop64_r;
    return i->fn;
}

/* ---- jcc after a known flag setter ------------------------------------------
 * Within a block, the instruction before a jcc has always just run when the
 * jcc runs (a block is entered at its first instruction only, and ends after
 * any instruction that faults or needs attention). When that instruction
 * always leaves the same lazy operation and size (x86_flags_left), the jcc
 * can test the condition on the lazy result directly, with the operation,
 * size and condition fixed at compile time: the same conditions as
 * x86_lazy_flags gives, without building RFLAGS. Parity, and anything but
 * ZF and SF after inc/dec, stay with jcc_fixed. */

static inline __attribute__((always_inline)) bool cond_after(unsigned op, unsigned size,
                                                             unsigned cc, uint64_t res,
                                                             uint64_t src)
{
    const uint64_t m = x86_mask(size), sb = 1ull << (size * 8 - 1);
    res &= m;
    src &= m;
    bool cf = false, of = false, zf = res == 0, sf = (res & sb) != 0, r;
    if (op == CC_SUB) {
        uint64_t dst = (res + src) & m;
        cf = dst < src;
        of = ((dst ^ src) & (dst ^ res) & sb) != 0;
    } else if (op == CC_ADD) {
        uint64_t dst = (res - src) & m;
        cf = res < src;
        of = ((dst ^ res) & (src ^ res) & sb) != 0;
    }
    switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 6: r = sf != of; break;
    default: r = zf || sf != of; break;
    }
    return (cc & 1) ? !r : r;
}

#define JCC_AFTER(op, size, cc)                                                   \
    static enum x86_status jcc_##op##_##size##_##cc(struct x86_cpu *c,           \
                                                    const struct x86_insn *i)    \
    {                                                                             \
        if (!cond_after(op, size, cc, c->lazy.res, c->lazy.src))                  \
            return X86_OK;                                                        \
        c->next_rip = i->imm2;                                                    \
        return X86_BRANCH;                                                        \
    }
#define JCC_AFTER_ALL(op, size)                                                   \
    JCC_AFTER(op, size, 0) JCC_AFTER(op, size, 1) JCC_AFTER(op, size, 2)           \
    JCC_AFTER(op, size, 3) JCC_AFTER(op, size, 4) JCC_AFTER(op, size, 5)           \
    JCC_AFTER(op, size, 6) JCC_AFTER(op, size, 7) JCC_AFTER(op, size, 8)           \
    JCC_AFTER(op, size, 9) JCC_AFTER(op, size, 12) JCC_AFTER(op, size, 13)         \
    JCC_AFTER(op, size, 14) JCC_AFTER(op, size, 15)
#define JCC_ROW(op, size)                                                         \
    { jcc_##op##_##size##_0, jcc_##op##_##size##_1, jcc_##op##_##size##_2,        \
      jcc_##op##_##size##_3, jcc_##op##_##size##_4, jcc_##op##_##size##_5,        \
      jcc_##op##_##size##_6, jcc_##op##_##size##_7, jcc_##op##_##size##_8,        \
      jcc_##op##_##size##_9, NULL, NULL, jcc_##op##_##size##_12,                  \
      jcc_##op##_##size##_13, jcc_##op##_##size##_14, jcc_##op##_##size##_15 }
/* inc/dec: ZF and SF only (CF is the one they found, OF their own). */
#define JCC_AFTER_ZS(op, size)                                                    \
    JCC_AFTER(op, size, 4) JCC_AFTER(op, size, 5) JCC_AFTER(op, size, 8)           \
    JCC_AFTER(op, size, 9)
#define JCC_ROW_ZS(op, size)                                                      \
    { NULL, NULL, NULL, NULL, jcc_##op##_##size##_4, jcc_##op##_##size##_5,       \
      NULL, NULL, jcc_##op##_##size##_8, jcc_##op##_##size##_9,                   \
      NULL, NULL, NULL, NULL, NULL, NULL }

JCC_AFTER_ALL(CC_ADD, 4) JCC_AFTER_ALL(CC_ADD, 8)
JCC_AFTER_ALL(CC_SUB, 4) JCC_AFTER_ALL(CC_SUB, 8)
JCC_AFTER_ALL(CC_LOGIC, 4) JCC_AFTER_ALL(CC_LOGIC, 8)
JCC_AFTER_ZS(CC_INC, 4) JCC_AFTER_ZS(CC_INC, 8)
JCC_AFTER_ZS(CC_DEC, 4) JCC_AFTER_ZS(CC_DEC, 8)

/* [operation: add, sub, logic, inc, dec][size 4, 8][condition] */
static const x86_handler jcc_after[5][2][16] = {
    { JCC_ROW(CC_ADD, 4), JCC_ROW(CC_ADD, 8) },
    { JCC_ROW(CC_SUB, 4), JCC_ROW(CC_SUB, 8) },
    { JCC_ROW(CC_LOGIC, 4), JCC_ROW(CC_LOGIC, 8) },
    { JCC_ROW_ZS(CC_INC, 4), JCC_ROW_ZS(CC_INC, 8) },
    { JCC_ROW_ZS(CC_DEC, 4), JCC_ROW_ZS(CC_DEC, 8) },
};

unsigned x86_specialize_block(struct x86_insn *insns, unsigned n)
{
    unsigned changed = 0;
    for (unsigned k = 1; k < n; k++) {
        struct x86_insn *i = &insns[k];
        if (i->fn != jcc_fixed)
            continue;
        const struct x86_insn *p = &insns[k - 1];
        int op = x86_flags_left(p);
        if (op < 0 || (p->opsize != 4 && p->opsize != 8))
            continue;
        int row = op == CC_ADD ? 0 : op == CC_SUB ? 1 : op == CC_LOGIC ? 2 : op == CC_INC ? 3
                  : op == CC_DEC ? 4 : -1;
        x86_handler fn = row < 0 ? NULL : jcc_after[row][p->opsize == 8][i->sub & 15];
        if (fn) {
            i->fn = fn;
            changed++;
        }
    }
    return changed;
}

void x86_resolve_branch(const struct x86_cpu *c, struct x86_insn *i, uint64_t rip)
{
    if (!c->long64 || x86_resolve_lea(i, rip + i->len))
        return;
    if (i->mem && i->base == X86_RIPREL) {
        /* The next rip is a constant too: an absolute operand (x86_ea masks
         * the sum to a 32-bit address size as before). */
        i->disp += rip + i->len;
        i->base = X86_NOREG;
    }
    if (i->opsize != 8)
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
