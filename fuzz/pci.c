/*
 * Fuzz target: the PCI host bridge under random configuration cycles and
 * BAR accesses, as a hostile guest would make them.
 *
 * Input: a sequence of 8-byte records: op (bit 0 write, bits 1-2 where:
 * CONFIG_ADDRESS/DATA ports, the memory window, the I/O window; bits 3-4
 * the access size 1/2/4/8), a 16-bit offset and a 32-bit value. Three
 * devices with memory and I/O BARs of several sizes sit on the bus. After
 * every access: a device's BAR callback only ever sees an offset and
 * length inside that BAR, IDs and classes never change, BAR type bits
 * stay, and each ISA line is high exactly when a device on it asserts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"

#define WIN_BASE 0xe0000000ull
#define WIN_SIZE 0x100000ull
#define IO_BASE 0xc000
#define IO_SIZE 0x1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct dev {
    struct pci_device pci;
    unsigned index;
};

static int lines[16];

static void set_irq(void *ctx, unsigned line, int level)
{
    (void)ctx;
    if (line >= 16 || lines[line] == level)
        abort(); /* the host reports changes of lines 0-15 only */
    lines[line] = level;
}

static void check_access(struct dev *d, unsigned bar, uint64_t offset, unsigned len)
{
    if (bar >= PCI_BARS || !d->pci.bar_size[bar] || offset + len > d->pci.bar_size[bar])
        abort();
}

static int bar_read(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t *value)
{
    check_access(opaque, bar, offset, len);
    *value = offset;
    return 0;
}

static int bar_write(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t value)
{
    (void)value;
    struct dev *d = opaque;
    check_access(d, bar, offset, len);
    /* A write at offset 0 toggles the device's INTx, as a device would. */
    if (offset == 0)
        pci_set_irq(&d->pci, !d->pci.irq_level);
    return 0;
}

static const struct pci_device_ops ops = { bar_read, bar_write, NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pci_host host;
    static struct dev devs[3];
    memset(lines, 0, sizeof lines);
    pci_host_init(&host, &(struct pci_host_config){
        .mmio_base = WIN_BASE, .mmio_size = WIN_SIZE, .io_base = IO_BASE, .io_size = IO_SIZE,
        .irq_map = { 10, 11, 10, 11 }, .set_irq = set_irq });
    static const uint32_t mem_size[3] = { 0x4000, 0x10, 0x1000 };
    for (unsigned i = 0; i < 3; i++) {
        devs[i].index = i;
        pci_device_init(&devs[i].pci, 0x1af4, (uint16_t)(0x1040 + i), 1, 0x078000, 0x1af4,
                        (uint16_t)i, true, &ops, &devs[i]);
        if (pci_device_set_bar(&devs[i].pci, i, mem_size[i], false) ||
            pci_device_set_bar(&devs[i].pci, 5 - i, 16u << i, true) ||
            pci_host_add(&host, &devs[i].pci))
            abort();
    }
    for (size_t at = 0; at + 8 <= size; at += 8) {
        const uint8_t *r = data + at;
        bool write = r[0] & 1;
        unsigned where = (r[0] >> 1) & 3, len = 1u << ((r[0] >> 3) & 3);
        uint32_t offset = (uint32_t)r[1] | (uint32_t)r[2] << 8;
        uint64_t value = (uint64_t)r[3] | (uint64_t)r[4] << 8 | (uint64_t)r[5] << 16 |
                         (uint64_t)r[6] << 24 | (uint64_t)r[7] << 56;
        const vx_io_ops *io;
        uint64_t addr;
        switch (where) {
        case 0:
            io = &pci_host_pio_ops;
            addr = PCI_CONFIG_PORT + (offset & 7);
            if (len > 4)
                len = 4;
            /* Mostly well-formed addresses, so the cycles reach devices. */
            if ((offset & 7) == 0 && (r[2] & 0x80))
                value = 0x80000000u | (value & 0x1ffc);
            break;
        case 1:
            io = &pci_host_mmio_ops;
            addr = WIN_BASE + ((uint64_t)offset << 4) + (r[7] & 15);
            break;
        case 2:
            io = &pci_host_io_ops;
            addr = IO_BASE + (offset & (IO_SIZE - 1));
            if (len > 4)
                len = 4;
            break;
        default:
            io = &pci_host_mmio_ops;
            addr = WIN_BASE - 8 + (offset & 0x1f); /* around the window's start */
            break;
        }
        uint64_t got = 0;
        if (write) {
            io->write(&host, addr, len, value);
        } else {
            io->read(&host, addr, len, &got);
            if (len < 8 && got >> (8 * len))
                abort(); /* wider than the access */
        }
        for (unsigned i = 0; i < 3; i++) {
            struct pci_device *p = &devs[i].pci;
            if (pci_config_read(p, PCI_VENDOR_ID, 4) != (0x1af4u | (0x1040u + i) << 16) ||
                pci_config_read(p, PCI_CLASS_PROG, 3) != 0x078000)
                abort();
            for (unsigned b = 0; b < PCI_BARS; b++) {
                uint32_t bar = pci_config_read(p, PCI_BAR0 + 4 * b, 4);
                if (p->bar_size[b] ? (bar & (p->bar_io[b] ? 3u : 15u)) != p->bar_io[b] : bar)
                    abort();
            }
        }
        int want[16] = { 0 };
        for (unsigned i = 0; i < 3; i++) {
            struct pci_device *p = &devs[i].pci;
            if (p->irq_level && !(pci_config_read(p, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE))
                want[host.cfg.irq_map[((unsigned)p->slot + 0) % 4]] = 1;
        }
        if (memcmp(want, lines, sizeof want))
            abort();
    }
    return 0;
}
