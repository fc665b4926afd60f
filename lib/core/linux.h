/* The Linux loader's internal entry (vx_boot_linux in include/libvx/pc.h). */
#ifndef VX_CORE_LINUX_H
#define VX_CORE_LINUX_H

#include <stddef.h>

#include <libvx/vx.h>

/* vx_boot_linux(), describing acpi_cpus processors in ACPI tables, with a
 * MADT when there are more than one (0: no tables at all; vx_boot_linux
 * passes the machine's vCPU count). Tests use it to build the guest memory
 * of a board with more processors than the machine in hand has. */
int vxi_boot_linux(vx_machine *m, const void *kernel, size_t kernel_len, const void *initrd,
                   size_t initrd_len, const char *cmdline, unsigned acpi_cpus);

#endif
