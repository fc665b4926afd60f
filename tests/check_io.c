/* Unit tests of the I/O bus and vx_io_dispatch (lib/core/io.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "core/io.h"
#include "core/machine.h"

/* A machine and vCPU object made by hand: dispatch needs only the buses. */
static struct vx_machine m;
static struct vx_vcpu v;

struct log {
    int calls;
    uint64_t addr, value;
    unsigned len;
    int is_write;
    int fail;
};

static int dev_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct log *l = opaque;
    l->calls++;
    l->addr = addr;
    l->len = len;
    l->is_write = 0;
    *value = 0x1122334455667788ull; /* wider than any access but 8 */
    return l->fail;
}

static int dev_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct log *l = opaque;
    l->calls++;
    l->addr = addr;
    l->len = len;
    l->value = value;
    l->is_write = 1;
    return l->fail;
}

static const vx_io_ops ops = { sizeof ops, dev_read, dev_write };

static void setup(void)
{
    memset(&m, 0, sizeof m);
    memset(&v, 0, sizeof v);
    v.machine = &m;
    vx_io_bus_init(&m.pio);
    vx_io_bus_init(&m.mmio);
}

static void teardown(void)
{
    vx_io_bus_fini(&m.pio);
    vx_io_bus_fini(&m.mmio);
}

START_TEST(dispatch_finds_the_claiming_range)
{
    struct log a = { 0 }, b = { 0 };
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x3f8, 8, &ops, &a, NULL), 0);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x60, 1, &ops, &b, NULL), 0);

    struct vx_io io = { .addr = 0x3ff, .space = VX_IO_PIO, .len = 1, .is_write = 1,
                        .value = 0x41 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_uint_eq(a.addr, 0x3ff);
    ck_assert_uint_eq(a.value, 0x41);
    ck_assert_int_eq(b.calls, 0);

    io = (struct vx_io){ .addr = 0x400, .space = VX_IO_PIO, .len = 1 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_UNCLAIMED);
    io = (struct vx_io){ .addr = 0x3f7, .space = VX_IO_PIO, .len = 1 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_UNCLAIMED);
    /* The same address on the other bus is not claimed. */
    io = (struct vx_io){ .addr = 0x3f8, .space = VX_IO_MMIO, .len = 1 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_UNCLAIMED);
}
END_TEST

START_TEST(reads_are_truncated_to_the_access_width)
{
    struct log a = { 0 };
    ck_assert_int_eq(vx_io_bus_add(&m.mmio, 0xfee00000, 0x1000, &ops, &a, NULL), 0);
    static const struct { unsigned len; uint64_t want; } cases[] = {
        { 1, 0x88 }, { 2, 0x7788 }, { 4, 0x55667788 }, { 8, 0x1122334455667788ull },
    };
    for (unsigned i = 0; i < 4; i++) {
        struct vx_io io = { .addr = 0xfee00010, .space = VX_IO_MMIO, .len = (uint8_t)cases[i].len };
        ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
        ck_assert_uint_eq(io.value, cases[i].want);
        ck_assert_uint_eq(a.len, cases[i].len);
    }
}
END_TEST

START_TEST(null_callbacks_read_ones_and_ignore_writes)
{
    vx_io_ops none = { sizeof none, NULL, NULL };
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x80, 1, &none, NULL, NULL), 0);
    struct vx_io io = { .addr = 0x80, .space = VX_IO_PIO, .len = 2 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_uint_eq(io.value, 0xffff);
    io = (struct vx_io){ .addr = 0x80, .space = VX_IO_PIO, .len = 1, .is_write = 1 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
}
END_TEST

START_TEST(failing_callback_is_reported)
{
    struct log a = { .fail = -7 };
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x10, 1, &ops, &a, NULL), 0);
    struct vx_io io = { .addr = 0x10, .space = VX_IO_PIO, .len = 4, .is_write = 1 };
    ck_assert_int_lt(vx_io_dispatch(&v, &io), 0);
    ck_assert_ptr_nonnull(strstr(vx_last_error(), "returned -7"));
    ck_assert_ptr_nonnull(strstr(vx_last_error(), "0x10"));
}
END_TEST

START_TEST(bus_rejects_overlap_and_removes_by_base)
{
    struct log a = { 0 };
    const struct vx_io_range *c = NULL;
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x100, 0x10, &ops, &a, NULL), 0);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x10f, 1, &ops, &a, &c), VX_EEXIST);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->base, 0x100);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0xf0, 0x11, &ops, &a, &c), VX_EEXIST);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0xf0, 0x10, &ops, &a, &c), 0);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x110, 0x10, &ops, &a, &c), 0);
    ck_assert_int_eq(vx_io_bus_remove(&m.pio, 0x101), VX_ENOENT);
    ck_assert_int_eq(vx_io_bus_remove(&m.pio, 0x100), 0);
    ck_assert_ptr_null(vx_io_bus_find(&m.pio, 0x105));
    ck_assert_ptr_nonnull(vx_io_bus_find(&m.pio, 0xff));
    ck_assert_ptr_nonnull(vx_io_bus_find(&m.pio, 0x110));
    ck_assert_int_eq(vx_io_bus_remove(&m.pio, 0x100), VX_ENOENT);
}
END_TEST

START_TEST(many_ranges_stay_sorted)
{
    struct log a = { 0 };
    for (unsigned i = 0; i < 300; i++) {
        unsigned k = (i * 127) % 300;
        ck_assert_int_eq(vx_io_bus_add(&m.mmio, 0x100000ull * k, 0x100, &ops, &a, NULL), 0);
    }
    for (unsigned k = 0; k < 300; k++) {
        const struct vx_io_range *r = vx_io_bus_find(&m.mmio, 0x100000ull * k + 0xff);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->base, 0x100000ull * k);
        ck_assert_ptr_null(vx_io_bus_find(&m.mmio, 0x100000ull * k + 0x100));
    }
}
END_TEST

/* The vCPU's last-range cache must never outlive a change of the bus: a
 * range replaced at the same port, or moved when the array grows. */
START_TEST(cache_follows_bus_changes)
{
    struct log a = { 0 }, b = { 0 }, x = { 0 };
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x10, 1, &ops, &a, NULL), 0);
    struct vx_io io = { .addr = 0x10, .space = VX_IO_PIO, .len = 1, .is_write = 1 };
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(a.calls, 2);
    /* Replaced: the cached pointer now names b's slot or nothing. */
    ck_assert_int_eq(vx_io_bus_remove(&m.pio, 0x10), 0);
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_UNCLAIMED);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x10, 1, &ops, &b, NULL), 0);
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(a.calls, 2);
    ck_assert_int_eq(b.calls, 1);
    /* Grown (realloc moves the array) and shifted (ranges inserted below). */
    for (unsigned k = 0; k < 100; k++)
        ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x100 + k, 1, &ops, &x, NULL), 0);
    ck_assert_int_eq(vx_io_bus_add(&m.pio, 0x0, 1, &ops, &x, NULL), 0);
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(b.calls, 2);
    ck_assert_int_eq(x.calls, 0);
    /* A miss after a hit falls back to the search. */
    io.addr = 0x150;
    ck_assert_int_eq(vx_io_dispatch(&v, &io), VX_IO_DONE);
    ck_assert_int_eq(x.calls, 1);
    ck_assert_uint_eq(x.addr, 0x150);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("dispatch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, dispatch_finds_the_claiming_range);
    tcase_add_test(tc, reads_are_truncated_to_the_access_width);
    tcase_add_test(tc, null_callbacks_read_ones_and_ignore_writes);
    tcase_add_test(tc, failing_callback_is_reported);
    tcase_add_test(tc, bus_rejects_overlap_and_removes_by_base);
    tcase_add_test(tc, many_ranges_stay_sorted);
    tcase_add_test(tc, cache_follows_bus_changes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
