/*
 * The MC146818 real-time clock and its 128 bytes of CMOS memory, behind
 * the PC's index port 0x70 (bit 7: NMI disable) and data port 0x71.
 *
 * The clock is seeded from config.wall_clock (seconds since 1970, in
 * whatever zone the guest expects its RTC in: UTC for Linux, local time
 * for DOS and Windows) at init, then counts with config.now_ns, the same
 * clock the PIT uses: a paused or deterministic machine has a clock that
 * agrees with its timers, and a guest that sets the time keeps the time it
 * set. Update-in-progress, the periodic, alarm and update-ended flags are
 * functions of that time; the board calls mc146818_next_event_ns() and
 * mc146818_update() to keep the IRQ (8 on a PC) current between accesses.
 *
 * Wiring:
 *   vx_pio_register(m, MC146818_BASE, MC146818_PORT_COUNT, &mc146818_ops, rtc);
 * plus mc146818_set_memory_size() for the firmware's memory-size bytes.
 * Not thread-safe: the board serialises every call on one device.
 */
#ifndef VX_DEVICES_MC146818_H
#define VX_DEVICES_MC146818_H

#include <stdint.h>

#include <libvx/vx.h>

enum {
    MC146818_BASE = 0x70,
    MC146818_PORT_COUNT = 2,
    MC146818_IRQ = 8,
    MC146818_CMOS_SIZE = 128,
    /* Register indices. */
    MC146818_SECONDS = 0x00,
    MC146818_SECONDS_ALARM = 0x01,
    MC146818_MINUTES = 0x02,
    MC146818_MINUTES_ALARM = 0x03,
    MC146818_HOURS = 0x04,
    MC146818_HOURS_ALARM = 0x05,
    MC146818_WEEKDAY = 0x06,
    MC146818_DAY = 0x07,
    MC146818_MONTH = 0x08,
    MC146818_YEAR = 0x09,
    MC146818_REG_A = 0x0a,
    MC146818_REG_B = 0x0b,
    MC146818_REG_C = 0x0c,
    MC146818_REG_D = 0x0d,
    MC146818_CENTURY = 0x32, /* the IBM AT's (and the ACPI FADT's usual) century byte */
};

struct mc146818_state {
    int64_t base_s;    /* the clock's seconds at base_ns */
    uint64_t base_ns;  /* an update instant: updates fall at base_ns + k s */
    uint64_t flags_ns; /* register C is current up to this instant */
    uint8_t cmos[MC146818_CMOS_SIZE];
    uint8_t index;      /* selected register, < 128 */
    uint8_t nmi_masked; /* bit 7 of the last index write */
    uint8_t frozen;     /* SET or divider reset: the time bytes in cmos[] are the time */
    uint8_t weekday_adjust; /* the guest's weekday minus the computed one, 0-6 */
    uint8_t irq_level;
};

struct mc146818_config {
    uint64_t (*now_ns)(void *ctx);      /* NULL: time stands still */
    int64_t (*wall_clock)(void *ctx);   /* seconds since 1970; NULL: 2000-01-01 */
    /* IRQF changed. May be NULL; must not call back into the RTC. */
    void (*set_irq)(void *ctx, unsigned line, int level);
    void *ctx;
    unsigned irq; /* the line set_irq is called with: MC146818_IRQ on a PC */
};

struct mc146818 {
    struct mc146818_state s;
    struct mc146818_config cfg;
};

/* Zero the device and its memory, take the configuration, set the clock
 * from wall_clock, registers A = 0x26 (32.768 kHz, 1024 Hz), B = 0x02
 * (24-hour, BCD), D = 0x80 (valid). */
void mc146818_init(struct mc146818 *rtc, const struct mc146818_config *cfg);

/* The RESET pin: clears PIE, AIE, UIE and SQWE in B and the flags in C
 * (the IRQ falls). Time, memory and the other bits are battery-backed. */
void mc146818_reset(struct mc146818 *rtc);

/* Set the clock to `seconds` since 1970 as of now, starting a fresh
 * second (the host resynchronising, say after restoring a snapshot). */
void mc146818_set_time(struct mc146818 *rtc, int64_t seconds);

/* The clock now, in seconds since 1970 (the frozen registers while the
 * guest holds SET). */
int64_t mc146818_get_time(struct mc146818 *rtc);

/* When IRQF would next rise (an enabled periodic, alarm or update-ended
 * event; UINT64_MAX: none, or the IRQ is already high), and the call that
 * sets the flags due by `now`. */
uint64_t mc146818_next_event_ns(struct mc146818 *rtc, uint64_t now);
void mc146818_update(struct mc146818 *rtc, uint64_t now);

/* Raw CMOS memory for the board. Indices 0x00-0x0d (the clock) are
 * refused by the setter and idx >= 128 by both (get returns 0xff). A
 * byte in 0x10-0x2d updates the AT checksum at 0x2e (high) / 0x2f. */
void mc146818_cmos_set(struct mc146818 *rtc, unsigned idx, uint8_t value);
uint8_t mc146818_cmos_get(const struct mc146818 *rtc, unsigned idx);

/* The memory-size bytes BIOSes and SeaBIOS read: base memory in KiB at
 * 0x15/0x16, memory from 1 MiB in KiB (at most 0xffff) at 0x17/0x18 and
 * 0x30/0x31, memory from 16 MiB below 4 GiB in 64 KiB units at 0x34/0x35,
 * memory above 4 GiB in 64 KiB units at 0x5b-0x5d. */
void mc146818_set_memory_size(struct mc146818 *rtc, uint64_t below_4g, uint64_t above_4g);

/* Bit 7 of the last write to port 0x70: the board's NMI gate. */
int mc146818_nmi_masked(const struct mc146818 *rtc);

/* Snapshots: load checks the index and registers (VX_ECORRUPT, device
 * left untouched) and drives the IRQ to the loaded level. */
void mc146818_save(const struct mc146818 *rtc, struct mc146818_state *out);
int mc146818_load(struct mc146818 *rtc, const struct mc146818_state *in);

/* Ports 0x70-0x71 (absolute port numbers). */
int mc146818_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int mc146818_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops mc146818_ops;

#endif
