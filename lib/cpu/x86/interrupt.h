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

/* May an external interrupt be taken before the instruction at rip? */
static inline bool x86_interruptible(const struct x86_cpu *c)
{
    return (c->flags & F_IF) && c->shadow_rip != c->rip;
}

/* A short name for messages: "#GP", "#PF", "NMI", "interrupt". */
const char *x86_vector_name(unsigned vector);

#endif
