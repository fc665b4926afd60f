/*
 * The PC's interrupt controller and timer for an accelerator that has none
 * of its own (tcg): the i8259 pair and the i8254 wired to IRQ 0, behind one
 * lock, so devices and the application may raise lines from any thread
 * while a vCPU runs. Under kvm, KVM's in-kernel irqchip and PIT take this
 * place (VX_MACHINE_IRQCHIP).
 *
 * The vCPU's side: pc_intc_intr() is a lock-free look at the INTR line;
 * pc_intc_acknowledge() is the INTA cycle; pc_intc_poll() delivers timer
 * ticks that fell due and says when the next one will; pc_intc_wait()
 * sleeps a halted vCPU until INTR rises or it is asked to stop.
 */
#ifndef VX_DEVICES_PC_INTC_H
#define VX_DEVICES_PC_INTC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libvx/vx.h>

#include "devices/i8254.h"
#include "devices/i8259.h"

struct pc_intc {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int intr;      /* the PIC's INTR output */
    /* When the timer next needs pc_intc_poll() (CLOCK_MONOTONIC ns;
     * UINT64_MAX: no event; 0: at once). Every PIT access resets it to 0,
     * since a new count or mode moves the next event. */
    _Atomic uint64_t deadline;
    struct i8259 pic;
    struct i8254 pit;
};

/* Create both devices, reset, and claim their ports on m (0x20-0x21,
 * 0xa0-0xa1, 0x4d0-0x4d1, 0x40-0x43, 0x61). VX_EEXIST if one is taken. */
int pc_intc_create(vx_machine *m, struct pc_intc **out);
void pc_intc_destroy(struct pc_intc *ic);

/* Drive ISA line 0-15 (vx_irq_set). Any thread. */
void pc_intc_set_irq(struct pc_intc *ic, unsigned line, int level);

/* Set line 2-15's ELCR bit: level-triggered from now on. */
void pc_intc_set_level_triggered(struct pc_intc *ic, unsigned line);

static inline bool pc_intc_intr(struct pc_intc *ic)
{
    return atomic_load_explicit(&ic->intr, memory_order_acquire) != 0;
}

/* The vector to deliver now (the INTA cycle), or -1 when INTR fell. */
int pc_intc_acknowledge(struct pc_intc *ic);

/* Is a timer edge due by `now` (pc_intc_now())? A lock-free look. */
static inline bool pc_intc_due(struct pc_intc *ic, uint64_t now)
{
    return now >= atomic_load_explicit(&ic->deadline, memory_order_acquire);
}

/* Deliver timer edges due by now and set the deadline of the next one. */
void pc_intc_poll(struct pc_intc *ic);

/* Sleep until INTR is high (delivering timer edges as they fall due) or
 * *stop or *nmi is set. A raised line wakes the sleeper at once; the flags
 * are looked at every millisecond, since vx_vcpu_stop() and vx_vcpu_nmi()
 * may come from a signal handler, where nothing but a flag may be touched.
 * Returns whether INTR is high. */
bool pc_intc_wait(struct pc_intc *ic, const atomic_int *stop, const atomic_int *nmi);

/* CLOCK_MONOTONIC in nanoseconds: the timer's clock. */
uint64_t pc_intc_now(void);

#endif
