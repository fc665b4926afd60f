/*
 * The CPU model tcg presents through CPUID. It advertises only what the
 * translator implements, because an OS picks its code paths from CPUID:
 *
 *   vendor "GenuineIntel", family 6 model 0x3a stepping 9, brand
 *   "libvx tcg x86-64"; max leaf 7, max extended leaf 0x80000008.
 *   leaf 1 EDX: fpu, tsc, msr, cx8, sep, pge, cmov, pat, pse, pse36, pae,
 *               clflush (64-byte line), mmx, fxsr, sse, sse2
 *                                              ECX: cx16, popcnt
 *           (x87 with fcmov/fcomi, every MMX, SSE and SSE2 instruction,
 *           fxsave/fxrstor with MXCSR_MASK 0xffff (DAZ), CR0.EM/TS/MP/NE and
 *           CR4.OSFXSR/OSXMMEXCPT; not sse3/ssse3/sse4/avx/xsave: fisttp
 *           executes but SSE3 is not advertised)
 *   leaf 7: nothing (no BMI1: tzcnt still executes with its BMI1
 *           semantics, which equal bsf's for a non-zero source, as on
 *           real CPUs without BMI1 for what compilers emit)
 *   0x80000001 EDX: syscall, nx, pdpe1gb, rdtscp, lm
 *                                              ECX: lahf_lm, abm (lzcnt)
 *   (pge: global pages are honoured by flushing everything on a CR3 write,
 *   which the architecture allows; no APIC, so Linux uses the 8259 PIC)
 *   0x80000008: 40 physical and 48 linear address bits
 *
 * Not advertised: apic, x2apic, de (debug registers are kept but
 * breakpoints are not armed), mce/mca, xsave, pcid, sse3 and later.
 */
#ifndef VX_CPU_X86_CPUID_H
#define VX_CPU_X86_CPUID_H

#include "cpu/x86/cpu.h"

/* The four outputs (eax, ebx, ecx, edx) of CPUID leaf/subleaf. */
void x86_cpuid(const struct x86_cpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

#endif
