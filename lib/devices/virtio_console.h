/*
 * virtio-console (virtio 1.x §5.3) with one port and no multiport
 * control queue, on the modern PCI transport (virtio_pci.h): queue 0 is
 * receiveq0 (host to guest), queue 1 transmitq0 (guest to host). Linux
 * binds it as /dev/hvc0. No feature beyond VIRTIO_F_VERSION_1 and
 * VIRTIO_F_INDIRECT_DESC is offered; cols and rows read 0.
 *
 * Guest output reaches the `out` callback synchronously, on the vCPU
 * thread that notified, one call per buffer (at most 128 buffers per
 * notification); `buf` points into guest RAM and is valid only during the
 * call, and it may call virtio_console_input(). Host input goes into receive buffers the guest made available;
 * what does not fit (no buffers, or the driver not ready) is refused and
 * the host offers it again later, as with the UART.
 *
 * Not thread-safe: the board serialises calls (its lock).
 */
#ifndef VX_DEVICES_VIRTIO_CONSOLE_H
#define VX_DEVICES_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include <libvx/vx.h>

#include "devices/pci.h"
#include "devices/virtio_pci.h"

enum {
    VIRTIO_CONSOLE_RX = 0,
    VIRTIO_CONSOLE_TX = 1,
    VIRTIO_CONSOLE_QUEUE_SIZE = 128,
    VIRTIO_CONSOLE_CONFIG_SIZE = 12, /* cols, rows, max_nr_ports, emerg_wr */
};

struct virtio_console {
    struct virtio_pci t; /* its state, the queues' and the PCI function's */
    void (*out)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
    uint8_t config[VIRTIO_CONSOLE_CONFIG_SIZE];
    /* The buffers being served: one per direction, so that `out` may
     * offer input (an echo) while its transmit buffer is still in use. */
    struct virtq_chain rx_chain, tx_chain;
};

/* A virtio-console function on host h; `out` (may be NULL: output is
 * dropped) receives what the guest writes. Errors: VX_EINVAL (NULL
 * argument), VX_ENOMEM, VX_ERANGE (no room on the host). */
int virtio_console_create(vx_machine *m, struct pci_host *h,
                          void (*out)(void *ctx, const uint8_t *buf, size_t len), void *ctx,
                          struct virtio_console **out_console);

/* Take the function off its host and free it (NULL is accepted). */
void virtio_console_destroy(struct virtio_console *c);

/* Device reset, as a board reset does it. */
void virtio_console_reset(struct virtio_console *c);

/* Offer len bytes of host input; returns how many the guest's receive
 * buffers took (0 when the driver is not ready or has none). */
size_t virtio_console_input(struct virtio_console *c, const void *buf, size_t len);

#endif
