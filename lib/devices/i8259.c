/* The i8259A PIC pair, from the 8259A datasheet's description of the chip. */
#include "config.h"

#include <string.h>

#include "devices/i8259.h"
#include "devices/ioport.h"

enum {
    ICW4_AEOI = 0x02,
    ICW4_SFNM = 0x10,
    /* The PIIX ELCR cannot make IRQ 0, 1, 2, 8 or 13 level-triggered: the
     * timer, keyboard, cascade, RTC and FPU error are edge-only on a PC. */
    ELCR_MASK_MASTER = 0xf8,
    ELCR_MASK_SLAVE = 0xde,
};

static const uint8_t elcr_mask[2] = { ELCR_MASK_MASTER, ELCR_MASK_SLAVE };

static uint8_t level_lines(const struct i8259_chip_state *c)
{
    return c->ltim ? 0xff : c->elcr;
}

/* Rank 0 is the highest priority: the line after the lowest one. */
static unsigned rank(const struct i8259_chip_state *c, unsigned line)
{
    return (line - c->lowest - 1) & 7;
}

static int highest(const struct i8259_chip_state *c, uint8_t set)
{
    for (unsigned r = 0; r < 8; r++) {
        unsigned line = (c->lowest + 1 + r) & 7;
        if (set & (1u << line))
            return (int)line;
    }
    return -1;
}

/* In special mask mode a masked in-service level no longer holds off
 * lower priorities: that is the mode's purpose. */
static uint8_t effective_isr(const struct i8259_chip_state *c)
{
    return c->special_mask ? c->isr & ~c->imr : c->isr;
}

/* The line this chip would deliver now, or -1: the highest unmasked
 * request that outranks everything in service. */
static int chip_pending(const struct i8259_chip_state *c, int is_master)
{
    int req = highest(c, c->irr & ~c->imr);
    if (req < 0)
        return -1;
    int cur = highest(c, effective_isr(c));
    if (cur < 0 || rank(c, (unsigned)req) < rank(c, (unsigned)cur))
        return req;
    /* Special fully nested mode: a slave's higher-priority request must
     * reach the CPU while an earlier one from the same slave is in service
     * on the master. */
    if (is_master && req == cur && (c->icw4 & ICW4_SFNM) && !c->single &&
        (c->icw3 & (1u << req)))
        return req;
    return -1;
}

static void chip_set_pin(struct i8259_chip_state *c, unsigned line, int level)
{
    uint8_t bit = (uint8_t)(1u << line);
    if (level) {
        if (!(c->pins & bit) || (level_lines(c) & bit))
            c->irr |= bit;
        c->pins |= bit;
    } else {
        c->pins &= (uint8_t)~bit;
        if (level_lines(c) & bit)
            c->irr &= (uint8_t)~bit;
    }
}

/* A level-triggered request exists exactly while its input is high; an
 * edge-triggered one is a latch. Called when the trigger mode changes. */
static void chip_sync_levels(struct i8259_chip_state *c)
{
    uint8_t lv = level_lines(c);
    c->irr = (uint8_t)((c->irr & ~lv) | (c->pins & lv));
}

/* The INTA (or poll) side of a delivery. */
static void chip_ack(struct i8259_chip_state *c, unsigned line, int auto_eoi)
{
    uint8_t bit = (uint8_t)(1u << line);
    if (auto_eoi) {
        if (c->rotate_aeoi)
            c->lowest = (uint8_t)line;
    } else {
        c->isr |= bit;
    }
    /* A level-triggered line still high keeps requesting; ISR holds it off
     * until the EOI. */
    if (!(level_lines(c) & bit))
        c->irr &= (uint8_t)~bit;
}

static int cascaded(const struct i8259_chip_state *master)
{
    return !master->single && (master->icw3 & (1u << I8259_CASCADE_LINE));
}

static void update(struct i8259 *pic)
{
    struct i8259_chip_state *m = &pic->s.chip[0], *sl = &pic->s.chip[1];
    chip_set_pin(m, I8259_CASCADE_LINE, chip_pending(sl, 0) >= 0);
    uint8_t intr = chip_pending(m, 1) >= 0;
    if (intr != pic->s.intr) {
        pic->s.intr = intr;
        if (pic->cfg.set_intr)
            pic->cfg.set_intr(pic->cfg.ctx, intr);
    }
}

static void chip_reset(struct i8259_chip_state *c, uint8_t base, uint8_t icw3, uint8_t imr)
{
    uint8_t pins = c->pins;
    memset(c, 0, sizeof *c);
    c->pins = pins;
    c->vector_base = base;
    c->icw3 = icw3;
    c->icw4 = 0x01; /* 8086 mode */
    c->imr = imr;
    c->lowest = 7;
}

void i8259_reset(struct i8259 *pic)
{
    chip_reset(&pic->s.chip[0], 0x08, 1u << I8259_CASCADE_LINE,
               (uint8_t)~(1u << I8259_CASCADE_LINE));
    chip_reset(&pic->s.chip[1], 0x70, I8259_CASCADE_LINE, 0xff);
    update(pic);
}

void i8259_init(struct i8259 *pic, const struct i8259_config *cfg)
{
    memset(pic, 0, sizeof *pic);
    if (cfg)
        pic->cfg = *cfg;
    i8259_reset(pic);
}

void i8259_set_irq(struct i8259 *pic, unsigned line, int level)
{
    if (line >= I8259_LINES || line == I8259_CASCADE_LINE)
        return;
    chip_set_pin(&pic->s.chip[line >> 3], line & 7, level != 0);
    update(pic);
}

int i8259_has_interrupt(const struct i8259 *pic)
{
    return chip_pending(&pic->s.chip[0], 1) >= 0;
}

int i8259_acknowledge(struct i8259 *pic)
{
    struct i8259_chip_state *m = &pic->s.chip[0], *sl = &pic->s.chip[1];
    int vector;
    int line = chip_pending(m, 1);
    if (line < 0) {
        vector = m->vector_base | 7;
    } else {
        chip_ack(m, (unsigned)line, m->icw4 & ICW4_AEOI);
        if (line == I8259_CASCADE_LINE && cascaded(m)) {
            int sline = chip_pending(sl, 0);
            if (sline < 0) {
                vector = sl->vector_base | 7;
            } else {
                chip_ack(sl, (unsigned)sline, sl->icw4 & ICW4_AEOI);
                vector = sl->vector_base | sline;
            }
            /* The slave's INT falls during its INTA: a request it still
             * has to deliver is a new edge on the master's IR2, not lost. */
            m->pins &= (uint8_t)~(1u << I8259_CASCADE_LINE);
        } else {
            vector = m->vector_base | line;
        }
    }
    update(pic);
    return vector;
}

/* OCW3's poll: the read acts as the acknowledge and returns 0x80 | level,
 * or 0 when nothing is requesting. The datasheet has it set the IS bit and
 * nothing more, so automatic EOI does not apply. */
static uint8_t chip_poll(struct i8259 *pic, struct i8259_chip_state *c)
{
    c->poll = 0;
    int line = chip_pending(c, c == &pic->s.chip[0]);
    if (line < 0)
        return 0;
    chip_ack(c, (unsigned)line, 0);
    update(pic);
    return (uint8_t)(0x80 | line);
}

static void chip_eoi(struct i8259_chip_state *c, uint8_t ocw2)
{
    unsigned level = ocw2 & 7;
    int line;
    switch (ocw2 >> 5) {
    case 1: /* non-specific EOI */
    case 5: /* ... and rotate */
        line = highest(c, effective_isr(c));
        if (line >= 0) {
            c->isr &= (uint8_t)~(1u << line);
            if (ocw2 >> 5 == 5)
                c->lowest = (uint8_t)line;
        }
        break;
    case 3: /* specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        break;
    case 7: /* specific EOI and rotate */
        c->isr &= (uint8_t)~(1u << level);
        c->lowest = (uint8_t)level;
        break;
    case 6: /* set priority */
        c->lowest = (uint8_t)level;
        break;
    case 4:
        c->rotate_aeoi = 1;
        break;
    case 0:
        c->rotate_aeoi = 0;
        break;
    default: /* 2: no operation */
        break;
    }
}

static void chip_write(struct i8259_chip_state *c, unsigned a0, uint8_t v)
{
    if (!a0) {
        if (v & 0x10) {
            /* ICW1. The datasheet's list: edge sense reset, IMR cleared,
             * IR7 lowest, special mask off, status read set to IRR, ICW4
             * functions zero unless an ICW4 follows. ISR and the poll are
             * cleared too: a re-initialised chip with a level stuck in
             * service would block lines the guest believes it reset. */
            c->ltim = (v >> 3) & 1;
            c->single = (v >> 1) & 1;
            c->need_icw4 = v & 1;
            c->icw4 = 0;
            c->irr = c->pins & level_lines(c);
            c->isr = 0;
            c->imr = 0;
            c->lowest = 7;
            c->rotate_aeoi = 0;
            c->special_mask = 0;
            c->read_isr = 0;
            c->poll = 0;
            c->init_step = 2;
        } else if (v & 0x08) {
            /* OCW3 */
            if (v & 0x40)
                c->special_mask = (v >> 5) & 1;
            if (v & 0x04)
                c->poll = 1;
            if (v & 0x02)
                c->read_isr = v & 1;
        } else {
            chip_eoi(c, v);
        }
        return;
    }
    switch (c->init_step) {
    case 2:
        c->vector_base = v & 0xf8;
        c->init_step = c->single ? (c->need_icw4 ? 4 : 0) : 3;
        break;
    case 3:
        c->icw3 = v;
        c->init_step = c->need_icw4 ? 4 : 0;
        break;
    case 4:
        c->icw4 = v & 0x1f;
        c->init_step = 0;
        break;
    default:
        c->imr = v;
        break;
    }
}

static uint8_t read_byte(void *opaque, uint64_t port)
{
    struct i8259 *pic = opaque;
    if (port == I8259_ELCR_BASE || port == I8259_ELCR_BASE + 1)
        return pic->s.chip[port - I8259_ELCR_BASE].elcr;
    unsigned which;
    if ((port & ~1ull) == I8259_MASTER_BASE)
        which = 0;
    else if ((port & ~1ull) == I8259_SLAVE_BASE)
        which = 1;
    else
        return 0xff;
    struct i8259_chip_state *c = &pic->s.chip[which];
    if (c->poll)
        return chip_poll(pic, c);
    if (port & 1)
        return c->imr;
    return c->read_isr ? c->isr : c->irr;
}

static void write_byte(void *opaque, uint64_t port, uint8_t v)
{
    struct i8259 *pic = opaque;
    if (port == I8259_ELCR_BASE || port == I8259_ELCR_BASE + 1) {
        struct i8259_chip_state *c = &pic->s.chip[port - I8259_ELCR_BASE];
        c->elcr = v & elcr_mask[port - I8259_ELCR_BASE];
        chip_sync_levels(c);
    } else if ((port & ~1ull) == I8259_MASTER_BASE) {
        chip_write(&pic->s.chip[0], port & 1, v);
    } else if ((port & ~1ull) == I8259_SLAVE_BASE) {
        chip_write(&pic->s.chip[1], port & 1, v);
    } else {
        return;
    }
    update(pic);
}

void i8259_set_level_triggered(struct i8259 *pic, unsigned line)
{
    if (line >= I8259_LINES)
        return;
    unsigned reg = line >> 3;
    write_byte(pic, I8259_ELCR_BASE + reg, (uint8_t)(pic->s.chip[reg].elcr | 1u << (line & 7)));
}

int i8259_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = vxdev_split_read(opaque, addr, len, read_byte);
    return 0;
}

int i8259_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    vxdev_split_write(opaque, addr, len, value, write_byte);
    return 0;
}

const vx_io_ops i8259_ops = {
    .size = sizeof(vx_io_ops),
    .read = i8259_read,
    .write = i8259_write,
};

void i8259_save(const struct i8259 *pic, struct i8259_state *out)
{
    *out = pic->s;
}

int i8259_load(struct i8259 *pic, const struct i8259_state *in)
{
    for (unsigned i = 0; i < 2; i++) {
        const struct i8259_chip_state *c = &in->chip[i];
        if (c->lowest > 7 || (c->init_step != 0 && (c->init_step < 2 || c->init_step > 4)) ||
            (c->vector_base & 7) || (c->elcr & ~elcr_mask[i]))
            return VX_ECORRUPT;
    }
    pic->s = *in;
    /* Report the loaded INTR level whatever was reported before. */
    pic->s.intr = 0xff;
    update(pic);
    return 0;
}
