/*
 * The split virtqueue of virtio 1.x (specification §2.7), as a device
 * sees it. Everything in guest memory is the guest's: the three areas
 * (descriptor table, driver area "avail", device area "used") and the
 * buffers the descriptors name are reached only through vxi_dma_ptr(), at
 * the moment of use, so a guest that moves or unmaps them gets an error,
 * never a host pointer outside its RAM.
 *
 * A queue is broken (and stays so until reset) at the first thing a
 * conforming driver cannot do: an area outside RAM or misaligned, a size
 * that is not a power of two up to the maximum, an avail idx more than the
 * queue size ahead of the device, a descriptor index out of range, a chain
 * longer than the queue size (which is how a loop shows), a bad indirect
 * table (nested, length not a non-zero multiple of 16, more entries than
 * the queue size, outside RAM, or used without VIRTIO_F_INDIRECT_DESC), a
 * buffer outside RAM, or a device-readable buffer after a device-writable
 * one. A broken queue pops and pushes nothing; the transport turns it
 * into DEVICE_NEEDS_RESET (virtio_pci.c). q->error says why.
 *
 * The work a guest can cause is bounded: a chain walk reads at most
 * queue-size + 1 descriptors, and devices serve at most queue-size chains
 * per notification.
 *
 * Under kvm the driver runs on other vCPUs while the device works, so
 * ring indices are read once into locals and the fences the specification
 * asks for separate ring entries from indices.
 *
 * Not thread-safe: the board serialises calls (its lock).
 */
#ifndef VX_DEVICES_VIRTIO_H
#define VX_DEVICES_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvx/vx.h>

/* Feature bits that are not device-specific. */
enum {
    VIRTIO_F_INDIRECT_DESC = 28,
    VIRTIO_F_EVENT_IDX = 29,
    VIRTIO_F_VERSION_1 = 32,
};
#define VIRTIO_BIT(b) (1ull << (b))

/* device_status */
enum {
    VIRTIO_STATUS_ACKNOWLEDGE = 1,
    VIRTIO_STATUS_DRIVER = 2,
    VIRTIO_STATUS_DRIVER_OK = 4,
    VIRTIO_STATUS_FEATURES_OK = 8,
    VIRTIO_STATUS_NEEDS_RESET = 64,
    VIRTIO_STATUS_FAILED = 128,
};

/* Device types (the PCI device id is 0x1040 + type). */
enum {
    VIRTIO_ID_NET = 1,
    VIRTIO_ID_BLOCK = 2,
    VIRTIO_ID_CONSOLE = 3,
};

/* The ring formats. */
enum {
    VIRTQ_DESC_F_NEXT = 1,
    VIRTQ_DESC_F_WRITE = 2,
    VIRTQ_DESC_F_INDIRECT = 4,
    VIRTQ_AVAIL_F_NO_INTERRUPT = 1,
    VIRTQ_USED_F_NO_NOTIFY = 1,

    VIRTQ_DESC_SIZE = 16,  /* le64 addr, le32 len, le16 flags, le16 next */
    VIRTQ_USED_ELEM_SIZE = 8, /* le32 id, le32 len */

    /* The largest queue any device here offers; a chain never has more
     * segments than this. */
    VIRTQ_MAX_SIZE = 256,
};

/* A queue's state as the driver programmed it and the device advanced it:
 * what a snapshot saves. Indices are free-running 16-bit counters. */
struct virtq_state {
    uint64_t desc, driver, device; /* guest-physical addresses of the areas */
    uint16_t size;       /* queue_size as written (checked on enable) */
    uint16_t max_size;   /* what the device offers, a power of two */
    uint16_t last_avail; /* the next avail ring entry the device takes */
    uint16_t used_idx;   /* the used ring's idx as the device last wrote it */
    uint8_t enabled;
    uint8_t broken;      /* a guest error stopped the queue until reset */
    uint8_t indirect;    /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint8_t unsignalled; /* used entries added since the last interrupt decision */
};

struct virtq {
    struct virtq_state s;
    vx_machine *m;
    const char *error; /* why the queue broke; NULL while it is not */
};

/* One buffer of a chain: host pointer into guest RAM (good during the
 * call that filled it), the guest-physical address, the length. */
struct virtq_seg {
    uint8_t *host;
    uint64_t gpa;
    uint32_t len;
};

/* A descriptor chain, flattened: the first `readable` segments are
 * device-readable, the rest device-writable. Zero-length descriptors
 * are dropped. */
struct virtq_chain {
    uint16_t head;
    unsigned count, readable;
    uint64_t read_len, write_len;
    struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

/* A fresh queue (reset) that offers `max_size` entries (a power of two,
 * at most VIRTQ_MAX_SIZE). */
void virtq_init(struct virtq *q, vx_machine *m, uint16_t max_size);

/* Back to the state after device reset: disabled, size = max_size,
 * addresses and indices zero, not broken. */
void virtq_reset(struct virtq *q);

/* The driver wrote queue_enable = 1: check size and areas (alignment 16,
 * 2 and 4; inside RAM). Returns 0, or -1 with the queue broken. */
int virtq_enable(struct virtq *q, bool indirect);

/* Enabled and not broken. */
bool virtq_ready(const struct virtq *q);

/* Take the next available chain: 1 and *c filled, 0 when the ring is
 * empty (or the queue is not ready), -1 when the guest broke the queue
 * (the entry is not consumed). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Return chain `head` with `len` bytes written into it. 0, or -1 when the
 * used ring is no longer in RAM (the queue breaks). */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Should the driver be interrupted for what was pushed since the last
 * call? False when nothing was pushed or the driver set
 * VIRTQ_AVAIL_F_NO_INTERRUPT. Consumes the pending state. */
bool virtq_take_interrupt(struct virtq *q);

/* A device found the chain it popped unusable (e.g. a virtio-blk request
 * with no byte for its status): break the queue, as for a malformed ring. */
void virtq_break(struct virtq *q, const char *why);

/* Copy from the chain's readable bytes at `offset` (counted over the
 * readable segments) into dst; returns how many were there (<= len). */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *dst, size_t len);

/* Copy src into the chain's writable bytes at `offset` (counted over the
 * writable segments); returns how many fitted. Tells the accelerator. */
size_t virtq_chain_write(const struct virtq *q, const struct virtq_chain *c, uint64_t offset,
                         const void *src, size_t len);

/* Sizes of the areas for a queue of `size` entries (without
 * VIRTIO_F_EVENT_IDX the last field of avail and used is still counted,
 * as the specification's table does). */
static inline uint64_t virtq_desc_bytes(unsigned size)
{
    return (uint64_t)VIRTQ_DESC_SIZE * size;
}
static inline uint64_t virtq_avail_bytes(unsigned size)
{
    return 6 + 2ull * size;
}
static inline uint64_t virtq_used_bytes(unsigned size)
{
    return 6 + (uint64_t)VIRTQ_USED_ELEM_SIZE * size;
}

#endif
