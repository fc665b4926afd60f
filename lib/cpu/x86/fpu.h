/*
 * x87, MMX and SSE state of the x86 CPU, and the helpers the x87/SSE
 * semantics (ops_fpu.c, ops_sse.c) share.
 *
 * Plain data, so snapshots can serialise it as it is:
 *   - the eight x87 data registers are kept by physical number (R0..R7),
 *     each as its 64-bit significand and 16-bit sign+exponent; ST(i) is
 *     R[(TOP + i) & 7], TOP being FSW bits 13:11;
 *   - the tag word is kept abridged, as FXSAVE stores it (bit set: the
 *     physical register is not empty); FSTENV/FNSAVE compute the full
 *     two-bit tags from the contents, as the CPU does;
 *   - MMX register mmN is the significand of physical register RN;
 *   - XMM registers are 16 bytes, little-endian lanes.
 *
 * Reset values (SDM vol. 3 table 9-1): FCW 0x40 at power-on, 0x37f after
 * FNINIT (what x86_fpu_reset gives: the SDM allows either, and every BIOS
 * and OS executes fninit first); FSW 0, all tags empty, MXCSR 0x1f80.
 */
#ifndef VX_CPU_X86_FPU_H
#define VX_CPU_X86_FPU_H

#include <stdint.h>
#include <string.h>

union x86_xmm {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
    int8_t sb[16];
    int16_t sw[8];
    int32_t sd[4];
    int64_t sq[2];
    float f[4];
    double g[2];
};

struct x86_fpreg {
    uint64_t mant; /* significand, explicit integer bit 63 */
    uint16_t sexp; /* sign (bit 15) and biased exponent */
};

struct x86_fpu {
    struct x86_fpreg r[8]; /* physical registers R0..R7 */
    uint16_t fcw;
    uint16_t fsw;          /* TOP in bits 13:11 */
    uint8_t ftw;           /* abridged: bit n set = Rn not empty */
    uint16_t fop;          /* last non-control instruction's opcode (11 bits) */
    uint16_t fcs, fds;     /* their selectors (32-bit formats) */
    uint64_t fip, fdp;     /* its offset and its memory operand's offset */
    union x86_xmm xmm[16];
    uint32_t mxcsr;
};

/* FSW bits. */
#define FSW_IE 0x0001u
#define FSW_DE 0x0002u
#define FSW_ZE 0x0004u
#define FSW_OE 0x0008u
#define FSW_UE 0x0010u
#define FSW_PE 0x0020u
#define FSW_SF 0x0040u
#define FSW_ES 0x0080u
#define FSW_C0 0x0100u
#define FSW_C1 0x0200u
#define FSW_C2 0x0400u
#define FSW_C3 0x4000u
#define FSW_B 0x8000u
#define FSW_CC (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)
#define FSW_TOP_SHIFT 11

/* MXCSR bits. */
#define MXCSR_FLAGS 0x003fu /* IE DE ZE OE UE PE */
#define MXCSR_DAZ 0x0040u
#define MXCSR_MASKS 0x1f80u
#define MXCSR_RC 0x6000u
#define MXCSR_FZ 0x8000u
/* What MXCSR may hold (MXCSR_MASK in FXSAVE): the rest faults on ldmxcsr
 * and fxrstor. */
#define MXCSR_VALID 0xffffu

static inline void x86_fpu_init_x87(struct x86_fpu *f)
{
    f->fcw = 0x37f;
    f->fsw = 0;
    f->ftw = 0;
    f->fop = 0;
    f->fip = f->fdp = 0;
    f->fcs = f->fds = 0;
}

static inline void x86_fpu_reset(struct x86_fpu *f)
{
    memset(f, 0, sizeof *f);
    x86_fpu_init_x87(f);
    f->mxcsr = 0x1f80;
}

/* The abridged tag byte to the full tag word FSTENV stores: 00 valid,
 * 01 zero, 10 special (NaN, infinity, denormal, unsupported), 11 empty. */
uint16_t x86_fpu_full_tags(const struct x86_fpu *f);
/* And back: 11 is empty, anything else is not. */
static inline uint8_t x86_fpu_abridge_tags(uint16_t ftw)
{
    uint8_t t = 0;
    for (int k = 0; k < 8; k++)
        if (((ftw >> (2 * k)) & 3) != 3)
            t |= (uint8_t)(1u << k);
    return t;
}

/* The FXSAVE image (512 bytes) of the state, and loading one (after the
 * caller has checked MXCSR against MXCSR_VALID). rex_w: the 64-bit
 * instruction-pointer format. */
void x86_fpu_to_fxsave(const struct x86_fpu *f, uint8_t img[512], int rex_w);
void x86_fpu_from_fxsave(struct x86_fpu *f, const uint8_t img[512], int rex_w);

#endif
