/* The i8042 keyboard controller and port 0x92, as PC firmware uses them. */
#include "config.h"

#include <string.h>

#include "devices/i8042.h"
#include "devices/ioport.h"

enum {
    ST_OBF = 0x01,
    ST_SYS = 0x04,
    ST_CMD = 0x08,     /* A2: the last write went to port 0x64 */
    ST_UNLOCKED = 0x10, /* keylock switch: keyboard not inhibited */
    ST_AUX = 0x20,

    CB_KBD_INT = 0x01,
    CB_AUX_INT = 0x02,
    CB_SYS = 0x04,
    CB_KBD_OFF = 0x10,
    CB_AUX_OFF = 0x20,

    OUT_RESET = 0x01, /* 1: the CPU runs; 0 holds it in reset */
    OUT_A20 = 0x02,
    OUT_KBD_IRQ = 0x10,
    OUT_AUX_IRQ = 0x20,

    PA_RESET = 0x01,
    PA_A20 = 0x02,

    KBD_ACK = 0xfa,
    KBD_RESEND = 0xfe,
};

static uint8_t *command_byte(struct i8042 *k)
{
    return &k->s.ram[0];
}

static int head_is_aux(const struct i8042 *k)
{
    return k->s.queue_len && (k->s.queue_aux & 1);
}

static void update_irqs(struct i8042 *k)
{
    uint8_t cb = k->s.ram[0];
    int kbd = k->s.queue_len && !head_is_aux(k) && (cb & CB_KBD_INT);
    int aux = head_is_aux(k) && (cb & CB_AUX_INT);
    if (kbd != k->s.irq_kbd) {
        k->s.irq_kbd = (uint8_t)kbd;
        if (k->cfg.set_irq)
            k->cfg.set_irq(k->cfg.ctx, k->cfg.kbd_irq, kbd);
    }
    if (aux != k->s.irq_aux) {
        k->s.irq_aux = (uint8_t)aux;
        if (k->cfg.set_irq)
            k->cfg.set_irq(k->cfg.ctx, k->cfg.aux_irq, aux);
    }
}

static void drop_irqs(struct i8042 *k)
{
    if (k->s.irq_kbd) {
        k->s.irq_kbd = 0;
        if (k->cfg.set_irq)
            k->cfg.set_irq(k->cfg.ctx, k->cfg.kbd_irq, 0);
    }
    if (k->s.irq_aux) {
        k->s.irq_aux = 0;
        if (k->cfg.set_irq)
            k->cfg.set_irq(k->cfg.ctx, k->cfg.aux_irq, 0);
    }
}

static void update_a20(struct i8042 *k)
{
    int on = (k->s.outport & OUT_A20) || (k->s.port_a & PA_A20);
    if (on != k->s.a20) {
        k->s.a20 = (uint8_t)on;
        if (k->cfg.a20)
            k->cfg.a20(k->cfg.ctx, on);
    }
}

/* Put a byte in the queue at `pos` (clamped to its length); 0 if full. */
static int queue_insert(struct i8042 *k, unsigned pos, uint8_t byte, int aux)
{
    struct i8042_state *s = &k->s;
    if (s->queue_len >= I8042_QUEUE)
        return 0;
    if (pos > s->queue_len)
        pos = s->queue_len;
    memmove(&s->queue[pos + 1], &s->queue[pos], s->queue_len - pos);
    uint16_t low = (uint16_t)(s->queue_aux & ((1u << pos) - 1));
    uint16_t high = (uint16_t)((s->queue_aux & ~((1u << pos) - 1)) << 1);
    s->queue_aux = (uint16_t)(low | high | (aux ? 1u << pos : 0));
    s->queue[pos] = byte;
    s->queue_len++;
    return 1;
}

/* Device bytes queue behind everything; a controller reply goes right
 * behind the byte already in the output buffer, because the controller
 * answers as soon as the buffer is free, before the keyboard's next byte. */
static void device_byte(struct i8042 *k, uint8_t byte, int aux)
{
    queue_insert(k, I8042_QUEUE, byte, aux);
}

static void controller_reply(struct i8042 *k, uint8_t byte)
{
    queue_insert(k, k->s.queue_len ? 1 : 0, byte, 0);
}

static uint8_t queue_pop(struct i8042 *k)
{
    struct i8042_state *s = &k->s;
    if (!s->queue_len)
        return s->last_read;
    uint8_t b = s->queue[0];
    memmove(&s->queue[0], &s->queue[1], s->queue_len - 1u);
    s->queue_len--;
    s->queue_aux >>= 1;
    s->last_read = b;
    return b;
}

static uint8_t status(const struct i8042 *k)
{
    uint8_t st = ST_UNLOCKED;
    if (k->s.queue_len)
        st |= ST_OBF;
    if (head_is_aux(k))
        st |= ST_AUX;
    if (k->s.sys)
        st |= ST_SYS;
    if (k->s.last_was_cmd)
        st |= ST_CMD;
    return st;
}

static uint8_t outport_value(const struct i8042 *k)
{
    return (uint8_t)((k->s.outport & (OUT_RESET | OUT_A20)) | (k->s.irq_kbd ? OUT_KBD_IRQ : 0) |
                     (k->s.irq_aux ? OUT_AUX_IRQ : 0));
}

/* The keyboard's answers to host commands. */
static void keyboard_write(struct i8042 *k, uint8_t v)
{
    struct i8042_state *s = &k->s;
    if (s->kbd_pending) {
        uint8_t cmd = s->kbd_pending;
        s->kbd_pending = 0;
        device_byte(k, KBD_ACK, 0);
        if (cmd == 0xf0) {
            if (v == 0)
                device_byte(k, s->kbd_scan_set, 0);
            else if (v <= 3)
                s->kbd_scan_set = v;
        }
        return;
    }
    switch (v) {
    case 0xed: /* LEDs */
    case 0xf3: /* typematic rate */
    case 0xf0: /* scan code set */
        device_byte(k, KBD_ACK, 0);
        s->kbd_pending = v;
        break;
    case 0xee: /* echo */
        device_byte(k, 0xee, 0);
        break;
    case 0xf2: /* identify: an MF2 keyboard */
        device_byte(k, KBD_ACK, 0);
        device_byte(k, 0xab, 0);
        device_byte(k, 0x83, 0);
        break;
    case 0xff: /* reset and self-test */
        s->kbd_scan_set = 2;
        device_byte(k, KBD_ACK, 0);
        device_byte(k, 0xaa, 0);
        break;
    default:
        device_byte(k, v >= 0xf4 ? KBD_ACK : KBD_RESEND, 0);
        break;
    }
}

/* Returns nonzero when the write asks for a system reset. */
static int write_outport(struct i8042 *k, uint8_t v)
{
    k->s.outport = (uint8_t)((v & (OUT_RESET | OUT_A20)) | OUT_RESET);
    update_a20(k);
    return !(v & OUT_RESET);
}

static int controller_command(struct i8042 *k, uint8_t cmd)
{
    struct i8042_state *s = &k->s;
    s->pending_cmd = 0;
    if (cmd >= 0x20 && cmd <= 0x3f) {
        controller_reply(k, s->ram[cmd & 0x1f]);
        return 0;
    }
    if ((cmd >= 0x60 && cmd <= 0x7f) || cmd == 0xd1 || cmd == 0xd2 || cmd == 0xd3 ||
        cmd == 0xd4) {
        s->pending_cmd = cmd;
        return 0;
    }
    if (cmd >= 0xf0) {
        /* Pulse the output port bits whose command bits are 0; bit 0 is
         * the reset line (0xfe is the usual form). */
        return !(cmd & 1);
    }
    switch (cmd) {
    case 0xa7:
        *command_byte(k) |= CB_AUX_OFF;
        break;
    case 0xa8:
        *command_byte(k) &= (uint8_t)~CB_AUX_OFF;
        break;
    case 0xa9: /* aux interface test: no error */
    case 0xab: /* keyboard interface test: no error */
        controller_reply(k, 0x00);
        break;
    case 0xaa: /* self-test: passed, and the system flag is set */
        s->sys = 1;
        controller_reply(k, 0x55);
        break;
    case 0xad:
        *command_byte(k) |= CB_KBD_OFF;
        break;
    case 0xae:
        *command_byte(k) &= (uint8_t)~CB_KBD_OFF;
        break;
    case 0xc0: /* input port: keylock open */
        controller_reply(k, 0x80);
        break;
    case 0xd0:
        controller_reply(k, outport_value(k));
        break;
    case 0xdd:
        s->outport &= (uint8_t)~OUT_A20;
        update_a20(k);
        break;
    case 0xdf:
        s->outport |= OUT_A20;
        update_a20(k);
        break;
    case 0xe0: /* test inputs */
        controller_reply(k, 0x00);
        break;
    default:
        break; /* unknown commands are ignored, as the chip does */
    }
    return 0;
}

static int data_write(struct i8042 *k, uint8_t v)
{
    struct i8042_state *s = &k->s;
    uint8_t cmd = s->pending_cmd;
    s->pending_cmd = 0;
    if (cmd >= 0x60 && cmd <= 0x7f) {
        s->ram[cmd & 0x1f] = v;
        if (cmd == 0x60)
            s->sys = (v & CB_SYS) != 0;
        return 0;
    }
    switch (cmd) {
    case 0xd1:
        return write_outport(k, v);
    case 0xd2: /* as if from the keyboard */
        device_byte(k, v, 0);
        return 0;
    case 0xd3: /* as if from the aux device */
        device_byte(k, v, 1);
        return 0;
    case 0xd4: /* to the aux device: there is none */
        device_byte(k, KBD_RESEND, 1);
        return 0;
    default:
        keyboard_write(k, v);
        return 0;
    }
}

static uint8_t read_byte(void *opaque, uint64_t port)
{
    struct i8042 *k = opaque;
    uint8_t v;
    switch (port) {
    case I8042_DATA_PORT:
        v = queue_pop(k);
        /* Each byte that reaches the output buffer is an interrupt of its
         * own: the line drops as the buffer empties and rises again for
         * the next byte, so an edge-triggered PIC sees every one (Linux's
         * atkbd waits for the two identify bytes after the ACK). */
        drop_irqs(k);
        update_irqs(k);
        return v;
    case I8042_CMD_PORT:
        return status(k);
    case I8042_PORT_A:
        return k->s.port_a;
    default:
        return 0xff;
    }
}

static void write_byte(void *opaque, uint64_t port, uint8_t v)
{
    struct i8042 *k = opaque;
    int reset = 0;
    switch (port) {
    case I8042_DATA_PORT:
        k->s.last_was_cmd = 0;
        reset = data_write(k, v);
        break;
    case I8042_CMD_PORT:
        k->s.last_was_cmd = 1;
        reset = controller_command(k, v);
        break;
    case I8042_PORT_A:
        /* Bit 0 resets on its rising edge; it reads back as written. */
        reset = (v & PA_RESET) && !(k->s.port_a & PA_RESET);
        k->s.port_a = v;
        update_a20(k);
        break;
    default:
        return;
    }
    update_irqs(k);
    if (reset && k->cfg.reset)
        k->cfg.reset(k->cfg.ctx);
}

int i8042_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = vxdev_split_read(opaque, addr, len, read_byte);
    return 0;
}

int i8042_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    vxdev_split_write(opaque, addr, len, value, write_byte);
    return 0;
}

const vx_io_ops i8042_ops = {
    .size = sizeof(vx_io_ops),
    .read = i8042_read,
    .write = i8042_write,
};

size_t i8042_kbd_input(struct i8042 *kbc, const uint8_t *bytes, size_t n)
{
    size_t i = 0;
    while (i < n && queue_insert(kbc, I8042_QUEUE, bytes[i], 0))
        i++;
    update_irqs(kbc);
    return i;
}

int i8042_a20(const struct i8042 *kbc)
{
    return kbc->s.a20;
}

void i8042_reset(struct i8042 *kbc)
{
    struct i8042_state *s = &kbc->s;
    uint8_t a20 = s->a20, irq_kbd = s->irq_kbd, irq_aux = s->irq_aux;
    memset(s, 0, sizeof *s);
    s->a20 = a20;
    s->irq_kbd = irq_kbd;
    s->irq_aux = irq_aux;
    s->ram[0] = 0x45;
    s->sys = 1;
    s->kbd_scan_set = 2;
    s->outport = OUT_RESET | OUT_A20;
    update_a20(kbc);
    update_irqs(kbc);
}

void i8042_init(struct i8042 *kbc, const struct i8042_config *cfg)
{
    memset(kbc, 0, sizeof *kbc);
    if (cfg)
        kbc->cfg = *cfg;
    kbc->s.a20 = 1; /* enabled from the start: nothing to report */
    i8042_reset(kbc);
}

void i8042_save(const struct i8042 *kbc, struct i8042_state *out)
{
    *out = kbc->s;
}

int i8042_load(struct i8042 *kbc, const struct i8042_state *in)
{
    if (in->queue_len > I8042_QUEUE || in->kbd_scan_set < 1 || in->kbd_scan_set > 3)
        return VX_ECORRUPT;
    kbc->s = *in;
    /* Report the loaded outputs whatever was reported before. */
    kbc->s.a20 = 0xff;
    kbc->s.irq_kbd = 0xff;
    kbc->s.irq_aux = 0xff;
    update_a20(kbc);
    update_irqs(kbc);
    return 0;
}
