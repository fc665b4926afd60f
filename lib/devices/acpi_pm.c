/* ACPI PM1a event and control registers and the PM timer (acpi_pm.h). */
#include "config.h"

#include <string.h>

#include "devices/acpi.h"
#include "devices/acpi_pm.h"

#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PM_TMR 8
/* PM1_EN: TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN, PCIEXP_WAKE_DIS */
#define PM1_EN_MASK 0x4721u
/* PM1_CNT bits the guest may set and read back: BM_RLD, SLP_TYP (SCI_EN is
 * fixed at 1; GBL_RLS and SLP_EN read as 0). */
#define PM1_CNT_MASK 0x1c02u
#define SLP_TYP(cnt) (((cnt) >> 10) & 7u)

static uint64_t ticks(struct acpi_pm *pm)
{
    uint64_t ns = pm->cfg.now_ns ? pm->cfg.now_ns(pm->cfg.ctx) - pm->t0_ns : 0;
    /* ns * 3579545 / 1e9 without overflow for centuries of uptime */
    return ns / 1000000000ull * ACPI_PM_TIMER_HZ +
           ns % 1000000000ull * ACPI_PM_TIMER_HZ / 1000000000ull;
}

void acpi_pm_reset(struct acpi_pm *pm)
{
    pm->sts = pm->en = 0;
    pm->cnt = ACPI_PM_SCI_EN;
    pm->t0_ns = pm->cfg.now_ns ? pm->cfg.now_ns(pm->cfg.ctx) : 0;
    pm->tmr_epoch = 0;
}

void acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg)
{
    memset(pm, 0, sizeof *pm);
    if (cfg)
        pm->cfg = *cfg;
    if (!pm->cfg.base)
        pm->cfg.base = ACPI_PM_BASE;
    acpi_pm_reset(pm);
}

/* PM1_STS as of `now` (timer ticks): TMR_STS once bit 31 has changed. */
static uint16_t status(struct acpi_pm *pm, uint64_t now)
{
    if ((now >> 31) != pm->tmr_epoch)
        pm->sts |= ACPI_PM_TMR_STS;
    return pm->sts;
}

/* The 12 bytes of register space as one little-endian image. */
static void image(struct acpi_pm *pm, uint8_t r[ACPI_PM_PORTS])
{
    uint64_t now = ticks(pm);
    uint16_t sts = status(pm, now);
    uint32_t tmr = (uint32_t)now;
    uint16_t cnt = pm->cnt;
    r[0] = (uint8_t)sts, r[1] = (uint8_t)(sts >> 8);
    r[2] = (uint8_t)pm->en, r[3] = (uint8_t)(pm->en >> 8);
    r[4] = (uint8_t)cnt, r[5] = (uint8_t)(cnt >> 8);
    r[6] = r[7] = 0;
    for (unsigned k = 0; k < 4; k++)
        r[8 + k] = (uint8_t)(tmr >> (8 * k));
}

int acpi_pm_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct acpi_pm *pm = opaque;
    uint8_t r[ACPI_PM_PORTS];
    image(pm, r);
    uint64_t v = 0;
    for (unsigned k = 0; k < len && k < 8; k++) {
        uint64_t off = addr - pm->cfg.base + k;
        v |= (uint64_t)(addr >= pm->cfg.base && off < ACPI_PM_PORTS ? r[off] : 0xff) << (8 * k);
    }
    *value = v;
    return 0;
}

static void write_reg(struct acpi_pm *pm, unsigned reg, uint16_t v, uint16_t bytes)
{
    switch (reg) {
    case PM1_STS: {
        uint64_t now = ticks(pm);
        status(pm, now);
        if (v & bytes & ACPI_PM_TMR_STS)
            pm->tmr_epoch = now >> 31;
        pm->sts &= (uint16_t)~(v & bytes);
        break;
    }
    case PM1_EN:
        pm->en = (uint16_t)((pm->en & ~bytes) | (v & bytes & PM1_EN_MASK));
        break;
    case PM1_CNT:
        pm->cnt = (uint16_t)((pm->cnt & ~(bytes & PM1_CNT_MASK)) | (v & bytes & PM1_CNT_MASK));
        pm->cnt |= ACPI_PM_SCI_EN;
        if ((v & bytes & ACPI_PM_SLP_EN) && SLP_TYP(pm->cnt) == ACPI_S5_TYPE &&
            pm->cfg.power_off)
            pm->cfg.power_off(pm->cfg.ctx);
        break;
    default:
        break; /* the timer is read-only */
    }
}

int acpi_pm_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct acpi_pm *pm = opaque;
    if (addr < pm->cfg.base)
        return 0;
    /* Collect the bytes written to each 16-bit register, then apply each
     * register once, so a 32-bit write of STS and EN acts on both. */
    uint16_t v[ACPI_PM_PORTS / 2] = { 0 }, bytes[ACPI_PM_PORTS / 2] = { 0 };
    for (unsigned k = 0; k < len && k < 8; k++) {
        uint64_t off = addr - pm->cfg.base + k;
        if (off >= ACPI_PM_PORTS)
            break;
        unsigned shift = (unsigned)(off & 1) * 8;
        v[off / 2] |= (uint16_t)(((value >> (8 * k)) & 0xff) << shift);
        bytes[off / 2] |= (uint16_t)(0xffu << shift);
    }
    for (unsigned r = 0; r < ACPI_PM_PORTS / 2; r++)
        if (bytes[r])
            write_reg(pm, r * 2, v[r], bytes[r]);
    return 0;
}

const vx_io_ops acpi_pm_ops = {
    .size = sizeof(vx_io_ops),
    .read = acpi_pm_read,
    .write = acpi_pm_write,
};
