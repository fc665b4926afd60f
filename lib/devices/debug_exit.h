/*
 * The debug-exit port, as QEMU's isa-debug-exit behaves: a guest write of
 * value v asks the host to end the run with status (v << 1) | 1, so a test
 * guest can report pass or fail and the status is never 0 (which a harness
 * would mistake for a clean exit of the emulator itself).
 *
 * Wiring:
 *   vx_pio_register(m, dev.cfg.port, dev.cfg.width, &debug_exit_ops, dev);
 * The board turns config.exit into a stop of the vCPU with that status.
 */
#ifndef VX_DEVICES_DEBUG_EXIT_H
#define VX_DEVICES_DEBUG_EXIT_H

#include <stdint.h>

#include <libvx/vx.h>

enum {
    DEBUG_EXIT_PORT = 0x501,
    DEBUG_EXIT_WIDTH = 1,
};

/* Nothing to save: the device has no state. */
struct debug_exit_config {
    uint16_t port;  /* first port of the range (0: DEBUG_EXIT_PORT) */
    unsigned width; /* 1, 2 or 4 bytes (0: 1; others are rounded down to one of those) */
    /* The guest asked to exit. May be NULL. */
    void (*exit)(void *ctx, uint64_t status);
    void *ctx;
};

struct debug_exit {
    struct debug_exit_config cfg;
};

void debug_exit_init(struct debug_exit *dev, const struct debug_exit_config *cfg);
void debug_exit_reset(struct debug_exit *dev); /* nothing to do */

/* A write anywhere in [port, port + width) is the value as the guest
 * wrote it, placed at its byte offset and cut to the port's width; reads
 * return 0. */
int debug_exit_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int debug_exit_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops debug_exit_ops;

#endif
