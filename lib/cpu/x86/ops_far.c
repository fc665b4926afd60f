/*
 * Far transfers: jmp/call far, retf and iret, in real, virtual-8086,
 * protected and long mode, to code segments directly (same privilege for
 * jmp/call; returns also to an outer privilege level), and through call
 * gates (calls to an inner level switch to the TSS's stack and copy the
 * gate's parameters). Task switches (a TSS or task gate as the target,
 * nested-task iret) are not modelled: they end the run with
 * X86_EXIT_UNSUPPORTED.
 */
#include "config.h"

#include "cpu/x86/interrupt.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"
#include "cpu/x86/seg.h"

static bool real_like(const struct x86_cpu *c)
{
    return !(c->cr0 & CR0_PE) || (c->flags & F_VM);
}

static void load_cs_real(struct x86_cpu *c, uint16_t sel)
{
    c->seg[S_CS].selector = sel;
    c->seg[S_CS].base = (uint64_t)sel << 4;
    if (c->flags & F_VM) {
        c->seg[S_CS].limit = 0xffff;
        c->seg[S_CS].dpl = 3;
    }
    x86_update_mode(c);
}

/* The code-segment descriptor a far transfer to sel would load, with the
 * checks for a direct transfer at privilege `cpl` (the new CPL for returns).
 * `ret`: returns allow RPL > CPL (outer level), jumps and calls do not. */
static enum x86_status check_code(struct x86_cpu *c, uint16_t sel, bool ret, vx_x86_segment *cs,
                                  uint64_t *desc_lin, uint64_t *desc)
{
    uint32_t err = sel & ~3u;
    if ((sel & ~3u) == 0)
        return x86_raise_err(c, X86_GP, 0);
    enum x86_status st = x86_read_descriptor(c, sel, desc, desc_lin);
    if (st)
        return st;
    x86_descriptor_to_segment(*desc, sel, cs);
    if (!cs->s)
        return x86_raise_err(c, X86_GP, err); /* gates and TSSs: not yet */
    if (!(cs->type & 8))
        return x86_raise_err(c, X86_GP, err); /* not code */
    unsigned rpl = sel & 3;
    bool conforming = cs->type & 4;
    if (ret) {
        if (rpl < c->cpl)
            return x86_raise_err(c, X86_GP, err);
        if (conforming ? cs->dpl > rpl : cs->dpl != rpl)
            return x86_raise_err(c, X86_GP, err);
    } else if (conforming) {
        if (cs->dpl > c->cpl)
            return x86_raise_err(c, X86_GP, err);
    } else if (rpl > c->cpl || cs->dpl != c->cpl) {
        return x86_raise_err(c, X86_GP, err);
    }
    if (!cs->present)
        return x86_raise_err(c, X86_NP, err);
    if ((c->efer & EFER_LMA) && cs->l && cs->db)
        return x86_raise_err(c, X86_GP, err);
    return X86_OK;
}

static void commit_cs(struct x86_cpu *c, vx_x86_segment *cs, unsigned cpl, uint64_t desc_lin,
                      uint64_t desc)
{
    if (!(cs->type & 1)) {
        uint8_t access = (uint8_t)((desc >> 40) | 1);
        c->mem->store_sys(c, desc_lin + 5, 1, &access);
        cs->type |= 1;
    }
    cs->selector = (uint16_t)((cs->selector & ~3u) | cpl);
    c->seg[S_CS] = *cs;
    x86_update_mode(c);
}

static enum x86_status check_target(struct x86_cpu *c, const vx_x86_segment *cs, uint64_t off)
{
    bool to64 = (c->efer & EFER_LMA) && cs->l;
    if (to64 ? (uint64_t)(((int64_t)off >> 47) + 1) > 1 : off > cs->limit)
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

/* The far pointer: in the instruction (ea, 9a), or in memory (ff /3, ff /5)
 * as an offset of the operand size then a selector. */
static enum x86_status far_pointer(struct x86_cpu *c, const struct x86_insn *i, uint64_t *off,
                                   uint16_t *sel)
{
    if (i->opcode != 0xff) {
        *off = i->imm;
        *sel = (uint16_t)i->imm2;
        return X86_OK;
    }
    unsigned osize = i->opsize;
    uint64_t ea = x86_ea(c, i), s = 0;
    enum x86_status st = x86_load(c, i->seg, ea, osize, off);
    if (!st)
        st = x86_load(c, i->seg, (ea + osize) & x86_addr_mask(i->addrsize), 2, &s);
    *sel = (uint16_t)s;
    return st;
}

/* A far jmp or call to a system descriptor: through a call gate to code at
 * the gate's privilege; a TSS or a task gate means a task switch. */
static enum x86_status through_gate(struct x86_cpu *c, const struct x86_insn *i, uint16_t sel,
                                    bool call)
{
    uint32_t err = sel & ~3u;
    uint64_t desc, desc_lin;
    enum x86_status st = x86_read_descriptor(c, sel, &desc, &desc_lin);
    if (st)
        return st;
    vx_x86_segment g;
    x86_descriptor_to_segment(desc, sel, &g);
    bool lm = c->efer & EFER_LMA;
    if (g.type == 5 || g.type == 1 || g.type == 9 || g.type == 3 || g.type == 0xb) {
        if (lm)
            return x86_raise_err(c, X86_GP, err); /* no task switches in long mode */
        c->unsupported = "a task switch (a far jmp or call to a TSS or task gate)";
        c->exit_reason = X86_EXIT_UNSUPPORTED;
        return X86_EXIT;
    }
    bool gate32 = g.type == 0xc, gate16 = g.type == 4 && !lm;
    if (!gate32 && !gate16)
        return x86_raise_err(c, X86_GP, err);
    if (g.dpl < c->cpl || g.dpl < (sel & 3))
        return x86_raise_err(c, X86_GP, err);
    if (!g.present)
        return x86_raise_err(c, X86_NP, err);
    uint16_t tsel = (uint16_t)(desc >> 16);
    uint64_t off = (desc & 0xffff) | ((desc >> 32) & 0xffff0000ull);
    unsigned params = (desc >> 32) & 0x1f;
    if (gate16)
        off &= 0xffff;
    if (lm) {
        /* A 16-byte gate: offset bits 63:32, and a zero type above them. */
        uint64_t hi = 0;
        if ((uint64_t)(sel & ~7u) + 15 > ((sel & 4) ? c->ldt.limit : c->gdt.limit))
            return x86_raise_err(c, X86_GP, err);
        if ((st = c->mem->load_sys(c, desc_lin + 8, 8, &hi)))
            return st;
        if ((hi >> 40) & 0x1f)
            return x86_raise_err(c, X86_GP, err);
        off |= hi << 32;
        params = 0;
    }

    /* The code segment the gate leads to. */
    if ((tsel & ~3u) == 0)
        return x86_raise_err(c, X86_GP, 0);
    uint64_t cd, clin;
    if ((st = x86_read_descriptor(c, tsel, &cd, &clin)))
        return st;
    vx_x86_segment cs;
    x86_descriptor_to_segment(cd, tsel, &cs);
    uint32_t terr = tsel & ~3u;
    bool conforming = cs.type & 4;
    if (!cs.s || !(cs.type & 8) || cs.dpl > c->cpl)
        return x86_raise_err(c, X86_GP, terr);
    if (!call && !conforming && cs.dpl != c->cpl)
        return x86_raise_err(c, X86_GP, terr);
    if (!cs.present)
        return x86_raise_err(c, X86_NP, terr);
    if (lm && (!cs.l || cs.db))
        return x86_raise_err(c, X86_GP, terr);
    if ((st = check_target(c, &cs, off)))
        return st;
    unsigned new_cpl = conforming ? c->cpl : cs.dpl;
    unsigned w = lm ? 8 : gate32 ? 4 : 2;

    if (call && new_cpl < c->cpl) {
        /* To an inner level: the TSS's stack, with the caller's SS:rSP,
         * the parameters, CS and the return address on it. */
        uint16_t nsel;
        uint64_t nsp;
        if ((st = x86_tss_stack(c, new_cpl, 0, lm, 0, &nsel, &nsp)))
            return st;
        struct x86_stack stk = { .width = w, .lm = lm };
        if (lm) {
            stk.ss = (vx_x86_segment){ .selector = (uint16_t)new_cpl, .dpl = (uint8_t)new_cpl,
                                       .type = 3, .s = 1, .db = 1 };
            stk.sp = nsp;
        } else {
            if ((st = x86_inner_ss(c, nsel, new_cpl, 0, &stk.ss)))
                return st;
            stk.sp = stk.ss.db ? (uint32_t)nsp : (nsp & 0xffff);
        }
        stk.sp32 = stk.ss.db;
        uint64_t frame[2 + 31 + 2];
        unsigned n = 0;
        frame[n++] = c->seg[S_SS].selector;
        frame[n++] = c->regs[R_SP] & x86_mask(c->stack_size);
        uint64_t m = x86_mask(c->stack_size);
        for (unsigned k = params; k-- > 0;) {
            uint64_t v = 0;
            if ((st = x86_load(c, S_SS, (c->regs[R_SP] + (uint64_t)k * w) & m, w, &v)))
                return st;
            frame[n++] = v;
        }
        frame[n++] = c->seg[S_CS].selector;
        frame[n++] = c->next_rip;
        for (unsigned k = 0; k < n; k++)
            frame[k] &= x86_mask(w);
        if ((st = x86_push_frame(c, &stk, frame, n, new_cpl, nsel, 0)))
            return st;
        c->seg[S_SS] = stk.ss;
        c->regs[R_SP] = (lm || stk.sp32) ? stk.sp : (c->regs[R_SP] & ~0xffffull) | stk.sp;
        commit_cs(c, &cs, new_cpl, clin, cd);
        c->next_rip = off;
        return X86_BRANCH;
    }
    if (call) {
        uint64_t old_sp = c->regs[R_SP];
        if ((st = x86_push(c, w, c->seg[S_CS].selector)) || (st = x86_push(c, w, c->next_rip))) {
            c->regs[R_SP] = old_sp;
            return st;
        }
    }
    (void)i;
    commit_cs(c, &cs, c->cpl, clin, cd);
    c->next_rip = off;
    return X86_BRANCH;
}

/* Does sel name a system descriptor (a gate or TSS)? Faults as a load
 * of it would. */
static enum x86_status is_system(struct x86_cpu *c, uint16_t sel, bool *sys)
{
    *sys = false;
    if ((sel & ~3u) == 0)
        return X86_OK; /* check_code raises #GP(0) */
    uint64_t d, lin;
    enum x86_status st = x86_read_descriptor(c, sel, &d, &lin);
    if (st)
        return st;
    *sys = !((d >> 44) & 1);
    return X86_OK;
}

X86_OP(op_jmp_far)
{
    uint64_t off;
    uint16_t sel;
    enum x86_status st = far_pointer(c, i, &off, &sel);
    if (st)
        return st;
    if (real_like(c)) {
        load_cs_real(c, sel);
        c->next_rip = off & x86_mask(i->opsize == 2 ? 2 : 4);
        return X86_BRANCH;
    }
    bool sys;
    if ((st = is_system(c, sel, &sys)))
        return st;
    if (sys)
        return through_gate(c, i, sel, false);
    vx_x86_segment cs;
    uint64_t dl, d;
    if ((st = check_code(c, sel, false, &cs, &dl, &d)) || (st = check_target(c, &cs, off)))
        return st;
    commit_cs(c, &cs, c->cpl, dl, d);
    c->next_rip = off & x86_mask(c->long64 ? 8 : i->opsize);
    return X86_BRANCH;
}

X86_OP(op_call_far)
{
    uint64_t off, old_sp = c->regs[R_SP];
    uint16_t sel;
    unsigned size = i->opsize;
    enum x86_status st = far_pointer(c, i, &off, &sel);
    if (st)
        return st;
    if (real_like(c)) {
        if ((st = x86_push(c, size, c->seg[S_CS].selector)) ||
            (st = x86_push(c, size, c->next_rip))) {
            c->regs[R_SP] = old_sp;
            return st;
        }
        load_cs_real(c, sel);
        c->next_rip = off & x86_mask(size);
        return X86_BRANCH;
    }
    bool sys;
    if ((st = is_system(c, sel, &sys)))
        return st;
    if (sys)
        return through_gate(c, i, sel, true);
    vx_x86_segment cs;
    uint64_t dl, d;
    if ((st = check_code(c, sel, false, &cs, &dl, &d)) || (st = check_target(c, &cs, off)))
        return st;
    if ((st = x86_push(c, size, c->seg[S_CS].selector)) || (st = x86_push(c, size, c->next_rip))) {
        c->regs[R_SP] = old_sp;
        return st;
    }
    commit_cs(c, &cs, c->cpl, dl, d);
    c->next_rip = off & x86_mask(c->long64 ? 8 : size);
    return X86_BRANCH;
}

/* Pop `n` values of `size` bytes from SS:rSP without moving rSP. */
static enum x86_status peek(struct x86_cpu *c, unsigned size, unsigned n, uint64_t *out)
{
    uint64_t m = x86_mask(c->stack_size);
    for (unsigned k = 0; k < n; k++) {
        enum x86_status st = x86_load(c, S_SS, (c->regs[R_SP] + (uint64_t)k * size) & m, size,
                                      &out[k]);
        if (st)
            return st;
    }
    return X86_OK;
}

static void add_sp(struct x86_cpu *c, uint64_t n)
{
    uint64_t m = x86_mask(c->stack_size);
    c->regs[R_SP] = (c->regs[R_SP] & ~m) | ((c->regs[R_SP] + n) & m);
}

/* After a return to an outer level, data segments the new CPL may not use
 * become null. */
static void clear_inaccessible(struct x86_cpu *c)
{
    static const unsigned segs[] = { S_ES, S_DS, S_FS, S_GS };
    for (unsigned k = 0; k < 4; k++) {
        vx_x86_segment *s = &c->seg[segs[k]];
        bool conforming_code = s->s && (s->type & 8) && (s->type & 4);
        if (s->present && !conforming_code && s->dpl < c->cpl) {
            s->selector = 0;
            s->present = 0;
        }
    }
}

/* The stack segment a return to an outer level loads. */
static enum x86_status load_outer_ss(struct x86_cpu *c, uint16_t sel, unsigned cpl, bool to64,
                                     vx_x86_segment *ss)
{
    if ((sel & ~3u) == 0) {
        /* A null SS is allowed only going back to 64-bit mode below ring
         * 3, with RPL = the new CPL. */
        if ((c->efer & EFER_LMA) && to64 && cpl < 3 && (sel & 3u) == cpl) {
            *ss = (vx_x86_segment){ .selector = sel, .dpl = (uint8_t)cpl };
            return X86_OK;
        }
        return x86_raise_err(c, X86_GP, 0);
    }
    uint64_t d, lin;
    enum x86_status st = x86_read_descriptor(c, sel, &d, &lin);
    if (st)
        return st;
    x86_descriptor_to_segment(d, sel, ss);
    uint32_t err = sel & ~3u;
    if ((sel & 3) != cpl || ss->dpl != cpl || !ss->s || (ss->type & 8) || !(ss->type & 2))
        return x86_raise_err(c, X86_GP, err);
    if (!ss->present)
        return x86_raise_err(c, X86_SS, err);
    ss->type |= 1;
    return X86_OK;
}

/* Protected-mode return: the words on the stack are rip, cs[, rflags], then
 * for an outer level (or any iretq) rsp and ss. */
static enum x86_status far_return(struct x86_cpu *c, const struct x86_insn *i, bool iret)
{
    unsigned size = i->opsize;
    uint64_t w[5];
    unsigned base = iret ? 3 : 2;
    enum x86_status st = peek(c, size, base, w);
    if (st)
        return st;
    uint16_t sel = (uint16_t)w[1];
    vx_x86_segment cs;
    uint64_t dl, d;
    if ((st = check_code(c, sel, true, &cs, &dl, &d)))
        return st;
    unsigned new_cpl = sel & 3;
    bool outer = new_cpl > c->cpl || (iret && c->long64);
    uint64_t imm = (!iret && i->opcode == 0xca) ? i->imm : 0;
    vx_x86_segment ss;
    uint64_t new_sp = 0;
    if (outer) {
        uint64_t m = x86_mask(c->stack_size), v[2];
        for (unsigned k = 0; k < 2; k++) {
            uint64_t off = (c->regs[R_SP] + imm + (uint64_t)(base + k) * size) & m;
            if ((st = x86_load(c, S_SS, off, size, &v[k])))
                return st;
        }
        new_sp = v[0];
        if ((st = load_outer_ss(c, (uint16_t)v[1], new_cpl, (c->efer & EFER_LMA) && cs.l, &ss)))
            return st;
    }
    if ((st = check_target(c, &cs, w[0] & x86_mask((c->efer & EFER_LMA) && cs.l ? 8 : size))))
        return st;

    /* Committed: nothing below can fault. */
    unsigned old_cpl = c->cpl;
    if (iret) {
        /* RF would be cleared again when the next instruction completes;
         * with no instruction breakpoints to suppress, it is not kept. */
        uint64_t can = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID;
        unsigned iopl = (c->flags & F_IOPL) >> 12;
        if (old_cpl == 0)
            can |= F_IOPL | F_VIF | F_VIP;
        if (old_cpl <= iopl)
            can |= F_IF;
        if (size == 2)
            can &= 0xffff;
        x86_flush_flags(c);
        c->flags = (c->flags & ~can) | (w[2] & can) | 2;
    }
    commit_cs(c, &cs, new_cpl, dl, d);
    if (iret)
        c->nmi_blocked = false; /* iret ends NMI blocking */
    if (outer) {
        bool to64 = (c->efer & EFER_LMA) && cs.l;
        c->seg[S_SS] = ss;
        c->regs[R_SP] = to64 ? new_sp : (ss.db ? (uint32_t)new_sp : (c->regs[R_SP] & ~0xffffull) | (new_sp & 0xffff));
        if (!iret && i->opcode == 0xca)
            add_sp(c, i->imm);
        if (new_cpl > old_cpl)
            clear_inaccessible(c);
        x86_update_mode(c);
    } else {
        add_sp(c, (uint64_t)base * size + imm);
    }
    c->next_rip = w[0] & x86_mask(c->long64 ? 8 : size);
    return X86_BRANCH;
}

X86_OP(op_retf)
{
    if (!real_like(c))
        return far_return(c, i, false);
    unsigned size = i->opsize;
    uint64_t w[2];
    enum x86_status st = peek(c, size, 2, w);
    if (st)
        return st;
    add_sp(c, 2ull * size + (i->opcode == 0xca ? i->imm : 0));
    load_cs_real(c, (uint16_t)w[1]);
    c->next_rip = w[0] & x86_mask(size);
    return X86_BRANCH;
}

X86_OP(op_iret)
{
    if (c->flags & F_VM) {
        if (((c->flags & F_IOPL) >> 12) < 3)
            return x86_raise_err(c, X86_GP, 0);
    } else if (c->cr0 & CR0_PE) {
        if (c->flags & F_NT)
            return x86_raise_err(c, X86_GP, 0); /* task return: not yet */
        return far_return(c, i, true);
    }
    unsigned size = i->opsize;
    uint64_t w[3];
    enum x86_status st = peek(c, size, 3, w);
    if (st)
        return st;
    add_sp(c, 3ull * size);
    uint64_t can = F_ARITH | F_TF | F_IF | F_DF | F_NT | F_AC | F_ID;
    if (!(c->flags & F_VM))
        can |= F_IOPL;
    if (size == 2)
        can &= 0xffff;
    x86_flush_flags(c);
    c->flags = (c->flags & ~can) | (w[2] & can) | 2;
    load_cs_real(c, (uint16_t)w[1]);
    c->nmi_blocked = false;
    c->next_rip = w[0] & x86_mask(size);
    return X86_BRANCH;
}
