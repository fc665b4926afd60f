/*
 * The i8254 PIT, from the 8254 datasheet's mode descriptions. A counter is
 * not decremented tick by tick: its value and OUT are functions of the
 * elapsed ticks since its count was loaded, so reading it, or asking when
 * OUT0 next rises, costs the same after a microsecond or an hour.
 */
#include "config.h"

#include <string.h>

#include "devices/i8254.h"
#include "devices/ioport.h"

#define NEVER UINT64_MAX

enum {
    PORT_B_WRITABLE = 0x0f, /* gate 2, speaker, parity and channel check enables */
    PORT_B_REFRESH = 0x10,
    PORT_B_OUT2 = 0x20,
    /* Port B's refresh bit toggles every 15.085 us on a PC (DRAM refresh
     * driven by channel 1 at count 18): 18 input ticks. */
    REFRESH_TICKS = 18,
};

static uint64_t tick_of(uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * I8254_HZ / 1000000000u);
}

/* The first nanosecond whose tick is `tick`. */
static uint64_t ns_of(uint64_t tick)
{
    unsigned __int128 ns = ((unsigned __int128)tick * 1000000000u + I8254_HZ - 1) / I8254_HZ;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static uint64_t now_ns(const struct i8254 *pit)
{
    return pit->cfg.now_ns ? pit->cfg.now_ns(pit->cfg.ctx) : 0;
}

static unsigned ch_mode(const struct i8254_channel_state *c)
{
    unsigned m = (c->ctrl >> 1) & 7;
    return m >= 6 ? m - 4 : m; /* 6 and 7 are 2 and 3 with a don't-care bit */
}

static unsigned ch_access(const struct i8254_channel_state *c)
{
    return (c->ctrl >> 4) & 3;
}

static uint32_t modulus(const struct i8254_channel_state *c)
{
    return (c->ctrl & 1) ? 10000 : 65536;
}

static int periodic(unsigned mode)
{
    return mode == 2 || mode == 3;
}

/* The channel as it is at `t`: a count written during a mode 2 or 3 period
 * takes over at the period's end (null_until). */
static struct i8254_channel_state view(const struct i8254_channel_state *c, uint64_t t)
{
    struct i8254_channel_state v = *c;
    if (v.pending && v.armed && !v.paused && periodic(ch_mode(&v)) && t >= v.null_until) {
        v.start = v.null_until;
        v.count = v.pending;
        v.pending = 0;
    }
    return v;
}

static uint64_t elapsed(const struct i8254_channel_state *c, uint64_t t)
{
    if (c->paused)
        return c->frozen;
    return t >= c->start ? t - c->start : 0;
}

/* The counting element in binary, 0 to modulus - 1. */
static uint32_t ch_value(const struct i8254_channel_state *c, uint64_t t)
{
    uint32_t n = c->count, mod = modulus(c);
    unsigned mode = ch_mode(c);
    if (!c->armed || ((mode == 1 || mode == 5) && !c->running))
        return n % mod;
    uint64_t e = elapsed(c, t);
    switch (mode) {
    case 2:
        return (uint32_t)(n - e % n) % mod;
    case 3: {
        /* Decrements by two; an odd count's high half is one tick longer. */
        uint32_t p = (uint32_t)(e % n), hi = (n + 1) / 2;
        uint32_t q = p < hi ? p : p - hi;
        return ((n & ~1u) - 2 * q) % mod;
    }
    default: /* 0, 1, 4, 5: down through zero and wrap */
        return (uint32_t)((n + mod - e % mod) % mod);
    }
}

static int ch_out(const struct i8254_channel_state *c, uint64_t t)
{
    unsigned mode = ch_mode(c);
    if (!c->armed)
        return mode != 0;
    uint64_t e = elapsed(c, t);
    uint32_t n = c->count;
    switch (mode) {
    case 0:
        return e >= n;
    case 1:
        return !c->running || e >= n;
    case 2:
        return c->paused || e % n != n - 1;
    case 3:
        return c->paused || e % n < (n + 1) / 2;
    case 4:
        return e != n;
    default: /* 5 */
        return !c->running || e != n;
    }
}

/* The first tick after `after` at which OUT rises, NEVER if none comes
 * without a new write or gate change. */
static uint64_t ch_next_rise(const struct i8254_channel_state *c, uint64_t after)
{
    unsigned mode = ch_mode(c);
    uint64_t n = c->count, r;
    if (!c->armed)
        return NEVER;
    switch (mode) {
    case 0:
    case 4:
        if (c->paused)
            return NEVER;
        r = c->start + n + (mode == 4);
        break;
    case 1:
    case 5:
        if (!c->running)
            return NEVER;
        r = c->start + n + (mode == 5);
        break;
    default:
        /* A count of 1 is illegal in modes 2 and 3: OUT never changes. */
        if (c->paused || n == 1)
            return NEVER;
        r = c->start + (after < c->start ? 1 : (after - c->start) / n + 1) * n;
        break;
    }
    return r > after ? r : NEVER;
}

static uint16_t to_bcd(uint32_t v)
{
    return (uint16_t)((v % 10) | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000 % 10) << 12);
}

/* Nibbles above 9 are not BCD; the sum is reduced so the count stays in
 * range rather than trusting the guest. */
static uint32_t from_bcd(uint16_t v)
{
    uint32_t n = (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 +
                 ((v >> 12) & 0xf) * 1000u;
    return n % 10000;
}

/* The value a read returns: BCD when the channel counts in BCD. */
static uint16_t ch_read_value(const struct i8254_channel_state *c, uint64_t t)
{
    uint32_t v = ch_value(c, t);
    return (c->ctrl & 1) ? to_bcd(v) : (uint16_t)v;
}

static void ch_settle(struct i8254_channel_state *c, uint64_t t)
{
    *c = view(c, t);
}

/* Load the count (1-65536) into a restart: counting begins on the next
 * input clock edge, as the chip loads its counting element there. */
static void ch_restart(struct i8254_channel_state *c, uint32_t n, uint64_t t)
{
    c->count = n;
    c->pending = 0;
    c->start = t + 1;
    c->null_until = t + 1;
    c->frozen = 0;
}

static void ch_write_count(struct i8254_channel_state *c, uint32_t n, uint64_t t)
{
    unsigned mode = ch_mode(c);
    int was_armed = c->armed;
    c->armed = 1;
    switch (mode) {
    case 0:
    case 4:
        /* A new count restarts these modes at once; a low gate holds it. */
        ch_restart(c, n, t);
        c->paused = !c->gate;
        break;
    case 1:
    case 5:
        /* Loaded by the next gate trigger; a running one-shot finishes
         * with its own count. */
        if (c->running)
            c->pending = n;
        else
            c->count = n;
        c->null_until = NEVER;
        break;
    default:
        if (!was_armed) {
            ch_restart(c, n, t);
            c->paused = !c->gate;
        } else if (c->paused) {
            /* Gate low: the rising edge that restarts counting loads it. */
            c->count = n;
            c->pending = 0;
            c->null_until = NEVER;
        } else {
            /* Taken at the end of the current period. */
            uint64_t e = elapsed(c, t);
            c->pending = n;
            c->null_until = c->start + (e / c->count + 1) * c->count;
        }
        break;
    }
}

static void ch_set_gate(struct i8254_channel_state *c, int level, uint64_t t)
{
    if (level == c->gate)
        return;
    c->gate = (uint8_t)level;
    unsigned mode = ch_mode(c);
    switch (mode) {
    case 0:
    case 4:
        /* The gate enables counting: low holds the count where it is. */
        if (!level) {
            c->frozen = elapsed(c, t);
            c->paused = 1;
        } else if (c->paused) {
            c->start = t - c->frozen;
            c->paused = 0;
        }
        break;
    case 1:
    case 5:
        /* A rising edge triggers the one-shot with the latest count. */
        if (level && c->armed) {
            ch_restart(c, c->pending ? c->pending : c->count, t);
            c->running = 1;
        }
        break;
    default:
        /* Low stops the count and forces OUT high; the rising edge
         * reloads and starts a new period. */
        if (!level) {
            c->frozen = elapsed(c, t);
            c->paused = 1;
        } else if (c->armed) {
            ch_restart(c, c->pending ? c->pending : c->count, t);
            c->paused = 0;
        }
        break;
    }
}

static void ch_latch_count(struct i8254_channel_state *c, uint64_t t)
{
    /* Further latch commands are ignored until the latch is read. */
    if (c->latched)
        return;
    c->latch = ch_read_value(c, t);
    c->latched = 1;
}

static void ch_latch_status(struct i8254_channel_state *c, uint64_t t)
{
    if (c->status_latched)
        return;
    c->status = (uint8_t)(ch_out(c, t) << 7 | (t < c->null_until) << 6 | (c->ctrl & 0x3f));
    c->status_latched = 1;
}

static void drive_irq(struct i8254 *pit, int level)
{
    pit->s.irq_level = (uint8_t)level;
    if (pit->cfg.set_irq)
        pit->cfg.set_irq(pit->cfg.ctx, pit->cfg.irq, level);
}

static void update_tick(struct i8254 *pit, uint64_t t)
{
    struct i8254_channel_state *c = &pit->s.ch[0];
    if (t < pit->s.irq_tick)
        t = pit->s.irq_tick; /* a clock that went back changes nothing */
    struct i8254_channel_state before = view(c, pit->s.irq_tick);
    int edge = ch_next_rise(&before, pit->s.irq_tick) <= t;
    ch_settle(c, t);
    int out = ch_out(c, t);
    if (edge) {
        if (pit->s.irq_level)
            drive_irq(pit, 0);
        drive_irq(pit, 1);
    }
    if (out != pit->s.irq_level)
        drive_irq(pit, out);
    pit->s.irq_tick = t;
}

void i8254_update(struct i8254 *pit, uint64_t now)
{
    update_tick(pit, tick_of(now));
}

uint64_t i8254_next_event_ns(struct i8254 *pit, uint64_t now)
{
    uint64_t after = pit->s.irq_tick;
    struct i8254_channel_state c = view(&pit->s.ch[0], after);
    uint64_t r = ch_next_rise(&c, after);
    if (r == NEVER)
        return UINT64_MAX;
    uint64_t due = ns_of(r);
    return due < now ? now : due;
}

int i8254_out(struct i8254 *pit, unsigned channel, uint64_t now)
{
    if (channel >= 3)
        return -1;
    uint64_t t = tick_of(now);
    struct i8254_channel_state c = view(&pit->s.ch[channel], t);
    return ch_out(&c, t);
}

static void write_control(struct i8254 *pit, uint8_t v, uint64_t t)
{
    unsigned sc = v >> 6;
    if (sc == 3) {
        /* Read-back: bit 5 clear latches counts, bit 4 clear latches
         * status, bits 1-3 pick the counters. */
        for (unsigned i = 0; i < 3; i++) {
            if (!(v & (2u << i)))
                continue;
            struct i8254_channel_state *c = &pit->s.ch[i];
            ch_settle(c, t);
            if (!(v & 0x20))
                ch_latch_count(c, t);
            if (!(v & 0x10))
                ch_latch_status(c, t);
        }
        return;
    }
    struct i8254_channel_state *c = &pit->s.ch[sc];
    ch_settle(c, t);
    if (((v >> 4) & 3) == 0) {
        ch_latch_count(c, t);
        return;
    }
    /* A control word resets the counter's logic: no count, flip-flops
     * and latches cleared, OUT at the mode's initial level. */
    c->ctrl = v & 0x3f;
    c->armed = 0;
    c->running = 0;
    c->paused = 0;
    c->pending = 0;
    c->null_until = NEVER;
    c->write_msb = 0;
    c->read_msb = 0;
    c->latched = 0;
    c->status_latched = 0;
}

static void write_counter(struct i8254_channel_state *c, uint8_t v, uint64_t t)
{
    ch_settle(c, t);
    uint16_t raw;
    switch (ch_access(c)) {
    case 1:
        raw = v;
        break;
    case 2:
        raw = (uint16_t)(v << 8);
        break;
    default:
        if (!c->write_msb) {
            c->write_lsb = v;
            c->write_msb = 1;
            /* Mode 0: the first byte stops the count and drops OUT. */
            if (ch_mode(c) == 0)
                c->armed = 0;
            return;
        }
        c->write_msb = 0;
        raw = (uint16_t)(c->write_lsb | v << 8);
        break;
    }
    uint32_t n = (c->ctrl & 1) ? from_bcd(raw) : raw;
    ch_write_count(c, n ? n : modulus(c), t);
}

static uint8_t read_counter(struct i8254_channel_state *c, uint64_t t)
{
    ch_settle(c, t);
    if (c->status_latched) {
        c->status_latched = 0;
        return c->status;
    }
    uint16_t v = c->latched ? c->latch : ch_read_value(c, t);
    switch (ch_access(c)) {
    case 1:
        c->latched = 0;
        return (uint8_t)v;
    case 2:
        c->latched = 0;
        return (uint8_t)(v >> 8);
    default:
        if (!c->read_msb) {
            c->read_msb = 1;
            return (uint8_t)v;
        }
        c->read_msb = 0;
        c->latched = 0;
        return (uint8_t)(v >> 8);
    }
}

static uint8_t read_byte(void *opaque, uint64_t port)
{
    struct i8254 *pit = opaque;
    uint64_t t = tick_of(now_ns(pit));
    update_tick(pit, t);
    if (port >= I8254_BASE && port < I8254_BASE + 3)
        return read_counter(&pit->s.ch[port - I8254_BASE], t);
    if (port == I8254_PORT_B) {
        uint8_t v = pit->s.port_b & PORT_B_WRITABLE;
        if ((t / REFRESH_TICKS) & 1)
            v |= PORT_B_REFRESH;
        ch_settle(&pit->s.ch[2], t);
        if (ch_out(&pit->s.ch[2], t))
            v |= PORT_B_OUT2;
        return v;
    }
    return 0xff; /* the control word register cannot be read */
}

static void write_byte(void *opaque, uint64_t port, uint8_t v)
{
    struct i8254 *pit = opaque;
    uint64_t t = tick_of(now_ns(pit));
    update_tick(pit, t);
    if (port >= I8254_BASE && port < I8254_BASE + 3) {
        write_counter(&pit->s.ch[port - I8254_BASE], v, t);
    } else if (port == I8254_BASE + 3) {
        write_control(pit, v, t);
    } else if (port == I8254_PORT_B) {
        pit->s.port_b = v & PORT_B_WRITABLE;
        struct i8254_channel_state *c = &pit->s.ch[2];
        ch_settle(c, t);
        ch_set_gate(c, v & 1, t);
    } else {
        return;
    }
    update_tick(pit, t);
}

int i8254_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = vxdev_split_read(opaque, addr, len, read_byte);
    return 0;
}

int i8254_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    vxdev_split_write(opaque, addr, len, value, write_byte);
    return 0;
}

const vx_io_ops i8254_ops = {
    .size = sizeof(vx_io_ops),
    .read = i8254_read,
    .write = i8254_write,
};

void i8254_reset(struct i8254 *pit)
{
    uint64_t t = tick_of(now_ns(pit));
    for (unsigned i = 0; i < 3; i++) {
        struct i8254_channel_state *c = &pit->s.ch[i];
        memset(c, 0, sizeof *c);
        c->ctrl = 0x30; /* lsb then msb, mode 0, binary */
        c->count = 65536;
        c->null_until = NEVER;
        c->gate = i < 2; /* channels 0 and 1 have their gates tied high */
    }
    pit->s.port_b = 0;
    pit->s.irq_tick = t;
    if (pit->s.irq_level)
        drive_irq(pit, 0);
}

void i8254_init(struct i8254 *pit, const struct i8254_config *cfg)
{
    memset(pit, 0, sizeof *pit);
    if (cfg)
        pit->cfg = *cfg;
    i8254_reset(pit);
}

void i8254_save(const struct i8254 *pit, struct i8254_state *out)
{
    *out = pit->s;
}

int i8254_load(struct i8254 *pit, const struct i8254_state *in)
{
    for (unsigned i = 0; i < 3; i++) {
        const struct i8254_channel_state *c = &in->ch[i];
        /* A binary count survives a switch to BCD by a control word (it is
         * read modulo 10000), so 65536 is the bound in both modes. */
        if ((c->ctrl & ~0x3f) || ((c->ctrl >> 4) & 3) == 0 || c->count == 0 ||
            c->count > 65536 || c->pending > 65536 || (i < 2 && !c->gate))
            return VX_ECORRUPT;
    }
    if (in->port_b & ~PORT_B_WRITABLE || (in->port_b & 1) != in->ch[2].gate)
        return VX_ECORRUPT;
    pit->s = *in;
    struct i8254_channel_state c = view(&pit->s.ch[0], pit->s.irq_tick);
    drive_irq(pit, ch_out(&c, pit->s.irq_tick));
    return 0;
}
