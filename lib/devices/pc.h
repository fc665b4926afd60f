/* The pc board's internals that the Linux loader needs: where its RAM is. */
#ifndef VX_DEVICES_PC_H
#define VX_DEVICES_PC_H

#include <stdint.h>

#include <libvx/vx.h>

struct vx_pc_layout {
    uint64_t low_end;   /* RAM is [0, low_end) */
    uint64_t high_size; /* and [4 GiB, 4 GiB + high_size) */
};

/* The layout of a machine made a PC by vx_board_pc(), or NULL. */
const struct vx_pc_layout *vxi_pc_layout(vx_machine *m);

/* Where the Linux loader puts the board's ACPI tables (lib/devices/acpi.h):
 * below the EBDA, in RAM the e820 map then gives as ACPI data. */
#define PC_ACPI_GPA 0x9c000u
#define PC_ACPI_SIZE 0x3c00u

/* Write the ACPI tables of a PC with ncpus processors at PC_ACPI_GPA (a
 * MADT when ncpus > 1); *rsdp gets the RSDP's address. */
int vxi_pc_write_acpi(vx_machine *m, unsigned ncpus, uint64_t *rsdp);

#endif
