/*
 * libvx: x86 vCPU state and CPU modes.
 *
 * Included by <libvx/vx.h>; may also be included on its own. The same layout
 * serves every accelerator: kvm translates it to and from KVM's structures,
 * tcg keeps it as its own state.
 */
#ifndef LIBVX_X86_H
#define LIBVX_X86_H

#include <libvx/vx.h>

#ifdef __cplusplus
extern "C" {
#endif

/* General registers. rflags bit 1 always reads as 1. */
typedef struct vx_x86_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
} vx_x86_regs;

/* A segment register with its hidden descriptor cache, as the CPU holds it
 * (not as the GDT encodes it): `limit` is the byte-granular limit after the
 * G bit has been applied; `type` is the 4-bit descriptor type. */
typedef struct vx_x86_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl;
} vx_x86_segment;

typedef struct vx_x86_dtable {
    uint64_t base;
    uint16_t limit;
} vx_x86_dtable;

/* System registers. */
typedef struct vx_x86_sregs {
    vx_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
    vx_x86_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
} vx_x86_sregs;

/* Read or write the general registers. Errors: VX_EINVAL, VX_EBUSY (the vCPU
 * is running on another thread), VX_EACCEL. */
VX_API int vx_vcpu_get_regs(vx_vcpu *v, vx_x86_regs *r);
VX_API int vx_vcpu_set_regs(vx_vcpu *v, const vx_x86_regs *r);

/* Read or write the system registers. Setting CR0/CR4/EFER changes the CPU
 * mode directly, without the checks the guest's own mov to CR would make;
 * the accelerator may refuse an inconsistent state (VX_EINVAL / VX_EACCEL,
 * with the reason in vx_last_error()). */
VX_API int vx_vcpu_get_sregs(vx_vcpu *v, vx_x86_sregs *s);
VX_API int vx_vcpu_set_sregs(vx_vcpu *v, const vx_x86_sregs *s);

/* Read or write one model-specific register, by its architectural index
 * (0xc0000080 is EFER). VX_ENOTSUP for an MSR the accelerator does not have. */
VX_API int vx_vcpu_get_msr(vx_vcpu *v, uint32_t index, uint64_t *value);
VX_API int vx_vcpu_set_msr(vx_vcpu *v, uint32_t index, uint64_t value);

/* x87, MMX and SSE state, laid out as FXSAVE stores it (64-bit format),
 * after the ABI's leading size field:
 *   fcw, fsw    x87 control and status words (TOP is fsw bits 13:11)
 *   ftw         the abridged tag byte: bit n set = physical register n
 *               holds a value (FXSAVE's format, not FSTENV's two-bit tags)
 *   fop         the last x87 instruction's opcode (11 bits)
 *   fip, fdp    its offset and its memory operand's offset
 *   mxcsr       SSE control and status; mxcsr_mask the bits it may hold
 *               (filled by get, ignored by set)
 *   st[i]       ST(i), the 80-bit value in bytes 0..9 (10..15 zero);
 *               physical register (TOP + i) & 7, whose low 64 bits are
 *               MMX register mm((TOP + i) & 7)
 *   xmm[n]      XMM0..XMM15, little-endian
 * The same on every accelerator (kvm: KVM_GET_FPU/KVM_SET_FPU). */
typedef struct vx_x86_fpu {
    size_t size; /* sizeof(vx_x86_fpu), set by the caller */
    uint16_t fcw, fsw;
    uint8_t ftw, reserved0;
    uint16_t fop;
    uint64_t fip, fdp;
    uint32_t mxcsr, mxcsr_mask;
    uint8_t st[8][16];
    uint8_t xmm[16][16];
} vx_x86_fpu;

/* Read or write the x87/MMX/SSE state. f->size must be at least
 * sizeof(vx_x86_fpu) (else VX_EINVAL). Setting an MXCSR with bits outside
 * 0xffff (which the CPU would fault on) is VX_EINVAL. Errors as for
 * vx_vcpu_get_regs(). */
VX_API int vx_vcpu_get_fpu(vx_vcpu *v, vx_x86_fpu *f);
VX_API int vx_vcpu_set_fpu(vx_vcpu *v, const vx_x86_fpu *f);

/* The CPU tcg presents (CPUID): GenuineIntel family 6 model 0x3a, brand
 * "libvx tcg x86-64"; leaf 1 EDX fpu pse tsc msr pae cx8 sep pge cmov pat
 * pse36 clflush mmx fxsr sse sse2, ECX cx16 popcnt; 0x80000001 EDX syscall
 * nx pdpe1gb rdtscp lm, ECX lahf_lm abm. No APIC: interrupts come from the
 * 8259 PIC pair of VX_MACHINE_IRQCHIP.
 * Every instruction of what it advertises is implemented (x87 with
 * fcmov/fcomi, MMX, SSE, SSE2, fxsave/fxrstor), with CR0.EM/TS/MP/NE and
 * CR4.OSFXSR/OSXMMEXCPT honoured (#UD, #NM, #MF, #XM); nothing of SSE3 or
 * later, AVX or XSAVE is advertised. Under kvm, CPUID is the host's as KVM
 * supports it. */

typedef enum vx_cpu_mode {
    VX_MODE_REAL = 1,   /* 16-bit real mode, all segments 0 */
    VX_MODE_PROT32 = 2, /* 32-bit flat protected mode, no paging */
    VX_MODE_LONG64 = 3, /* 64-bit long mode, identity paging of 0..4 GiB */
} vx_cpu_mode;

/* Bytes of guest RAM that vx_vcpu_set_mode() writes at tables_gpa. */
#define VX_X86_MODE_TABLES_SIZE 0x9000u

/* Selectors of the GDT that vx_vcpu_set_mode() writes (PROT32 and LONG64).
 * The user selectors are laid out for syscall/sysret (STAR[63:48] =
 * VX_X86_SEL_USER_CODE32 | 3). */
#define VX_X86_SEL_CODE64 0x08      /* ring 0, 64-bit code */
#define VX_X86_SEL_DATA 0x10        /* ring 0, flat 4 GiB data */
#define VX_X86_SEL_CODE32 0x18      /* ring 0, flat 4 GiB 32-bit code */
#define VX_X86_SEL_USER_CODE32 0x20 /* ring 3, flat 32-bit code */
#define VX_X86_SEL_USER_DATA 0x28   /* ring 3, flat data */
#define VX_X86_SEL_USER_CODE64 0x30 /* ring 3, 64-bit code */
#define VX_X86_SEL_TSS 0x38         /* the task state segment (16 bytes) */

/* Put the vCPU in a flat mode, Unicorn-style: every segment based at 0,
 * ring 0, interrupts off, rflags = 0x2.
 *   VX_MODE_REAL: segments 0 with 64 KiB limits; tables_gpa is unused.
 *   VX_MODE_PROT32: CS = VX_X86_SEL_CODE32, data segments VX_X86_SEL_DATA,
 *     4 GiB limits, paging off. A GDT and TSS are written at
 *     tables_gpa + 0x6000 so the guest can reload segment registers. The
 *     TSS's I/O permission bitmap allows every port, so ring-3 code can use
 *     in/out whatever its IOPL (set your own TSS to restrict it). The IDT
 *     is empty: an exception shuts the vCPU down (VX_EXIT_SHUTDOWN).
 *   VX_MODE_LONG64: CS = VX_X86_SEL_CODE64, data VX_X86_SEL_DATA; identity
 *     page tables for 0..4 GiB with 2 MiB pages (writable, user-accessible,
 *     executable), written at tables_gpa: PML4 at +0x0000, PDPT at +0x1000,
 *     four page directories at +0x2000..+0x5fff; GDT and TSS (with its I/O
 *     bitmap) at +0x6000..+0x80e8.
 *     CR0.PG/PE, CR4.PAE, EFER.LME/LMA/SCE/NXE set; CR4.OSFXSR so SSE works.
 * For PROT32 and LONG64, tables_gpa must be 4 KiB aligned (else VX_EINVAL)
 * and [tables_gpa, tables_gpa + VX_X86_MODE_TABLES_SIZE) writable RAM (else
 * VX_ERANGE: the CPU sets accessed bits in these tables).
 * rip, rsp and the general registers are the caller's to set afterwards. */
VX_API int vx_vcpu_set_mode(vx_vcpu *v, vx_cpu_mode mode, uint64_t tables_gpa);

/* Translate a guest-virtual (linear) address as the vCPU's paging would
 * for a supervisor read, with the page tables as they are now in guest
 * memory (32-bit, PAE or 4-level; with paging off, the address itself):
 * *gpa gets the guest-physical address. The walk only looks: it sets no
 * accessed bits. Segmentation is not applied (gva is linear).
 * Errors: VX_EINVAL (NULL), VX_EBUSY (running on another thread),
 * VX_ENOENT (not present or reserved bits set: no translation, and
 * vx_last_error() gives the #PF error code the CPU would report). */
VX_API int vx_vcpu_translate(vx_vcpu *v, uint64_t gva, uint64_t *gpa);

#ifdef __cplusplus
}
#endif

#endif /* LIBVX_X86_H */
