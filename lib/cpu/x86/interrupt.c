/*
 * Exception and interrupt delivery, as the SDM (vol. 3, chapter 6) and the
 * APM (vol. 2, chapter 8) describe it.
 *
 * Delivery is written like an instruction: every check that can fault comes
 * before the first change to registers, so an event whose delivery faults
 * leaves the CPU as it was (but for stack memory already written, as on the
 * CPU) and the nested exception is delivered from that state.
 *
 * Not modelled: task gates (a hardware task switch ends the run with
 * X86_EXIT_UNSUPPORTED), virtual-8086 mode extensions (VME).
 */
#include "config.h"

#include "cpu/x86/interrupt.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/seg.h"

const char *x86_vector_name(unsigned v)
{
    static const char *const names[] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "vector 9",
        "#TS", "#NP", "#SS", "#GP", "#PF", "vector 15", "#MF", "#AC", "#MC", "#XM",
        "#VE", "#CP",
    };
    return v < sizeof names / sizeof names[0] ? names[v] : "interrupt";
}

/* Error code of a fault on an IDT entry: its index, the IDT bit, EXT. */
static uint32_t idt_error(unsigned vector, uint32_t ext)
{
    return vector * 8 + 2 + ext;
}

/* A fault raised by delivery itself about a selector: EXT when the event
 * came from outside the program. */
static enum x86_status sel_fault(struct x86_cpu *c, unsigned vector, uint16_t sel, uint32_t ext)
{
    return x86_raise_err(c, vector, (sel & ~3u) | ext);
}

/* ---- the frame ------------------------------------------------------------ */

enum x86_status x86_push_frame(struct x86_cpu *c, struct x86_stack *st, const uint64_t *slot,
                               unsigned n, unsigned new_cpl, uint16_t ss_fault_sel, uint32_t ext)
{
    uint64_t sp = st->sp;
    uint64_t mask = st->lm ? ~0ull : st->sp32 ? 0xffffffffull : 0xffffull;
    for (unsigned k = 0; k < n; k++) {
        sp = (sp - st->width) & mask;
        uint64_t lin;
        if (st->lm) {
            lin = sp;
            if ((uint64_t)(((int64_t)lin >> 47) + 1) > 1)
                return x86_raise_err(c, X86_SS, ext);
        } else {
            /* Limit checks on the (expand-up or expand-down) stack segment. */
            const vx_x86_segment *s = &st->ss;
            bool down = (s->type & 4) != 0;
            uint64_t top = down ? (s->db ? 0xffffffffull : 0xffffull) : s->limit;
            uint64_t lo = down ? (uint64_t)s->limit + 1 : 0;
            if ((c->cr0 & CR0_PE) && (sp < lo || sp + st->width - 1 > top))
                return x86_raise_err(c, X86_SS, (ss_fault_sel & ~3u) | ext);
            lin = (uint32_t)(s->base + sp);
        }
        uint64_t v = slot[k];
        enum x86_status r = new_cpl == c->cpl
                                ? c->mem->store_slow(c, lin, st->width, &v)
                                : c->mem->store_sys(c, lin, st->width, &v);
        if (r)
            return r;
    }
    st->sp = sp;
    return X86_OK;
}

/* ---- real mode -------------------------------------------------------------- */

static enum x86_status deliver_real(struct x86_cpu *c, unsigned vector, uint64_t ret)
{
    if ((uint64_t)vector * 4 + 3 > c->idt.limit)
        return x86_raise_err(c, X86_GP, 0);
    uint32_t entry = 0;
    enum x86_status r = c->mem->load_sys(c, (uint32_t)(c->idt.base + vector * 4), 4, &entry);
    if (r)
        return r;
    struct x86_stack st = { .ss = c->seg[S_SS], .sp = c->regs[R_SP], .width = 2,
                        .sp32 = false, .lm = false };
    uint64_t frame[3] = { x86_get_flags(c) & 0xffff, c->seg[S_CS].selector, ret & 0xffff };
    if ((r = x86_push_frame(c, &st, frame, 3, c->cpl, 0, 0)))
        return r;
    c->regs[R_SP] = (c->regs[R_SP] & ~0xffffull) | st.sp;
    x86_flush_flags(c);
    c->flags &= ~(uint64_t)(F_IF | F_TF | F_AC | F_RF);
    c->seg[S_CS].selector = (uint16_t)(entry >> 16);
    c->seg[S_CS].base = (uint64_t)(entry >> 16) << 4;
    c->rip = entry & 0xffff;
    x86_update_mode(c);
    return X86_OK;
}

/* ---- protected and long mode ------------------------------------------------ */

/* The inner stack for privilege level dpl, from the TSS (or the IST). */
enum x86_status x86_tss_stack(struct x86_cpu *c, unsigned dpl, unsigned ist, bool lm,
                              uint32_t ext, uint16_t *ss_sel, uint64_t *sp)
{
    const vx_x86_segment *tr = &c->tr;
    unsigned type = tr->type;
    if (!tr->present || (lm ? (type & 0xd) != 9 : (type & 5) != 1))
        return sel_fault(c, X86_TS, tr->selector, ext);
    enum x86_status r;
    if (lm) {
        uint64_t off = ist ? 0x24 + 8ull * (ist - 1) : 4 + 8ull * dpl;
        if (off + 7 > tr->limit)
            return sel_fault(c, X86_TS, tr->selector, ext);
        *sp = 0;
        if ((r = c->mem->load_sys(c, tr->base + off, 8, sp)))
            return r;
        *ss_sel = (uint16_t)dpl; /* a null selector with RPL = CPL */
        return X86_OK;
    }
    bool tss32 = type & 8;
    uint64_t off = tss32 ? 4 + 8ull * dpl : 2 + 4ull * dpl;
    unsigned w = tss32 ? 4 : 2;
    if (off + 2 * w - 1 > tr->limit)
        return sel_fault(c, X86_TS, tr->selector, ext);
    uint32_t v = 0;
    uint16_t s = 0;
    if ((r = c->mem->load_sys(c, (uint32_t)(tr->base + off), w, &v)))
        return r;
    if ((r = c->mem->load_sys(c, (uint32_t)(tr->base + off + w), 2, &s)))
        return r;
    *sp = v;
    *ss_sel = s;
    return X86_OK;
}

/* The stack segment an inner-level delivery loads (#TS with its selector
 * when it will not do, #SS when it is not present). */
enum x86_status x86_inner_ss(struct x86_cpu *c, uint16_t sel, unsigned dpl, uint32_t ext,
                             vx_x86_segment *ss)
{
    if ((sel & ~3u) == 0)
        return sel_fault(c, X86_TS, sel, ext);
    uint64_t d, lin;
    enum x86_status r = x86_read_descriptor(c, sel, &d, &lin);
    if (r) {
        if (c->exc.vector == X86_GP) /* outside the table */
            return sel_fault(c, X86_TS, sel, ext);
        return r;
    }
    x86_descriptor_to_segment(d, sel, ss);
    if ((sel & 3) != dpl || ss->dpl != dpl || !ss->s || (ss->type & 8) || !(ss->type & 2))
        return sel_fault(c, X86_TS, sel, ext);
    if (!ss->present)
        return sel_fault(c, X86_SS, sel, ext);
    if (!(ss->type & 1)) {
        uint8_t access = (uint8_t)((d >> 40) | 1);
        if ((r = c->mem->store_sys(c, lin + 5, 1, &access)))
            return r;
        ss->type |= 1;
    }
    return X86_OK;
}

static enum x86_status deliver_protected(struct x86_cpu *c, unsigned vector,
                                         enum x86_event_kind kind, bool has_error,
                                         uint32_t error, uint64_t ret)
{
    bool lm = c->efer & EFER_LMA;
    uint32_t ext = (kind == X86_EV_SOFTWARE) ? 0 : 1;
    unsigned esize = lm ? 16 : 8;
    if ((uint64_t)vector * esize + esize - 1 > c->idt.limit)
        return x86_raise_err(c, X86_GP, idt_error(vector, ext));
    uint64_t gate[2] = { 0, 0 };
    uint64_t glin = c->idt.base + (uint64_t)vector * esize;
    if (!lm)
        glin = (uint32_t)glin;
    enum x86_status r = c->mem->load_sys(c, glin, esize, gate);
    if (r)
        return r;
    unsigned type = (gate[0] >> 40) & 0x1f; /* with the S bit, which must be 0 */
    unsigned gdpl = (gate[0] >> 45) & 3;
    bool present = (gate[0] >> 47) & 1;
    bool ok_type = lm ? (type == 0xe || type == 0xf)
                      : (type == 0x5 || type == 0x6 || type == 0x7 || type == 0xe || type == 0xf);
    if (!ok_type)
        return x86_raise_err(c, X86_GP, idt_error(vector, ext));
    if (kind == X86_EV_SOFTWARE && gdpl < c->cpl)
        return x86_raise_err(c, X86_GP, idt_error(vector, ext));
    if (!present)
        return x86_raise_err(c, X86_NP, idt_error(vector, ext));
    if (type == 0x5) {
        c->unsupported = "a task gate in the IDT (hardware task switching)";
        c->exit_reason = X86_EXIT_UNSUPPORTED;
        return X86_EXIT;
    }
    bool trap = type & 1;
    unsigned gsize = lm ? 8 : (type & 8) ? 4 : 2;
    uint16_t sel = (uint16_t)(gate[0] >> 16);
    uint64_t target = (gate[0] & 0xffff) | ((gate[0] >> 32) & 0xffff0000ull);
    if (lm)
        target |= gate[1] << 32;
    else if (gsize == 2)
        target &= 0xffff;
    unsigned ist = lm ? (gate[0] >> 32) & 7 : 0;

    /* The handler's code segment. */
    if ((sel & ~3u) == 0)
        return x86_raise_err(c, X86_GP, ext);
    uint64_t cd, clin;
    if ((r = x86_read_descriptor(c, sel, &cd, &clin))) {
        if (c->exc.vector == X86_GP)
            c->exc.error |= ext;
        return r;
    }
    vx_x86_segment cs;
    x86_descriptor_to_segment(cd, sel, &cs);
    if (!cs.s || !(cs.type & 8) || cs.dpl > c->cpl)
        return sel_fault(c, X86_GP, sel, ext);
    if (!cs.present)
        return sel_fault(c, X86_NP, sel, ext);
    if (lm && (!cs.l || cs.db))
        return sel_fault(c, X86_GP, sel, ext);
    bool conforming = cs.type & 4;
    bool vm86 = c->flags & F_VM;
    unsigned new_cpl = conforming ? c->cpl : cs.dpl;
    bool inner = new_cpl < c->cpl;
    if (vm86 && new_cpl != 0)
        return sel_fault(c, X86_GP, sel, ext);
    if (lm ? (uint64_t)(((int64_t)target >> 47) + 1) > 1 : target > cs.limit)
        return x86_raise_err(c, X86_GP, ext);

    /* The stack. */
    struct x86_stack st = { .width = gsize, .lm = lm };
    uint16_t ss_sel = c->seg[S_SS].selector;
    if (inner || (lm && ist)) {
        uint16_t nsel;
        uint64_t nsp;
        if ((r = x86_tss_stack(c, new_cpl, ist, lm, ext, &nsel, &nsp)))
            return r;
        if (lm) {
            if (inner)
                st.ss = (vx_x86_segment){ .selector = (uint16_t)new_cpl, .dpl = (uint8_t)new_cpl,
                                          .type = 3, .s = 1, .db = 1 };
            else
                st.ss = c->seg[S_SS];
            st.sp = nsp;
        } else {
            if ((r = x86_inner_ss(c, nsel, new_cpl, ext, &st.ss)))
                return r;
            st.sp = st.ss.db ? (uint32_t)nsp : (nsp & 0xffff);
            ss_sel = nsel;
        }
    } else {
        st.ss = c->seg[S_SS];
        st.sp = c->regs[R_SP];
        if (!lm && !st.ss.db)
            st.sp &= 0xffff;
        else if (!lm)
            st.sp = (uint32_t)st.sp;
    }
    if (lm)
        st.sp &= ~0xfull; /* 64-bit delivery aligns the stack */
    st.sp32 = st.ss.db;

    /* The frame, pushed first to last. */
    uint64_t flags = x86_get_flags(c);
    /* Faults save RF set, so the return does not stop again on an
     * instruction breakpoint; KVM does the same for #DF. */
    if (kind == X86_EV_EXCEPTION && vector != X86_DB)
        flags |= F_RF;
    uint64_t frame[10];
    unsigned n = 0;
    if (vm86) {
        frame[n++] = c->seg[S_GS].selector;
        frame[n++] = c->seg[S_FS].selector;
        frame[n++] = c->seg[S_DS].selector;
        frame[n++] = c->seg[S_ES].selector;
    }
    if (inner || lm) {
        frame[n++] = c->seg[S_SS].selector;
        frame[n++] = c->regs[R_SP];
    }
    frame[n++] = flags;
    frame[n++] = c->seg[S_CS].selector;
    frame[n++] = ret;
    if (has_error)
        frame[n++] = error;
    if (gsize == 2)
        for (unsigned k = 0; k < n; k++)
            frame[k] &= 0xffff;
    else if (gsize == 4)
        for (unsigned k = 0; k < n; k++)
            frame[k] &= 0xffffffffull;
    if ((r = x86_push_frame(c, &st, frame, n, new_cpl, ss_sel, ext)))
        return r;

    /* Committed: nothing below faults. */
    if (!(cs.type & 1)) {
        uint8_t access = (uint8_t)((cd >> 40) | 1);
        c->mem->store_sys(c, clin + 5, 1, &access);
        cs.type |= 1;
    }
    x86_flush_flags(c);
    c->flags &= ~(uint64_t)(F_TF | F_NT | F_RF | F_VM);
    if (!trap)
        c->flags &= ~(uint64_t)F_IF;
    if (vm86) {
        static const unsigned clear[] = { S_GS, S_FS, S_DS, S_ES };
        for (unsigned k = 0; k < 4; k++)
            c->seg[clear[k]] = (vx_x86_segment){ .selector = 0, .present = 0 };
    }
    cs.selector = (uint16_t)((sel & ~3u) | new_cpl);
    if (inner || (lm && ist))
        c->seg[S_SS] = st.ss;
    if (lm || st.sp32)
        c->regs[R_SP] = st.sp;
    else
        c->regs[R_SP] = (c->regs[R_SP] & ~0xffffull) | st.sp;
    c->seg[S_CS] = cs;
    c->rip = target;
    x86_update_mode(c);
    return X86_OK;
}

enum x86_status x86_deliver(struct x86_cpu *c, unsigned vector, enum x86_event_kind kind,
                            bool has_error, uint32_t error, uint64_t ret)
{
    if (!(c->cr0 & CR0_PE))
        return deliver_real(c, vector, ret);
    return deliver_protected(c, vector, kind, has_error, error, ret);
}

/* ---- nesting ----------------------------------------------------------------- */

enum exc_class { BENIGN, CONTRIBUTORY, PAGE_FAULT, DOUBLE_FAULT };

static enum exc_class classify(unsigned vector)
{
    switch (vector) {
    case X86_DE: case X86_TS: case X86_NP: case X86_SS: case X86_GP: return CONTRIBUTORY;
    case X86_PF: return PAGE_FAULT;
    case X86_DF: return DOUBLE_FAULT;
    default: return BENIGN;
    }
}

static bool has_error_code(unsigned vector)
{
    switch (vector) {
    case X86_DF: case X86_TS: case X86_NP: case X86_SS: case X86_GP: case X86_PF:
    case X86_AC: return true;
    default: return false;
    }
}

/* Deliver `first`, nesting the exceptions its delivery raises. */
static enum x86_status take(struct x86_cpu *c, struct x86_exc e, enum x86_event_kind kind,
                            uint64_t ret)
{
    for (;;) {
        if (e.vector == X86_PF)
            c->cr2 = e.addr;
        if (kind == X86_EV_NMI)
            c->nmi_blocked = true;
        enum x86_status r = x86_deliver(c, e.vector, kind, e.has_error, e.error, ret);
        if (r != X86_EXCEPTION)
            return r;
        struct x86_exc next = c->exc;
        next.has_error = has_error_code(next.vector);
        enum exc_class a = kind == X86_EV_EXCEPTION ? classify(e.vector) : BENIGN;
        enum exc_class b = classify(next.vector);
        if (a == DOUBLE_FAULT) {
            c->exit_reason = X86_EXIT_SHUTDOWN;
            return X86_EXIT;
        }
        if ((a == CONTRIBUTORY && b == CONTRIBUTORY) ||
            (a == PAGE_FAULT && (b == CONTRIBUTORY || b == PAGE_FAULT)))
            next = (struct x86_exc){ .vector = X86_DF, .has_error = true, .error = 0 };
        e = next;
        kind = X86_EV_EXCEPTION;
        ret = c->rip; /* a fault in delivery returns to where the event came */
    }
}

enum x86_status x86_take_exception(struct x86_cpu *c)
{
    c->exc_first = c->exc;
    return take(c, c->exc, X86_EV_EXCEPTION, c->rip);
}

enum x86_status x86_take_event(struct x86_cpu *c, unsigned vector, enum x86_event_kind kind)
{
    struct x86_exc e = { .vector = (uint8_t)vector };
    c->exc_first = e;
    return take(c, e, kind, c->rip);
}
