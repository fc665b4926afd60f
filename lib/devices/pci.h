/*
 * A PCI host bridge for the pc board: bus 0 only, function 0 of each of
 * 32 slots, configuration mechanism 1 (CONFIG_ADDRESS at 0xcf8,
 * CONFIG_DATA at 0xcfc-0xcff), the bridge itself at 00:00.0 (class
 * 0x0600, so Linux's pci_sanity_check finds the bus without ACPI).
 *
 * Each device's configuration space is 256 bytes held here with a mask of
 * the bits the guest may write and of those it clears by writing 1 (the
 * status register), so a guest can write anything anywhere and only what
 * the hardware lets change changes. BARs are 32-bit: memory BARs are
 * non-prefetchable, I/O BARs are in port space; a size is a power of two
 * (memory: at least 16 bytes, placed at a multiple of max(size, 4 KiB);
 * I/O: at least 4). pci_host_add() assigns every BAR inside the host's
 * windows as firmware would and sets the interrupt line, so a kernel can
 * take the devices as they are; the guest may move them (sizing by
 * writing all ones works as on hardware).
 *
 * Accesses: the board registers pci_host_pio_ops at 0xcf8 (8 ports), and
 * one MMIO range over the whole memory window (pci_host_mmio_ops) and one
 * port range over the I/O window (pci_host_io_ops). The host routes an
 * access to the device whose enabled BAR (command register bit 1 for
 * memory, bit 0 for I/O) covers it, with the offset inside that BAR;
 * nothing claims it otherwise: reads give all ones, writes are dropped.
 * Overlapping BARs (a guest may program them so) go to the lowest slot.
 *
 * Interrupts: INTx. A device asserts its pin with pci_set_irq(); pin
 * INTA#-INTD# of slot s drives ISA line cfg.irq_map[(s + pin - 1) % 4]
 * (the swizzle of a PC's PIRQ routing), which is written into the
 * interrupt line register (0x3c). Several devices on one line are ORed:
 * the line is high while any of them asserts. The command register's
 * INTx-disable bit (10) masks the device's contribution, and status bit 3
 * shows its pending state.
 *
 * Not thread-safe: the board serialises every call (its lock).
 */
#ifndef VX_DEVICES_PCI_H
#define VX_DEVICES_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <libvx/vx.h>

enum {
    PCI_CONFIG_PORT = 0xcf8, /* CONFIG_ADDRESS; CONFIG_DATA at 0xcfc */
    PCI_CONFIG_PORT_COUNT = 8,
    PCI_SLOTS = 32,
    PCI_CONFIG_SIZE = 256,
    PCI_BARS = 6,
};

/* Configuration-space offsets and bits this project uses. */
enum {
    PCI_VENDOR_ID = 0x00,
    PCI_DEVICE_ID = 0x02,
    PCI_COMMAND = 0x04,
    PCI_STATUS = 0x06,
    PCI_REVISION_ID = 0x08,
    PCI_CLASS_PROG = 0x09,
    PCI_CLASS_DEVICE = 0x0a, /* subclass at 0x0a, base class at 0x0b */
    PCI_HEADER_TYPE = 0x0e,
    PCI_BAR0 = 0x10,
    PCI_SUBSYSTEM_VENDOR_ID = 0x2c,
    PCI_SUBSYSTEM_ID = 0x2e,
    PCI_CAPABILITY_LIST = 0x34,
    PCI_INTERRUPT_LINE = 0x3c,
    PCI_INTERRUPT_PIN = 0x3d,
    PCI_CAP_START = 0x40, /* capabilities are placed from here */

    PCI_COMMAND_IO = 0x1,
    PCI_COMMAND_MEMORY = 0x2,
    PCI_COMMAND_MASTER = 0x4,
    PCI_COMMAND_INTX_DISABLE = 0x400,
    PCI_STATUS_INTERRUPT = 0x8,
    PCI_STATUS_CAP_LIST = 0x10,

    PCI_CAP_ID_VNDR = 0x09,
};

/* What a device does with accesses to its BARs. `offset` is from the
 * BAR's start (below its size); len is 1, 2, 4 or 8 and the access may
 * be unaligned (the device decides what that means). Return 0; a non-zero
 * return fails the guest's access (VX_EXIT_INTERNAL), so devices return 0
 * for anything a guest can do and keep non-zero for host failures. */
struct pci_device_ops {
    int (*bar_read)(void *opaque, unsigned bar, uint64_t offset, unsigned len,
                    uint64_t *value);
    int (*bar_write)(void *opaque, unsigned bar, uint64_t offset, unsigned len,
                     uint64_t value);
    /* Optional: the guest wrote configuration bytes [offset, offset + len)
     * (after the masks applied), e.g. the command register. */
    void (*config_written)(void *opaque, unsigned offset, unsigned len);
};

struct pci_host;

/* One function. The configuration bytes are the device's state (for a
 * snapshot: config, irq_level). */
struct pci_device {
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
    uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits a guest write of 1 clears */
    uint32_t bar_size[PCI_BARS];      /* 0: no BAR */
    bool bar_io[PCI_BARS];
    uint8_t cap_next;                 /* where pci_add_capability puts the next one */
    uint8_t irq_level;                /* INTx as the device drives it */
    int slot;                         /* -1 until pci_host_add */
    struct pci_host *host;
    const struct pci_device_ops *ops;
    void *opaque;
};

struct pci_host_config {
    uint64_t mmio_base, mmio_size; /* the memory window for BARs (below 4 GiB) */
    uint16_t io_base, io_size;     /* the I/O window */
    uint8_t irq_map[4];            /* ISA line of PIRQ A-D (see above) */
    /* Drive ISA line `line` to `level`. */
    void (*set_irq)(void *ctx, unsigned line, int level);
    void *ctx;
};

struct pci_host {
    struct pci_host_config cfg;
    uint32_t config_address;          /* the last write to 0xcf8 */
    struct pci_device bridge;         /* 00:00.0 */
    struct pci_device *slots[PCI_SLOTS];
    uint8_t line_count[16];           /* devices asserting each ISA line */
    uint64_t next_mmio;               /* firmware-style assignment cursors */
    uint32_t next_io;
};

/* Set up the host and its bridge at slot 0. */
void pci_host_init(struct pci_host *h, const struct pci_host_config *cfg);

/* Give a device its identity before pci_host_add: a type-0 header with
 * these IDs and class (base class << 16 | subclass << 8 | prog-if),
 * interrupt pin A when `intx`, everything else zero. */
void pci_device_init(struct pci_device *d, uint16_t vendor, uint16_t device, uint8_t revision,
                     uint32_t class_code, uint16_t subsystem_vendor, uint16_t subsystem,
                     bool intx, const struct pci_device_ops *ops, void *opaque);

/* Declare BAR `bar` (0-5): `size` bytes (a power of two, see above) of
 * memory or I/O space. Before pci_host_add. VX_EINVAL for a bad index or
 * size. */
int pci_device_set_bar(struct pci_device *d, unsigned bar, uint32_t size, bool io);

/* Append a capability of `len` bytes (id, next pointer and body: body[0]
 * and body[1] are overwritten with them) to the capability list. Returns
 * its offset in configuration space, or 0 if it does not fit. The bytes
 * are read-only to the guest unless the device sets wmask itself. */
unsigned pci_add_capability(struct pci_device *d, uint8_t id, const uint8_t *body,
                            unsigned len);

/* Put d in the lowest free slot, assign its BARs in the windows and set
 * its interrupt line. VX_ENOSPC-like failure: VX_ERANGE when no slot or
 * window space is left. */
int pci_host_add(struct pci_host *h, struct pci_device *d);

/* The device drives its INTx pin (0 or not). */
void pci_set_irq(struct pci_device *d, int level);

/* A BAR's current guest-physical (or port) address; 0 when unassigned. */
uint64_t pci_bar_address(const struct pci_device *d, unsigned bar);

/* Read/write configuration space as the guest does through CONFIG_DATA
 * (also used by tests): offset below 256, len 1, 2 or 4 within a dword. */
uint32_t pci_config_read(struct pci_device *d, unsigned offset, unsigned len);
void pci_config_write(struct pci_device *d, unsigned offset, unsigned len, uint32_t value);

/* Reset every device's command register and the address latch (the BAR
 * assignment stays, as firmware would leave it after a reboot). */
void pci_host_reset(struct pci_host *h);

/* The opaque of all three is the struct pci_host. */
int pci_host_pio_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int pci_host_pio_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops pci_host_pio_ops;  /* 0xcf8-0xcff */
extern const vx_io_ops pci_host_mmio_ops; /* the memory window */
extern const vx_io_ops pci_host_io_ops;   /* the I/O window */

#endif
