/*
 * A 16550A UART at eight consecutive ports (COM1: 0x3f8, IRQ 4). The line
 * side is the host's: bytes the guest transmits go to config.tx at once
 * (the transmitter is never busy, so THRE and TEMT are always set), and
 * the host hands received bytes to uart16550_receive(), which takes what
 * fits in the receiver (16 bytes with the FIFO on, 1 without) and leaves
 * the rest for the host to offer again after the guest has read some:
 * nothing is lost to overrun from the host side. The loopback mode (MCR
 * bit 4) is modelled, overrun included.
 *
 * With the FIFO on, received bytes below the trigger level interrupt only
 * by the character timeout: 4 character times (from the divisor and LCR)
 * after the last byte arrived or was read. That needs config.now_ns; the
 * board calls uart16550_next_event_ns()/uart16550_update() as for the
 * PIT. Without a clock the timeout is immediate: a byte never waits.
 *
 * Wiring:
 *   vx_pio_register(m, cfg.base, UART16550_PORT_COUNT, &uart16550_ops, uart);
 * Not thread-safe: the board serialises every call on one device.
 */
#ifndef VX_DEVICES_UART16550_H
#define VX_DEVICES_UART16550_H

#include <stddef.h>
#include <stdint.h>

#include <libvx/vx.h>

enum {
    UART16550_COM1_BASE = 0x3f8,
    UART16550_COM2_BASE = 0x2f8,
    UART16550_COM1_IRQ = 4,
    UART16550_COM2_IRQ = 3,
    UART16550_PORT_COUNT = 8,
    UART16550_FIFO_SIZE = 16,
    UART16550_CLOCK_HZ = 1843200, /* the PC's crystal: divisor 1 is 115200 baud */
};

/* Modem status inputs (the MSR's upper nibble), for uart16550_set_modem_lines. */
enum {
    UART16550_CTS = 0x10,
    UART16550_DSR = 0x20,
    UART16550_RI = 0x40,
    UART16550_DCD = 0x80,
};

struct uart16550_state {
    uint64_t rx_idle_since;          /* ns of the last byte received or read */
    uint8_t rx[UART16550_FIFO_SIZE]; /* receiver FIFO (ring) */
    uint8_t rx_head;                 /* index of the oldest byte, < 16 */
    uint8_t rx_count;                /* bytes held, <= 16 (<= 1 with the FIFO off) */
    uint8_t rx_timeout;              /* the character timeout has fired */
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    uint8_t fcr;          /* FIFO enable, DMA mode and trigger bits as written */
    uint8_t lsr_errors;   /* OE, PE, FE, BI until LSR is read */
    uint8_t msr;          /* lines in bits 4-7, their deltas in bits 0-3 */
    uint8_t modem_in;     /* the host's CTS/DSR/RI/DCD (outside loopback) */
    uint8_t thre_pending; /* THR-empty interrupt not yet cleared */
    uint8_t irq_level;    /* as last driven */
};

struct uart16550_config {
    uint16_t base; /* first port; the ops decode addr - base */
    unsigned irq;  /* the line set_irq is called with */
    /* The interrupt output changed. May be NULL. */
    void (*set_irq)(void *ctx, unsigned line, int level);
    /* A byte the guest transmitted (word length applied: a 7-bit byte has
     * bit 7 clear). May be NULL: the byte is dropped. */
    void (*tx)(void *ctx, uint8_t byte);
    uint64_t (*now_ns)(void *ctx); /* optional: paces the character timeout */
    void *ctx;
    /* PC serial cards pass the interrupt to the bus only while MCR's OUT2
     * is set; true models that. False (QEMU's and most guests'
     * expectation) ignores OUT2. */
    int out2_gates_irq;
};

struct uart16550 {
    struct uart16550_state s;
    struct uart16550_config cfg;
};

/* Zero the device, take the configuration, set the divisor to 12 (9600
 * baud), the host's modem lines to CTS, DSR and DCD, and reset it. */
void uart16550_init(struct uart16550 *uart, const struct uart16550_config *cfg);

/* The master reset: IER, FCR, LCR, MCR zero, the FIFO empty, no pending
 * interrupt (IRQ driven low if it was high). Divisor and scratch are kept. */
void uart16550_reset(struct uart16550 *uart);

/* Offer n bytes from the line; returns how many the receiver took (0 in
 * loopback, when the line is disconnected). */
size_t uart16550_receive(struct uart16550 *uart, const uint8_t *buf, size_t n);

/* How many bytes uart16550_receive would take now. */
size_t uart16550_can_receive(const struct uart16550 *uart);

/* Set the modem status inputs (UART16550_CTS | ...); the MSR deltas and
 * the modem status interrupt follow. */
void uart16550_set_modem_lines(struct uart16550 *uart, unsigned lines);

/* When the character timeout fires (UINT64_MAX: nothing scheduled), and
 * the catch-up call once it is due. */
uint64_t uart16550_next_event_ns(const struct uart16550 *uart, uint64_t now);
void uart16550_update(struct uart16550 *uart, uint64_t now);

/* Snapshots: load checks the FIFO indices (VX_ECORRUPT, device left
 * untouched) and drives the IRQ to the loaded level. */
void uart16550_save(const struct uart16550 *uart, struct uart16550_state *out);
int uart16550_load(struct uart16550 *uart, const struct uart16550_state *in);

/* Ports base..base+7 (absolute port numbers). */
int uart16550_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int uart16550_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops uart16550_ops;

#endif
