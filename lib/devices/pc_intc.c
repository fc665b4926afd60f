/* The PC's interrupt controller and timer for tcg (see pc_intc.h). */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "devices/pc_intc.h"

uint64_t pc_intc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t clock_cb(void *ctx)
{
    (void)ctx;
    return pc_intc_now();
}

/* Called with the lock held, from inside the PIC. */
static void set_intr(void *ctx, int level)
{
    struct pc_intc *ic = ctx;
    atomic_store_explicit(&ic->intr, level != 0, memory_order_release);
    if (level)
        pthread_cond_broadcast(&ic->wake);
}

/* The PIT's IRQ 0, with the lock held. */
static void pit_irq(void *ctx, unsigned line, int level)
{
    struct pc_intc *ic = ctx;
    i8259_set_irq(&ic->pic, line, level);
}

/* Port access from the guest: the devices under the lock. */
static int pic_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct pc_intc *ic = opaque;
    pthread_mutex_lock(&ic->lock);
    int rc = i8259_read(&ic->pic, addr, len, value);
    pthread_mutex_unlock(&ic->lock);
    return rc;
}

static int pic_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct pc_intc *ic = opaque;
    pthread_mutex_lock(&ic->lock);
    int rc = i8259_write(&ic->pic, addr, len, value);
    pthread_mutex_unlock(&ic->lock);
    return rc;
}

static int pit_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct pc_intc *ic = opaque;
    pthread_mutex_lock(&ic->lock);
    int rc = i8254_read(&ic->pit, addr, len, value);
    atomic_store_explicit(&ic->deadline, 0, memory_order_release);
    pthread_mutex_unlock(&ic->lock);
    return rc;
}

static int pit_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct pc_intc *ic = opaque;
    pthread_mutex_lock(&ic->lock);
    int rc = i8254_write(&ic->pit, addr, len, value);
    atomic_store_explicit(&ic->deadline, 0, memory_order_release);
    pthread_mutex_unlock(&ic->lock);
    return rc;
}

static const vx_io_ops pic_ops = { sizeof(vx_io_ops), pic_read, pic_write };
static const vx_io_ops pit_ops = { sizeof(vx_io_ops), pit_read, pit_write };

int pc_intc_create(vx_machine *m, struct pc_intc **out)
{
    struct pc_intc *ic = calloc(1, sizeof *ic);
    if (!ic)
        return vxi_error(VX_ENOMEM, "out of memory for the interrupt controller");
    pthread_mutex_init(&ic->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ic->wake, &ca);
    pthread_condattr_destroy(&ca);
    i8259_init(&ic->pic, &(struct i8259_config){ .set_intr = set_intr, .ctx = ic });
    i8254_init(&ic->pit, &(struct i8254_config){ .now_ns = clock_cb, .set_irq = pit_irq,
                                                 .ctx = ic, .irq = 0 });
    static const struct { uint16_t base, count; bool pit; } ports[] = {
        { I8259_MASTER_BASE, I8259_PORT_COUNT, false },
        { I8259_SLAVE_BASE, I8259_PORT_COUNT, false },
        { I8259_ELCR_BASE, I8259_PORT_COUNT, false },
        { I8254_BASE, I8254_PORT_COUNT, true },
        { I8254_PORT_B, 1, true },
    };
    for (unsigned k = 0; k < sizeof ports / sizeof ports[0]; k++) {
        int rc = vx_pio_register(m, ports[k].base, ports[k].count,
                                 ports[k].pit ? &pit_ops : &pic_ops, ic);
        if (rc) {
            while (k--)
                vx_pio_unregister(m, ports[k].base);
            pc_intc_destroy(ic);
            return rc;
        }
    }
    *out = ic;
    return 0;
}

void pc_intc_destroy(struct pc_intc *ic)
{
    if (!ic)
        return;
    pthread_cond_destroy(&ic->wake);
    pthread_mutex_destroy(&ic->lock);
    free(ic);
}

void pc_intc_set_irq(struct pc_intc *ic, unsigned line, int level)
{
    pthread_mutex_lock(&ic->lock);
    i8259_set_irq(&ic->pic, line, level);
    pthread_mutex_unlock(&ic->lock);
}

void pc_intc_set_level_triggered(struct pc_intc *ic, unsigned line)
{
    pthread_mutex_lock(&ic->lock);
    i8259_set_level_triggered(&ic->pic, line);
    pthread_mutex_unlock(&ic->lock);
}

int pc_intc_acknowledge(struct pc_intc *ic)
{
    pthread_mutex_lock(&ic->lock);
    int v = i8259_has_interrupt(&ic->pic) ? i8259_acknowledge(&ic->pic) : -1;
    pthread_mutex_unlock(&ic->lock);
    return v;
}

/* With the lock held: deliver what fell due and set the next deadline. */
static uint64_t update(struct pc_intc *ic, uint64_t now)
{
    i8254_update(&ic->pit, now);
    uint64_t next = i8254_next_event_ns(&ic->pit, now);
    atomic_store_explicit(&ic->deadline, next, memory_order_release);
    return next;
}

void pc_intc_poll(struct pc_intc *ic)
{
    uint64_t now = pc_intc_now();
    pthread_mutex_lock(&ic->lock);
    update(ic, now);
    pthread_mutex_unlock(&ic->lock);
}

bool pc_intc_wait(struct pc_intc *ic, const atomic_int *stop, const atomic_int *nmi)
{
    pthread_mutex_lock(&ic->lock);
    for (;;) {
        uint64_t now = pc_intc_now();
        uint64_t next = update(ic, now);
        if (atomic_load(&ic->intr) || atomic_load(stop) || atomic_load(nmi))
            break;
        if (next <= now)
            continue;
        if (next > now + 1000000)
            next = now + 1000000;
        struct timespec ts = { (time_t)(next / 1000000000ull), (long)(next % 1000000000ull) };
        pthread_cond_timedwait(&ic->wake, &ic->lock, &ts);
    }
    bool intr = atomic_load(&ic->intr) != 0;
    pthread_mutex_unlock(&ic->lock);
    return intr;
}
