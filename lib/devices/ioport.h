/*
 * Byte-lane splitting shared by the legacy device models. Their registers
 * are one byte wide at consecutive ports; an ISA bus turns a 2- or 4-byte
 * access to such a device into byte cycles at port, port + 1, ..., and so
 * do these helpers, so a wide in/out from a guest reaches the registers it
 * would reach on a PC and never more than 8 of them.
 */
#ifndef VX_DEVICES_IOPORT_H
#define VX_DEVICES_IOPORT_H

#include <stdint.h>

typedef uint8_t vxdev_read_byte_fn(void *dev, uint64_t port);
typedef void vxdev_write_byte_fn(void *dev, uint64_t port, uint8_t value);

static inline unsigned vxdev_lanes(unsigned len)
{
    return len > 8 ? 8 : len;
}

/* Little-endian: the byte at `addr` is the low byte of the result. */
static inline uint64_t vxdev_split_read(void *dev, uint64_t addr, unsigned len,
                                        vxdev_read_byte_fn *read_byte)
{
    uint64_t v = 0;
    unsigned n = vxdev_lanes(len);
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)read_byte(dev, addr + i) << (8 * i);
    return v;
}

static inline void vxdev_split_write(void *dev, uint64_t addr, unsigned len, uint64_t value,
                                     vxdev_write_byte_fn *write_byte)
{
    unsigned n = vxdev_lanes(len);
    for (unsigned i = 0; i < n; i++)
        write_byte(dev, addr + i, (uint8_t)(value >> (8 * i)));
}

#endif
