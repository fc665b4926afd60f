/* The machine and vCPU objects behind the opaque public handles. */
#ifndef VX_CORE_MACHINE_H
#define VX_CORE_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <libvx/vx.h>

#include "core/accel.h"
#include "core/io.h"
#include "mmu/addrspace.h"

struct vx_machine {
    const struct vx_accel_ops *ops;
    void *accel;          /* the accelerator's per-machine state */
    uint64_t flags;       /* VX_MACHINE_* */
    struct vx_addrspace as;
    struct vx_io_bus pio, mmio;
    unsigned vcpu_count;
    struct vx_vcpu **vcpus;
    /* A board (vx_board_pc): freed by board_fini before the accelerator
     * and memory go. */
    void *board;
    void (*board_fini)(void *board);
    /* A device powered the machine off or reset it: every vCPU's next
     * look at its stop flag returns VX_EXIT_SHUTDOWN with these. */
    _Atomic uint64_t shutdown; /* kind << 32 | code; 0: none */
};

struct vx_vcpu {
    struct vx_machine *machine;
    unsigned index;
    void *accel;                /* the accelerator's per-vCPU state */
    atomic_int running;         /* inside vx_vcpu_run() */
    atomic_int stop_requested;  /* set by vx_vcpu_stop(), consumed by run() */
    atomic_int tid;             /* kernel thread id while running, for kicks */
    atomic_int nmi_pending;     /* set by vx_vcpu_nmi(), consumed by the accelerator */
    struct vx_io_cache io_cache[2]; /* last range hit per bus (VX_IO_PIO, _MMIO) */
};

/* The host changed guest memory [gpa, gpa + len): tell the accelerator. */
static inline void vxi_memory_written(vx_machine *m, uint64_t gpa, uint64_t len)
{
    if (m->ops->memory_written && len)
        m->ops->memory_written(m, gpa, len);
}

/* A device's DMA window: a host pointer to guest RAM [gpa, gpa + len)
 * when the whole range lies inside one region whose VX_MEM_* bits include
 * `need` (VX_MEM_READ for a device reading guest memory, VX_MEM_WRITE for
 * one writing it), else NULL (len 0 or a wrapping range included). The
 * pointer is good while the memory map does not change, which it cannot
 * while a vCPU runs. After writing through it, call vxi_memory_written(). */
void *vxi_dma_ptr(vx_machine *m, uint64_t gpa, uint64_t len, unsigned need);

/* Make ISA line `line` level-triggered at the machine's PIC (ELCR), as
 * firmware does for PCI interrupt lines. VX_MACHINE_IRQCHIP only. */
int vxi_irq_level_triggered(vx_machine *m, unsigned line);

/* Is any vCPU of the machine inside vx_vcpu_run()? */
bool vxi_machine_running(const vx_machine *m);

/* Consume a pending stop request: true (and the exit filled) if there was
 * one. Accelerators call it at each point they could return; inline because
 * it sits on every exit's path. */
static inline bool vxi_vcpu_take_stop(vx_vcpu *v, vx_exit *exit)
{
    if (!atomic_load_explicit(&v->stop_requested, memory_order_relaxed))
        return false;
    if (!atomic_exchange(&v->stop_requested, 0))
        return false;
    uint64_t shutdown = atomic_load(&v->machine->shutdown);
    if (shutdown) {
        exit->reason = VX_EXIT_SHUTDOWN;
        exit->u.shutdown.kind = (uint32_t)(shutdown >> 32);
        exit->u.shutdown.code = (uint32_t)shutdown;
        atomic_store(&v->stop_requested, 1); /* and on every later run */
        return true;
    }
    exit->reason = VX_EXIT_STOPPED;
    return true;
}

/* A device asks for the machine to stop: VX_SHUTDOWN_RESET or _POWEROFF
 * with the guest's code. Every vCPU leaves vx_vcpu_run() (the one calling,
 * from inside its callback, after the access). */
void vxi_machine_shutdown(vx_machine *m, unsigned kind, uint32_t code);

#endif
