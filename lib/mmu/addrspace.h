/*
 * The guest-physical address space: a sorted array of non-overlapping memory
 * regions (RAM and ROM), each backed by host memory. Every guest-physical
 * access that touches host memory goes through here, bounds-checked, so no
 * guest-controlled address ever indexes host memory unchecked.
 *
 * Pure data structure: no locking (the machine serialises changes, which
 * happen only while its vCPUs are stopped), no error text (callers build it
 * from the returned codes and the conflicting region).
 */
#ifndef VX_MMU_ADDRSPACE_H
#define VX_MMU_ADDRSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu/ranges.h"

/* Begins with the base and size of a struct vx_range (see mmu/ranges.h). */
struct vx_region {
    uint64_t gpa;   /* first guest-physical byte */
    uint64_t size;  /* bytes, > 0, gpa + size does not wrap */
    uint8_t *host;  /* host memory backing [gpa, gpa + size) */
    unsigned prot;  /* VX_MEM_* */
    bool owned;     /* host memory was allocated by libvx: free it at removal */
    int slot;       /* the accelerator's slot number, -1 when it has none */
};

struct vx_addrspace {
    struct vx_ranges regions; /* of struct vx_region, sorted by gpa */
};

static inline size_t vx_as_count(const struct vx_addrspace *as)
{
    return as->regions.count;
}

static inline struct vx_region *vx_as_region(const struct vx_addrspace *as, size_t i)
{
    return vx_ranges_at(&as->regions, i);
}

void vx_as_init(struct vx_addrspace *as);
void vx_as_fini(struct vx_addrspace *as); /* frees the array, not the memory */

/* The region that would overlap [gpa, gpa + size), or NULL. */
const struct vx_region *vx_as_overlap(const struct vx_addrspace *as, uint64_t gpa, uint64_t size);

/* Insert a copy of *r. Returns 0, VX_EEXIST (overlap: see vx_as_overlap) or
 * VX_ENOMEM. */
int vx_as_insert(struct vx_addrspace *as, const struct vx_region *r);

/* Remove the region starting at gpa with exactly this size; its record goes
 * to *out. Returns 0 or VX_ENOENT. */
int vx_as_remove(struct vx_addrspace *as, uint64_t gpa, uint64_t size, struct vx_region *out);

/* The region containing gpa, or NULL. Does not modify the address space, so
 * vCPU threads and the host may look up concurrently. */
struct vx_region *vx_as_find(struct vx_addrspace *as, uint64_t gpa);

/* Is every byte of [gpa, gpa + len) mapped (possibly across adjacent
 * regions) in regions that have every VX_MEM_* bit of `need` (0: any
 * mapping)? len 0 is covered. On false, *bad_gpa is the first byte that is
 * not. */
bool vx_as_covered(struct vx_addrspace *as, uint64_t gpa, uint64_t len, unsigned need,
                   uint64_t *bad_gpa);

/* Copy between guest memory and buf. All or nothing: VX_ERANGE if any byte is
 * unmapped. `rom_writable` lets the host store into ROM (loading it); guest
 * stores pass false and ROM bytes are silently left as they are. */
int vx_as_read(struct vx_addrspace *as, uint64_t gpa, void *buf, size_t len);
int vx_as_write(struct vx_addrspace *as, uint64_t gpa, const void *buf, size_t len,
                bool rom_writable);
/* Set [gpa, gpa + len) to zero, host side (ROM included). All or nothing. */
int vx_as_zero(struct vx_addrspace *as, uint64_t gpa, uint64_t len);

/* A host pointer to [gpa, gpa + len) when it lies inside one region, else
 * NULL. */
void *vx_as_ptr(struct vx_addrspace *as, uint64_t gpa, uint64_t len);

#endif
