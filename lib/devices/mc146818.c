/*
 * The MC146818 RTC, from its datasheet. The time is a count of seconds,
 * not registers ticked once a second: the registers are that count
 * written out in the format register B asks for, and the interrupt flags
 * are worked out for whatever span of time passed since they were last
 * looked at. Only while the guest holds SET (or the divider in reset) are
 * the time bytes stored, as the guest writes them.
 */
#include "config.h"

#include <string.h>

#include "devices/ioport.h"
#include "devices/mc146818.h"

#define NS_PER_S 1000000000ll

enum {
    A_UIP = 0x80,
    A_DV = 0x70,
    A_DV_RESET = 0x60, /* DV2 and DV1 set: the divider chain held in reset */
    A_RS = 0x0f,
    B_SET = 0x80,
    B_PIE = 0x40,
    B_AIE = 0x20,
    B_UIE = 0x10,
    B_SQWE = 0x08,
    B_DM_BINARY = 0x04,
    B_24H = 0x02,
    C_IRQF = 0x80,
    C_FLAGS = 0x70, /* PF, AF, UF: the same bits as their enables in B */
    D_VRT = 0x80,
    /* The datasheet's update timing with a 32.768 kHz time base: UIP rises
     * 244 us before the update cycle, which lasts 1984 us. */
    UIP_BEFORE_NS = 244000,
    UIP_AFTER_NS = 1984000,
    CHECKSUM_FIRST = 0x10,
    CHECKSUM_LAST = 0x2d,
    CHECKSUM_HI = 0x2e,
    CHECKSUM_LO = 0x2f,
};

/* The clock shows years 1900-9999 (year byte plus century byte). */
#define T_MIN (-2208988800ll)  /* 1900-01-01 00:00:00 */
#define T_MAX 253402300799ll   /* 9999-12-31 23:59:59 */
#define T_NEVER INT64_MAX

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static __int128 floor_div128(__int128 a, __int128 b)
{
    __int128 q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- calendar ---------------------------------------------------------- */

static const uint16_t month_start[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap days in the years before y (proleptic Gregorian, from year 1). */
static int64_t leaps_before(int64_t y)
{
    y--;
    return floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400);
}

static int64_t days_from_date(int64_t y, unsigned m, unsigned d)
{
    return 365 * (y - 1970) + leaps_before(y) - leaps_before(1970) + month_start[m - 1] +
           (m > 2 && is_leap(y)) + d - 1;
}

static void date_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t yr = 1970 + floor_div(z * 400, 146097);
    while (days_from_date(yr, 1, 1) > z)
        yr--;
    while (days_from_date(yr + 1, 1, 1) <= z)
        yr++;
    int64_t doy = z - days_from_date(yr, 1, 1);
    unsigned mo = 12;
    while (month_start[mo - 1] + (mo > 2 && is_leap(yr)) > doy)
        mo--;
    *y = yr;
    *m = mo;
    *d = (unsigned)(doy - month_start[mo - 1] - (mo > 2 && is_leap(yr))) + 1;
}

static int64_t clamp_time(int64_t t)
{
    return t < T_MIN ? T_MIN : t > T_MAX ? T_MAX : t;
}

/* ---- register formats ------------------------------------------------------ */

static int binary(const struct mc146818 *rtc)
{
    return rtc->s.cmos[MC146818_REG_B] & B_DM_BINARY;
}

static uint8_t enc(const struct mc146818 *rtc, unsigned v)
{
    return binary(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

/* Tolerant of non-BCD nibbles: the result is then out of range and the
 * callers treat it as such. */
static unsigned dec(const struct mc146818 *rtc, uint8_t b)
{
    return binary(rtc) ? b : (b >> 4) * 10u + (b & 15);
}

static uint8_t enc_hour(const struct mc146818 *rtc, unsigned h)
{
    if (rtc->s.cmos[MC146818_REG_B] & B_24H)
        return enc(rtc, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return (uint8_t)(enc(rtc, h12) | (h >= 12 ? 0x80 : 0));
}

/* 0-23, or -1 for a byte no time can have. */
static int dec_hour(const struct mc146818 *rtc, uint8_t b)
{
    if (rtc->s.cmos[MC146818_REG_B] & B_24H) {
        unsigned h = dec(rtc, b);
        return h < 24 ? (int)h : -1;
    }
    unsigned h12 = dec(rtc, b & 0x7f);
    if (h12 < 1 || h12 > 12)
        return -1;
    return (int)(h12 % 12 + ((b & 0x80) ? 12 : 0));
}

static int time_register(unsigned idx)
{
    switch (idx) {
    case MC146818_SECONDS:
    case MC146818_MINUTES:
    case MC146818_HOURS:
    case MC146818_WEEKDAY:
    case MC146818_DAY:
    case MC146818_MONTH:
    case MC146818_YEAR:
    case MC146818_CENTURY:
        return 1;
    default:
        return 0;
    }
}

static void encode_time(const struct mc146818 *rtc, int64_t t, uint8_t *b)
{
    int64_t z = floor_div(t, 86400), tod = t - z * 86400, y;
    unsigned m, d;
    date_from_days(z, &y, &m, &d);
    b[MC146818_SECONDS] = enc(rtc, (unsigned)(tod % 60));
    b[MC146818_MINUTES] = enc(rtc, (unsigned)(tod / 60 % 60));
    b[MC146818_HOURS] = enc_hour(rtc, (unsigned)(tod / 3600));
    /* 1970-01-01 was a Thursday; Sunday is 1. */
    b[MC146818_WEEKDAY] = enc(rtc, (unsigned)floor_mod(z + 4 + rtc->s.weekday_adjust, 7) + 1);
    b[MC146818_DAY] = enc(rtc, d);
    b[MC146818_MONTH] = enc(rtc, m);
    b[MC146818_YEAR] = enc(rtc, (unsigned)(y % 100));
    b[MC146818_CENTURY] = enc(rtc, (unsigned)(y / 100));
}

/* The time the bytes say. Out-of-range fields are clamped or carried,
 * never trusted as indices. The weekday the guest wrote is kept as an
 * offset from the date's: the chip counts it separately. */
static int64_t decode_time(struct mc146818 *rtc, const uint8_t *b)
{
    unsigned sec = dec(rtc, b[MC146818_SECONDS]), min = dec(rtc, b[MC146818_MINUTES]);
    int hour = dec_hour(rtc, b[MC146818_HOURS]);
    unsigned day = dec(rtc, b[MC146818_DAY]), mon = dec(rtc, b[MC146818_MONTH]);
    unsigned yy = dec(rtc, b[MC146818_YEAR]), cen = dec(rtc, b[MC146818_CENTURY]);
    if (hour < 0)
        hour = 0;
    mon = mon < 1 ? 1 : mon > 12 ? 12 : mon;
    day = day < 1 ? 1 : day > 31 ? 31 : day;
    if (yy > 99)
        yy = 99;
    if (cen < 19 || cen > 99)
        cen = yy < 70 ? 20 : 19; /* no usable century byte: the usual window */
    int64_t z = days_from_date(cen * 100 + yy, mon, day);
    unsigned wd = dec(rtc, b[MC146818_WEEKDAY]);
    rtc->s.weekday_adjust = (uint8_t)floor_mod((int64_t)wd - 1 - floor_mod(z + 4, 7), 7);
    return clamp_time(z * 86400 + hour * 3600ll + min * 60ll + sec);
}

/* ---- time ---------------------------------------------------------------- */

static uint64_t now_ns(const struct mc146818 *rtc)
{
    return rtc->cfg.now_ns ? rtc->cfg.now_ns(rtc->cfg.ctx) : 0;
}

static int divider_running(const struct mc146818 *rtc)
{
    return (rtc->s.cmos[MC146818_REG_A] & A_DV_RESET) != A_DV_RESET;
}

static int must_freeze(const struct mc146818 *rtc)
{
    return (rtc->s.cmos[MC146818_REG_B] & B_SET) || !divider_running(rtc);
}

/* Whole seconds since base_ns (negative before it). */
static int64_t seconds_since_base(const struct mc146818 *rtc, uint64_t now)
{
    return floor_div((int64_t)(now - rtc->s.base_ns), NS_PER_S);
}

static int64_t time_at(struct mc146818 *rtc, uint64_t now)
{
    if (rtc->s.frozen) {
        uint8_t adj = rtc->s.weekday_adjust;
        int64_t t = decode_time(rtc, rtc->s.cmos);
        rtc->s.weekday_adjust = adj; /* reading changes nothing */
        return t;
    }
    return clamp_time(rtc->s.base_s + seconds_since_base(rtc, now));
}

static int update_in_progress(const struct mc146818 *rtc, uint64_t now)
{
    if (rtc->s.frozen)
        return 0; /* SET clears UIP; a divider in reset makes no updates */
    int64_t phase = floor_mod((int64_t)(now - rtc->s.base_ns), NS_PER_S);
    return phase >= NS_PER_S - UIP_BEFORE_NS || phase < UIP_AFTER_NS;
}

/* Start counting from `t` with the next update half a second away, as
 * after a divider reset (the datasheet's first update comes 500 ms after
 * the divider is released). */
static void start_clock(struct mc146818 *rtc, int64_t t, uint64_t now)
{
    rtc->s.base_s = clamp_time(t);
    rtc->s.base_ns = now - NS_PER_S / 2;
}

static void freeze(struct mc146818 *rtc, uint64_t now)
{
    if (rtc->s.frozen)
        return;
    encode_time(rtc, time_at(rtc, now), rtc->s.cmos);
    rtc->s.frozen = 1;
}

static void thaw(struct mc146818 *rtc, uint64_t now, int divider_was_reset)
{
    if (!rtc->s.frozen)
        return;
    int64_t t = decode_time(rtc, rtc->s.cmos);
    rtc->s.frozen = 0;
    if (divider_was_reset) {
        start_clock(rtc, t, now);
    } else {
        /* SET only stopped the updates; the divider kept its phase. */
        rtc->s.base_ns += (uint64_t)(seconds_since_base(rtc, now) * NS_PER_S);
        rtc->s.base_s = t;
    }
}

/* ---- alarm --------------------------------------------------------------- */

/* An alarm byte: -1 don't care (0xc0-0xff), -2 matches nothing, else the
 * value to match. */
static int alarm_field(const struct mc146818 *rtc, unsigned idx, unsigned limit)
{
    uint8_t b = rtc->s.cmos[idx];
    if ((b & 0xc0) == 0xc0)
        return -1;
    int v = idx == MC146818_HOURS_ALARM ? dec_hour(rtc, b) : (int)dec(rtc, b);
    return v >= 0 && (unsigned)v < limit ? v : -2;
}

/* The first second after t whose time of day matches the alarm, or
 * T_NEVER. Every pattern matches within a day, so two days are searched,
 * skipping whole hours and minutes that cannot match. */
static int64_t next_alarm(const struct mc146818 *rtc, int64_t t)
{
    int as = alarm_field(rtc, MC146818_SECONDS_ALARM, 60);
    int am = alarm_field(rtc, MC146818_MINUTES_ALARM, 60);
    int ah = alarm_field(rtc, MC146818_HOURS_ALARM, 24);
    if (as == -2 || am == -2 || ah == -2)
        return T_NEVER;
    int64_t day = floor_div(t, 86400), tod = t - day * 86400;
    int h0 = (int)(tod / 3600), m0 = (int)(tod / 60 % 60), s0 = (int)(tod % 60);
    for (int dd = 0; dd < 2; dd++) {
        for (int h = dd ? 0 : h0; h < 24; h++) {
            if (ah >= 0 && h != ah)
                continue;
            int same_hour = !dd && h == h0;
            for (int m = same_hour ? m0 : 0; m < 60; m++) {
                if (am >= 0 && m != am)
                    continue;
                int smin = same_hour && m == m0 ? s0 + 1 : 0;
                int s = as >= 0 ? as : smin;
                if (s < smin || s > 59)
                    continue;
                return (day + dd) * 86400 + h * 3600 + m * 60 + s;
            }
        }
    }
    return T_NEVER;
}

/* ---- interrupts -------------------------------------------------------------- */

/* 32.768 kHz cycles between periodic flags; 0: none. Rates 1 and 2 are
 * 256 and 128 Hz with this time base, not 32768 and 16384. */
static uint64_t periodic_cycles(const struct mc146818 *rtc)
{
    unsigned rs = rtc->s.cmos[MC146818_REG_A] & A_RS;
    if (!rs)
        return 0;
    return rs <= 2 ? 1u << (rs + 6) : 1u << (rs - 1);
}

/* Periodic edges since base_ns up to and including t. */
static int64_t periodic_index(const struct mc146818 *rtc, uint64_t t, uint64_t cycles)
{
    __int128 d = (int64_t)(t - rtc->s.base_ns);
    return (int64_t)floor_div128(d * 32768, (__int128)cycles * NS_PER_S);
}

static uint64_t periodic_edge_ns(const struct mc146818 *rtc, int64_t k, uint64_t cycles)
{
    __int128 num = (__int128)k * cycles * NS_PER_S;
    __int128 off = -floor_div128(-num, 32768); /* ceiling */
    return rtc->s.base_ns + (uint64_t)(int64_t)off;
}

/* Set the register C flags for events in (flags_ns, now]. */
static void catch_up(struct mc146818 *rtc, uint64_t now)
{
    uint64_t from = rtc->s.flags_ns;
    if ((int64_t)(now - from) <= 0)
        return;
    uint8_t flags = 0;
    uint64_t cycles = periodic_cycles(rtc);
    if (divider_running(rtc) && cycles &&
        periodic_index(rtc, now, cycles) > periodic_index(rtc, from, cycles))
        flags |= B_PIE;
    if (!rtc->s.frozen) {
        int64_t k0 = seconds_since_base(rtc, from), k1 = seconds_since_base(rtc, now);
        if (k1 > k0) {
            flags |= B_UIE;
            if (next_alarm(rtc, rtc->s.base_s + k0) <= rtc->s.base_s + k1)
                flags |= B_AIE;
        }
    }
    rtc->s.cmos[MC146818_REG_C] |= flags;
    rtc->s.flags_ns = now;
}

static void update_irq(struct mc146818 *rtc)
{
    uint8_t *c = &rtc->s.cmos[MC146818_REG_C];
    int irqf = (*c & rtc->s.cmos[MC146818_REG_B] & C_FLAGS) != 0;
    *c = (uint8_t)((*c & C_FLAGS) | (irqf ? C_IRQF : 0));
    if (irqf != rtc->s.irq_level) {
        rtc->s.irq_level = (uint8_t)irqf;
        if (rtc->cfg.set_irq)
            rtc->cfg.set_irq(rtc->cfg.ctx, rtc->cfg.irq, irqf);
    }
}

uint64_t mc146818_next_event_ns(struct mc146818 *rtc, uint64_t now)
{
    if (rtc->s.irq_level)
        return UINT64_MAX; /* IRQF stays up until register C is read */
    uint8_t b = rtc->s.cmos[MC146818_REG_B];
    uint64_t from = rtc->s.flags_ns, best = UINT64_MAX;
    uint64_t cycles = periodic_cycles(rtc);
    if ((b & B_PIE) && divider_running(rtc) && cycles) {
        uint64_t t = periodic_edge_ns(rtc, periodic_index(rtc, from, cycles) + 1, cycles);
        best = t;
    }
    if (!rtc->s.frozen && (b & (B_UIE | B_AIE))) {
        int64_t k0 = seconds_since_base(rtc, from);
        if (b & B_UIE) {
            uint64_t t = rtc->s.base_ns + (uint64_t)((k0 + 1) * NS_PER_S);
            if (t - from < best - from || best == UINT64_MAX)
                best = t;
        }
        if (b & B_AIE) {
            int64_t when = next_alarm(rtc, rtc->s.base_s + k0);
            if (when != T_NEVER) {
                uint64_t t = rtc->s.base_ns + (uint64_t)((when - rtc->s.base_s) * NS_PER_S);
                if (best == UINT64_MAX || t - from < best - from)
                    best = t;
            }
        }
    }
    if (best == UINT64_MAX)
        return best;
    return (int64_t)(best - now) < 0 ? now : best;
}

void mc146818_update(struct mc146818 *rtc, uint64_t now)
{
    catch_up(rtc, now);
    update_irq(rtc);
}

/* ---- registers ------------------------------------------------------------- */

static uint8_t read_register(struct mc146818 *rtc, unsigned idx, uint64_t now)
{
    uint8_t *cmos = rtc->s.cmos;
    switch (idx) {
    case MC146818_REG_A:
        return (uint8_t)((cmos[idx] & ~A_UIP) | (update_in_progress(rtc, now) ? A_UIP : 0));
    case MC146818_REG_C: {
        catch_up(rtc, now);
        update_irq(rtc);
        uint8_t v = cmos[idx];
        cmos[idx] = 0; /* reading C acknowledges everything */
        update_irq(rtc);
        return v;
    }
    case MC146818_REG_D:
        return D_VRT;
    default:
        if (time_register(idx) && !rtc->s.frozen) {
            uint8_t b[MC146818_CMOS_SIZE];
            encode_time(rtc, time_at(rtc, now), b);
            return b[idx];
        }
        return cmos[idx];
    }
}

static void write_register(struct mc146818 *rtc, unsigned idx, uint8_t v, uint64_t now)
{
    uint8_t *cmos = rtc->s.cmos;
    catch_up(rtc, now);
    if (idx == MC146818_REG_A || idx == MC146818_REG_B) {
        int was_frozen = must_freeze(rtc), was_reset = !divider_running(rtc);
        /* Setting SET clears UIE: no update-ended interrupt while the
         * clock is being set. UIP is read-only. */
        if (idx == MC146818_REG_A)
            v &= (uint8_t)~A_UIP;
        else if (v & B_SET)
            v &= (uint8_t)~B_UIE;
        uint8_t old = cmos[idx];
        cmos[idx] = v;
        int frozen = must_freeze(rtc), reset = !divider_running(rtc);
        if (!was_frozen && frozen) {
            /* The time bytes as they stood, in the format they had. */
            cmos[idx] = old;
            freeze(rtc, now);
            cmos[idx] = v;
        } else if (was_frozen && !frozen) {
            thaw(rtc, now, was_reset);
        } else if (was_reset && !reset) {
            /* The divider restarts while SET holds the time: its phase,
             * which the periodic flag and the thaw use, starts now. */
            rtc->s.base_ns = now - NS_PER_S / 2;
        }
    } else if (idx == MC146818_REG_C || idx == MC146818_REG_D) {
        return; /* read-only */
    } else if (time_register(idx) && !rtc->s.frozen) {
        /* Setting one field of a running clock: the others keep counting
         * and the second in progress goes on. */
        encode_time(rtc, time_at(rtc, now), cmos);
        cmos[idx] = v;
        int64_t t = decode_time(rtc, cmos);
        rtc->s.base_s = t - seconds_since_base(rtc, now);
    } else {
        cmos[idx] = v;
    }
    update_irq(rtc);
}

static uint8_t read_byte(void *opaque, uint64_t port)
{
    struct mc146818 *rtc = opaque;
    if (port != MC146818_BASE + 1)
        return 0xff; /* the index register is write-only */
    return read_register(rtc, rtc->s.index, now_ns(rtc));
}

static void write_byte(void *opaque, uint64_t port, uint8_t v)
{
    struct mc146818 *rtc = opaque;
    if (port == MC146818_BASE) {
        rtc->s.index = v & 0x7f;
        rtc->s.nmi_masked = v >> 7;
    } else if (port == MC146818_BASE + 1) {
        write_register(rtc, rtc->s.index, v, now_ns(rtc));
    }
}

int mc146818_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = vxdev_split_read(opaque, addr, len, read_byte);
    return 0;
}

int mc146818_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    vxdev_split_write(opaque, addr, len, value, write_byte);
    return 0;
}

const vx_io_ops mc146818_ops = {
    .size = sizeof(vx_io_ops),
    .read = mc146818_read,
    .write = mc146818_write,
};

/* ---- the board's side ------------------------------------------------------ */

void mc146818_set_time(struct mc146818 *rtc, int64_t seconds)
{
    uint64_t now = now_ns(rtc);
    catch_up(rtc, now);
    if (rtc->s.frozen)
        encode_time(rtc, clamp_time(seconds), rtc->s.cmos);
    else
        start_clock(rtc, seconds, now);
    rtc->s.weekday_adjust = 0;
    rtc->s.flags_ns = now;
}

int64_t mc146818_get_time(struct mc146818 *rtc)
{
    return time_at(rtc, now_ns(rtc));
}

static void update_checksum(struct mc146818 *rtc)
{
    unsigned sum = 0;
    for (unsigned i = CHECKSUM_FIRST; i <= CHECKSUM_LAST; i++)
        sum += rtc->s.cmos[i];
    rtc->s.cmos[CHECKSUM_HI] = (uint8_t)(sum >> 8);
    rtc->s.cmos[CHECKSUM_LO] = (uint8_t)sum;
}

void mc146818_cmos_set(struct mc146818 *rtc, unsigned idx, uint8_t value)
{
    if (idx <= MC146818_REG_D || idx >= MC146818_CMOS_SIZE)
        return;
    rtc->s.cmos[idx] = value;
    if (idx >= CHECKSUM_FIRST && idx <= CHECKSUM_LAST)
        update_checksum(rtc);
}

uint8_t mc146818_cmos_get(const struct mc146818 *rtc, unsigned idx)
{
    return idx < MC146818_CMOS_SIZE ? rtc->s.cmos[idx] : 0xff;
}

static void set_word(struct mc146818 *rtc, unsigned idx, uint64_t v, uint64_t max)
{
    if (v > max)
        v = max;
    rtc->s.cmos[idx] = (uint8_t)v;
    rtc->s.cmos[idx + 1] = (uint8_t)(v >> 8);
}

void mc146818_set_memory_size(struct mc146818 *rtc, uint64_t below_4g, uint64_t above_4g)
{
    const uint64_t kib = 1024, mib = 1024 * kib;
    set_word(rtc, 0x15, below_4g >= 640 * kib ? 640 : below_4g / kib, 0xffff);
    uint64_t ext = below_4g > mib ? (below_4g - mib) / kib : 0;
    set_word(rtc, 0x17, ext, 0xffff);
    set_word(rtc, 0x30, ext, 0xffff);
    set_word(rtc, 0x34, below_4g > 16 * mib ? (below_4g - 16 * mib) / (64 * kib) : 0, 0xffff);
    uint64_t high = above_4g / (64 * kib);
    if (high > 0xffffff)
        high = 0xffffff;
    rtc->s.cmos[0x5b] = (uint8_t)high;
    rtc->s.cmos[0x5c] = (uint8_t)(high >> 8);
    rtc->s.cmos[0x5d] = (uint8_t)(high >> 16);
    update_checksum(rtc);
}

int mc146818_nmi_masked(const struct mc146818 *rtc)
{
    return rtc->s.nmi_masked;
}

void mc146818_reset(struct mc146818 *rtc)
{
    catch_up(rtc, now_ns(rtc));
    rtc->s.cmos[MC146818_REG_B] &= (uint8_t)~(B_PIE | B_AIE | B_UIE | B_SQWE);
    rtc->s.cmos[MC146818_REG_C] = 0;
    update_irq(rtc);
}

void mc146818_init(struct mc146818 *rtc, const struct mc146818_config *cfg)
{
    memset(rtc, 0, sizeof *rtc);
    if (cfg)
        rtc->cfg = *cfg;
    rtc->s.cmos[MC146818_REG_A] = 0x26;
    rtc->s.cmos[MC146818_REG_B] = B_24H;
    rtc->s.cmos[MC146818_REG_D] = D_VRT;
    uint64_t now = now_ns(rtc);
    int64_t t = rtc->cfg.wall_clock ? rtc->cfg.wall_clock(rtc->cfg.ctx) : 946684800; /* 2000-01-01 */
    start_clock(rtc, t, now);
    rtc->s.flags_ns = now;
}

void mc146818_save(const struct mc146818 *rtc, struct mc146818_state *out)
{
    *out = rtc->s;
}

int mc146818_load(struct mc146818 *rtc, const struct mc146818_state *in)
{
    if (in->index >= MC146818_CMOS_SIZE || in->weekday_adjust >= 7 || in->nmi_masked > 1 ||
        (in->cmos[MC146818_REG_C] & 0x0f) || in->cmos[MC146818_REG_D] != D_VRT ||
        in->base_s < INT64_MIN / 4 || in->base_s > INT64_MAX / 4)
        return VX_ECORRUPT;
    rtc->s = *in;
    rtc->s.irq_level = 0xff; /* report the loaded level whatever it is */
    update_irq(rtc);
    return 0;
}
