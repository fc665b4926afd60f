/*
 * Unit tests of the legacy PC device models (lib/devices), each against
 * the behaviour its datasheet describes, through the same vx_io_ops entry
 * points a board registers. Time is a fake clock the tests move.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/i8254.h"
#include "devices/i8259.h"
#include "devices/mc146818.h"
#include "devices/uart16550.h"

/* ---- shared fixtures ------------------------------------------------------ */

static uint64_t fake_now;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

struct irq_log {
    int level[16];
    int rises[16];
    int calls;
};

static void log_irq(void *ctx, unsigned line, int level)
{
    struct irq_log *l = ctx;
    l->calls++;
    if (line >= 16)
        return;
    if (level && !l->level[line])
        l->rises[line]++;
    l->level[line] = level;
}

static void out8(const vx_io_ops *ops, void *dev, uint16_t port, uint8_t v)
{
    ck_assert_int_eq(ops->write(dev, port, 1, v), 0);
}

static uint8_t in8(const vx_io_ops *ops, void *dev, uint16_t port)
{
    uint64_t v = 0xdeadbeef;
    ck_assert_int_eq(ops->read(dev, port, 1, &v), 0);
    ck_assert_uint_le(v, 0xff);
    return (uint8_t)v;
}

/* ---- i8259 ------------------------------------------------------------------ */

static struct i8259 pic;
static int intr_level, intr_calls;

static void pic_intr(void *ctx, int level)
{
    (void)ctx;
    intr_level = level;
    intr_calls++;
}

#define PIC_OUT(port, v) out8(&i8259_ops, &pic, (port), (v))
#define PIC_IN(port) in8(&i8259_ops, &pic, (port))

/* The sequence Linux and most kernels use: vectors 0x20 and 0x28, cascade
 * on IR2, 8086 mode, then everything unmasked. */
static void pic_program(uint8_t icw4_master, uint8_t icw4_slave)
{
    PIC_OUT(0x20, 0x11);
    PIC_OUT(0x21, 0x20);
    PIC_OUT(0x21, 0x04);
    PIC_OUT(0x21, icw4_master);
    PIC_OUT(0xa0, 0x11);
    PIC_OUT(0xa1, 0x28);
    PIC_OUT(0xa1, 0x02);
    PIC_OUT(0xa1, icw4_slave);
}

static uint8_t pic_isr(uint16_t base)
{
    PIC_OUT(base, 0x0b);
    uint8_t v = PIC_IN(base);
    PIC_OUT(base, 0x0a);
    return v;
}

static uint8_t pic_irr(uint16_t base)
{
    PIC_OUT(base, 0x0a);
    return PIC_IN(base);
}

static void pic_setup(void)
{
    intr_level = 0;
    intr_calls = 0;
    struct i8259_config cfg = { .set_intr = pic_intr };
    i8259_init(&pic, &cfg);
}

START_TEST(pic_reset_state_is_bios_like)
{
    ck_assert_uint_eq(PIC_IN(0x21), 0xfb);
    ck_assert_uint_eq(PIC_IN(0xa1), 0xff);
    ck_assert_uint_eq(PIC_IN(0x20), 0x00);
    i8259_set_irq(&pic, 0, 1);
    ck_assert_int_eq(intr_level, 0); /* masked */
    ck_assert_uint_eq(pic_irr(0x20), 0x01);
    PIC_OUT(0x21, 0xfa);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x08);
    ck_assert_int_eq(intr_level, 0);
}
END_TEST

START_TEST(pic_init_sequence_then_deliver_and_eoi)
{
    pic_program(0x01, 0x01);
    /* ICW1 cleared the masks. */
    ck_assert_uint_eq(PIC_IN(0x21), 0x00);
    ck_assert_uint_eq(PIC_IN(0xa1), 0x00);
    ck_assert_int_eq(i8259_has_interrupt(&pic), 0);
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_has_interrupt(&pic), 1);
    ck_assert_uint_eq(pic_irr(0x20), 0x08);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    ck_assert_int_eq(intr_level, 0);
    ck_assert_uint_eq(pic_isr(0x20), 0x08);
    ck_assert_uint_eq(pic_irr(0x20), 0x00);
    PIC_OUT(0x20, 0x20); /* non-specific EOI */
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    /* Edge-triggered: still high, no new request. */
    ck_assert_int_eq(intr_level, 0);
    /* OCW1 */
    PIC_OUT(0x21, 0x5a);
    ck_assert_uint_eq(PIC_IN(0x21), 0x5a);
}
END_TEST

START_TEST(pic_priority_and_nesting)
{
    pic_program(0x01, 0x01);
    i8259_set_irq(&pic, 5, 1);
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    /* IRQ 5 is below IRQ 3 in service: held. */
    ck_assert_int_eq(intr_level, 0);
    i8259_set_irq(&pic, 1, 1);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x21);
    ck_assert_uint_eq(pic_isr(0x20), 0x0a);
    PIC_OUT(0x20, 0x20); /* clears the highest: 1 */
    ck_assert_uint_eq(pic_isr(0x20), 0x08);
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0x20, 0x20);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x25);
}
END_TEST

START_TEST(pic_cascade_delivers_slave_vector_through_ir2)
{
    pic_program(0x01, 0x01);
    PIC_OUT(0x21, 0xfb);
    PIC_OUT(0xa1, 0xfb); /* only IRQ 10 */
    i8259_set_irq(&pic, 9, 1);
    ck_assert_int_eq(intr_level, 0);
    i8259_set_irq(&pic, 10, 1);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_uint_eq(pic_irr(0x20), 0x04);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x2a);
    ck_assert_uint_eq(pic_isr(0x20), 0x04);
    ck_assert_uint_eq(pic_isr(0xa0), 0x04);
    ck_assert_uint_eq(pic_irr(0xa0), 0x02); /* IRQ 9, masked */
    /* IRQ 8 outranks 10 on the slave, but the master holds IR2 in service
     * (fully nested mode, not special). */
    PIC_OUT(0xa1, 0xfa);
    i8259_set_irq(&pic, 8, 1);
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0xa0, 0x62); /* specific EOI for the slave's IR2 */
    ck_assert_uint_eq(pic_isr(0xa0), 0x00);
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0x20, 0x20);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x28);
}
END_TEST

START_TEST(pic_special_fully_nested_lets_higher_slave_irq_through)
{
    pic_program(0x11, 0x01);
    i8259_set_irq(&pic, 10, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x2a);
    i8259_set_irq(&pic, 8, 1);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x28);
    ck_assert_uint_eq(pic_isr(0xa0), 0x05);
    /* A lower slave request is still held by the slave's own ISR. */
    i8259_set_irq(&pic, 11, 1);
    ck_assert_int_eq(intr_level, 0);
}
END_TEST

/* A slave in automatic EOI mode still has a request after its INTA: its
 * INT stays high, and the master must see that as a new request on IR2. */
START_TEST(pic_slave_request_behind_an_acknowledged_one_is_not_lost)
{
    pic_program(0x01, 0x03);
    i8259_set_irq(&pic, 8, 1);
    i8259_set_irq(&pic, 9, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x28);
    ck_assert_uint_eq(pic_isr(0xa0), 0x00);
    ck_assert_int_eq(intr_level, 0); /* the master's IR2 is in service */
    ck_assert_uint_eq(pic_irr(0x20), 0x04);
    PIC_OUT(0x20, 0x20);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x29);
}
END_TEST

START_TEST(pic_specific_eoi_rotation_and_set_priority)
{
    pic_program(0x01, 0x01);
    i8259_set_irq(&pic, 1, 1);
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x21);
    PIC_OUT(0x21, 0x00);
    /* Specific EOI of a level not the highest. */
    ck_assert_uint_eq(pic_isr(0x20), 0x02);
    PIC_OUT(0x20, 0x63); /* EOI 3: not in service, nothing changes */
    ck_assert_uint_eq(pic_isr(0x20), 0x02);
    PIC_OUT(0x20, 0x61);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    /* Rotate on non-specific EOI: 3 becomes the lowest, 4 the highest. */
    PIC_OUT(0x20, 0xa0);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    i8259_set_irq(&pic, 1, 0);
    i8259_set_irq(&pic, 1, 1);
    i8259_set_irq(&pic, 4, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x24);
    /* With 4 in service, 1 now ranks below it. */
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0x20, 0x20);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x21);
    PIC_OUT(0x20, 0x20);
    /* Set priority: 5 lowest, so 6 is the highest. */
    PIC_OUT(0x20, 0xc5);
    i8259_set_irq(&pic, 0, 1);
    i8259_set_irq(&pic, 6, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x26);
    /* Rotate on specific EOI: 6 lowest, 7 highest, then 0. */
    PIC_OUT(0x20, 0xe6);
    i8259_set_irq(&pic, 7, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x27);
}
END_TEST

START_TEST(pic_masking_holds_requests)
{
    pic_program(0x01, 0x01);
    PIC_OUT(0x21, 0x10);
    i8259_set_irq(&pic, 4, 1);
    ck_assert_int_eq(intr_level, 0);
    ck_assert_uint_eq(pic_irr(0x20), 0x10);
    PIC_OUT(0x21, 0x00);
    ck_assert_int_eq(intr_level, 1);
    PIC_OUT(0x21, 0x10);
    ck_assert_int_eq(intr_level, 0);
    ck_assert_int_eq(intr_calls, 2);
}
END_TEST

START_TEST(pic_level_and_edge_triggering)
{
    pic_program(0x01, 0x01);
    /* The ELCR keeps IRQ 0, 1, 2, 8 and 13 edge-triggered. */
    PIC_OUT(0x4d0, 0xff);
    PIC_OUT(0x4d1, 0xff);
    ck_assert_uint_eq(PIC_IN(0x4d0), 0xf8);
    ck_assert_uint_eq(PIC_IN(0x4d1), 0xde);
    /* The firmware's way in (i8259_set_level_triggered) is the same
     * register, with the same mask. */
    PIC_OUT(0x4d0, 0x00);
    PIC_OUT(0x4d1, 0x00);
    i8259_set_level_triggered(&pic, 11);
    i8259_set_level_triggered(&pic, 0); /* edge-only: ignored */
    i8259_set_level_triggered(&pic, 13);
    ck_assert_uint_eq(PIC_IN(0x4d0), 0x00);
    ck_assert_uint_eq(PIC_IN(0x4d1), 0x08);
    PIC_OUT(0x4d1, 0x00);
    i8259_set_level_triggered(&pic, 5);
    ck_assert_uint_eq(PIC_IN(0x4d0), 0x20);
    /* Level: requests again after EOI while the line stays high. */
    i8259_set_irq(&pic, 5, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x25);
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0x20, 0x20);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x25);
    i8259_set_irq(&pic, 5, 0);
    PIC_OUT(0x20, 0x20);
    ck_assert_int_eq(intr_level, 0);
    ck_assert_uint_eq(pic_irr(0x20), 0x00);
    /* Edge: one request per rising edge... */
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    PIC_OUT(0x20, 0x20);
    ck_assert_int_eq(intr_level, 0);
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(intr_level, 0);
    /* ...latched even if the line falls before the acknowledge. */
    i8259_set_irq(&pic, 3, 0);
    i8259_set_irq(&pic, 3, 1);
    i8259_set_irq(&pic, 3, 0);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    /* ICW1's LTIM makes every line level-triggered. */
    PIC_OUT(0x20, 0x19);
    PIC_OUT(0x21, 0x20);
    PIC_OUT(0x21, 0x04);
    PIC_OUT(0x21, 0x01);
    i8259_set_irq(&pic, 3, 1);
    i8259_set_irq(&pic, 3, 0);
    ck_assert_int_eq(intr_level, 0);
}
END_TEST

START_TEST(pic_auto_eoi)
{
    pic_program(0x03, 0x03);
    i8259_set_irq(&pic, 1, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x21);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    i8259_set_irq(&pic, 6, 1);
    ck_assert_int_eq(intr_level, 1); /* nothing in service holds it */
    i8259_set_irq(&pic, 12, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x2c); /* IR2 outranks IR6 */
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    ck_assert_uint_eq(pic_isr(0xa0), 0x00);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x26);
    /* Rotate in automatic EOI mode: the acknowledged level drops to the
     * lowest priority. */
    PIC_OUT(0x20, 0x80);
    i8259_set_irq(&pic, 1, 0);
    i8259_set_irq(&pic, 1, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x21);
    i8259_set_irq(&pic, 1, 0);
    i8259_set_irq(&pic, 1, 1);
    i8259_set_irq(&pic, 5, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x25);
}
END_TEST

START_TEST(pic_spurious_irq7_and_irq15)
{
    pic_program(0x01, 0x01);
    PIC_OUT(0x4d0, 0x20);
    PIC_OUT(0x4d1, 0x04); /* IRQ 10 level-triggered */
    i8259_set_irq(&pic, 5, 1);
    ck_assert_int_eq(intr_level, 1);
    i8259_set_irq(&pic, 5, 0);
    ck_assert_int_eq(intr_level, 0);
    /* The CPU sampled INTR before it fell: INTA gets IR7, nothing in service. */
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x27);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
    /* The slave's request vanishes after the master latched IR2: the
     * slave answers its IR7, and the master's IR2 stays in service. */
    i8259_set_irq(&pic, 10, 1);
    i8259_set_irq(&pic, 10, 0);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x2f);
    ck_assert_uint_eq(pic_isr(0xa0), 0x00);
    ck_assert_uint_eq(pic_isr(0x20), 0x04);
}
END_TEST

START_TEST(pic_poll_mode)
{
    pic_program(0x01, 0x01);
    PIC_OUT(0x20, 0x0c);
    ck_assert_uint_eq(PIC_IN(0x20), 0x00); /* nothing requesting */
    i8259_set_irq(&pic, 4, 1);
    i8259_set_irq(&pic, 6, 1);
    PIC_OUT(0x20, 0x0c);
    ck_assert_uint_eq(PIC_IN(0x20), 0x84);
    ck_assert_uint_eq(pic_isr(0x20), 0x10);
    ck_assert_uint_eq(pic_irr(0x20), 0x40);
    /* The poll is one read: the next is IRR again. */
    ck_assert_uint_eq(PIC_IN(0x20), 0x40);
    PIC_OUT(0x20, 0x20);
    PIC_OUT(0x20, 0x0c);
    ck_assert_uint_eq(PIC_IN(0x21), 0x86);
}
END_TEST

START_TEST(pic_special_mask_mode)
{
    pic_program(0x01, 0x01);
    i8259_set_irq(&pic, 3, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x23);
    i8259_set_irq(&pic, 5, 1);
    ck_assert_int_eq(intr_level, 0);
    PIC_OUT(0x21, 0x08);
    PIC_OUT(0x20, 0x68); /* set special mask mode */
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x25);
    ck_assert_uint_eq(pic_isr(0x20), 0x28);
    /* A non-specific EOI skips the masked level in this mode. */
    PIC_OUT(0x20, 0x20);
    ck_assert_uint_eq(pic_isr(0x20), 0x08);
    PIC_OUT(0x20, 0x48); /* reset special mask mode */
    PIC_OUT(0x20, 0x20);
    ck_assert_uint_eq(pic_isr(0x20), 0x00);
}
END_TEST

START_TEST(pic_wide_access_splits_into_ports)
{
    pic_program(0x01, 0x01);
    PIC_OUT(0x21, 0xa5);
    i8259_set_irq(&pic, 6, 1);
    uint64_t v = 0;
    ck_assert_int_eq(i8259_read(&pic, 0x20, 2, &v), 0);
    ck_assert_uint_eq(v, 0xa540);
    ck_assert_int_eq(i8259_read(&pic, 0x21, 4, &v), 0);
    ck_assert_uint_eq(v, 0xffffffa5);
    ck_assert_int_eq(i8259_read(&pic, 0x20, 1000, &v), 0); /* clamped to 8 lanes */
    /* A word write: OCW1 on 0x21 with the byte for 0x22 dropped. */
    ck_assert_int_eq(i8259_write(&pic, 0x21, 2, 0x3c0f), 0);
    ck_assert_uint_eq(PIC_IN(0x21), 0x0f);
}
END_TEST

START_TEST(pic_save_and_load)
{
    pic_program(0x01, 0x01);
    i8259_set_irq(&pic, 4, 1);
    struct i8259_state st;
    i8259_save(&pic, &st);
    pic_setup();
    ck_assert_int_eq(intr_level, 0);
    ck_assert_int_eq(i8259_load(&pic, &st), 0);
    ck_assert_int_eq(intr_level, 1);
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x24);
    st.chip[1].lowest = 8;
    ck_assert_int_eq(i8259_load(&pic, &st), VX_ECORRUPT);
    ck_assert_uint_eq(pic_isr(0x20), 0x10); /* untouched */
}
END_TEST

/* ---- i8254 ------------------------------------------------------------------ */

static struct i8254 pit;
static struct irq_log pit_irqs;

#define PIT_OUT(port, v) out8(&i8254_ops, &pit, (port), (v))
#define PIT_IN(port) in8(&i8254_ops, &pit, (port))

/* The first nanosecond of input clock tick k. */
static uint64_t at_tick(uint64_t k)
{
    return (uint64_t)(((unsigned __int128)k * 1000000000u + I8254_HZ - 1) / I8254_HZ);
}

static void pit_setup(void)
{
    fake_now = 0;
    memset(&pit_irqs, 0, sizeof pit_irqs);
    struct i8254_config cfg = { .now_ns = fake_clock, .set_irq = log_irq, .ctx = &pit_irqs };
    i8254_init(&pit, &cfg);
}

static uint16_t pit_latched(unsigned ch)
{
    PIT_OUT(0x43, (uint8_t)(ch << 6));
    uint8_t lo = PIT_IN(0x40 + ch);
    return (uint16_t)(lo | PIT_IN(0x40 + ch) << 8);
}

START_TEST(pit_mode0_counts_down_and_raises_irq_once)
{
    ck_assert_int_eq(pit_irqs.calls, 0);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, 0), UINT64_MAX);
    PIT_OUT(0x43, 0x30);
    PIT_OUT(0x40, 100);
    PIT_OUT(0x40, 0);
    ck_assert_int_eq(pit_irqs.level[0], 0);
    /* The count loads on the next clock, OUT rises N clocks later. */
    ck_assert_uint_eq(i8254_next_event_ns(&pit, 0), at_tick(101));
    fake_now = at_tick(1);
    ck_assert_uint_eq(pit_latched(0), 100);
    fake_now = at_tick(50);
    ck_assert_uint_eq(pit_latched(0), 51);
    i8254_update(&pit, at_tick(101) - 1);
    ck_assert_int_eq(pit_irqs.level[0], 0);
    i8254_update(&pit, at_tick(101));
    ck_assert_int_eq(pit_irqs.level[0], 1);
    ck_assert_int_eq(pit_irqs.rises[0], 1);
    fake_now = at_tick(101);
    ck_assert_uint_eq(pit_latched(0), 0);
    fake_now = at_tick(102);
    ck_assert_uint_eq(pit_latched(0), 0xffff); /* wraps, OUT stays high */
    i8254_update(&pit, at_tick(200000));
    ck_assert_int_eq(pit_irqs.rises[0], 1);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(200000)), UINT64_MAX);
    /* A new control word drops OUT in mode 0. */
    fake_now = at_tick(200000);
    PIT_OUT(0x43, 0x30);
    ck_assert_int_eq(pit_irqs.level[0], 0);
}
END_TEST

START_TEST(pit_mode0_first_byte_stops_count)
{
    PIT_OUT(0x43, 0x30);
    PIT_OUT(0x40, 10);
    PIT_OUT(0x40, 0);
    fake_now = at_tick(20);
    i8254_update(&pit, fake_now);
    ck_assert_int_eq(pit_irqs.level[0], 1);
    PIT_OUT(0x40, 5); /* lsb of a new count: OUT low, counting stops */
    ck_assert_int_eq(pit_irqs.level[0], 0);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, fake_now), UINT64_MAX);
    fake_now = at_tick(30);
    PIT_OUT(0x40, 0);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, fake_now), at_tick(36));
}
END_TEST

START_TEST(pit_mode2_rate_generator)
{
    PIT_OUT(0x43, 0x34);
    /* The control word sets OUT high: a first edge, as on a PC. */
    ck_assert_int_eq(pit_irqs.level[0], 1);
    ck_assert_int_eq(pit_irqs.rises[0], 1);
    PIT_OUT(0x40, 1000 & 0xff);
    PIT_OUT(0x40, 1000 >> 8);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, 0), at_tick(1001));
    /* OUT is low for the one clock where the count is 1. */
    i8254_update(&pit, at_tick(1000));
    ck_assert_int_eq(pit_irqs.level[0], 0);
    i8254_update(&pit, at_tick(1001));
    ck_assert_int_eq(pit_irqs.level[0], 1);
    ck_assert_int_eq(pit_irqs.rises[0], 2);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(1001)), at_tick(2001));
    fake_now = at_tick(1500);
    ck_assert_uint_eq(pit_latched(0), 501);
    /* Four periods late: one edge, the ticks in between are lost. */
    i8254_update(&pit, at_tick(5001));
    ck_assert_int_eq(pit_irqs.rises[0], 3);
    ck_assert_int_eq(pit_irqs.level[0], 1);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(5001)), at_tick(6001));
    /* Asked late, the due time is now. */
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(7000)), at_tick(7000));
    /* A new count takes effect at the end of the current period. */
    fake_now = at_tick(5500);
    PIT_OUT(0x40, 100);
    PIT_OUT(0x40, 0);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, fake_now), at_tick(6001));
    i8254_update(&pit, at_tick(6001));
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(6001)), at_tick(6101));
    fake_now = at_tick(6051);
    ck_assert_uint_eq(pit_latched(0), 50);
}
END_TEST

START_TEST(pit_mode3_square_wave)
{
    PIT_OUT(0x43, 0x36);
    PIT_OUT(0x40, 10);
    PIT_OUT(0x40, 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(5)), 1);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(6)), 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(10)), 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(11)), 1);
    /* Counts down by two, twice per period. */
    fake_now = at_tick(1);
    ck_assert_uint_eq(pit_latched(0), 10);
    fake_now = at_tick(2);
    ck_assert_uint_eq(pit_latched(0), 8);
    fake_now = at_tick(5);
    ck_assert_uint_eq(pit_latched(0), 2);
    fake_now = at_tick(6);
    ck_assert_uint_eq(pit_latched(0), 10);
    i8254_update(&pit, at_tick(6));
    ck_assert_int_eq(pit_irqs.level[0], 0);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, at_tick(6)), at_tick(11));
    i8254_update(&pit, at_tick(11));
    ck_assert_int_eq(pit_irqs.level[0], 1);
    /* An odd count: high one clock longer than low. */
    fake_now = at_tick(11);
    PIT_OUT(0x43, 0x36);
    PIT_OUT(0x40, 5);
    PIT_OUT(0x40, 0);
    uint64_t s = 11 + 1;
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(s + 2)), 1);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(s + 3)), 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(s + 4)), 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(s + 5)), 1);
}
END_TEST

START_TEST(pit_mode4_strobe_and_mode1_one_shot)
{
    PIT_OUT(0x43, 0x38);
    PIT_OUT(0x40, 20);
    PIT_OUT(0x40, 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(20)), 1);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(21)), 0);
    ck_assert_int_eq(i8254_out(&pit, 0, at_tick(22)), 1);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, 0), at_tick(22));
    /* Mode 1 on channel 2 waits for a gate edge from port 0x61. */
    PIT_OUT(0x43, 0xb2);
    PIT_OUT(0x42, 30);
    PIT_OUT(0x42, 0);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(10)), 1);
    fake_now = at_tick(100);
    PIT_OUT(0x61, 0x01);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(101)), 0);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(130)), 0);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(131)), 1);
    /* Retriggered: the one-shot starts over. */
    fake_now = at_tick(140);
    PIT_OUT(0x61, 0x00);
    PIT_OUT(0x61, 0x01);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(150)), 0);
    ck_assert_int_eq(i8254_out(&pit, 2, at_tick(171)), 1);
}
END_TEST

START_TEST(pit_latch_holds_value_until_read)
{
    PIT_OUT(0x43, 0x30);
    PIT_OUT(0x40, 0x00);
    PIT_OUT(0x40, 0x10); /* 4096 */
    fake_now = at_tick(97);
    PIT_OUT(0x43, 0x00);
    fake_now = at_tick(197);
    PIT_OUT(0x43, 0x00); /* ignored: the first latch is unread */
    fake_now = at_tick(297);
    ck_assert_uint_eq(PIT_IN(0x40), (4096 - 96) & 0xff);
    fake_now = at_tick(397);
    ck_assert_uint_eq(PIT_IN(0x40), (4096 - 96) >> 8);
    /* Released: the next read is live. */
    ck_assert_uint_eq(PIT_IN(0x40), (4096 - 396) & 0xff);
    ck_assert_uint_eq(PIT_IN(0x40), (4096 - 396) >> 8);
}
END_TEST

START_TEST(pit_access_modes_and_bcd)
{
    /* lsb only */
    PIT_OUT(0x43, 0x50);
    PIT_OUT(0x41, 0x34);
    fake_now = at_tick(5);
    ck_assert_uint_eq(PIT_IN(0x41), 0x30);
    ck_assert_uint_eq(PIT_IN(0x41), 0x30);
    /* msb only: a count of 0x1200 */
    PIT_OUT(0x43, 0x60);
    PIT_OUT(0x41, 0x12);
    fake_now = at_tick(6);
    ck_assert_uint_eq(PIT_IN(0x41), 0x12);
    fake_now = at_tick(7);
    ck_assert_uint_eq(PIT_IN(0x41), 0x11);
    /* BCD: count 1299 decimal, read back in BCD. */
    PIT_OUT(0x43, 0x31);
    PIT_OUT(0x40, 0x99);
    PIT_OUT(0x40, 0x12);
    fake_now = at_tick(7 + 1 + 299);
    ck_assert_uint_eq(pit_latched(0), 0x1000);
    fake_now = at_tick(7 + 1 + 1299 + 1);
    ck_assert_uint_eq(pit_latched(0), 0x9999); /* wraps at 10000 */
    /* A count of 0 is the largest: 65536 in binary. */
    PIT_OUT(0x43, 0x30);
    PIT_OUT(0x40, 0);
    PIT_OUT(0x40, 0);
    uint64_t s = 7 + 1 + 1299 + 1 + 1;
    fake_now = at_tick(s + 1);
    ck_assert_uint_eq(pit_latched(0), 0xffff);
    ck_assert_uint_eq(i8254_next_event_ns(&pit, fake_now), at_tick(s + 65536));
}
END_TEST

START_TEST(pit_read_back_status_and_count)
{
    fake_now = at_tick(10);
    PIT_OUT(0x43, 0x34);
    PIT_OUT(0x40, 0x10);
    PIT_OUT(0x40, 0x00);
    /* Same tick: the count is not in the counter yet (null count). */
    PIT_OUT(0x43, 0xe2);
    ck_assert_uint_eq(PIT_IN(0x40), 0xf4);
    fake_now = at_tick(15);
    /* Status and count of channels 0 and 2 at once. */
    PIT_OUT(0x43, 0xb6);
    PIT_OUT(0x42, 0x20);
    PIT_OUT(0x42, 0x00);
    PIT_OUT(0x43, 0xc0 | 0x02 | 0x08);
    fake_now = at_tick(25);
    ck_assert_uint_eq(PIT_IN(0x40), 0xb4); /* OUT high, loaded, ctrl 0x34 */
    ck_assert_uint_eq(PIT_IN(0x40), 0x10 - 4);
    ck_assert_uint_eq(PIT_IN(0x40), 0x00);
    /* Channel 2: gate low (port 0x61 bit 0), so OUT high and held. */
    ck_assert_uint_eq(PIT_IN(0x42), 0xf6);
    ck_assert_uint_eq(PIT_IN(0x42), 0x20);
    ck_assert_uint_eq(PIT_IN(0x42), 0x00);
    /* Reading the control port does nothing. */
    ck_assert_uint_eq(PIT_IN(0x43), 0xff);
}
END_TEST

START_TEST(pit_port_b_gate_speaker_and_refresh)
{
    ck_assert_uint_eq(PIT_IN(0x61), 0x00);
    PIT_OUT(0x61, 0x03);
    PIT_OUT(0x43, 0xb6);
    PIT_OUT(0x42, 4);
    PIT_OUT(0x42, 0);
    fake_now = at_tick(1);
    ck_assert_uint_eq(PIT_IN(0x61), 0x23);
    fake_now = at_tick(3);
    ck_assert_uint_eq(PIT_IN(0x61), 0x03);
    fake_now = at_tick(18 + 3);
    ck_assert_uint_eq(PIT_IN(0x61), 0x33); /* refresh toggled, OUT2 high */
    /* Only bits 0-3 are writable. */
    PIT_OUT(0x61, 0xfc);
    ck_assert_uint_eq(PIT_IN(0x61) & 0x0f, 0x0c);
    /* Gate low in mode 3: OUT high. */
    fake_now = at_tick(21);
    ck_assert_uint_eq(PIT_IN(0x61) & 0x20, 0x20);
    /* Mode 0 with the gate low: counting waits. */
    PIT_OUT(0x43, 0xb0);
    PIT_OUT(0x42, 10);
    PIT_OUT(0x42, 0);
    fake_now = at_tick(100);
    ck_assert_uint_eq(pit_latched(2), 10);
    PIT_OUT(0x61, 0x01);
    fake_now = at_tick(105);
    ck_assert_uint_eq(pit_latched(2), 5);
    PIT_OUT(0x61, 0x00);
    fake_now = at_tick(200);
    ck_assert_uint_eq(pit_latched(2), 5);
    ck_assert_int_eq(i8254_out(&pit, 2, fake_now), 0);
}
END_TEST

START_TEST(pit_save_load_and_wide_access)
{
    PIT_OUT(0x43, 0x34);
    PIT_OUT(0x40, 0x00);
    PIT_OUT(0x40, 0x01);
    struct i8254_state st;
    i8254_save(&pit, &st);
    struct irq_log l2 = { 0 };
    struct i8254_config cfg = { .now_ns = fake_clock, .set_irq = log_irq, .ctx = &l2 };
    struct i8254 p2;
    i8254_init(&p2, &cfg);
    ck_assert_int_eq(i8254_load(&p2, &st), 0);
    ck_assert_int_eq(l2.level[0], 1);
    ck_assert_uint_eq(i8254_next_event_ns(&p2, 0), at_tick(257));
    st.ch[1].count = 0;
    ck_assert_int_eq(i8254_load(&p2, &st), VX_ECORRUPT);
    /* A word read of 0x40 is counters 0 and 1, a byte each. */
    uint64_t v;
    fake_now = at_tick(1);
    PIT_OUT(0x43, 0x00);
    ck_assert_int_eq(i8254_read(&pit, 0x40, 2, &v), 0);
    ck_assert_uint_eq(v & 0xff, 0x00);
    ck_assert_int_eq(i8254_write(&pit, 0x43, 8, ~0ull), 0);
}
END_TEST

/* ---- i8254 and i8259 together --------------------------------------------- */

static void pit_to_pic(void *ctx, unsigned line, int level)
{
    i8259_set_irq(ctx, line, level);
}

START_TEST(pit_ticks_reach_the_pic_each_period)
{
    pic_setup();
    fake_now = 0;
    struct i8254_config cfg = { .now_ns = fake_clock, .set_irq = pit_to_pic, .ctx = &pic };
    i8254_init(&pit, &cfg);
    PIC_OUT(0x21, 0xfa);
    PIT_OUT(0x43, 0x34);
    PIT_OUT(0x40, 0x9c);
    PIT_OUT(0x40, 0x2e); /* 11932: 100 Hz */
    /* The control word's edge. */
    ck_assert_int_eq(i8259_acknowledge(&pic), 0x08);
    PIC_OUT(0x20, 0x20);
    for (int i = 0; i < 5; i++) {
        uint64_t t = i8254_next_event_ns(&pit, fake_now);
        ck_assert_uint_eq(t, at_tick(1 + 11932u * (i + 1)));
        fake_now = t - 1;
        i8254_update(&pit, fake_now);
        ck_assert_int_eq(intr_level, 0);
        fake_now = t;
        i8254_update(&pit, fake_now);
        ck_assert_int_eq(intr_level, 1);
        ck_assert_int_eq(i8259_acknowledge(&pic), 0x08);
        PIC_OUT(0x20, 0x20);
    }
}
END_TEST

/* ---- uart16550 ------------------------------------------------------------- */

static struct uart16550 uart;
static struct irq_log uart_irqs;
static uint8_t tx_buf[64];
static unsigned tx_len;

static void uart_tx(void *ctx, uint8_t b)
{
    (void)ctx;
    if (tx_len < sizeof tx_buf)
        tx_buf[tx_len++] = b;
}

static void uart_irq(void *ctx, unsigned line, int level)
{
    log_irq(&uart_irqs, line, level);
}

#define COM1 0x3f8
#define UART_OUT(off, v) out8(&uart16550_ops, &uart, COM1 + (off), (v))
#define UART_IN(off) in8(&uart16550_ops, &uart, COM1 + (off))

static void uart_start(int with_clock, int out2_gates)
{
    fake_now = 0;
    tx_len = 0;
    memset(&uart_irqs, 0, sizeof uart_irqs);
    struct uart16550_config cfg = {
        .base = COM1, .irq = 4, .set_irq = uart_irq, .tx = uart_tx,
        .now_ns = with_clock ? fake_clock : NULL, .out2_gates_irq = out2_gates,
    };
    uart16550_init(&uart, &cfg);
}

static void uart_setup(void)
{
    uart_start(1, 0);
}

START_TEST(uart_reset_values)
{
    ck_assert_uint_eq(UART_IN(1), 0x00);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    ck_assert_uint_eq(UART_IN(3), 0x00);
    ck_assert_uint_eq(UART_IN(4), 0x00);
    ck_assert_uint_eq(UART_IN(5), 0x60);
    ck_assert_uint_eq(UART_IN(6), 0xb0);
    ck_assert_int_eq(uart_irqs.calls, 0);
    ck_assert_uint_eq(uart16550_can_receive(&uart), 1);
}
END_TEST

START_TEST(uart_divisor_latch_and_scratch)
{
    UART_OUT(3, 0x80);
    ck_assert_uint_eq(UART_IN(0), 12);
    ck_assert_uint_eq(UART_IN(1), 0);
    UART_OUT(0, 0x01);
    UART_OUT(1, 0x02);
    ck_assert_int_eq(tx_len, 0); /* DLL, not THR */
    ck_assert_uint_eq(UART_IN(0), 0x01);
    ck_assert_uint_eq(UART_IN(1), 0x02);
    ck_assert_uint_eq(UART_IN(3), 0x80);
    UART_OUT(3, 0x03);
    ck_assert_uint_eq(UART_IN(1), 0x00); /* IER again */
    UART_OUT(1, 0xff);
    ck_assert_uint_eq(UART_IN(1), 0x0f);
    UART_OUT(3, 0x83);
    ck_assert_uint_eq(UART_IN(0), 0x01);
    ck_assert_uint_eq(UART_IN(1), 0x02);
    UART_OUT(7, 0x5a);
    ck_assert_uint_eq(UART_IN(7), 0x5a);
}
END_TEST

START_TEST(uart_transmit_goes_to_host)
{
    UART_OUT(3, 0x03);
    UART_OUT(0, 'h');
    UART_OUT(0, 'i');
    ck_assert_uint_eq(tx_len, 2);
    ck_assert_uint_eq(tx_buf[0], 'h');
    ck_assert_uint_eq(tx_buf[1], 'i');
    ck_assert_uint_eq(UART_IN(5), 0x60);
    /* Seven data bits: the eighth never leaves. */
    UART_OUT(3, 0x02);
    UART_OUT(0, 0xc1);
    ck_assert_uint_eq(tx_buf[2], 0x41);
}
END_TEST

START_TEST(uart_loopback)
{
    UART_OUT(3, 0x03);
    UART_OUT(4, 0x10);
    /* The modem inputs now follow MCR: all four fell. */
    ck_assert_uint_eq(UART_IN(6), 0x0b);
    ck_assert_uint_eq(UART_IN(6), 0x00);
    UART_OUT(4, 0x1f);
    ck_assert_uint_eq(UART_IN(6), 0xfb);
    UART_OUT(4, 0x1b); /* OUT1 off: RI's trailing edge */
    ck_assert_uint_eq(UART_IN(6), 0xb4);
    ck_assert_uint_eq(uart16550_can_receive(&uart), 0);
    uint8_t b = 0x11;
    ck_assert_uint_eq(uart16550_receive(&uart, &b, 1), 0);
    UART_OUT(0, 0x55);
    ck_assert_uint_eq(tx_len, 0);
    ck_assert_uint_eq(UART_IN(5), 0x61);
    /* No FIFO: a second byte overruns the holding register. */
    UART_OUT(0, 0x66);
    ck_assert_uint_eq(UART_IN(5), 0x63);
    ck_assert_uint_eq(UART_IN(5), 0x61);
    ck_assert_uint_eq(UART_IN(0), 0x66);
    ck_assert_uint_eq(UART_IN(5), 0x60);
    /* With the FIFO on, the sixteenth byte fits and the seventeenth is lost. */
    UART_OUT(2, 0x01);
    for (unsigned i = 0; i < 17; i++)
        UART_OUT(0, (uint8_t)i);
    ck_assert_uint_eq(UART_IN(5), 0x63);
    for (unsigned i = 0; i < 16; i++)
        ck_assert_uint_eq(UART_IN(0), i);
    ck_assert_uint_eq(UART_IN(5), 0x60);
}
END_TEST

START_TEST(uart_receive_without_fifo)
{
    UART_OUT(1, 0x01);
    uint8_t in[3] = { 'a', 'b', 'c' };
    ck_assert_uint_eq(uart16550_receive(&uart, in, 3), 1);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(2), 0x04);
    ck_assert_uint_eq(UART_IN(5), 0x61);
    ck_assert_uint_eq(uart16550_can_receive(&uart), 0);
    ck_assert_uint_eq(UART_IN(0), 'a');
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(uart16550_receive(&uart, in + 1, 2), 1);
    ck_assert_uint_eq(UART_IN(0), 'b');
    ck_assert_uint_eq(UART_IN(5), 0x60); /* no overrun from the host side */
}
END_TEST

START_TEST(uart_fifo_trigger_and_timeout)
{
    UART_OUT(3, 0x80);
    UART_OUT(0, 0x01); /* 115200 */
    UART_OUT(1, 0x00);
    UART_OUT(3, 0x03); /* 8N1: 10 bits a character */
    UART_OUT(2, 0x87); /* FIFO on, both cleared, trigger at 8 */
    ck_assert_uint_eq(UART_IN(2), 0xc1);
    UART_OUT(1, 0x01);
    uint8_t in[20];
    for (unsigned i = 0; i < 20; i++)
        in[i] = (uint8_t)(0x30 + i);
    fake_now = 1000;
    ck_assert_uint_eq(uart16550_receive(&uart, in, 7), 7);
    ck_assert_uint_eq(UART_IN(2), 0xc1);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(uart16550_can_receive(&uart), 9);
    ck_assert_uint_eq(uart16550_receive(&uart, in + 7, 1), 1);
    ck_assert_uint_eq(UART_IN(2), 0xc4);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(0), 0x30);
    /* Below the trigger: the timeout, four character times after the read. */
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(UART_IN(2), 0xc1);
    ck_assert_uint_eq(uart16550_next_event_ns(&uart, fake_now), 1000 + 347222);
    uart16550_update(&uart, 1000 + 347221);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    fake_now = 1000 + 347222;
    uart16550_update(&uart, fake_now);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(2), 0xcc);
    ck_assert_uint_eq(uart16550_next_event_ns(&uart, fake_now), UINT64_MAX);
    /* Reading restarts the timer. */
    ck_assert_uint_eq(UART_IN(0), 0x31);
    ck_assert_uint_eq(UART_IN(2), 0xc1);
    /* The FIFO takes 16 at most. */
    ck_assert_uint_eq(uart16550_receive(&uart, in, 20), 10);
    ck_assert_uint_eq(UART_IN(5), 0x61);
    /* FCR bit 1 empties the receiver. */
    UART_OUT(2, 0x83);
    ck_assert_uint_eq(UART_IN(5), 0x60);
    ck_assert_uint_eq(UART_IN(2), 0xc1);
    /* Turning the FIFO off: IIR's top bits go and one byte is the limit. */
    UART_OUT(2, 0x00);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    ck_assert_uint_eq(uart16550_can_receive(&uart), 1);
}
END_TEST

START_TEST(uart_timeout_without_clock_is_immediate)
{
    uart_start(0, 0);
    UART_OUT(2, 0xc1); /* trigger at 14 */
    UART_OUT(1, 0x01);
    uint8_t b = 'x';
    ck_assert_uint_eq(uart16550_receive(&uart, &b, 1), 1);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(2), 0xcc);
}
END_TEST

START_TEST(uart_iir_priorities)
{
    UART_OUT(4, 0x10); /* loopback, to make an overrun */
    UART_OUT(0, 0x01);
    UART_OUT(0, 0x02);
    UART_OUT(1, 0x0f);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(2), 0x06); /* line status first */
    ck_assert_uint_eq(UART_IN(5), 0x63);
    ck_assert_uint_eq(UART_IN(2), 0x04); /* then received data */
    ck_assert_uint_eq(UART_IN(0), 0x02);
    ck_assert_uint_eq(UART_IN(2), 0x02); /* then THR empty, cleared by this read */
    ck_assert_uint_eq(UART_IN(2), 0x00); /* then modem status */
    ck_assert_uint_eq(UART_IN(6), 0x0b);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    /* Host modem lines raise a modem status interrupt too. */
    UART_OUT(4, 0x00);
    ck_assert_uint_eq(UART_IN(6), 0xbb);
    uart16550_set_modem_lines(&uart, UART16550_CTS | UART16550_DSR);
    ck_assert_uint_eq(UART_IN(2), 0x00);
    ck_assert_uint_eq(UART_IN(6), 0x38);
    ck_assert_uint_eq(UART_IN(2), 0x01);
}
END_TEST

START_TEST(uart_thre_interrupt_semantics)
{
    ck_assert_uint_eq(UART_IN(2), 0x01);
    UART_OUT(1, 0x02);
    /* Enabling it with THR empty raises it at once. */
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(2), 0x02);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    /* Writing IER again with the bit already set does not. */
    UART_OUT(1, 0x02);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    UART_OUT(1, 0x00);
    UART_OUT(1, 0x02);
    ck_assert_uint_eq(UART_IN(2), 0x02);
    /* Each byte sent empties THR again: a fresh edge on the line. */
    int rises = uart_irqs.rises[4];
    UART_OUT(0, 'a');
    ck_assert_int_eq(uart_irqs.rises[4], rises + 1);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    UART_OUT(0, 'b');
    ck_assert_int_eq(uart_irqs.rises[4], rises + 2);
    UART_OUT(1, 0x00);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(UART_IN(2), 0x01);
}
END_TEST

START_TEST(uart_out2_gates_the_irq_when_asked)
{
    uart_start(1, 1);
    UART_OUT(1, 0x02);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    UART_OUT(4, 0x08);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    UART_OUT(4, 0x18); /* loopback: the OUT pins are held inactive */
    ck_assert_int_eq(uart_irqs.level[4], 0);
}
END_TEST

START_TEST(uart_reset_save_and_load)
{
    UART_OUT(2, 0x01);
    UART_OUT(1, 0x01);
    uint8_t in[3] = { 1, 2, 3 };
    uart16550_receive(&uart, in, 3);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    struct uart16550_state st;
    uart16550_save(&uart, &st);
    uart16550_reset(&uart);
    ck_assert_int_eq(uart_irqs.level[4], 0);
    ck_assert_uint_eq(UART_IN(5), 0x60);
    ck_assert_uint_eq(UART_IN(2), 0x01);
    ck_assert_int_eq(uart16550_load(&uart, &st), 0);
    ck_assert_int_eq(uart_irqs.level[4], 1);
    ck_assert_uint_eq(UART_IN(0), 1);
    st.rx_head = 16;
    ck_assert_int_eq(uart16550_load(&uart, &st), VX_ECORRUPT);
    st.rx_head = 0;
    st.fcr = 0;
    ck_assert_int_eq(uart16550_load(&uart, &st), VX_ECORRUPT); /* 3 bytes, no FIFO */
    ck_assert_uint_eq(UART_IN(0), 2);
}
END_TEST

/* ---- mc146818 ----------------------------------------------------------------- */

static struct mc146818 rtc;
static struct irq_log rtc_irqs;
static int64_t wall = 1709214330; /* 2024-02-29 13:45:30, a Thursday */

static int64_t wall_clock(void *ctx)
{
    (void)ctx;
    return wall;
}

#define RTC_OUT(port, v) out8(&mc146818_ops, &rtc, (port), (v))
#define RTC_IN(port) in8(&mc146818_ops, &rtc, (port))

static uint8_t cmos_read(uint8_t idx)
{
    RTC_OUT(0x70, idx);
    return RTC_IN(0x71);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
    RTC_OUT(0x70, idx);
    RTC_OUT(0x71, v);
}

static void rtc_setup(void)
{
    fake_now = 0;
    memset(&rtc_irqs, 0, sizeof rtc_irqs);
    struct mc146818_config cfg = { .now_ns = fake_clock, .wall_clock = wall_clock,
                                   .set_irq = log_irq, .ctx = &rtc_irqs, .irq = 8 };
    mc146818_init(&rtc, &cfg);
}

START_TEST(rtc_reads_bcd_24h)
{
    ck_assert_uint_eq(cmos_read(0x00), 0x30);
    ck_assert_uint_eq(cmos_read(0x02), 0x45);
    ck_assert_uint_eq(cmos_read(0x04), 0x13);
    ck_assert_uint_eq(cmos_read(0x06), 0x05);
    ck_assert_uint_eq(cmos_read(0x07), 0x29);
    ck_assert_uint_eq(cmos_read(0x08), 0x02);
    ck_assert_uint_eq(cmos_read(0x09), 0x24);
    ck_assert_uint_eq(cmos_read(0x32), 0x20);
    ck_assert_uint_eq(cmos_read(0x0a), 0x26);
    ck_assert_uint_eq(cmos_read(0x0b), 0x02);
    ck_assert_uint_eq(cmos_read(0x0c), 0x00);
    ck_assert_uint_eq(cmos_read(0x0d), 0x80);
    ck_assert_int_eq(mc146818_get_time(&rtc), wall);
}
END_TEST

START_TEST(rtc_binary_and_12_hour_formats)
{
    cmos_write(0x0b, 0x06);
    ck_assert_uint_eq(cmos_read(0x00), 30);
    ck_assert_uint_eq(cmos_read(0x04), 13);
    ck_assert_uint_eq(cmos_read(0x09), 24);
    ck_assert_uint_eq(cmos_read(0x32), 20);
    cmos_write(0x0b, 0x04);
    ck_assert_uint_eq(cmos_read(0x04), 0x81); /* 1 PM */
    cmos_write(0x0b, 0x00);
    ck_assert_uint_eq(cmos_read(0x04), 0x81);
    /* Midnight and noon are 12 in 12-hour mode. */
    mc146818_set_time(&rtc, 1709164800 + 30 * 60); /* 00:30 */
    ck_assert_uint_eq(cmos_read(0x04), 0x12);
    mc146818_set_time(&rtc, 1709164800 + 12 * 3600 + 59); /* 12:00:59 */
    ck_assert_uint_eq(cmos_read(0x04), 0x92);
    ck_assert_uint_eq(cmos_read(0x00), 0x59);
}
END_TEST

START_TEST(rtc_update_in_progress_window)
{
    /* The first update comes half a second after init. */
    const uint64_t upd = 500000000;
    fake_now = upd - 244001;
    ck_assert_uint_eq(cmos_read(0x0a), 0x26);
    fake_now = upd - 244000;
    ck_assert_uint_eq(cmos_read(0x0a), 0xa6);
    fake_now = upd - 1;
    ck_assert_uint_eq(cmos_read(0x00), 0x30);
    fake_now = upd;
    ck_assert_uint_eq(cmos_read(0x00), 0x31);
    fake_now = upd + 1984000 - 1;
    ck_assert_uint_eq(cmos_read(0x0a), 0xa6);
    fake_now = upd + 1984000;
    ck_assert_uint_eq(cmos_read(0x0a), 0x26);
    /* UIP is read-only. */
    cmos_write(0x0a, 0xa6);
    ck_assert_uint_eq(cmos_read(0x0a), 0x26);
}
END_TEST

START_TEST(rtc_set_bit_freezes_and_guest_sets_time)
{
    cmos_write(0x0b, 0x92); /* SET with UIE: UIE is cleared */
    ck_assert_uint_eq(cmos_read(0x0b), 0x82);
    fake_now = 3000000000ull;
    ck_assert_uint_eq(cmos_read(0x00), 0x30); /* no updates while SET */
    ck_assert_uint_eq(cmos_read(0x0a) & 0x80, 0);
    cmos_write(0x00, 0x58);
    cmos_write(0x02, 0x59);
    cmos_write(0x04, 0x23);
    cmos_write(0x07, 0x31);
    cmos_write(0x08, 0x12);
    cmos_write(0x09, 0x99);
    cmos_write(0x32, 0x19);
    cmos_write(0x06, 0x06);
    ck_assert_uint_eq(cmos_read(0x00), 0x58);
    cmos_write(0x0b, 0x02);
    ck_assert_int_eq(mc146818_get_time(&rtc), 946684798);
    /* The divider kept its phase: updates still fall on .5 s. */
    fake_now = 3500000000ull - 1;
    ck_assert_uint_eq(cmos_read(0x00), 0x58);
    fake_now = 3500000000ull;
    ck_assert_uint_eq(cmos_read(0x00), 0x59);
    fake_now = 4500000000ull;
    ck_assert_uint_eq(cmos_read(0x00), 0x00);
    ck_assert_uint_eq(cmos_read(0x04), 0x00);
    ck_assert_uint_eq(cmos_read(0x07), 0x01);
    ck_assert_uint_eq(cmos_read(0x08), 0x01);
    ck_assert_uint_eq(cmos_read(0x09), 0x00);
    ck_assert_uint_eq(cmos_read(0x32), 0x20);
    /* The guest's weekday (Friday for a Friday, 1999-12-31) went on to Saturday. */
    ck_assert_uint_eq(cmos_read(0x06), 0x07);
    /* Setting one field of a running clock. */
    cmos_write(0x02, 0x30);
    ck_assert_uint_eq(cmos_read(0x02), 0x30);
    ck_assert_uint_eq(cmos_read(0x00), 0x00);
    ck_assert_int_eq(mc146818_get_time(&rtc), 946684800 + 30 * 60);
}
END_TEST

START_TEST(rtc_century_rolls_over)
{
    mc146818_set_time(&rtc, 4102444799); /* 2099-12-31 23:59:59 */
    ck_assert_uint_eq(cmos_read(0x09), 0x99);
    ck_assert_uint_eq(cmos_read(0x32), 0x20);
    fake_now = 500000000;
    ck_assert_uint_eq(cmos_read(0x09), 0x00);
    ck_assert_uint_eq(cmos_read(0x32), 0x21);
    ck_assert_uint_eq(cmos_read(0x08), 0x01);
    ck_assert_uint_eq(cmos_read(0x07), 0x01);
    ck_assert_uint_eq(cmos_read(0x06), 0x06); /* 2100-01-01 is a Friday */
}
END_TEST

START_TEST(rtc_divider_reset_stops_the_clock)
{
    cmos_write(0x0a, 0x76);
    fake_now = 10000000000ull;
    ck_assert_uint_eq(cmos_read(0x00), 0x30);
    ck_assert_uint_eq(cmos_read(0x0a), 0x76);
    cmos_write(0x0a, 0x26);
    fake_now += 500000000 - 1;
    ck_assert_uint_eq(cmos_read(0x00), 0x30);
    fake_now += 1;
    ck_assert_uint_eq(cmos_read(0x00), 0x31);
}
END_TEST

START_TEST(rtc_periodic_interrupt_rate)
{
    cmos_write(0x0b, 0x42); /* PIE, 1024 Hz from register A */
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, 0), 976563);
    mc146818_update(&rtc, 976562);
    ck_assert_int_eq(rtc_irqs.level[8], 0);
    mc146818_update(&rtc, 976563);
    ck_assert_int_eq(rtc_irqs.level[8], 1);
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, 976563), UINT64_MAX);
    fake_now = 976563;
    ck_assert_uint_eq(cmos_read(0x0c), 0xc0);
    ck_assert_int_eq(rtc_irqs.level[8], 0);
    ck_assert_uint_eq(cmos_read(0x0c), 0x00);
    /* Count the interrupts in one second, at 1024 Hz and at 2 Hz. */
    static const struct { uint8_t a; int per_second; } rates[] = {
        { 0x26, 1024 }, { 0x2f, 2 }, { 0x21, 256 }, { 0x23, 8192 },
    };
    for (unsigned r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        cmos_write(0x0a, rates[r].a);
        uint64_t start = fake_now, end = start + 1000000000ull;
        int before = rtc_irqs.rises[8];
        for (;;) {
            uint64_t t = mc146818_next_event_ns(&rtc, fake_now);
            ck_assert_uint_ne(t, UINT64_MAX);
            ck_assert_uint_gt(t, fake_now);
            if (t > end)
                break;
            fake_now = t;
            mc146818_update(&rtc, fake_now);
            ck_assert_int_eq(rtc_irqs.level[8], 1);
            ck_assert_uint_eq(cmos_read(0x0c) & 0xc0, 0xc0);
        }
        ck_assert_int_eq(rtc_irqs.rises[8] - before, rates[r].per_second);
        fake_now = end;
    }
    /* PF is set with PIE off too; only IRQF needs it. */
    cmos_write(0x0b, 0x02);
    fake_now += 600000000;
    ck_assert_uint_eq(cmos_read(0x0c), 0x50);
    ck_assert_int_eq(rtc_irqs.level[8], 0);
}
END_TEST

START_TEST(rtc_update_ended_and_alarm_interrupts)
{
    cmos_write(0x0a, 0x20); /* no periodic flag in the way */
    cmos_write(0x0b, 0x12);
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, 0), 500000000);
    mc146818_update(&rtc, 500000000);
    ck_assert_int_eq(rtc_irqs.level[8], 1);
    fake_now = 500000000;
    ck_assert_uint_eq(cmos_read(0x0c), 0x90);
    /* Alarm at second 35 of any minute of any hour: 13:45:35. */
    cmos_write(0x0b, 0x22);
    cmos_write(0x01, 0x35);
    cmos_write(0x03, 0xc0);
    cmos_write(0x05, 0xff);
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, fake_now), 4500000000ull);
    mc146818_update(&rtc, 4500000000ull - 1);
    ck_assert_int_eq(rtc_irqs.level[8], 0);
    mc146818_update(&rtc, 4500000000ull);
    ck_assert_int_eq(rtc_irqs.level[8], 1);
    fake_now = 4500000000ull;
    ck_assert_uint_eq(cmos_read(0x0c), 0xb0); /* the update flag is set too */
    /* Next: a minute later. */
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, fake_now), 64500000000ull);
    /* An exact alarm at 14:00:00, in 12-hour BCD: 2 PM is 0x82. */
    cmos_write(0x0b, 0x20);
    cmos_write(0x01, 0x00);
    cmos_write(0x03, 0x00);
    cmos_write(0x05, 0x82);
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, fake_now), 4500000000ull + (14 * 60 + 25) * 1000000000ull);
    cmos_write(0x05, 0x14); /* not an hour in 12-hour mode: never */
    ck_assert_uint_eq(mc146818_next_event_ns(&rtc, fake_now), UINT64_MAX);
    /* A missed alarm is still flagged when time catches up. */
    cmos_write(0x0b, 0x22);
    cmos_write(0x05, 0x14);
    fake_now += 3600ull * 1000000000ull;
    ck_assert_uint_eq(cmos_read(0x0c), 0xb0);
}
END_TEST

START_TEST(rtc_cmos_memory_index_and_nmi)
{
    cmos_write(0x40, 0x5a);
    ck_assert_uint_eq(cmos_read(0x40), 0x5a);
    ck_assert_int_eq(mc146818_nmi_masked(&rtc), 0);
    RTC_OUT(0x70, 0xc0); /* NMI off, register 0x40 */
    ck_assert_int_eq(mc146818_nmi_masked(&rtc), 1);
    ck_assert_uint_eq(RTC_IN(0x71), 0x5a);
    RTC_OUT(0x70, 0xff); /* 0x7f, the last byte */
    RTC_OUT(0x71, 0xa5);
    ck_assert_uint_eq(mc146818_cmos_get(&rtc, 0x7f), 0xa5);
    ck_assert_uint_eq(RTC_IN(0x70), 0xff);
    ck_assert_uint_eq(mc146818_cmos_get(&rtc, 200), 0xff);
    /* Registers C and D are read-only. */
    cmos_write(0x0d, 0x00);
    ck_assert_uint_eq(cmos_read(0x0d), 0x80);
    /* The host setter refuses the clock's registers. */
    mc146818_cmos_set(&rtc, 0x0b, 0xff);
    ck_assert_uint_eq(cmos_read(0x0b), 0x02);
    mc146818_cmos_set(&rtc, 0x14, 0x06);
    ck_assert_uint_eq(cmos_read(0x14), 0x06);
    ck_assert_uint_eq(cmos_read(0x2e), 0x00);
    ck_assert_uint_eq(cmos_read(0x2f), 0x06);
}
END_TEST

START_TEST(rtc_memory_size_bytes)
{
    mc146818_set_memory_size(&rtc, 512ull << 20, 2ull << 30);
    ck_assert_uint_eq(cmos_read(0x15), 0x80);
    ck_assert_uint_eq(cmos_read(0x16), 0x02);
    ck_assert_uint_eq(cmos_read(0x17), 0xff);
    ck_assert_uint_eq(cmos_read(0x18), 0xff);
    ck_assert_uint_eq(cmos_read(0x30), 0xff);
    ck_assert_uint_eq(cmos_read(0x31), 0xff);
    ck_assert_uint_eq(cmos_read(0x34), 0x00);
    ck_assert_uint_eq(cmos_read(0x35), 0x1f);
    ck_assert_uint_eq(cmos_read(0x5b), 0x00);
    ck_assert_uint_eq(cmos_read(0x5c), 0x80);
    ck_assert_uint_eq(cmos_read(0x5d), 0x00);
    ck_assert_uint_eq(cmos_read(0x2e), 0x02);
    ck_assert_uint_eq(cmos_read(0x2f), 0x80);
    mc146818_set_memory_size(&rtc, 8ull << 20, 0);
    ck_assert_uint_eq(cmos_read(0x17), 0x00);
    ck_assert_uint_eq(cmos_read(0x18), 0x1c);
    ck_assert_uint_eq(cmos_read(0x34), 0x00);
    ck_assert_uint_eq(cmos_read(0x35), 0x00);
    ck_assert_uint_eq(cmos_read(0x5c), 0x00);
}
END_TEST

START_TEST(rtc_reset_save_and_load)
{
    cmos_write(0x0b, 0x7e);
    fake_now = 600000000;
    mc146818_update(&rtc, fake_now);
    ck_assert_int_eq(rtc_irqs.level[8], 1);
    struct mc146818_state st;
    mc146818_save(&rtc, &st);
    mc146818_reset(&rtc);
    ck_assert_int_eq(rtc_irqs.level[8], 0);
    ck_assert_uint_eq(cmos_read(0x0b), 0x06);
    ck_assert_uint_eq(cmos_read(0x0c), 0x00);
    ck_assert_int_eq(mc146818_load(&rtc, &st), 0);
    ck_assert_int_eq(rtc_irqs.level[8], 1);
    st.index = 0x80;
    ck_assert_int_eq(mc146818_load(&rtc, &st), VX_ECORRUPT);
    /* Wide access: index and data in one word write. */
    ck_assert_int_eq(mc146818_write(&rtc, 0x70, 2, 0x7740), 0);
    ck_assert_uint_eq(cmos_read(0x40), 0x77);
}
END_TEST

/* ---- i8042 ------------------------------------------------------------------ */

static struct i8042 kbc;
static struct irq_log kbc_irqs;
static int resets, a20_calls, a20_state;

static void kbc_reset_cb(void *ctx)
{
    (void)ctx;
    resets++;
}

static void kbc_a20_cb(void *ctx, int on)
{
    (void)ctx;
    a20_calls++;
    a20_state = on;
}

static void kbc_irq(void *ctx, unsigned line, int level)
{
    log_irq(&kbc_irqs, line, level);
}

#define KBC_OUT(port, v) out8(&i8042_ops, &kbc, (port), (v))
#define KBC_IN(port) in8(&i8042_ops, &kbc, (port))

static void kbc_setup(void)
{
    resets = a20_calls = 0;
    a20_state = -1;
    memset(&kbc_irqs, 0, sizeof kbc_irqs);
    struct i8042_config cfg = { .set_irq = kbc_irq, .reset = kbc_reset_cb, .a20 = kbc_a20_cb,
                                .kbd_irq = 1, .aux_irq = 12 };
    i8042_init(&kbc, &cfg);
}

START_TEST(kbc_self_tests_and_status)
{
    ck_assert_int_eq(a20_calls, 0);
    ck_assert_int_eq(i8042_a20(&kbc), 1);
    ck_assert_uint_eq(KBC_IN(0x64), 0x14);
    KBC_OUT(0x64, 0xaa);
    ck_assert_uint_eq(KBC_IN(0x64), 0x1d);
    ck_assert_uint_eq(KBC_IN(0x60), 0x55);
    ck_assert_uint_eq(KBC_IN(0x64), 0x1c);
    KBC_OUT(0x64, 0xab);
    ck_assert_uint_eq(KBC_IN(0x60), 0x00);
    KBC_OUT(0x64, 0xa9);
    ck_assert_uint_eq(KBC_IN(0x60), 0x00);
    ck_assert_uint_eq(KBC_IN(0x64), 0x1c);
    /* The output buffer keeps its last byte when empty. */
    ck_assert_uint_eq(KBC_IN(0x60), 0x00);
    ck_assert_int_eq(resets, 0);
}
END_TEST

START_TEST(kbc_command_byte)
{
    KBC_OUT(0x64, 0x20);
    ck_assert_uint_eq(KBC_IN(0x60), 0x45);
    /* The reply raised IRQ 1: the keyboard interrupt was enabled. */
    ck_assert_int_eq(kbc_irqs.rises[1], 1);
    ck_assert_int_eq(kbc_irqs.level[1], 0);
    KBC_OUT(0x64, 0x60);
    KBC_OUT(0x60, 0x40); /* system flag off, no interrupts */
    ck_assert_uint_eq(KBC_IN(0x64), 0x10); /* A2 clear: the last write was data */
    KBC_OUT(0x64, 0x20);
    ck_assert_uint_eq(KBC_IN(0x64), 0x19);
    ck_assert_uint_eq(KBC_IN(0x60), 0x40);
    ck_assert_int_eq(kbc_irqs.rises[1], 1);
    KBC_OUT(0x64, 0xad);
    KBC_OUT(0x64, 0xa7);
    KBC_OUT(0x64, 0x20);
    ck_assert_uint_eq(KBC_IN(0x60), 0x70);
    KBC_OUT(0x64, 0xae);
    KBC_OUT(0x64, 0xa8);
    KBC_OUT(0x64, 0x20);
    ck_assert_uint_eq(KBC_IN(0x60), 0x40);
    /* Controller RAM beyond the command byte. */
    KBC_OUT(0x64, 0x65);
    KBC_OUT(0x60, 0x99);
    KBC_OUT(0x64, 0x25);
    ck_assert_uint_eq(KBC_IN(0x60), 0x99);
}
END_TEST

START_TEST(kbc_reset_line)
{
    KBC_OUT(0x64, 0xff); /* pulses nothing that matters */
    ck_assert_int_eq(resets, 0);
    KBC_OUT(0x64, 0xfe);
    ck_assert_int_eq(resets, 1);
    KBC_OUT(0x64, 0xf0);
    ck_assert_int_eq(resets, 2);
    KBC_OUT(0x64, 0xd1);
    KBC_OUT(0x60, 0x02); /* output port bit 0 clear */
    ck_assert_int_eq(resets, 3);
}
END_TEST

START_TEST(kbc_a20_through_output_port)
{
    KBC_OUT(0x64, 0xd1);
    KBC_OUT(0x60, 0x01);
    ck_assert_int_eq(a20_calls, 1);
    ck_assert_int_eq(a20_state, 0);
    ck_assert_int_eq(i8042_a20(&kbc), 0);
    ck_assert_int_eq(resets, 0);
    KBC_OUT(0x64, 0xd0);
    ck_assert_uint_eq(KBC_IN(0x60), 0x01);
    KBC_OUT(0x64, 0xd1);
    KBC_OUT(0x60, 0x03);
    ck_assert_int_eq(a20_state, 1);
    KBC_OUT(0x64, 0xdd);
    ck_assert_int_eq(a20_state, 0);
    KBC_OUT(0x64, 0xdf);
    ck_assert_int_eq(a20_state, 1);
    KBC_OUT(0x64, 0xdf);
    ck_assert_int_eq(a20_calls, 4); /* no change, no call */
    KBC_OUT(0x64, 0xd0);
    ck_assert_uint_eq(KBC_IN(0x60), 0x03);
}
END_TEST

START_TEST(kbc_port_92_fast_a20_and_reset)
{
    KBC_OUT(0x64, 0xdd);
    ck_assert_int_eq(a20_state, 0);
    KBC_OUT(0x92, 0x02);
    ck_assert_int_eq(a20_state, 1);
    ck_assert_uint_eq(KBC_IN(0x92), 0x02);
    KBC_OUT(0x64, 0xdf);
    KBC_OUT(0x92, 0x00);
    ck_assert_int_eq(a20_state, 1); /* the output port still has it on */
    ck_assert_int_eq(a20_calls, 2);
    KBC_OUT(0x92, 0x01);
    ck_assert_int_eq(resets, 1);
    KBC_OUT(0x92, 0x01);
    ck_assert_int_eq(resets, 1); /* a level, not an edge */
    KBC_OUT(0x92, 0x00);
    KBC_OUT(0x92, 0x03);
    ck_assert_int_eq(resets, 2);
}
END_TEST

START_TEST(kbc_keyboard_replies_and_irq1)
{
    KBC_OUT(0x60, 0xff);
    ck_assert_int_eq(kbc_irqs.level[1], 1);
    ck_assert_uint_eq(KBC_IN(0x64), 0x15);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    ck_assert_int_eq(kbc_irqs.level[1], 1);
    ck_assert_uint_eq(KBC_IN(0x60), 0xaa);
    ck_assert_int_eq(kbc_irqs.level[1], 0);
    ck_assert_uint_eq(KBC_IN(0x64), 0x14);
    /* Every byte of a multi-byte reply is an IRQ 1 edge of its own: an
     * edge-triggered PIC (Linux's atkbd waiting for the identify bytes)
     * must see each. */
    int rises = kbc_irqs.rises[1];
    KBC_OUT(0x60, 0xf2);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    ck_assert_uint_eq(KBC_IN(0x60), 0xab);
    ck_assert_uint_eq(KBC_IN(0x60), 0x83);
    ck_assert_int_eq(kbc_irqs.rises[1] - rises, 3);
    ck_assert_int_eq(kbc_irqs.level[1], 0);
    KBC_OUT(0x60, 0xed);
    KBC_OUT(0x60, 0x07);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    KBC_OUT(0x60, 0xf0);
    KBC_OUT(0x60, 0x00);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfa);
    ck_assert_uint_eq(KBC_IN(0x60), 0x02);
    ck_assert_uint_eq(KBC_IN(0x64) & 1, 0);
    /* Host scan codes, and a controller reply that overtakes them. */
    const uint8_t keys[2] = { 0x1e, 0x9e };
    ck_assert_uint_eq(i8042_kbd_input(&kbc, keys, 2), 2);
    KBC_OUT(0x64, 0x20);
    ck_assert_uint_eq(KBC_IN(0x60), 0x1e);
    ck_assert_uint_eq(KBC_IN(0x60), 0x45);
    ck_assert_uint_eq(KBC_IN(0x60), 0x9e);
    uint8_t many[20] = { 0 };
    ck_assert_uint_eq(i8042_kbd_input(&kbc, many, 20), I8042_QUEUE);
}
END_TEST

START_TEST(kbc_aux_channel)
{
    KBC_OUT(0x64, 0x60);
    KBC_OUT(0x60, 0x47);
    KBC_OUT(0x64, 0xd3);
    KBC_OUT(0x60, 0x42);
    ck_assert_uint_eq(KBC_IN(0x64), 0x35);
    ck_assert_int_eq(kbc_irqs.level[12], 1);
    ck_assert_int_eq(kbc_irqs.level[1], 0);
    ck_assert_uint_eq(KBC_IN(0x60), 0x42);
    ck_assert_int_eq(kbc_irqs.level[12], 0);
    /* Nothing answers on the aux port but the controller's resend. */
    KBC_OUT(0x64, 0xd4);
    KBC_OUT(0x60, 0xf2);
    ck_assert_uint_eq(KBC_IN(0x64), 0x35);
    ck_assert_uint_eq(KBC_IN(0x60), 0xfe);
    /* Save and load keep the queue; a bad length is refused. */
    KBC_OUT(0x64, 0xd2);
    KBC_OUT(0x60, 0x77);
    struct i8042_state st;
    i8042_save(&kbc, &st);
    i8042_reset(&kbc);
    ck_assert_int_eq(kbc_irqs.level[1], 0);
    ck_assert_int_eq(i8042_load(&kbc, &st), 0);
    ck_assert_int_eq(kbc_irqs.level[1], 1);
    ck_assert_uint_eq(KBC_IN(0x60), 0x77);
    st.queue_len = 17;
    ck_assert_int_eq(i8042_load(&kbc, &st), VX_ECORRUPT);
}
END_TEST

/* ---- debug-exit -------------------------------------------------------------- */

static int exits;
static uint64_t exit_status;

static void on_exit_cb(void *ctx, uint64_t status)
{
    (void)ctx;
    exits++;
    exit_status = status;
}

START_TEST(debug_exit_status)
{
    exits = 0;
    struct debug_exit dx;
    struct debug_exit_config cfg = { .exit = on_exit_cb };
    debug_exit_init(&dx, &cfg);
    ck_assert_uint_eq(dx.cfg.port, 0x501);
    ck_assert_uint_eq(dx.cfg.width, 1);
    ck_assert_int_eq(debug_exit_write(&dx, 0x501, 1, 0x10), 0);
    ck_assert_int_eq(exits, 1);
    ck_assert_uint_eq(exit_status, 0x21);
    ck_assert_int_eq(debug_exit_write(&dx, 0x501, 2, 0x1234), 0);
    ck_assert_uint_eq(exit_status, 0x69); /* cut to the port's byte */
    ck_assert_int_eq(debug_exit_write(&dx, 0x502, 1, 1), 0);
    ck_assert_int_eq(exits, 2); /* outside the range */
    uint64_t v = 1;
    ck_assert_int_eq(debug_exit_read(&dx, 0x501, 1, &v), 0);
    ck_assert_uint_eq(v, 0);

    struct debug_exit_config wide = { .port = 0xf4, .width = 4, .exit = on_exit_cb };
    debug_exit_init(&dx, &wide);
    ck_assert_int_eq(debug_exit_write(&dx, 0xf4, 4, 0x12345678), 0);
    ck_assert_uint_eq(exit_status, 0x2468acf1);
    ck_assert_int_eq(debug_exit_write(&dx, 0xf5, 1, 0x01), 0);
    ck_assert_uint_eq(exit_status, 0x201);
    ck_assert_int_eq(debug_exit_write(&dx, 0xf4, 8, ~0ull), 0);
    ck_assert_uint_eq(exit_status, 0x1ffffffffull);
    ck_assert_int_eq(exits, 5);
}
END_TEST

/* ---- a hostile guest ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The first invariant that does not hold, or NULL. Plain tests rather
 * than ck_assert: Check records every passing assertion, which would
 * dominate a loop this long. */
static const char *broken_invariant(const struct irq_log *pit_log, const struct irq_log *rtc_log,
                                    const struct irq_log *kbc_log)
{
    if (pic.s.intr != i8259_has_interrupt(&pic) || intr_level != pic.s.intr)
        return "PIC INTR";
    for (unsigned c = 0; c < 2; c++) {
        const struct i8259_chip_state *p = &pic.s.chip[c];
        if (p->lowest >= 8 || (p->init_step != 0 && (p->init_step < 2 || p->init_step > 4)))
            return "PIC chip state";
    }
    for (unsigned c = 0; c < 3; c++) {
        const struct i8254_channel_state *p = &pit.s.ch[c];
        if (p->count < 1 || p->count > 65536 || p->pending > 65536)
            return "PIT count";
    }
    if (pit_log->level[0] != pit.s.irq_level)
        return "PIT IRQ";
    if (uart.s.rx_head >= 16 || uart.s.rx_count > ((uart.s.fcr & 1) ? 16 : 1))
        return "UART FIFO";
    if (uart_irqs.level[4] != uart.s.irq_level)
        return "UART IRQ";
    if (rtc.s.index >= 128)
        return "RTC index";
    if (rtc_log->level[8] != rtc.s.irq_level ||
        rtc.s.irq_level != ((rtc.s.cmos[MC146818_REG_C] & 0x80) != 0))
        return "RTC IRQ";
    if (kbc.s.queue_len > I8042_QUEUE)
        return "i8042 queue";
    if (kbc_log->level[1] != kbc.s.irq_kbd || kbc_log->level[12] != kbc.s.irq_aux)
        return "i8042 IRQs";
    return NULL;
}

/* Random widths, ports and values on every device, with the clock jumping
 * about: nothing may crash (the sanitizer build watches the indices), the
 * outputs must match the registers, and every state a guest can reach
 * must survive a save and load. */
START_TEST(random_guest_io_keeps_devices_consistent)
{
    static const uint16_t ports[] = {
        0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61,
        0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x70, 0x71, 0x60, 0x64, 0x92,
    };
    struct irq_log rtc_log = { 0 }, kbc_log = { 0 }, pit_log = { 0 };
    fake_now = 0;
    pic_setup();
    uart_start(1, 0);
    struct i8254_config pc = { .now_ns = fake_clock, .set_irq = log_irq, .ctx = &pit_log };
    i8254_init(&pit, &pc);
    struct mc146818_config rc = { .now_ns = fake_clock, .wall_clock = wall_clock,
                                  .set_irq = log_irq, .ctx = &rtc_log, .irq = 8 };
    mc146818_init(&rtc, &rc);
    struct i8042_config kc = { .set_irq = log_irq, .ctx = &kbc_log, .kbd_irq = 1, .aux_irq = 12 };
    i8042_init(&kbc, &kc);

    for (unsigned i = 0; i < 200000; i++) {
        uint64_t r = rng();
        uint16_t port = ports[r % (sizeof ports / sizeof ports[0])];
        unsigned len = 1u << ((r >> 8) % 4);
        if ((r >> 12) % 64 == 0)
            len = (unsigned)((r >> 20) % 20); /* 0 and oversized too */
        uint64_t v = rng();
        /* Mostly small values, so the interesting commands come up often. */
        if ((r >> 16) % 2)
            v &= 0xff;
        const vx_io_ops *ops;
        void *dev;
        if (port < 0x40 || (port >= 0xa0 && port <= 0xa1) || port >= 0x4d0) {
            ops = &i8259_ops;
            dev = &pic;
        } else if (port < 0x44 || port == 0x61) {
            ops = &i8254_ops;
            dev = &pit;
        } else if (port >= 0x3f8) {
            ops = &uart16550_ops;
            dev = &uart;
        } else if (port == 0x70 || port == 0x71) {
            ops = &mc146818_ops;
            dev = &rtc;
        } else {
            ops = &i8042_ops;
            dev = &kbc;
        }
        uint64_t got;
        if ((r >> 24) % 3 == 0)
            ck_assert_int_eq(ops->read(dev, port, len, &got), 0);
        else
            ck_assert_int_eq(ops->write(dev, port, len, v), 0);

        switch ((r >> 32) % 16) {
        case 0:
            fake_now += (r >> 40) % 3000000;
            break;
        case 1:
            fake_now += ((r >> 40) % 4) * 1000000000ull;
            break;
        case 2:
            i8259_set_irq(&pic, (unsigned)(r >> 40) % 20, (int)(r >> 50) & 1);
            break;
        case 3:
            if (i8259_has_interrupt(&pic)) {
                int vec = i8259_acknowledge(&pic);
                ck_assert_int_ge(vec, 0);
                ck_assert_int_le(vec, 255);
            }
            break;
        case 4: {
            uint8_t buf[20];
            memset(buf, (int)(r >> 40), sizeof buf);
            size_t room = uart16550_can_receive(&uart);
            ck_assert_uint_eq(uart16550_receive(&uart, buf, (r >> 44) % 20), 
                              (r >> 44) % 20 < room ? (r >> 44) % 20 : room);
            break;
        }
        case 5: {
            uint64_t t = i8254_next_event_ns(&pit, fake_now);
            ck_assert(t == UINT64_MAX || t >= fake_now);
            if (t != UINT64_MAX && t - fake_now < 100000000)
                fake_now = t;
            i8254_update(&pit, fake_now);
            t = mc146818_next_event_ns(&rtc, fake_now);
            ck_assert(t == UINT64_MAX || t >= fake_now);
            mc146818_update(&rtc, fake_now);
            t = uart16550_next_event_ns(&uart, fake_now);
            ck_assert(t == UINT64_MAX || t >= fake_now);
            uart16550_update(&uart, fake_now);
            break;
        }
        case 6: {
            uint8_t keys[3] = { (uint8_t)(r >> 40), (uint8_t)(r >> 48), (uint8_t)(r >> 56) };
            i8042_kbd_input(&kbc, keys, 3);
            break;
        }
        case 7: {
            struct i8259_state a;
            struct i8254_state b;
            struct uart16550_state c;
            struct mc146818_state d;
            struct i8042_state e;
            i8259_save(&pic, &a);
            ck_assert_int_eq(i8259_load(&pic, &a), 0);
            i8254_save(&pit, &b);
            ck_assert_int_eq(i8254_load(&pit, &b), 0);
            uart16550_save(&uart, &c);
            ck_assert_int_eq(uart16550_load(&uart, &c), 0);
            mc146818_save(&rtc, &d);
            ck_assert_int_eq(mc146818_load(&rtc, &d), 0);
            i8042_save(&kbc, &e);
            ck_assert_int_eq(i8042_load(&kbc, &e), 0);
            break;
        }
        default:
            break;
        }

        const char *bad = broken_invariant(&pit_log, &rtc_log, &kbc_log);
        if (bad)
            ck_abort_msg("after step %u: %s", i, bad);
    }
}
END_TEST

/* ---------------------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);
    if (setup)
        tcase_add_checked_fixture(tc, setup, NULL);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("devices");
    TCase *tc = tcase(s, "i8259", pic_setup);
    tcase_add_test(tc, pic_reset_state_is_bios_like);
    tcase_add_test(tc, pic_init_sequence_then_deliver_and_eoi);
    tcase_add_test(tc, pic_priority_and_nesting);
    tcase_add_test(tc, pic_cascade_delivers_slave_vector_through_ir2);
    tcase_add_test(tc, pic_special_fully_nested_lets_higher_slave_irq_through);
    tcase_add_test(tc, pic_slave_request_behind_an_acknowledged_one_is_not_lost);
    tcase_add_test(tc, pic_specific_eoi_rotation_and_set_priority);
    tcase_add_test(tc, pic_masking_holds_requests);
    tcase_add_test(tc, pic_level_and_edge_triggering);
    tcase_add_test(tc, pic_auto_eoi);
    tcase_add_test(tc, pic_spurious_irq7_and_irq15);
    tcase_add_test(tc, pic_poll_mode);
    tcase_add_test(tc, pic_special_mask_mode);
    tcase_add_test(tc, pic_wide_access_splits_into_ports);
    tcase_add_test(tc, pic_save_and_load);

    tc = tcase(s, "i8254", pit_setup);
    tcase_add_test(tc, pit_mode0_counts_down_and_raises_irq_once);
    tcase_add_test(tc, pit_mode0_first_byte_stops_count);
    tcase_add_test(tc, pit_mode2_rate_generator);
    tcase_add_test(tc, pit_mode3_square_wave);
    tcase_add_test(tc, pit_mode4_strobe_and_mode1_one_shot);
    tcase_add_test(tc, pit_latch_holds_value_until_read);
    tcase_add_test(tc, pit_access_modes_and_bcd);
    tcase_add_test(tc, pit_read_back_status_and_count);
    tcase_add_test(tc, pit_port_b_gate_speaker_and_refresh);
    tcase_add_test(tc, pit_save_load_and_wide_access);
    tcase_add_test(tc, pit_ticks_reach_the_pic_each_period);

    tc = tcase(s, "uart16550", uart_setup);
    tcase_add_test(tc, uart_reset_values);
    tcase_add_test(tc, uart_divisor_latch_and_scratch);
    tcase_add_test(tc, uart_transmit_goes_to_host);
    tcase_add_test(tc, uart_loopback);
    tcase_add_test(tc, uart_receive_without_fifo);
    tcase_add_test(tc, uart_fifo_trigger_and_timeout);
    tcase_add_test(tc, uart_timeout_without_clock_is_immediate);
    tcase_add_test(tc, uart_iir_priorities);
    tcase_add_test(tc, uart_thre_interrupt_semantics);
    tcase_add_test(tc, uart_out2_gates_the_irq_when_asked);
    tcase_add_test(tc, uart_reset_save_and_load);

    tc = tcase(s, "mc146818", rtc_setup);
    tcase_add_test(tc, rtc_reads_bcd_24h);
    tcase_add_test(tc, rtc_binary_and_12_hour_formats);
    tcase_add_test(tc, rtc_update_in_progress_window);
    tcase_add_test(tc, rtc_set_bit_freezes_and_guest_sets_time);
    tcase_add_test(tc, rtc_century_rolls_over);
    tcase_add_test(tc, rtc_divider_reset_stops_the_clock);
    tcase_add_test(tc, rtc_periodic_interrupt_rate);
    tcase_add_test(tc, rtc_update_ended_and_alarm_interrupts);
    tcase_add_test(tc, rtc_cmos_memory_index_and_nmi);
    tcase_add_test(tc, rtc_memory_size_bytes);
    tcase_add_test(tc, rtc_reset_save_and_load);

    tc = tcase(s, "i8042", kbc_setup);
    tcase_add_test(tc, kbc_self_tests_and_status);
    tcase_add_test(tc, kbc_command_byte);
    tcase_add_test(tc, kbc_reset_line);
    tcase_add_test(tc, kbc_a20_through_output_port);
    tcase_add_test(tc, kbc_port_92_fast_a20_and_reset);
    tcase_add_test(tc, kbc_keyboard_replies_and_irq1);
    tcase_add_test(tc, kbc_aux_channel);

    tc = tcase(s, "debug_exit", NULL);
    tcase_add_test(tc, debug_exit_status);

    tc = tcase(s, "hostile", NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_guest_io_keeps_devices_consistent);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
