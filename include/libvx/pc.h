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
 * A PCI bus (configuration mechanism 1 at 0xcf8, host bridge at 00:00.0)
 * carries the virtio devices the options ask for: virtio-blk disks and a
 * virtio console, each a virtio 1.x modern (legacy-free) PCI function with
 * its BAR already assigned in 0xe0000000-0xfebfffff and an INTx line of
 * 10, 11, 5 or 9 (shared beyond four devices, so level-triggered: the
 * board sets their ELCR bits as firmware does), so a kernel without ACPI
 * takes them as they are. ACPI power management registers sit at
 * 0x600-0x60b (PM1a event and control, PM timer; SLP_TYP 5 with SLP_EN
 * powers off, VX_SHUTDOWN_POWEROFF code 0).
 *
 * vx_boot_linux describes the board in ACPI tables that the kernel finds
 * through boot_params: a DSDT with the PCI bus's interrupt routing and
 * \_S5 (so `poweroff` powers off), and with several vCPUs a MADT. Several
 * vCPUs need kvm, whose irqchip gives each a local APIC and the machine an
 * I/O APIC; run each vCPU on its own thread. tcg's interrupt controller
 * has no APICs, so its pc board takes one vCPU.
 *
 * The devices validate everything the guest hands them (ring and buffer
 * addresses inside RAM, chain lengths, queue sizes); a guest that breaks
 * the rules gets an error status or a device that needs a reset, never
 * access to host memory outside its RAM.
 *
 * Included by nothing else; include it after <libvx/vx.h>.
 */
#ifndef LIBVX_PC_H
#define LIBVX_PC_H

#include <libvx/vx.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A virtio-blk disk (vx_pc_opts.disks). Its size is the file's (or block
 * device's), in whole 512-byte sectors. Requests run on the vCPU's thread
 * with pread/pwrite; flush is fdatasync. */
typedef struct vx_pc_disk {
    size_t size;      /* sizeof(vx_pc_disk) */
    const char *path; /* opened by vx_board_pc and closed with the machine; NULL: use fd */
    int fd;           /* an open descriptor when path is NULL; it stays the caller's */
    unsigned flags;   /* VX_PC_DISK_* */
} vx_pc_disk;

#define VX_PC_DISK_READONLY 1u /* the guest sees a read-only disk (VIRTIO_BLK_F_RO) */
#define VX_PC_MAX_DISKS 8

/* vx_pc_opts.flags */
#define VX_PC_VIRTIO_CONSOLE 1u /* add a virtio console (hvc0 in Linux) */

typedef struct vx_pc_opts {
    size_t size;       /* sizeof(vx_pc_opts); the first version ended at serial_opaque */
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
    /* Since 0.2 (zero in an older caller's struct): disk_count virtio-blk
     * disks, in this order on the bus (Linux: vda, vdb, ...). */
    const vx_pc_disk *disks;
    unsigned disk_count; /* at most VX_PC_MAX_DISKS */
    unsigned flags;      /* VX_PC_* */
    /* With VX_PC_VIRTIO_CONSOLE: what the guest writes to the virtio
     * console goes to console_fd (-1 for none) and/or console_out, as for
     * COM1; the host gives it input with vx_pc_console_input(). */
    int console_fd;
    void (*console_out)(void *opaque, const uint8_t *buf, size_t len);
    void *console_opaque;
} vx_pc_opts;

/* Make m a PC: map its RAM and add the devices above. m must have been
 * created with VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO and have
 * nothing mapped at the PC's addresses yet; once per machine.
 * Errors: VX_EINVAL (NULL, bad opts, flags missing, too many disks, a disk
 * that is neither a regular file nor a block device), VX_ENOTSUP (several
 * vCPUs on an accelerator without APICs: tcg), VX_EBUSY (already a
 * PC), VX_EEXIST (a range is taken), VX_ENOENT/VX_EIO (a disk's path
 * cannot be opened: vx_last_error() names it), VX_ENOMEM. On an error
 * nothing of the board stays on m. */
VX_API int vx_board_pc(vx_machine *m, const vx_pc_opts *opts);

/* Bytes for the guest to read from COM1. Returns how many were taken (one
 * until the guest enables the UART's FIFO, then up to 16: call again later
 * for the rest), or a negative VX_E* (VX_EINVAL: m is not a PC). Any
 * thread. */
VX_API int vx_pc_serial_input(vx_machine *m, const void *buf, size_t len);

/* Bytes for the guest to read from the virtio console: it takes what fits
 * in the receive buffers the guest has posted and returns how many (0
 * until the guest's driver is ready; call again later for the rest), or a
 * negative VX_E* (VX_EINVAL: not a PC with VX_PC_VIRTIO_CONSOLE). Any
 * thread. */
VX_API int vx_pc_console_input(vx_machine *m, const void *buf, size_t len);

/* Load a Linux bzImage (and an initrd, which may be NULL/0) into a PC and
 * put vCPU 0 at the kernel's 64-bit entry point as the x86 boot protocol
 * (Documentation/arch/x86/boot.rst) describes: the protected-mode kernel
 * at its preferred address, boot_params with the setup header, the
 * command line and an e820 map of the board's RAM, ACPI tables at
 * 0x9c000-0x9fbff (given to the kernel in boot_params.acpi_rsdp_addr; a
 * MADT with several vCPUs), the initrd as high as initrd_addr_max allows, identity page tables, a GDT with __BOOT_CS 0x10
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
