/* The flat CPU modes of vx_vcpu_set_mode(): register state and the tables
 * (GDT, TSS, identity page tables) they need. Pure: no guest memory access. */
#ifndef VX_CPU_X86_MODE_H
#define VX_CPU_X86_MODE_H

#include <libvx/x86.h>

/* Fill *s (whose apic_base and other unrelated fields are kept) and, for
 * PROT32/LONG64, tables[0 .. VX_X86_MODE_TABLES_SIZE) as they must appear at
 * guest-physical tables_gpa. Returns the number of table bytes to write
 * (0 for real mode) or VX_EINVAL for an unknown mode. */
int x86_flat_mode(vx_cpu_mode mode, uint64_t tables_gpa, vx_x86_sregs *s, uint8_t *tables);

/* Offsets inside the tables. */
#define X86_MODE_PML4 0x0000u
#define X86_MODE_PDPT 0x1000u
#define X86_MODE_PD 0x2000u /* four of them */
#define X86_MODE_GDT 0x6000u
#define X86_MODE_TSS 0x6080u
#define X86_MODE_GDT_LIMIT 0x47u /* nine descriptors: the TSS takes two */
/* The TSS proper is 0x68 bytes; an I/O permission bitmap for all 65536
 * ports follows, then the 0xff byte that must end it. */
#define X86_MODE_IOMAP_OFFSET 0x68u
#define X86_MODE_TSS_LIMIT (X86_MODE_IOMAP_OFFSET + 0x2000u)

#endif
