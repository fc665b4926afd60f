/*
 * The `pc` board (include/libvx/pc.h): RAM with the PC's holes and the
 * legacy devices at their usual ports. The interrupt controller and timer
 * are the machine's (VX_MACHINE_IRQCHIP); the devices here raise their
 * lines through vx_irq_set(), so the same board runs on kvm (KVM's
 * in-kernel irqchip) and tcg (lib/devices/pc_intc.c).
 *
 * The device models are not thread-safe: one board lock serialises the
 * guest's port accesses (vCPU threads) and the host's serial input.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvx/pc.h>

#include "core/error.h"
#include "core/machine.h"
#include "devices/acpi.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/mc146818.h"
#include "devices/pc.h"
#include "devices/pci.h"
#include "devices/uart16550.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"

#define MIB (1ull << 20)
#define LOW_RAM_MAX (3ull << 30) /* above: the PCI hole, to 4 GiB */
#define HIGH_RAM_BASE (4ull << 30)
#define COM1_BASE 0x3f8
#define COM1_IRQ 4
/* Where firmware would put PCI BARs: memory from 3.5 GiB to the I/O APIC's
 * page (nothing else lives there on this board), ports from 0xc000. */
#define PCI_MMIO_BASE 0xe0000000ull
#define PCI_MMIO_SIZE (0xfec00000ull - PCI_MMIO_BASE)
#define PCI_IO_BASE 0xc000
#define PCI_IO_SIZE 0x4000
/* PIRQ A-D: lines nothing else of the board uses. */
static const uint8_t PCI_IRQS[4] = { 10, 11, 5, 9 };

struct vx_pc {
    vx_machine *m;
    pthread_mutex_t lock;
    struct vx_pc_layout layout;
    int serial_fd;
    void (*serial_out)(void *opaque, const uint8_t *buf, size_t len);
    void *serial_opaque;
    struct uart16550 com1;
    struct mc146818 rtc;
    struct i8042 kbc;
    struct debug_exit dbg;
    struct acpi_pm pm;
    struct pci_host pci;
    struct virtio_blk *disks[VX_PC_MAX_DISKS];
    int disk_fds[VX_PC_MAX_DISKS]; /* opened here from a path, else -1 */
    unsigned disk_count;
    struct virtio_console *console;
    int console_fd;
    void (*console_out)(void *opaque, const uint8_t *buf, size_t len);
    void *console_opaque;
};

static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

/* Called with the board lock held, from inside a device. */
static void set_irq(void *ctx, unsigned line, int level)
{
    struct vx_pc *pc = ctx;
    vx_irq_set(pc->m, line, level);
}

/* Guest output to where the options sent it: all of buf to fd (as far as
 * it takes it; -1 for none) and to the callback (may be NULL). */
static void output(int fd, void (*out)(void *opaque, const uint8_t *buf, size_t len),
                   void *opaque, const uint8_t *buf, size_t len)
{
    for (size_t done = 0; fd >= 0 && done < len;) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (out)
        out(opaque, buf, len);
}

static void serial_tx(void *ctx, uint8_t byte)
{
    struct vx_pc *pc = ctx;
    output(pc->serial_fd, pc->serial_out, pc->serial_opaque, &byte, 1);
}

/* What the guest wrote to the virtio console, with the board lock held. */
static void console_tx(void *ctx, const uint8_t *buf, size_t len)
{
    struct vx_pc *pc = ctx;
    output(pc->console_fd, pc->console_out, pc->console_opaque, buf, len);
}

static void kbc_reset(void *ctx)
{
    struct vx_pc *pc = ctx;
    vxi_machine_shutdown(pc->m, VX_SHUTDOWN_RESET, 0);
}

static void acpi_power_off(void *ctx)
{
    struct vx_pc *pc = ctx;
    vxi_machine_shutdown(pc->m, VX_SHUTDOWN_POWEROFF, 0);
}

static void debug_exit(void *ctx, uint64_t status)
{
    struct vx_pc *pc = ctx;
    vxi_machine_shutdown(pc->m, VX_SHUTDOWN_POWEROFF, (uint32_t)status);
}

/* Every device's port access, under the board lock. */
struct locked_dev {
    struct vx_pc *pc;
    void *dev;
    int (*read)(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
    int (*write)(void *opaque, uint64_t addr, unsigned len, uint64_t value);
};

static int locked_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct locked_dev *d = opaque;
    pthread_mutex_lock(&d->pc->lock);
    int rc = d->read(d->dev, addr, len, value);
    pthread_mutex_unlock(&d->pc->lock);
    return rc;
}

static int locked_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct locked_dev *d = opaque;
    pthread_mutex_lock(&d->pc->lock);
    int rc = d->write(d->dev, addr, len, value);
    pthread_mutex_unlock(&d->pc->lock);
    return rc;
}

static const vx_io_ops locked_ops = { sizeof(vx_io_ops), locked_read, locked_write };

/* The port ranges, with their devices (filled in by vx_board_pc). */
enum { PORT_COM1, PORT_RTC, PORT_KBD_DATA, PORT_KBD_CMD, PORT_SYSCTL, PORT_DEBUG, PORT_PCI,
       PORT_PCI_IO, PORT_PM, NPORTS };

struct board_storage {
    struct vx_pc pc;
    struct locked_dev ports[NPORTS];
    struct locked_dev pci_mmio;
};

static void board_fini(void *board)
{
    struct vx_pc *pc = board;
    for (unsigned i = 0; i < pc->disk_count; i++) {
        virtio_blk_destroy(pc->disks[i]);
        if (pc->disk_fds[i] >= 0)
            close(pc->disk_fds[i]);
    }
    if (pc->console)
        virtio_console_destroy(pc->console);
    pthread_mutex_destroy(&pc->lock);
    free(board);
}

/* The virtio devices the options ask for, on the PCI bus. */
static int add_virtio(vx_machine *m, struct vx_pc *pc, const vx_pc_opts *o)
{
    for (unsigned i = 0; i < o->disk_count; i++) {
        const vx_pc_disk *d = &o->disks[i];
        int rc = vxi_check_struct_size(d, d->size, sizeof *d, "vx_pc_disk");
        if (rc)
            return rc;
        bool ro = d->flags & VX_PC_DISK_READONLY;
        int fd = d->fd;
        pc->disk_fds[i] = -1;
        if (d->path) {
            fd = open(d->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
            if (fd < 0)
                return vxi_error(errno == ENOENT ? VX_ENOENT : VX_EIO,
                                 "vx_board_pc: disk %u: %s: %s", i, d->path, strerror(errno));
            pc->disk_fds[i] = fd;
        }
        char serial[21];
        snprintf(serial, sizeof serial, "libvx-disk%u", i);
        rc = virtio_blk_create(m, &pc->pci, fd, ro, serial, &pc->disks[i]);
        if (rc) {
            if (pc->disk_fds[i] >= 0)
                close(pc->disk_fds[i]);
            return vxi_error_prefix(rc, "vx_board_pc: disk %u", i);
        }
        pc->disk_count = i + 1;
    }
    if (o->flags & VX_PC_VIRTIO_CONSOLE) {
        pc->console_fd = o->console_fd;
        pc->console_out = o->console_out;
        pc->console_opaque = o->console_opaque;
        int rc = virtio_console_create(m, &pc->pci, console_tx, pc, &pc->console);
        if (rc)
            return rc;
    }
    /* PCI interrupts are level-triggered and lines are shared when there
     * are more devices than PIRQs: firmware sets these lines' ELCR bits,
     * so a line still held by one device interrupts again after EOI. */
    for (unsigned k = 0; k < sizeof PCI_IRQS; k++) {
        int rc = vxi_irq_level_triggered(m, PCI_IRQS[k]);
        if (rc)
            return rc;
    }
    return 0;
}

int vxi_pc_write_acpi(vx_machine *m, unsigned ncpus, uint64_t *rsdp)
{
    if (!vxi_pc_layout(m))
        return vxi_error(VX_EINVAL, "not a PC");
    uint8_t *buf = malloc(PC_ACPI_SIZE);
    if (!buf)
        return vxi_error(VX_ENOMEM, "out of memory");
    struct acpi_pc_config c = {
        .ncpus = ncpus, .apics = ncpus > 1, .sci_irq = ACPI_PM_SCI_IRQ, .pm_base = ACPI_PM_BASE,
        .pci_mmio_base = (uint32_t)PCI_MMIO_BASE, .pci_mmio_size = (uint32_t)PCI_MMIO_SIZE,
        .pci_irq = { PCI_IRQS[0], PCI_IRQS[1], PCI_IRQS[2], PCI_IRQS[3] },
    };
    size_t n = acpi_build_pc(buf, PC_ACPI_SIZE, PC_ACPI_GPA, &c);
    int rc = n ? vx_memory_write(m, PC_ACPI_GPA, buf, n)
               : vxi_error(VX_EINVAL, "ACPI tables for %u vCPUs do not fit in %u bytes", ncpus,
                           PC_ACPI_SIZE);
    free(buf);
    if (!rc)
        *rsdp = PC_ACPI_GPA;
    return rc;
}

const struct vx_pc_layout *vxi_pc_layout(vx_machine *m)
{
    if (!m || m->board_fini != board_fini)
        return NULL;
    return &((struct vx_pc *)m->board)->layout;
}

VX_API int vx_board_pc(vx_machine *m, const vx_pc_opts *opts)
{
    if (!m || !opts)
        return vxi_error(VX_EINVAL, "vx_board_pc: %s is NULL", m ? "opts" : "machine");
    /* Callers built against the first version pass its size. */
    const size_t v1 = offsetof(vx_pc_opts, disks);
    if (opts->size < v1)
        return vxi_error(VX_EINVAL, "vx_board_pc: opts->size %zu is smaller than vx_pc_opts",
                         opts->size);
    int rc = opts->size > sizeof(vx_pc_opts)
                 ? vxi_check_struct_size(opts, opts->size, sizeof(vx_pc_opts), "vx_pc_opts")
                 : 0;
    if (rc)
        return rc;
    vx_pc_opts o = { 0 };
    memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    opts = &o;
    if (o.disk_count > VX_PC_MAX_DISKS || (o.disk_count && !o.disks))
        return vxi_error(VX_EINVAL, "vx_board_pc: %u disks (at most %d, and disks not NULL)",
                         o.disk_count, VX_PC_MAX_DISKS);
    if (o.flags & ~(unsigned)VX_PC_VIRTIO_CONSOLE)
        return vxi_error(VX_EINVAL, "vx_board_pc: unknown flags 0x%x", o.flags);
    const uint64_t need = VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO;
    if ((m->flags & need) != need)
        return vxi_error(VX_EINVAL, "vx_board_pc: the machine needs VX_MACHINE_IRQCHIP and "
                         "VX_MACHINE_IGNORE_UNCLAIMED_IO");
    if (m->board)
        return vxi_error(VX_EBUSY, "vx_board_pc: the machine already has a board");
    if (m->vcpu_count > 1 && !m->ops->irqchip_apic)
        return vxi_error(VX_ENOTSUP, "vx_board_pc: %u vCPUs: the %s accelerator's interrupt "
                         "controller has no local and I/O APICs, so its pc board runs one "
                         "vCPU", m->vcpu_count, m->ops->name);
    uint64_t ram = opts->ram_size ? opts->ram_size : 256 * MIB;
    if (ram % MIB || ram < 16 * MIB || ram > (1ull << 40))
        return vxi_error(VX_EINVAL, "vx_board_pc: ram_size 0x%llx is not a multiple of 1 MiB "
                         "between 16 MiB and 1 TiB", (unsigned long long)ram);

    struct board_storage *b = calloc(1, sizeof *b);
    if (!b)
        return vxi_error(VX_ENOMEM, "vx_board_pc: out of memory");
    struct vx_pc *pc = &b->pc;
    pc->m = m;
    pthread_mutex_init(&pc->lock, NULL);
    pc->serial_fd = opts->serial_fd;
    pc->serial_out = opts->serial_out;
    pc->serial_opaque = opts->serial_opaque;
    pc->layout.low_end = ram < LOW_RAM_MAX ? ram : LOW_RAM_MAX;
    pc->layout.high_size = ram - pc->layout.low_end;

    rc = vx_memory_map(m, 0, pc->layout.low_end, NULL, VX_MEM_RWX);
    if (!rc && pc->layout.high_size)
        rc = vx_memory_map(m, HIGH_RAM_BASE, pc->layout.high_size, NULL, VX_MEM_RWX);
    if (rc) {
        vx_memory_unmap(m, 0, pc->layout.low_end);
        board_fini(b);
        return rc;
    }

    uart16550_init(&pc->com1, &(struct uart16550_config){
        .base = COM1_BASE, .irq = COM1_IRQ, .set_irq = set_irq, .tx = serial_tx,
        .now_ns = now_ns, .ctx = pc });
    mc146818_init(&pc->rtc, &(struct mc146818_config){
        .now_ns = now_ns, .wall_clock = wall_clock, .set_irq = set_irq, .ctx = pc,
        .irq = MC146818_IRQ });
    mc146818_set_memory_size(&pc->rtc, pc->layout.low_end, pc->layout.high_size);
    i8042_init(&pc->kbc, &(struct i8042_config){
        .set_irq = set_irq, .reset = kbc_reset, .ctx = pc, .kbd_irq = I8042_KBD_IRQ,
        .aux_irq = I8042_AUX_IRQ });
    debug_exit_init(&pc->dbg, &(struct debug_exit_config){ .exit = debug_exit, .ctx = pc });
    acpi_pm_init(&pc->pm, &(struct acpi_pm_config){
        .base = ACPI_PM_BASE, .now_ns = now_ns, .power_off = acpi_power_off, .ctx = pc });
    pci_host_init(&pc->pci, &(struct pci_host_config){
        .mmio_base = PCI_MMIO_BASE, .mmio_size = PCI_MMIO_SIZE, .io_base = PCI_IO_BASE,
        .io_size = PCI_IO_SIZE, .irq_map = { PCI_IRQS[0], PCI_IRQS[1], PCI_IRQS[2], PCI_IRQS[3] },
        .set_irq = set_irq, .ctx = pc });
    pc->console_fd = -1;

    static const struct { uint16_t base, count; } where[NPORTS] = {
        [PORT_COM1] = { COM1_BASE, 8 },       [PORT_RTC] = { 0x70, 2 },
        [PORT_KBD_DATA] = { 0x60, 1 },        [PORT_KBD_CMD] = { 0x64, 1 },
        [PORT_SYSCTL] = { 0x92, 1 },          [PORT_DEBUG] = { DEBUG_EXIT_PORT, 1 },
        [PORT_PCI] = { PCI_CONFIG_PORT, PCI_CONFIG_PORT_COUNT },
        [PORT_PCI_IO] = { PCI_IO_BASE, PCI_IO_SIZE },
        [PORT_PM] = { ACPI_PM_BASE, ACPI_PM_PORTS },
    };
    b->ports[PORT_COM1] = (struct locked_dev){ pc, &pc->com1, uart16550_read, uart16550_write };
    b->ports[PORT_RTC] = (struct locked_dev){ pc, &pc->rtc, mc146818_read, mc146818_write };
    b->ports[PORT_KBD_DATA] = (struct locked_dev){ pc, &pc->kbc, i8042_read, i8042_write };
    b->ports[PORT_KBD_CMD] = b->ports[PORT_KBD_DATA];
    b->ports[PORT_SYSCTL] = b->ports[PORT_KBD_DATA];
    b->ports[PORT_DEBUG] = (struct locked_dev){ pc, &pc->dbg, debug_exit_read, debug_exit_write };
    b->ports[PORT_PCI] = (struct locked_dev){ pc, &pc->pci, pci_host_pio_read, pci_host_pio_write };
    b->ports[PORT_PCI_IO] = (struct locked_dev){ pc, &pc->pci, pci_host_io_ops.read,
                                                 pci_host_io_ops.write };
    b->ports[PORT_PM] = (struct locked_dev){ pc, &pc->pm, acpi_pm_read, acpi_pm_write };
    b->pci_mmio = (struct locked_dev){ pc, &pc->pci, pci_host_mmio_ops.read,
                                       pci_host_mmio_ops.write };
    unsigned k = 0;
    while (k < NPORTS && !rc)
        if (!(rc = vx_pio_register(m, where[k].base, where[k].count, &locked_ops, &b->ports[k])))
            k++;
    if (!rc)
        rc = vx_mmio_register(m, PCI_MMIO_BASE, PCI_MMIO_SIZE, &locked_ops, &b->pci_mmio);
    bool mmio = !rc;
    if (!rc)
        rc = add_virtio(m, pc, opts);
    if (rc) {
        if (mmio)
            vx_mmio_unregister(m, PCI_MMIO_BASE);
        while (k--)
            vx_pio_unregister(m, where[k].base);
        vx_memory_unmap(m, 0, pc->layout.low_end);
        if (pc->layout.high_size)
            vx_memory_unmap(m, HIGH_RAM_BASE, pc->layout.high_size);
        board_fini(b);
        return rc;
    }
    m->board = pc;
    m->board_fini = board_fini;
    return 0;
}

VX_API int vx_pc_console_input(vx_machine *m, const void *buf, size_t len)
{
    struct vx_pc *pc = vxi_pc_layout(m) ? m->board : NULL;
    if (!pc || !pc->console)
        return vxi_error(VX_EINVAL, "vx_pc_console_input: the machine is not a PC with a "
                         "virtio console (VX_PC_VIRTIO_CONSOLE)");
    if (!buf && len)
        return vxi_error(VX_EINVAL, "vx_pc_console_input: buf is NULL");
    pthread_mutex_lock(&pc->lock);
    size_t n = virtio_console_input(pc->console, buf, len);
    pthread_mutex_unlock(&pc->lock);
    return (int)(n > 0x7fffffff ? 0x7fffffff : n);
}

VX_API int vx_pc_serial_input(vx_machine *m, const void *buf, size_t len)
{
    if (!vxi_pc_layout(m))
        return vxi_error(VX_EINVAL, "vx_pc_serial_input: the machine is not a PC (vx_board_pc)");
    if (!buf && len)
        return vxi_error(VX_EINVAL, "vx_pc_serial_input: buf is NULL");
    struct vx_pc *pc = m->board;
    pthread_mutex_lock(&pc->lock);
    size_t n = uart16550_receive(&pc->com1, buf, len);
    pthread_mutex_unlock(&pc->lock);
    return (int)(n > 0x7fffffff ? 0x7fffffff : n);
}
