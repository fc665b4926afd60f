/*
 * libvx: the `pc` board and the Linux boot protocol.
 *
 * A PC for an operating system: RAM with the PC's holes, the interrupt
 * controller and timer of VX_MACHINE_IRQCHIP, a 16550A UART as COM1 (port
 * 0x3f8, IRQ 4), an MC146818 RTC/CMOS (0x70, IRQ 8) with the host's time
 * and the memory-size bytes, an i8042 keyboard controller (0x60/0x64, port
 * 0x92: its reset pulse ends vx_vcpu_run() with VX_EXIT_SHUTDOWN,
 * VX_SHUTDOWN_RESET) and the debug-exit port 0x501 (a write of v ends it
 * with VX_SHUTDOWN_POWEROFF and code (v << 1) | 1, as QEMU's isa-debug-exit
 * does). Unclaimed ports read as all ones, as on a PC.
 *
 * Included by nothing else; include it after <libvx/vx.h>.
 */
#ifndef LIBVX_PC_H
#define LIBVX_PC_H

#include <libvx/vx.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vx_pc_opts {
    size_t size;       /* sizeof(vx_pc_opts) */
    /* Bytes of RAM, a multiple of 1 MiB, at least 16 MiB (0: 256 MiB).
     * Up to 3 GiB sit at 0; the rest above 4 GiB (the hole between is
     * for devices). libvx allocates it; vx_machine_destroy frees it. */
    uint64_t ram_size;
    /* What the guest writes to COM1: to serial_fd (write(2); -1 for none)
     * and/or to serial_out, called on the vCPU's thread for each byte run
     * the guest transmits (len >= 1). */
    int serial_fd;
    void (*serial_out)(void *opaque, const uint8_t *buf, size_t len);
    void *serial_opaque;
} vx_pc_opts;

/* Make m a PC: map its RAM and add the devices above. m must have been
 * created with VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO and have
 * nothing mapped at the PC's addresses yet; once per machine.
 * Errors: VX_EINVAL (NULL, bad opts, flags missing), VX_EBUSY (already a
 * PC), VX_EEXIST (a range is taken), VX_ENOMEM. */
VX_API int vx_board_pc(vx_machine *m, const vx_pc_opts *opts);

/* Bytes for the guest to read from COM1. Returns how many were taken (one
 * until the guest enables the UART's FIFO, then up to 16: call again later
 * for the rest), or a negative VX_E* (VX_EINVAL: m is not a PC). Any
 * thread. */
VX_API int vx_pc_serial_input(vx_machine *m, const void *buf, size_t len);

/* Load a Linux bzImage (and an initrd, which may be NULL/0) into a PC and
 * put vCPU 0 at the kernel's 64-bit entry point as the x86 boot protocol
 * (Documentation/arch/x86/boot.rst) describes: the protected-mode kernel
 * at its preferred address, boot_params with the setup header, the
 * command line and an e820 map of the board's RAM, the initrd as high as
 * initrd_addr_max allows, identity page tables, a GDT with __BOOT_CS 0x10
 * and __BOOT_DS 0x18, interrupts off, rsi = boot_params.
 * Errors, with the reason in vx_last_error(): VX_EINVAL (NULL, not a PC,
 * cmdline longer than the kernel accepts), VX_ECORRUPT (not a bzImage),
 * VX_ENOTSUP (boot protocol older than 2.12, or no 64-bit entry),
 * VX_ERANGE (kernel or initrd does not fit in RAM). */
VX_API int vx_boot_linux(vx_machine *m, const void *kernel, size_t kernel_len,
                         const void *initrd, size_t initrd_len, const char *cmdline);

#ifdef __cplusplus
}
#endif

#endif
