/*
 * ACPI tables for the pc board: a DSDT with the PCI root bridge (its bus,
 * I/O and memory windows in _CRS and the INTx routing of every slot in
 * _PRT, which a kernel with ACPI uses for PCI interrupts whether it runs
 * the 8259 pair or the I/O APIC) and \_S5 for power-off through the PM1a
 * control register (lib/devices/acpi_pm.h); and, when the machine has
 * APICs (several vCPUs), the MADT a kernel needs to find the other
 * processors (one local APIC per vCPU, the I/O APIC, the ISA interrupt
 * overrides).
 *
 * The tables follow ACPI 6.x: RSDP (revision 2) -> XSDT -> FADT (revision
 * 6, not hardware-reduced: the board has the legacy PIC, PIT, RTC and
 * i8042, and says so in IAPC_BOOT_ARCH) -> FACS and DSDT; XSDT -> MADT.
 * Debian's kernels are built without MP-table parsing (CONFIG_X86_MPPARSE
 * is off), so ACPI is the only way they find a second CPU.
 *
 * Interrupt numbering follows the PC convention every OS expects: ISA IRQ
 * n is I/O APIC input (GSI) n, except IRQ 0 (the PIT), which is GSI 2;
 * the board's interrupt controller must route it so (under kvm, the GSI
 * routing table). The lines PCI interrupts and the SCI use are level-
 * triggered, active low.
 *
 * Pure: acpi_build_pc() fills a buffer; the caller puts it in guest RAM.
 */
#ifndef VX_DEVICES_ACPI_H
#define VX_DEVICES_ACPI_H

#include <stddef.h>
#include <stdint.h>

enum {
    ACPI_IOAPIC_ADDR = 0xfec00000u,
    ACPI_LAPIC_ADDR = 0xfee00000u,
    ACPI_MAX_CPUS = 255,  /* xAPIC ids, and the MADT's one-byte ids */
    ACPI_S5_TYPE = 5,     /* SLP_TYP of \_S5: what acpi_pm takes as power-off */
};

struct acpi_pc_config {
    unsigned ncpus;       /* local APIC ids 0 .. ncpus - 1, processor UIDs the same */
    int apics;            /* a MADT (the APICs); without one the kernel keeps the 8259 pair */
    unsigned sci_irq;     /* the FADT's SCI_INT (level, active low) */
    uint16_t pm_base;     /* PM1a_EVT_BLK at +0 (4), PM1a_CNT_BLK at +4 (2), PM_TMR_BLK at +8 (4) */
    uint32_t pci_mmio_base, pci_mmio_size; /* the host bridge's memory window */
    uint8_t pci_irq[4];   /* ISA line of PIRQ A-D: slot s pin p (0 = INTA) is pci_irq[(s + p) % 4] */
};

/* Build the tables into buf, which the guest will see at guest-physical
 * address gpa (16-byte aligned, below 4 GiB). Returns the bytes used, with
 * the RSDP at buf + 0, or 0 if cap is too small or the config is out of
 * range (ncpus 0 or above ACPI_MAX_CPUS, an irq above 15). */
size_t acpi_build_pc(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_pc_config *c);

/* The 8-bit sum of len bytes: 0 over a whole table with a right checksum. */
uint8_t acpi_sum(const uint8_t *p, size_t len);

#endif
