/*
 * The one I/O path: every guest port or MMIO access that is not plain RAM,
 * from any accelerator, becomes a struct vx_io and goes to vx_io_dispatch(),
 * which finds the device that claimed the address and calls it.
 */
#ifndef VX_CORE_IO_H
#define VX_CORE_IO_H

#include <stdbool.h>
#include <stdint.h>

#include <libvx/vx.h>

#include "mmu/ranges.h"

enum vx_io_space { VX_IO_PIO = 0, VX_IO_MMIO = 1 };

struct vx_io {
    uint64_t addr;   /* port or guest-physical address */
    uint64_t value;  /* written value, or the value read */
    uint8_t space;   /* enum vx_io_space */
    uint8_t len;     /* 1, 2, 4 or 8 */
    uint8_t is_write;
};

/* Begins with the base and size of a struct vx_range (see mmu/ranges.h). */
struct vx_io_range {
    uint64_t base, size;
    vx_io_ops ops;
    void *opaque;
};

/* The claimed ranges of one space: sorted, non-overlapping. */
struct vx_io_bus {
    struct vx_ranges ranges; /* of struct vx_io_range */
    /* Bumped by every add and remove: range pointers cached by vCPUs (which
     * an add may move) are valid only for the generation they were taken
     * in. Starts at 1, so a zeroed cache never matches. */
    uint64_t generation;
};

/* A vCPU's memory of the range it reached last on one bus: devices are hit
 * again and again. Per vCPU, so no other thread touches it. */
struct vx_io_cache {
    uint64_t generation;
    const struct vx_io_range *range;
};

void vx_io_bus_init(struct vx_io_bus *bus);
void vx_io_bus_fini(struct vx_io_bus *bus);
/* VX_EEXIST (with *conflict set) or VX_ENOMEM on failure. */
int vx_io_bus_add(struct vx_io_bus *bus, uint64_t base, uint64_t size, const vx_io_ops *ops,
                  void *opaque, const struct vx_io_range **conflict);
int vx_io_bus_remove(struct vx_io_bus *bus, uint64_t base);
const struct vx_io_range *vx_io_bus_find(const struct vx_io_bus *bus, uint64_t addr);
const struct vx_io_range *vx_io_bus_overlap(const struct vx_io_bus *bus, uint64_t base,
                                            uint64_t size);

/* Outcome of a dispatch. */
enum {
    VX_IO_DONE = 0,      /* a device handled it (io->value set for reads) */
    VX_IO_UNCLAIMED = 1, /* nobody claimed it: the accelerator decides */
    /* negative: the device's callback failed; vx_last_error() says how */
};

/* Called on the thread running v (vx_vcpu_current() is v there). */
struct vx_vcpu;
int vx_io_dispatch(struct vx_vcpu *v, struct vx_io *io);

#endif
