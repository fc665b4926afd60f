/* Claimed port and MMIO ranges, and the dispatch every accelerator calls. */
#include "config.h"

#include "core/error.h"
#include "core/io.h"
#include "core/machine.h"

void vx_io_bus_init(struct vx_io_bus *bus)
{
    vx_ranges_init(&bus->ranges, sizeof(struct vx_io_range));
    bus->generation = 1;
}

void vx_io_bus_fini(struct vx_io_bus *bus)
{
    vx_ranges_fini(&bus->ranges);
}

const struct vx_io_range *vx_io_bus_overlap(const struct vx_io_bus *bus, uint64_t base,
                                            uint64_t size)
{
    return vx_ranges_overlap(&bus->ranges, base, size);
}

const struct vx_io_range *vx_io_bus_find(const struct vx_io_bus *bus, uint64_t addr)
{
    return vx_ranges_find(&bus->ranges, addr);
}

int vx_io_bus_add(struct vx_io_bus *bus, uint64_t base, uint64_t size, const vx_io_ops *ops,
                  void *opaque, const struct vx_io_range **conflict)
{
    /* Only the members this library knows are kept: ops->size may be larger. */
    struct vx_io_range r = {
        .base = base, .size = size,
        .ops = { .size = sizeof r.ops, .read = ops->read, .write = ops->write },
        .opaque = opaque,
    };
    int err;
    const void *c = NULL;
    bus->generation++;
    vx_ranges_insert(&bus->ranges, &r, &err, &c);
    if (err == VX_EEXIST && conflict)
        *conflict = c;
    return err;
}

int vx_io_bus_remove(struct vx_io_bus *bus, uint64_t base)
{
    bus->generation++;
    return vx_ranges_remove(&bus->ranges, base, 0, NULL);
}

static const char *space_name(uint8_t space)
{
    return space == VX_IO_PIO ? "port" : "MMIO";
}

int vx_io_dispatch(struct vx_vcpu *v, struct vx_io *io)
{
    vx_machine *m = v->machine;
    const struct vx_io_bus *bus = io->space == VX_IO_PIO ? &m->pio : &m->mmio;
    struct vx_io_cache *cache = &v->io_cache[io->space];
    const struct vx_io_range *r = cache->range;
    if (cache->generation != bus->generation || !r || io->addr - r->base >= r->size) {
        r = vx_io_bus_find(bus, io->addr);
        if (!r)
            return VX_IO_UNCLAIMED;
        cache->generation = bus->generation;
        cache->range = r;
    }

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
