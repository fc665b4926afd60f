/* Unit tests of the guest-physical address space (lib/mmu/addrspace.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "core/hostmem.h"
#include "mmu/addrspace.h"

static struct vx_addrspace as;
static uint8_t ram[4][0x3000];

static void setup(void)
{
    vx_as_init(&as);
    memset(ram, 0, sizeof ram);
}

static void teardown(void)
{
    vx_as_fini(&as);
}

static int add(uint64_t gpa, uint64_t size, int idx, unsigned prot)
{
    struct vx_region r = { .gpa = gpa, .size = size, .host = ram[idx], .prot = prot,
                           .slot = -1 };
    return vx_as_insert(&as, &r);
}

START_TEST(insert_keeps_order_and_rejects_overlap)
{
    ck_assert_int_eq(add(0x10000, 0x2000, 0, VX_MEM_RWX), 0);
    ck_assert_int_eq(add(0x0, 0x1000, 1, VX_MEM_RWX), 0);
    ck_assert_int_eq(add(0x20000, 0x1000, 2, VX_MEM_RWX), 0);
    ck_assert_uint_eq(vx_as_count(&as), 3);
    ck_assert_uint_eq(vx_as_region(&as, 0)->gpa, 0x0);
    ck_assert_uint_eq(vx_as_region(&as, 1)->gpa, 0x10000);
    ck_assert_uint_eq(vx_as_region(&as, 2)->gpa, 0x20000);
    /* Overlaps at the start, the end, inside and around. */
    ck_assert_int_eq(add(0xf000, 0x2000, 3, VX_MEM_RWX), VX_EEXIST);
    ck_assert_int_eq(add(0x11000, 0x2000, 3, VX_MEM_RWX), VX_EEXIST);
    ck_assert_int_eq(add(0x10800 & ~0xfffull, 0x1000, 3, VX_MEM_RWX), VX_EEXIST);
    ck_assert_int_eq(add(0xe000, 0x10000, 3, VX_MEM_RWX), VX_EEXIST);
    ck_assert_uint_eq(vx_as_count(&as), 3);
    const struct vx_region *o = vx_as_overlap(&as, 0x11fff, 1);
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(o->gpa, 0x10000);
    /* Touching ranges do not overlap. */
    ck_assert_ptr_null(vx_as_overlap(&as, 0x12000, 0xe000));
    ck_assert_int_eq(add(0x12000, 0x1000, 3, VX_MEM_RWX), 0);
}
END_TEST

START_TEST(find_at_edges)
{
    ck_assert_int_eq(add(0x10000, 0x2000, 0, VX_MEM_RWX), 0);
    ck_assert_ptr_null(vx_as_find(&as, 0xffff));
    ck_assert_ptr_nonnull(vx_as_find(&as, 0x10000));
    ck_assert_ptr_nonnull(vx_as_find(&as, 0x11fff));
    ck_assert_ptr_null(vx_as_find(&as, 0x12000));
    ck_assert_ptr_null(vx_as_find(&as, UINT64_MAX));
}
END_TEST

START_TEST(region_at_top_of_address_space)
{
    ck_assert_int_eq(add(0xfffffffffffff000ull, 0x1000, 0, VX_MEM_RWX), 0);
    ck_assert_ptr_nonnull(vx_as_find(&as, UINT64_MAX));
    uint64_t bad = 0;
    /* Two bytes from the last byte would wrap to 0. */
    ck_assert(!vx_as_covered(&as, UINT64_MAX, 2, 0, &bad));
    ck_assert(vx_as_covered(&as, UINT64_MAX, 1, 0, &bad));
}
END_TEST

START_TEST(copies_span_adjacent_regions_all_or_nothing)
{
    ck_assert_int_eq(add(0x0, 0x1000, 0, VX_MEM_RWX), 0);
    ck_assert_int_eq(add(0x1000, 0x1000, 1, VX_MEM_RWX), 0);
    uint8_t buf[16];
    memset(buf, 0x5a, sizeof buf);
    ck_assert_int_eq(vx_as_write(&as, 0xff8, buf, sizeof buf, false), 0);
    ck_assert_uint_eq(ram[0][0xff8], 0x5a);
    ck_assert_uint_eq(ram[1][0x7], 0x5a);
    ck_assert_uint_eq(ram[1][0x8], 0);
    /* Runs past the end: nothing at all is written. */
    memset(buf, 0x77, sizeof buf);
    ck_assert_int_eq(vx_as_write(&as, 0x1ff8, buf, sizeof buf, false), VX_ERANGE);
    ck_assert_uint_eq(ram[1][0xff8], 0);
    uint64_t bad;
    ck_assert(!vx_as_covered(&as, 0x1ff8, 16, 0, &bad));
    ck_assert_uint_eq(bad, 0x2000);
    ck_assert_int_eq(vx_as_read(&as, 0xff8, buf, sizeof buf), 0);
    ck_assert_uint_eq(buf[0], 0x5a);
    ck_assert_uint_eq(buf[15], 0x5a);
    ck_assert_int_eq(vx_as_read(&as, 0x1ff8, buf, sizeof buf), VX_ERANGE);
}
END_TEST

START_TEST(gap_between_regions_is_not_covered)
{
    ck_assert_int_eq(add(0x0, 0x1000, 0, VX_MEM_RWX), 0);
    ck_assert_int_eq(add(0x2000, 0x1000, 1, VX_MEM_RWX), 0);
    uint64_t bad;
    ck_assert(!vx_as_covered(&as, 0x800, 0x2000, 0, &bad));
    ck_assert_uint_eq(bad, 0x1000);
    ck_assert_ptr_null(vx_as_ptr(&as, 0x800, 0x1000));
    ck_assert_ptr_eq(vx_as_ptr(&as, 0x2800, 0x800), &ram[1][0x800]);
    ck_assert_ptr_null(vx_as_ptr(&as, 0x2800, 0x801));
}
END_TEST

START_TEST(rom_is_written_only_by_the_host)
{
    ck_assert_int_eq(add(0x0, 0x1000, 0, VX_MEM_READ | VX_MEM_EXEC), 0);
    uint8_t b = 0x42;
    ck_assert_int_eq(vx_as_write(&as, 0x10, &b, 1, false), 0);
    ck_assert_uint_eq(ram[0][0x10], 0);
    ck_assert_int_eq(vx_as_write(&as, 0x10, &b, 1, true), 0);
    ck_assert_uint_eq(ram[0][0x10], 0x42);
    ck_assert_int_eq(vx_as_zero(&as, 0x10, 1), 0);
    ck_assert_uint_eq(ram[0][0x10], 0);
}
END_TEST

START_TEST(remove_needs_exact_match)
{
    ck_assert_int_eq(add(0x0, 0x2000, 0, VX_MEM_RWX), 0);
    ck_assert_int_eq(add(0x4000, 0x1000, 1, VX_MEM_RWX), 0);
    struct vx_region out;
    ck_assert_int_eq(vx_as_remove(&as, 0x0, 0x1000, &out), VX_ENOENT);
    ck_assert_int_eq(vx_as_remove(&as, 0x1000, 0x1000, &out), VX_ENOENT);
    ck_assert_int_eq(vx_as_remove(&as, 0x0, 0x2000, &out), 0);
    ck_assert_ptr_eq(out.host, ram[0]);
    ck_assert_uint_eq(vx_as_count(&as), 1);
    ck_assert_ptr_null(vx_as_find(&as, 0x0));
    ck_assert_ptr_nonnull(vx_as_find(&as, 0x4000));
    /* The hole can be filled again. */
    ck_assert_int_eq(add(0x0, 0x4000, 2, VX_MEM_RWX), 0);
}
END_TEST

START_TEST(many_regions_stay_sorted)
{
    /* Insert 200 one-page regions in a scrambled order; lookups must find
     * each by binary search. */
    uint8_t *page = calloc(1, 0x1000);
    ck_assert_ptr_nonnull(page);
    for (unsigned i = 0; i < 200; i++) {
        unsigned k = (i * 73) % 200;
        struct vx_region r = { .gpa = (uint64_t)k * 0x2000, .size = 0x1000, .host = page,
                               .prot = VX_MEM_RWX, .slot = (int)k };
        ck_assert_int_eq(vx_as_insert(&as, &r), 0);
    }
    for (unsigned k = 0; k < 200; k++) {
        struct vx_region *r = vx_as_find(&as, (uint64_t)k * 0x2000 + 0x123);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->slot, (int)k);
        ck_assert_ptr_null(vx_as_find(&as, (uint64_t)k * 0x2000 + 0x1000));
    }
    for (size_t i = 1; i < vx_as_count(&as); i++)
        ck_assert_uint_lt(vx_as_region(&as, i - 1)->gpa, vx_as_region(&as, i)->gpa);
    free(page);
}
END_TEST

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Released memory is reused (the pool), and zeroed memory comes back
 * zero whatever the last owner wrote, even when it was handed back while
 * another of the same size was out. */
START_TEST(host_memory_is_pooled_and_comes_back_zeroed)
{
    const size_t size = 2u << 20;
    uint8_t *a = vxi_host_alloc(size, true), *b = vxi_host_alloc(size, true);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(all_zero(a, size) && all_zero(b, size));
    memset(a, 0x5a, 4096);            /* first page */
    a[size - 1] = 1;                  /* last byte */
    memset(a + 0x81000, 0xff, 8192);  /* two pages in the middle */
    b[12345] = 7;
    vxi_host_free(a, size, true);
    vxi_host_free(b, size, true);
    uint8_t *c = vxi_host_alloc(size, true), *d = vxi_host_alloc(size, true);
    ck_assert_msg((c == a || c == b) && (d == a || d == b) && c != d,
                  "released mappings are reused");
    ck_assert(all_zero(c, size));
    ck_assert(all_zero(d, size));
    /* Unzeroed memory of another kind is never handed out as zeroed. */
    uint8_t *raw = vxi_host_alloc(size, false);
    ck_assert(raw != c && raw != d);
    raw[0] = 9;
    vxi_host_free(raw, size, false);
    uint8_t *e = vxi_host_alloc(size, true);
    ck_assert(e != raw);
    ck_assert(all_zero(e, size));
    vxi_host_free(c, size, true);
    vxi_host_free(d, size, true);
    vxi_host_free(e, size, true);
}
END_TEST

/* The same through machines: a guest's RAM written by one machine reads
 * as zeros in the next machine that gets the same pages. */
START_TEST(guest_ram_of_a_new_machine_is_zero)
{
    vx_machine_opts o = { .size = sizeof o, .accel = VX_ACCEL_TCG };
    uint8_t buf[4096], zero[4096] = { 0 };
    memset(buf, 0xa5, sizeof buf);
    for (unsigned round = 0; round < 3; round++) {
        vx_machine *m;
        ck_assert_int_eq(vx_machine_create(&o, &m), 0);
        ck_assert_int_eq(vx_memory_map(m, 0, 1u << 20, NULL, VX_MEM_RWX), 0);
        for (uint64_t gpa = 0; gpa < (1u << 20); gpa += 0x11000) {
            uint8_t got[4096];
            ck_assert_int_eq(vx_memory_read(m, gpa, got, sizeof got), 0);
            ck_assert_msg(memcmp(got, zero, sizeof got) == 0, "round %u gpa 0x%llx", round,
                          (unsigned long long)gpa);
            ck_assert_int_eq(vx_memory_write(m, gpa, buf, sizeof buf), 0);
        }
        vx_machine_destroy(m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mmu");
    TCase *tc = tcase_create("addrspace");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, insert_keeps_order_and_rejects_overlap);
    tcase_add_test(tc, find_at_edges);
    tcase_add_test(tc, region_at_top_of_address_space);
    tcase_add_test(tc, copies_span_adjacent_regions_all_or_nothing);
    tcase_add_test(tc, gap_between_regions_is_not_covered);
    tcase_add_test(tc, rom_is_written_only_by_the_host);
    tcase_add_test(tc, remove_needs_exact_match);
    tcase_add_test(tc, many_regions_stay_sorted);
    tcase_add_test(tc, host_memory_is_pooled_and_comes_back_zeroed);
    tcase_add_test(tc, guest_ram_of_a_new_machine_is_zero);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
