/*
 * The internal vtable between lib/core and an accelerator. lib/core does
 * argument checking, bookkeeping and error text; an accelerator does only
 * what is specific to it. Calls return 0 or a negative VX_E* code with
 * vx_last_error() set.
 */
#ifndef VX_CORE_ACCEL_H
#define VX_CORE_ACCEL_H

#include <libvx/vx.h>

struct vx_region;

struct vx_accel_ops {
    const char *name; /* "kvm", "tcg" */
    vx_accel id;

    /* 1 if machines can be created; else 0 with the reason in
     * vx_last_error(). Cheap after the first call. */
    int (*available)(void);
    /* 1 if VX_MACHINE_IRQCHIP gives every vCPU a local APIC (0xfee00000)
     * and the machine an I/O APIC (0xfec00000, 24 inputs; ISA IRQ 0 at
     * input 2, IRQ n at n): what a board with several vCPUs needs. */
    int irqchip_apic;
    /* 1 if guest ring-0 code runs on the CPU (hardware-assisted), 0 for a
     * software KVM such as kvm_pvm. */
    int (*ring0_native)(void);

    int (*machine_init)(vx_machine *m);
    /* Release everything; may hand slow teardown to a background thread. */
    void (*machine_fini)(vx_machine *m);
    /* VX_MACHINE_IRQCHIP: create the interrupt controller and timer, after
     * machine_init and before any vCPU. */
    int (*irqchip_init)(vx_machine *m);
    /* Drive ISA line 0-15 of that controller. Any thread. */
    int (*irq_set)(vx_machine *m, unsigned line, int level);
    /* Make ISA line 2-15 level-triggered at the PIC (its ELCR bit), as PC
     * firmware does for the lines PCI interrupts share. Before any vCPU
     * runs. */
    int (*irq_level_triggered)(vx_machine *m, unsigned line);
    int (*vcpu_init)(vx_vcpu *v);
    void (*vcpu_fini)(vx_vcpu *v);

    /* The host wrote guest memory (vx_memory_write, the loaders): an
     * accelerator that caches translated code forgets what covers it.
     * NULL when there is nothing to do. */
    void (*memory_written)(vx_machine *m, uint64_t gpa, uint64_t len);

    /* The address space already holds r (map) or no longer does (unmap). */
    int (*map)(vx_machine *m, struct vx_region *r);
    int (*unmap)(vx_machine *m, struct vx_region *r);

    int (*get_regs)(vx_vcpu *v, vx_x86_regs *r);
    int (*set_regs)(vx_vcpu *v, const vx_x86_regs *r);
    int (*get_sregs)(vx_vcpu *v, vx_x86_sregs *s);
    int (*set_sregs)(vx_vcpu *v, const vx_x86_sregs *s);
    /* x87/MMX/SSE state; size already checked, MXCSR validated for set. */
    int (*get_fpu)(vx_vcpu *v, vx_x86_fpu *f);
    int (*set_fpu)(vx_vcpu *v, const vx_x86_fpu *f);
    int (*get_msr)(vx_vcpu *v, uint32_t index, uint64_t *value);
    int (*set_msr)(vx_vcpu *v, uint32_t index, uint64_t value);

    /* Run until an exit for the application; exit->size already checked.
     * Returns 0 with *exit filled. */
    int (*run)(vx_vcpu *v, vx_exit *exit);
    /* Make a running vCPU leave run() soon; the stop flag is already set.
     * Must be async-signal-safe. */
    void (*kick)(vx_vcpu *v);

    int (*set_budget)(vx_vcpu *v, uint64_t instructions); /* NULL: VX_ENOTSUP */
    uint64_t (*instructions)(vx_vcpu *v);                 /* NULL: 0 */
};

#ifdef VX_HAVE_KVM
extern const struct vx_accel_ops vx_kvm_ops;
#endif
extern const struct vx_accel_ops vx_tcg_ops;

#endif
