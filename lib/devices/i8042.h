/*
 * The PC keyboard controller (i8042) as far as booting needs it: data port
 * 0x60, status/command port 0x64, the command byte and controller RAM,
 * self-tests, the output port with the A20 gate and the reset line, and
 * the chipset's system control port A (0x92: fast A20, fast reset). The
 * keyboard behind it answers the usual commands (reset, identify, LEDs,
 * scan set, enable/disable) but has no keys of its own: the host feeds
 * scan codes, already in the set the guest expects, with i8042_kbd_input.
 * No mouse is attached: bytes sent to the aux port are answered with a
 * resend request (0xfe) on the aux channel.
 *
 * The guest resets the machine through command 0xfe (or any 0xf0-0xff
 * pulsing output port bit 0), a 0xd1 write clearing bit 0, or a rising
 * bit 0 at port 0x92: config.reset is called, last, after the device's
 * state is updated, so it may reset this device (and the machine).
 * config.a20 is called when the A20 gate (output port bit 1 OR port 0x92
 * bit 1) changes.
 *
 * Wiring:
 *   vx_pio_register(m, I8042_DATA_PORT, 1, &i8042_ops, kbc);
 *   vx_pio_register(m, I8042_CMD_PORT, 1, &i8042_ops, kbc);
 *   vx_pio_register(m, I8042_PORT_A, 1, &i8042_ops, kbc);
 * Not thread-safe: the board serialises every call on one device.
 */
#ifndef VX_DEVICES_I8042_H
#define VX_DEVICES_I8042_H

#include <stddef.h>
#include <stdint.h>

#include <libvx/vx.h>

enum {
    I8042_DATA_PORT = 0x60,
    I8042_CMD_PORT = 0x64, /* status when read */
    I8042_PORT_A = 0x92,   /* system control port A */
    I8042_KBD_IRQ = 1,
    I8042_AUX_IRQ = 12,
    I8042_QUEUE = 16,
};

struct i8042_state {
    uint8_t ram[32];            /* controller RAM; ram[0] is the command byte */
    uint8_t queue[I8042_QUEUE]; /* queue[0] is in the output buffer */
    uint16_t queue_aux;         /* bit i: queue[i] came from the aux port */
    uint8_t queue_len;          /* <= I8042_QUEUE; nonzero: output buffer full */
    uint8_t last_read;          /* what port 0x60 returns when empty */
    uint8_t sys;                /* status bit 2, the system flag */
    uint8_t last_was_cmd;       /* status bit 3: last write was to port 0x64 */
    uint8_t pending_cmd;        /* controller command waiting for its data byte */
    uint8_t kbd_pending;        /* keyboard command waiting for its parameter */
    uint8_t kbd_scan_set;       /* 1-3 */
    uint8_t outport;            /* bit 0: not in reset, bit 1: A20 */
    uint8_t port_a;             /* port 0x92 */
    uint8_t a20;                /* the gate as last reported */
    uint8_t irq_kbd, irq_aux;   /* as last driven */
};

struct i8042_config {
    void (*set_irq)(void *ctx, unsigned line, int level); /* may be NULL */
    void (*reset)(void *ctx);                             /* may be NULL */
    void (*a20)(void *ctx, int enabled);                  /* may be NULL */
    void *ctx;
    unsigned kbd_irq, aux_irq; /* lines for set_irq: I8042_KBD_IRQ, I8042_AUX_IRQ */
};

struct i8042 {
    struct i8042_state s;
    struct i8042_config cfg;
};

/* Zero the device, take the configuration and reset it (A20 starts
 * enabled, as on machines whose firmware enables it, and as under KVM,
 * which has no A20 gate at all: config.a20 is not called for it). */
void i8042_init(struct i8042 *kbc, const struct i8042_config *cfg);

/* The state firmware leaves: command byte 0x45 (keyboard interrupt,
 * system flag, translation), output buffer empty, output port 0x03 (A20
 * on), port 0x92 zero. Reports A20 and the IRQs if they change. */
void i8042_reset(struct i8042 *kbc);

/* Queue scan code bytes from the keyboard; returns how many fit. */
size_t i8042_kbd_input(struct i8042 *kbc, const uint8_t *bytes, size_t n);

/* The A20 gate now. */
int i8042_a20(const struct i8042 *kbc);

void i8042_save(const struct i8042 *kbc, struct i8042_state *out);
int i8042_load(struct i8042 *kbc, const struct i8042_state *in);

/* Ports 0x60, 0x64 and 0x92 (absolute port numbers). */
int i8042_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int i8042_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops i8042_ops;

#endif
