/* Lazy arithmetic flags: computed from the last operation only when read. */
#include "config.h"

#include "cpu/x86/cpu.h"

static inline uint32_t parity(uint64_t v)
{
    return __builtin_parity((unsigned)(v & 0xff)) ? 0 : F_PF;
}

static inline uint32_t zf_sf_pf(uint64_t res, unsigned size)
{
    uint64_t m = x86_mask(size);
    uint32_t f = parity(res);
    if ((res & m) == 0)
        f |= F_ZF;
    if ((res >> (size * 8 - 1)) & 1)
        f |= F_SF;
    return f;
}

static inline uint64_t sign(uint64_t v, unsigned size)
{
    return (v >> (size * 8 - 1)) & 1;
}

uint32_t x86_lazy_flags(const struct x86_cpu *c)
{
    const struct x86_lazy *l = &c->lazy;
    unsigned size = l->size;
    uint64_t m = x86_mask(size);
    uint64_t res = l->res & m, src = l->src & m, dst;
    uint32_t f;
    switch (l->op) {
    case CC_EFLAGS:
        return (uint32_t)(c->flags & F_ARITH);
    case CC_ADD:
        dst = (res - src) & m;
        f = zf_sf_pf(res, size) | (res < src ? F_CF : 0) | ((dst ^ src ^ res) & F_AF);
        if (sign((dst ^ res) & (src ^ res), size))
            f |= F_OF;
        return f;
    case CC_ADC: {
        uint64_t cin = l->aux & 1;
        dst = (res - src - cin) & m;
        f = zf_sf_pf(res, size) | ((cin ? res <= src : res < src) ? F_CF : 0) |
            ((dst ^ src ^ res) & F_AF);
        if (sign((dst ^ res) & (src ^ res), size))
            f |= F_OF;
        return f;
    }
    case CC_SUB:
        dst = (res + src) & m;
        f = zf_sf_pf(res, size) | (dst < src ? F_CF : 0) | ((dst ^ src ^ res) & F_AF);
        if (sign((dst ^ src) & (dst ^ res), size))
            f |= F_OF;
        return f;
    case CC_SBB: {
        uint64_t cin = l->aux & 1;
        dst = (res + src + cin) & m;
        f = zf_sf_pf(res, size) | ((cin ? dst <= src : dst < src) ? F_CF : 0) |
            ((dst ^ src ^ res) & F_AF);
        if (sign((dst ^ src) & (dst ^ res), size))
            f |= F_OF;
        return f;
    }
    case CC_NEG:
        /* res = 0 - src */
        f = zf_sf_pf(res, size) | (src != 0 ? F_CF : 0) | ((src ^ res) & F_AF);
        if (res == (1ull << (size * 8 - 1)))
            f |= F_OF;
        return f;
    case CC_LOGIC:
        return zf_sf_pf(res, size);
    case CC_INC:
        f = zf_sf_pf(res, size) | (uint32_t)(l->aux & F_CF) | ((res & 0xf) == 0 ? F_AF : 0);
        if (res == (1ull << (size * 8 - 1)))
            f |= F_OF;
        return f;
    case CC_DEC:
        f = zf_sf_pf(res, size) | (uint32_t)(l->aux & F_CF) | ((res & 0xf) == 0xf ? F_AF : 0);
        if (res == ((1ull << (size * 8 - 1)) - 1))
            f |= F_OF;
        return f;
    case CC_SHL:
        /* src: the value shifted by count - 1 (its top bit went to CF);
         * aux: the original operand. OF is defined for a count of 1 only;
         * Intel computes it from the original's top two bits at any count. */
        f = zf_sf_pf(res, size) | (uint32_t)sign(src, size);
        if (sign(l->aux ^ (l->aux << 1), size))
            f |= F_OF;
        return f;
    case CC_SHR:
        /* src: the value shifted by count - 1 (its bit 0 went to CF); aux:
         * the original operand, whose sign is OF for a count of 1. */
        f = zf_sf_pf(res, size) | (uint32_t)(src & 1);
        if (sign(l->aux, size))
            f |= F_OF;
        return f;
    case CC_SAR:
        return zf_sf_pf(res, size) | (uint32_t)(src & 1);
    case CC_MUL:
    case CC_IMUL:
        /* aux: the high half is significant. SF/ZF/PF/AF are undefined;
         * this model gives what current Intel CPUs do: SF and PF from the
         * low result, ZF and AF clear. */
        f = zf_sf_pf(res, size) & ~(uint32_t)F_ZF;
        if (l->aux)
            f |= F_CF | F_OF;
        return f;
    }
    return 0;
}

bool x86_cond_slow(const struct x86_cpu *c, unsigned cc)
{
    bool r;
    const struct x86_lazy *l = &c->lazy;
    /* ZF and SF follow from the result for every operation (but ZF after
     * mul/imul, which this model keeps clear as Intel does): the
     * loop-closing jnz after dec/sub/add needs nothing else. */
    bool mul = l->op == CC_MUL || l->op == CC_IMUL;
    if (l->op != CC_EFLAGS && ((cc >> 1) == 4 || ((cc >> 1) == 2 && !mul))) {
        uint64_t res = l->res & x86_mask(l->size);
        r = (cc >> 1) == 2 ? res == 0 : (res >> (l->size * 8 - 1)) & 1;
        return (cc & 1) ? !r : r;
    }
    if ((cc >> 1) == 1 && l->op == CC_ADD) {
        r = (l->res & x86_mask(l->size)) < (l->src & x86_mask(l->size));
        return (cc & 1) ? !r : r;
    }
    /* The common cases without computing every flag. */
    if (l->op == CC_SUB || l->op == CC_LOGIC) {
        uint64_t m = x86_mask(l->size);
        uint64_t res = l->res & m;
        switch (cc >> 1) {
        case 2: /* Z */
            r = res == 0;
            return (cc & 1) ? !r : r;
        case 4: /* S */
            r = (res >> (l->size * 8 - 1)) & 1;
            return (cc & 1) ? !r : r;
        case 1: /* B */
            if (l->op == CC_SUB) {
                r = ((res + l->src) & m) < (l->src & m);
                return (cc & 1) ? !r : r;
            }
            break;
        case 3: /* BE */
            if (l->op == CC_SUB) {
                r = ((res + l->src) & m) <= (l->src & m);
                return (cc & 1) ? !r : r;
            }
            break;
        case 6: /* L */
        case 7: /* LE */
            if (l->op == CC_SUB) {
                int64_t a = (int64_t)x86_sext((res + l->src) & m, l->size);
                int64_t b = (int64_t)x86_sext(l->src & m, l->size);
                r = (cc >> 1) == 6 ? a < b : a <= b;
                return (cc & 1) ? !r : r;
            }
            break;
        }
    }
    uint32_t f = (uint32_t)x86_get_flags(c);
    switch (cc >> 1) {
    case 0: r = f & F_OF; break;
    case 1: r = f & F_CF; break;
    case 2: r = f & F_ZF; break;
    case 3: r = f & (F_CF | F_ZF); break;
    case 4: r = f & F_SF; break;
    case 5: r = f & F_PF; break;
    case 6: r = !(f & F_SF) != !(f & F_OF); break;
    default: r = (f & F_ZF) || (!(f & F_SF) != !(f & F_OF)); break;
    }
    return (cc & 1) ? !r : r;
}
