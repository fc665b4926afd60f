/*
 * The PCI host bridge (lib/devices/pci.c) against the PCI Local Bus
 * specification's configuration mechanism 1, header rules and INTx, and
 * against what a guest may try: random configuration cycles never change
 * what is read-only and never route an access outside a device's BAR.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "devices/pci.h"

#define WIN_BASE 0xe0000000ull
#define WIN_SIZE 0x10000000ull
#define IO_BASE 0xc000
#define IO_SIZE 0x1000

struct irq_log {
    int level[16];
    int changes;
};

static void log_irq(void *ctx, unsigned line, int level)
{
    struct irq_log *l = ctx;
    ck_assert_uint_lt(line, 16);
    ck_assert_int_ne(l->level[line], level); /* the host reports changes only */
    l->level[line] = level;
    l->changes++;
}

/* A device that records its BAR accesses. */
struct fake {
    struct pci_device pci;
    unsigned bar, len, reads, writes;
    uint64_t offset, value;
    unsigned config_writes;
};

static int fake_read(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t *value)
{
    struct fake *f = opaque;
    f->reads++;
    f->bar = bar;
    f->offset = offset;
    f->len = len;
    *value = 0x1000 + offset;
    return 0;
}

static int fake_write(void *opaque, unsigned bar, uint64_t offset, unsigned len, uint64_t value)
{
    struct fake *f = opaque;
    f->writes++;
    f->bar = bar;
    f->offset = offset;
    f->len = len;
    f->value = value;
    return 0;
}

static void fake_config_written(void *opaque, unsigned offset, unsigned len)
{
    (void)offset;
    (void)len;
    ((struct fake *)opaque)->config_writes++;
}

static const struct pci_device_ops fake_ops = { fake_read, fake_write, fake_config_written };

static struct pci_host host;
static struct irq_log irqs;
static struct fake dev[3];

static void setup(void)
{
    memset(&irqs, 0, sizeof irqs);
    pci_host_init(&host, &(struct pci_host_config){
        .mmio_base = WIN_BASE, .mmio_size = WIN_SIZE, .io_base = IO_BASE, .io_size = IO_SIZE,
        .irq_map = { 10, 11, 5, 9 }, .set_irq = log_irq, .ctx = &irqs });
    for (unsigned i = 0; i < 3; i++) {
        memset(&dev[i], 0, sizeof dev[i]);
        pci_device_init(&dev[i].pci, 0x1af4, (uint16_t)(0x1042 + i), 1, 0x018000, 0x1af4, 2,
                        true, &fake_ops, &dev[i]);
    }
}

static void teardown(void)
{
}

static void cf8(uint32_t v)
{
    ck_assert_int_eq(pci_host_pio_ops.write(&host, 0xcf8, 4, v), 0);
}

static uint32_t cfg_read(unsigned slot, unsigned reg, unsigned len)
{
    cf8(0x80000000u | slot << 11 | (reg & 0xfc));
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcfc + (reg & 3), len, &v), 0);
    return (uint32_t)v;
}

static void cfg_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
    cf8(0x80000000u | slot << 11 | (reg & 0xfc));
    ck_assert_int_eq(pci_host_pio_ops.write(&host, 0xcfc + (reg & 3), len, v), 0);
}

static uint64_t mmio_read(uint64_t addr, unsigned len)
{
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_mmio_ops.read(&host, addr, len, &v), 0);
    return v;
}

START_TEST(mechanism1_finds_the_host_bridge)
{
    /* Linux's probe: the address register reads back what was written
     * (dword only); narrower reads of it are not the register. */
    cf8(0x80000000u);
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcf8, 4, &v), 0);
    ck_assert_uint_eq(v, 0x80000000u);
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcf8, 1, &v), 0);
    ck_assert_uint_eq(v & 0xff, 0xff);
    ck_assert_uint_eq(cfg_read(0, PCI_VENDOR_ID, 4), 0x12378086u);
    ck_assert_uint_eq(cfg_read(0, PCI_CLASS_DEVICE, 2), 0x0600);
    ck_assert_uint_eq(cfg_read(0, PCI_HEADER_TYPE, 1), 0);
    /* Nothing elsewhere: an empty slot, function 1, bus 1, the enable bit
     * clear: all ones. */
    ck_assert_uint_eq(cfg_read(5, PCI_VENDOR_ID, 4), 0xffffffffu);
    cf8(0x80000000u | 1 << 8);
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcfc, 4, &v), 0);
    ck_assert_uint_eq(v, 0xffffffffu);
    cf8(0x80010000u);
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcfc, 4, &v), 0);
    ck_assert_uint_eq(v, 0xffffffffu);
    cf8(0);
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcfc, 2, &v), 0);
    ck_assert_uint_eq(v, 0xffff);
    /* Writes with the enable bit clear go nowhere. */
    ck_assert_int_eq(pci_host_pio_ops.write(&host, 0xcfc, 4, 0), 0);
    ck_assert_uint_eq(cfg_read(0, PCI_VENDOR_ID, 4), 0x12378086u);
}
END_TEST

START_TEST(byte_and_word_lanes_of_config_data)
{
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    ck_assert_int_eq(dev[0].pci.slot, 1);
    ck_assert_uint_eq(cfg_read(1, 0x00, 1), 0xf4);
    ck_assert_uint_eq(cfg_read(1, 0x01, 1), 0x1a);
    ck_assert_uint_eq(cfg_read(1, 0x02, 2), 0x1042);
    ck_assert_uint_eq(cfg_read(1, 0x0b, 1), 0x01); /* base class */
    ck_assert_uint_eq(cfg_read(1, 0x0a, 1), 0x80);
    ck_assert_uint_eq(cfg_read(1, PCI_SUBSYSTEM_ID, 2), 2);
    /* A word at 0xcfe reaches bytes 2-3 of the selected dword. */
    cfg_write(1, 0x3c, 1, 0x33);
    ck_assert_uint_eq(cfg_read(1, 0x3c, 4) & 0xff, 0x33);
    /* An access running past CONFIG_DATA's dword reads ones, writes nothing. */
    cf8(0x80000000u | 1 << 11 | 0x3c);
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_pio_ops.read(&host, 0xcfe, 4, &v), 0);
    ck_assert_uint_eq(v, 0xffffffffu);
}
END_TEST

START_TEST(read_only_fields_and_status_write_one_to_clear)
{
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    cfg_write(1, PCI_VENDOR_ID, 4, 0);
    ck_assert_uint_eq(cfg_read(1, PCI_VENDOR_ID, 4), 0x10421af4u);
    cfg_write(1, PCI_CLASS_PROG - 1, 4, 0);
    ck_assert_uint_eq(cfg_read(1, PCI_REVISION_ID, 1), 1);
    /* Command: only the implemented bits stick. */
    cfg_write(1, PCI_COMMAND, 2, 0xffff);
    ck_assert_uint_eq(cfg_read(1, PCI_COMMAND, 2), 0x0547);
    /* Status: an error bit set by the device is cleared by writing 1,
     * not by writing 0; the read-only capability bit stays. */
    dev[0].pci.config[PCI_STATUS + 1] |= 0x20; /* received master abort */
    cfg_write(1, PCI_STATUS, 2, 0);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & 0x2000, 0x2000);
    cfg_write(1, PCI_STATUS, 2, 0x2000);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & 0x2000, 0);
    ck_assert_uint_ge(dev[0].config_writes, 4);
}
END_TEST

START_TEST(bars_are_assigned_sized_and_moved)
{
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 0, 0x4000, false), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 1, 32, true), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[1].pci, 2, 0x10, false), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 6, 0x1000, false), VX_EINVAL);
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 3, 0x1800, false), VX_EINVAL);
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    ck_assert_int_eq(pci_host_add(&host, &dev[1].pci), 0);
    /* Firmware-style: inside the windows, naturally aligned, apart. */
    uint64_t b0 = pci_bar_address(&dev[0].pci, 0), io = pci_bar_address(&dev[0].pci, 1);
    uint64_t b2 = pci_bar_address(&dev[1].pci, 2);
    ck_assert(b0 >= WIN_BASE && b0 + 0x4000 <= WIN_BASE + WIN_SIZE && b0 % 0x4000 == 0);
    ck_assert(b2 >= WIN_BASE && b2 % 0x1000 == 0 && (b2 >= b0 + 0x4000 || b2 + 0x10 <= b0));
    ck_assert(io >= IO_BASE && io + 32 <= IO_BASE + IO_SIZE && io % 32 == 0);
    ck_assert_uint_eq(cfg_read(1, PCI_BAR0, 4), (uint32_t)b0);
    ck_assert_uint_eq(cfg_read(1, PCI_BAR0 + 4, 4), (uint32_t)io | 1);
    ck_assert_uint_eq(cfg_read(1, PCI_BAR0 + 8, 4), 0); /* no BAR there */
    /* Sizing: all ones reads back the size mask with the type bits. */
    cfg_write(1, PCI_BAR0, 4, 0xffffffffu);
    ck_assert_uint_eq(cfg_read(1, PCI_BAR0, 4), 0xffffc000u);
    cfg_write(1, PCI_BAR0 + 4, 4, 0xffffffffu);
    ck_assert_uint_eq(cfg_read(1, PCI_BAR0 + 4, 4), 0xffffffe1u);
    cfg_write(2, PCI_BAR0 + 8, 4, 0xffffffffu);
    ck_assert_uint_eq(cfg_read(2, PCI_BAR0 + 8, 4), 0xfffffff0u);
    /* Moved by the guest: decoded at the new place only. */
    cfg_write(1, PCI_BAR0, 4, 0xe8000000u | 0xfff);
    ck_assert_uint_eq(pci_bar_address(&dev[0].pci, 0), 0xe8000000u);
    cfg_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(mmio_read(0xe8000010, 4), 0x1010);
    ck_assert_uint_eq(dev[0].reads, 1);
    ck_assert_uint_eq(mmio_read(b0 + 0x10, 4), 0xffffffffu);
    ck_assert_uint_eq(dev[0].reads, 1);
}
END_TEST

START_TEST(bar_decode_follows_the_command_register)
{
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 0, 0x1000, false), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 1, 16, true), 0);
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    uint64_t mem = pci_bar_address(&dev[0].pci, 0), io = pci_bar_address(&dev[0].pci, 1);
    /* Decoding off after reset: unclaimed (ones, writes dropped). */
    ck_assert_uint_eq(mmio_read(mem, 2), 0xffff);
    ck_assert_int_eq(pci_host_mmio_ops.write(&host, mem, 4, 1), 0);
    ck_assert_uint_eq(dev[0].reads + dev[0].writes, 0);
    cfg_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    ck_assert_uint_eq(mmio_read(mem + 0x20, 8), 0x1020);
    ck_assert_uint_eq(dev[0].len, 8);
    ck_assert_int_eq(pci_host_mmio_ops.write(&host, mem + 0xffc, 4, 0xabcd), 0);
    ck_assert_uint_eq(dev[0].writes, 1);
    ck_assert_uint_eq(dev[0].offset, 0xffc);
    ck_assert_uint_eq(dev[0].value, 0xabcd);
    /* Running past the BAR's end: nobody's. */
    ck_assert_uint_eq(mmio_read(mem + 0xffe, 4), 0xffffffffu);
    ck_assert_uint_eq(dev[0].reads, 1);
    /* I/O decode is separate. */
    uint64_t v = 0;
    ck_assert_int_eq(pci_host_io_ops.read(&host, io + 4, 1, &v), 0);
    ck_assert_uint_eq(v, 0xff);
    cfg_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    ck_assert_int_eq(pci_host_io_ops.read(&host, io + 4, 1, &v), 0);
    ck_assert_uint_eq(v, 0x1004);
    ck_assert_uint_eq(dev[0].bar, 1);
    pci_host_reset(&host);
    ck_assert_uint_eq(mmio_read(mem, 4), 0xffffffffu);
}
END_TEST

START_TEST(intx_routing_sharing_and_disable)
{
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(pci_host_add(&host, &dev[i].pci), 0);
    /* Slots 1, 2, 3 with pin A: PIRQ B, C, D of the map. */
    ck_assert_uint_eq(cfg_read(1, PCI_INTERRUPT_LINE, 2), 0x0100 | 11);
    ck_assert_uint_eq(cfg_read(2, PCI_INTERRUPT_LINE, 1), 5);
    ck_assert_uint_eq(cfg_read(3, PCI_INTERRUPT_LINE, 1), 9);
    pci_set_irq(&dev[0].pci, 1);
    ck_assert_int_eq(irqs.level[11], 1);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    pci_set_irq(&dev[0].pci, 1); /* no change, no call */
    ck_assert_int_eq(irqs.changes, 1);
    /* INTx disable masks the pin; the status bit still shows it. */
    cfg_write(1, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    ck_assert_int_eq(irqs.level[11], 0);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    cfg_write(1, PCI_COMMAND, 2, 0);
    ck_assert_int_eq(irqs.level[11], 1);
    pci_set_irq(&dev[0].pci, 0);
    ck_assert_int_eq(irqs.level[11], 0);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
}
END_TEST

START_TEST(shared_line_is_the_or_of_its_devices)
{
    /* Slot 1 and slot 5 share PIRQ B. */
    struct pci_device filler[3];
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    for (unsigned i = 0; i < 3; i++) {
        pci_device_init(&filler[i], 0x1234, 0x1111, 0, 0xff0000, 0, 0, false, NULL, NULL);
        ck_assert_int_eq(pci_host_add(&host, &filler[i]), 0);
    }
    ck_assert_int_eq(pci_host_add(&host, &dev[1].pci), 0);
    ck_assert_int_eq(dev[1].pci.slot, 5);
    ck_assert_uint_eq(cfg_read(5, PCI_INTERRUPT_LINE, 1), 11);
    ck_assert_uint_eq(cfg_read(2, PCI_INTERRUPT_PIN, 1), 0); /* no pin: no line */
    ck_assert_uint_eq(cfg_read(2, PCI_INTERRUPT_LINE, 1), 0xff);
    pci_set_irq(&dev[0].pci, 1);
    pci_set_irq(&dev[1].pci, 1);
    ck_assert_int_eq(irqs.changes, 1);
    pci_set_irq(&dev[0].pci, 0);
    ck_assert_int_eq(irqs.level[11], 1);
    pci_set_irq(&dev[1].pci, 0);
    ck_assert_int_eq(irqs.level[11], 0);
    ck_assert_int_eq(irqs.changes, 2);
}
END_TEST

START_TEST(capability_list)
{
    uint8_t body[16] = { 0 };
    body[2] = 0xaa;
    unsigned a = pci_add_capability(&dev[0].pci, PCI_CAP_ID_VNDR, body, 16);
    body[2] = 0xbb;
    unsigned b = pci_add_capability(&dev[0].pci, PCI_CAP_ID_VNDR, body, 5);
    unsigned c = pci_add_capability(&dev[0].pci, PCI_CAP_ID_VNDR, body, 4);
    ck_assert_uint_eq(a, PCI_CAP_START);
    ck_assert_uint_eq(b, a + 16);
    ck_assert_uint_eq(c, (b + 5 + 3) & ~3u); /* dword-aligned */
    ck_assert_int_eq(pci_host_add(&host, &dev[0].pci), 0);
    ck_assert_uint_eq(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
    unsigned at = cfg_read(1, PCI_CAPABILITY_LIST, 1), n = 0;
    unsigned seen[3];
    while (at && n < 3) {
        ck_assert_uint_eq(cfg_read(1, at, 1), PCI_CAP_ID_VNDR);
        seen[n++] = at;
        at = cfg_read(1, at + 1, 1);
    }
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(seen[0], a);
    ck_assert_uint_eq(seen[1], b);
    ck_assert_uint_eq(cfg_read(1, a + 2, 1), 0xaa);
    ck_assert_uint_eq(cfg_read(1, b + 2, 1), 0xbb);
    /* Read-only to the guest. */
    cfg_write(1, a, 4, 0);
    ck_assert_uint_eq(cfg_read(1, a, 1), PCI_CAP_ID_VNDR);
    /* A capability that does not fit is refused. */
    uint8_t big[256] = { 0 };
    ck_assert_uint_eq(pci_add_capability(&dev[0].pci, PCI_CAP_ID_VNDR, big, 200), 0);
}
END_TEST

START_TEST(slots_and_windows_run_out_cleanly)
{
    static struct pci_device many[PCI_SLOTS];
    unsigned added = 0;
    for (unsigned i = 0; i < PCI_SLOTS; i++) {
        pci_device_init(&many[i], 0x1234, 0x2222, 0, 0xff0000, 0, 0, true, NULL, NULL);
        if (pci_host_add(&host, &many[i]) == 0)
            added++;
    }
    ck_assert_uint_eq(added, PCI_SLOTS - 1); /* slot 0 is the bridge */
    setup();
    struct pci_device big;
    pci_device_init(&big, 0x1234, 0x3333, 0, 0xff0000, 0, 0, false, NULL, NULL);
    ck_assert_int_eq(pci_device_set_bar(&big, 0, 0x80000000u, false), 0);
    ck_assert_int_eq(pci_host_add(&host, &big), VX_ERANGE);
    ck_assert_int_eq(big.slot, -1);
}
END_TEST

/* A hostile guest: random configuration cycles to every slot, then the
 * invariants: IDs and classes unchanged, BAR type bits and alignment
 * kept, every routed access inside the BAR it was routed to. */
START_TEST(random_config_cycles_keep_the_invariants)
{
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 0, 0x4000, false), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[0].pci, 2, 64, true), 0);
    ck_assert_int_eq(pci_device_set_bar(&dev[1].pci, 5, 0x100, false), 0);
    for (unsigned i = 0; i < 2; i++)
        ck_assert_int_eq(pci_host_add(&host, &dev[i].pci), 0);
    srand(12345);
    for (unsigned n = 0; n < 200000; n++) {
        static const unsigned lens[] = { 1, 2, 4 };
        unsigned len = lens[rand() % 3], port = 0xcf8 + (unsigned)rand() % 8;
        uint32_t v = (uint32_t)rand() << 16 ^ (uint32_t)rand();
        if (rand() % 3 == 0)
            v = 0x80000000u | (uint32_t)(rand() % 4) << 11 | (uint32_t)rand() % 256;
        if (rand() % 2)
            pci_host_pio_ops.write(&host, port, len, v);
        else {
            uint64_t r;
            pci_host_pio_ops.read(&host, port, len, &r);
            ck_assert_uint_le(r, (1ull << (8 * len)) - 1);
        }
        if (n % 64 == 0) {
            uint64_t addr = WIN_BASE + (uint64_t)(rand() % 0x100000);
            dev[0].reads = dev[1].reads = 0;
            uint64_t r;
            pci_host_mmio_ops.read(&host, addr, 8, &r);
            for (unsigned i = 0; i < 2; i++)
                if (dev[i].reads) {
                    unsigned bar = dev[i].bar;
                    ck_assert_uint_le(dev[i].offset + 8, dev[i].pci.bar_size[bar]);
                    ck_assert_uint_eq(pci_bar_address(&dev[i].pci, bar) + dev[i].offset, addr);
                }
        }
    }
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_uint_eq(cfg_read(i + 1, PCI_VENDOR_ID, 4), 0x1af4u | (0x1042u + i) << 16);
        ck_assert_uint_eq(cfg_read(i + 1, PCI_CLASS_DEVICE, 2), 0x0180);
        for (unsigned b = 0; b < PCI_BARS; b++) {
            uint32_t bar = cfg_read(i + 1, PCI_BAR0 + 4 * b, 4), size = dev[i].pci.bar_size[b];
            if (!size) {
                ck_assert_uint_eq(bar, 0);
                continue;
            }
            ck_assert_uint_eq(bar & (dev[i].pci.bar_io[b] ? 3u : 15u), dev[i].pci.bar_io[b]);
            ck_assert_uint_eq(bar & (size - 1) & ~15u, 0);
        }
    }
    ck_assert_uint_eq(cfg_read(0, PCI_VENDOR_ID, 4), 0x12378086u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pci");
    TCase *tc = tcase_create("pci");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mechanism1_finds_the_host_bridge);
    tcase_add_test(tc, byte_and_word_lanes_of_config_data);
    tcase_add_test(tc, read_only_fields_and_status_write_one_to_clear);
    tcase_add_test(tc, bars_are_assigned_sized_and_moved);
    tcase_add_test(tc, bar_decode_follows_the_command_register);
    tcase_add_test(tc, intx_routing_sharing_and_disable);
    tcase_add_test(tc, shared_line_is_the_or_of_its_devices);
    tcase_add_test(tc, capability_list);
    tcase_add_test(tc, slots_and_windows_run_out_cleanly);
    tcase_add_test(tc, random_config_cycles_keep_the_invariants);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
