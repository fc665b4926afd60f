/*
 * The virtio devices (lib/devices/virtio*.c) driven as a driver drives
 * them: PCI configuration cycles and BAR accesses through the host
 * bridge, rings and buffers in the guest RAM of a tcg machine. Beside
 * the requests of virtio 1.x (feature negotiation, queues, virtio-blk
 * over a temporary file, virtio-console), every malformed ring or chain a
 * guest can build must give the documented state (DEVICE_NEEDS_RESET and
 * the configuration interrupt, or a virtio-blk error status) and touch
 * nothing else: run this under ASan and valgrind too.
 */
#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvx/vx.h>

#include "devices/pci.h"
#include "devices/virtio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_pci.h"

#define RAM_SIZE 0x100000ull
#define ROM_GPA 0x200000ull
#define ROM_SIZE 0x1000ull
#define WIN_BASE 0xe0000000ull
#define WIN_SIZE 0x1000000ull
#define DISK_SECTORS 64u

/* Guest memory layout of the tests. */
#define RINGS 0x10000ull   /* queue q at RINGS + 0x4000 q: desc, +0x1000 avail, +0x2000 used */
#define INDIRECT 0x20000ull
#define HDR 0x30000ull
#define STATUS 0x30100ull
#define DATA 0x40000ull

/* ---- fixtures --------------------------------------------------------------- */

static vx_machine *m;
static struct pci_host host;
static int irq_level[16], irq_rises[16];
static int disk_fd = -1;
static char disk_path[] = "/tmp/check_virtio.XXXXXX";
static struct virtio_blk *blk;
static struct virtio_console *con;
static uint8_t con_out[8192];
static size_t con_out_len;
static unsigned con_out_calls;
static bool con_echo;

static void log_irq(void *ctx, unsigned line, int level)
{
    (void)ctx;
    ck_assert_uint_lt(line, 16);
    if (level && !irq_level[line])
        irq_rises[line]++;
    irq_level[line] = level;
}

static void console_sink(void *ctx, const uint8_t *buf, size_t len)
{
    ck_assert_ptr_eq(ctx, &con_out);
    ck_assert_uint_le(con_out_len + len, sizeof con_out);
    memcpy(con_out + con_out_len, buf, len);
    con_out_len += len;
    con_out_calls++;
    if (con_echo)
        virtio_console_input(con, buf, len);
}

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 7 + off / 512 + 1);
}

static void make_disk(void)
{
    strcpy(disk_path, "/tmp/check_virtio.XXXXXX");
    disk_fd = mkstemp(disk_path);
    ck_assert_int_ge(disk_fd, 0);
    unlink(disk_path);
    uint8_t buf[DISK_SECTORS * 512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = pattern(i);
    ck_assert_int_eq(pwrite(disk_fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
}

static void setup(void)
{
    memset(irq_level, 0, sizeof irq_level);
    memset(irq_rises, 0, sizeof irq_rises);
    con_out_len = 0;
    con_out_calls = 0;
    con_echo = false;
    vx_machine_opts o = { .size = sizeof o, .accel = VX_ACCEL_TCG };
    ck_assert_int_eq(vx_machine_create(&o, &m), 0);
    ck_assert_int_eq(vx_memory_map(m, 0, RAM_SIZE, NULL, VX_MEM_RWX), 0);
    ck_assert_int_eq(vx_memory_map(m, ROM_GPA, ROM_SIZE, NULL, VX_MEM_READ | VX_MEM_EXEC), 0);
    pci_host_init(&host, &(struct pci_host_config){
        .mmio_base = WIN_BASE, .mmio_size = WIN_SIZE, .io_base = 0xc000, .io_size = 0x1000,
        .irq_map = { 10, 11, 5, 9 }, .set_irq = log_irq });
    make_disk();
    ck_assert_int_eq(virtio_blk_create(m, &host, disk_fd, false, "test-serial-0123456789",
                                       &blk), 0);
    ck_assert_int_eq(virtio_console_create(m, &host, console_sink, &con_out, &con), 0);
}

static void teardown(void)
{
    virtio_blk_destroy(blk);
    virtio_console_destroy(con);
    blk = NULL;
    con = NULL;
    close(disk_fd);
    disk_fd = -1;
    vx_machine_destroy(m);
    m = NULL;
}

/* ---- guest memory ------------------------------------------------------------ */

static void poke(uint64_t gpa, const void *p, size_t n)
{
    ck_assert_int_eq(vx_memory_write(m, gpa, p, n), 0);
}

static void peek(uint64_t gpa, void *p, size_t n)
{
    ck_assert_int_eq(vx_memory_read(m, gpa, p, n), 0);
}

static void poke16(uint64_t gpa, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    poke(gpa, b, 2);
}

static uint16_t peek16(uint64_t gpa)
{
    uint8_t b[2];
    peek(gpa, b, 2);
    return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t peek32(uint64_t gpa)
{
    uint8_t b[4];
    peek(gpa, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void fill(uint64_t gpa, uint8_t v, size_t n)
{
    uint8_t buf[4096];
    memset(buf, v, sizeof buf);
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        poke(gpa, buf, k);
        gpa += k;
        n -= k;
    }
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    uint8_t d[16];
    for (int k = 0; k < 8; k++)
        d[k] = (uint8_t)(addr >> (8 * k));
    for (int k = 0; k < 4; k++)
        d[8 + k] = (uint8_t)(len >> (8 * k));
    d[12] = (uint8_t)flags;
    d[13] = (uint8_t)(flags >> 8);
    d[14] = (uint8_t)next;
    d[15] = (uint8_t)(next >> 8);
    poke(table + 16ull * i, d, sizeof d);
}

/* ---- a driver ---------------------------------------------------------------- */

struct dq {
    uint16_t size;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen, next_desc;
};

struct drv {
    struct virtio_pci *t;
    uint64_t bar;
    struct dq q[VIRTIO_PCI_MAX_QUEUES];
};

static uint64_t rd(struct drv *d, uint64_t off, unsigned len)
{
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_mmio_ops.read(&host, d->bar + off, len, &v), 0);
    return v;
}

static void wr(struct drv *d, uint64_t off, unsigned len, uint64_t v)
{
    ck_assert_int_eq(pci_host_mmio_ops.write(&host, d->bar + off, len, v), 0);
}

static uint8_t status(struct drv *d)
{
    return (uint8_t)rd(d, VIRTIO_PCI_COMMON_STATUS, 1);
}

static void set_status(struct drv *d, uint8_t s)
{
    wr(d, VIRTIO_PCI_COMMON_STATUS, 1, s);
}

static uint8_t isr(struct drv *d)
{
    return (uint8_t)rd(d, VIRTIO_PCI_ISR, 1);
}

static unsigned line(struct drv *d)
{
    return d->t->pci.config[PCI_INTERRUPT_LINE];
}

static void drv_open(struct drv *d, struct virtio_pci *t)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    pci_config_write(&t->pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    d->bar = pci_bar_address(&t->pci, VIRTIO_PCI_BAR);
    ck_assert_uint_ge(d->bar, WIN_BASE);
}

static uint64_t device_features(struct drv *d)
{
    wr(d, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    uint64_t f = rd(d, VIRTIO_PCI_COMMON_DF, 4);
    wr(d, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    return f | rd(d, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* Reset, ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; the status read back. */
static uint8_t negotiate(struct drv *d, uint64_t features)
{
    set_status(d, 0);
    ck_assert_uint_eq(status(d), 0);
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    wr(d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)features);
    wr(d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    wr(d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(features >> 32));
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return status(d);
}

static void queue_program(struct drv *d, unsigned q, uint16_t size, uint64_t desc,
                          uint64_t avail, uint64_t used)
{
    wr(d, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
    wr(d, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
    /* As Linux does it: each 64-bit address as two 32-bit halves. */
    wr(d, VIRTIO_PCI_COMMON_Q_DESCLO, 4, (uint32_t)desc);
    wr(d, VIRTIO_PCI_COMMON_Q_DESCHI, 4, (uint32_t)(desc >> 32));
    wr(d, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, (uint32_t)avail);
    wr(d, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, (uint32_t)(avail >> 32));
    wr(d, VIRTIO_PCI_COMMON_Q_USEDLO, 4, (uint32_t)used);
    wr(d, VIRTIO_PCI_COMMON_Q_USEDHI, 4, (uint32_t)(used >> 32));
    struct dq *x = &d->q[q];
    memset(x, 0, sizeof *x);
    x->size = size;
    x->desc = desc;
    x->avail = avail;
    x->used = used;
}

static void queue_setup(struct drv *d, unsigned q, uint16_t size)
{
    uint64_t base = RINGS + 0x4000ull * q;
    fill(base, 0, 0x3000);
    queue_program(d, q, size, base, base + 0x1000, base + 0x2000);
    wr(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    ck_assert_uint_eq(rd(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
}

static void driver_ok(struct drv *d)
{
    set_status(d, (uint8_t)(status(d) | VIRTIO_STATUS_DRIVER_OK));
}

static void start(struct drv *d, uint64_t features)
{
    uint8_t s = negotiate(d, features);
    ck_assert_uint_eq(s & VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_FEATURES_OK);
    unsigned n = (unsigned)rd(d, VIRTIO_PCI_COMMON_NUMQ, 2);
    for (unsigned q = 0; q < n; q++) {
        wr(d, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
        queue_setup(d, q, (uint16_t)rd(d, VIRTIO_PCI_COMMON_Q_SIZE, 2));
    }
    driver_ok(d);
    ck_assert_uint_eq(status(d), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

struct seg {
    uint64_t addr;
    uint32_t len;
    bool write;
};

/* Put a chain of n descriptors in the table and its head in the avail
 * ring (not notified). */
static uint16_t submit(struct drv *d, unsigned q, const struct seg *s, unsigned n)
{
    struct dq *x = &d->q[q];
    uint16_t head = x->next_desc;
    for (unsigned k = 0; k < n; k++) {
        uint16_t i = (uint16_t)((x->next_desc + k) % x->size);
        uint16_t next = (uint16_t)((i + 1) % x->size);
        uint16_t flags = (uint16_t)((s[k].write ? VIRTQ_DESC_F_WRITE : 0) |
                                    (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        put_desc(x->desc, i, s[k].addr, s[k].len, flags, next);
    }
    x->next_desc = (uint16_t)((x->next_desc + n) % x->size);
    poke16(x->avail + 4 + 2ull * (x->avail_idx % x->size), head);
    x->avail_idx++;
    poke16(x->avail + 2, x->avail_idx);
    return head;
}

static void kick(struct drv *d, unsigned q)
{
    wr(d, VIRTIO_PCI_NOTIFY + VIRTIO_PCI_NOTIFY_MULTIPLIER * q, 2, q);
}

static bool used_pop(struct drv *d, unsigned q, uint32_t *id, uint32_t *len)
{
    struct dq *x = &d->q[q];
    if (peek16(x->used + 2) == x->used_seen)
        return false;
    uint64_t e = x->used + 4 + 8ull * (x->used_seen % x->size);
    *id = peek32(e);
    *len = peek32(e + 4);
    x->used_seen++;
    return true;
}

/* ---- virtio-blk requests --------------------------------------------------- */

static void put_header(uint32_t type, uint64_t sector)
{
    uint8_t h[16] = { 0 };
    for (int k = 0; k < 4; k++)
        h[k] = (uint8_t)(type >> (8 * k));
    for (int k = 0; k < 8; k++)
        h[8 + k] = (uint8_t)(sector >> (8 * k));
    poke(HDR, h, sizeof h);
}

/* One request: header, optional data (device-writable for IN and
 * GET_ID), status; returns the status byte (-1: not completed). */
static int blk_request(struct drv *d, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                       uint32_t *used_len)
{
    put_header(type, sector);
    poke(STATUS, (uint8_t[]){ 0xee }, 1);
    bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    struct seg s[3] = { { HDR, 16, false }, { data, len, in }, { STATUS, 1, true } };
    struct seg s2[2] = { { HDR, 16, false }, { STATUS, 1, true } };
    uint16_t head = len ? submit(d, 0, s, 3) : submit(d, 0, s2, 2);
    kick(d, 0);
    uint32_t id, ulen;
    if (!used_pop(d, 0, &id, &ulen))
        return -1;
    ck_assert_uint_eq(id, head);
    if (used_len)
        *used_len = ulen;
    uint8_t st;
    peek(STATUS, &st, 1);
    return st;
}

static const uint64_t blk_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                     VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                                     VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                                     VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                                     VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);

static void blk_start(struct drv *d)
{
    drv_open(d, &blk->t);
    start(d, blk_features);
}

/* The device refused the guest's rings or chain: NEEDS_RESET, the
 * configuration interrupt, and no used entry. */
static void assert_needs_reset(struct drv *d, unsigned q)
{
    ck_assert_uint_eq(status(d) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
    ck_assert_int_eq(irq_level[line(d)], 1);
    ck_assert_uint_eq(isr(d), VIRTIO_PCI_ISR_CONFIG);
    ck_assert_int_eq(irq_level[line(d)], 0);
    ck_assert_uint_eq(peek16(d->q[q].used + 2), 0);
}

/* ---- transport ---------------------------------------------------------------- */

START_TEST(pci_identity_and_capabilities)
{
    struct pci_device *p = &blk->t.pci;
    ck_assert_uint_eq(pci_config_read(p, PCI_VENDOR_ID, 4), 0x1af4u | 0x1042u << 16);
    ck_assert_uint_eq(pci_config_read(p, PCI_REVISION_ID, 1), 1);
    ck_assert_uint_eq(pci_config_read(p, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x1af4u | 2u << 16);
    ck_assert_uint_eq(pci_config_read(p, PCI_INTERRUPT_PIN, 1), 1);
    ck_assert_uint_eq(pci_config_read(&con->t.pci, PCI_VENDOR_ID, 4), 0x1af4u | 0x1043u << 16);
    ck_assert_uint_eq(pci_config_read(&con->t.pci, PCI_SUBSYSTEM_ID, 2), 3);
    /* BAR 0: 32-bit memory, 16 KiB by sizing. */
    uint32_t bar = pci_config_read(p, PCI_BAR0, 4);
    ck_assert_uint_eq(bar & 0xf, 0);
    pci_config_write(p, PCI_BAR0, 4, 0xffffffff);
    ck_assert_uint_eq(pci_config_read(p, PCI_BAR0, 4), 0xffffc000u);
    pci_config_write(p, PCI_BAR0, 4, bar);
    for (unsigned b = 1; b < PCI_BARS; b++)
        ck_assert_uint_eq(pci_config_read(p, PCI_BAR0 + 4 * b, 4), 0);
    ck_assert_uint_ne(pci_config_read(p, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    /* The vendor capabilities, each type once, pointing into BAR 0. */
    unsigned seen = 0, n = 0;
    for (unsigned c = pci_config_read(p, PCI_CAPABILITY_LIST, 1); c; c = pci_config_read(p, c + 1, 1)) {
        ck_assert_uint_lt(++n, 16);
        ck_assert_uint_eq(pci_config_read(p, c, 1), PCI_CAP_ID_VNDR);
        unsigned len = pci_config_read(p, c + 2, 1), type = pci_config_read(p, c + 3, 1);
        unsigned barno = pci_config_read(p, c + 4, 1);
        uint32_t off = pci_config_read(p, c + 8, 4), length = pci_config_read(p, c + 12, 4);
        ck_assert_uint_eq(barno, 0);
        seen |= 1u << type;
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
            ck_assert_uint_eq(len, 16);
            ck_assert_uint_eq(off, VIRTIO_PCI_COMMON);
            ck_assert_uint_ge(length, 0x38);
            break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            ck_assert_uint_eq(len, 20);
            ck_assert_uint_eq(off, VIRTIO_PCI_NOTIFY);
            ck_assert_uint_eq(pci_config_read(p, c + 16, 4), VIRTIO_PCI_NOTIFY_MULTIPLIER);
            ck_assert_uint_ge(length, 2);
            break;
        case VIRTIO_PCI_CAP_ISR_CFG:
            ck_assert_uint_eq(off, VIRTIO_PCI_ISR);
            ck_assert_uint_ge(length, 1);
            break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
            ck_assert_uint_eq(off, VIRTIO_PCI_DEVICE_CFG);
            ck_assert_uint_eq(length, VIRTIO_BLK_CONFIG_SIZE);
            break;
        case VIRTIO_PCI_CAP_PCI_CFG:
            ck_assert_uint_eq(len, 20);
            break;
        default:
            ck_abort_msg("unexpected cfg_type %u", type);
        }
        ck_assert_uint_le((uint64_t)off + length, VIRTIO_PCI_BAR_SIZE);
    }
    ck_assert_uint_eq(seen, 0x3e);
    /* No MSI-X capability: only vendor ones were listed. */
}
END_TEST

START_TEST(feature_negotiation)
{
    struct drv d;
    drv_open(&d, &blk->t);
    uint64_t f = device_features(&d);
    ck_assert_uint_eq(f, blk_features);
    wr(&d, VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_DF, 4), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_NUMQ, 2), 1);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
    wr(&d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_PCI_NO_VECTOR);

    /* Refused: without VERSION_1, or with a feature not offered. */
    ck_assert_uint_eq(negotiate(&d, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) &
                      VIRTIO_STATUS_FEATURES_OK, 0);
    ck_assert_uint_eq(negotiate(&d, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                    VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) &
                      VIRTIO_STATUS_FEATURES_OK, 0);
    ck_assert_uint_eq(negotiate(&d, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                    VIRTIO_BIT(VIRTIO_BLK_F_RO)) &
                      VIRTIO_STATUS_FEATURES_OK, 0);
    ck_assert_uint_eq(virtio_pci_features(&blk->t), 0);
    /* Kept: a subset with VERSION_1. */
    uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
    ck_assert_uint_eq(negotiate(&d, want), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                              VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(virtio_pci_features(&blk->t), want);
    /* Frozen after FEATURES_OK. */
    wr(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    wr(&d, VIRTIO_PCI_COMMON_GF, 4, 0xffffffff);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_GF, 4), (uint32_t)want);
    wr(&d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_GF, 4), 1);

    /* Queues: 256 offered, none past num_queues. */
    wr(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_NOFF, 2), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    wr(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
    wr(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
    wr(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

    /* Status 0 resets everything, at once. */
    wr(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    queue_setup(&d, 0, 64);
    set_status(&d, 0);
    ck_assert_uint_eq(status(&d), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_GF, 4), 0);
    ck_assert_uint_eq(virtio_pci_features(&blk->t), 0);
}
END_TEST

START_TEST(common_config_access_widths)
{
    struct drv d;
    drv_open(&d, &blk->t);
    negotiate(&d, blk_features);
    wr(&d, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
    /* Byte by byte, a whole 64-bit store, and two halves read as one. */
    for (unsigned k = 0; k < 8; k++)
        wr(&d, VIRTIO_PCI_COMMON_Q_DESCLO + k, 1, 0x10 + k);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x1716151413121110ull);
    wr(&d, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, 0x1122334455667788ull);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_AVAILLO, 4), 0x55667788u);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_AVAILHI, 4), 0x11223344u);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE, 1), 0);  /* low byte of 256 */
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE + 1, 1), 1);
    /* A 4-byte access over status, generation and queue_select. */
    uint64_t v = rd(&d, VIRTIO_PCI_COMMON_STATUS, 4);
    ck_assert_uint_eq(v & 0xff, status(&d));
    ck_assert_uint_eq(v >> 16, 0);
    /* Past the structure and the regions: zeros, writes ignored. */
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_LEN, 4), 0);
    ck_assert_uint_eq(rd(&d, 0x0800, 4), 0);
    wr(&d, 0x0800, 4, 0xffffffff);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_NOTIFY, 2), 0);
    /* An access that leaves the BAR belongs to nobody: all ones. */
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_BAR_SIZE - 2, 4), 0xffffffffu);
    /* The device configuration: capacity, seg_max, blk_size. */
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CFG_CAPACITY, 8), DISK_SECTORS);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CFG_CAPACITY, 4), DISK_SECTORS);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CFG_CAPACITY + 4, 4), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CFG_SEG_MAX, 4), 254);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG + VIRTIO_BLK_CONFIG_SIZE, 4), 0);
    wr(&d, VIRTIO_PCI_DEVICE_CFG, 8, 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG, 8), DISK_SECTORS);
    uint8_t gen = (uint8_t)rd(&d, VIRTIO_PCI_COMMON_CFGGENERATION, 1);
    wr(&d, VIRTIO_PCI_COMMON_CFGGENERATION, 1, gen + 1);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_CFGGENERATION, 1), gen);
    virtio_pci_config_changed(&blk->t);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_CFGGENERATION, 1), (uint8_t)(gen + 1));
}
END_TEST

START_TEST(pci_cfg_window)
{
    struct drv d;
    drv_open(&d, &blk->t);
    struct pci_device *p = &blk->t.pci;
    unsigned c = blk->t.pci_cfg_cap;
    ck_assert_uint_ne(c, 0);
    ck_assert_uint_eq(pci_config_read(p, c + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
    /* Read device_feature (select 1: VERSION_1) through configuration space. */
    wr(&d, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    pci_config_write(p, c + 4, 1, 0);
    pci_config_write(p, c + 12, 4, 4);
    pci_config_write(p, c + 8, 4, VIRTIO_PCI_COMMON_DF);
    ck_assert_uint_eq(pci_config_read(p, c + 16, 4), 1);
    /* Write device_status through it, read it back both ways. */
    pci_config_write(p, c + 12, 4, 1);
    pci_config_write(p, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
    pci_config_write(p, c + 16, 4, VIRTIO_STATUS_ACKNOWLEDGE);
    ck_assert_uint_eq(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    ck_assert_uint_eq(pci_config_read(p, c + 16, 1), VIRTIO_STATUS_ACKNOWLEDGE);
    /* Bad windows do nothing: misaligned, outside the BAR, odd length, other BAR. */
    pci_config_write(p, c + 12, 4, 4);
    pci_config_write(p, c + 8, 4, VIRTIO_PCI_COMMON_STATUS + 1);
    pci_config_write(p, c + 16, 4, 0);
    pci_config_write(p, c + 8, 4, 0xfffffffc);
    pci_config_write(p, c + 16, 4, 0);
    pci_config_write(p, c + 12, 4, 3);
    pci_config_write(p, c + 8, 4, VIRTIO_PCI_COMMON_STATUS);
    pci_config_write(p, c + 16, 4, 0);
    pci_config_write(p, c + 12, 4, 1);
    pci_config_write(p, c + 4, 1, 2);
    pci_config_write(p, c + 16, 4, 0);
    ck_assert_uint_eq(status(&d), VIRTIO_STATUS_ACKNOWLEDGE);
    /* The rest of the capability stays read-only. */
    pci_config_write(p, c, 4, 0);
    ck_assert_uint_eq(pci_config_read(p, c, 1), PCI_CAP_ID_VNDR);
    ck_assert_uint_eq(pci_config_read(p, c + 3, 1), VIRTIO_PCI_CAP_PCI_CFG);
}
END_TEST

/* ---- virtio-blk ------------------------------------------------------------- */

START_TEST(blk_read_pattern_and_interrupt)
{
    struct drv d;
    blk_start(&d);
    fill(DATA, 0xcc, 8192);
    uint32_t used;
    ck_assert_int_eq(irq_level[line(&d)], 0);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 5, DATA, 4096, &used), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 4097);
    uint8_t buf[4096];
    peek(DATA, buf, sizeof buf);
    for (unsigned i = 0; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], pattern(5 * 512 + i));
    peek(DATA + 4096, buf, 16);
    ck_assert_uint_eq(buf[0], 0xcc); /* not past the request */
    /* INTx high until ISR is read. */
    ck_assert_int_eq(irq_level[line(&d)], 1);
    ck_assert_uint_ne(blk->t.pci.config[PCI_STATUS] & PCI_STATUS_INTERRUPT, 0);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    ck_assert_int_eq(irq_level[line(&d)], 0);
    ck_assert_uint_eq(isr(&d), 0);
    /* The last sector, and a request in many small segments. */
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA, 512, NULL),
                     VIRTIO_BLK_S_OK);
    peek(DATA, buf, 512);
    for (unsigned i = 0; i < 512; i++)
        ck_assert_uint_eq(buf[i], pattern((DISK_SECTORS - 1) * 512 + i));
    struct seg s[10] = { { HDR, 4, false }, { HDR + 4, 12, false } };
    for (unsigned k = 0; k < 7; k++)
        s[2 + k] = (struct seg){ DATA + 0x1000 * k, k == 6 ? 512 * 7 - 6 * 300 : 300, true };
    s[9] = (struct seg){ STATUS, 1, true };
    put_header(VIRTIO_BLK_T_IN, 9);
    submit(&d, 0, s, 10);
    kick(&d, 0);
    uint32_t id, len;
    ck_assert(used_pop(&d, 0, &id, &len));
    ck_assert_uint_eq(len, 512 * 7 + 1);
    uint8_t st;
    peek(STATUS, &st, 1);
    ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
    uint64_t off = 9 * 512;
    for (unsigned k = 0; k < 7; k++) {
        peek(s[2 + k].addr, buf, s[2 + k].len);
        for (unsigned i = 0; i < s[2 + k].len; i++)
            ck_assert_uint_eq(buf[i], pattern(off + i));
        off += s[2 + k].len;
    }
}
END_TEST

START_TEST(blk_write_flush_get_id)
{
    struct drv d;
    blk_start(&d);
    uint8_t buf[1024], back[1024];
    for (unsigned i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i ^ 0x5a);
    poke(DATA, buf, sizeof buf);
    uint32_t used;
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_OUT, 3, DATA, sizeof buf, &used),
                     VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 1);
    ck_assert_int_eq(pread(disk_fd, back, sizeof back, 3 * 512), (ssize_t)sizeof back);
    ck_assert_mem_eq(back, buf, sizeof buf);
    ck_assert_int_eq(pread(disk_fd, back, 1, 3 * 512 - 1), 1);
    ck_assert_uint_eq(back[0], pattern(3 * 512 - 1));
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 1);
    /* GET_ID: 20 bytes of the serial, no terminator when it fills them. */
    fill(DATA, 0xcc, 64);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_GET_ID, 0, DATA, 64, &used), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 21);
    char id[24];
    peek(DATA, id, sizeof id);
    ck_assert_mem_eq(id, "test-serial-01234567", 20);
    ck_assert_uint_eq((uint8_t)id[20], 0xcc);
    /* A short buffer gets what fits. */
    fill(DATA, 0xcc, 64);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_GET_ID, 0, DATA, 4, &used), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(used, 5);
    peek(DATA, id, 5);
    ck_assert_mem_eq(id, "test\xcc", 5);
    /* Unknown types. */
    ck_assert_int_eq(blk_request(&d, 11, 0, 0, 0, NULL), VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(blk_request(&d, 0x12345678, 0, DATA, 512, NULL), VIRTIO_BLK_S_UNSUPP);
}
END_TEST

START_TEST(blk_out_of_range_and_short_requests)
{
    struct drv d;
    blk_start(&d);
    uint8_t before[DISK_SECTORS * 512], after[DISK_SECTORS * 512];
    ck_assert_int_eq(pread(disk_fd, before, sizeof before, 0), (ssize_t)sizeof before);
    fill(DATA, 0xcc, 4096);
    const struct { uint32_t type; uint64_t sector; uint32_t len; } bad[] = {
        { VIRTIO_BLK_T_IN, DISK_SECTORS, 512 },
        { VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024 },
        { VIRTIO_BLK_T_IN, UINT64_MAX, 512 },
        { VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, 512 },
        { VIRTIO_BLK_T_IN, 0, 100 },
        { VIRTIO_BLK_T_OUT, DISK_SECTORS, 512 },
        { VIRTIO_BLK_T_OUT, DISK_SECTORS - 1, 1024 },
        { VIRTIO_BLK_T_OUT, 1ull << 62, 512 },
        { VIRTIO_BLK_T_OUT, 0, 513 },
    };
    for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        uint32_t used = 0;
        ck_assert_int_eq(blk_request(&d, bad[k].type, bad[k].sector, DATA, bad[k].len, &used),
                         VIRTIO_BLK_S_IOERR);
        ck_assert_uint_eq(used, 1);
    }
    uint8_t buf[16];
    peek(DATA, buf, sizeof buf);
    ck_assert_uint_eq(buf[0], 0xcc);
    ck_assert_int_eq(pread(disk_fd, after, sizeof after, 0), (ssize_t)sizeof after);
    ck_assert_mem_eq(before, after, sizeof before);
    /* A header shorter than 16 bytes. */
    put_header(VIRTIO_BLK_T_IN, 0);
    struct seg s[3] = { { HDR, 8, false }, { DATA, 512, true }, { STATUS, 1, true } };
    submit(&d, 0, s, 3);
    kick(&d, 0);
    uint32_t id, len;
    ck_assert(used_pop(&d, 0, &id, &len));
    uint8_t st;
    peek(STATUS, &st, 1);
    ck_assert_uint_eq(st, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(blk_read_only)
{
    virtio_blk_destroy(blk);
    ck_assert_int_eq(virtio_blk_create(m, &host, disk_fd, true, NULL, &blk), 0);
    struct drv d;
    drv_open(&d, &blk->t);
    ck_assert_uint_ne(device_features(&d) & VIRTIO_BIT(VIRTIO_BLK_F_RO), 0);
    start(&d, blk_features | VIRTIO_BIT(VIRTIO_BLK_F_RO));
    fill(DATA, 0x11, 512);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_OUT, 0, DATA, 512, NULL), VIRTIO_BLK_S_IOERR);
    uint8_t b;
    ck_assert_int_eq(pread(disk_fd, &b, 1, 0), 1);
    ck_assert_uint_eq(b, pattern(0));
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
    char id[20];
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_GET_ID, 0, DATA, 20, NULL), VIRTIO_BLK_S_OK);
    peek(DATA, id, sizeof id);
    ck_assert_mem_eq(id, "libvx-blk0\0\0\0\0\0\0\0\0\0", 20);

    /* An fd opened read-only is a read-only disk whatever the caller says. */
    virtio_blk_destroy(blk);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", disk_fd);
    int ro = open(path, O_RDONLY);
    ck_assert_int_ge(ro, 0);
    ck_assert_int_eq(virtio_blk_create(m, &host, ro, false, "x", &blk), 0);
    drv_open(&d, &blk->t);
    ck_assert_uint_ne(device_features(&d) & VIRTIO_BIT(VIRTIO_BLK_F_RO), 0);
    virtio_blk_destroy(blk);
    blk = NULL;
    close(ro);
    /* Not a disk: a pipe. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct virtio_blk *nb = (struct virtio_blk *)1;
    ck_assert_int_eq(virtio_blk_create(m, &host, p[0], false, NULL, &nb), VX_EINVAL);
    ck_assert_ptr_null(nb);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(virtio_blk_create(m, &host, -1, false, NULL, &nb), VX_EINVAL);
}
END_TEST

START_TEST(blk_write_through_without_flush)
{
    struct drv d;
    drv_open(&d, &blk->t);
    start(&d, VIRTIO_BIT(VIRTIO_F_VERSION_1));
    fill(DATA, 0x77, 512);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_OUT, 1, DATA, 512, NULL), VIRTIO_BLK_S_OK);
    uint8_t b;
    ck_assert_int_eq(pread(disk_fd, &b, 1, 512), 1);
    ck_assert_uint_eq(b, 0x77);
    /* Indirect descriptors were not negotiated: using one is an error. */
    put_desc(INDIRECT, 0, HDR, 16, 0, 0);
    struct dq *x = &d.q[0];
    put_desc(x->desc, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
    poke16(x->avail + 4 + 2 * (x->avail_idx % x->size), 0);
    poke16(x->avail + 2, ++x->avail_idx);
    kick(&d, 0);
    ck_assert_uint_ne(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(blk_indirect)
{
    struct drv d;
    blk_start(&d);
    fill(DATA, 0xcc, 2048);
    put_header(VIRTIO_BLK_T_IN, 2);
    poke(STATUS, (uint8_t[]){ 0xee }, 1);
    put_desc(INDIRECT, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 2);
    put_desc(INDIRECT, 2, DATA, 1024, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    put_desc(INDIRECT, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    struct dq *x = &d.q[0];
    /* The WRITE flag on the indirect descriptor itself is ignored. */
    put_desc(x->desc, 7, INDIRECT, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    poke16(x->avail + 4, 7);
    poke16(x->avail + 2, ++x->avail_idx);
    kick(&d, 0);
    uint32_t id, len;
    ck_assert(used_pop(&d, 0, &id, &len));
    ck_assert_uint_eq(id, 7);
    ck_assert_uint_eq(len, 1025);
    uint8_t st, buf[1024];
    peek(STATUS, &st, 1);
    ck_assert_uint_eq(st, VIRTIO_BLK_S_OK);
    peek(DATA, buf, sizeof buf);
    for (unsigned i = 0; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], pattern(1024 + i));
    /* Direct descriptors followed by an indirect one. */
    put_desc(INDIRECT, 0, DATA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    put_desc(INDIRECT, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    put_desc(x->desc, 9, HDR, 16, VIRTQ_DESC_F_NEXT, 10);
    put_desc(x->desc, 10, INDIRECT, 32, VIRTQ_DESC_F_INDIRECT, 0);
    poke16(x->avail + 4 + 2, 9);
    poke16(x->avail + 2, ++x->avail_idx);
    kick(&d, 0);
    ck_assert(used_pop(&d, 0, &id, &len));
    ck_assert_uint_eq(id, 9);
    ck_assert_uint_eq(len, 513);
    ck_assert_uint_eq(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(blk_no_interrupt_flag_and_batches)
{
    struct drv d;
    blk_start(&d);
    struct dq *x = &d.q[0];
    poke16(x->avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, NULL), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(irq_level[line(&d)], 0);
    ck_assert_uint_eq(isr(&d), 0);
    poke16(x->avail, 0);
    x->next_desc = 0;
    /* A full ring of GET_ID requests (header + status, 2 descriptors
     * each: 128 fit in 256) served by one notification, one interrupt. */
    put_header(VIRTIO_BLK_T_GET_ID, 0);
    for (unsigned k = 0; k < 128; k++) {
        struct seg s[2] = { { HDR, 16, false }, { STATUS + k, 1, true } };
        submit(&d, 0, s, 2);
    }
    int rises = irq_rises[line(&d)];
    kick(&d, 0);
    ck_assert_int_eq(irq_rises[line(&d)], rises + 1);
    uint32_t id, len;
    for (unsigned k = 0; k < 128; k++) {
        ck_assert(used_pop(&d, 0, &id, &len));
        ck_assert_uint_eq(id, 2 * k);
        ck_assert_uint_eq(len, 1);
    }
    ck_assert(!used_pop(&d, 0, &id, &len));
    /* Nothing new: a notification finds nothing to do. */
    kick(&d, 0);
    ck_assert(!used_pop(&d, 0, &id, &len));
}
END_TEST

START_TEST(blk_waits_for_driver_ok_and_bus_master)
{
    struct drv d;
    drv_open(&d, &blk->t);
    ck_assert_uint_eq(negotiate(&d, blk_features) & VIRTIO_STATUS_FEATURES_OK,
                      VIRTIO_STATUS_FEATURES_OK);
    queue_setup(&d, 0, 16);
    put_header(VIRTIO_BLK_T_FLUSH, 0);
    struct seg s[2] = { { HDR, 16, false }, { STATUS, 1, true } };
    submit(&d, 0, s, 2);
    kick(&d, 0);
    uint32_t id, len;
    ck_assert(!used_pop(&d, 0, &id, &len));
    /* Served when DRIVER_OK comes. */
    driver_ok(&d);
    ck_assert(used_pop(&d, 0, &id, &len));
    /* Without bus mastering the device does not touch memory. */
    pci_config_write(&blk->t.pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    submit(&d, 0, s, 2);
    kick(&d, 0);
    ck_assert(!used_pop(&d, 0, &id, &len));
    pci_config_write(&blk->t.pci, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    kick(&d, 0);
    ck_assert(used_pop(&d, 0, &id, &len));
    /* Reset by the board: everything back to the start. */
    virtio_blk_reset(blk);
    ck_assert_uint_eq(status(&d), 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    ck_assert_int_eq(irq_level[line(&d)], 0);
}
END_TEST

/* ---- hostile guests ------------------------------------------------------------ */

/* The malformed chains: each builds its chain in queue 0 of a started
 * virtio-blk and publishes it; the device must refuse it. */
enum {
    BAD_ADDR_OUTSIDE_RAM,
    BAD_ADDR_STRADDLES_RAM_END,
    BAD_ADDR_WRAPS,
    BAD_WRITABLE_IN_ROM,
    BAD_HUGE_LEN,
    BAD_LOOP,
    BAD_SELF_LOOP,
    BAD_HEAD_INDEX,
    BAD_NEXT_INDEX,
    BAD_AVAIL_JUMP,
    BAD_NESTED_INDIRECT,
    BAD_INDIRECT_OUTSIDE_RAM,
    BAD_INDIRECT_LEN,
    BAD_INDIRECT_EMPTY,
    BAD_INDIRECT_TOO_LONG,
    BAD_INDIRECT_NEXT,
    BAD_INDIRECT_LOOP,
    BAD_READ_AFTER_WRITE,
    BAD_NO_STATUS,
    BAD_COUNT
};

/* A read request's chain at descriptors 0-2: header, a device-writable
 * data buffer at (data, len), status. */
static void put_read_chain(uint64_t t, uint64_t data, uint32_t len)
{
    put_desc(t, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(t, 1, data, len, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    put_desc(t, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
}

START_TEST(hostile_chains)
{
    int bad = _i;
    struct drv d;
    blk_start(&d);
    struct dq *x = &d.q[0];
    uint64_t t = x->desc;
    fill(STATUS, 0x5e, 16);
    put_header(VIRTIO_BLK_T_IN, 0);
    uint16_t head = 0;
    switch (bad) {
    case BAD_ADDR_OUTSIDE_RAM:
        put_read_chain(t, 0x400000, 512);
        break;
    case BAD_ADDR_STRADDLES_RAM_END:
        put_read_chain(t, RAM_SIZE - 256, 512);
        break;
    case BAD_ADDR_WRAPS:
        put_read_chain(t, UINT64_MAX - 100, 512);
        break;
    case BAD_WRITABLE_IN_ROM:
        put_read_chain(t, ROM_GPA, 512);
        break;
    case BAD_HUGE_LEN:
        put_read_chain(t, DATA, 0xffffffff);
        break;
    case BAD_LOOP:
        put_desc(t, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        put_desc(t, 1, DATA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        put_desc(t, 2, STATUS, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        break;
    case BAD_SELF_LOOP:
        put_desc(t, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 0);
        break;
    case BAD_HEAD_INDEX:
        head = 256;
        break;
    case BAD_NEXT_INDEX:
        put_desc(t, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 0xffff);
        break;
    case BAD_AVAIL_JUMP:
        break; /* below */
    case BAD_NESTED_INDIRECT:
        put_desc(INDIRECT + 0x100, 0, HDR, 16, 0, 0);
        put_desc(INDIRECT, 0, INDIRECT + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
        put_desc(t, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_INDIRECT_OUTSIDE_RAM:
        put_desc(t, 0, RAM_SIZE - 32, 64, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_INDIRECT_LEN:
        put_desc(t, 0, INDIRECT, 40, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_INDIRECT_EMPTY:
        put_desc(t, 0, INDIRECT, 0, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_INDIRECT_TOO_LONG:
        put_desc(t, 0, INDIRECT, 16 * 257, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_INDIRECT_NEXT:
        put_desc(INDIRECT, 0, HDR, 16, 0, 0);
        put_desc(t, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
        put_desc(t, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
        break;
    case BAD_INDIRECT_LOOP:
        put_desc(INDIRECT, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        put_desc(INDIRECT, 1, STATUS, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        put_desc(t, 0, INDIRECT, 32, VIRTQ_DESC_F_INDIRECT, 0);
        break;
    case BAD_READ_AFTER_WRITE:
        put_desc(t, 0, STATUS, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        put_desc(t, 1, HDR, 16, 0, 0);
        break;
    case BAD_NO_STATUS:
        put_desc(t, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
        put_desc(t, 1, DATA, 512, 0, 0);
        break;
    }
    poke16(x->avail + 4, head);
    poke16(x->avail + 2, bad == BAD_AVAIL_JUMP ? 257 : 1);
    kick(&d, 0);
    assert_needs_reset(&d, 0);
    uint8_t st[16];
    peek(STATUS, st, sizeof st);
    for (unsigned i = 0; i < sizeof st; i++)
        ck_assert_uint_eq(st[i], 0x5e);
    ck_assert_ptr_nonnull(blk->t.vq[0].error);
    /* Stopped: more notifications and good requests do nothing ... */
    kick(&d, 0);
    ck_assert_uint_eq(peek16(x->used + 2), 0);
    ck_assert_uint_eq(isr(&d), 0);
    /* ... until the driver resets the device, which then works again. */
    x->next_desc = 0;
    blk_start(&d);
    ck_assert_ptr_null(blk->t.vq[0].error);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, NULL), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(hostile_queue_setup)
{
    struct drv d;
    drv_open(&d, &blk->t);
    static const struct { uint16_t size; uint64_t desc, avail, used; } bad[] = {
        { 0, RINGS, RINGS + 0x1000, RINGS + 0x2000 },
        { 3, RINGS, RINGS + 0x1000, RINGS + 0x2000 },
        { 512, RINGS, RINGS + 0x1000, RINGS + 0x2000 },
        { 0xffff, RINGS, RINGS + 0x1000, RINGS + 0x2000 },
        { 16, RINGS + 8, RINGS + 0x1000, RINGS + 0x2000 },
        { 16, RINGS, RINGS + 0x1001, RINGS + 0x2000 },
        { 16, RINGS, RINGS + 0x1000, RINGS + 0x2002 },
        { 256, RAM_SIZE - 0x800, RINGS + 0x1000, RINGS + 0x2000 },
        { 16, RINGS, 0x400000, RINGS + 0x2000 },
        { 16, RINGS, RINGS + 0x1000, ROM_GPA },
        { 16, RINGS, RINGS + 0x1000, 1ull << 40 },
        { 16, UINT64_MAX - 15, RINGS + 0x1000, RINGS + 0x2000 },
    };
    for (unsigned k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        negotiate(&d, blk_features);
        queue_program(&d, 0, bad[k].size, bad[k].desc, bad[k].avail, bad[k].used);
        wr(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
        ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
        ck_assert_uint_ne(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
        /* The configuration interrupt comes with DRIVER_OK. */
        ck_assert_int_eq(irq_level[line(&d)], 0);
        driver_ok(&d);
        ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_CONFIG);
    }
    /* A ring that the application unmaps later: the queue breaks, no crash. */
    blk_start(&d);
    ck_assert_int_eq(vx_memory_unmap(m, 0, RAM_SIZE), 0);
    kick(&d, 0);
    ck_assert_uint_ne(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    ck_assert_int_eq(vx_memory_map(m, 0, RAM_SIZE, NULL, VX_MEM_RWX), 0);
}
END_TEST

START_TEST(enabled_queue_is_frozen)
{
    struct drv d;
    blk_start(&d);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 0, DATA, 512, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    /* Until reset, an enabled queue's registers keep what it was enabled with. */
    wr(&d, VIRTIO_PCI_COMMON_Q_USEDLO, 4, 0x400000);
    wr(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_USEDLO, 4), RINGS + 0x2000);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
    wr(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 1, DATA, 512, NULL), VIRTIO_BLK_S_OK);
}
END_TEST

/* Random rings and descriptors: whatever they hold, the device ends in a
 * documented state and writes only inside RAM (ASan, valgrind). */
START_TEST(hostile_random_rings)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (unsigned round = 0; round < 200; round++) {
        struct drv d;
        blk_start(&d);
        struct dq *x = &d.q[0];
        uint8_t junk[4096];
        for (unsigned i = 0; i < sizeof junk; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk[i] = (uint8_t)seed;
        }
        /* Most buffers in the data area, so deeper paths run; the rest
         * anywhere. Lengths below 4 KiB, next indices below 256. */
        for (unsigned i = 0; i < sizeof junk; i += 16) {
            if (junk[i + 15] & 7) {
                junk[i + 2] = (uint8_t)(DATA >> 16);
                memset(junk + i + 3, 0, 5);
            }
            junk[i + 9] &= 0x0f;
            junk[i + 10] = junk[i + 11] = 0;
            junk[i + 15] = 0;
        }
        poke(x->desc, junk, sizeof junk);
        poke(INDIRECT, junk, sizeof junk);
        uint16_t idx = (uint16_t)(junk[7] % 8);
        for (unsigned k = 0; k < idx; k++)
            poke16(x->avail + 4 + 2 * k,
                   (uint16_t)(junk[20 + k] | ((round & 1) ? junk[21 + k] << 8 : 0)));
        poke16(x->avail + 2, idx);
        kick(&d, 0);
        uint8_t s = status(&d);
        uint16_t used = peek16(x->used + 2);
        ck_assert_uint_le(used, idx);
        if (!(s & VIRTIO_STATUS_NEEDS_RESET))
            ck_assert_uint_eq(used, idx);
        isr(&d);
        ck_assert_int_eq(irq_level[line(&d)], 0);
        x->next_desc = 0;
    }
}
END_TEST

/* ---- virtio-console ---------------------------------------------------------- */

static const uint64_t con_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                     VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);

START_TEST(console_output)
{
    struct drv d;
    drv_open(&d, &con->t);
    ck_assert_uint_eq(device_features(&d), con_features);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
    ck_assert_uint_eq(rd(&d, VIRTIO_PCI_DEVICE_CFG, 4), 0); /* cols, rows */
    start(&d, con_features);
    poke(DATA, "hello, ", 7);
    poke(DATA + 0x100, "world\n", 6);
    struct seg s[2] = { { DATA, 7, false }, { DATA + 0x100, 6, false } };
    uint16_t head = submit(&d, VIRTIO_CONSOLE_TX, s, 2);
    kick(&d, VIRTIO_CONSOLE_TX);
    ck_assert_uint_eq(con_out_len, 13);
    ck_assert_mem_eq(con_out, "hello, world\n", 13);
    uint32_t id, len;
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_TX, &id, &len));
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    /* Notifying the receive queue prints nothing. */
    kick(&d, VIRTIO_CONSOLE_RX);
    kick(&d, 3);
    ck_assert_uint_eq(con_out_len, 13);
    /* Output made available before DRIVER_OK comes out with it. */
    con_out_len = 0;
    negotiate(&d, con_features);
    queue_setup(&d, 0, 128);
    queue_setup(&d, 1, 128);
    poke(DATA, "early", 5);
    submit(&d, VIRTIO_CONSOLE_TX, s, 1);
    kick(&d, VIRTIO_CONSOLE_TX);
    ck_assert_uint_eq(con_out_len, 0);
    driver_ok(&d);
    ck_assert_uint_eq(con_out_len, 7);
    ck_assert_mem_eq(con_out, "early, ", 7);
}
END_TEST

START_TEST(console_input)
{
    struct drv d;
    drv_open(&d, &con->t);
    ck_assert_uint_eq(virtio_console_input(con, "x", 1), 0); /* no driver yet */
    start(&d, con_features);
    ck_assert_uint_eq(virtio_console_input(con, "abc", 3), 0); /* no buffers */
    ck_assert_int_eq(irq_level[line(&d)], 0);
    fill(DATA, 0xcc, 0x200);
    struct seg a = { DATA, 4, true }, b = { DATA + 0x100, 4, true };
    uint16_t ha = submit(&d, VIRTIO_CONSOLE_RX, &a, 1);
    uint16_t hb = submit(&d, VIRTIO_CONSOLE_RX, &b, 1);
    kick(&d, VIRTIO_CONSOLE_RX);
    ck_assert_uint_eq(virtio_console_input(con, "0123456789", 10), 8);
    ck_assert_int_eq(irq_level[line(&d)], 1);
    uint32_t id, len;
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_RX, &id, &len));
    ck_assert_uint_eq(id, ha);
    ck_assert_uint_eq(len, 4);
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_RX, &id, &len));
    ck_assert_uint_eq(id, hb);
    ck_assert_uint_eq(len, 4);
    char got[5];
    peek(DATA, got, 5);
    ck_assert_mem_eq(got, "0123\xcc", 5);
    peek(DATA + 0x100, got, 5);
    ck_assert_mem_eq(got, "4567\xcc", 5);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    /* A partly filled buffer is returned with what it got. */
    submit(&d, VIRTIO_CONSOLE_RX, &a, 1);
    ck_assert_uint_eq(virtio_console_input(con, "89", 2), 2);
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_RX, &id, &len));
    ck_assert_uint_eq(len, 2);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    /* A receive buffer outside RAM breaks the device, input stops. */
    struct seg bad = { RAM_SIZE - 2, 4, true };
    submit(&d, VIRTIO_CONSOLE_RX, &bad, 1);
    ck_assert_uint_eq(virtio_console_input(con, "zz", 2), 0);
    assert_needs_reset(&d, VIRTIO_CONSOLE_TX);
    ck_assert_uint_eq(virtio_console_input(con, "zz", 2), 0);
    ck_assert_uint_eq(virtio_console_input(NULL, "zz", 2), 0);
}
END_TEST

START_TEST(console_transmit_with_writable_and_indirect)
{
    struct drv d;
    drv_open(&d, &con->t);
    start(&d, con_features);
    poke(DATA, "ab", 2);
    poke(DATA + 0x10, "cd", 2);
    put_desc(INDIRECT, 0, DATA, 2, VIRTQ_DESC_F_NEXT, 1);
    put_desc(INDIRECT, 1, DATA + 0x10, 2, VIRTQ_DESC_F_NEXT, 2);
    put_desc(INDIRECT, 2, DATA + 0x20, 8, VIRTQ_DESC_F_WRITE, 0);
    struct dq *x = &d.q[VIRTIO_CONSOLE_TX];
    put_desc(x->desc, 0, INDIRECT, 48, VIRTQ_DESC_F_INDIRECT, 0);
    poke16(x->avail + 4, 0);
    poke16(x->avail + 2, ++x->avail_idx);
    kick(&d, VIRTIO_CONSOLE_TX);
    ck_assert_uint_eq(con_out_len, 4);
    ck_assert_mem_eq(con_out, "abcd", 4);
    ck_assert_uint_eq(con_out_calls, 2);
    ck_assert_uint_eq(status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
    /* An echo: the output callback offers input from inside the
     * transmit notification, for every buffer of a two-buffer batch. */
    con_echo = true;
    struct seg r = { DATA + 0x200, 16, true };
    submit(&d, VIRTIO_CONSOLE_RX, &r, 1);
    poke(DATA + 0x300, "echo", 4);
    struct seg t1 = { DATA + 0x300, 4, false }, t2 = { DATA + 0x302, 2, false };
    submit(&d, VIRTIO_CONSOLE_TX, &t1, 1);
    submit(&d, VIRTIO_CONSOLE_TX, &t2, 1);
    kick(&d, VIRTIO_CONSOLE_TX);
    ck_assert_mem_eq(con_out + 4, "echoho", 6);
    uint32_t id, len;
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_RX, &id, &len));
    ck_assert_uint_eq(len, 4); /* the first buffer's; the second found none */
    char got[4];
    peek(DATA + 0x200, got, 4);
    ck_assert_mem_eq(got, "echo", 4);
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_TX, &id, &len));
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_TX, &id, &len));
    ck_assert(used_pop(&d, VIRTIO_CONSOLE_TX, &id, &len));
    ck_assert(!used_pop(&d, VIRTIO_CONSOLE_TX, &id, &len));
}
END_TEST

START_TEST(edges_io_errors_config_change_full_host)
{
    struct drv d;
    blk_start(&d);
    /* The file shrinks under the disk: reads past its end fail. */
    ck_assert_int_eq(ftruncate(disk_fd, 4 * 512), 0);
    uint32_t used;
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 10, DATA, 512, &used), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(used, 1);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 3, DATA, 1024, &used), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_ge(used, 1);
    ck_assert_uint_le(used, 1025);
    ck_assert_int_eq(blk_request(&d, VIRTIO_BLK_T_IN, 3, DATA, 512, NULL), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_QUEUE);
    /* A configuration change after DRIVER_OK interrupts. */
    virtio_pci_config_changed(&blk->t);
    ck_assert_int_eq(irq_level[line(&d)], 1);
    ck_assert_uint_eq(isr(&d), VIRTIO_PCI_ISR_CONFIG);
    ck_assert_int_eq(irq_level[line(&d)], 0);
    /* The console's transmit queue breaks like any other. */
    struct drv c;
    drv_open(&c, &con->t);
    start(&c, con_features);
    struct seg bad = { RAM_SIZE - 8, 16, false };
    submit(&c, VIRTIO_CONSOLE_TX, &bad, 1);
    kick(&c, VIRTIO_CONSOLE_TX);
    ck_assert_uint_eq(con_out_len, 0);
    assert_needs_reset(&c, VIRTIO_CONSOLE_TX);
    virtio_console_reset(con);
    ck_assert_uint_eq(status(&c), 0);
    /* A full host: the function is refused and nothing leaks. */
    struct virtio_console *more[PCI_SLOTS];
    unsigned n = 0;
    int rc;
    while ((rc = virtio_console_create(m, &host, NULL, NULL, &more[n])) == 0)
        ck_assert_uint_lt(++n, PCI_SLOTS);
    ck_assert_int_eq(rc, VX_ERANGE);
    ck_assert_uint_eq(n, PCI_SLOTS - 3);
    ck_assert_ptr_null(more[n]);
    while (n--)
        virtio_console_destroy(more[n]);
    ck_assert_int_eq(virtio_console_create(m, &host, NULL, NULL, NULL), VX_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("virtio");
    TCase *tc = tcase_create("virtio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pci_identity_and_capabilities);
    tcase_add_test(tc, feature_negotiation);
    tcase_add_test(tc, common_config_access_widths);
    tcase_add_test(tc, pci_cfg_window);
    tcase_add_test(tc, blk_read_pattern_and_interrupt);
    tcase_add_test(tc, blk_write_flush_get_id);
    tcase_add_test(tc, blk_out_of_range_and_short_requests);
    tcase_add_test(tc, blk_read_only);
    tcase_add_test(tc, blk_write_through_without_flush);
    tcase_add_test(tc, blk_indirect);
    tcase_add_test(tc, blk_no_interrupt_flag_and_batches);
    tcase_add_test(tc, blk_waits_for_driver_ok_and_bus_master);
    tcase_add_loop_test(tc, hostile_chains, 0, BAD_COUNT);
    tcase_add_test(tc, hostile_queue_setup);
    tcase_add_test(tc, enabled_queue_is_frozen);
    tcase_add_test(tc, hostile_random_rings);
    tcase_add_test(tc, console_output);
    tcase_add_test(tc, console_input);
    tcase_add_test(tc, console_transmit_with_writable_and_indirect);
    tcase_add_test(tc, edges_io_errors_config_change_full_host);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
