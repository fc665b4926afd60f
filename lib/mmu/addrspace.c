/* The guest-physical address space: sorted regions, lookup, checked copies. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "mmu/addrspace.h"

void vx_as_init(struct vx_addrspace *as)
{
    vx_ranges_init(&as->regions, sizeof(struct vx_region));
}

void vx_as_fini(struct vx_addrspace *as)
{
    vx_ranges_fini(&as->regions);
}

const struct vx_region *vx_as_overlap(const struct vx_addrspace *as, uint64_t gpa, uint64_t size)
{
    return vx_ranges_overlap(&as->regions, gpa, size);
}

int vx_as_insert(struct vx_addrspace *as, const struct vx_region *r)
{
    int err;
    vx_ranges_insert(&as->regions, r, &err, NULL);
    return err;
}

int vx_as_remove(struct vx_addrspace *as, uint64_t gpa, uint64_t size, struct vx_region *out)
{
    return vx_ranges_remove(&as->regions, gpa, size, out);
}

struct vx_region *vx_as_find(struct vx_addrspace *as, uint64_t gpa)
{
    return vx_ranges_find(&as->regions, gpa);
}

bool vx_as_covered(struct vx_addrspace *as, uint64_t gpa, uint64_t len, unsigned need,
                   uint64_t *bad_gpa)
{
    while (len) {
        struct vx_region *r = vx_as_find(as, gpa);
        if (!r || (r->prot & need) != need) {
            if (bad_gpa)
                *bad_gpa = gpa;
            return false;
        }
        uint64_t avail = r->size - (gpa - r->gpa);
        if (avail >= len)
            return true;
        gpa += avail;
        len -= avail;
        /* A region ending at 2^64 with bytes still to go: the range wraps. */
        if (gpa == 0) {
            if (bad_gpa)
                *bad_gpa = 0;
            return false;
        }
    }
    return true;
}

/* Walk [gpa, gpa + len) region by region; the range was checked first so
 * the walk cannot fail half-way. */
enum copy_dir { COPY_IN, COPY_OUT, COPY_ZERO };

static int copy(struct vx_addrspace *as, uint64_t gpa, void *buf, size_t len,
                enum copy_dir dir, bool rom_writable)
{
    if (!vx_as_covered(as, gpa, len, 0, NULL))
        return VX_ERANGE;
    uint8_t *p = buf;
    while (len) {
        struct vx_region *r = vx_as_find(as, gpa);
        uint64_t off = gpa - r->gpa;
        size_t n = r->size - off < len ? (size_t)(r->size - off) : len;
        switch (dir) {
        case COPY_OUT:
            memcpy(p, r->host + off, n);
            break;
        case COPY_IN:
            if (rom_writable || (r->prot & VX_MEM_WRITE))
                memcpy(r->host + off, p, n);
            break;
        case COPY_ZERO:
            memset(r->host + off, 0, n);
            break;
        }
        if (p)
            p += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

int vx_as_read(struct vx_addrspace *as, uint64_t gpa, void *buf, size_t len)
{
    return copy(as, gpa, buf, len, COPY_OUT, false);
}

int vx_as_write(struct vx_addrspace *as, uint64_t gpa, const void *buf, size_t len,
                bool rom_writable)
{
    return copy(as, gpa, (void *)buf, len, COPY_IN, rom_writable);
}

int vx_as_zero(struct vx_addrspace *as, uint64_t gpa, uint64_t len)
{
    if (len > SIZE_MAX)
        return VX_ERANGE;
    return copy(as, gpa, NULL, (size_t)len, COPY_ZERO, true);
}

void *vx_as_ptr(struct vx_addrspace *as, uint64_t gpa, uint64_t len)
{
    struct vx_region *r = vx_as_find(as, gpa);
    if (!r || len > r->size - (gpa - r->gpa))
        return NULL;
    return r->host + (gpa - r->gpa);
}
