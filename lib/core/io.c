/* Claimed port and MMIO ranges, and the dispatch every accelerator calls. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/io.h"
#include "core/machine.h"

void vx_io_bus_init(struct vx_io_bus *bus)
{
    memset(bus, 0, sizeof *bus);
}

void vx_io_bus_fini(struct vx_io_bus *bus)
{
    free(bus->ranges);
    memset(bus, 0, sizeof *bus);
}

/* Index of the first range whose last byte is >= addr. */
static size_t first_ending_after(const struct vx_io_bus *bus, uint64_t addr)
{
    size_t lo = 0, hi = bus->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct vx_io_range *r = &bus->ranges[mid];
        if (r->base + r->size - 1 < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct vx_io_range *vx_io_bus_overlap(const struct vx_io_bus *bus, uint64_t base,
                                            uint64_t size)
{
    size_t i = first_ending_after(bus, base);
    if (i < bus->count && bus->ranges[i].base <= base + (size - 1))
        return &bus->ranges[i];
    return NULL;
}

const struct vx_io_range *vx_io_bus_find(const struct vx_io_bus *bus, uint64_t addr)
{
    return vx_io_bus_overlap(bus, addr, 1);
}

int vx_io_bus_add(struct vx_io_bus *bus, uint64_t base, uint64_t size, const vx_io_ops *ops,
                  void *opaque, const struct vx_io_range **conflict)
{
    const struct vx_io_range *c = vx_io_bus_overlap(bus, base, size);
    if (c) {
        if (conflict)
            *conflict = c;
        return VX_EEXIST;
    }
    if (bus->count == bus->capacity) {
        size_t cap = bus->capacity ? bus->capacity * 2 : 8;
        struct vx_io_range *n = realloc(bus->ranges, cap * sizeof *n);
        if (!n)
            return VX_ENOMEM;
        bus->ranges = n;
        bus->capacity = cap;
    }
    size_t i = first_ending_after(bus, base);
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->count - i) * sizeof *bus->ranges);
    struct vx_io_range *r = &bus->ranges[i];
    memset(r, 0, sizeof *r);
    r->base = base;
    r->size = size;
    r->ops.size = sizeof r->ops;
    r->ops.read = ops->read;
    r->ops.write = ops->write;
    r->opaque = opaque;
    bus->count++;
    return 0;
}

int vx_io_bus_remove(struct vx_io_bus *bus, uint64_t base)
{
    size_t i = first_ending_after(bus, base);
    if (i == bus->count || bus->ranges[i].base != base)
        return VX_ENOENT;
    memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->count - i - 1) * sizeof *bus->ranges);
    bus->count--;
    return 0;
}

static const char *space_name(uint8_t space)
{
    return space == VX_IO_PIO ? "port" : "MMIO";
}

int vx_io_dispatch(struct vx_vcpu *v, struct vx_io *io)
{
    vx_machine *m = v->machine;
    const struct vx_io_range *r =
        vx_io_bus_find(io->space == VX_IO_PIO ? &m->pio : &m->mmio, io->addr);
    if (!r)
        return VX_IO_UNCLAIMED;

    int rc;
    if (io->is_write) {
        rc = r->ops.write ? r->ops.write(r->opaque, io->addr, io->len, io->value) : 0;
    } else {
        uint64_t value = 0;
        if (r->ops.read) {
            rc = r->ops.read(r->opaque, io->addr, io->len, &value);
        } else {
            value = ~0ull;
            rc = 0;
        }
        /* Only the bytes of the access reach the guest. */
        io->value = io->len >= 8 ? value : value & ((1ull << (io->len * 8)) - 1);
    }
    if (rc != 0)
        return vxi_error(VX_EIO, "%s %s callback at 0x%llx (len %u) returned %d",
                         space_name(io->space), io->is_write ? "write" : "read",
                         (unsigned long long)io->addr, io->len, rc);
    return VX_IO_DONE;
}
