/* virtio-console (virtio 1.x §5.3), one port, no multiport. */
#include "config.h"

#include <stdlib.h>

#include "core/error.h"
#include "devices/virtio_console.h"

static void console_notify(void *dev, unsigned queue)
{
    struct virtio_console *c = dev;
    if (queue != VIRTIO_CONSOLE_TX)
        return; /* new receive buffers: the host's next input finds them */
    struct virtq *q = &c->t.vq[queue];
    for (unsigned n = 0; n < q->s.size; n++) {
        struct virtq_chain *ch = &c->tx_chain;
        if (virtq_pop(q, ch) <= 0)
            break;
        /* Device-writable buffers on the transmit queue carry nothing. */
        for (unsigned k = 0; k < ch->readable && c->out; k++)
            c->out(c->ctx, ch->seg[k].host, ch->seg[k].len);
        if (virtq_push(q, ch->head, 0))
            break;
    }
}

static const struct virtio_device_ops console_ops = {
    .notify = console_notify,
};

size_t virtio_console_input(struct virtio_console *c, const void *buf, size_t len)
{
    if (!c || !buf || !virtio_pci_queue_ready(&c->t, VIRTIO_CONSOLE_RX))
        return 0;
    struct virtq *q = &c->t.vq[VIRTIO_CONSOLE_RX];
    size_t taken = 0;
    for (unsigned n = 0; n < q->s.size && taken < len; n++) {
        struct virtq_chain *ch = &c->rx_chain;
        if (virtq_pop(q, ch) <= 0)
            break;
        size_t put = virtq_chain_write(q, ch, 0, (const uint8_t *)buf + taken, len - taken);
        taken += put;
        if (virtq_push(q, ch->head, (uint32_t)put))
            break;
    }
    virtio_pci_update(&c->t);
    return taken;
}

void virtio_console_reset(struct virtio_console *c)
{
    virtio_pci_reset(&c->t);
}

int virtio_console_create(vx_machine *m, struct pci_host *h,
                          void (*out)(void *ctx, const uint8_t *buf, size_t len), void *ctx,
                          struct virtio_console **out_console)
{
    if (out_console)
        *out_console = NULL;
    if (!m || !h || !out_console)
        return vxi_error(VX_EINVAL, "virtio_console_create: NULL argument");
    struct virtio_console *c = calloc(1, sizeof *c);
    if (!c)
        return vxi_error(VX_ENOMEM, "virtio_console_create: out of memory");
    c->out = out;
    c->ctx = ctx;
    struct virtio_pci_config cfg = {
        .device_type = VIRTIO_ID_CONSOLE,
        .class_code = 0x078000, /* simple communication, other */
        .features = VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_VERSION_1),
        .num_queues = 2,
        .queue_size = VIRTIO_CONSOLE_QUEUE_SIZE,
        .config = c->config,
        .config_len = sizeof c->config,
        .ops = &console_ops,
        .dev = c,
    };
    int rc = virtio_pci_init(&c->t, m, h, &cfg);
    if (rc) {
        free(c);
        return rc;
    }
    *out_console = c;
    return 0;
}

void virtio_console_destroy(struct virtio_console *c)
{
    if (!c)
        return;
    virtio_pci_fini(&c->t);
    free(c);
}
