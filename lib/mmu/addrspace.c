/* The guest-physical address space: sorted regions, lookup, checked copies. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "mmu/addrspace.h"

void vx_as_init(struct vx_addrspace *as)
{
    memset(as, 0, sizeof *as);
}

void vx_as_fini(struct vx_addrspace *as)
{
    free(as->regions);
    memset(as, 0, sizeof *as);
}

/* Index of the first region whose end is above gpa (the only candidate to
 * contain gpa), or count. */
static size_t first_ending_after(const struct vx_addrspace *as, uint64_t gpa)
{
    size_t lo = 0, hi = as->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct vx_region *r = &as->regions[mid];
        if (r->gpa + r->size - 1 < gpa) /* last byte below gpa */
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct vx_region *vx_as_overlap(const struct vx_addrspace *as, uint64_t gpa, uint64_t size)
{
    if (size == 0)
        return NULL;
    size_t i = first_ending_after(as, gpa);
    if (i < as->count && as->regions[i].gpa <= gpa + (size - 1))
        return &as->regions[i];
    return NULL;
}

int vx_as_insert(struct vx_addrspace *as, const struct vx_region *r)
{
    if (vx_as_overlap(as, r->gpa, r->size))
        return VX_EEXIST;
    if (as->count == as->capacity) {
        size_t cap = as->capacity ? as->capacity * 2 : 8;
        struct vx_region *n = realloc(as->regions, cap * sizeof *n);
        if (!n)
            return VX_ENOMEM;
        as->regions = n;
        as->capacity = cap;
    }
    size_t i = first_ending_after(as, r->gpa);
    memmove(&as->regions[i + 1], &as->regions[i], (as->count - i) * sizeof *r);
    as->regions[i] = *r;
    as->count++;
    return 0;
}

int vx_as_remove(struct vx_addrspace *as, uint64_t gpa, uint64_t size, struct vx_region *out)
{
    size_t i = first_ending_after(as, gpa);
    if (i == as->count || as->regions[i].gpa != gpa || as->regions[i].size != size)
        return VX_ENOENT;
    if (out)
        *out = as->regions[i];
    memmove(&as->regions[i], &as->regions[i + 1], (as->count - i - 1) * sizeof(struct vx_region));
    as->count--;
    return 0;
}

struct vx_region *vx_as_find(struct vx_addrspace *as, uint64_t gpa)
{
    size_t i = first_ending_after(as, gpa);
    if (i < as->count && as->regions[i].gpa <= gpa)
        return &as->regions[i];
    return NULL;
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
