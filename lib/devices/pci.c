/* The PCI host bridge (see pci.h). */
#include "config.h"

#include <string.h>

#include "core/error.h"
#include "devices/pci.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What nothing drives reads as: all ones, len bytes of them. */
static uint64_t ones(unsigned len)
{
    return len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Guest-writable bits of the standard header: the command register's
 * decode, bus-master, SERR, parity and INTx-disable bits; the status
 * register's error bits (write 1 to clear); cache line size, latency
 * timer; the interrupt line; BARs through their size masks. */
static void header_masks(struct pci_device *d)
{
    memset(d->wmask, 0, sizeof d->wmask);
    memset(d->w1cmask, 0, sizeof d->w1cmask);
    put16(d->wmask + PCI_COMMAND, 0x0547);
    put16(d->w1cmask + PCI_STATUS, 0xf900);
    d->wmask[0x0c] = 0xff; /* cache line size */
    d->wmask[0x0d] = 0xff; /* latency timer */
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device, uint8_t revision,
                     uint32_t class_code, uint16_t subsystem_vendor, uint16_t subsystem,
                     bool intx, const struct pci_device_ops *ops, void *opaque)
{
    memset(d, 0, sizeof *d);
    put16(d->config + PCI_VENDOR_ID, vendor);
    put16(d->config + PCI_DEVICE_ID, device);
    d->config[PCI_REVISION_ID] = revision;
    d->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    d->config[PCI_CLASS_DEVICE] = (uint8_t)(class_code >> 8);
    d->config[PCI_CLASS_DEVICE + 1] = (uint8_t)(class_code >> 16);
    put16(d->config + PCI_SUBSYSTEM_VENDOR_ID, subsystem_vendor);
    put16(d->config + PCI_SUBSYSTEM_ID, subsystem);
    d->config[PCI_INTERRUPT_PIN] = intx ? 1 : 0;
    header_masks(d);
    d->cap_next = PCI_CAP_START;
    d->slot = -1;
    d->ops = ops;
    d->opaque = opaque;
}

int pci_device_set_bar(struct pci_device *d, unsigned bar, uint32_t size, bool io)
{
    if (bar >= PCI_BARS)
        return vxi_error(VX_EINVAL, "pci: BAR %u does not exist", bar);
    if (size & (size - 1) || size < (io ? 4u : 16u) || (io && size > 256))
        return vxi_error(VX_EINVAL, "pci: BAR size 0x%x is not a power of two in range", size);
    d->bar_size[bar] = size;
    d->bar_io[bar] = io;
    uint8_t *reg = d->config + PCI_BAR0 + 4 * bar;
    put32(reg, io ? 1 : 0);
    put32(d->wmask + PCI_BAR0 + 4 * bar, ~(size - 1) & (io ? ~3u : ~15u));
    return 0;
}

unsigned pci_add_capability(struct pci_device *d, uint8_t id, const uint8_t *body, unsigned len)
{
    unsigned at = (d->cap_next + 3u) & ~3u;
    if (len < 2 || at < PCI_CAP_START || at + len > PCI_CONFIG_SIZE)
        return 0;
    memcpy(d->config + at, body, len);
    d->config[at] = id;
    d->config[at + 1] = 0;
    /* Link it at the end of the list. */
    uint8_t *link = d->config + PCI_CAPABILITY_LIST;
    while (*link)
        link = d->config + *link + 1;
    *link = (uint8_t)at;
    put16(d->config + PCI_STATUS, get16(d->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
    d->cap_next = (uint8_t)(at + len < PCI_CONFIG_SIZE ? at + len : 0xff);
    return at;
}

uint64_t pci_bar_address(const struct pci_device *d, unsigned bar)
{
    if (bar >= PCI_BARS || !d->bar_size[bar])
        return 0;
    uint32_t v = get32(d->config + PCI_BAR0 + 4 * bar);
    return v & (d->bar_io[bar] ? ~3u : ~15u);
}

/* The ISA line a device's pin drives, or -1. */
static int device_line(const struct pci_device *d)
{
    unsigned pin = d->config[PCI_INTERRUPT_PIN];
    if (!d->host || d->slot < 0 || pin < 1 || pin > 4)
        return -1;
    return d->host->cfg.irq_map[((unsigned)d->slot + pin - 1) % 4] & 15;
}

/* What the device contributes to its line: its level unless INTx is
 * disabled in the command register. */
static int intx_out(const struct pci_device *d)
{
    return d->irq_level && !(get16(d->config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);
}

/* Move the device's contribution from `was` to its current output. */
static void intx_update(struct pci_device *d, int was)
{
    int now = intx_out(d), line = device_line(d);
    if (now == was || line < 0)
        return;
    struct pci_host *h = d->host;
    uint8_t before = h->line_count[line];
    h->line_count[line] = (uint8_t)(now ? before + 1 : before - 1);
    if ((before == 0) != (h->line_count[line] == 0) && h->cfg.set_irq)
        h->cfg.set_irq(h->cfg.ctx, (unsigned)line, now);
}

void pci_set_irq(struct pci_device *d, int level)
{
    int was = intx_out(d);
    d->irq_level = level != 0;
    uint16_t st = get16(d->config + PCI_STATUS);
    put16(d->config + PCI_STATUS,
          (uint16_t)(d->irq_level ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT));
    intx_update(d, was);
}

uint32_t pci_config_read(struct pci_device *d, unsigned offset, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len && offset + i < PCI_CONFIG_SIZE; i++)
        v |= (uint32_t)d->config[offset + i] << (8 * i);
    return v;
}

void pci_config_write(struct pci_device *d, unsigned offset, unsigned len, uint32_t value)
{
    if (offset >= PCI_CONFIG_SIZE)
        return;
    if (len > PCI_CONFIG_SIZE - offset)
        len = PCI_CONFIG_SIZE - offset;
    int was = intx_out(d);
    for (unsigned i = 0; i < len; i++) {
        uint8_t b = (uint8_t)(value >> (8 * i)), *c = d->config + offset + i;
        uint8_t w = d->wmask[offset + i], w1c = d->w1cmask[offset + i];
        *c = (uint8_t)((*c & ~w) | (b & w));
        *c &= (uint8_t)~(b & w1c);
    }
    intx_update(d, was);
    if (d->ops && d->ops->config_written)
        d->ops->config_written(d->opaque, offset, len);
}

/* ---- assignment ---------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

void pci_host_init(struct pci_host *h, const struct pci_host_config *cfg)
{
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    h->next_mmio = cfg->mmio_base;
    h->next_io = cfg->io_base;
    /* An Intel 440FX-like host bridge: Linux's pci_sanity_check wants a
     * host bridge (or VGA) class, or Intel's or Compaq's vendor ID, on
     * bus 0 before it trusts configuration mechanism 1. */
    pci_device_init(&h->bridge, 0x8086, 0x1237, 2, 0x060000, 0, 0, false, NULL, NULL);
    h->bridge.slot = 0;
    h->bridge.host = h;
    h->slots[0] = &h->bridge;
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
    int slot = -1;
    for (int s = 0; s < PCI_SLOTS && slot < 0; s++)
        if (!h->slots[s])
            slot = s;
    if (slot < 0)
        return vxi_error(VX_ERANGE, "pci: all %d slots of bus 0 are taken", PCI_SLOTS);
    /* Firmware's job: every BAR at its alignment inside its window. */
    uint64_t mmio = h->next_mmio, io = h->next_io;
    uint32_t addr[PCI_BARS] = { 0 };
    for (unsigned b = 0; b < PCI_BARS; b++) {
        uint32_t size = d->bar_size[b];
        if (!size)
            continue;
        if (d->bar_io[b]) {
            io = align_up(io, size);
            if (io + size > (uint64_t)h->cfg.io_base + h->cfg.io_size)
                return vxi_error(VX_ERANGE, "pci: the I/O window is full");
            addr[b] = (uint32_t)io;
            io += size;
        } else {
            mmio = align_up(mmio, size < 4096 ? 4096 : size);
            if (mmio + size > h->cfg.mmio_base + h->cfg.mmio_size)
                return vxi_error(VX_ERANGE, "pci: the memory window is full");
            addr[b] = (uint32_t)mmio;
            mmio += size;
        }
    }
    h->next_mmio = mmio;
    h->next_io = (uint32_t)io;
    for (unsigned b = 0; b < PCI_BARS; b++)
        if (d->bar_size[b])
            put32(d->config + PCI_BAR0 + 4 * b, addr[b] | (d->bar_io[b] ? 1 : 0));
    d->slot = slot;
    d->host = h;
    h->slots[slot] = d;
    int line = device_line(d);
    d->config[PCI_INTERRUPT_LINE] = line < 0 ? 0xff : (uint8_t)line;
    return 0;
}

void pci_host_reset(struct pci_host *h)
{
    h->config_address = 0;
    for (unsigned s = 0; s < PCI_SLOTS; s++) {
        struct pci_device *d = h->slots[s];
        if (!d)
            continue;
        int was = intx_out(d);
        put16(d->config + PCI_COMMAND, 0);
        intx_update(d, was);
    }
}

/* ---- configuration mechanism 1 ------------------------------------------ */

/* The device CONFIG_ADDRESS selects, with the register offset, or NULL:
 * the enable bit clear, another bus, or a function other than 0. */
static struct pci_device *selected(struct pci_host *h, unsigned *reg)
{
    uint32_t a = h->config_address;
    if (!(a & 0x80000000u) || (a >> 16 & 0xff) != 0 || (a >> 8 & 7) != 0)
        return NULL;
    *reg = a & 0xfc;
    return h->slots[a >> 11 & 31];
}

int pci_host_pio_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct pci_host *h = opaque;
    unsigned off = (unsigned)(addr - PCI_CONFIG_PORT);
    if (off < 4) {
        /* CONFIG_ADDRESS is a dword register: narrower reads see ones,
         * as on PCs (it is how Linux tells mechanism 1 from 2). */
        *value = len == 4 && off == 0 ? h->config_address : ones(len);
        return 0;
    }
    unsigned reg;
    struct pci_device *d = selected(h, &reg);
    unsigned byte = off - 4;
    if (!d || byte + len > 4) {
        *value = ones(len);
        return 0;
    }
    *value = pci_config_read(d, reg + byte, len);
    return 0;
}

int pci_host_pio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct pci_host *h = opaque;
    unsigned off = (unsigned)(addr - PCI_CONFIG_PORT);
    if (off < 4) {
        if (len == 4 && off == 0)
            h->config_address = (uint32_t)value & 0x80fffffcu;
        return 0;
    }
    unsigned reg;
    struct pci_device *d = selected(h, &reg);
    unsigned byte = off - 4;
    if (d && byte + len <= 4)
        pci_config_write(d, reg + byte, len, (uint32_t)value);
    return 0;
}

/* ---- BAR routing ----------------------------------------------------------- */

/* The device and BAR whose enabled decode covers [addr, addr + len), and
 * the offset in it. An access that runs past the BAR's end is nobody's. */
static struct pci_device *route(struct pci_host *h, uint64_t addr, unsigned len, bool io,
                                unsigned *bar, uint64_t *offset)
{
    uint16_t enable = io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
    for (unsigned s = 1; s < PCI_SLOTS; s++) {
        struct pci_device *d = h->slots[s];
        if (!d || !(get16(d->config + PCI_COMMAND) & enable))
            continue;
        for (unsigned b = 0; b < PCI_BARS; b++) {
            uint32_t size = d->bar_size[b];
            if (!size || d->bar_io[b] != io)
                continue;
            uint64_t base = pci_bar_address(d, b);
            if (base && addr >= base && addr - base < size && len <= size - (addr - base)) {
                *bar = b;
                *offset = addr - base;
                return d;
            }
        }
    }
    return NULL;
}

static int bar_read(struct pci_host *h, uint64_t addr, unsigned len, uint64_t *value, bool io)
{
    unsigned bar;
    uint64_t offset;
    struct pci_device *d = route(h, addr, len, io, &bar, &offset);
    *value = ones(len);
    if (!d || !d->ops || !d->ops->bar_read)
        return 0;
    return d->ops->bar_read(d->opaque, bar, offset, len, value);
}

static int bar_write(struct pci_host *h, uint64_t addr, unsigned len, uint64_t value, bool io)
{
    unsigned bar;
    uint64_t offset;
    struct pci_device *d = route(h, addr, len, io, &bar, &offset);
    if (!d || !d->ops || !d->ops->bar_write)
        return 0;
    return d->ops->bar_write(d->opaque, bar, offset, len, value);
}

static int mmio_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    return bar_read(opaque, addr, len, value, false);
}

static int mmio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    return bar_write(opaque, addr, len, value, false);
}

static int io_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    return bar_read(opaque, addr, len, value, true);
}

static int io_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    return bar_write(opaque, addr, len, value, true);
}

const vx_io_ops pci_host_pio_ops = { sizeof(vx_io_ops), pci_host_pio_read, pci_host_pio_write };
const vx_io_ops pci_host_mmio_ops = { sizeof(vx_io_ops), mmio_read, mmio_write };
const vx_io_ops pci_host_io_ops = { sizeof(vx_io_ops), io_read, io_write };
