/* Sorted arrays of non-overlapping ranges. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "mmu/ranges.h"

void vx_ranges_init(struct vx_ranges *rs, size_t stride)
{
    memset(rs, 0, sizeof *rs);
    rs->stride = stride;
}

void vx_ranges_fini(struct vx_ranges *rs)
{
    free(rs->items);
    rs->items = NULL;
    rs->count = rs->capacity = 0;
}

/* The leading base and size of element i; memcpy because the element is
 * some other struct that merely begins with them. */
static struct vx_range head(const struct vx_ranges *rs, size_t i)
{
    struct vx_range r;
    memcpy(&r, vx_ranges_at(rs, i), sizeof r);
    return r;
}

/* Index of the first element whose last byte is at or above addr (the only
 * one that can contain addr), or count. */
static size_t first_ending_after(const struct vx_ranges *rs, uint64_t addr)
{
    size_t lo = 0, hi = rs->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct vx_range r = head(rs, mid);
        if (r.base + (r.size - 1) < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void *vx_ranges_overlap(const struct vx_ranges *rs, uint64_t base, uint64_t size)
{
    if (size == 0)
        return NULL;
    size_t i = first_ending_after(rs, base);
    if (i < rs->count && head(rs, i).base <= base + (size - 1))
        return vx_ranges_at(rs, i);
    return NULL;
}

void *vx_ranges_find(const struct vx_ranges *rs, uint64_t addr)
{
    return vx_ranges_overlap(rs, addr, 1);
}

void *vx_ranges_insert(struct vx_ranges *rs, const void *item, int *err, const void **conflict)
{
    struct vx_range r;
    memcpy(&r, item, sizeof r);
    void *c = vx_ranges_overlap(rs, r.base, r.size);
    if (c) {
        if (conflict)
            *conflict = c;
        *err = VX_EEXIST;
        return NULL;
    }
    if (rs->count == rs->capacity) {
        size_t cap = rs->capacity ? rs->capacity * 2 : 8;
        unsigned char *n = realloc(rs->items, cap * rs->stride);
        if (!n) {
            *err = VX_ENOMEM;
            return NULL;
        }
        rs->items = n;
        rs->capacity = cap;
    }
    size_t i = first_ending_after(rs, r.base);
    unsigned char *at = vx_ranges_at(rs, i);
    memmove(at + rs->stride, at, (rs->count - i) * rs->stride);
    memcpy(at, item, rs->stride);
    rs->count++;
    *err = 0;
    return at;
}

int vx_ranges_remove(struct vx_ranges *rs, uint64_t base, uint64_t size, void *out)
{
    size_t i = first_ending_after(rs, base);
    if (i == rs->count || head(rs, i).base != base || (size && head(rs, i).size != size))
        return VX_ENOENT;
    unsigned char *at = vx_ranges_at(rs, i);
    if (out)
        memcpy(out, at, rs->stride);
    memmove(at, at + rs->stride, (rs->count - i - 1) * rs->stride);
    rs->count--;
    return 0;
}
