/*
 * The ACPI fixed-hardware registers the pc board's FADT names (acpi.h):
 * PM1a event block (PM1_STS, PM1_EN), PM1a control block (PM1_CNT) and
 * the 32-bit PM timer, at pm_base + 0, + 4 and + 8.
 *
 * - The board is always in ACPI mode: SCI_EN reads 1 and there is no
 *   SMI_CMD port to switch modes.
 * - PM1_STS bits are write-1-to-clear. TMR_STS is set when the timer's
 *   bit 31 has changed since it was last cleared, seen when PM1_STS is
 *   read; the device raises no SCI for it (no host timer backs TMR_EN,
 *   which is stored; Linux does not enable it). The board has no other
 *   fixed event (the power and sleep buttons are not fixed features in
 *   its FADT), so the other status bits stay 0; enables are stored.
 * - A write of SLP_EN with SLP_TYP ACPI_S5_TYPE (the \_S5 object) powers
 *   the machine off; other sleep types are not advertised and do nothing.
 * - PM_TMR counts at 3.579545 MHz from the clock the config gives.
 *
 * Wiring: vx_pio_register(m, pm_base, ACPI_PM_PORTS, &acpi_pm_ops, dev).
 */
#ifndef VX_DEVICES_ACPI_PM_H
#define VX_DEVICES_ACPI_PM_H

#include <stdint.h>

#include <libvx/vx.h>

enum {
    ACPI_PM_BASE = 0x600,
    ACPI_PM_PORTS = 12,
    ACPI_PM_SCI_IRQ = 9,
    ACPI_PM_TMR_STS = 1u << 0,
    ACPI_PM_TMR_EN = 1u << 0,
    ACPI_PM_SCI_EN = 1u << 0,
    ACPI_PM_SLP_EN = 1u << 13,
    ACPI_PM_TIMER_HZ = 3579545,
};

struct acpi_pm_config {
    uint16_t base;                   /* 0: ACPI_PM_BASE */
    uint64_t (*now_ns)(void *ctx);   /* monotonic */
    void (*power_off)(void *ctx);    /* S5 */
    void *ctx;
};

struct acpi_pm {
    struct acpi_pm_config cfg;
    /* state */
    uint16_t sts, en, cnt;
    uint64_t t0_ns;     /* when the timer read 0 */
    uint64_t tmr_epoch; /* timer ticks >> 31 when TMR_STS was last cleared */
};

void acpi_pm_init(struct acpi_pm *pm, const struct acpi_pm_config *cfg);
void acpi_pm_reset(struct acpi_pm *pm);

int acpi_pm_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
int acpi_pm_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);
extern const vx_io_ops acpi_pm_ops;

#endif
