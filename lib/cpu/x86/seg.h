/* Segment register loads: selectors, descriptors and their checks. */
#ifndef VX_CPU_X86_SEG_H
#define VX_CPU_X86_SEG_H

#include "cpu/x86/cpu.h"

/* Load a data or stack segment register (not CS) with a selector, as mov,
 * pop and lds do: real-mode base arithmetic, or a descriptor from the GDT
 * or LDT with the checks protected mode makes (#GP/#SS/#NP with the
 * selector as error code). */
enum x86_status x86_load_sreg(struct x86_cpu *c, unsigned seg, uint16_t sel);

/* Read the 8-byte descriptor for sel; X86_OK, or #GP(sel) when outside
 * the table. */
enum x86_status x86_read_descriptor(struct x86_cpu *c, uint16_t sel, uint64_t *desc,
                                    uint64_t *lin);

/* The hidden-cache form of a descriptor. */
void x86_descriptor_to_segment(uint64_t desc, uint16_t sel, vx_x86_segment *s);

#endif
