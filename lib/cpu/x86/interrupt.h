/*
 * Exception and interrupt delivery: the real-mode IVT and the protected- and
 * long-mode IDT, with privilege and stack changes, error codes, the double
 * fault rules and the triple fault.
 */
#ifndef VX_CPU_X86_INTERRUPT_H
#define VX_CPU_X86_INTERRUPT_H

#include "cpu/x86/cpu.h"

/* What raised the event: it decides the gate-DPL check, the EXT bit of
 * error codes that delivery itself raises, and the double-fault rules. */
enum x86_event_kind {
    X86_EV_EXCEPTION, /* a fault or abort raised by an instruction (rip at it) */
    X86_EV_SOFTWARE,  /* int n, int3, into: the gate's DPL must admit the CPL */
    X86_EV_ICEBP,     /* int1 (f1): a trap, no DPL check, EXT set */
    X86_EV_EXTERNAL,  /* an interrupt from the interrupt controller */
    X86_EV_NMI,
};

/* Deliver one event through the IVT/IDT. `ret` is the rip the handler
 * returns to. X86_OK: the CPU is at the handler. X86_EXCEPTION: delivery
 * itself faulted (cpu->exc); nothing changed but memory the frame was
 * written to. X86_EXIT: a task gate (cpu->exit_reason X86_EXIT_UNSUPPORTED). */
enum x86_status x86_deliver(struct x86_cpu *c, unsigned vector, enum x86_event_kind kind,
                            bool has_error, uint32_t error, uint64_t ret);

/* Take the exception an instruction raised (cpu->exc, rip at the
 * instruction), nesting as the CPU does: a fault while delivering turns
 * into #DF where the rules say so, and a fault while delivering #DF shuts
 * the CPU down. X86_OK (at a handler) or X86_EXIT (X86_EXIT_SHUTDOWN, or
 * X86_EXIT_UNSUPPORTED). The first exception is kept in cpu->exc_first for
 * messages. */
enum x86_status x86_take_exception(struct x86_cpu *c);

/* Take an event that is not an instruction's exception (external interrupt,
 * NMI) at the current rip, with the same nesting. */
enum x86_status x86_take_event(struct x86_cpu *c, unsigned vector, enum x86_event_kind kind);

/* ---- shared with far calls through call gates (ops_far.c) ---- */

/* The stack a privilege change switches to: the segment, its pointer, the
 * width of its slots. */
struct x86_stack {
    vx_x86_segment ss;
    uint64_t sp;
    unsigned width; /* bytes per slot: 2, 4 or 8 */
    bool sp32;      /* SS.B (a 32-bit pointer); long mode uses all 64 */
    bool lm;
};

/* Write slot[0..n) (pushed in that order) below st->sp with the rights of
 * new_cpl, checking the stack segment's limits (#SS(ss_fault_sel | ext)).
 * Nothing but memory changes; st->sp is left at the last slot. */
enum x86_status x86_push_frame(struct x86_cpu *c, struct x86_stack *st, const uint64_t *slot,
                               unsigned n, unsigned new_cpl, uint16_t ss_fault_sel, uint32_t ext);

/* The inner stack for privilege level dpl from the TSS (ist: the 64-bit
 * IST entry, 0 for none): SS selector (long mode: null with RPL = dpl) and
 * pointer. #TS(TR | ext) when the TSS cannot say. */
enum x86_status x86_tss_stack(struct x86_cpu *c, unsigned dpl, unsigned ist, bool lm,
                              uint32_t ext, uint16_t *ss_sel, uint64_t *sp);

/* Load and check the inner stack segment sel for privilege dpl (#TS, #SS). */
enum x86_status x86_inner_ss(struct x86_cpu *c, uint16_t sel, unsigned dpl, uint32_t ext,
                             vx_x86_segment *ss);

/* May an external interrupt be taken before the instruction at rip? */
static inline bool x86_interruptible(const struct x86_cpu *c)
{
    return (c->flags & F_IF) && c->shadow_rip != c->rip;
}

/* A short name for messages: "#GP", "#PF", "NMI", "interrupt". */
const char *x86_vector_name(unsigned vector);

#endif
