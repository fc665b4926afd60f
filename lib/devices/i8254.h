/*
 * The i8254 programmable interval timer: three 16-bit down-counters at
 * 0x40-0x42 with the control word register at 0x43, clocked at 1.193182
 * MHz, plus the PC's system control port B (0x61): channel 2's gate (bit
 * 0), the speaker data enable (bit 1), the refresh toggle (bit 4) and OUT2
 * (bit 5). Channel 0's OUT drives an IRQ line (0 on a PC).
 *
 * Time is whatever config.now_ns returns (nanoseconds, never decreasing):
 * the counters are computed from it, not ticked, so a test or a
 * deterministic run drives them exactly. Nothing happens between calls;
 * the board keeps IRQ0 current:
 *   - each port access brings the IRQ up to date by itself;
 *   - i8254_next_event_ns(pit, now) says when channel 0's OUT next rises
 *     (UINT64_MAX: never without another port write), and
 *     i8254_update(pit, now) delivers what fell due: a rising edge of OUT0
 *     is a low-then-high on the IRQ line (one edge however many periods
 *     passed since the last update, as a CPU with interrupts off loses
 *     ticks on a PC).
 * Wiring:
 *   vx_pio_register(m, I8254_BASE, I8254_PORT_COUNT, &i8254_ops, pit);
 *   vx_pio_register(m, I8254_PORT_B, 1, &i8254_ops, pit);
 *
 * Not thread-safe: the board serialises every call on one device.
 */
#ifndef VX_DEVICES_I8254_H
#define VX_DEVICES_I8254_H

#include <stdint.h>

#include <libvx/vx.h>

enum {
    I8254_BASE = 0x40,
    I8254_PORT_COUNT = 4,
    I8254_PORT_B = 0x61,
    I8254_HZ = 1193182,
};

/* One counter. Times are in input clock ticks: floor(ns * I8254_HZ / 1e9)
 * of config.now_ns; a snapshot is only meaningful with that clock. */
struct i8254_channel_state {
    uint64_t start;      /* tick at which elapsed time is 0 (the count loaded) */
    uint64_t frozen;     /* elapsed ticks when the gate holds the count */
    uint64_t null_until; /* tick at which the written count is in the counter */
    uint32_t count;      /* the count in effect, 1-65536 (10000 in BCD) */
    uint32_t pending;    /* written, for the next reload (modes 1, 2, 3, 5); 0: none */
    uint16_t latch;      /* latched count, as it will be read */
    uint8_t ctrl;        /* low 6 bits of the control word: access, mode, BCD */
    uint8_t armed;       /* a count was written since the control word */
    uint8_t running;     /* modes 1 and 5: triggered by the gate */
    uint8_t paused;      /* the gate is holding the count (frozen is valid) */
    uint8_t gate;
    uint8_t write_msb;   /* lsb/msb access: the next byte written is the msb */
    uint8_t write_lsb;   /* the lsb written before it */
    uint8_t read_msb;    /* lsb/msb access: the next byte read is the msb */
    uint8_t latched;     /* latch holds a count not yet read in full */
    uint8_t status;      /* latched status byte (read-back) */
    uint8_t status_latched;
};

struct i8254_state {
    struct i8254_channel_state ch[3];
    uint64_t irq_tick; /* IRQ edges up to this tick have been delivered */
    uint8_t irq_level; /* as last driven */
    uint8_t port_b;    /* bits 0-3 of port 0x61 */
};

struct i8254_config {
    uint64_t (*now_ns)(void *ctx); /* NULL: time stands still at 0 */
    /* Channel 0's output changed. May be NULL; must not call back into
     * the PIT. */
    void (*set_irq)(void *ctx, unsigned line, int level);
    void *ctx;
    unsigned irq; /* the line set_irq is called with: 0 on a PC */
};

struct i8254 {
    struct i8254_state s;
    struct i8254_config cfg;
};

/* Zero the device, take the configuration and reset it. */
void i8254_init(struct i8254 *pit, const struct i8254_config *cfg);

/* Every counter unprogrammed (mode 0 waiting for a count: OUT0 low, so
 * no timer interrupt until the guest programs one), gate 2 and the port B
 * bits clear. Drives the IRQ low if it was high. */
void i8254_reset(struct i8254 *pit);

/* When the next rising edge of OUT0 is due: `now` or earlier if one is
 * waiting for i8254_update, UINT64_MAX if none will come by itself. */
uint64_t i8254_next_event_ns(struct i8254 *pit, uint64_t now);

/* Deliver the IRQ edges and level due by `now`. */
void i8254_update(struct i8254 *pit, uint64_t now);

/* A channel's OUT level at `now` (channel 2 and port B bit 1 are the
 * speaker). -1 for a bad channel. */
int i8254_out(struct i8254 *pit, unsigned channel, uint64_t now);

/* Snapshots: load checks the fields it can (VX_ECORRUPT, device left
 * untouched) and drives the IRQ to the loaded level. */
void i8254_save(const struct i8254 *pit, struct i8254_state *out);
int i8254_load(struct i8254 *pit, const struct i8254_state *in);

/* Ports 0x40-0x43 and 0x61 (absolute port numbers). */
int i8254_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int i8254_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops i8254_ops;

#endif
