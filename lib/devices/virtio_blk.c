/* virtio-blk (virtio 1.x §5.2) over a host fd. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/machine.h"
#include "devices/virtio_blk.h"

enum {
    HEADER_SIZE = 16, /* le32 type, le32 reserved, le64 sector */
    /* One pread/pwrite at most this much: a guest buffer can be 4 GiB. */
    IO_CHUNK = 1u << 30,
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Whole transfers or an error: short counts and EINTR go round again;
 * end of file (the file shrank under us) is an error. */
static int transfer_full(int fd, uint8_t *buf, uint64_t len, uint64_t pos, bool write)
{
    while (len) {
        size_t n = len > IO_CHUNK ? IO_CHUNK : (size_t)len;
        ssize_t r = write ? pwrite(fd, buf, n, (off_t)pos) : pread(fd, buf, n, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        len -= (uint64_t)r;
        pos += (uint64_t)r;
    }
    return 0;
}

static int read_full(int fd, uint8_t *buf, uint64_t len, uint64_t pos)
{
    return transfer_full(fd, buf, len, pos, false);
}

static int write_full(int fd, const uint8_t *buf, uint64_t len, uint64_t pos)
{
    return transfer_full(fd, (uint8_t *)(uintptr_t)buf, len, pos, true);
}

static int sync_fd(int fd)
{
    int r;
    do
        r = fdatasync(fd);
    while (r < 0 && errno == EINTR);
    return r;
}

static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
    return bytes % VIRTIO_BLK_SECTOR == 0 && sector <= b->capacity &&
           bytes / VIRTIO_BLK_SECTOR <= b->capacity - sector;
}

/* IN: the writable bytes but the last (the status) are the data. The
 * count of bytes placed in guest memory goes to *written. */
static uint8_t do_in(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector,
                     uint64_t *written)
{
    uint64_t data = c->write_len - 1;
    if (!in_range(b, sector, data))
        return VIRTIO_BLK_S_IOERR;
    uint64_t pos = sector * VIRTIO_BLK_SECTOR;
    for (unsigned k = c->readable; k < c->count && data; k++) {
        const struct virtq_seg *s = &c->seg[k];
        uint64_t n = s->len < data ? s->len : data;
        int rc = read_full(b->fd, s->host, n, pos);
        /* On failure some of it may have arrived: the guest sees it changed. */
        vxi_memory_written(b->t.m, s->gpa, n);
        if (rc)
            return VIRTIO_BLK_S_IOERR;
        *written += n;
        pos += n;
        data -= n;
    }
    return VIRTIO_BLK_S_OK;
}

/* OUT: the readable bytes after the header are the data. */
static uint8_t do_out(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector)
{
    uint64_t data = c->read_len - HEADER_SIZE;
    if (b->readonly || !in_range(b, sector, data))
        return VIRTIO_BLK_S_IOERR;
    uint64_t pos = sector * VIRTIO_BLK_SECTOR, skip = HEADER_SIZE;
    for (unsigned k = 0; k < c->readable; k++) {
        const struct virtq_seg *s = &c->seg[k];
        if (skip >= s->len) {
            skip -= s->len;
            continue;
        }
        uint64_t n = s->len - skip;
        if (write_full(b->fd, s->host + skip, n, pos))
            return VIRTIO_BLK_S_IOERR;
        pos += n;
        skip = 0;
    }
    /* Without VIRTIO_BLK_F_FLUSH the driver cannot ask for a flush, so
     * a completed write must already be durable. */
    if (!(virtio_pci_features(&b->t) & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) && sync_fd(b->fd))
        return VIRTIO_BLK_S_IOERR;
    return VIRTIO_BLK_S_OK;
}

/* Serve one request; -1 when it cannot be completed (no status byte). */
static int serve(struct virtio_blk *b, struct virtq *q, const struct virtq_chain *c)
{
    if (c->write_len == 0) {
        virtq_break(q, "virtio-blk request without a device-writable status byte");
        return -1;
    }
    uint8_t hdr[HEADER_SIZE];
    uint8_t status;
    uint64_t written = 0;
    if (virtq_chain_read(c, 0, hdr, sizeof hdr) < sizeof hdr) {
        status = VIRTIO_BLK_S_IOERR;
    } else {
        uint32_t type = (uint32_t)get_le(hdr, 4);
        uint64_t sector = get_le(hdr + 8, 8);
        switch (type) {
        case VIRTIO_BLK_T_IN:
            status = do_in(b, c, sector, &written);
            break;
        case VIRTIO_BLK_T_OUT:
            status = do_out(b, c, sector);
            break;
        case VIRTIO_BLK_T_FLUSH:
            status = (b->readonly || !sync_fd(b->fd)) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
            break;
        case VIRTIO_BLK_T_GET_ID: {
            uint64_t room = c->write_len - 1;
            size_t n = room < VIRTIO_BLK_ID_BYTES ? (size_t)room : VIRTIO_BLK_ID_BYTES;
            written = virtq_chain_write(q, c, 0, b->serial, n);
            status = VIRTIO_BLK_S_OK;
            break;
        }
        default:
            status = VIRTIO_BLK_S_UNSUPP;
            break;
        }
    }
    virtq_chain_write(q, c, c->write_len - 1, &status, 1);
    written++;
    return virtq_push(q, c->head, written > UINT32_MAX ? UINT32_MAX : (uint32_t)written);
}

static void blk_notify(void *dev, unsigned queue)
{
    struct virtio_blk *b = dev;
    struct virtq *q = &b->t.vq[queue];
    for (unsigned n = 0; n < q->s.size; n++) {
        if (virtq_pop(q, &b->chain) <= 0)
            break;
        if (serve(b, q, &b->chain))
            break;
    }
}

static const struct virtio_device_ops blk_ops = {
    .notify = blk_notify,
};

void virtio_blk_reset(struct virtio_blk *b)
{
    virtio_pci_reset(&b->t);
}

static int disk_size(int fd, uint64_t *bytes)
{
    struct stat st;
    if (fstat(fd, &st))
        return vxi_error(VX_EIO, "virtio_blk_create: fstat(%d): %s", fd, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        *bytes = (uint64_t)st.st_size;
        return 0;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, bytes))
            return vxi_error(VX_EIO, "virtio_blk_create: BLKGETSIZE64 on fd %d: %s", fd,
                             strerror(errno));
        return 0;
    }
    return vxi_error(VX_EINVAL, "virtio_blk_create: fd %d is neither a regular file nor a "
                     "block device", fd);
}

int virtio_blk_create(vx_machine *m, struct pci_host *h, int fd, bool readonly,
                      const char *serial, struct virtio_blk **out)
{
    if (out)
        *out = NULL;
    if (!m || !h || !out || fd < 0)
        return vxi_error(VX_EINVAL, "virtio_blk_create: %s", fd < 0 ? "bad fd" : "NULL argument");
    uint64_t bytes;
    int rc = disk_size(fd, &bytes);
    if (rc)
        return rc;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return vxi_error(VX_EIO, "virtio_blk_create: fcntl(%d): %s", fd, strerror(errno));
    if ((fl & O_ACCMODE) == O_RDONLY)
        readonly = true;

    struct virtio_blk *b = calloc(1, sizeof *b);
    if (!b)
        return vxi_error(VX_ENOMEM, "virtio_blk_create: out of memory");
    b->fd = fd;
    b->readonly = readonly;
    b->capacity = bytes / VIRTIO_BLK_SECTOR;
    if (!serial)
        serial = "libvx-blk0";
    memcpy(b->serial, serial, strnlen(serial, sizeof b->serial)); /* NUL-padded by calloc */
    put_le(b->config + VIRTIO_BLK_CFG_CAPACITY, b->capacity, 8);
    put_le(b->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX, 4);
    put_le(b->config + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR, 4);

    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                        VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                        VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if (readonly)
        features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
    struct virtio_pci_config cfg = {
        .device_type = VIRTIO_ID_BLOCK,
        .class_code = 0x018000, /* mass storage, other */
        .features = features,
        .num_queues = 1,
        .queue_size = VIRTIO_BLK_QUEUE_SIZE,
        .config = b->config,
        .config_len = sizeof b->config,
        .ops = &blk_ops,
        .dev = b,
    };
    rc = virtio_pci_init(&b->t, m, h, &cfg);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
    if (!b)
        return;
    virtio_pci_fini(&b->t);
    free(b);
}
