/*
 * The virtio 1.x PCI transport, modern only (specification §4.1): a
 * device answers at vendor 0x1af4, device 0x1040 + its virtio type,
 * revision 1, subsystem 0x1af4:type, with one 16 KiB 32-bit memory BAR
 * (BAR 0) laid out as
 *
 *   0x0000  common configuration (64 bytes, up to admin_queue_num)
 *   0x1000  ISR status (1 byte: bit 0 a used buffer, bit 1 configuration)
 *   0x2000  device-specific configuration
 *   0x3000  notifications: queue n at 0x3000 + 4 n (queue_notify_off = n)
 *
 * and the vendor capabilities (id 0x09) that point at them, plus the
 * VIRTIO_PCI_CAP_PCI_CFG window (below). No MSI-X: the interrupt is INTx,
 * high while ISR is non-zero; reading ISR clears it. msix_config and
 * queue_msix_vector read 0xffff (NO_VECTOR) whatever is written.
 *
 * Feature negotiation: the device offers cfg.features | VIRTIO_F_VERSION_1
 * (64 bits through device_feature_select 0 and 1). FEATURES_OK is not
 * kept, and the driver sees it so on reading status back, when the
 * driver's features are not a subset of those or lack VERSION_1. Driver
 * features are frozen once FEATURES_OK is set. Writing 0 to
 * device_status resets the device (its queues included); status reads 0
 * afterwards at once.
 *
 * Queues: queue_size is writable (a power of two up to the offered size)
 * until the queue is enabled; queue_enable = 1 checks the rings
 * (virtq_enable) and a failure sets DEVICE_NEEDS_RESET. The registers of
 * an enabled queue are frozen until reset. A write anywhere in a queue's
 * notification slot calls the device's notify hook at once, on the
 * writing vCPU's thread, provided the device may work: DRIVER_OK and
 * FEATURES_OK set, NEEDS_RESET clear, PCI bus mastering on (a device
 * without it cannot reach memory), the queue enabled and not broken.
 * Setting DRIVER_OK notifies every enabled queue once, for buffers made
 * available before it.
 *
 * Errors: when a queue breaks (a malformed ring or chain, see virtio.h)
 * the device sets DEVICE_NEEDS_RESET in device_status, stops using every
 * queue and raises the configuration interrupt (ISR bit 1), or raises it
 * when DRIVER_OK is set if the error came earlier.
 *
 * The PCI_CFG capability: the configuration space has no read hook, so
 * the window works by prefetch: writing cap.bar, cap.offset or
 * cap.length (bar 0, length 1, 2 or 4, offset aligned to it and inside
 * the BAR) loads pci_cfg_data with that access's value read without side
 * effects (an ISR read through it does not clear ISR), and writing
 * pci_cfg_data performs the BAR write and loads the value again.
 *
 * Not thread-safe: the board serialises calls (its lock).
 */
#ifndef VX_DEVICES_VIRTIO_PCI_H
#define VX_DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include <libvx/vx.h>

#include "devices/pci.h"
#include "devices/virtio.h"

enum {
    VIRTIO_PCI_VENDOR = 0x1af4,
    VIRTIO_PCI_DEVICE_BASE = 0x1040,
    VIRTIO_PCI_MAX_QUEUES = 4,

    VIRTIO_PCI_BAR = 0,
    VIRTIO_PCI_BAR_SIZE = 0x4000,
    VIRTIO_PCI_COMMON = 0x0000,
    VIRTIO_PCI_COMMON_LEN = 0x40,
    VIRTIO_PCI_ISR = 0x1000,
    VIRTIO_PCI_DEVICE_CFG = 0x2000,
    VIRTIO_PCI_DEVICE_CFG_MAX = 0x1000,
    VIRTIO_PCI_NOTIFY = 0x3000,
    VIRTIO_PCI_NOTIFY_MULTIPLIER = 4,

    /* cfg_type of the vendor capabilities */
    VIRTIO_PCI_CAP_COMMON_CFG = 1,
    VIRTIO_PCI_CAP_NOTIFY_CFG = 2,
    VIRTIO_PCI_CAP_ISR_CFG = 3,
    VIRTIO_PCI_CAP_DEVICE_CFG = 4,
    VIRTIO_PCI_CAP_PCI_CFG = 5,

    /* the common configuration structure */
    VIRTIO_PCI_COMMON_DFSELECT = 0x00,
    VIRTIO_PCI_COMMON_DF = 0x04,
    VIRTIO_PCI_COMMON_GFSELECT = 0x08,
    VIRTIO_PCI_COMMON_GF = 0x0c,
    VIRTIO_PCI_COMMON_MSIX = 0x10,
    VIRTIO_PCI_COMMON_NUMQ = 0x12,
    VIRTIO_PCI_COMMON_STATUS = 0x14,
    VIRTIO_PCI_COMMON_CFGGENERATION = 0x15,
    VIRTIO_PCI_COMMON_Q_SELECT = 0x16,
    VIRTIO_PCI_COMMON_Q_SIZE = 0x18,
    VIRTIO_PCI_COMMON_Q_MSIX = 0x1a,
    VIRTIO_PCI_COMMON_Q_ENABLE = 0x1c,
    VIRTIO_PCI_COMMON_Q_NOFF = 0x1e,
    VIRTIO_PCI_COMMON_Q_DESCLO = 0x20,
    VIRTIO_PCI_COMMON_Q_DESCHI = 0x24,
    VIRTIO_PCI_COMMON_Q_AVAILLO = 0x28,
    VIRTIO_PCI_COMMON_Q_AVAILHI = 0x2c,
    VIRTIO_PCI_COMMON_Q_USEDLO = 0x30,
    VIRTIO_PCI_COMMON_Q_USEDHI = 0x34,
    VIRTIO_PCI_COMMON_Q_NDATA = 0x38,
    VIRTIO_PCI_COMMON_Q_RESET = 0x3a,

    VIRTIO_PCI_ISR_QUEUE = 1,
    VIRTIO_PCI_ISR_CONFIG = 2,
    VIRTIO_PCI_NO_VECTOR = 0xffff,
};

/* What a device type plugs into the transport. */
struct virtio_device_ops {
    /* The driver notified `queue` and the device may work on it (see
     * above). Serve at most the queue's size in chains: the transport
     * raises the interrupt and handles a broken queue afterwards. */
    void (*notify)(void *dev, unsigned queue);
    /* Device reset (device_status 0 or board reset). Optional. */
    void (*reset)(void *dev);
    /* The driver wrote device configuration bytes [offset, offset + len)
     * (len 1-8, inside cfg.config_len). Optional: without it such writes
     * are dropped. */
    void (*config_write)(void *dev, unsigned offset, unsigned len, uint64_t value);
};

struct virtio_pci_config {
    uint16_t device_type;      /* VIRTIO_ID_* */
    uint32_t class_code;       /* PCI class, base << 16 | sub << 8 | prog-if */
    uint64_t features;         /* offered; VIRTIO_F_VERSION_1 is added */
    unsigned num_queues;       /* 1..VIRTIO_PCI_MAX_QUEUES */
    uint16_t queue_size;       /* each queue's maximum: a power of two <= VIRTQ_MAX_SIZE */
    const uint8_t *config;     /* device configuration, little-endian, the device's */
    unsigned config_len;       /* <= VIRTIO_PCI_DEVICE_CFG_MAX */
    const struct virtio_device_ops *ops;
    void *dev;
};

/* The transport's registers: with the queues' and the PCI function's
 * state, what a snapshot saves. */
struct virtio_pci_state {
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint16_t queue_select;
    uint8_t status;
    uint8_t config_generation;
    uint8_t isr;
};

struct virtio_pci {
    struct pci_device pci;
    struct virtio_pci_state s;
    struct virtq vq[VIRTIO_PCI_MAX_QUEUES];
    struct virtio_pci_config cfg;
    vx_machine *m;
    uint8_t pci_cfg_cap; /* offset of the PCI_CFG capability */
};

/* Set up the function (identity, BAR, capabilities), reset it and add it
 * to host h (pci_host_add: a slot and the BAR's address). VX_EINVAL for a
 * bad cfg, VX_ERANGE when the host is full. */
int virtio_pci_init(struct virtio_pci *t, vx_machine *m, struct pci_host *h,
                    const struct virtio_pci_config *cfg);

/* Take the function off its host (its interrupt dropped first). Call
 * before the host goes away; the host cannot reach t afterwards. */
void virtio_pci_fini(struct virtio_pci *t);

/* Device reset: status 0, features and selectors zero, every queue
 * disabled and reset, ISR clear (INTx low), the device's reset hook. */
void virtio_pci_reset(struct virtio_pci *t);

/* May the device use queue q now (e.g. to deliver host input)? */
bool virtio_pci_queue_ready(const struct virtio_pci *t, unsigned q);

/* After the device worked outside its notify hook (host input): raise
 * the interrupt for used buffers, turn a broken queue into NEEDS_RESET. */
void virtio_pci_update(struct virtio_pci *t);

/* The device changed its configuration: config_generation moves and,
 * after DRIVER_OK, the configuration interrupt is raised. */
void virtio_pci_config_changed(struct virtio_pci *t);

/* The features the driver accepted (0 until FEATURES_OK is kept). */
uint64_t virtio_pci_features(const struct virtio_pci *t);

/* The BAR accesses (pci_device_ops), exposed for tests and fuzzing. */
extern const struct pci_device_ops virtio_pci_ops;

#endif
