/* The split virtqueue (virtio 1.x §2.7), from the device side. */
#include "config.h"

#include <endian.h>
#include <string.h>

#include "core/machine.h"
#include "devices/virtio.h"

/*
 * Guest RAM is mapped page-aligned at page-aligned addresses, so the
 * alignment checked on the guest-physical address holds for the host
 * pointer too and the ring indices can be read and written as whole
 * 16-bit words, as the driver on another vCPU expects.
 */
static uint16_t load16(const uint8_t *p)
{
    return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED));
}

static void store16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static void store32(uint8_t *p, uint32_t v)
{
    __atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

/* One copy: whatever the driver writes meanwhile, the checks below and
 * the use afterwards see the same values. */
static struct desc load_desc(const uint8_t *table, unsigned i)
{
    uint8_t raw[VIRTQ_DESC_SIZE];
    struct desc d;
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    memcpy(raw, table + (size_t)i * VIRTQ_DESC_SIZE, sizeof raw);
    memcpy(&addr, raw, 8);
    memcpy(&len, raw + 8, 4);
    memcpy(&flags, raw + 12, 2);
    memcpy(&next, raw + 14, 2);
    d.addr = le64toh(addr);
    d.len = le32toh(len);
    d.flags = le16toh(flags);
    d.next = le16toh(next);
    return d;
}

static int fail(struct virtq *q, const char *why)
{
    q->s.broken = 1;
    if (!q->error)
        q->error = why;
    return -1;
}

void virtq_break(struct virtq *q, const char *why)
{
    fail(q, why);
}

void virtq_reset(struct virtq *q)
{
    uint16_t max = q->s.max_size;
    memset(&q->s, 0, sizeof q->s);
    q->s.max_size = max;
    q->s.size = max;
    q->error = NULL;
}

void virtq_init(struct virtq *q, vx_machine *m, uint16_t max_size)
{
    memset(q, 0, sizeof *q);
    q->m = m;
    q->s.max_size = max_size;
    virtq_reset(q);
}

bool virtq_ready(const struct virtq *q)
{
    return q->s.enabled && !q->s.broken;
}

static bool size_ok(const struct virtq *q)
{
    unsigned n = q->s.size;
    return n && n <= q->s.max_size && n <= VIRTQ_MAX_SIZE && !(n & (n - 1));
}

int virtq_enable(struct virtq *q, bool indirect)
{
    if (q->s.broken)
        return -1;
    if (!size_ok(q))
        return fail(q, "queue size is not a power of two up to the maximum");
    if (q->s.desc % 16 || q->s.driver % 2 || q->s.device % 4)
        return fail(q, "ring area misaligned (descriptors 16, driver 2, device 4)");
    if (!vxi_dma_ptr(q->m, q->s.desc, virtq_desc_bytes(q->s.size), VX_MEM_READ) ||
        !vxi_dma_ptr(q->m, q->s.driver, virtq_avail_bytes(q->s.size), VX_MEM_READ) ||
        !vxi_dma_ptr(q->m, q->s.device, virtq_used_bytes(q->s.size), VX_MEM_WRITE))
        return fail(q, "ring area outside RAM");
    q->s.indirect = indirect;
    q->s.enabled = 1;
    return 0;
}

/* Add the buffer of descriptor d to the chain. */
static int add_segment(struct virtq *q, struct virtq_chain *c, const struct desc *d)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    if (d->len == 0)
        return 0;
    uint8_t *host = vxi_dma_ptr(q->m, d->addr, d->len, writable ? VX_MEM_WRITE : VX_MEM_READ);
    if (!host)
        return fail(q, "buffer outside RAM");
    /* walk() counts buffers against the queue size first, which keeps
     * count within the array. */
    c->seg[c->count++] = (struct virtq_seg){ host, d->addr, d->len };
    if (writable) {
        c->write_len += d->len;
    } else {
        c->readable++;
        c->read_len += d->len;
    }
    return 0;
}

/* Follow the chain from `head`. Every buffer descriptor counts towards
 * the queue-size limit; the one indirect descriptor a chain may end with
 * does not, so a driver can put a full queue's worth into its table. */
static int walk(struct virtq *q, const uint8_t *table, uint16_t head, struct virtq_chain *c)
{
    unsigned table_n = q->s.size, buffers = 0, i = head;
    bool in_indirect = false;
    bool wrote = false;
    c->head = head;
    c->count = c->readable = 0;
    c->read_len = c->write_len = 0;
    if (head >= table_n)
        return fail(q, "descriptor index out of range");
    for (;;) {
        struct desc d = load_desc(table, i);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!q->s.indirect)
                return fail(q, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
            if (in_indirect)
                return fail(q, "nested indirect descriptor");
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return fail(q, "indirect descriptor with NEXT set");
            if (d.len == 0 || d.len % VIRTQ_DESC_SIZE)
                return fail(q, "indirect table length is not a non-zero multiple of 16");
            if (d.len / VIRTQ_DESC_SIZE > q->s.size)
                return fail(q, "indirect table longer than the queue size");
            table = vxi_dma_ptr(q->m, d.addr, d.len, VX_MEM_READ);
            if (!table)
                return fail(q, "indirect table outside RAM");
            table_n = d.len / VIRTQ_DESC_SIZE;
            in_indirect = true;
            i = 0;
            continue;
        }
        if (buffers++ == q->s.size)
            return fail(q, "descriptor chain longer than the queue size (a loop?)");
        if (d.flags & VIRTQ_DESC_F_WRITE)
            wrote = true;
        else if (wrote)
            return fail(q, "device-readable buffer after a device-writable one");
        if (add_segment(q, c, &d))
            return -1;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        i = d.next;
        if (i >= table_n)
            return fail(q, "descriptor next index out of range");
    }
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
    if (!virtq_ready(q))
        return q->s.broken ? -1 : 0;
    unsigned size = q->s.size;
    const uint8_t *avail = vxi_dma_ptr(q->m, q->s.driver, virtq_avail_bytes(size), VX_MEM_READ);
    const uint8_t *table = vxi_dma_ptr(q->m, q->s.desc, virtq_desc_bytes(size), VX_MEM_READ);
    if (!avail || !table)
        return fail(q, "ring area outside RAM");
    uint16_t idx = load16(avail + 2);
    uint16_t pending = (uint16_t)(idx - q->s.last_avail);
    if (pending > size)
        return fail(q, "avail idx moved more than the queue size ahead");
    if (!pending)
        return 0;
    /* The ring entry is read only after the idx that published it. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint16_t head = load16(avail + 4 + 2 * (q->s.last_avail % size));
    if (walk(q, table, head, c))
        return -1;
    q->s.last_avail++;
    return 1;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    if (!virtq_ready(q))
        return -1;
    unsigned size = q->s.size;
    uint8_t *used = vxi_dma_ptr(q->m, q->s.device, virtq_used_bytes(size), VX_MEM_WRITE);
    if (!used)
        return fail(q, "ring area outside RAM");
    unsigned slot = q->s.used_idx % size;
    uint8_t *elem = used + 4 + (size_t)VIRTQ_USED_ELEM_SIZE * slot;
    store32(elem, head);
    store32(elem + 4, len);
    /* The element is visible before the idx that publishes it. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->s.used_idx++;
    store16(used + 2, q->s.used_idx);
    vxi_memory_written(q->m, q->s.device + 4 + (uint64_t)VIRTQ_USED_ELEM_SIZE * slot,
                       VIRTQ_USED_ELEM_SIZE);
    vxi_memory_written(q->m, q->s.device + 2, 2);
    q->s.unsignalled = 1;
    return 0;
}

bool virtq_take_interrupt(struct virtq *q)
{
    if (!q->s.unsignalled)
        return false;
    q->s.unsignalled = 0;
    /* The used idx store must be visible before the flag is read, or a
     * driver that just cleared NO_INTERRUPT and checks the ring could
     * miss both the entry and the interrupt. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    const uint8_t *avail =
        vxi_dma_ptr(q->m, q->s.driver, virtq_avail_bytes(q->s.size), VX_MEM_READ);
    if (!avail)
        return true;
    return !(load16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copy between buf and the chain's segments [first, last), starting
 * `offset` bytes into them; returns how many bytes were copied. */
static size_t chain_copy(const struct virtq *q, const struct virtq_chain *c, unsigned first,
                         unsigned last, uint64_t offset, uint8_t *buf, size_t len, bool to_guest)
{
    size_t done = 0;
    for (unsigned k = first; k < last && done < len; k++) {
        const struct virtq_seg *s = &c->seg[k];
        if (offset >= s->len) {
            offset -= s->len;
            continue;
        }
        size_t n = s->len - offset;
        if (n > len - done)
            n = len - done;
        if (to_guest) {
            memcpy(s->host + offset, buf + done, n);
            vxi_memory_written(q->m, s->gpa + offset, n);
        } else {
            memcpy(buf + done, s->host + offset, n);
        }
        done += n;
        offset = 0;
    }
    return done;
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *dst, size_t len)
{
    return chain_copy(NULL, c, 0, c->readable, offset, dst, len, false);
}

size_t virtq_chain_write(const struct virtq *q, const struct virtq_chain *c, uint64_t offset,
                         const void *src, size_t len)
{
    return chain_copy(q, c, c->readable, c->count, offset, (uint8_t *)(uintptr_t)src, len, true);
}
