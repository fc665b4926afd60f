/* The debug-exit port. */
#include "config.h"

#include <string.h>

#include "devices/debug_exit.h"

void debug_exit_init(struct debug_exit *dev, const struct debug_exit_config *cfg)
{
    memset(dev, 0, sizeof *dev);
    if (cfg)
        dev->cfg = *cfg;
    if (!dev->cfg.port)
        dev->cfg.port = DEBUG_EXIT_PORT;
    unsigned w = dev->cfg.width;
    dev->cfg.width = w >= 4 ? 4 : w >= 2 ? 2 : 1;
}

void debug_exit_reset(struct debug_exit *dev)
{
    (void)dev;
}

int debug_exit_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = 0;
    return 0;
}

int debug_exit_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct debug_exit *dev = opaque;
    uint64_t off = addr - dev->cfg.port;
    if (addr < dev->cfg.port || off >= dev->cfg.width || len == 0)
        return 0;
    if (len < 8)
        value &= (1ull << (8 * len)) - 1;
    value <<= 8 * off;
    value &= (1ull << (8 * dev->cfg.width)) - 1;
    if (dev->cfg.exit)
        dev->cfg.exit(dev->cfg.ctx, (value << 1) | 1);
    return 0;
}

const vx_io_ops debug_exit_ops = {
    .size = sizeof(vx_io_ops),
    .read = debug_exit_read,
    .write = debug_exit_write,
};
