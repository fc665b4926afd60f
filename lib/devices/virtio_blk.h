/*
 * virtio-blk (virtio 1.x §5.2) over a host file descriptor, on the modern
 * PCI transport (virtio_pci.h): one request queue of 256 entries.
 *
 * The disk is the fd's contents in 512-byte sectors (a regular file's
 * size, or a block device's through BLKGETSIZE64; a partial last sector
 * is not part of the disk). Requests are served synchronously on the
 * thread that notifies (the vCPU's), with pread/pwrite at the request's
 * offset, so the fd's file position is never used or moved. At most the
 * queue's size in requests per notification: a guest that keeps the
 * ring full cannot hold the thread (it notifies again for more).
 *
 * Offered: VIRTIO_BLK_F_SEG_MAX (254), VIRTIO_BLK_F_BLK_SIZE (512),
 * VIRTIO_BLK_F_FLUSH (fdatasync; a driver that does not accept it gets
 * write-through: every write is synced before it completes),
 * VIRTIO_BLK_F_RO on a read-only disk, VIRTIO_F_INDIRECT_DESC and
 * VIRTIO_F_VERSION_1. Requests: IN, OUT, FLUSH, GET_ID (the serial, up
 * to 20 bytes, NUL-padded); any other type completes VIRTIO_BLK_S_UNSUPP.
 *
 * Errors a request completes with VIRTIO_BLK_S_IOERR, without touching
 * the file: a header shorter than 16 bytes, a data length that is not a
 * multiple of 512, sectors beyond the capacity, OUT on a read-only disk;
 * and a host I/O error or a file that shrank. A chain without a
 * device-writable byte for the status cannot be completed: like every
 * malformed chain (virtio.h) it sets DEVICE_NEEDS_RESET.
 *
 * Not thread-safe: the board serialises calls (its lock).
 */
#ifndef VX_DEVICES_VIRTIO_BLK_H
#define VX_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include <libvx/vx.h>

#include "devices/pci.h"
#include "devices/virtio_pci.h"

enum {
    VIRTIO_BLK_F_SIZE_MAX = 1,
    VIRTIO_BLK_F_SEG_MAX = 2,
    VIRTIO_BLK_F_GEOMETRY = 4,
    VIRTIO_BLK_F_RO = 5,
    VIRTIO_BLK_F_BLK_SIZE = 6,
    VIRTIO_BLK_F_FLUSH = 9,

    VIRTIO_BLK_T_IN = 0,
    VIRTIO_BLK_T_OUT = 1,
    VIRTIO_BLK_T_FLUSH = 4,
    VIRTIO_BLK_T_GET_ID = 8,

    VIRTIO_BLK_S_OK = 0,
    VIRTIO_BLK_S_IOERR = 1,
    VIRTIO_BLK_S_UNSUPP = 2,

    VIRTIO_BLK_SECTOR = 512,
    VIRTIO_BLK_ID_BYTES = 20,
    VIRTIO_BLK_QUEUE_SIZE = 256,
    VIRTIO_BLK_SEG_MAX = VIRTIO_BLK_QUEUE_SIZE - 2, /* a request's header and status */
    VIRTIO_BLK_CONFIG_SIZE = 60, /* struct virtio_blk_config up to write_zeroes */

    /* Offsets in the device configuration. */
    VIRTIO_BLK_CFG_CAPACITY = 0,
    VIRTIO_BLK_CFG_SEG_MAX = 12,
    VIRTIO_BLK_CFG_BLK_SIZE = 20,
};

struct virtio_blk {
    struct virtio_pci t;   /* its state, the queue's and the PCI function's */
    int fd;                /* the caller's */
    bool readonly;
    uint64_t capacity;     /* in 512-byte sectors */
    char serial[VIRTIO_BLK_ID_BYTES];
    uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
    struct virtq_chain chain; /* the request being served */
};

/* A virtio-blk function on host h over fd (kept open by the caller until
 * virtio_blk_destroy). `readonly` offers VIRTIO_BLK_F_RO and refuses
 * writes; an fd opened O_RDONLY is read-only whatever it says. `serial`
 * (may be NULL: "libvx-blk0") is GET_ID's answer, cut to 20 bytes.
 * Errors: VX_EINVAL (NULL argument, fd neither a regular file nor a block
 * device), VX_EIO (fstat or ioctl failed), VX_ENOMEM, VX_ERANGE (no room
 * on the host). */
int virtio_blk_create(vx_machine *m, struct pci_host *h, int fd, bool readonly,
                      const char *serial, struct virtio_blk **out);

/* Take the function off its host and free it (NULL is accepted). The fd
 * stays open. */
void virtio_blk_destroy(struct virtio_blk *b);

/* Device reset, as a board reset does it. */
void virtio_blk_reset(struct virtio_blk *b);

#endif
