/* The virtio 1.x modern PCI transport (specification §4.1). */
#include "config.h"

#include <string.h>

#include "core/error.h"
#include "devices/virtio_pci.h"

enum {
    CAP_LEN = 16,        /* struct virtio_pci_cap */
    NOTIFY_CAP_LEN = 20, /* plus notify_off_multiplier */
    PCI_CFG_CAP_LEN = 20, /* plus pci_cfg_data */
    /* Inside a capability. */
    CAP_BAR = 4,
    CAP_OFFSET = 8,
    CAP_LENGTH = 12,
    CAP_DATA = 16,
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Little-endian bytes [off, off + len) of an image of `size` bytes; what
 * lies beyond it reads as zero. */
static uint64_t image_read(const uint8_t *image, uint64_t size, uint64_t off, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len && i < 8; i++)
        if (off + i < size)
            v |= (uint64_t)image[off + i] << (8 * i);
    return v;
}

static uint64_t offered(const struct virtio_pci *t)
{
    return t->cfg.features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
}

uint64_t virtio_pci_features(const struct virtio_pci *t)
{
    return (t->s.status & VIRTIO_STATUS_FEATURES_OK) ? t->s.driver_features : 0;
}

static bool device_may_work(const struct virtio_pci *t)
{
    const uint8_t need = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK;
    return (t->s.status & need) == need &&
           !(t->s.status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) &&
           (t->pci.config[PCI_COMMAND] & PCI_COMMAND_MASTER);
}

bool virtio_pci_queue_ready(const struct virtio_pci *t, unsigned q)
{
    return q < t->cfg.num_queues && device_may_work(t) && virtq_ready(&t->vq[q]);
}

static void drive_irq(struct virtio_pci *t)
{
    int level = t->s.isr != 0;
    if (level != (t->pci.irq_level != 0))
        pci_set_irq(&t->pci, level);
}

void virtio_pci_update(struct virtio_pci *t)
{
    for (unsigned q = 0; q < t->cfg.num_queues; q++) {
        struct virtq *vq = &t->vq[q];
        if (vq->s.broken && !(t->s.status & VIRTIO_STATUS_NEEDS_RESET)) {
            t->s.status |= VIRTIO_STATUS_NEEDS_RESET;
            if (t->s.status & VIRTIO_STATUS_DRIVER_OK)
                t->s.isr |= VIRTIO_PCI_ISR_CONFIG;
        }
        if (virtq_take_interrupt(vq))
            t->s.isr |= VIRTIO_PCI_ISR_QUEUE;
    }
    drive_irq(t);
}

void virtio_pci_config_changed(struct virtio_pci *t)
{
    t->s.config_generation++;
    if (t->s.status & VIRTIO_STATUS_DRIVER_OK) {
        t->s.isr |= VIRTIO_PCI_ISR_CONFIG;
        drive_irq(t);
    }
}

static void notify(struct virtio_pci *t, unsigned q)
{
    if (!virtio_pci_queue_ready(t, q))
        return;
    t->cfg.ops->notify(t->cfg.dev, q);
    virtio_pci_update(t);
}

void virtio_pci_reset(struct virtio_pci *t)
{
    uint8_t generation = t->s.config_generation;
    memset(&t->s, 0, sizeof t->s);
    t->s.config_generation = generation;
    for (unsigned q = 0; q < t->cfg.num_queues; q++)
        virtq_reset(&t->vq[q]);
    drive_irq(t);
    if (t->cfg.ops->reset)
        t->cfg.ops->reset(t->cfg.dev);
}

static void write_status(struct virtio_pci *t, uint8_t v)
{
    if (v == 0) {
        virtio_pci_reset(t);
        return;
    }
    uint8_t old = t->s.status;
    /* NEEDS_RESET is the device's to set and only a reset clears it. */
    v = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
    if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t f = t->s.driver_features;
        if ((f & ~offered(t)) || !(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
            v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    t->s.status = v;
    if (!(v & VIRTIO_STATUS_DRIVER_OK) || (old & VIRTIO_STATUS_DRIVER_OK))
        return;
    if (v & VIRTIO_STATUS_NEEDS_RESET) {
        t->s.isr |= VIRTIO_PCI_ISR_CONFIG;
        drive_irq(t);
        return;
    }
    /* Buffers the driver made available (and notified) before DRIVER_OK
     * were left alone; they are served now. */
    for (unsigned q = 0; q < t->cfg.num_queues; q++)
        notify(t, q);
    virtio_pci_update(t);
}

static struct virtq *selected(struct virtio_pci *t)
{
    return t->s.queue_select < t->cfg.num_queues ? &t->vq[t->s.queue_select] : NULL;
}

/* The common configuration as the driver would read it now. */
static void common_image(struct virtio_pci *t, uint8_t img[VIRTIO_PCI_COMMON_LEN])
{
    memset(img, 0, VIRTIO_PCI_COMMON_LEN);
    uint32_t dfsel = t->s.device_feature_select, gfsel = t->s.driver_feature_select;
    put32(img + VIRTIO_PCI_COMMON_DFSELECT, dfsel);
    put32(img + VIRTIO_PCI_COMMON_DF, dfsel < 2 ? (uint32_t)(offered(t) >> (32 * dfsel)) : 0);
    put32(img + VIRTIO_PCI_COMMON_GFSELECT, gfsel);
    put32(img + VIRTIO_PCI_COMMON_GF,
          gfsel < 2 ? (uint32_t)(t->s.driver_features >> (32 * gfsel)) : 0);
    put16(img + VIRTIO_PCI_COMMON_MSIX, VIRTIO_PCI_NO_VECTOR);
    put16(img + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)t->cfg.num_queues);
    img[VIRTIO_PCI_COMMON_STATUS] = t->s.status;
    img[VIRTIO_PCI_COMMON_CFGGENERATION] = t->s.config_generation;
    put16(img + VIRTIO_PCI_COMMON_Q_SELECT, t->s.queue_select);
    put16(img + VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_PCI_NO_VECTOR);
    const struct virtq *q = selected(t);
    if (!q)
        return; /* queue_size 0: no such queue */
    put16(img + VIRTIO_PCI_COMMON_Q_SIZE, q->s.size);
    put16(img + VIRTIO_PCI_COMMON_Q_ENABLE, q->s.enabled);
    put16(img + VIRTIO_PCI_COMMON_Q_NOFF, t->s.queue_select);
    put32(img + VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)q->s.desc);
    put32(img + VIRTIO_PCI_COMMON_Q_DESCHI, (uint32_t)(q->s.desc >> 32));
    put32(img + VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)q->s.driver);
    put32(img + VIRTIO_PCI_COMMON_Q_AVAILHI, (uint32_t)(q->s.driver >> 32));
    put32(img + VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)q->s.device);
    put32(img + VIRTIO_PCI_COMMON_Q_USEDHI, (uint32_t)(q->s.device >> 32));
}

static void set_half(uint64_t *field, unsigned hi, uint32_t v)
{
    unsigned shift = hi ? 32 : 0;
    *field = (*field & ~(0xffffffffull << shift)) | (uint64_t)v << shift;
}

/* One whole field of the common configuration written. */
static void common_field_write(struct virtio_pci *t, unsigned off, uint32_t v)
{
    struct virtq *q = selected(t);
    bool frozen = !q || q->s.enabled;
    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        t->s.device_feature_select = v;
        break;
    case VIRTIO_PCI_COMMON_GFSELECT:
        t->s.driver_feature_select = v;
        break;
    case VIRTIO_PCI_COMMON_GF:
        if (t->s.driver_feature_select < 2 && !(t->s.status & VIRTIO_STATUS_FEATURES_OK))
            set_half(&t->s.driver_features, t->s.driver_feature_select, v);
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        write_status(t, (uint8_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        t->s.queue_select = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (!frozen)
            q->s.size = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        /* Only a reset disables a queue (VIRTIO_F_RING_RESET is not offered). */
        if (!frozen && (uint16_t)v == 1) {
            virtq_enable(q, t->s.driver_features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
            virtio_pci_update(t);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        if (!frozen)
            set_half(&q->s.desc, off == VIRTIO_PCI_COMMON_Q_DESCHI, v);
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if (!frozen)
            set_half(&q->s.driver, off == VIRTIO_PCI_COMMON_Q_AVAILHI, v);
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (!frozen)
            set_half(&q->s.device, off == VIRTIO_PCI_COMMON_Q_USEDHI, v);
        break;
    default:
        break; /* read-only, or the MSI-X vectors we do not have */
    }
}

/* A write of any width and alignment: each field it touches is written
 * whole, the bytes it does not cover keeping their current value, in
 * address order. */
static void common_write(struct virtio_pci *t, uint64_t off, unsigned len, uint64_t value)
{
    static const uint8_t fields[][2] = {
        { 0x00, 4 }, { 0x04, 4 }, { 0x08, 4 }, { 0x0c, 4 }, { 0x10, 2 }, { 0x12, 2 },
        { 0x14, 1 }, { 0x15, 1 }, { 0x16, 2 }, { 0x18, 2 }, { 0x1a, 2 }, { 0x1c, 2 },
        { 0x1e, 2 }, { 0x20, 4 }, { 0x24, 4 }, { 0x28, 4 }, { 0x2c, 4 }, { 0x30, 4 },
        { 0x34, 4 }, { 0x38, 2 }, { 0x3a, 2 }, { 0x3c, 2 }, { 0x3e, 2 },
    };
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        unsigned fo = fields[k][0], fl = fields[k][1];
        if (fo + fl <= off || fo >= off + len)
            continue;
        uint8_t img[VIRTIO_PCI_COMMON_LEN];
        common_image(t, img); /* fresh: an earlier field may have changed it */
        for (unsigned i = 0; i < fl; i++)
            if (fo + i >= off && fo + i < off + len)
                img[fo + i] = (uint8_t)(value >> (8 * (fo + i - off)));
        common_field_write(t, fo, (uint32_t)image_read(img, sizeof img, fo, fl));
    }
}

/* A BAR access; `effects` false reads without side effects (the PCI_CFG
 * window's prefetch). Bytes outside a structure read as zero. */
static uint64_t bar_access_read(struct virtio_pci *t, uint64_t off, unsigned len, bool effects)
{
    if (len > 8)
        len = 8;
    if (off < VIRTIO_PCI_COMMON + VIRTIO_PCI_COMMON_LEN) {
        uint8_t img[VIRTIO_PCI_COMMON_LEN];
        common_image(t, img);
        return image_read(img, sizeof img, off - VIRTIO_PCI_COMMON, len);
    }
    if (off == VIRTIO_PCI_ISR) {
        uint8_t v = t->s.isr;
        if (effects && v) {
            t->s.isr = 0;
            drive_irq(t);
        }
        return v;
    }
    if (off >= VIRTIO_PCI_DEVICE_CFG && off < VIRTIO_PCI_DEVICE_CFG + t->cfg.config_len)
        return image_read(t->cfg.config, t->cfg.config_len, off - VIRTIO_PCI_DEVICE_CFG, len);
    return 0;
}

static void bar_access_write(struct virtio_pci *t, uint64_t off, unsigned len, uint64_t value)
{
    if (len > 8)
        len = 8;
    if (off < VIRTIO_PCI_COMMON + VIRTIO_PCI_COMMON_LEN) {
        common_write(t, off - VIRTIO_PCI_COMMON, len, value);
    } else if (off >= VIRTIO_PCI_DEVICE_CFG &&
               off < VIRTIO_PCI_DEVICE_CFG + t->cfg.config_len) {
        unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_CFG);
        if (len > t->cfg.config_len - o)
            len = t->cfg.config_len - o;
        if (t->cfg.ops->config_write)
            t->cfg.ops->config_write(t->cfg.dev, o, len, value);
    } else if (off >= VIRTIO_PCI_NOTIFY &&
               off < VIRTIO_PCI_NOTIFY + (uint64_t)VIRTIO_PCI_NOTIFY_MULTIPLIER * t->cfg.num_queues) {
        notify(t, (unsigned)((off - VIRTIO_PCI_NOTIFY) / VIRTIO_PCI_NOTIFY_MULTIPLIER));
    }
}

static int bar_read(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t *value)
{
    struct virtio_pci *t = opaque;
    *value = bar == VIRTIO_PCI_BAR ? bar_access_read(t, offset, len, true) : 0;
    return 0;
}

static int bar_write(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t value)
{
    struct virtio_pci *t = opaque;
    if (bar == VIRTIO_PCI_BAR)
        bar_access_write(t, offset, len, value);
    return 0;
}

static bool overlaps(unsigned a, unsigned alen, unsigned b, unsigned blen)
{
    return a < b + blen && b < a + alen;
}

/* The PCI_CFG window (see the header): a write of pci_cfg_data is a BAR
 * write; any write of the window's fields reloads pci_cfg_data. */
static void config_written(void *opaque, unsigned offset, unsigned len)
{
    struct virtio_pci *t = opaque;
    unsigned c = t->pci_cfg_cap;
    if (!c || !overlaps(offset, len, c + CAP_BAR, PCI_CFG_CAP_LEN - CAP_BAR))
        return;
    uint8_t *cap = t->pci.config + c;
    uint32_t where = get32(cap + CAP_OFFSET), n = get32(cap + CAP_LENGTH);
    if (cap[CAP_BAR] != VIRTIO_PCI_BAR || (n != 1 && n != 2 && n != 4) || where % n ||
        (uint64_t)where + n > VIRTIO_PCI_BAR_SIZE)
        return;
    if (overlaps(offset, len, c + CAP_DATA, 4)) {
        uint32_t v = get32(cap + CAP_DATA);
        if (n < 4)
            v &= (1u << (8 * n)) - 1;
        bar_access_write(t, where, n, v);
    }
    put32(cap + CAP_DATA, (uint32_t)bar_access_read(t, where, n, false));
}

const struct pci_device_ops virtio_pci_ops = {
    .bar_read = bar_read,
    .bar_write = bar_write,
    .config_written = config_written,
};

static unsigned add_cap(struct pci_device *d, uint8_t type, uint32_t offset, uint32_t length,
                        unsigned cap_len, uint32_t extra)
{
    uint8_t body[20] = { PCI_CAP_ID_VNDR, 0, (uint8_t)cap_len, type, VIRTIO_PCI_BAR };
    put32(body + CAP_OFFSET, offset);
    put32(body + CAP_LENGTH, length);
    if (cap_len > CAP_LEN)
        put32(body + CAP_DATA, extra);
    return pci_add_capability(d, PCI_CAP_ID_VNDR, body, cap_len);
}

int virtio_pci_init(struct virtio_pci *t, vx_machine *m, struct pci_host *h,
                    const struct virtio_pci_config *cfg)
{
    unsigned qs = cfg ? cfg->queue_size : 0;
    if (!t || !m || !h || !cfg || !cfg->ops || !cfg->ops->notify)
        return vxi_error(VX_EINVAL, "virtio_pci_init: NULL argument");
    if (cfg->num_queues < 1 || cfg->num_queues > VIRTIO_PCI_MAX_QUEUES || !qs ||
        qs > VIRTQ_MAX_SIZE || (qs & (qs - 1)))
        return vxi_error(VX_EINVAL, "virtio_pci_init: %u queues of %u entries: want 1-%u "
                         "queues of a power of two up to %u", cfg->num_queues, qs,
                         VIRTIO_PCI_MAX_QUEUES, VIRTQ_MAX_SIZE);
    if (cfg->config_len > VIRTIO_PCI_DEVICE_CFG_MAX || (cfg->config_len && !cfg->config))
        return vxi_error(VX_EINVAL, "virtio_pci_init: bad device configuration (%u bytes)",
                         cfg->config_len);
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->m = m;
    for (unsigned q = 0; q < cfg->num_queues; q++)
        virtq_init(&t->vq[q], m, (uint16_t)qs);

    struct pci_device *d = &t->pci;
    pci_device_init(d, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + cfg->device_type),
                    1, cfg->class_code, VIRTIO_PCI_VENDOR, cfg->device_type, true,
                    &virtio_pci_ops, t);
    int rc = pci_device_set_bar(d, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, false);
    if (rc)
        return rc;
    bool ok = add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON, VIRTIO_PCI_COMMON_LEN,
                      CAP_LEN, 0) &&
              add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY,
                      VIRTIO_PCI_NOTIFY_MULTIPLIER * cfg->num_queues, NOTIFY_CAP_LEN,
                      VIRTIO_PCI_NOTIFY_MULTIPLIER) &&
              add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR, 1, CAP_LEN, 0);
    if (ok && cfg->config_len)
        ok = add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_CFG, cfg->config_len,
                     CAP_LEN, 0);
    unsigned c = ok ? add_cap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, PCI_CFG_CAP_LEN, 0) : 0;
    if (!c)
        return vxi_error(VX_ERANGE, "virtio_pci_init: the capabilities do not fit");
    t->pci_cfg_cap = (uint8_t)c;
    /* The window's bar, offset, length and data are the driver's. */
    memset(d->wmask + c + CAP_BAR, 0xff, 1);
    memset(d->wmask + c + CAP_OFFSET, 0xff, PCI_CFG_CAP_LEN - CAP_OFFSET);
    virtio_pci_reset(t);
    return pci_host_add(h, d);
}

void virtio_pci_fini(struct virtio_pci *t)
{
    struct pci_device *d = &t->pci;
    if (d->irq_level)
        pci_set_irq(d, 0);
    if (d->host && d->slot >= 0 && d->slot < PCI_SLOTS && d->host->slots[d->slot] == d)
        d->host->slots[d->slot] = NULL;
    d->slot = -1;
    d->host = NULL;
}
