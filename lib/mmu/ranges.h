/*
 * A sorted array of non-overlapping ranges [base, base + size), size >= 1,
 * none wrapping past 2^64. Elements are any struct whose first members are
 * `uint64_t base, size` (struct vx_range); the array stores them by value.
 * Lookups are binary searches and do not modify the array, so readers on
 * several threads may look up concurrently while nobody changes it.
 *
 * The guest-physical address space and the port and MMIO buses are all
 * such arrays.
 */
#ifndef VX_MMU_RANGES_H
#define VX_MMU_RANGES_H

#include <stddef.h>
#include <stdint.h>

struct vx_range {
    uint64_t base, size;
};

struct vx_ranges {
    unsigned char *items;
    size_t count, capacity;
    size_t stride; /* sizeof the element struct */
};

void vx_ranges_init(struct vx_ranges *rs, size_t stride);
void vx_ranges_fini(struct vx_ranges *rs);

static inline void *vx_ranges_at(const struct vx_ranges *rs, size_t i)
{
    return rs->items + i * rs->stride;
}

/* The first element overlapping [base, base + size), or NULL. */
void *vx_ranges_overlap(const struct vx_ranges *rs, uint64_t base, uint64_t size);

/* The element containing addr, or NULL. */
void *vx_ranges_find(const struct vx_ranges *rs, uint64_t addr);

/* Insert a copy of *item (stride bytes). Returns the stored copy, or NULL
 * with *err set: VX_EEXIST (overlap; *conflict, if not NULL, points at the
 * element in the way) or VX_ENOMEM. */
void *vx_ranges_insert(struct vx_ranges *rs, const void *item, int *err, const void **conflict);

/* Remove the element starting at base (and, when size is not 0, of exactly
 * that size), copying it to *out when out is not NULL. Returns 0 or
 * VX_ENOENT. */
int vx_ranges_remove(struct vx_ranges *rs, uint64_t base, uint64_t size, void *out);

#endif
