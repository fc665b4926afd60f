/*
 * SSE, SSE2 and MMX semantics: moves, packed integer arithmetic, shuffles,
 * scalar and packed single/double arithmetic, comparisons, conversions,
 * MXCSR, fences.
 *
 * One handler serves an opcode across its mandatory prefixes (none, 66, f3,
 * f2: sse_pfx() below); the integer operations serve both the MMX form (no
 * prefix, 8 bytes, mm registers) and the XMM form (66, 16 bytes).
 *
 * Floating point: every SSE arithmetic instruction is executed by the host
 * CPU's own SSE instruction (inline asm), with the guest's rounding mode,
 * DAZ and FTZ in the host MXCSR and every exception masked; the exception
 * flags it raises are then the guest's. That makes results, flags and the
 * denormal/invalid corner cases exactly the hardware's. It needs an x86-64
 * host (as rdtsc in tcg.c does already); another host needs a softfloat
 * with the SSE NaN rules, DAZ/FTZ and the denormal flag in place of
 * host_fp() and friends.
 *
 * Unmasked exceptions: the destination is left alone, the flags are set in
 * MXCSR and #XM is raised (#UD when CR4.OSXMMEXCPT is clear). Packed
 * instructions report the union of every lane's flags (the SDM's split
 * between pre- and post-computation exceptions across lanes is not
 * modelled).
 */
#include "config.h"

#include "cpu/x86/fpu.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

#if !defined(__x86_64__)
#error "ops_sse.c executes SSE arithmetic on the host: it needs an x86-64 host (or a softfloat)"
#endif

typedef float v4sf __attribute__((vector_size(16)));

/* ---- prefixes, checks, operands ---------------------------------------------- */

/* The mandatory prefix that chose the instruction: 0 none, 1 66, 2 f3, 3 f2. */
static inline unsigned sse_pfx(const struct x86_insn *i)
{
    return i->rep == 0xf3 ? 2 : i->rep == 0xf2 ? 3 : i->osz ? 1 : 0;
}

/* SSE: #UD without CR4.OSFXSR or with CR0.EM, then #NM with CR0.TS. */
enum x86_status x86_sse_check(struct x86_cpu *c)
{
    if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
        return x86_raise(c, X86_UD);
    if (c->cr0 & CR0_TS)
        return x86_raise(c, X86_NM);
    return X86_OK;
}

/* MMX: #UD with CR0.EM, #NM with CR0.TS, #MF for a pending x87 exception. */
static enum x86_status mmx_check(struct x86_cpu *c)
{
    if (c->cr0 & CR0_EM)
        return x86_raise(c, X86_UD);
    if (c->cr0 & CR0_TS)
        return x86_raise(c, X86_NM);
    if (c->fpu.fsw & FSW_ES)
        return x86_raise(c, X86_MF);
    return X86_OK;
}

/* Every MMX instruction but emms: TOP 0, every tag valid. */
static inline void mmx_enter(struct x86_cpu *c)
{
    c->fpu.fsw &= (uint16_t)~(7u << FSW_TOP_SHIFT);
    c->fpu.ftw = 0xff;
}

static inline void mm_write(struct x86_cpu *c, unsigned r, uint64_t v)
{
    c->fpu.r[r & 7].mant = v;
    c->fpu.r[r & 7].sexp = 0xffff;
}

static inline union x86_xmm *xr(struct x86_cpu *c, unsigned r)
{
    return &c->fpu.xmm[r & 15];
}

/* The linear address of the memory operand, `size` bytes; with `align`,
 * #GP(0) unless it is 16-byte aligned. */
static enum x86_status mem_lin(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
                               bool write, bool align, uint64_t *lin)
{
    enum x86_status st = x86_linear(c, i->seg, x86_ea(c, i), size, write, lin);
    if (st)
        return st;
    if (align && (*lin & 15))
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

static enum x86_status mem_load(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
                                bool align, void *buf)
{
    uint64_t lin;
    enum x86_status st = mem_lin(c, i, size, false, align, &lin);
    if (st)
        return st;
    return x86_load_lin(c, lin, size, buf);
}

static enum x86_status mem_store(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
                                 bool align, const void *buf)
{
    uint64_t lin;
    enum x86_status st = mem_lin(c, i, size, true, align, &lin);
    if (st)
        return st;
    return x86_store_lin(c, lin, size, buf);
}

/* The r/m source of an XMM instruction: the register, or `size` bytes of
 * memory (zero-extended to 16). */
static enum x86_status src_xmm(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
                               bool align, union x86_xmm *v)
{
    if (!i->mem) {
        *v = *xr(c, i->rm);
        return X86_OK;
    }
    memset(v, 0, sizeof *v);
    return mem_load(c, i, size, align, v);
}

/* The r/m source of an MMX instruction: mm register or m64. */
static enum x86_status src_mm(struct x86_cpu *c, const struct x86_insn *i, union x86_xmm *v)
{
    memset(v, 0, sizeof *v);
    if (!i->mem) {
        v->q[0] = c->fpu.r[i->rm & 7].mant;
        return X86_OK;
    }
    return mem_load(c, i, 8, false, v);
}

/* Both forms: checks, then the source (n = 8 or 16 bytes). */
static enum x86_status int_prologue(struct x86_cpu *c, const struct x86_insn *i, bool mmx,
                                    union x86_xmm *src)
{
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    return mmx ? src_mm(c, i, src) : src_xmm(c, i, 16, true, src);
}

static void int_epilogue(struct x86_cpu *c, const struct x86_insn *i, bool mmx,
                         const union x86_xmm *res)
{
    if (mmx) {
        mmx_enter(c);
        mm_write(c, i->reg, res->q[0]);
    } else {
        *xr(c, i->reg) = *res;
    }
}

static void dst_get(struct x86_cpu *c, const struct x86_insn *i, bool mmx, union x86_xmm *d)
{
    if (mmx) {
        memset(d, 0, sizeof *d);
        d->q[0] = c->fpu.r[i->reg & 7].mant;
    } else {
        *d = *xr(c, i->reg);
    }
}

/* ---- moves ---------------------------------------------------------------------- */

/* 0f 10/11 movups movupd movss movsd; 0f 28/29 movaps movapd; 0f 6f/7f
 * movdqa movdqu (66/f3); 0f 2b movntps movntpd; 66 0f e7 movntdq. */
X86_OP(op_sse_mov)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    bool store = op == 0x11 || op == 0x29 || op == 0x7f || op == 0x2b || op == 0xe7;
    bool align = op == 0x28 || op == 0x29 || op == 0x2b || op == 0xe7 ||
                 ((op == 0x6f || op == 0x7f) && p == 1);
    if ((op == 0x2b || op == 0xe7) && !i->mem)
        return x86_raise(c, X86_UD);
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm v;
    if ((op == 0x10 || op == 0x11) && p >= 2) {
        /* movss (f3) / movsd (f2) */
        unsigned n = p == 2 ? 4 : 8;
        if (store) {
            if (!i->mem) {
                memcpy(xr(c, i->rm), xr(c, i->reg), n);
                return X86_OK;
            }
            return mem_store(c, i, n, false, xr(c, i->reg));
        }
        if (!i->mem) {
            memcpy(xr(c, i->reg), xr(c, i->rm), n);
            return X86_OK;
        }
        st = src_xmm(c, i, n, false, &v);
        if (st)
            return st;
        *xr(c, i->reg) = v; /* from memory: the rest is zeroed */
        return X86_OK;
    }
    if (store) {
        if (!i->mem) {
            *xr(c, i->rm) = *xr(c, i->reg);
            return X86_OK;
        }
        return mem_store(c, i, 16, align, xr(c, i->reg));
    }
    st = src_xmm(c, i, 16, align, &v);
    if (st)
        return st;
    *xr(c, i->reg) = v;
    return X86_OK;
}

/* 0f 12/13/16/17: movlps movhlps movlpd (12/13) movhps movlhps movhpd (16/17). */
X86_OP(op_sse_movhl)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    bool store = op & 1, high = op >= 0x16;
    if ((store || p == 1) && !i->mem)
        return x86_raise(c, X86_UD);
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm *d = xr(c, i->reg);
    if (store)
        return mem_store(c, i, 8, false, &d->q[high]);
    if (!i->mem) {
        /* movhlps: low <- source high; movlhps: high <- source low */
        d->q[high] = xr(c, i->rm)->q[!high];
        return X86_OK;
    }
    uint64_t q = 0;
    st = mem_load(c, i, 8, false, &q);
    if (st)
        return st;
    d->q[high] = q;
    return X86_OK;
}

/* 0f 6e movd/movq mm, r/m32/64; 66 0f 6e xmm; 0f 7e / 66 0f 7e the other
 * way; f3 0f 7e movq xmm, xmm/m64; 66 0f d6 movq xmm/m64, xmm; 0f 6f/7f
 * movq mm, mm/m64 and back; 0f e7 movntq. */
X86_OP(op_sse_movq)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    bool mmx = p == 0;
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    unsigned n = (i->rex & 8) ? 8 : 4;
    uint64_t v = 0;
    switch (op) {
    case 0x6e: /* movd/movq into mm/xmm */
        st = x86_rm_read(c, i, n, &v);
        if (st)
            return st;
        if (mmx) {
            mmx_enter(c);
            mm_write(c, i->reg, v);
        } else {
            union x86_xmm *d = xr(c, i->reg);
            d->q[0] = v;
            d->q[1] = 0;
        }
        return X86_OK;
    case 0x7e:
        if (p == 2) { /* movq xmm, xmm/m64 */
            union x86_xmm s;
            st = src_xmm(c, i, 8, false, &s);
            if (st)
                return st;
            s.q[1] = 0;
            *xr(c, i->reg) = s;
            return X86_OK;
        }
        v = mmx ? c->fpu.r[i->reg & 7].mant : xr(c, i->reg)->q[0];
        st = x86_rm_write(c, i, n, v & x86_mask(n));
        if (st)
            return st;
        if (mmx)
            mmx_enter(c);
        return X86_OK;
    case 0xd6: /* movq xmm/m64, xmm (66); movq2dq xmm, mm (f3); movdq2q mm, xmm (f2) */
        if (p >= 2) {
            if (i->mem)
                return x86_raise(c, X86_UD);
            if (c->fpu.fsw & FSW_ES)
                return x86_raise(c, X86_MF);
            mmx_enter(c);
            if (p == 2) {
                union x86_xmm *d = xr(c, i->reg);
                d->q[0] = c->fpu.r[i->rm & 7].mant;
                d->q[1] = 0;
            } else {
                mm_write(c, i->reg, xr(c, i->rm)->q[0]);
            }
            return X86_OK;
        }
        if (!i->mem) {
            union x86_xmm *d = xr(c, i->rm);
            d->q[0] = xr(c, i->reg)->q[0];
            d->q[1] = 0;
            return X86_OK;
        }
        return mem_store(c, i, 8, false, &xr(c, i->reg)->q[0]);
    case 0x6f: /* movq mm, mm/m64 */ {
        union x86_xmm s;
        st = src_mm(c, i, &s);
        if (st)
            return st;
        mmx_enter(c);
        mm_write(c, i->reg, s.q[0]);
        return X86_OK;
    }
    default: /* 7f, e7: movq mm/m64, mm */
        if (!i->mem && op == 0xe7)
            return x86_raise(c, X86_UD);
        v = c->fpu.r[i->reg & 7].mant;
        if (!i->mem) {
            mmx_enter(c);
            mm_write(c, i->rm, v);
            return X86_OK;
        }
        st = mem_store(c, i, 8, false, &v);
        if (st)
            return st;
        mmx_enter(c);
        return X86_OK;
    }
}

/* 0f c3 movnti m32/64, r32/64. */
X86_OP(op_movnti)
{
    if (!i->mem)
        return x86_raise(c, X86_UD);
    unsigned n = (i->rex & 8) ? 8 : 4;
    return x86_store(c, i->seg, x86_ea(c, i), n, x86_get_reg(c, i->reg, n));
}

/* 0f 77 emms: every tag empty. */
X86_OP(op_emms)
{
    enum x86_status st = mmx_check(c);
    if (st)
        return st;
    c->fpu.ftw = 0;
    return X86_OK;
}

/* ---- packed integer arithmetic ------------------------------------------------ */

static inline int8_t sat8(int v) { return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }
static inline uint8_t usat8(int v) { return (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v); }
static inline int16_t sat16(int v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }
static inline uint16_t usat16(int v) { return (uint16_t)(v > 65535 ? 65535 : v < 0 ? 0 : v); }

static uint64_t shift_count(const union x86_xmm *s)
{
    return s->q[0];
}

/* Shifts of every lane of `bits` by `cnt` (kind: 0 right logical, 1 right
 * arithmetic, 2 left). n: 8 or 16 bytes. */
static void lane_shift(union x86_xmm *d, unsigned n, unsigned bits, unsigned kind, uint64_t cnt)
{
    unsigned lanes = n * 8 / bits;
    for (unsigned k = 0; k < lanes; k++) {
        switch (bits) {
        case 16:
            if (kind == 1)
                d->sw[k] = (int16_t)(d->sw[k] >> (cnt > 15 ? 15 : cnt));
            else if (cnt > 15)
                d->w[k] = 0;
            else
                d->w[k] = (uint16_t)(kind ? d->w[k] << cnt : d->w[k] >> cnt);
            break;
        case 32:
            if (kind == 1)
                d->sd[k] = d->sd[k] >> (cnt > 31 ? 31 : cnt);
            else if (cnt > 31)
                d->d[k] = 0;
            else
                d->d[k] = kind ? d->d[k] << cnt : d->d[k] >> cnt;
            break;
        default:
            if (cnt > 63)
                d->q[k] = 0;
            else
                d->q[k] = kind ? d->q[k] << cnt : d->q[k] >> cnt;
            break;
        }
    }
}

static void byte_shift(union x86_xmm *d, unsigned cnt, bool left)
{
    union x86_xmm r;
    memset(&r, 0, sizeof r);
    if (cnt > 16)
        cnt = 16;
    for (unsigned k = 0; k < 16; k++) {
        if (left && k >= cnt)
            r.b[k] = d->b[k - cnt];
        else if (!left && k + cnt < 16)
            r.b[k] = d->b[k + cnt];
    }
    *d = r;
}

/* The packed integer operation `op` (its 0f opcode byte) on d and s, n bytes. */
static void int_op(unsigned op, union x86_xmm *d, const union x86_xmm *s, unsigned n)
{
    union x86_xmm r = *d;
    unsigned nb = n, nw = n / 2, nd = n / 4, nq = n / 8;
    switch (op) {
    case 0x60: case 0x61: case 0x62: case 0x6c: /* punpckl* */
    case 0x68: case 0x69: case 0x6a: case 0x6d: { /* punpckh* */
        unsigned sz = op == 0x60 || op == 0x68 ? 1 : op == 0x61 || op == 0x69 ? 2
                    : op == 0x62 || op == 0x6a ? 4 : 8;
        unsigned half = n / 2, from = op >= 0x68 && op != 0x6c ? half : 0;
        for (unsigned k = 0; k < half / sz; k++) {
            memcpy(&r.b[2 * k * sz], &d->b[from + k * sz], sz);
            memcpy(&r.b[(2 * k + 1) * sz], &s->b[from + k * sz], sz);
        }
        break;
    }
    case 0x63: /* packsswb */
        for (unsigned k = 0; k < nw; k++) {
            r.sb[k] = sat8(d->sw[k]);
            r.sb[k + nw] = sat8(s->sw[k]);
        }
        break;
    case 0x67: /* packuswb */
        for (unsigned k = 0; k < nw; k++) {
            r.b[k] = usat8(d->sw[k]);
            r.b[k + nw] = usat8(s->sw[k]);
        }
        break;
    case 0x6b: /* packssdw */
        for (unsigned k = 0; k < nd; k++) {
            r.sw[k] = sat16(d->sd[k]);
            r.sw[k + nd] = sat16(s->sd[k]);
        }
        break;
    case 0x64: for (unsigned k = 0; k < nb; k++) r.b[k] = d->sb[k] > s->sb[k] ? 0xff : 0; break;
    case 0x65: for (unsigned k = 0; k < nw; k++) r.w[k] = d->sw[k] > s->sw[k] ? 0xffff : 0; break;
    case 0x66: for (unsigned k = 0; k < nd; k++) r.d[k] = d->sd[k] > s->sd[k] ? ~0u : 0; break;
    case 0x74: for (unsigned k = 0; k < nb; k++) r.b[k] = d->b[k] == s->b[k] ? 0xff : 0; break;
    case 0x75: for (unsigned k = 0; k < nw; k++) r.w[k] = d->w[k] == s->w[k] ? 0xffff : 0; break;
    case 0x76: for (unsigned k = 0; k < nd; k++) r.d[k] = d->d[k] == s->d[k] ? ~0u : 0; break;
    case 0xd1: lane_shift(&r, n, 16, 0, shift_count(s)); break;
    case 0xd2: lane_shift(&r, n, 32, 0, shift_count(s)); break;
    case 0xd3: lane_shift(&r, n, 64, 0, shift_count(s)); break;
    case 0xe1: lane_shift(&r, n, 16, 1, shift_count(s)); break;
    case 0xe2: lane_shift(&r, n, 32, 1, shift_count(s)); break;
    case 0xf1: lane_shift(&r, n, 16, 2, shift_count(s)); break;
    case 0xf2: lane_shift(&r, n, 32, 2, shift_count(s)); break;
    case 0xf3: lane_shift(&r, n, 64, 2, shift_count(s)); break;
    case 0xd4: for (unsigned k = 0; k < nq; k++) r.q[k] = d->q[k] + s->q[k]; break;
    case 0xd5: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)(d->sw[k] * s->sw[k]); break;
    case 0xd8: for (unsigned k = 0; k < nb; k++) r.b[k] = usat8(d->b[k] - s->b[k]); break;
    case 0xd9: for (unsigned k = 0; k < nw; k++) r.w[k] = usat16(d->w[k] - s->w[k]); break;
    case 0xda: for (unsigned k = 0; k < nb; k++) r.b[k] = d->b[k] < s->b[k] ? d->b[k] : s->b[k]; break;
    case 0xdb: case 0x54: for (unsigned k = 0; k < nq; k++) r.q[k] = d->q[k] & s->q[k]; break;
    case 0xdc: for (unsigned k = 0; k < nb; k++) r.b[k] = usat8(d->b[k] + s->b[k]); break;
    case 0xdd: for (unsigned k = 0; k < nw; k++) r.w[k] = usat16(d->w[k] + s->w[k]); break;
    case 0xde: for (unsigned k = 0; k < nb; k++) r.b[k] = d->b[k] > s->b[k] ? d->b[k] : s->b[k]; break;
    case 0xdf: case 0x55: for (unsigned k = 0; k < nq; k++) r.q[k] = ~d->q[k] & s->q[k]; break;
    case 0xe0: for (unsigned k = 0; k < nb; k++) r.b[k] = (uint8_t)((d->b[k] + s->b[k] + 1) >> 1); break;
    case 0xe3: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)((d->w[k] + s->w[k] + 1) >> 1); break;
    case 0xe4: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)(((uint32_t)d->w[k] * s->w[k]) >> 16); break;
    case 0xe5: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)(((int32_t)d->sw[k] * s->sw[k]) >> 16); break;
    case 0xe8: for (unsigned k = 0; k < nb; k++) r.sb[k] = sat8(d->sb[k] - s->sb[k]); break;
    case 0xe9: for (unsigned k = 0; k < nw; k++) r.sw[k] = sat16(d->sw[k] - s->sw[k]); break;
    case 0xea: for (unsigned k = 0; k < nw; k++) r.sw[k] = d->sw[k] < s->sw[k] ? d->sw[k] : s->sw[k]; break;
    case 0xeb: case 0x56: for (unsigned k = 0; k < nq; k++) r.q[k] = d->q[k] | s->q[k]; break;
    case 0xec: for (unsigned k = 0; k < nb; k++) r.sb[k] = sat8(d->sb[k] + s->sb[k]); break;
    case 0xed: for (unsigned k = 0; k < nw; k++) r.sw[k] = sat16(d->sw[k] + s->sw[k]); break;
    case 0xee: for (unsigned k = 0; k < nw; k++) r.sw[k] = d->sw[k] > s->sw[k] ? d->sw[k] : s->sw[k]; break;
    case 0xef: case 0x57: for (unsigned k = 0; k < nq; k++) r.q[k] = d->q[k] ^ s->q[k]; break;
    case 0xf4: for (unsigned k = 0; k < nq; k++) r.q[k] = (uint64_t)d->d[2 * k] * s->d[2 * k]; break;
    case 0xf5:
        for (unsigned k = 0; k < nd; k++)
            r.d[k] = (uint32_t)((int32_t)d->sw[2 * k] * s->sw[2 * k] +
                                (int32_t)d->sw[2 * k + 1] * s->sw[2 * k + 1]);
        break;
    case 0xf6: /* psadbw */
        for (unsigned k = 0; k < nq; k++) {
            unsigned sum = 0;
            for (unsigned j = 0; j < 8; j++) {
                int a = d->b[8 * k + j], b = s->b[8 * k + j];
                sum += (unsigned)(a > b ? a - b : b - a);
            }
            r.q[k] = sum;
        }
        break;
    case 0xf8: for (unsigned k = 0; k < nb; k++) r.b[k] = (uint8_t)(d->b[k] - s->b[k]); break;
    case 0xf9: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)(d->w[k] - s->w[k]); break;
    case 0xfa: for (unsigned k = 0; k < nd; k++) r.d[k] = d->d[k] - s->d[k]; break;
    case 0xfb: for (unsigned k = 0; k < nq; k++) r.q[k] = d->q[k] - s->q[k]; break;
    case 0xfc: for (unsigned k = 0; k < nb; k++) r.b[k] = (uint8_t)(d->b[k] + s->b[k]); break;
    case 0xfd: for (unsigned k = 0; k < nw; k++) r.w[k] = (uint16_t)(d->w[k] + s->w[k]); break;
    case 0xfe: for (unsigned k = 0; k < nd; k++) r.d[k] = d->d[k] + s->d[k]; break;
    default: break;
    }
    *d = r;
}

/* The packed integer and bitwise operations, MMX (no prefix) or XMM (66);
 * 0f 54-57 andps/andnps/orps/xorps and their pd forms are XMM either way. */
X86_OP(op_sse_int)
{
    unsigned op = i->opcode & 0xff;
    bool mmx = sse_pfx(i) == 0 && (op < 0x54 || op > 0x57);
    union x86_xmm s, d;
    enum x86_status st = int_prologue(c, i, mmx, &s);
    if (st)
        return st;
    dst_get(c, i, mmx, &d);
    int_op(op, &d, &s, mmx ? 8 : 16);
    int_epilogue(c, i, mmx, &d);
    return X86_OK;
}

/* 0f 71/72/73 /2 /4 /6 (and 66 0f 73 /3 /7): shifts by imm8, register only. */
X86_OP(op_sse_shift_imm)
{
    unsigned op = i->opcode & 0xff;
    bool mmx = sse_pfx(i) == 0;
    if (i->mem || (mmx && op == 0x73 && (i->sub == 3 || i->sub == 7)))
        return x86_raise(c, X86_UD);
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm d;
    if (mmx) {
        memset(&d, 0, sizeof d);
        d.q[0] = c->fpu.r[i->rm & 7].mant;
    } else {
        d = *xr(c, i->rm);
    }
    unsigned bits = op == 0x71 ? 16 : op == 0x72 ? 32 : 64;
    unsigned kind = i->sub == 2 ? 0 : i->sub == 4 ? 1 : 2;
    uint64_t cnt = i->imm & 0xff;
    if (op == 0x73 && (i->sub == 3 || i->sub == 7))
        byte_shift(&d, (unsigned)cnt, i->sub == 7);
    else
        lane_shift(&d, mmx ? 8 : 16, bits, kind, cnt);
    if (mmx) {
        mmx_enter(c);
        mm_write(c, i->rm, d.q[0]);
    } else {
        *xr(c, i->rm) = d;
    }
    return X86_OK;
}

/* 0f 70: pshufw (mmx), pshufd (66), pshufhw (f3), pshuflw (f2). */
X86_OP(op_pshuf)
{
    unsigned p = sse_pfx(i), imm = (unsigned)i->imm;
    bool mmx = p == 0;
    union x86_xmm s, r;
    enum x86_status st = int_prologue(c, i, mmx, &s);
    if (st)
        return st;
    r = s;
    switch (p) {
    case 0:
        for (unsigned k = 0; k < 4; k++)
            r.w[k] = s.w[(imm >> (2 * k)) & 3];
        break;
    case 1:
        for (unsigned k = 0; k < 4; k++)
            r.d[k] = s.d[(imm >> (2 * k)) & 3];
        break;
    case 2:
        for (unsigned k = 0; k < 4; k++)
            r.w[4 + k] = s.w[4 + ((imm >> (2 * k)) & 3)];
        break;
    default:
        for (unsigned k = 0; k < 4; k++)
            r.w[k] = s.w[(imm >> (2 * k)) & 3];
        break;
    }
    int_epilogue(c, i, mmx, &r);
    return X86_OK;
}

/* 0f c6 shufps / 66 0f c6 shufpd; 0f 14/15 unpcklps/unpckhps (+pd). */
X86_OP(op_shufp)
{
    unsigned op = i->opcode & 0xff, imm = (unsigned)i->imm;
    bool pd = sse_pfx(i) == 1;
    union x86_xmm s, d, r;
    enum x86_status st = int_prologue(c, i, false, &s);
    if (st)
        return st;
    d = *xr(c, i->reg);
    if (op == 0xc6) {
        if (pd) {
            r.q[0] = d.q[imm & 1];
            r.q[1] = s.q[(imm >> 1) & 1];
        } else {
            r.d[0] = d.d[imm & 3];
            r.d[1] = d.d[(imm >> 2) & 3];
            r.d[2] = s.d[(imm >> 4) & 3];
            r.d[3] = s.d[(imm >> 6) & 3];
        }
    } else if (pd) {
        unsigned h = op == 0x15;
        r.q[0] = d.q[h];
        r.q[1] = s.q[h];
    } else {
        unsigned h = op == 0x15 ? 2 : 0;
        r.d[0] = d.d[h];
        r.d[1] = s.d[h];
        r.d[2] = d.d[h + 1];
        r.d[3] = s.d[h + 1];
    }
    *xr(c, i->reg) = r;
    return X86_OK;
}

/* 0f c4 pinsrw mm/xmm, r32/m16, imm8. */
X86_OP(op_pinsrw)
{
    bool mmx = sse_pfx(i) == 0;
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    uint64_t v;
    st = x86_rm_read(c, i, 2, &v);
    if (st)
        return st;
    union x86_xmm d;
    dst_get(c, i, mmx, &d);
    d.w[i->imm & (mmx ? 3 : 7)] = (uint16_t)v;
    int_epilogue(c, i, mmx, &d);
    return X86_OK;
}

/* 0f c5 pextrw r32, mm/xmm, imm8 (register only). */
X86_OP(op_pextrw)
{
    bool mmx = sse_pfx(i) == 0;
    if (i->mem)
        return x86_raise(c, X86_UD);
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    uint16_t w;
    if (mmx) {
        w = (uint16_t)(c->fpu.r[i->rm & 7].mant >> (16 * (i->imm & 3)));
        mmx_enter(c);
    } else {
        w = xr(c, i->rm)->w[i->imm & 7];
    }
    x86_set_reg(c, i->reg, (i->rex & 8) ? 8 : 4, w);
    return X86_OK;
}

/* 0f d7 pmovmskb, 0f 50 movmskps / 66 0f 50 movmskpd (register only). */
X86_OP(op_movmsk)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    bool mmx = op == 0xd7 && p == 0;
    if (i->mem)
        return x86_raise(c, X86_UD);
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm s;
    memset(&s, 0, sizeof s);
    if (mmx) {
        s.q[0] = c->fpu.r[i->rm & 7].mant;
        mmx_enter(c);
    } else {
        s = *xr(c, i->rm);
    }
    uint32_t m = 0;
    if (op == 0xd7) {
        for (unsigned k = 0; k < (mmx ? 8u : 16u); k++)
            m |= (uint32_t)(s.b[k] >> 7) << k;
    } else if (p == 1) {
        m = (uint32_t)(s.q[0] >> 63) | (uint32_t)(s.q[1] >> 63) << 1;
    } else {
        for (unsigned k = 0; k < 4; k++)
            m |= (s.d[k] >> 31) << k;
    }
    x86_set_reg(c, i->reg, (i->rex & 8) ? 8 : 4, m);
    return X86_OK;
}

/* 0f f7 maskmovq / 66 0f f7 maskmovdqu: the bytes whose mask byte has bit 7
 * go to DS:rDI (segment override allowed). */
X86_OP(op_maskmov)
{
    bool mmx = sse_pfx(i) == 0;
    if (i->mem)
        return x86_raise(c, X86_UD);
    enum x86_status st = mmx ? mmx_check(c) : x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm v, m;
    memset(&v, 0, sizeof v);
    memset(&m, 0, sizeof m);
    unsigned n = mmx ? 8 : 16;
    if (mmx) {
        v.q[0] = c->fpu.r[i->reg & 7].mant;
        m.q[0] = c->fpu.r[i->rm & 7].mant;
    } else {
        v = *xr(c, i->reg);
        m = *xr(c, i->rm);
    }
    uint64_t base = c->regs[R_DI] & x86_addr_mask(i->addrsize);
    for (unsigned k = 0; k < n; k++) {
        if (!(m.b[k] & 0x80))
            continue;
        st = x86_store(c, i->seg, (base + k) & x86_addr_mask(i->addrsize), 1, v.b[k]);
        if (st)
            return st;
    }
    if (mmx)
        mmx_enter(c);
    return X86_OK;
}

/* ---- floating point on the host's SSE ------------------------------------------------ */

static inline uint32_t host_mxcsr_get(void)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

static inline void host_mxcsr_set(uint32_t m)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(m));
}

/* Enter the guest's rounding, DAZ and FZ with every exception masked and
 * no flag set; returns the host's MXCSR for host_leave. */
static inline uint32_t host_enter(const struct x86_cpu *c)
{
    uint32_t h = host_mxcsr_get();
    host_mxcsr_set((c->fpu.mxcsr & (MXCSR_RC | MXCSR_FZ | MXCSR_DAZ)) | MXCSR_MASKS);
    return h;
}

/* The exception flags raised since host_enter; the host's MXCSR is back. */
static inline uint32_t host_leave(uint32_t h)
{
    uint32_t f = host_mxcsr_get() & MXCSR_FLAGS;
    host_mxcsr_set(h);
    return f;
}

/* Account for raised flags: masked ones accumulate in MXCSR; an unmasked
 * one raises #XM (or #UD without CR4.OSXMMEXCPT) and the caller must leave
 * the destination alone. */
static enum x86_status sse_flags(struct x86_cpu *c, uint32_t f)
{
    c->fpu.mxcsr |= f;
    if (f & ~(c->fpu.mxcsr >> 7) & MXCSR_FLAGS)
        return x86_raise(c, (c->cr4 & CR4_OSXMMEXCPT) ? X86_XM : X86_UD);
    return X86_OK;
}

#define FP2(insn) __asm__ volatile(insn " %1, %0" : "+x"(a) : "x"(b))

/* 0f 51-53, 58-5f (but 5a 5b): sqrt rsqrt rcp add mul sub min div max, in
 * ps (none), pd (66), ss (f3), sd (f2) forms. */
X86_OP(op_sse_fp)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    if ((op == 0x52 || op == 0x53) && (p & 1)) /* no rsqrtpd/rcpsd */
        return x86_raise(c, X86_UD);
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    static const uint8_t size[4] = { 16, 16, 4, 8 };
    union x86_xmm s;
    st = src_xmm(c, i, size[p], p < 2, &s);
    if (st)
        return st;
    v4sf a, b;
    memcpy(&a, xr(c, i->reg), 16);
    memcpy(&b, &s, 16);
    uint32_t h = host_enter(c);
    switch (op << 2 | p) {
    case 0x51 << 2 | 0: FP2("sqrtps"); break;
    case 0x51 << 2 | 1: FP2("sqrtpd"); break;
    case 0x51 << 2 | 2: FP2("sqrtss"); break;
    case 0x51 << 2 | 3: FP2("sqrtsd"); break;
    case 0x52 << 2 | 0: FP2("rsqrtps"); break;
    case 0x52 << 2 | 2: FP2("rsqrtss"); break;
    case 0x53 << 2 | 0: FP2("rcpps"); break;
    case 0x53 << 2 | 2: FP2("rcpss"); break;
    case 0x58 << 2 | 0: FP2("addps"); break;
    case 0x58 << 2 | 1: FP2("addpd"); break;
    case 0x58 << 2 | 2: FP2("addss"); break;
    case 0x58 << 2 | 3: FP2("addsd"); break;
    case 0x59 << 2 | 0: FP2("mulps"); break;
    case 0x59 << 2 | 1: FP2("mulpd"); break;
    case 0x59 << 2 | 2: FP2("mulss"); break;
    case 0x59 << 2 | 3: FP2("mulsd"); break;
    case 0x5c << 2 | 0: FP2("subps"); break;
    case 0x5c << 2 | 1: FP2("subpd"); break;
    case 0x5c << 2 | 2: FP2("subss"); break;
    case 0x5c << 2 | 3: FP2("subsd"); break;
    case 0x5d << 2 | 0: FP2("minps"); break;
    case 0x5d << 2 | 1: FP2("minpd"); break;
    case 0x5d << 2 | 2: FP2("minss"); break;
    case 0x5d << 2 | 3: FP2("minsd"); break;
    case 0x5e << 2 | 0: FP2("divps"); break;
    case 0x5e << 2 | 1: FP2("divpd"); break;
    case 0x5e << 2 | 2: FP2("divss"); break;
    case 0x5e << 2 | 3: FP2("divsd"); break;
    case 0x5f << 2 | 0: FP2("maxps"); break;
    case 0x5f << 2 | 1: FP2("maxpd"); break;
    case 0x5f << 2 | 2: FP2("maxss"); break;
    case 0x5f << 2 | 3: FP2("maxsd"); break;
    default: break;
    }
    uint32_t f = host_leave(h);
    if ((st = sse_flags(c, f)))
        return st;
    memcpy(xr(c, i->reg), &a, 16);
    return X86_OK;
}

#define CMP8(insn)                                                                      \
    switch (pred) {                                                                     \
    case 0: __asm__ volatile(insn " $0, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 1: __asm__ volatile(insn " $1, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 2: __asm__ volatile(insn " $2, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 3: __asm__ volatile(insn " $3, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 4: __asm__ volatile(insn " $4, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 5: __asm__ volatile(insn " $5, %1, %0" : "+x"(a) : "x"(b)); break;             \
    case 6: __asm__ volatile(insn " $6, %1, %0" : "+x"(a) : "x"(b)); break;             \
    default: __asm__ volatile(insn " $7, %1, %0" : "+x"(a) : "x"(b)); break;            \
    }

/* 0f c2 cmpps/cmppd/cmpss/cmpsd, predicate imm8[2:0]. */
X86_OP(op_sse_cmp)
{
    unsigned p = sse_pfx(i), pred = (unsigned)i->imm & 7;
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    static const uint8_t size[4] = { 16, 16, 4, 8 };
    union x86_xmm s;
    st = src_xmm(c, i, size[p], p < 2, &s);
    if (st)
        return st;
    v4sf a, b;
    memcpy(&a, xr(c, i->reg), 16);
    memcpy(&b, &s, 16);
    uint32_t h = host_enter(c);
    switch (p) {
    case 0: CMP8("cmpps"); break;
    case 1: CMP8("cmppd"); break;
    case 2: CMP8("cmpss"); break;
    default: CMP8("cmpsd"); break;
    }
    uint32_t f = host_leave(h);
    if ((st = sse_flags(c, f)))
        return st;
    memcpy(xr(c, i->reg), &a, 16);
    return X86_OK;
}

/* 0f 2e ucomiss / 66 ucomisd, 0f 2f comiss / 66 comisd: ZF PF CF; OF SF AF
 * cleared. */
X86_OP(op_sse_comi)
{
    unsigned op = i->opcode & 0xff;
    bool pd = sse_pfx(i) == 1;
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    union x86_xmm s;
    st = src_xmm(c, i, pd ? 8 : 4, false, &s);
    if (st)
        return st;
    v4sf a, b;
    memcpy(&a, xr(c, i->reg), 16);
    memcpy(&b, &s, 16);
    bool zf, pf, cf;
    uint32_t h = host_enter(c);
    if (op == 0x2e && !pd)
        __asm__ volatile("ucomiss %3, %4" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf) : "x"(b), "x"(a));
    else if (op == 0x2e)
        __asm__ volatile("ucomisd %3, %4" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf) : "x"(b), "x"(a));
    else if (!pd)
        __asm__ volatile("comiss %3, %4" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf) : "x"(b), "x"(a));
    else
        __asm__ volatile("comisd %3, %4" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf) : "x"(b), "x"(a));
    uint32_t f = host_leave(h);
    if ((st = sse_flags(c, f)))
        return st;
    x86_flush_flags(c);
    c->flags = (c->flags & ~(uint64_t)F_ARITH) | (zf ? F_ZF : 0) | (pf ? F_PF : 0) |
               (cf ? F_CF : 0);
    return X86_OK;
}

/* Conversions: 0f 2a cvtpi2ps/cvtpi2pd/cvtsi2ss/cvtsi2sd; 0f 2c/2d
 * cvt(t)ps2pi/cvt(t)pd2pi/cvt(t)ss2si/cvt(t)sd2si; 0f 5a cvtps2pd/cvtpd2ps/
 * cvtss2sd/cvtsd2ss; 0f 5b cvtdq2ps/cvtps2dq/cvttps2dq; 0f e6 cvttpd2dq (66)
 * cvtdq2pd (f3) cvtpd2dq (f2). The MMX forms run as their dq forms on the
 * low lanes (the host's MMX state is never touched). */
X86_OP(op_sse_cvt)
{
    unsigned op = i->opcode & 0xff, p = sse_pfx(i);
    if (op == 0xe6 && p == 0)
        return x86_raise(c, X86_UD);
    bool w = i->rex & 8;
    /* MMX involvement: cvtpi2ps/pd with a register source; cvt(t)ps2pi/pd2pi. */
    bool mm_src = op == 0x2a && p < 2 && !i->mem;
    bool mm_dst = (op == 0x2c || op == 0x2d) && p < 2;
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    if ((mm_src || mm_dst) && (c->fpu.fsw & FSW_ES))
        return x86_raise(c, X86_MF);
    union x86_xmm s;
    uint64_t gv = 0;
    if (op == 0x2a && p >= 2) {
        st = x86_rm_read(c, i, w ? 8 : 4, &gv);
    } else if (op == 0x2a) {
        if (mm_src) {
            memset(&s, 0, sizeof s);
            s.q[0] = c->fpu.r[i->rm & 7].mant;
        } else {
            memset(&s, 0, sizeof s);
            st = mem_load(c, i, 8, false, &s);
        }
    } else {
        unsigned size;
        switch (op) {
        case 0x2c: case 0x2d: size = p == 0 ? 8 : p == 1 ? 16 : p == 2 ? 4 : 8; break;
        case 0x5a: size = p == 0 ? 8 : p == 1 ? 16 : p == 2 ? 4 : 8; break;
        case 0xe6: size = p == 2 ? 8 : 16; break;
        default: size = 16; break;
        }
        st = src_xmm(c, i, size, size == 16, &s);
    }
    if (st)
        return st;
    if (mm_dst && p == 0)
        s.q[1] = 0; /* cvt(t)ps2pi: two lanes only (the others must raise nothing) */
    v4sf a, b;
    memcpy(&a, xr(c, i->reg), 16);
    memcpy(&b, &s, 16);
    uint64_t gout = 0;
    uint32_t h = host_enter(c);
    switch (op << 2 | p) {
    case 0x2a << 2 | 0: { /* cvtpi2ps: low two lanes, upper kept */
        v4sf t = b;
        __asm__ volatile("cvtdq2ps %1, %0" : "=x"(t) : "x"(b));
        memcpy(&a, &t, 8);
        break;
    }
    case 0x2a << 2 | 1: __asm__ volatile("cvtdq2pd %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x2a << 2 | 2:
        if (w)
            __asm__ volatile("cvtsi2ssq %1, %0" : "+x"(a) : "r"(gv));
        else
            __asm__ volatile("cvtsi2ssl %1, %0" : "+x"(a) : "r"((uint32_t)gv));
        break;
    case 0x2a << 2 | 3:
        if (w)
            __asm__ volatile("cvtsi2sdq %1, %0" : "+x"(a) : "r"(gv));
        else
            __asm__ volatile("cvtsi2sdl %1, %0" : "+x"(a) : "r"((uint32_t)gv));
        break;
    case 0x2c << 2 | 0: __asm__ volatile("cvttps2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x2c << 2 | 1: __asm__ volatile("cvttpd2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x2d << 2 | 0: __asm__ volatile("cvtps2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x2d << 2 | 1: __asm__ volatile("cvtpd2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x2c << 2 | 2:
        if (w)
            __asm__ volatile("cvttss2siq %1, %0" : "=r"(gout) : "x"(b));
        else
            __asm__ volatile("cvttss2si %1, %k0" : "=r"(gout) : "x"(b));
        break;
    case 0x2c << 2 | 3:
        if (w)
            __asm__ volatile("cvttsd2siq %1, %0" : "=r"(gout) : "x"(b));
        else
            __asm__ volatile("cvttsd2si %1, %k0" : "=r"(gout) : "x"(b));
        break;
    case 0x2d << 2 | 2:
        if (w)
            __asm__ volatile("cvtss2siq %1, %0" : "=r"(gout) : "x"(b));
        else
            __asm__ volatile("cvtss2si %1, %k0" : "=r"(gout) : "x"(b));
        break;
    case 0x2d << 2 | 3:
        if (w)
            __asm__ volatile("cvtsd2siq %1, %0" : "=r"(gout) : "x"(b));
        else
            __asm__ volatile("cvtsd2si %1, %k0" : "=r"(gout) : "x"(b));
        break;
    case 0x5a << 2 | 0: __asm__ volatile("cvtps2pd %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x5a << 2 | 1: __asm__ volatile("cvtpd2ps %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x5a << 2 | 2: __asm__ volatile("cvtss2sd %1, %0" : "+x"(a) : "x"(b)); break;
    case 0x5a << 2 | 3: __asm__ volatile("cvtsd2ss %1, %0" : "+x"(a) : "x"(b)); break;
    case 0x5b << 2 | 0: __asm__ volatile("cvtdq2ps %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x5b << 2 | 1: __asm__ volatile("cvtps2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0x5b << 2 | 2: __asm__ volatile("cvttps2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0xe6 << 2 | 1: __asm__ volatile("cvttpd2dq %1, %0" : "=x"(a) : "x"(b)); break;
    case 0xe6 << 2 | 2: __asm__ volatile("cvtdq2pd %1, %0" : "=x"(a) : "x"(b)); break;
    case 0xe6 << 2 | 3: __asm__ volatile("cvtpd2dq %1, %0" : "=x"(a) : "x"(b)); break;
    default: break;
    }
    uint32_t f = host_leave(h);
    if ((st = sse_flags(c, f)))
        return st;
    if ((op == 0x2c || op == 0x2d) && p >= 2) {
        x86_set_reg(c, i->reg, w ? 8 : 4, gout);
    } else if (mm_dst) {
        uint64_t q;
        memcpy(&q, &a, 8);
        mmx_enter(c);
        mm_write(c, i->reg, q);
    } else {
        if (mm_src)
            mmx_enter(c);
        memcpy(xr(c, i->reg), &a, 16);
    }
    return X86_OK;
}

/* ---- 0f ae: MXCSR, fences, clflush (fxsave/fxrstor: ops_fpu.c) ----------------- */

X86_OP(op_ldmxcsr)
{
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    uint64_t v;
    st = x86_load(c, i->seg, x86_ea(c, i), 4, &v);
    if (st)
        return st;
    if (v & ~(uint64_t)MXCSR_VALID)
        return x86_raise_err(c, X86_GP, 0);
    c->fpu.mxcsr = (uint32_t)v;
    return X86_OK;
}

X86_OP(op_stmxcsr)
{
    enum x86_status st = x86_sse_check(c);
    if (st)
        return st;
    return x86_store(c, i->seg, x86_ea(c, i), 4, c->fpu.mxcsr);
}

/* lfence mfence sfence: one vCPU runs at a time under tcg, and its accesses
 * are in program order already. */
X86_OP(op_fence)
{
    (void)c;
    (void)i;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return X86_OK;
}

/* clflush m8: there is no cache to flush. The segment and canonical checks
 * are made; the page is not walked (no #PF, and no read of an MMIO device). */
X86_OP(op_clflush)
{
    uint64_t lin;
    return x86_linear(c, i->seg, x86_ea(c, i), 1, false, &lin);
}
