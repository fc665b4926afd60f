/*
 * Fuzz target: the virtio devices (virtqueue, modern PCI transport,
 * virtio-blk over a memfd, virtio-console) driven by a hostile driver.
 *
 * Input: byte 0 picks the device (bit 0: console, else blk; bit 1: a
 * read-only disk; bit 2: start with the driver's setup done, op 6 with
 * all features). The rest is a list of operations:
 *
 *   0 off16 n8 bytes[n]    store bytes in guest RAM (64 KiB) at off
 *   1 off16 w8 value64     BAR write, width 1 << (w & 3)
 *   2 off16 w8             BAR read
 *   3 q8                   notify queue q & 3
 *   4 n8 bytes[n]          host console input (console only)
 *   5 off8 w8 value32      PCI configuration write
 *   6 feat8 sizes8[nq]     driver setup: negotiate (feat bit 0: indirect),
 *                          queue q of size 1 << (sizes[q] % 9) (0xff: the
 *                          size the device offers) at
 *                          0x1000 + 0x3000 q (desc, +0x1000 avail,
 *                          +0x2000 used), DRIVER_OK
 *   7                      device reset (as a board reset)
 *
 * Multi-byte fields are little-endian; a truncated operation ends the
 * input. Whatever the bytes: no crash, no hang, no access outside guest
 * RAM (ASan), and the device's invariants hold: ISR has only bits 0-1,
 * INTx follows ISR, a queue that is not broken has returned every chain
 * it took.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libvx/vx.h>

#include "devices/pci.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_pci.h"

#define RAM_SIZE 0x10000u
#define ROM_GPA 0x20000u
#define WIN_BASE 0xe0000000ull
#define DISK_BYTES (64u * 512u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    const uint8_t *p;
    size_t left;
};

static bool take(struct input *in, void *dst, size_t n)
{
    if (in->left < n)
        return false;
    memcpy(dst, in->p, n);
    in->p += n;
    in->left -= n;
    return true;
}

static bool take_le(struct input *in, unsigned n, uint64_t *v)
{
    uint8_t b[8];
    if (!take(in, b, n))
        return false;
    *v = 0;
    for (unsigned i = 0; i < n; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return true;
}

static void no_irq(void *ctx, unsigned line, int level)
{
    (void)ctx;
    (void)line;
    (void)level;
}

static volatile uint8_t out_sum;

static void console_out(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + buf[i]); /* reads every byte: ASan checks the range */
    out_sum = (uint8_t)(out_sum + s);
}

static int disk_fd(void)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("vx-fuzz-virtio-blk", 0);
        if (fd < 0)
            abort();
    }
    static uint8_t pattern[DISK_BYTES];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 7 + (i >> 9));
    if (ftruncate(fd, DISK_BYTES) || pwrite(fd, pattern, sizeof pattern, 0) != DISK_BYTES)
        abort();
    return fd;
}

static void bar_write(struct pci_host *h, struct virtio_pci *t, uint64_t off, unsigned len,
                      uint64_t v)
{
    if (pci_host_mmio_ops.write(h, pci_bar_address(&t->pci, VIRTIO_PCI_BAR) + off, len, v))
        abort();
}

static void bar_read(struct pci_host *h, struct virtio_pci *t, uint64_t off, unsigned len)
{
    uint64_t v;
    if (pci_host_mmio_ops.read(h, pci_bar_address(&t->pci, VIRTIO_PCI_BAR) + off, len, &v))
        abort();
}

static bool driver_setup(struct pci_host *h, struct virtio_pci *t, struct input *in)
{
    uint64_t feat;
    if (!take_le(in, 1, &feat))
        return false;
    uint64_t f = t->cfg.features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if (!(feat & 1))
        f &= ~VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    bar_write(h, t, VIRTIO_PCI_COMMON_STATUS, 1, 0);
    bar_write(h, t, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    for (unsigned half = 0; half < 2; half++) {
        bar_write(h, t, VIRTIO_PCI_COMMON_GFSELECT, 4, half);
        bar_write(h, t, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> (32 * half)));
    }
    bar_write(h, t, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE |
              VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < t->cfg.num_queues; q++) {
        uint64_t sz;
        if (!take_le(in, 1, &sz))
            return false;
        uint64_t base = 0x1000 + 0x3000ull * q;
        bar_write(h, t, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
        if (sz != 0xff)
            bar_write(h, t, VIRTIO_PCI_COMMON_Q_SIZE, 2, 1u << (sz % 9));
        bar_write(h, t, VIRTIO_PCI_COMMON_Q_DESCLO, 4, base);
        bar_write(h, t, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, base + 0x1000);
        bar_write(h, t, VIRTIO_PCI_COMMON_Q_USEDLO, 4, base + 0x2000);
        bar_write(h, t, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    }
    bar_write(h, t, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE |
              VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    return true;
}

static void check_invariants(const struct virtio_pci *t)
{
    if (t->s.isr & ~3u)
        abort();
    if ((t->pci.irq_level != 0) != (t->s.isr != 0))
        abort();
    for (unsigned q = 0; q < t->cfg.num_queues; q++) {
        const struct virtq *vq = &t->vq[q];
        if (vq->s.broken ? !vq->error : vq->s.used_idx != vq->s.last_avail)
            abort();
        if (vq->s.enabled && !vq->s.broken &&
            (!vq->s.size || vq->s.size > vq->s.max_size || (vq->s.size & (vq->s.size - 1))))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    vx_machine_opts o = { .size = sizeof o, .accel = VX_ACCEL_TCG };
    vx_machine *m;
    if (vx_machine_create(&o, &m))
        abort();
    if (vx_memory_map(m, 0, RAM_SIZE, NULL, VX_MEM_RWX) ||
        vx_memory_map(m, ROM_GPA, 0x1000, NULL, VX_MEM_READ))
        abort();
    struct pci_host h;
    pci_host_init(&h, &(struct pci_host_config){
        .mmio_base = WIN_BASE, .mmio_size = 0x100000, .io_base = 0xc000, .io_size = 0x100,
        .irq_map = { 10, 11, 5, 9 }, .set_irq = no_irq });
    struct virtio_blk *blk = NULL;
    struct virtio_console *con = NULL;
    struct virtio_pci *t;
    if (data[0] & 1) {
        if (virtio_console_create(m, &h, console_out, NULL, &con))
            abort();
        t = &con->t;
    } else {
        if (virtio_blk_create(m, &h, disk_fd(), data[0] & 2, "fuzz", &blk))
            abort();
        t = &blk->t;
    }
    pci_config_write(&t->pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    struct input in = { data + 1, size - 1 };
    static const uint8_t all[] = { 1, 0xff, 0xff, 0xff, 0xff };
    if (data[0] & 4)
        driver_setup(&h, t, &(struct input){ all, sizeof all });
    for (;;) {
        uint64_t op, a, b, v;
        uint8_t buf[256];
        if (!take_le(&in, 1, &op))
            break;
        bool ok = true;
        switch (op % 8) {
        case 0:
            ok = take_le(&in, 2, &a) && take_le(&in, 1, &b) && take(&in, buf, b);
            if (ok)
                vx_memory_write(m, a, buf, a + b <= RAM_SIZE ? b : RAM_SIZE - a);
            break;
        case 1:
            ok = take_le(&in, 2, &a) && take_le(&in, 1, &b) && take_le(&in, 8, &v);
            if (ok)
                bar_write(&h, t, a & (VIRTIO_PCI_BAR_SIZE - 1), 1u << (b & 3), v);
            break;
        case 2:
            ok = take_le(&in, 2, &a) && take_le(&in, 1, &b);
            if (ok)
                bar_read(&h, t, a & (VIRTIO_PCI_BAR_SIZE - 1), 1u << (b & 3));
            break;
        case 3:
            ok = take_le(&in, 1, &a);
            if (ok)
                bar_write(&h, t, VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULTIPLIER * (a & 3), 2,
                          a & 3);
            break;
        case 4:
            ok = take_le(&in, 1, &b) && take(&in, buf, b);
            if (ok && con && virtio_console_input(con, buf, b) > b)
                abort();
            break;
        case 5:
            ok = take_le(&in, 1, &a) && take_le(&in, 1, &b) && take_le(&in, 4, &v);
            if (ok) {
                unsigned len = 1u << (b % 3);
                pci_config_write(&t->pci, (unsigned)a & ~(len - 1), len, (uint32_t)v);
            }
            break;
        case 6:
            ok = driver_setup(&h, t, &in);
            break;
        default:
            virtio_pci_reset(t);
            break;
        }
        if (!ok)
            break;
        check_invariants(t);
    }
    virtio_blk_destroy(blk);
    virtio_console_destroy(con);
    vx_machine_destroy(m);
    return 0;
}
