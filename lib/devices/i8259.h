/*
 * The PC's pair of i8259A programmable interrupt controllers: a master at
 * 0x20/0x21 whose IR2 input is the slave's INT output, a slave at
 * 0xa0/0xa1, and the PIIX-style edge/level control registers (ELCR) at
 * 0x4d0/0x4d1. Lines 0-7 are the master's IR0-7, lines 8-15 the slave's.
 *
 * Wiring for a board:
 *   vx_pio_register(m, I8259_MASTER_BASE, I8259_PORT_COUNT, &i8259_ops, pic);
 *   vx_pio_register(m, I8259_SLAVE_BASE, I8259_PORT_COUNT, &i8259_ops, pic);
 *   vx_pio_register(m, I8259_ELCR_BASE, I8259_PORT_COUNT, &i8259_ops, pic);
 * Devices call i8259_set_irq() when a line changes level. The INTR output
 * goes to config.set_intr whenever it changes; when the CPU takes an
 * external interrupt (IF set, INTR high) it calls i8259_acknowledge(), the
 * INTA cycle, and delivers the vector it returns.
 *
 * Not thread-safe: the board serialises every call on one device.
 */
#ifndef VX_DEVICES_I8259_H
#define VX_DEVICES_I8259_H

#include <stdint.h>

#include <libvx/vx.h>

enum {
    I8259_MASTER_BASE = 0x20,
    I8259_SLAVE_BASE = 0xa0,
    I8259_ELCR_BASE = 0x4d0, /* 0x4d0: lines 0-7, 0x4d1: lines 8-15 */
    I8259_PORT_COUNT = 2,    /* each of the three ranges */
    I8259_LINES = 16,
    I8259_CASCADE_LINE = 2,  /* the master input the slave drives */
};

/* One chip. Plain data: a snapshot is a copy of struct i8259_state. */
struct i8259_chip_state {
    uint8_t irr;         /* interrupt request register */
    uint8_t isr;         /* in-service register */
    uint8_t imr;         /* interrupt mask register (OCW1) */
    uint8_t pins;        /* input levels as last driven: edge detection, level mode */
    uint8_t elcr;        /* 1: the line is level-triggered (ELCR) */
    uint8_t vector_base; /* ICW2, low 3 bits clear */
    uint8_t icw3;        /* master: inputs with a slave; slave: its identity */
    uint8_t init_step;   /* 0: initialised; 2, 3, 4: the ICW expected next */
    uint8_t lowest;      /* the line with the lowest priority (rotation), 0-7 */
    uint8_t ltim;        /* ICW1: every line level-triggered */
    uint8_t single;      /* ICW1: no cascade */
    uint8_t need_icw4;   /* ICW1: IC4 */
    uint8_t icw4;        /* last ICW4 (0 when ICW1 said none follows) */
    uint8_t rotate_aeoi; /* OCW2: rotate in automatic EOI mode */
    uint8_t special_mask;/* OCW3: special mask mode */
    uint8_t read_isr;    /* OCW3: reads at the even port return ISR, else IRR */
    uint8_t poll;        /* OCW3: the next read is a poll */
};

struct i8259_state {
    struct i8259_chip_state chip[2]; /* [0] master, [1] slave */
    uint8_t intr;                    /* INTR output as last reported */
};

struct i8259_config {
    /* The INTR output changed. May be NULL. Must not call back into the PIC. */
    void (*set_intr)(void *ctx, int level);
    void *ctx;
};

struct i8259 {
    struct i8259_state s;
    struct i8259_config cfg;
};

/* Zero the device, take the callbacks and reset it. */
void i8259_init(struct i8259 *pic, const struct i8259_config *cfg);

/* The state a PC BIOS leaves: master vectors 0x08-0x0f, slave 0x70-0x77,
 * cascade on IR2, edge-triggered, 8086 mode, fully nested, every line
 * masked except the cascade, nothing pending or in service. The input
 * levels (what the devices drive) are kept: reset does not change wires.
 * Reports INTR low if it was high. */
void i8259_reset(struct i8259 *pic);

/* Drive input `line` (0-15) to `level` (0 or not). Edge-triggered lines
 * latch a request on a rising edge and keep it until acknowledged, even if
 * the line falls first (as KVM's in-kernel PIC does, so a device that
 * pulses its line works the same on both accelerators); level-triggered
 * lines request for as long as they are high. Line 2 is the cascade and
 * out-of-range lines are ignored. */
void i8259_set_irq(struct i8259 *pic, unsigned line, int level);

/* Is INTR high: a request the CPU should take when IF allows? */
int i8259_has_interrupt(const struct i8259 *pic);

/* The INTA cycle: resolve the highest-priority request, move it from IRR
 * to ISR (or not at all in automatic EOI mode) and return its vector,
 * through the slave when the request is the cascade. With nothing left to
 * deliver (the request went away after INTR was sampled) the chip answers
 * IR7's vector without setting ISR: a spurious IRQ 7, or IRQ 15 when the
 * master had already committed to the cascade (its IR2 stays in service). */
int i8259_acknowledge(struct i8259 *pic);

/* Set line's ELCR bit, as firmware does for PCI lines (what the guest's
 * write to port 0x4d0/0x4d1 would do; lines 0, 1, 2, 8, 13 stay edge). */
void i8259_set_level_triggered(struct i8259 *pic, unsigned line);

/* Snapshots: save copies the state; load checks it (VX_ECORRUPT if a field
 * is out of range, leaving the device untouched), takes it and reports
 * the INTR level it implies. */
void i8259_save(const struct i8259 *pic, struct i8259_state *out);
int i8259_load(struct i8259 *pic, const struct i8259_state *in);

/* Ports 0x20-0x21, 0xa0-0xa1, 0x4d0-0x4d1 (absolute port numbers). */
int i8259_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int i8259_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops i8259_ops;

#endif
