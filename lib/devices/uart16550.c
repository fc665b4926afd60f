/* The 16550A UART, from the datasheet's register and interrupt tables. */
#include "config.h"

#include <string.h>

#include "devices/ioport.h"
#include "devices/uart16550.h"

enum {
    IER_RDI = 0x01, /* received data available (and timeout) */
    IER_THRI = 0x02,
    IER_RLSI = 0x04,
    IER_MSI = 0x08,

    IIR_NONE = 0x01,
    IIR_MSI = 0x00,
    IIR_THRI = 0x02,
    IIR_RDI = 0x04,
    IIR_RLSI = 0x06,
    IIR_TIMEOUT = 0x0c,
    IIR_FIFO = 0xc0,

    FCR_ENABLE = 0x01,
    FCR_CLEAR_RX = 0x02,
    FCR_CLEAR_TX = 0x04,
    FCR_KEPT = 0xc9, /* enable, DMA mode, trigger level */

    LCR_DLAB = 0x80,

    MCR_DTR = 0x01,
    MCR_RTS = 0x02,
    MCR_OUT1 = 0x04,
    MCR_OUT2 = 0x08,
    MCR_LOOP = 0x10,

    LSR_DR = 0x01,
    LSR_OE = 0x02,
    LSR_ERRORS = 0x1e, /* OE, PE, FE, BI */
    LSR_THRE = 0x20,
    LSR_TEMT = 0x40,
};

static const uint8_t trigger_levels[4] = { 1, 4, 8, 14 };

static uint64_t now_ns(const struct uart16550 *u)
{
    return u->cfg.now_ns ? u->cfg.now_ns(u->cfg.ctx) : 0;
}

static int fifo_on(const struct uart16550 *u)
{
    return u->s.fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart16550 *u)
{
    return fifo_on(u) ? UART16550_FIFO_SIZE : 1;
}

static int loopback(const struct uart16550 *u)
{
    return u->s.mcr & MCR_LOOP;
}

/* Four character times at the programmed rate: start bit, 5-8 data bits,
 * parity, 1, 1.5 or 2 stop bits, each 16 clocks per divisor count. */
static uint64_t timeout_ns(const struct uart16550 *u)
{
    if (!u->cfg.now_ns)
        return 0;
    unsigned lcr = u->s.lcr;
    unsigned half_bits = 2 * (1 + 5 + (lcr & 3) + ((lcr >> 3) & 1));
    half_bits += (lcr & 4) ? ((lcr & 3) == 0 ? 3 : 4) : 2;
    uint64_t divisor = (uint64_t)(u->s.dll | u->s.dlm << 8);
    if (!divisor)
        divisor = 65536;
    return 4 * half_bits * 16 * divisor * 1000000000ull / (2 * UART16550_CLOCK_HZ);
}

/* The timeout is armed while bytes sit below the trigger level unread. */
static int timeout_armed(const struct uart16550 *u)
{
    return fifo_on(u) && u->s.rx_count && !u->s.rx_timeout;
}

static void check_timeout(struct uart16550 *u, uint64_t now)
{
    if (timeout_armed(u) && now >= u->s.rx_idle_since &&
        now - u->s.rx_idle_since >= timeout_ns(u))
        u->s.rx_timeout = 1;
}

/* The interrupt identification, highest priority first. */
static uint8_t iir_id(const struct uart16550 *u)
{
    const struct uart16550_state *s = &u->s;
    if ((s->ier & IER_RLSI) && (s->lsr_errors & LSR_ERRORS))
        return IIR_RLSI;
    if ((s->ier & IER_RDI) && s->rx_count) {
        if (!fifo_on(u) || s->rx_count >= trigger_levels[s->fcr >> 6])
            return IIR_RDI;
        if (s->rx_timeout)
            return IIR_TIMEOUT;
    }
    if ((s->ier & IER_THRI) && s->thre_pending)
        return IIR_THRI;
    if ((s->ier & IER_MSI) && (s->msr & 0x0f))
        return IIR_MSI;
    return IIR_NONE;
}

static void update_irq(struct uart16550 *u)
{
    int level = iir_id(u) != IIR_NONE;
    /* OUT2 drives the card's interrupt buffer; in loopback the chip holds
     * its OUT pins inactive, so the gate is closed too. */
    if (u->cfg.out2_gates_irq && (!(u->s.mcr & MCR_OUT2) || loopback(u)))
        level = 0;
    if (level != u->s.irq_level) {
        u->s.irq_level = (uint8_t)level;
        if (u->cfg.set_irq)
            u->cfg.set_irq(u->cfg.ctx, u->cfg.irq, level);
    }
}

static uint8_t modem_lines(const struct uart16550 *u)
{
    if (!loopback(u))
        return u->s.modem_in;
    uint8_t m = u->s.mcr, l = 0;
    if (m & MCR_RTS)
        l |= UART16550_CTS;
    if (m & MCR_DTR)
        l |= UART16550_DSR;
    if (m & MCR_OUT1)
        l |= UART16550_RI;
    if (m & MCR_OUT2)
        l |= UART16550_DCD;
    return l;
}

/* Bring the MSR's line bits up to date and record what changed: deltas
 * for CTS, DSR and DCD, the trailing edge only for RI. */
static void update_msr(struct uart16550 *u)
{
    uint8_t old = u->s.msr & 0xf0, now = modem_lines(u);
    uint8_t changed = old ^ now, delta = 0;
    if (changed & UART16550_CTS)
        delta |= 0x01;
    if (changed & UART16550_DSR)
        delta |= 0x02;
    if ((old & UART16550_RI) && !(now & UART16550_RI))
        delta |= 0x04;
    if (changed & UART16550_DCD)
        delta |= 0x08;
    u->s.msr = (uint8_t)(now | (u->s.msr & 0x0f) | delta);
}

static void rx_clear(struct uart16550 *u, uint64_t now)
{
    u->s.rx_head = 0;
    u->s.rx_count = 0;
    u->s.rx_timeout = 0;
    u->s.rx_idle_since = now;
}

/* One character arriving from the line (or the loopback). */
static int rx_push(struct uart16550 *u, uint8_t byte, uint64_t now)
{
    struct uart16550_state *s = &u->s;
    if (s->rx_count >= rx_capacity(u)) {
        /* Overrun: with the FIFO on, the character in the shift register
         * is lost; without it, the holding register is overwritten. */
        s->lsr_errors |= LSR_OE;
        if (!fifo_on(u))
            s->rx[s->rx_head] = byte;
        return 0;
    }
    s->rx[(s->rx_head + s->rx_count) % UART16550_FIFO_SIZE] = byte;
    s->rx_count++;
    s->rx_timeout = 0;
    s->rx_idle_since = now;
    return 1;
}

static uint8_t rx_pop(struct uart16550 *u, uint64_t now)
{
    struct uart16550_state *s = &u->s;
    if (!s->rx_count)
        return 0;
    uint8_t b = s->rx[s->rx_head];
    s->rx_head = (uint8_t)((s->rx_head + 1) % UART16550_FIFO_SIZE);
    s->rx_count--;
    s->rx_timeout = 0;
    s->rx_idle_since = now;
    return b;
}

static void transmit(struct uart16550 *u, uint8_t byte, uint64_t now)
{
    /* 5-8 data bits: the rest never leave the shift register. */
    byte &= (uint8_t)(0xff >> (3 - (u->s.lcr & 3)));
    if (loopback(u))
        rx_push(u, byte, now);
    else if (u->cfg.tx)
        u->cfg.tx(u->cfg.ctx, byte);
}

static uint8_t read_byte(void *opaque, uint64_t port)
{
    struct uart16550 *u = opaque;
    struct uart16550_state *s = &u->s;
    if (port < u->cfg.base || port - u->cfg.base >= UART16550_PORT_COUNT)
        return 0xff;
    uint64_t now = now_ns(u);
    check_timeout(u, now);
    uint8_t v;
    switch (port - u->cfg.base) {
    case 0:
        v = (s->lcr & LCR_DLAB) ? s->dll : rx_pop(u, now);
        break;
    case 1:
        v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case 2: {
        uint8_t id = iir_id(u);
        /* Reading IIR is how a THR-empty interrupt is acknowledged, but
         * only when it is the one reported. */
        if (id == IIR_THRI)
            s->thre_pending = 0;
        v = (uint8_t)(id | (fifo_on(u) ? IIR_FIFO : 0));
        break;
    }
    case 3:
        v = s->lcr;
        break;
    case 4:
        v = s->mcr;
        break;
    case 5:
        v = (uint8_t)(s->lsr_errors | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0));
        s->lsr_errors = 0;
        break;
    case 6:
        v = s->msr;
        s->msr &= 0xf0;
        break;
    default:
        v = s->scr;
        break;
    }
    update_irq(u);
    return v;
}

static void write_byte(void *opaque, uint64_t port, uint8_t v)
{
    struct uart16550 *u = opaque;
    struct uart16550_state *s = &u->s;
    if (port < u->cfg.base || port - u->cfg.base >= UART16550_PORT_COUNT)
        return;
    uint64_t now = now_ns(u);
    check_timeout(u, now);
    switch (port - u->cfg.base) {
    case 0:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
            break;
        }
        /* Writing THR clears the THR-empty interrupt; the byte leaves at
         * once and THR is empty again: the line drops and rises, the edge
         * an ISA interrupt needs to be seen again. */
        s->thre_pending = 0;
        update_irq(u);
        transmit(u, v, now);
        s->thre_pending = 1;
        break;
    case 1:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            /* Enabling the THR-empty interrupt while THR is empty raises it:
             * drivers test and rely on that. */
            if ((v & IER_THRI) && !(s->ier & IER_THRI))
                s->thre_pending = 1;
            s->ier = v & 0x0f;
        }
        break;
    case 2:
        if ((v & FCR_ENABLE) != (s->fcr & FCR_ENABLE))
            rx_clear(u, now); /* switching the FIFOs on or off empties them */
        if (v & FCR_ENABLE) {
            if (v & FCR_CLEAR_RX)
                rx_clear(u, now);
            s->fcr = v & FCR_KEPT;
        } else {
            s->fcr = 0; /* the other bits only program with bit 0 set */
        }
        break;
    case 3:
        s->lcr = v;
        break;
    case 4:
        s->mcr = v & 0x1f;
        update_msr(u);
        break;
    case 5:
    case 6:
        break; /* LSR and MSR: factory test writes, ignored */
    default:
        s->scr = v;
        break;
    }
    check_timeout(u, now);
    update_irq(u);
}

int uart16550_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    *value = vxdev_split_read(opaque, addr, len, read_byte);
    return 0;
}

int uart16550_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    vxdev_split_write(opaque, addr, len, value, write_byte);
    return 0;
}

const vx_io_ops uart16550_ops = {
    .size = sizeof(vx_io_ops),
    .read = uart16550_read,
    .write = uart16550_write,
};

size_t uart16550_can_receive(const struct uart16550 *uart)
{
    if (loopback(uart))
        return 0;
    return rx_capacity(uart) - uart->s.rx_count;
}

size_t uart16550_receive(struct uart16550 *uart, const uint8_t *buf, size_t n)
{
    size_t room = uart16550_can_receive(uart), taken = 0;
    uint64_t now = now_ns(uart);
    while (taken < n && taken < room)
        rx_push(uart, buf[taken++], now);
    check_timeout(uart, now);
    update_irq(uart);
    return taken;
}

void uart16550_set_modem_lines(struct uart16550 *uart, unsigned lines)
{
    uart->s.modem_in = (uint8_t)(lines & 0xf0);
    update_msr(uart);
    update_irq(uart);
}

uint64_t uart16550_next_event_ns(const struct uart16550 *uart, uint64_t now)
{
    const struct uart16550_state *s = &uart->s;
    /* Only a timeout that would change IIR is worth waking for. */
    if (!timeout_armed(uart) || !(s->ier & IER_RDI) ||
        s->rx_count >= trigger_levels[s->fcr >> 6])
        return UINT64_MAX;
    uint64_t due = s->rx_idle_since + timeout_ns(uart);
    if (due < s->rx_idle_since)
        return UINT64_MAX;
    return due < now ? now : due;
}

void uart16550_update(struct uart16550 *uart, uint64_t now)
{
    check_timeout(uart, now);
    update_irq(uart);
}

void uart16550_reset(struct uart16550 *uart)
{
    struct uart16550_state *s = &uart->s;
    s->ier = 0;
    s->fcr = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->lsr_errors = 0;
    s->thre_pending = 0;
    rx_clear(uart, now_ns(uart));
    s->msr = s->modem_in; /* the lines as they are, no deltas */
    update_irq(uart);
}

void uart16550_init(struct uart16550 *uart, const struct uart16550_config *cfg)
{
    memset(uart, 0, sizeof *uart);
    if (cfg)
        uart->cfg = *cfg;
    uart->s.dll = 12;
    uart->s.modem_in = UART16550_CTS | UART16550_DSR | UART16550_DCD;
    uart16550_reset(uart);
}

void uart16550_save(const struct uart16550 *uart, struct uart16550_state *out)
{
    *out = uart->s;
}

int uart16550_load(struct uart16550 *uart, const struct uart16550_state *in)
{
    unsigned cap = (in->fcr & FCR_ENABLE) ? UART16550_FIFO_SIZE : 1;
    if (in->rx_head >= UART16550_FIFO_SIZE || in->rx_count > cap || (in->fcr & ~FCR_KEPT) ||
        (in->ier & 0xf0) || (in->mcr & 0xe0) || (in->lsr_errors & ~LSR_ERRORS) ||
        (in->modem_in & 0x0f))
        return VX_ECORRUPT;
    uart->s = *in;
    uart->s.irq_level = 0xff; /* report the loaded level whatever it is */
    update_irq(uart);
    return 0;
}
