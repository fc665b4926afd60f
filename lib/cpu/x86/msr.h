/* Model-specific registers of the tcg CPU model: what rdmsr/wrmsr and
 * vx_vcpu_get_msr/set_msr reach. */
#ifndef VX_CPU_X86_MSR_H
#define VX_CPU_X86_MSR_H

#include "cpu/x86/cpu.h"

enum {
    MSR_TSC = 0x10, MSR_PLATFORM_ID = 0x17, MSR_APIC_BASE = 0x1b, MSR_FEATURE_CONTROL = 0x3a,
    MSR_UCODE_REV = 0x8b, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175,
    MSR_SYSENTER_EIP = 0x176, MSR_MISC_ENABLE = 0x1a0, MSR_PAT = 0x277,
    MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081, MSR_LSTAR = 0xc0000082,
    MSR_CSTAR = 0xc0000083, MSR_FMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100,
    MSR_GS_BASE = 0xc0000101, MSR_KERNEL_GS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103,
};

/* X86_OK, or #GP(0) in cpu->exc: an MSR the model does not have, or a value
 * it refuses (reserved bits, a non-canonical address, an EFER change the
 * CPU forbids). A write that changes EFER updates the mode and flushes the
 * TLB through mem->tlb_flush. */
enum x86_status x86_rdmsr(struct x86_cpu *c, uint32_t index, uint64_t *value);
enum x86_status x86_wrmsr(struct x86_cpu *c, uint32_t index, uint64_t value);

/* CR0 and CR4 writes with the CPU's checks and side effects (mode, long
 * mode activation, TLB). */
enum x86_status x86_write_cr0(struct x86_cpu *c, uint64_t v);
enum x86_status x86_write_cr4(struct x86_cpu *c, uint64_t v);

#endif
