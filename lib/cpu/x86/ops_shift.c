/*
 * Shifts, rotates and bit operations: the group-2 shifts and rotates,
 * shld/shrd, bt/bts/btr/btc, bsf/bsr/tzcnt/lzcnt, popcnt and bswap.
 *
 * Flags after each (SDM vol. 2). "u" marks what the SDM leaves undefined
 * (the differential tester masks it); in brackets what this model gives
 * there, which is what Intel hardware gives (tests/check_x86_shift.c
 * compares with the host CPU) except where marked "!". "-" = unchanged;
 * n = the masked count; "res" = set from the result.
 *
 *   instruction        CF          OF             SF     ZF     PF       AF
 *   any with n = 0     -           -              -      -      -        -
 *   rol, ror           last out    n=1, else u(a) -      -      -        -
 *   rcl, rcr           last out(b) n=1, else u(a) -      -      -        -
 *   shl/sal            last out(c) n=1, else u(d) res    res    res      u[0]
 *   shr                last out(c) n=1, else u(a) res    res    res      u[0]
 *   sar                last out    n=1, else u(a) res    res    res      u[0]
 *   shld, shrd         last out    n=1, else u(a) res    res    res      u[0]
 *   16-bit shxd, n>16  u(e)        u(a)           u[res] u[res] u[res]   u[0]
 *   bt, bts, btr, btc  the bit     u[-]           u[-]   -      u[-]     u[-]
 *   bsf, bsr           u[0]        u[0]           u[0]   src=0  u(f)     u[0]
 *   tzcnt, lzcnt       src=0       u[0]           u[0]   res=0  u[0]     u[0]
 *   popcnt             0           0              0      src=0  0        0
 *   bswap              -           -              -      -      -        -
 *
 *   (a) Intel sets OF as a 1-bit shift of the original operand would,
 *       whatever the count: rol MSB^MSB-1, ror MSB^LSB, rcl MSB^MSB-1,
 *       rcr MSB^CF, shr MSB, sar 0, shld MSB^MSB-1 of the destination,
 *       shrd MSB(dest)^LSB(src); except rol/ror of a register by an
 *       immediate (c0/c1) other than 1, which keep OF. So does this model.
 *   (b) an 8/16-bit rcl/rcr whose count is a multiple of 9/17 rotates
 *       nothing: CF is kept, and OF too (Intel; so here).
 *   (c) u when n >= the width (8/16-bit operands); here and on Intel, the
 *       bit shifted out last from the zero-extended operand (0 past it).
 *   (d) ! flags.c's CC_SHL gives MSB(result)^CF; Intel gives MSB^MSB-1 of
 *       the original as in (a). The original operand is in lazy.aux, so
 *       flags.c could follow Intel.
 *   (e) the result too: Intel shifts the 48-bit dest:src:dest (see shxd);
 *       CF is the bit shifted out of it last; so does this model.
 *   (f) 1 for a zero source, else the parity of the result (Intel; here).
 *
 * A zero count still reads and writes the operand back, as Intel does: a
 * 32-bit register gets its upper half cleared and a read-only page faults.
 */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"


/* Shifts that give 0 for a count of 64 or more instead of C's undefined. */
static inline uint64_t shl64(uint64_t v, unsigned n)
{
    return n >= 64 ? 0 : v << n;
}

static inline uint64_t shr64(uint64_t v, unsigned n)
{
    return n >= 64 ? 0 : v >> n;
}

static inline uint64_t msb(uint64_t v, unsigned bits)
{
    return (v >> (bits - 1)) & 1;
}

/* Replace CF and OF, keeping the other flags (rotates). of < 0: keep OF. */
static inline uint32_t szp(uint64_t res, unsigned size);

static inline void set_cf_of(struct x86_cpu *c, uint64_t cf, int of)
{
    /* After and/or/xor/test (the usual neighbours of a rotate in hashing
     * and checksum loops) the flags are ZF/SF/PF of the result and the rest
     * clear: made here without the general materialisation. */
    if (c->lazy.op == CC_LOGIC) {
        c->flags = (c->flags & ~(uint64_t)F_ARITH) | szp(c->lazy.res, c->lazy.size);
        c->lazy.op = CC_EFLAGS;
    } else {
        x86_flush_flags(c);
    }
    uint64_t keep = of < 0 ? ~(uint64_t)F_CF : ~(uint64_t)(F_CF | F_OF);
    c->flags = (c->flags & keep) | (cf ? F_CF : 0) | (of > 0 ? F_OF : 0);
}

static inline uint32_t szp(uint64_t res, unsigned size)
{
    uint32_t f = __builtin_parity((unsigned)(res & 0xff)) ? 0 : F_PF;
    if ((res & x86_mask(size)) == 0)
        f |= F_ZF;
    if (msb(res, size * 8))
        f |= F_SF;
    return f;
}

/* Set all six arithmetic flags at once. */
static inline void set_arith(struct x86_cpu *c, uint32_t f)
{
    c->flags = (c->flags & ~(uint64_t)F_ARITH) | f;
    c->lazy.op = CC_EFLAGS;
}

enum { SH_ROL, SH_ROR, SH_RCL, SH_RCR, SH_SHL, SH_SHR, SH_SAL, SH_SAR };

X86_OP(op_shift)
{
    unsigned size = i->opsize, bits = size * 8;
    uint64_t m = x86_mask(size), v, res;
    unsigned n;
    switch (i->opcode & 0xfe) {
    case 0xc0: n = (unsigned)i->imm; break;
    case 0xd0: n = 1; break;
    default: n = (unsigned)c->regs[R_CX]; break;
    }
    n &= size == 8 ? 63 : 31;

    struct x86_rmw w;
    enum x86_status st = x86_rmw_read(c, i, size, &w, &v);
    if (st)
        return st;
    /* A zero count changes no flag, but the operand is still read and
     * written back, as on Intel: a 32-bit register has its upper half
     * cleared and a read-only page faults. */
    if (n == 0)
        return x86_rmw_write(c, i, size, &w, v);

    /* rol/ror of a register by an immediate other than 1 keep OF (Intel). */
    bool keep_of = !i->mem && (i->opcode & 0xfe) == 0xc0 && n != 1;
    switch (i->sub) {
    case SH_ROL: {
        unsigned k = n & (bits - 1);
        res = k ? ((v << k) | (v >> (bits - k))) & m : v;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        set_cf_of(c, res & 1, keep_of ? -1 : (int)(msb(v, bits) ^ msb(v, bits - 1)));
        return X86_OK;
    }
    case SH_ROR: {
        unsigned k = n & (bits - 1);
        res = k ? ((v >> k) | (v << (bits - k))) & m : v;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        set_cf_of(c, msb(res, bits), keep_of ? -1 : (int)(msb(v, bits) ^ (v & 1)));
        return X86_OK;
    }
    case SH_RCL: {
        /* A rotate through CF is a rotate of bits + 1 bits. */
        unsigned k = size == 1 ? n % 9 : size == 2 ? n % 17 : n;
        if (k == 0) /* a whole turn: no flag changes (OF included, as on Intel) */
            return x86_rmw_write(c, i, size, &w, v);
        uint64_t cin = x86_cf(c);
        res = (shl64(v, k) | (cin << (k - 1)) | shr64(v, bits - k + 1)) & m;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        set_cf_of(c, (v >> (bits - k)) & 1, (int)(msb(v, bits) ^ msb(v, bits - 1)));
        return X86_OK;
    }
    case SH_RCR: {
        unsigned k = size == 1 ? n % 9 : size == 2 ? n % 17 : n;
        if (k == 0)
            return x86_rmw_write(c, i, size, &w, v);
        uint64_t cin = x86_cf(c);
        res = (shr64(v, k) | (cin << (bits - k)) | shl64(v, bits - k + 1)) & m;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        set_cf_of(c, (v >> (k - 1)) & 1, (int)(msb(v, bits) ^ cin));
        return X86_OK;
    }
    case SH_SHL:
    case SH_SAL:
        /* n <= 63: the C shifts below are defined for every operand size. */
        res = (v << n) & m;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        x86_set_lazy(c, CC_SHL, size, res, (v << (n - 1)) & m, v);
        return X86_OK;
    case SH_SHR:
        res = v >> n;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        x86_set_lazy(c, CC_SHR, size, res, v >> (n - 1), v);
        return X86_OK;
    default: { /* SH_SAR */
        int64_t s = (int64_t)x86_sext(v, size);
        res = (uint64_t)(s >> n) & m;
        if ((st = x86_rmw_write(c, i, size, &w, res)))
            return st;
        x86_set_lazy(c, CC_SAR, size, res, (uint64_t)(s >> (n - 1)) & m, v);
        return X86_OK;
    }
    }
}

/*
 * shld/shrd. For counts up to the operand width the result is the
 * documented one. A 16-bit operand with a count of 17..31 is undefined by
 * the SDM; Intel hardware shifts the 48-bit value dest:src:dest (left:
 * the result is its top 16 bits after the shift, right: its low 16 bits),
 * which is what the 16-bit path below does for every count (checked
 * against the host for all of them).
 */
static enum x86_status shxd(struct x86_cpu *c, const struct x86_insn *i, bool left)
{
    unsigned size = i->opsize, bits = size * 8;
    uint64_t m = x86_mask(size), d, s = x86_get_reg(c, i->reg, size), res, cf, of;
    unsigned n = (unsigned)((i->opcode & 1) ? c->regs[R_CX] : i->imm);
    n &= size == 8 ? 63 : 31;

    struct x86_rmw w;
    enum x86_status st = x86_rmw_read(c, i, size, &w, &d);
    if (st)
        return st;
    if (n == 0) /* as for the shifts: written back, no flag changed */
        return x86_rmw_write(c, i, size, &w, d);

    if (size == 2) {
        /* 48 bits: dest:src:dest, shifted as one (left: the result is
         * bits 32-n..47-n; right: bits n..n+15). */
        uint64_t wide = (d << 32) | (s << 16) | d;
        if (left) {
            res = (wide >> (32 - n)) & m;
            cf = (wide >> (48 - n)) & 1;
        } else {
            res = (wide >> n) & m;
            cf = (wide >> (n - 1)) & 1;
        }
    } else if (left) {
        res = ((d << n) | shr64(s, bits - n)) & m;
        cf = (d >> (bits - n)) & 1;
    } else {
        res = ((d >> n) | shl64(s, bits - n)) & m;
        cf = (d >> (n - 1)) & 1;
    }
    if ((st = x86_rmw_write(c, i, size, &w, res)))
        return st;
    /* OF: the sign change a 1-bit shift would make, whatever the count
     * (Intel's choice where the SDM leaves it undefined). */
    of = msb(d, bits) ^ (left ? msb(d, bits - 1) : s & 1);
    set_arith(c, szp(res, size) | (cf ? F_CF : 0) | (of ? F_OF : 0));
    return X86_OK;
}

X86_OP(op_shld)
{
    return shxd(c, i, true);
}

X86_OP(op_shrd)
{
    return shxd(c, i, false);
}

enum { BT_BT, BT_BTS, BT_BTR, BT_BTC };

/* The bit operation on a value; CF is the bit before. */
static inline uint64_t bt_apply(unsigned op, uint64_t v, unsigned bit)
{
    uint64_t b = 1ull << bit;
    switch (op) {
    case BT_BTS: return v | b;
    case BT_BTR: return v & ~b;
    case BT_BTC: return v ^ b;
    default: return v;
    }
}

/* bt* on the operand at seg:off (memory) or r/m (register). */
static enum x86_status bt_common(struct x86_cpu *c, const struct x86_insn *i, unsigned op,
                                 uint64_t off, unsigned bit)
{
    unsigned size = i->opsize;
    uint64_t v;
    enum x86_status st;
    if (!i->mem) {
        v = x86_get_reg(c, i->rm, size);
        if (op != BT_BT)
            x86_set_reg(c, i->rm, size, bt_apply(op, v, bit));
    } else {
        uint64_t lin;
        if ((st = x86_linear(c, i->seg, off, size, op != BT_BT, &lin)))
            return st;
        v = 0;
        if ((st = x86_load_lin(c, lin, size, &v)))
            return st;
        if (op != BT_BT) {
            uint64_t nv = bt_apply(op, v, bit);
            if ((st = x86_store_lin(c, lin, size, &nv)))
                return st;
        }
    }
    x86_flush_flags(c);
    c->flags = (c->flags & ~(uint64_t)F_CF) | ((v >> bit) & 1);
    return X86_OK;
}

X86_OP(op_bt_rm_r)
{
    unsigned size = i->opsize, bits = size * 8;
    unsigned op = (i->opcode >> 3) & 3; /* a3 bt, ab bts, b3 btr, bb btc */
    uint64_t sel = x86_get_reg(c, i->reg, size), off = 0;
    if (i->mem) {
        /* The bit offset is signed and reaches beyond the operand: the
         * operand-sized unit it falls in is (offset >> log2(bits)). */
        int64_t so = (int64_t)x86_sext(sel, size);
        int64_t unit = so >> (size == 1 ? 3 : size == 2 ? 4 : size == 4 ? 5 : 6);
        off = (x86_ea(c, i) + (uint64_t)unit * size) & x86_addr_mask(i->addrsize);
    }
    return bt_common(c, i, op, off, (unsigned)(sel & (bits - 1)));
}

X86_OP(op_bt_rm_imm)
{
    unsigned size = i->opsize;
    uint64_t off = i->mem ? x86_ea(c, i) : 0;
    return bt_common(c, i, i->sub & 3, off, (unsigned)(i->imm & (size * 8 - 1)));
}

/* bsf/tzcnt and bsr/lzcnt. */
static enum x86_status bitscan(struct x86_cpu *c, const struct x86_insn *i, bool reverse)
{
    unsigned size = i->opsize, bits = size * 8;
    uint64_t v, res;
    enum x86_status st = x86_rm_read(c, i, size, &v);
    if (st)
        return st;
    if (i->rep == 0xf3) {
        /* tzcnt/lzcnt: defined for every source. */
        if (v == 0)
            res = bits;
        else if (reverse)
            res = (unsigned)__builtin_clzll(v) - (64 - bits);
        else
            res = (unsigned)__builtin_ctzll(v);
        x86_set_reg(c, i->reg, size, res);
        set_arith(c, (v == 0 ? F_CF : 0) | (res == 0 ? F_ZF : 0));
        return X86_OK;
    }
    if (v == 0) {
        /* The destination is left as it was, all 64 bits of it. */
        set_arith(c, F_ZF | F_PF);
        return X86_OK;
    }
    res = reverse ? 63u - (unsigned)__builtin_clzll(v) : (unsigned)__builtin_ctzll(v);
    x86_set_reg(c, i->reg, size, res);
    set_arith(c, szp(res, 8) & F_PF);
    return X86_OK;
}

X86_OP(op_bsf)
{
    return bitscan(c, i, false);
}

X86_OP(op_bsr)
{
    return bitscan(c, i, true);
}

X86_OP(op_popcnt)
{
    uint64_t v;
    enum x86_status st = x86_rm_read(c, i, i->opsize, &v);
    if (st)
        return st;
    x86_set_reg(c, i->reg, i->opsize, (uint64_t)__builtin_popcountll(v));
    set_arith(c, v == 0 ? F_ZF : 0);
    return X86_OK;
}

X86_OP(op_bswap)
{
    unsigned r = i->reg;
    switch (i->opsize) {
    case 8: c->regs[r] = __builtin_bswap64(c->regs[r]); break;
    case 4: c->regs[r] = __builtin_bswap32((uint32_t)c->regs[r]); break;
    default:
        /* 16-bit: undefined by the SDM; Intel clears the low 16 bits. */
        x86_set_reg(c, r, 2, 0);
        break;
    }
    return X86_OK;
}

/* ---- register forms specialised at decode time ------------------------------
 * rol/ror/shl/shr/sar of a 32/64-bit register by an immediate or by 1, with
 * the width and operation fixed at compile time; the same results and flags
 * as op_shift above (its rules (a) and (d) included). */

#define SPEC_SHIFT(name, kind, size)                                              \
    static enum x86_status name(struct x86_cpu *c, const struct x86_insn *i)      \
    {                                                                             \
        const unsigned bits = (size) * 8;                                         \
        const uint64_t m = x86_mask(size);                                        \
        unsigned n = (i->opcode == 0xd1 ? 1u : (unsigned)i->imm) & ((size) == 8 ? 63 : 31); \
        uint64_t v = c->regs[i->rm] & m, res;                                     \
        if (n == 0) {                                                             \
            c->regs[i->rm] = v; /* written back: a 32-bit register's top clears */ \
            return X86_OK;                                                        \
        }                                                                         \
        switch (kind) {                                                           \
        case SH_ROL: {                                                            \
            unsigned k = n & (bits - 1);                                          \
            res = k ? ((v << k) | (v >> (bits - k))) & m : v;                     \
            set_cf_of(c, res & 1, (i->opcode == 0xc1 && n != 1) ? -1              \
                                  : (int)(msb(v, bits) ^ msb(v, bits - 1)));      \
            break;                                                                \
        }                                                                         \
        case SH_ROR: {                                                            \
            unsigned k = n & (bits - 1);                                          \
            res = k ? ((v >> k) | (v << (bits - k))) & m : v;                     \
            set_cf_of(c, msb(res, bits), (i->opcode == 0xc1 && n != 1) ? -1       \
                                         : (int)(msb(v, bits) ^ (v & 1)));        \
            break;                                                                \
        }                                                                         \
        case SH_SHL:                                                              \
            res = (v << n) & m;                                                   \
            x86_set_lazy(c, CC_SHL, size, res, (v << (n - 1)) & m, v);           \
            break;                                                                \
        case SH_SHR:                                                              \
            res = v >> n;                                                         \
            x86_set_lazy(c, CC_SHR, size, res, v >> (n - 1), v);                 \
            break;                                                                \
        default: {                                                                \
            int64_t s = (int64_t)x86_sext(v, size);                               \
            res = (uint64_t)(s >> n) & m;                                         \
            x86_set_lazy(c, CC_SAR, size, res, (uint64_t)(s >> (n - 1)) & m, v);  \
            break;                                                                \
        }                                                                         \
        }                                                                         \
        c->regs[i->rm] = res;                                                     \
        return X86_OK;                                                            \
    }

SPEC_SHIFT(rol_r_4, SH_ROL, 4)
SPEC_SHIFT(rol_r_8, SH_ROL, 8)
SPEC_SHIFT(ror_r_4, SH_ROR, 4)
SPEC_SHIFT(ror_r_8, SH_ROR, 8)
SPEC_SHIFT(shl_r_4, SH_SHL, 4)
SPEC_SHIFT(shl_r_8, SH_SHL, 8)
SPEC_SHIFT(shr_r_4, SH_SHR, 4)
SPEC_SHIFT(shr_r_8, SH_SHR, 8)
SPEC_SHIFT(sar_r_4, SH_SAR, 4)
SPEC_SHIFT(sar_r_8, SH_SAR, 8)

x86_handler x86_specialize_shift(const struct x86_insn *i)
{
    if (i->fn != op_shift || i->mem || (i->opsize != 4 && i->opsize != 8) ||
        (i->opcode != 0xc1 && i->opcode != 0xd1))
        return i->fn;
    bool w = i->opsize == 8;
    switch (i->sub) {
    case SH_ROL: return w ? rol_r_8 : rol_r_4;
    case SH_ROR: return w ? ror_r_8 : ror_r_4;
    case SH_SHL:
    case SH_SAL: return w ? shl_r_8 : shl_r_4;
    case SH_SHR: return w ? shr_r_8 : shr_r_4;
    case SH_SAR: return w ? sar_r_8 : sar_r_4;
    default: return i->fn; /* rcl/rcr read CF: the generic handler */
    }
}
