/* The MSRs of the tcg CPU model: the ones Linux and boot code touch. */
#include "config.h"

#include <x86intrin.h>

#include "cpu/x86/msr.h"

static bool canonical(uint64_t a)
{
    return (uint64_t)(((int64_t)a >> 47) + 1) <= 1;
}

/* Storage for the MSRs that are plain values. */
static uint64_t *slot(struct x86_cpu *c, uint32_t index)
{
    switch (index) {
    case MSR_APIC_BASE: return &c->apic_base;
    case MSR_SYSENTER_CS: return &c->msr.sysenter_cs;
    case MSR_SYSENTER_ESP: return &c->msr.sysenter_esp;
    case MSR_SYSENTER_EIP: return &c->msr.sysenter_eip;
    case MSR_MISC_ENABLE: return &c->msr.misc_enable;
    case MSR_PAT: return &c->msr.pat;
    case MSR_EFER: return &c->efer;
    case MSR_STAR: return &c->msr.star;
    case MSR_LSTAR: return &c->msr.lstar;
    case MSR_CSTAR: return &c->msr.cstar;
    case MSR_FMASK: return &c->msr.fmask;
    case MSR_FS_BASE: return &c->seg[S_FS].base;
    case MSR_GS_BASE: return &c->seg[S_GS].base;
    case MSR_KERNEL_GS_BASE: return &c->msr.kernel_gs_base;
    case MSR_TSC_AUX: return &c->msr.tsc_aux;
    default: return NULL;
    }
}

enum x86_status x86_rdmsr(struct x86_cpu *c, uint32_t index, uint64_t *value)
{
    switch (index) {
    case MSR_TSC: *value = __rdtsc() + c->msr.tsc_offset; return X86_OK;
    case MSR_PLATFORM_ID: *value = 0; return X86_OK;
    case MSR_UCODE_REV: *value = 0; return X86_OK; /* no microcode loaded */
    case MSR_FEATURE_CONTROL: *value = 1; return X86_OK; /* locked, nothing enabled */
    }
    uint64_t *p = slot(c, index);
    if (!p)
        return x86_raise_err(c, X86_GP, 0);
    *value = *p;
    return X86_OK;
}

static bool pat_valid(uint64_t v)
{
    for (unsigned k = 0; k < 8; k++) {
        unsigned t = (v >> (8 * k)) & 0xff;
        if (t == 2 || t == 3 || t > 7)
            return false;
    }
    return true;
}

enum x86_status x86_wrmsr(struct x86_cpu *c, uint32_t index, uint64_t v)
{
    switch (index) {
    case MSR_TSC:
        c->msr.tsc_offset = v - __rdtsc();
        return X86_OK;
    case MSR_UCODE_REV:
        return X86_OK; /* Linux writes 0 before reading the revision */
    case MSR_EFER: {
        const uint64_t settable = EFER_SCE | EFER_LME | EFER_NXE;
        if (v & ~(settable | EFER_LMA))
            return x86_raise_err(c, X86_GP, 0);
        /* LME cannot change while paging is on; LMA is the CPU's to set. */
        if ((c->cr0 & CR0_PG) && ((v ^ c->efer) & EFER_LME))
            return x86_raise_err(c, X86_GP, 0);
        uint64_t old = c->efer;
        c->efer = (v & settable) | (c->efer & EFER_LMA);
        x86_update_mode(c);
        if ((old ^ c->efer) & EFER_NXE)
            c->mem->tlb_flush(c, X86_FLUSH_ALL);
        return X86_OK;
    }
    case MSR_PAT:
        if (!pat_valid(v))
            return x86_raise_err(c, X86_GP, 0);
        break;
    case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE: case MSR_LSTAR:
    case MSR_CSTAR: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP:
        if (!canonical(v))
            return x86_raise_err(c, X86_GP, 0);
        break;
    case MSR_TSC_AUX: case MSR_FMASK:
        if (v >> 32)
            return x86_raise_err(c, X86_GP, 0);
        break;
    case MSR_APIC_BASE:
        /* Reserved: bits 0-7, 9, 10 (x2APIC is not offered), above MAXPHYADDR. */
        if (v & (0xffull | (3ull << 9) | ~((1ull << 40) - 1)))
            return x86_raise_err(c, X86_GP, 0);
        break;
    }
    uint64_t *p = slot(c, index);
    if (!p)
        return x86_raise_err(c, X86_GP, 0);
    *p = v;
    return X86_OK;
}
