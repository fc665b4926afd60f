/*
 * difftest_gen: random x86 instruction sequences for the differential oracle.
 *
 * A template builds one *instance*: the instruction under test plus whatever
 * it needs to be safe and meaningful (a `mov` that points a base register
 * into the data page, a divisor that cannot fault, the body a branch skips).
 * While it builds, the generator keeps a static model of the machine: which
 * registers hold values it knows (so memory operands land in the data page),
 * where the stack pointer is, and which arithmetic flags the last instruction
 * to write them left undefined by Intel's SDM. An instance records what it
 * relied on (requirements) and what it did (effects), so any subset of a
 * sequence can be re-checked by dt_validate(): that is what lets the runner
 * minimise a failing sequence without producing invalid ones.
 */
#include "difftest_gen.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- operands ------------------------------------------------------------ */

struct mem {
    int asz;          /* 16, 32 or 64 */
    int seg;          /* segment-override prefix byte, or 0 */
    int base, index;  /* R_NONE, a register, or R_RIP (base) */
    int scale;        /* log2 */
    int dsz;          /* 0, 1, 2 or 4 bytes of displacement */
    int64_t disp;     /* when no relocation */
    int rel;          /* the displacement is relocated: */
    int8_t mult;      /*   addend + mult * page base */
    int64_t addend;
    int pcrel;        /*   minus the end of the instruction */
    int rm16;         /* 16-bit addressing: the r/m code; -1 otherwise */
    int nosib;        /* 32-bit [disp32] as mod 00 r/m 101 */
};

enum { OK_NONE, OK_REG, OK_MEM };
struct op {
    int kind;
    int reg;          /* OK_REG: 0..15, or R_AH..R_BH */
    int byte;         /* OK_REG: an 8-bit register */
    struct mem m;
};

/* prefix flags */
#define PF_66 0x01u
#define PF_67 0x02u
#define PF_F2 0x04u
#define PF_F3 0x08u
#define PF_LOCK 0x10u
#define PF_W 0x20u
#define PF_NONOISE 0x40u

/* how the reg field or opcode register is used */
enum { RK_NONE, RK_DIGIT, RK_REG, RK_REG8, RK_OP, RK_OP8 };

struct ins {
    unsigned pf;
    uint8_t opc[3];
    int nopc;
    int regf, regk;
    const struct op *rm;
    int seg;                 /* an explicit segment prefix (string instructions) */
    uint64_t imm;
    int immsz;
    int imm_rel;             /* the immediate is relocated */
    int8_t imm_mult;
    int64_t imm_add;
    int imm_code;
};

/* ---- the builder --------------------------------------------------------- */

struct bld {
    const struct gen_cfg *cfg;
    int mode;
    uint64_t rs;
    struct inst *in;
    struct rk r[NGPR];
    uint8_t touched[NGPR];
    int64_t rsp_delta;
    int64_t rsp_lo, rsp_hi;
    int rsp_req;
    uint32_t undef0, D, U, R;
    unsigned avoid;          /* never address or set up these registers */
    int fail;
    int formset;
    int legacy8;             /* 8-bit registers without REX: ah..bh possible */
    int last_off;            /* page offset of the last memory operand */
    int last_ins;            /* offset of the last instruction emitted */
};

static uint64_t r64(struct bld *b)
{
    return dt_mix(b->rs++);
}

static unsigned rn(struct bld *b, unsigned n)
{
    return n ? (unsigned)(r64(b) % n) : 0;
}

static int chance(struct bld *b, unsigned n)
{
    return rn(b, n) == 0;
}

static uint64_t wmask(int bits)
{
    return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

static const int wbits_tab[WN] = { 8, 8, 16, 32, 64 };
static int wbits(int w)
{
    return wbits_tab[w];
}

static int wbytes(int w)
{
    return wbits(w) / 8;
}

static unsigned wpf(int w)
{
    return w == W16 ? PF_66 : w == W64 ? PF_W : 0;
}

static int is64(struct bld *b)
{
    return b->mode == DM_LONG64;
}

static int nregs(struct bld *b)
{
    return is64(b) ? 16 : 8;
}

static uint64_t mmask(int mode)
{
    return mode == DM_LONG64 ? ~0ull : 0xffffffffull;
}

static int page_hi(int mode)
{
    return DT_PAGE_LO + ((mode == DM_LONG64 ? DT_SLOTS_LONG64 : DT_SLOTS_PROT32) - 1) * 0x1000;
}

/* Values that find bugs: boundaries, single bits, small numbers, noise. */
static uint64_t ival(struct bld *b, int bits)
{
    uint64_t v;
    switch (rn(b, 10)) {
    case 0: v = rn(b, 4); break;
    case 1: v = -(uint64_t)(1 + rn(b, 3)); break;
    case 2: {
        uint64_t sb = 1ull << (bits - 1);
        uint64_t c[] = { sb, sb - 1, sb + 1, sb - 2, 0, wmask(bits) };
        v = c[rn(b, 6)];
        break;
    }
    case 3: v = 1ull << rn(b, 64); break;
    case 4: v = rn(b, 256); break;
    case 5: v = ~(1ull << rn(b, 64)); break;
    default: v = r64(b); break;
    }
    return v & wmask(bits);
}

static void setform(struct bld *b, int variant, int w, int mem)
{
    b->in->form = (uint16_t)(variant * 16 + w * 2 + (mem ? 1 : 0));
    b->formset = 1;
}

/* ---- the flag model ---------------------------------------------------- */

static uint32_t cur_undef(struct bld *b)
{
    return (b->undef0 & ~b->D) | b->U;
}

/* An instruction that reads `rd`, leaves `def` defined and `ud` undefined. */
static void fx(struct bld *b, uint32_t rd, uint32_t def, uint32_t ud)
{
    b->R |= rd & ~(b->D & ~b->U);
    b->D |= def | ud;
    b->U = (b->U & ~(def | ud)) | ud;
}

static const uint32_t cc_flags[8] = {
    F_OF, F_CF, F_ZF, F_CF | F_ZF, F_SF, F_PF, F_SF | F_OF, F_ZF | F_SF | F_OF,
};

/* ---- registers ----------------------------------------------------------- */

static int pick_reg(struct bld *b, unsigned avoid)
{
    avoid |= 1u << R_SP;
    for (int i = 0; i < 64; i++) {
        int r = (int)rn(b, (unsigned)nregs(b));
        if (!(avoid >> r & 1))
            return r;
    }
    for (int r = 0; r < nregs(b); r++)
        if (!(avoid >> r & 1))
            return r;
    b->fail = 1;
    return R_AX;
}

/* A register read as a source: rsp allowed. */
static int pick_src(struct bld *b, unsigned avoid)
{
    if (!(avoid >> R_SP & 1) && chance(b, 12))
        return R_SP;
    return pick_reg(b, avoid);
}

static int under(int r)
{
    return r >= R_AH && r <= R_BH ? r - R_AH : r;
}

static int is_high8(int r)
{
    return r >= R_AH && r <= R_BH;
}

/* Choose the 8-bit register convention of an instruction: without REX (ah..bh
 * possible, registers 0..7 only) or with (spl..dil, r8b..r15b). */
static void set8(struct bld *b)
{
    b->legacy8 = !is64(b) || chance(b, 2);
    if (b->legacy8 && is64(b))
        b->avoid |= 0xff00u;
}

static int pick_r8(struct bld *b, unsigned avoid, int dest)
{
    if (dest)
        avoid |= 1u << R_SP;    /* spl is rsp */
    for (int i = 0; i < 64; i++) {
        int r;
        if (b->legacy8) {
            r = (int)rn(b, 8);
            if (r >= 4)
                r = R_AH + (r - 4);
        } else {
            r = (int)rn(b, 16);
        }
        if (!(avoid >> under(r) & 1))
            return r;
    }
    b->fail = 1;
    return R_AX;
}

/* Pick a register operand of width w (W8 follows set8()). */
static int pick_gr(struct bld *b, int w, unsigned avoid, int dest)
{
    if (w == W8)
        return pick_r8(b, avoid, dest);
    return dest ? pick_reg(b, avoid) : pick_src(b, avoid);
}

static int wform(int w, int r1, const struct op *o)
{
    if (w != W8)
        return w;
    if (is_high8(r1) || (o && o->kind == OK_REG && o->byte && is_high8(o->reg)))
        return W8H;
    return W8;
}

static void clob(struct bld *b, int reg)
{
    int u = under(reg);
    if (u == R_SP) {
        b->fail = 1;
        return;
    }
    b->r[u].known = 0;
    b->touched[u] = 1;
}

static void setk(struct bld *b, int reg, uint64_t v, int rel)
{
    b->r[reg].known = 1;
    b->r[reg].rel = (uint8_t)rel;
    b->r[reg].v = v & mmask(b->mode);
    b->touched[reg] = 1;
}

static void add_req(struct bld *b, struct req q)
{
    struct inst *in = b->in;
    for (int i = 0; i < in->nreq; i++)
        if (in->req[i].reg == q.reg && in->req[i].kind == q.kind)
            return;
    if (in->nreq >= INST_REQS) {
        b->fail = 1;
        return;
    }
    in->req[in->nreq++] = q;
}

/* The instruction uses this register's value in an address. */
static void use_addr(struct bld *b, int reg)
{
    if (reg < 0 || reg >= NGPR)
        return;
    if (reg == R_SP) {
        add_req(b, (struct req){ .reg = R_SP, .kind = RQ_EXACT, .rel = 1,
                                 .v = (b->r[R_SP].v - (uint64_t)b->rsp_delta) & mmask(b->mode) });
    } else if (!b->touched[reg]) {
        add_req(b, (struct req){ .reg = (uint8_t)reg, .kind = RQ_EXACT, .rel = b->r[reg].rel,
                                 .v = b->r[reg].v });
    }
}

/* The stack must have `down` bytes below and `up` above the current rsp. */
static int stack_room(struct bld *b, int down, int up)
{
    int64_t cur = (int64_t)b->r[R_SP].v;
    if (!is64(b))
        cur = (int32_t)(uint32_t)cur;
    int64_t lo = 64 + down, hi = 4096 - 64 - up;
    if (cur < lo || cur > hi) {
        b->fail = 1;
        return 0;
    }
    int64_t elo = lo - b->rsp_delta, ehi = hi - b->rsp_delta;
    if (!b->rsp_req || elo > b->rsp_lo)
        b->rsp_lo = elo;
    if (!b->rsp_req || ehi < b->rsp_hi)
        b->rsp_hi = ehi;
    b->rsp_req = 1;
    return 1;
}

static void rsp_add(struct bld *b, int d)
{
    b->rsp_delta += d;
    b->r[R_SP].v = (b->r[R_SP].v + (uint64_t)(int64_t)d) & mmask(b->mode);
}

static int stackw(struct bld *b, int w16)
{
    return w16 ? 2 : is64(b) ? 8 : 4;
}

/* ---- the encoder ---------------------------------------------------------- */

static void r8code(int r, int *code, int *rexbit, int *need, int *forbid)
{
    if (is_high8(r)) {
        *code = 4 + (r - R_AH);
        *forbid = 1;
    } else {
        *code = r & 7;
        *rexbit = r >= 8;
        if (r >= 4 && r < 8)
            *need = 1;
    }
}

static void put(uint8_t *buf, int *n, uint64_t v, int size)
{
    for (int i = 0; i < size; i++)
        buf[(*n)++] = (uint8_t)(v >> (8 * i));
}

static void emit_reloc(struct bld *b, uint16_t off, uint8_t size, int8_t mult, int64_t addend,
                       int pcrel, int code)
{
    struct inst *in = b->in;
    if (in->nrel >= INST_RELOCS) {
        b->fail = 1;
        return;
    }
    in->rel[in->nrel++] = (struct reloc){ .off = off, .size = size, .mult = mult,
                                          .addend = addend, .pcrel = (uint8_t)pcrel,
                                          .code = (uint8_t)code };
}

static const uint8_t noise_segs[] = { 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65 };

static void enc(struct bld *b, const struct ins *x)
{
    if (b->fail)
        return;
    uint8_t buf[40];
    int n = 0;
    int rexw = !!(x->pf & PF_W), rexr = 0, rexx = 0, rexb = 0, need = 0, forbid = 0;
    int regcode = 0, opregcode = 0;
    const struct op *rm = x->rm;
    int ismem = rm && rm->kind == OK_MEM;

    switch (x->regk) {
    case RK_DIGIT: regcode = x->regf; break;
    case RK_REG: regcode = x->regf & 7; rexr = x->regf >= 8; break;
    case RK_REG8: r8code(x->regf, &regcode, &rexr, &need, &forbid); break;
    case RK_OP: opregcode = x->regf & 7; rexb = x->regf >= 8; break;
    case RK_OP8: r8code(x->regf, &opregcode, &rexb, &need, &forbid); break;
    default: break;
    }
    int rmcode = 0;
    if (rm && rm->kind == OK_REG) {
        if (rm->byte)
            r8code(rm->reg, &rmcode, &rexb, &need, &forbid);
        else {
            rmcode = rm->reg & 7;
            rexb = rm->reg >= 8;
        }
    } else if (ismem) {
        if (rm->m.base >= 8 && rm->m.base < 16)
            rexb = 1;
        if (rm->m.index >= 8)
            rexx = 1;
    }
    int anyrex = rexw | rexr | rexx | rexb | need;
    if ((!is64(b) && anyrex) || (forbid && anyrex)) {
        b->fail = 1;
        return;
    }

    /* legacy prefixes, in a random order; f2/f3 last (mandatory prefixes) */
    uint8_t pre[8];
    int np = 0;
    if (x->pf & PF_66)
        pre[np++] = 0x66;
    if ((x->pf & PF_67) || (ismem && rm->m.asz != (is64(b) ? 64 : 32)))
        pre[np++] = 0x67;
    if (ismem && rm->m.seg)
        pre[np++] = (uint8_t)rm->m.seg;
    if (x->seg)
        pre[np++] = (uint8_t)x->seg;
    if (x->pf & PF_LOCK)
        pre[np++] = 0xf0;
    if (!(x->pf & PF_NONOISE) && !ismem && !x->seg && chance(b, 48))
        pre[np++] = noise_segs[rn(b, sizeof noise_segs)];
    for (int i = np - 1; i > 0; i--) {
        int j = (int)rn(b, (unsigned)i + 1);
        uint8_t t = pre[i];
        pre[i] = pre[j];
        pre[j] = t;
    }
    for (int i = 0; i < np; i++)
        buf[n++] = pre[i];
    if (x->pf & PF_F2)
        buf[n++] = 0xf2;
    if (x->pf & PF_F3)
        buf[n++] = 0xf3;
    if (is64(b) && !forbid && (anyrex || chance(b, 24)))
        buf[n++] = (uint8_t)(0x40 | rexw << 3 | rexr << 2 | rexx << 1 | rexb);
    for (int i = 0; i < x->nopc; i++)
        buf[n++] = x->opc[i];
    if (x->regk == RK_OP || x->regk == RK_OP8)
        buf[n - 1] = (uint8_t)(buf[n - 1] + opregcode);

    int disp_off = -1, disp_size = 0;
    if (rm && rm->kind == OK_REG) {
        buf[n++] = (uint8_t)(0xc0 | regcode << 3 | rmcode);
    } else if (ismem) {
        const struct mem *m = &rm->m;
        if (m->asz == 16) {
            int mod = m->dsz == 0 ? 0 : m->dsz == 1 ? 1 : 2;
            if (m->rm16 == 6 && m->base == R_NONE)
                mod = 0;
            buf[n++] = (uint8_t)(mod << 6 | regcode << 3 | m->rm16);
            disp_size = (m->rm16 == 6 && m->base == R_NONE) ? 2 : m->dsz;
        } else if (m->base == R_RIP) {
            buf[n++] = (uint8_t)(regcode << 3 | 5);
            disp_size = 4;
        } else if (m->base == R_NONE && m->index == R_NONE && m->nosib) {
            buf[n++] = (uint8_t)(regcode << 3 | 5);
            disp_size = 4;
        } else if (m->base == R_NONE) {
            buf[n++] = (uint8_t)(regcode << 3 | 4);
            buf[n++] = (uint8_t)(m->scale << 6 | (m->index >= 0 ? (m->index & 7) : 4) << 3 | 5);
            disp_size = 4;
        } else {
            int mod = m->dsz == 0 ? 0 : m->dsz == 1 ? 1 : 2;
            if (m->index >= 0 || (m->base & 7) == 4) {
                buf[n++] = (uint8_t)(mod << 6 | regcode << 3 | 4);
                buf[n++] = (uint8_t)(m->scale << 6 | (m->index >= 0 ? (m->index & 7) : 4) << 3 |
                                     (m->base & 7));
            } else {
                buf[n++] = (uint8_t)(mod << 6 | regcode << 3 | (m->base & 7));
            }
            disp_size = m->dsz;
        }
        disp_off = n;
        put(buf, &n, (uint64_t)m->disp, disp_size);
    }
    int imm_off = n;
    put(buf, &n, x->imm, x->immsz);
    if (n > 15 || b->in->len + n > INST_MAX) {
        b->fail = 1;
        return;
    }
    int base = b->in->len;
    memcpy(b->in->bytes + base, buf, (size_t)n);
    b->last_ins = base;
    b->in->len = (uint8_t)(base + n);
    b->in->nins++;
    if (ismem && rm->m.rel) {
        emit_reloc(b, (uint16_t)(base + disp_off), (uint8_t)disp_size, rm->m.mult, rm->m.addend,
                   rm->m.pcrel, 0);
        b->in->rel[b->in->nrel - 1].end = (uint16_t)(base + n);
    }
    if (x->imm_rel) {
        emit_reloc(b, (uint16_t)(base + imm_off), (uint8_t)x->immsz, x->imm_mult, x->imm_add, 0,
                   x->imm_code);
        b->in->rel[b->in->nrel - 1].end = (uint16_t)(base + n);
    }
}

static void enc1(struct bld *b, unsigned pf, uint8_t opc)
{
    enc(b, &(struct ins){ .pf = pf, .opc = { opc }, .nopc = 1 });
}

/* ---- setups --------------------------------------------------------------- */

/* Load a register with a known value (rel: relative to the page base). */
static void setup_mov(struct bld *b, int reg, uint64_t v, int rel)
{
    if (is64(b)) {
        int64_t sv = (int64_t)v;
        if (rel && sv >= -0x800 && sv < 0x7f000000) {
            enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = reg, .regk = RK_OP,
                                  .immsz = 4, .imm_rel = 1, .imm_mult = 1, .imm_add = sv });
        } else if (rel) {
            enc(b, &(struct ins){ .pf = PF_W, .opc = { 0xb8 }, .nopc = 1, .regf = reg,
                                  .regk = RK_OP, .immsz = 8, .imm_rel = 1, .imm_mult = 1,
                                  .imm_add = sv });
        } else if (v <= 0xffffffffull) {
            enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = reg, .regk = RK_OP,
                                  .imm = v, .immsz = 4 });
        } else if (sv >= INT32_MIN && sv <= INT32_MAX) {
            struct op o = { .kind = OK_REG, .reg = reg };
            enc(b, &(struct ins){ .pf = PF_W, .opc = { 0xc7 }, .nopc = 1, .regk = RK_DIGIT,
                                  .rm = &o, .imm = v, .immsz = 4 });
        } else {
            enc(b, &(struct ins){ .pf = PF_W, .opc = { 0xb8 }, .nopc = 1, .regf = reg,
                                  .regk = RK_OP, .imm = v, .immsz = 8 });
        }
    } else {
        enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = reg, .regk = RK_OP,
                              .imm = rel ? 0 : v, .immsz = 4, .imm_rel = rel, .imm_mult = 1,
                              .imm_add = (int64_t)v });
    }
    setk(b, reg, v, rel);
}

/* Make sure the flags in `mask` are defined before an instruction reads
 * them: if the model says one is undefined, define all six with a cmp. */
static void need_flags(struct bld *b, uint32_t mask)
{
    if (!(mask & cur_undef(b)))
        return;
    int r1 = pick_src(b, 0), r2 = pick_src(b, 0);
    struct op o = { .kind = OK_REG, .reg = r2 };
    enc(b, &(struct ins){ .pf = chance(b, 2) && is64(b) ? PF_W : 0, .opc = { 0x39 }, .nopc = 1,
                          .regf = r1, .regk = RK_REG, .rm = &o });
    fx(b, 0, F_ARITH, 0);
}

/* ---- memory operands ------------------------------------------------------ */

enum { MF_WRITE = 1, MF_NOSEG = 2, MF_NO67 = 4, MF_NORIP = 8 };

static int64_t seg_base(struct bld *b, int seg)
{
    if (seg == 0x64)
        return is64(b) ? (int64_t)DT_FS_BASE64 : (int64_t)DT_FS_BASE32;
    if (seg == 0x65)
        return is64(b) ? (int64_t)DT_GS_BASE64 : (int64_t)(int32_t)(uint32_t)DT_GS_BASE32;
    return 0;
}

/* Can an access of `size` bytes at page offset `off` be reached with this
 * address size and segment base, whichever slot's page the sequence gets? */
static int addr_ok(struct bld *b, int asz, int64_t S, int off, int size)
{
    int64_t pbs[2] = { DT_PAGE_LO, page_hi(b->mode) };
    for (int i = 0; i < 2; i++) {
        int64_t t = pbs[i] + off - S;
        if (is64(b)) {
            if (asz == 32 && (t < 0 || t + size > (1ll << 32)))
                return 0;
        } else {
            uint64_t t32 = (uint64_t)t & 0xffffffffull;
            if (asz == 32 && t32 + (uint64_t)size > (1ull << 32))
                return 0;
            if (asz == 16 && t32 + (uint64_t)size > 0x10000)
                return 0;
        }
    }
    return 1;
}

static int choose_off(struct bld *b, int size, int align)
{
    int lim = 4096 - size, off;
    switch (rn(b, 8)) {
    case 0: off = (int)rn(b, 64); break;
    case 1: off = lim - (int)rn(b, 64); break;
    default: off = (int)rn(b, (unsigned)lim + 1); break;
    }
    if (off > lim)
        off = lim;
    if (off < 0)
        off = 0;
    if (align > 1)
        off &= ~(align - 1);
    return off;
}

static int64_t sx32(uint64_t v)
{
    return (int32_t)(uint32_t)v;
}

/* The displacement an address needs: addend + mult * page base (mod 2^asz). */
static void need_disp(struct bld *b, int64_t S, int off, int base, int index, int scale,
                      int rsp_adj, int *mult, int64_t *add)
{
    int m = 1;
    uint64_t a = (uint64_t)(off - S);
    if (base >= 0 && base < NGPR) {
        const struct rk *k = &b->r[base];
        uint64_t v = k->v + (base == R_SP ? (uint64_t)(int64_t)rsp_adj : 0);
        if (!is64(b))
            v = (uint64_t)sx32(v);
        m -= k->rel;
        a -= v;
    }
    if (index >= 0) {
        const struct rk *k = &b->r[index];
        uint64_t v = is64(b) ? k->v : (uint64_t)sx32(k->v);
        m -= k->rel << scale;
        a -= v << scale;
    }
    *mult = m;
    *add = (int64_t)a;
}

/* Does the displacement fit this address size? Sets the fields. */
static int fit_disp(struct bld *b, struct mem *m, int mult, int64_t add, int allow0, int allow8)
{
    int64_t lo = DT_PAGE_LO, hi = page_hi(b->mode);
    m->rel = mult != 0;
    m->mult = (int8_t)mult;
    m->addend = add;
    if (m->asz == 64) {
        /* wrapping: registers hold any value */
        int64_t v1 = (int64_t)((uint64_t)add + (uint64_t)(mult * lo));
        int64_t v2 = (int64_t)((uint64_t)add + (uint64_t)(mult * hi));
        if (v1 < INT32_MIN || v1 > INT32_MAX || v2 < INT32_MIN || v2 > INT32_MAX)
            return 0;
    }
    int64_t v = m->asz == 16 ? (int16_t)(uint16_t)add : m->asz == 32 ? sx32((uint64_t)add) : add;
    int full = m->asz == 16 ? 2 : 4;
    if (!mult && v == 0 && allow0 && chance(b, 2))
        m->dsz = 0;
    else if (!mult && v >= -128 && v <= 127 && allow8 && !chance(b, 4))
        m->dsz = 1;
    else
        m->dsz = full;
    m->disp = m->rel ? 0 : v;
    return 1;
}

/* A register to address with: known, not avoided; `idx`: usable as an index. */
static int cand_reg(struct bld *b, int r, int idx)
{
    if (r >= nregs(b) || (b->avoid >> r & 1) || !b->r[r].known)
        return 0;
    if (idx && r == R_SP)
        return 0;
    return 1;
}

/* Try a base (and index) register for the address; 64-bit addressing needs
 * small displacements, so most registers do not fit. */
static int try_shape(struct bld *b, struct mem *m, int64_t S, int off, int base, int index,
                     int scale, int rsp_adj)
{
    int mult;
    int64_t add;
    need_disp(b, S, off, base, index, scale, rsp_adj, &mult, &add);
    m->base = base;
    m->index = index;
    m->scale = scale;
    int allow0 = base >= 0 && (base & 7) != 5;
    return fit_disp(b, m, mult, add, allow0, base >= 0);
}

/* A register for a setup that points into the page. */
static int setup_ptr(struct bld *b, int64_t v, int idx)
{
    unsigned av = b->avoid | (idx ? 1u << R_SP : 0);
    int r = pick_reg(b, av);
    if (b->fail)
        return -1;
    setup_mov(b, r, (uint64_t)v, 1);
    return r;
}

static int setup_small(struct bld *b)
{
    int r = pick_reg(b, b->avoid);
    if (b->fail)
        return -1;
    int64_t v = (int64_t)rn(b, 512) - 128;
    if (!is64(b))
        v &= 0xffffffff;
    setup_mov(b, r, (uint64_t)v, 0);
    return r;
}

static int mem_shape64(struct bld *b, struct mem *m, int64_t S, int off, int rsp_adj, unsigned mf)
{
    int n = nregs(b);
    int shape = (int)rn(b, 6);
    if (shape == 5 && (!is64(b) || (mf & MF_NORIP)))
        shape = 0;
    if (shape == 4 && !is64(b))
        m->nosib = chance(b, 2);
    switch (shape) {
    case 0:
    case 1: {   /* base + disp */
        int start = (int)rn(b, (unsigned)n);
        for (int i = 0; i < n; i++) {
            int r = (start + i) % n;
            if (cand_reg(b, r, 0) && try_shape(b, m, S, off, r, R_NONE, 0, rsp_adj)) {
                use_addr(b, r);
                return 1;
            }
        }
        int r = setup_ptr(b, (int64_t)off - S - (int64_t)rn(b, 300) + 150, 0);
        if (r < 0 || !try_shape(b, m, S, off, r, R_NONE, 0, rsp_adj))
            return 0;
        return 1;
    }
    case 2: {   /* base + index * scale + disp */
        int scale = (int)rn(b, 4);
        int base = -1, index = -1;
        int s1 = (int)rn(b, (unsigned)n), s2 = (int)rn(b, (unsigned)n);
        for (int i = 0; i < n && base < 0; i++) {
            int r = (s1 + i) % n;
            if (cand_reg(b, r, 0) && b->r[r].rel)
                base = r;
        }
        for (int i = 0; i < n && index < 0; i++) {
            int r = (s2 + i) % n;
            if (!cand_reg(b, r, 1) || r == base)
                continue;
            if (m->asz == 64) {
                int64_t v = (int64_t)b->r[r].v;
                if (b->r[r].rel || v > 0x10000 || v < -0x10000)
                    continue;
            }
            index = r;
        }
        if (base < 0)
            base = setup_ptr(b, (int64_t)off - S - (int64_t)rn(b, 256), 0);
        if (base < 0)
            return 0;
        if (index < 0) {
            unsigned sv = b->avoid;
            b->avoid |= 1u << base;
            index = setup_small(b);
            b->avoid = sv;
        }
        if (index < 0 || b->fail)
            return 0;
        if (!try_shape(b, m, S, off, base, index, scale, rsp_adj))
            return 0;
        use_addr(b, base);
        use_addr(b, index);
        return 1;
    }
    case 3: {   /* index * scale + disp32, no base */
        int scale = (int)rn(b, 4);
        int start = (int)rn(b, (unsigned)n);
        for (int i = 0; i < n; i++) {
            int r = (start + i) % n;
            if (cand_reg(b, r, 1) && try_shape(b, m, S, off, R_NONE, r, scale, 0) &&
                (m->asz != 64 || !b->r[r].rel || scale == 0)) {
                m->dsz = 4;
                use_addr(b, r);
                return 1;
            }
        }
        int r = setup_small(b);
        if (r < 0 || !try_shape(b, m, S, off, R_NONE, r, scale, 0))
            return 0;
        m->dsz = 4;
        return 1;
    }
    case 4:     /* [disp32] */
        if (!try_shape(b, m, S, off, R_NONE, R_NONE, 0, 0))
            return 0;
        m->dsz = 4;
        return 1;
    default:    /* [rip + disp32] */
        m->base = R_RIP;
        m->index = R_NONE;
        m->rel = 1;
        m->mult = 1;
        m->addend = off - S;
        m->pcrel = 1;
        m->dsz = 4;
        return 1;
    }
}

static const int8_t rm16_regs[8][2] = {
    { R_BX, R_SI }, { R_BX, R_DI }, { R_BP, R_SI }, { R_BP, R_DI },
    { R_NONE, R_SI }, { R_NONE, R_DI }, { R_BP, R_NONE }, { R_BX, R_NONE },
};

static int mem_shape16(struct bld *b, struct mem *m, int64_t S, int off)
{
    int rm = (int)rn(b, 9);
    if (rm == 8) {   /* [disp16] */
        m->rm16 = 6;
        m->base = m->index = R_NONE;
        m->rel = 1;
        m->mult = 1;
        m->addend = off - S;
        m->dsz = 2;
        return 1;
    }
    int regs[2] = { rm16_regs[rm][0], rm16_regs[rm][1] };
    for (int i = 0; i < 2; i++) {
        int r = regs[i];
        if (r == R_NONE)
            continue;
        if (b->avoid >> r & 1)
            return 0;
        if (!b->r[r].known)
            setup_mov(b, r, r64(b) & 0xffffffff, 0);
    }
    int mult = 1;
    uint64_t a = (uint64_t)(off - S);
    for (int i = 0; i < 2; i++) {
        if (regs[i] == R_NONE)
            continue;
        mult -= b->r[regs[i]].rel;
        a -= b->r[regs[i]].v;
        use_addr(b, regs[i]);
    }
    m->rm16 = rm;
    m->base = regs[0];
    m->index = regs[1];
    if (!fit_disp(b, m, mult, (int64_t)a, rm != 6, 1))
        return 0;
    return 1;
}

/* A memory operand for an access of `size` bytes in the data page. */
static int mk_mem(struct bld *b, struct op *o, int size, int align, unsigned mf, int rsp_adj)
{
    memset(o, 0, sizeof *o);
    o->kind = OK_MEM;
    struct mem *m = &o->m;
    for (int attempt = 0; attempt < 8 && !b->fail; attempt++) {
        memset(m, 0, sizeof *m);
        m->rm16 = -1;
        m->base = m->index = R_NONE;
        int off = choose_off(b, size, align);
        int seg = 0;
        if (!(mf & MF_NOSEG) && chance(b, 4)) {
            static const int segs[] = { 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65 };
            seg = segs[rn(b, 6)];
            if (seg == 0x2e && (mf & MF_WRITE) && !is64(b))
                seg = 0x3e;
        }
        int64_t S = seg_base(b, seg);
        int asz = is64(b) ? 64 : 32;
        if (!(mf & MF_NO67) && chance(b, 5))
            asz = is64(b) ? 32 : 16;
        if (!addr_ok(b, asz, S, off, size))
            continue;
        /* sometimes aim close to a known pointer, for 8-bit displacements */
        if (chance(b, 3)) {
            int r = (int)rn(b, (unsigned)nregs(b));
            if (cand_reg(b, r, 0) && b->r[r].rel) {
                int64_t v = (int64_t)b->r[r].v;
                if (!is64(b))
                    v = sx32((uint64_t)v);
                int64_t o2 = v + S + (int64_t)rn(b, 256) - 128 + (r == R_SP ? rsp_adj : 0);
                if (align > 1)
                    o2 &= ~(int64_t)(align - 1);
                if (o2 >= 0 && o2 <= 4096 - size && addr_ok(b, asz, S, (int)o2, size))
                    off = (int)o2;
            }
        }
        m->asz = asz;
        m->seg = seg;
        int ok = asz == 16 ? mem_shape16(b, m, S, off) : mem_shape64(b, m, S, off, rsp_adj, mf);
        if (ok && !b->fail) {
            b->last_off = off;
            return 1;
        }
    }
    b->fail = 1;
    return 0;
}

/* An address that is computed but never accessed (lea, nop): anything. */
static void mk_any_mem(struct bld *b, struct op *o)
{
    memset(o, 0, sizeof *o);
    o->kind = OK_MEM;
    struct mem *m = &o->m;
    m->rm16 = -1;
    m->asz = is64(b) ? 64 : 32;
    if (chance(b, 4))
        m->asz = is64(b) ? 32 : 16;
    if (chance(b, 8))
        m->seg = noise_segs[rn(b, sizeof noise_segs)];
    int64_t d = (int64_t)ival(b, 32);
    if (m->asz == 16) {
        m->rm16 = (int)rn(b, 8);
        m->base = rm16_regs[m->rm16][0];
        m->index = rm16_regs[m->rm16][1];
        if (m->rm16 == 6 && chance(b, 2))
            m->base = R_NONE;
        m->dsz = m->base == R_NONE && m->rm16 == 6 ? 2 : (int)(rn(b, 3) == 0 ? 0 : rn(b, 2) ? 1 : 2);
        if (m->rm16 == 6 && m->base != R_NONE && m->dsz == 0)
            m->dsz = 1;
        m->disp = m->dsz == 1 ? (int8_t)d : (int16_t)d;
        return;
    }
    int shape = (int)rn(b, 5);
    if (shape == 4 && is64(b)) {
        m->base = R_RIP;
        m->index = R_NONE;
        m->dsz = 4;
        m->disp = sx32((uint64_t)d);
        return;
    }
    m->base = shape == 3 ? R_NONE : (int)rn(b, (unsigned)nregs(b));
    m->index = shape >= 2 ? (int)rn(b, (unsigned)nregs(b)) : R_NONE;
    if (m->index == R_SP)
        m->index = R_NONE;
    m->scale = (int)rn(b, 4);
    if (m->base == R_NONE) {
        m->dsz = 4;
        m->nosib = !is64(b) && m->index == R_NONE && chance(b, 2);
    } else {
        m->dsz = (int)rn(b, 3) == 0 ? 0 : rn(b, 2) ? 1 : 4;
        if (m->dsz == 0 && (m->base & 7) == 5)
            m->dsz = 1;
    }
    m->disp = m->dsz == 1 ? (int8_t)d : sx32((uint64_t)d);
}

static int is_mem(const struct op *o)
{
    return o->kind == OK_MEM;
}

/* The same operand, `delta` bytes further. */
static struct op mem_plus(const struct op *o, int delta)
{
    struct op r = *o;
    struct mem *m = &r.m;
    if (m->rel) {
        m->addend += delta;
        return r;
    }
    m->disp += delta;
    int full = m->asz == 16 ? 2 : 4;
    if (m->dsz == 0)
        m->dsz = m->disp >= -128 && m->disp <= 127 ? 1 : full;
    else if (m->dsz == 1 && (m->disp < -128 || m->disp > 127))
        m->dsz = full;
    if (m->asz == 16)
        m->disp = (int16_t)m->disp;
    return r;
}

/* An r/m operand: a register or memory. */
static void pick_rm(struct bld *b, struct op *o, int w, unsigned avoid, int dest, unsigned mf)
{
    if (chance(b, 2)) {
        mk_mem(b, o, wbytes(w), 1, mf | (dest ? MF_WRITE : 0), 0);
        return;
    }
    memset(o, 0, sizeof *o);
    o->kind = OK_REG;
    o->byte = w == W8;
    o->reg = pick_gr(b, w, avoid, dest);
}

static int pick_w(struct bld *b, unsigned mask)
{
    if (!is64(b))
        mask &= ~(1u << W64);
    int c[WN], n = 0;
    for (int w = 0; w < WN; w++)
        if (mask >> w & 1)
            c[n++] = w;
    if (!n) {
        b->fail = 1;
        return W32;
    }
    int w = c[rn(b, (unsigned)n)];
    if (w == W8)
        set8(b);
    return w;
}

#define WM_ALL ((1u << W8) | (1u << W16) | (1u << W32) | (1u << W64))
#define WM_NO8 ((1u << W16) | (1u << W32) | (1u << W64))

/* ---- branch bodies ------------------------------------------------------- */

/* One register-only instruction that writes no register in `avoid`, reads
 * no flag and touches no memory. */
static void simple_op(struct bld *b, unsigned avoid)
{
    int r = pick_reg(b, avoid), s = pick_src(b, 0);
    struct op o = { .kind = OK_REG, .reg = r };
    unsigned w = is64(b) && chance(b, 2) ? PF_W : 0;
    switch (rn(b, 5)) {
    case 0: {
        static const uint8_t ops[] = { 0x01, 0x09, 0x21, 0x29, 0x31, 0x39 };
        uint8_t opc = ops[rn(b, 6)];
        enc(b, &(struct ins){ .pf = w, .opc = { opc }, .nopc = 1, .regf = s, .regk = RK_REG,
                              .rm = &o });
        if (opc == 0x09 || opc == 0x21 || opc == 0x31)
            fx(b, 0, F_ARITH & ~F_AF, F_AF);
        else
            fx(b, 0, F_ARITH, 0);
        if (opc != 0x39)
            clob(b, r);
        break;
    }
    case 1:
        enc(b, &(struct ins){ .pf = w, .opc = { 0xff }, .nopc = 1, .regf = (int)rn(b, 2),
                              .regk = RK_DIGIT, .rm = &o });
        fx(b, 0, F_ARITH & ~F_CF, 0);
        clob(b, r);
        break;
    case 2:
        enc(b, &(struct ins){ .pf = w, .opc = { 0xf7 }, .nopc = 1, .regf = 2, .regk = RK_DIGIT,
                              .rm = &o });
        clob(b, r);
        break;
    case 3: {
        struct op m = { .kind = OK_MEM };
        m.m.asz = is64(b) ? 64 : 32;
        m.m.rm16 = -1;
        m.m.base = s;
        m.m.index = R_NONE;
        m.m.dsz = 1;
        m.m.disp = (int8_t)rn(b, 256);
        enc(b, &(struct ins){ .pf = w, .opc = { 0x8d }, .nopc = 1, .regf = r, .regk = RK_REG,
                              .rm = &m });
        clob(b, r);
        break;
    }
    default: {
        struct op so = { .kind = OK_REG, .reg = s };
        enc(b, &(struct ins){ .pf = w, .opc = { 0x8b }, .nopc = 1, .regf = r, .regk = RK_REG,
                              .rm = &so });
        clob(b, r);
        break;
    }
    }
}

/* A body: a marker `mov r32, imm32` (so running it is always visible), up
 * to two more simple instructions, and if asked a cmp that defines ZF. */
static void body(struct bld *b, unsigned avoid, int end_cmp)
{
    int r = pick_reg(b, avoid);
    enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = r, .regk = RK_OP,
                          .imm = r64(b) & 0xffffffff, .immsz = 4 });
    clob(b, r);
    int n = (int)rn(b, 3);
    for (int i = 0; i < n; i++)
        simple_op(b, avoid);
    if (end_cmp) {
        struct op o = { .kind = OK_REG, .reg = pick_src(b, 0) };
        enc(b, &(struct ins){ .pf = is64(b) && chance(b, 2) ? PF_W : 0, .opc = { 0x83 },
                              .nopc = 1, .regf = 7, .regk = RK_DIGIT, .rm = &o,
                              .imm = rn(b, 4) ? rn(b, 8) : r64(b) & 0xff, .immsz = 1 });
        fx(b, 0, F_ARITH, 0);
    }
}

/* A body that may or may not run: its flag effects merge with not running. */
struct fsave { uint32_t D, U; };
static struct fsave branch_begin(struct bld *b)
{
    struct fsave s = { b->D, b->U };
    return s;
}

static void branch_end(struct bld *b, struct fsave s)
{
    uint32_t bodyU = b->U;
    b->D = s.D;
    b->U = s.U | bodyU;
}

/* Patch a rel8/rel32 at the end of the instruction starting at `at` so it
 * lands on `target` (offsets in the instance). */
static void patch_rel(struct bld *b, int at_end, int size, int target)
{
    if (b->fail)
        return;
    int64_t rel = target - at_end;
    if (size == 1 && (rel < -128 || rel > 127)) {
        b->fail = 1;
        return;
    }
    uint8_t *p = b->in->bytes + at_end - size;
    for (int i = 0; i < size; i++)
        p[i] = (uint8_t)((uint64_t)rel >> (8 * i));
}

/* ==== templates =========================================================== */

/* ---- add or adc sbb and sub xor cmp ----------------------------------------- */

enum { AF_RM_R, AF_R_RM, AF_ACC_IMM, AF_RM_IMM, AF_RM_IMM8, AF_RM_IMM82 };

static void alu_flags(int op, uint32_t *rd, uint32_t *def, uint32_t *ud)
{
    *rd = (op == 2 || op == 3) ? F_CF : 0;
    if (op == 1 || op == 4 || op == 6) {
        *def = F_ARITH & ~F_AF;
        *ud = F_AF;
    } else {
        *def = F_ARITH;
        *ud = 0;
    }
}

static int immsz_for(int w)
{
    return w == W8 ? 1 : w == W16 ? 2 : 4;
}

static uint64_t imm_for(struct bld *b, int w)
{
    int sz = immsz_for(w);
    return ival(b, sz * 8);
}

static void t_alu(struct bld *b, int p)
{
    int op = p & 7, f = p >> 3;
    uint32_t rd, def, ud;
    alu_flags(op, &rd, &def, &ud);
    need_flags(b, rd);
    unsigned wm = f == AF_RM_IMM8 ? WM_NO8 : f == AF_RM_IMM82 ? 1u << W8 : WM_ALL;
    int w = pick_w(b, wm);
    unsigned pf = wpf(w);
    int writes = op != 7;
    struct op rm = { 0 };
    int r = -1, mem = 0;
    switch (f) {
    case AF_RM_R:
    case AF_R_RM: {
        int rdst = f == AF_R_RM && writes, rmdst = f == AF_RM_R && writes;
        r = pick_gr(b, w, 0, rdst);
        pick_rm(b, &rm, w, 0, rmdst, 0);
        mem = is_mem(&rm);
        if (rmdst && mem && chance(b, 4))
            pf |= PF_LOCK;
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(op * 8 + (f == AF_R_RM ? 2 : 0) + (w != W8)) },
                              .nopc = 1, .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
        if (rdst)
            clob(b, r);
        if (rmdst && !mem)
            clob(b, rm.reg);
        break;
    }
    case AF_ACC_IMM:
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(op * 8 + 4 + (w != W8)) }, .nopc = 1,
                              .imm = imm_for(b, w), .immsz = immsz_for(w) });
        if (writes)
            clob(b, R_AX);
        break;
    default: {
        pick_rm(b, &rm, w, 0, writes, 0);
        mem = is_mem(&rm);
        if (writes && mem && chance(b, 4))
            pf |= PF_LOCK;
        uint8_t opc = f == AF_RM_IMM8 ? 0x83 : f == AF_RM_IMM82 ? 0x82 : w == W8 ? 0x80 : 0x81;
        int isz = f == AF_RM_IMM ? immsz_for(w) : 1;
        enc(b, &(struct ins){ .pf = pf, .opc = { opc }, .nopc = 1, .regf = op, .regk = RK_DIGIT,
                              .rm = &rm, .imm = ival(b, isz * 8), .immsz = isz });
        if (writes && !mem)
            clob(b, rm.reg);
        break;
    }
    }
    /* --inject-bug: the second machine runs add for adc and sub for sbb */
    if ((op == 2 || op == 3) && !b->fail) {
        /* skip the prefixes to the opcode byte */
        int at = b->last_ins;
        while (b->in->bytes[at] == 0x66 || b->in->bytes[at] == 0xf0 || b->in->bytes[at] == 0x67 ||
               b->in->bytes[at] == 0x2e || b->in->bytes[at] == 0x3e || b->in->bytes[at] == 0x26 ||
               b->in->bytes[at] == 0x36 || b->in->bytes[at] == 0x64 || b->in->bytes[at] == 0x65 ||
               (is64(b) && (b->in->bytes[at] & 0xf0) == 0x40))
            at++;
        uint8_t opc = b->in->bytes[at];
        if (opc < 0x40) {
            b->in->bug_off = (int16_t)at;
            b->in->bug_xor = op == 2 ? 0x10 : 0x30;   /* 0x10.. -> 0x00.., 0x18.. -> 0x28.. */
        } else {
            b->in->bug_off = (int16_t)(at + 1);   /* ModRM: /2 -> /0, /3 -> /5 */
            b->in->bug_xor = op == 2 ? 0x10 : 0x30;
        }
    }
    fx(b, 0, def, ud);
    setform(b, 0, wform(w, r, &rm), mem);
}

/* ---- test --------------------------------------------------------------- */

static void t_test(struct bld *b, int p)
{
    int w = pick_w(b, WM_ALL);
    unsigned pf = wpf(w);
    struct op rm = { 0 };
    int r = -1;
    if (p == 0) {
        r = pick_gr(b, w, 0, 0);
        pick_rm(b, &rm, w, 0, 0, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0x84 + (w != W8)) }, .nopc = 1,
                              .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
    } else if (p == 1) {
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0xa8 + (w != W8)) }, .nopc = 1,
                              .imm = imm_for(b, w), .immsz = immsz_for(w) });
    } else {
        pick_rm(b, &rm, w, 0, 0, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0xf6 + (w != W8)) }, .nopc = 1,
                              .regf = 0, .regk = RK_DIGIT, .rm = &rm, .imm = imm_for(b, w),
                              .immsz = immsz_for(w) });
    }
    fx(b, 0, F_ARITH & ~F_AF, F_AF);
    setform(b, 0, wform(w, r, &rm), is_mem(&rm));
}

/* ---- inc dec not neg ---------------------------------------------------- */

static void t_unary(struct bld *b, int p)
{
    int w = pick_w(b, WM_ALL);
    unsigned pf = wpf(w);
    struct op rm;
    pick_rm(b, &rm, w, 0, 1, 0);
    if (is_mem(&rm) && chance(b, 4))
        pf |= PF_LOCK;
    uint8_t opc = p < 2 ? (uint8_t)(0xfe + (w != W8)) : (uint8_t)(0xf6 + (w != W8));
    enc(b, &(struct ins){ .pf = pf, .opc = { opc }, .nopc = 1, .regf = p, .regk = RK_DIGIT,
                          .rm = &rm });   /* inc /0, dec /1, not /2, neg /3 */
    if (!is_mem(&rm))
        clob(b, rm.reg);
    if (p < 2)
        fx(b, 0, F_ARITH & ~F_CF, 0);
    else if (p == 3)
        fx(b, 0, F_ARITH, 0);
    setform(b, 0, wform(w, -1, &rm), is_mem(&rm));
}

/* inc/dec r16/r32 in one byte (0x40..0x4f): 32-bit mode only. */
static void t_incdec_short(struct bld *b, int p)
{
    int w = pick_w(b, (1u << W16) | (1u << W32));
    int r = pick_reg(b, 0);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { (uint8_t)(0x40 + p * 8) }, .nopc = 1, .regf = r,
                          .regk = RK_OP });
    clob(b, r);
    fx(b, 0, F_ARITH & ~F_CF, 0);
    setform(b, 0, w, 0);
}

/* ---- mul imul div idiv ---------------------------------------------------- */

static void t_mul1(struct bld *b, int p)
{
    int w = pick_w(b, WM_ALL);
    struct op rm;
    pick_rm(b, &rm, w, 0, 0, 0);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { (uint8_t)(0xf6 + (w != W8)) }, .nopc = 1,
                          .regf = 4 + p, .regk = RK_DIGIT, .rm = &rm });
    clob(b, R_AX);
    if (w != W8)
        clob(b, R_DX);
    fx(b, 0, F_CF | F_OF, F_SF | F_ZF | F_AF | F_PF);
    setform(b, 0, wform(w, -1, &rm), is_mem(&rm));
}

/* Division without #DE: the divisor is set up non-zero and the high half of
 * the dividend small enough for the quotient to fit. */
static void t_div(struct bld *b, int p)
{
    int sgn = p;
    int w = pick_w(b, WM_ALL);
    int bits = wbits(w);
    unsigned pf = wpf(w);
    b->avoid |= (1u << R_AX) | (1u << R_DX);
    /* signed: 0 sign-extends the dividend (cbw/cwd/cdq/cqo), 1 zeroes the
     * high half, 2 sets it to all ones; 1 and 2 need |divisor| >= 3 */
    int variant = sgn ? (int)rn(b, 3) : 0;
    int mem = chance(b, 2);
    uint64_t d;
    for (;;) {
        d = ival(b, bits);
        if (w == W64 && (mem || chance(b, 2)))
            d = (uint64_t)sx32(d);   /* what mov m64, imm32 can store */
        int64_t sd = bits == 64 ? (int64_t)d : (int64_t)(d << (64 - bits)) >> (64 - bits);
        if (d == 0)
            continue;
        if (sgn && variant == 0 && sd == -1)
            continue;
        if (sgn && variant != 0 && sd > -3 && sd < 3)
            continue;
        break;
    }
    struct op rm = { 0 };
    if (mem) {
        if (!mk_mem(b, &rm, wbytes(w), 1, MF_WRITE, 0))
            return;
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0xc6 + (w != W8)) }, .nopc = 1,
                              .regf = 0, .regk = RK_DIGIT, .rm = &rm, .imm = d,
                              .immsz = immsz_for(w) });
    } else {
        rm.kind = OK_REG;
        rm.byte = w == W8;
        rm.reg = pick_gr(b, w, (1u << R_AX) | (1u << R_DX), 1);
        if (b->fail)
            return;
        if (w == W8)
            enc(b, &(struct ins){ .opc = { 0xb0 }, .nopc = 1, .regf = rm.reg, .regk = RK_OP8,
                                  .imm = d, .immsz = 1 });
        else if (w == W64 && d > 0xffffffffull)
            enc(b, &(struct ins){ .pf = PF_W, .opc = { 0xb8 }, .nopc = 1, .regf = rm.reg,
                                  .regk = RK_OP, .imm = d, .immsz = 8 });
        else
            enc(b, &(struct ins){ .pf = w == W16 ? PF_66 : 0, .opc = { 0xb8 }, .nopc = 1,
                                  .regf = rm.reg, .regk = RK_OP, .imm = d,
                                  .immsz = w == W16 ? 2 : 4 });
        clob(b, rm.reg);
    }
    /* the high half of the dividend */
    if (sgn && variant == 0) {
        enc1(b, w == W8 ? PF_66 : wpf(w), w == W8 ? 0x98 : 0x99);
    } else {
        uint64_t hi = !sgn ? r64(b) % d : variant == 1 ? 0 : wmask(bits);
        if (w == W8)
            enc(b, &(struct ins){ .opc = { 0xb0 }, .nopc = 1, .regf = R_AH, .regk = RK_OP8,
                                  .imm = hi, .immsz = 1 });
        else if (w == W64 && hi > 0xffffffffull)
            enc(b, &(struct ins){ .pf = PF_W, .opc = { 0xb8 }, .nopc = 1, .regf = R_DX,
                                  .regk = RK_OP, .imm = hi, .immsz = 8 });
        else
            enc(b, &(struct ins){ .pf = w == W16 ? PF_66 : 0, .opc = { 0xb8 }, .nopc = 1,
                                  .regf = R_DX, .regk = RK_OP, .imm = hi,
                                  .immsz = w == W16 ? 2 : 4 });
    }
    enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0xf6 + (w != W8)) }, .nopc = 1,
                          .regf = 6 + sgn, .regk = RK_DIGIT, .rm = &rm });
    clob(b, R_AX);
    clob(b, R_DX);
    fx(b, 0, 0, F_ARITH);
    setform(b, variant, wform(w, -1, &rm), is_mem(&rm));
}

/* imul r, r/m (0f af); imul r, r/m, imm8 (6b); imul r, r/m, imm (69) */
static void t_imul(struct bld *b, int p)
{
    int w = pick_w(b, WM_NO8);
    int r = pick_reg(b, 0);
    struct op rm;
    pick_rm(b, &rm, w, 0, 0, 0);
    if (p == 0)
        enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, 0xaf }, .nopc = 2, .regf = r,
                              .regk = RK_REG, .rm = &rm });
    else if (p == 1)
        enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x6b }, .nopc = 1, .regf = r,
                              .regk = RK_REG, .rm = &rm, .imm = ival(b, 8), .immsz = 1 });
    else
        enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x69 }, .nopc = 1, .regf = r,
                              .regk = RK_REG, .rm = &rm, .imm = imm_for(b, w),
                              .immsz = immsz_for(w) });
    clob(b, r);
    fx(b, 0, F_CF | F_OF, F_SF | F_ZF | F_AF | F_PF);
    setform(b, 0, w, is_mem(&rm));
}

/* ---- shifts and rotates ------------------------------------------------- */

static unsigned pick_count(struct bld *b, int bits)
{
    static const unsigned c[] = { 0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255 };
    if (chance(b, 2))
        return c[rn(b, sizeof c / sizeof c[0])];
    if (chance(b, 2))
        return (unsigned)bits - 1 + rn(b, 3);
    return rn(b, 256);
}

/* The SDM's flags for rol ror rcl rcr shl shr sal sar by a masked count. */
static void shift_flags(int op, int bits, unsigned mc, uint32_t *rd, uint32_t *def, uint32_t *ud)
{
    *rd = *def = *ud = 0;
    if (mc == 0)
        return;
    if (op <= 3) {   /* rol ror rcl rcr: CF, OF only */
        *rd = op >= 2 ? F_CF : 0;
        *def = F_CF | F_OF;
        *ud = mc == 1 ? 0 : F_OF;
        return;
    }
    *def = F_ARITH;
    *ud = F_AF | (mc == 1 ? 0 : F_OF);
    if ((op == 4 || op == 5) && bits <= 16 && mc >= (unsigned)bits)
        *ud |= F_CF;
}

static void t_shift(struct bld *b, int p)
{
    int op = p & 7, kind = p >> 3;   /* 0: by 1, 1: imm8, 2: cl */
    int w = pick_w(b, WM_ALL);
    int bits = wbits(w);
    unsigned cmask = w == W64 ? 63 : 31;
    int known = 1, setcl = 0;
    unsigned c = 1;
    if (kind == 1)
        c = pick_count(b, bits);
    if (kind == 2) {
        if (chance(b, 3)) {
            known = 0;
        } else {
            c = pick_count(b, bits);
            setcl = 1;
            b->avoid |= 1u << R_CX;
        }
    }
    struct op rm;
    pick_rm(b, &rm, w, setcl ? 1u << R_CX : 0, 1, 0);
    uint32_t rd, def, ud;
    if (known) {
        shift_flags(op, bits, c & cmask, &rd, &def, &ud);
    } else {
        /* any count: the union of what the counts leave undefined; nothing
         * surely defined, since count 0 changes nothing */
        uint32_t r1, d1, u1, r2, d2, u2;
        shift_flags(op, bits, 2, &r1, &d1, &u1);
        shift_flags(op, bits, (unsigned)bits, &r2, &d2, &u2);
        rd = r1 | r2;
        def = 0;
        ud = u1 | u2;
    }
    need_flags(b, rd);
    if (setcl) {
        if (chance(b, 2)) {
            enc(b, &(struct ins){ .opc = { 0xb1 }, .nopc = 1, .imm = c, .immsz = 1 });
            clob(b, R_CX);
        } else {
            setup_mov(b, R_CX, c, 0);
        }
    }
    uint8_t base = kind == 0 ? 0xd0 : kind == 1 ? 0xc0 : 0xd2;
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { (uint8_t)(base + (w != W8)) }, .nopc = 1,
                          .regf = op, .regk = RK_DIGIT, .rm = &rm, .imm = c,
                          .immsz = kind == 1 ? 1 : 0 });
    if (!is_mem(&rm))
        clob(b, rm.reg);
    fx(b, rd, def, ud);
    setform(b, kind == 2 ? known : 0, wform(w, -1, &rm), is_mem(&rm));
}

/* shld / shrd, by imm8 or cl */
static void t_shxd(struct bld *b, int p)
{
    int right = p & 1, bycl = p >> 1;
    int w = pick_w(b, WM_NO8);
    int bits = wbits(w);
    unsigned cmask = w == W64 ? 63 : 31;
    int known = 1, setcl = 0;
    unsigned c = 0;
    if (bycl && w != W16 && chance(b, 3))
        known = 0;
    if (known) {
        do
            c = pick_count(b, bits);
        while (w == W16 && (c & 31) > 16);
        if (bycl) {
            setcl = 1;
            b->avoid |= 1u << R_CX;
        }
    }
    int r = pick_src(b, setcl ? 1u << R_CX : 0);
    struct op rm;
    pick_rm(b, &rm, w, setcl ? 1u << R_CX : 0, 1, 0);
    uint32_t def, ud;
    unsigned mc = c & cmask;
    if (!known) {
        def = 0;
        ud = F_AF | F_OF;
    } else if (mc == 0) {
        def = ud = 0;
    } else {
        def = F_ARITH;
        ud = F_AF | (mc == 1 ? 0 : F_OF);
    }
    if (setcl)
        setup_mov(b, R_CX, c, 0);
    uint8_t opc = (uint8_t)((right ? 0xac : 0xa4) + bycl);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, opc }, .nopc = 2, .regf = r,
                          .regk = RK_REG, .rm = &rm, .imm = c, .immsz = bycl ? 0 : 1 });
    if (!is_mem(&rm))
        clob(b, rm.reg);
    fx(b, 0, def, ud);
    setform(b, bycl ? known : 0, w, is_mem(&rm));
}

/* ---- bt bts btr btc ------------------------------------------------------ */

static void t_bt(struct bld *b, int p)
{
    int op = p & 3, imm = p >> 2;
    int w = pick_w(b, WM_NO8);
    int bits = wbits(w), bytes = wbytes(w);
    unsigned pf = wpf(w);
    int writes = op != 0;
    struct op rm = { 0 };
    if (imm) {
        pick_rm(b, &rm, w, 0, writes, 0);
        if (writes && is_mem(&rm) && chance(b, 4))
            pf |= PF_LOCK;
        enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, 0xba }, .nopc = 2, .regf = 4 + op,
                              .regk = RK_DIGIT, .rm = &rm, .imm = rn(b, 256), .immsz = 1 });
    } else if (chance(b, 2)) {
        int r = pick_src(b, 0);
        rm.kind = OK_REG;
        rm.reg = pick_reg(b, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, (uint8_t)(0xa3 + op * 8) }, .nopc = 2,
                              .regf = r, .regk = RK_REG, .rm = &rm });
    } else {
        /* a register bit offset reaches (offset SAR log2(bits)) operands away,
         * signed: set it up so the operand it reaches is in the page */
        int r = pick_reg(b, b->avoid);
        b->avoid |= 1u << r;
        if (!mk_mem(b, &rm, bytes, 1, MF_NO67 | (writes ? MF_WRITE : 0), 0))
            return;
        int off = b->last_off;
        int kmin = -off / bytes, kmax = (4096 - bytes - off) / bytes;
        int lim = w == W16 ? 1000 : 4096;
        if (kmin < -lim)
            kmin = -lim;
        if (kmax > lim)
            kmax = lim;
        int k = kmin + (int)rn(b, (unsigned)(kmax - kmin + 1));
        if (chance(b, 2) && kmin <= 0 && kmax >= 0)
            k = (int)rn(b, 2) - (kmin < 0);
        int64_t bit = (int64_t)k * bits + (int64_t)rn(b, (unsigned)bits);
        setup_mov(b, r, (uint64_t)bit & mmask(b->mode), 0);
        if (writes && chance(b, 4))
            pf |= PF_LOCK;
        enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, (uint8_t)(0xa3 + op * 8) }, .nopc = 2,
                              .regf = r, .regk = RK_REG, .rm = &rm });
    }
    if (writes && !is_mem(&rm))
        clob(b, rm.reg);
    fx(b, 0, F_CF, F_OF | F_SF | F_AF | F_PF);
    setform(b, 0, w, is_mem(&rm));
}

/* ---- bsf bsr tzcnt lzcnt popcnt ----------------------------------------- */

static void t_bitscan(struct bld *b, int p)
{
    int w = pick_w(b, WM_NO8);
    unsigned pf = wpf(w);
    int r = pick_reg(b, 0);
    struct op rm;
    pick_rm(b, &rm, w, 0, p < 2, 0);
    if (p < 2) {
        /* bsf/bsr leave the destination undefined for a zero source: make
         * the source non-zero with bts */
        enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, 0xba }, .nopc = 2, .regf = 5,
                              .regk = RK_DIGIT, .rm = &rm, .imm = rn(b, (unsigned)wbits(w)),
                              .immsz = 1 });
        fx(b, 0, F_CF, F_OF | F_SF | F_AF | F_PF);
        if (!is_mem(&rm))
            clob(b, rm.reg);
    }
    static const uint8_t opc[] = { 0xbc, 0xbd, 0xbc, 0xbd, 0xb8 };
    enc(b, &(struct ins){ .pf = pf | (p >= 2 ? PF_F3 : 0), .opc = { 0x0f, opc[p] }, .nopc = 2,
                          .regf = r, .regk = RK_REG, .rm = &rm });
    clob(b, r);
    if (p < 2)
        fx(b, 0, F_ZF, F_CF | F_OF | F_SF | F_AF | F_PF);
    else if (p < 4)
        fx(b, 0, F_CF | F_ZF, F_OF | F_SF | F_AF | F_PF);
    else
        fx(b, 0, F_ARITH, 0);
    setform(b, 0, w, is_mem(&rm));
}

/* ---- setcc cmovcc ------------------------------------------------------- */

static void t_setcc(struct bld *b, int p)
{
    (void)p;
    int cc = (int)rn(b, 16);
    need_flags(b, cc_flags[cc >> 1]);
    b->legacy8 = !is64(b) || chance(b, 2);
    if (b->legacy8 && is64(b))
        b->avoid |= 0xff00u;
    struct op rm;
    pick_rm(b, &rm, W8, 0, 1, 0);
    enc(b, &(struct ins){ .opc = { 0x0f, (uint8_t)(0x90 + cc) }, .nopc = 2, .regf = 0,
                          .regk = RK_DIGIT, .rm = &rm });
    if (!is_mem(&rm))
        clob(b, rm.reg);
    fx(b, cc_flags[cc >> 1], 0, 0);
    setform(b, cc, wform(W8, -1, &rm), is_mem(&rm));
}

static void t_cmov(struct bld *b, int p)
{
    (void)p;
    int cc = (int)rn(b, 16);
    need_flags(b, cc_flags[cc >> 1]);
    int w = pick_w(b, WM_NO8);
    int r = pick_reg(b, 0);
    struct op rm;
    pick_rm(b, &rm, w, 0, 0, 0);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, (uint8_t)(0x40 + cc) }, .nopc = 2,
                          .regf = r, .regk = RK_REG, .rm = &rm });
    clob(b, r);
    fx(b, cc_flags[cc >> 1], 0, 0);
    setform(b, cc, w, is_mem(&rm));
}

/* ---- jumps and loops ---------------------------------------------------- */

static void t_jcc(struct bld *b, int p)
{
    int cc = (int)rn(b, 16);
    need_flags(b, cc_flags[cc >> 1]);
    fx(b, cc_flags[cc >> 1], 0, 0);
    if (p == 0)
        enc(b, &(struct ins){ .opc = { (uint8_t)(0x70 + cc) }, .nopc = 1, .immsz = 1 });
    else
        enc(b, &(struct ins){ .opc = { 0x0f, (uint8_t)(0x80 + cc) }, .nopc = 2, .immsz = 4 });
    int end = b->in->len;
    struct fsave s = branch_begin(b);
    body(b, 0, 0);
    branch_end(b, s);
    patch_rel(b, end, p == 0 ? 1 : 4, b->in->len);
    setform(b, cc, p == 0 ? W8 : W32, 0);
}

/* jmp over bytes that are never run (random: the translator must not care) */
static void t_jmp(struct bld *b, int p)
{
    if (p == 0)
        enc(b, &(struct ins){ .opc = { 0xeb }, .nopc = 1, .immsz = 1 });
    else
        enc(b, &(struct ins){ .opc = { 0xe9 }, .nopc = 1, .immsz = 4 });
    if (b->fail)
        return;
    int end = b->in->len, n = (int)rn(b, 12);
    for (int i = 0; i < n && b->in->len < INST_MAX - 16; i++)
        b->in->bytes[b->in->len++] = (uint8_t)r64(b);
    patch_rel(b, end, p == 0 ? 1 : 4, b->in->len);
    setform(b, 0, p == 0 ? W8 : W32, 0);
}

/* loop / loope / loopne: forward over a body, or backward around one from a
 * small count */
static void t_loop(struct bld *b, int p)
{
    static const uint8_t opc[] = { 0xe2, 0xe1, 0xe0 };
    int back = chance(b, 2);
    unsigned pf = chance(b, 4) ? PF_67 : 0;
    b->avoid |= 1u << R_CX;
    if (!back) {
        if (p)
            need_flags(b, F_ZF);
        fx(b, p ? F_ZF : 0, 0, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { opc[p] }, .nopc = 1, .immsz = 1 });
        clob(b, R_CX);
        int end = b->in->len;
        struct fsave s = branch_begin(b);
        body(b, 1u << R_CX, 0);
        branch_end(b, s);
        patch_rel(b, end, 1, b->in->len);
    } else {
        setup_mov(b, R_CX, 1 + rn(b, 4), 0);
        int top = b->in->len;
        body(b, 1u << R_CX, p != 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { opc[p] }, .nopc = 1, .immsz = 1 });
        clob(b, R_CX);
        patch_rel(b, b->in->len, 1, top);
    }
    setform(b, back, pf ? W32 : is64(b) ? W64 : W32, 0);
}

static void t_jcxz(struct bld *b, int p)
{
    (void)p;
    unsigned pf = chance(b, 3) ? PF_67 : 0;
    b->avoid |= 1u << R_CX;
    if (chance(b, 2))
        setup_mov(b, R_CX, chance(b, 2) ? 0 : r64(b) & 0xffffffff00000000ull & mmask(b->mode), 0);
    enc(b, &(struct ins){ .pf = pf, .opc = { 0xe3 }, .nopc = 1, .immsz = 1 });
    int end = b->in->len;
    struct fsave s = branch_begin(b);
    body(b, 1u << R_CX, 0);
    branch_end(b, s);
    patch_rel(b, end, 1, b->in->len);
    setform(b, 0, pf ? (is64(b) ? W32 : W16) : (is64(b) ? W64 : W32), 0);
}

/* call (rel32, register, memory) into a ret (or ret imm16) placed after the
 * body the return lands on:
 *     [setup]  call L1 ; body ; jmp L2 ; L1: [op] ; ret ; L2:              */
static void t_call(struct bld *b, int p)
{
    int sw = stackw(b, 0);
    int retimm = p == 1 ? (int)rn(b, 41) : 0;
    if (!stack_room(b, sw, retimm))
        return;
    int relidx = -1;
    struct op rm = { 0 };
    if (p == 2) {
        int r = pick_reg(b, b->avoid);
        enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = r, .regk = RK_OP, .immsz = 4,
                              .imm_rel = 1, .imm_code = 1 });
        relidx = b->in->nrel - 1;
        clob(b, r);
        rm.kind = OK_REG;
        rm.reg = r;
    } else if (p == 3) {
        if (!mk_mem(b, &rm, sw, 1, MF_WRITE, 0))
            return;
        enc(b, &(struct ins){ .pf = is64(b) ? PF_W : 0, .opc = { 0xc7 }, .nopc = 1, .regf = 0,
                              .regk = RK_DIGIT, .rm = &rm, .immsz = 4, .imm_rel = 1,
                              .imm_code = 1 });
        relidx = b->in->nrel - 1;
    }
    int callend;
    if (p <= 1) {
        enc(b, &(struct ins){ .opc = { 0xe8 }, .nopc = 1, .immsz = 4, .pf = PF_NONOISE });
    } else {
        enc(b, &(struct ins){ .opc = { 0xff }, .nopc = 1, .regf = 2, .regk = RK_DIGIT, .rm = &rm,
                              .pf = PF_NONOISE });
    }
    callend = b->in->len;
    body(b, 0, 0);
    enc(b, &(struct ins){ .opc = { 0xeb }, .nopc = 1, .immsz = 1 });
    int jend = b->in->len;
    int l1 = b->in->len;
    if (chance(b, 2))
        simple_op(b, 0);
    if (retimm || p == 1)
        enc(b, &(struct ins){ .opc = { 0xc2 }, .nopc = 1, .imm = (uint64_t)retimm, .immsz = 2,
                              .pf = PF_NONOISE });
    else
        enc1(b, PF_NONOISE, 0xc3);
    if (b->fail)
        return;
    patch_rel(b, jend, 1, b->in->len);
    if (p <= 1)
        patch_rel(b, callend, 4, l1);
    else
        b->in->rel[relidx].addend = l1;
    rsp_add(b, retimm);
    setform(b, 0, is64(b) ? W64 : W32, is_mem(&rm));
}

/* jmp r/m over never-run bytes */
static void t_jmp_rm(struct bld *b, int p)
{
    struct op rm = { 0 };
    int relidx;
    if (p == 0) {
        int r = pick_reg(b, b->avoid);
        enc(b, &(struct ins){ .opc = { 0xb8 }, .nopc = 1, .regf = r, .regk = RK_OP, .immsz = 4,
                              .imm_rel = 1, .imm_code = 1 });
        relidx = b->in->nrel - 1;
        clob(b, r);
        rm.kind = OK_REG;
        rm.reg = r;
    } else {
        if (!mk_mem(b, &rm, stackw(b, 0), 1, MF_WRITE, 0))
            return;
        enc(b, &(struct ins){ .pf = is64(b) ? PF_W : 0, .opc = { 0xc7 }, .nopc = 1, .regf = 0,
                              .regk = RK_DIGIT, .rm = &rm, .immsz = 4, .imm_rel = 1,
                              .imm_code = 1 });
        relidx = b->in->nrel - 1;
    }
    enc(b, &(struct ins){ .opc = { 0xff }, .nopc = 1, .regf = 4, .regk = RK_DIGIT, .rm = &rm,
                          .pf = PF_NONOISE });
    if (b->fail)
        return;
    int n = (int)rn(b, 10);
    for (int i = 0; i < n; i++)
        b->in->bytes[b->in->len++] = (uint8_t)r64(b);
    b->in->rel[relidx].addend = b->in->len;
    setform(b, 0, is64(b) ? W64 : W32, is_mem(&rm));
}

/* enter N, L ; body ; leave */
static void t_enter(struct bld *b, int p)
{
    int sw = stackw(b, 0);
    int level = p;
    int n = chance(b, 3) ? 0 : (int)rn(b, 80);
    if (!stack_room(b, sw * (1 + level) + n, 0))
        return;
    enc(b, &(struct ins){ .opc = { 0xc8 }, .nopc = 1, .imm = (uint64_t)n | (uint64_t)level << 16,
                          .immsz = 3, .pf = PF_NONOISE });
    body(b, 1u << R_BP, 0);
    enc1(b, PF_NONOISE, 0xc9);
    setform(b, level, is64(b) ? W64 : W32, 0);
}

/* ---- the stack ----------------------------------------------------------- */

static void t_push_r(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    int r = pick_src(b, 0);
    if (chance(b, 16))
        r = R_SP;
    enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0x50 }, .nopc = 1,
                          .regf = r, .regk = RK_OP });
    rsp_add(b, -sw);
    setform(b, r == R_SP, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

static void t_pop_r(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, 0, sw))
        return;
    int r = pick_reg(b, 0);
    enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0x58 }, .nopc = 1,
                          .regf = r, .regk = RK_OP });
    rsp_add(b, sw);
    clob(b, r);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

static void t_push_imm(struct bld *b, int p)
{
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    if (p == 0)
        enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0x6a }, .nopc = 1,
                              .imm = ival(b, 8), .immsz = 1 });
    else
        enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0x68 }, .nopc = 1,
                              .imm = ival(b, w16 ? 16 : 32), .immsz = w16 ? 2 : 4 });
    rsp_add(b, -sw);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

static void t_push_rm(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    struct op rm = { 0 };
    if (chance(b, 2)) {
        if (!mk_mem(b, &rm, sw, 1, 0, 0))
            return;
    } else {
        rm.kind = OK_REG;
        rm.reg = pick_src(b, 0);
    }
    enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0xff }, .nopc = 1,
                          .regf = 6, .regk = RK_DIGIT, .rm = &rm });
    rsp_add(b, -sw);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, is_mem(&rm));
}

static void t_pop_rm(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, 0, sw))
        return;
    struct op rm = { 0 };
    if (chance(b, 3)) {
        rm.kind = OK_REG;
        rm.reg = pick_reg(b, 0);
    } else if (!mk_mem(b, &rm, sw, 1, MF_WRITE, sw)) {   /* rsp-based: after the pop */
        return;
    }
    enc(b, &(struct ins){ .pf = (w16 ? PF_66 : 0) | PF_NONOISE, .opc = { 0x8f }, .nopc = 1,
                          .regf = 0, .regk = RK_DIGIT, .rm = &rm });
    rsp_add(b, sw);
    if (!is_mem(&rm))
        clob(b, rm.reg);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, is_mem(&rm));
}

/* push rsp ; pop rsp (pop rsp alone would lose the stack) */
static void t_push_pop_rsp(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 3);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    unsigned pf = (w16 ? PF_66 : 0) | PF_NONOISE;
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x50 }, .nopc = 1, .regf = R_SP, .regk = RK_OP });
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x58 }, .nopc = 1, .regf = R_SP, .regk = RK_OP });
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

static void t_pushf(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    need_flags(b, F_ARITH);
    enc1(b, (w16 ? PF_66 : 0) | PF_NONOISE, 0x9c);
    fx(b, F_ARITH, 0, 0);
    if (b->cfg->mask_if_iopl) {
        /* this kvm pushes the host's IF and IOPL: clear them in the image */
        struct op o = { .kind = OK_MEM };
        o.m = (struct mem){ .asz = is64(b) ? 64 : 32, .base = R_SP, .index = R_NONE,
                            .rm16 = -1 };
        enc(b, &(struct ins){ .pf = (w16 ? PF_66 : is64(b) ? PF_W : 0) | PF_NONOISE,
                              .opc = { 0x81 }, .nopc = 1, .regf = 4, .regk = RK_DIGIT, .rm = &o,
                              .imm = ~(uint64_t)(F_IF | 0x3000), .immsz = w16 ? 2 : 4 });
        fx(b, 0, F_ARITH & ~F_AF, F_AF);
    }
    rsp_add(b, -sw);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

/* A random rflags image popf may load in ring 3 with IOPL 3: arithmetic,
 * DF, ID, IOPL (ignored in ring 3); never IF, TF or AC. Not NT either:
 * kvm_pvm does not keep NT across the host's interrupts, so it is no oracle
 * for it. */
static uint32_t rand_flags(struct bld *b)
{
    uint32_t f = 2 | ((uint32_t)r64(b) & (F_ARITH | F_DF));
    f |= (uint32_t)rn(b, 4) << 12;
    if (chance(b, 4))
        f |= F_ID;
    return f;
}

static void t_popf(struct bld *b, int p)
{
    (void)p;
    int w16 = chance(b, 4);
    int sw = stackw(b, w16);
    if (!stack_room(b, sw, 0))
        return;
    unsigned pf = (w16 ? PF_66 : 0) | PF_NONOISE;
    uint32_t f = rand_flags(b);
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x68 }, .nopc = 1, .imm = w16 ? f & 0xffff : f,
                          .immsz = w16 ? 2 : 4 });
    enc1(b, pf, 0x9d);
    fx(b, 0, F_ARITH, 0);
    setform(b, 0, w16 ? W16 : is64(b) ? W64 : W32, 0);
}

static void t_pusha(struct bld *b, int p)
{
    int w16 = chance(b, 3);
    int sw = 8 * stackw(b, w16);
    if (p == 0) {   /* pusha */
        if (!stack_room(b, sw, 0))
            return;
        enc1(b, (w16 ? PF_66 : 0) | PF_NONOISE, 0x60);
        rsp_add(b, -sw);
    } else if (p == 1) {   /* popa */
        if (!stack_room(b, 0, sw))
            return;
        enc1(b, (w16 ? PF_66 : 0) | PF_NONOISE, 0x61);
        rsp_add(b, sw);
        for (int r = 0; r < 8; r++)
            if (r != R_SP)
                clob(b, r);
    } else {   /* pushad ; body ; popad: the registers come back */
        w16 = 0;
        sw = 32;
        if (!stack_room(b, sw, 0))
            return;
        struct rk saved[NGPR];
        uint8_t st[NGPR];
        memcpy(saved, b->r, sizeof saved);
        memcpy(st, b->touched, sizeof st);
        enc1(b, PF_NONOISE, 0x60);
        body(b, 0, 0);
        enc1(b, PF_NONOISE, 0x61);
        memcpy(b->r, saved, sizeof saved);
        memcpy(b->touched, st, sizeof st);
    }
    setform(b, 0, w16 ? W16 : W32, 0);
}

/* ---- flags to and from registers ------------------------------------------ */

static void t_lahf(struct bld *b, int p)
{
    (void)p;
    uint32_t f = F_SF | F_ZF | F_AF | F_PF | F_CF;
    need_flags(b, f);
    enc1(b, 0, 0x9f);
    fx(b, f, 0, 0);
    clob(b, R_AX);
    setform(b, 0, W8H, 0);
}

static void t_sahf(struct bld *b, int p)
{
    (void)p;
    enc1(b, 0, 0x9e);
    fx(b, 0, F_SF | F_ZF | F_AF | F_PF | F_CF, 0);
    setform(b, 0, W8H, 0);
}

static void t_flagop(struct bld *b, int p)
{
    static const uint8_t opc[] = { 0xf5, 0xf8, 0xf9, 0xfc, 0xfd, 0xfa };
    if (p == 0)
        need_flags(b, F_CF);
    enc1(b, 0, opc[p]);
    if (p == 0)
        fx(b, F_CF, F_CF, 0);
    else if (p <= 2)
        fx(b, 0, F_CF, 0);
    setform(b, 0, W32, 0);
}

/* cbw/cwde/cdqe (p 0), cwd/cdq/cqo (p 1) */
static void t_cbw(struct bld *b, int p)
{
    int w = pick_w(b, WM_NO8);
    enc1(b, wpf(w), (uint8_t)(0x98 + p));
    clob(b, p ? R_DX : R_AX);
    setform(b, 0, w, 0);
}

/* ---- data movement -------------------------------------------------------- */

static void t_mov(struct bld *b, int p)
{
    int w = pick_w(b, WM_ALL);
    unsigned pf = wpf(w);
    struct op rm = { 0 };
    int r = -1;
    switch (p) {
    case 0:   /* mov r/m, r */
    case 1:   /* mov r, r/m */
        r = pick_gr(b, w, 0, p == 1);
        pick_rm(b, &rm, w, 0, p == 0, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0x88 + p * 2 + (w != W8)) }, .nopc = 1,
                              .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
        if (p == 1)
            clob(b, r);
        else if (!is_mem(&rm))
            clob(b, rm.reg);
        break;
    case 2:   /* mov r/m, imm */
        pick_rm(b, &rm, w, 0, 1, 0);
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0xc6 + (w != W8)) }, .nopc = 1,
                              .regf = 0, .regk = RK_DIGIT, .rm = &rm, .imm = imm_for(b, w),
                              .immsz = immsz_for(w) });
        if (!is_mem(&rm))
            clob(b, rm.reg);
        break;
    default: {   /* mov r, imm: b0+r, b8+r, REX.W b8+r imm64 */
        r = pick_gr(b, w, 0, 1);
        uint64_t v = ival(b, wbits(w));
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(w == W8 ? 0xb0 : 0xb8) }, .nopc = 1,
                              .regf = r, .regk = w == W8 ? RK_OP8 : RK_OP, .imm = v,
                              .immsz = wbytes(w) });
        if (w == W32 || w == W64)
            setk(b, r, v, 0);
        else
            clob(b, r);
        break;
    }
    }
    setform(b, 0, wform(w, r, &rm), is_mem(&rm));
}

/* mov al/ax/eax/rax <-> [moffs]: 64-bit offsets in long mode, 32 with 0x67;
 * 32-bit in protected mode, 16 with 0x67 */
static void t_moffs(struct bld *b, int p)
{
    int w = pick_w(b, WM_ALL);
    int size = wbytes(w);
    for (int attempt = 0; attempt < 8; attempt++) {
        int off = choose_off(b, size, 1);
        int seg = chance(b, 3) ? noise_segs[rn(b, sizeof noise_segs)] : 0;
        if (seg == 0x2e && p && !is64(b))
            seg = 0x3e;
        int64_t S = seg_base(b, seg);
        int alt = chance(b, 4);
        int asz = is64(b) ? (alt ? 32 : 64) : (alt ? 16 : 32);
        if (!addr_ok(b, asz, S, off, size))
            continue;
        enc(b, &(struct ins){ .pf = wpf(w) | (alt ? PF_67 : 0) | PF_NONOISE, .seg = seg,
                              .opc = { (uint8_t)(0xa0 + p * 2 + (w != W8)) }, .nopc = 1,
                              .immsz = asz / 8, .imm_rel = 1, .imm_mult = 1, .imm_add = off - S });
        if (!p)
            clob(b, R_AX);
        setform(b, alt, w, 1);
        return;
    }
    b->fail = 1;
}

/* mov r/m, sreg */
static void t_mov_sreg(struct bld *b, int p)
{
    (void)p;
    if (!(b->cfg->sreg_ok & 0x3f)) {
        b->fail = 1;
        return;
    }
    int sreg;
    do
        sreg = (int)rn(b, 6);
    while (!(b->cfg->sreg_ok >> sreg & 1));
    struct op rm = { 0 };
    int w = W16;
    if (chance(b, 2)) {
        mk_mem(b, &rm, 2, 1, MF_WRITE, 0);
        if (chance(b, 3))
            w = W32;
    } else {
        w = pick_w(b, WM_NO8);
        rm.kind = OK_REG;
        rm.reg = pick_reg(b, 0);
    }
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x8c }, .nopc = 1, .regf = sreg,
                          .regk = RK_DIGIT, .rm = &rm });
    if (!is_mem(&rm))
        clob(b, rm.reg);
    setform(b, sreg, w, is_mem(&rm));
}

/* movzx (p 0), movsx (p 1) */
static void t_movx(struct bld *b, int p)
{
    int src16 = chance(b, 3);
    int w = pick_w(b, WM_NO8);
    if (!src16)
        set8(b);
    int r = pick_reg(b, !src16 && b->legacy8 && is64(b) ? 0xff00u : 0);
    struct op rm;
    pick_rm(b, &rm, src16 ? W16 : W8, 0, 0, 0);
    uint8_t opc = (uint8_t)((p ? 0xbe : 0xb6) + src16);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, opc }, .nopc = 2, .regf = r,
                          .regk = RK_REG, .rm = &rm });
    clob(b, r);
    int variant = src16 ? 2 : wform(W8, -1, &rm) == W8H;
    setform(b, variant, w, is_mem(&rm));
}

/* movsxd r64, r/m32 (REX.W); r32, r/m32 and r16, r/m16 without (64-bit only) */
static void t_movsxd(struct bld *b, int p)
{
    (void)p;
    int w = pick_w(b, WM_NO8);
    int r = pick_reg(b, 0);
    struct op rm;
    pick_rm(b, &rm, w == W64 ? W32 : w, 0, 0, 0);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x63 }, .nopc = 1, .regf = r, .regk = RK_REG,
                          .rm = &rm });
    clob(b, r);
    setform(b, 0, w, is_mem(&rm));
}

static void t_lea(struct bld *b, int p)
{
    (void)p;
    int w = pick_w(b, WM_NO8);
    int r = pick_reg(b, 0);
    struct op rm;
    mk_any_mem(b, &rm);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x8d }, .nopc = 1, .regf = r, .regk = RK_REG,
                          .rm = &rm });
    clob(b, r);
    setform(b, rm.m.asz == 16 ? 0 : rm.m.asz == 32 ? 1 : 2, w, 1);
}

/* xchg r/m, r (p 0); xchg eax-family, r (p 1) */
static void t_xchg(struct bld *b, int p)
{
    if (p == 0) {
        int w = pick_w(b, WM_ALL);
        unsigned pf = wpf(w);
        int r = pick_gr(b, w, 0, 1);
        struct op rm;
        pick_rm(b, &rm, w, 0, 1, 0);
        if (is_mem(&rm) && chance(b, 4))
            pf |= PF_LOCK;
        enc(b, &(struct ins){ .pf = pf, .opc = { (uint8_t)(0x86 + (w != W8)) }, .nopc = 1,
                              .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
        clob(b, r);
        if (!is_mem(&rm))
            clob(b, rm.reg);
        setform(b, 0, wform(w, r, &rm), is_mem(&rm));
        return;
    }
    int w = pick_w(b, WM_NO8);
    int r = pick_reg(b, 1u << R_AX);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x90 }, .nopc = 1, .regf = r, .regk = RK_OP });
    clob(b, r);
    clob(b, R_AX);
    setform(b, 1, w, 0);
}

static void t_cmpxchg(struct bld *b, int p)
{
    (void)p;
    int w = pick_w(b, WM_ALL);
    unsigned pf = wpf(w);
    b->avoid |= 1u << R_AX;
    int r = pick_gr(b, w, 0, 0);
    struct op rm;
    pick_rm(b, &rm, w, 1u << R_AX, 1, 0);
    if (b->fail)
        return;
    if (chance(b, 2)) {   /* make them equal: mov acc, r/m */
        struct op acc = { .kind = OK_REG, .reg = R_AX, .byte = w == W8 };
        if (is_mem(&rm))
            enc(b, &(struct ins){ .pf = wpf(w), .opc = { (uint8_t)(0x8a + (w != W8)) }, .nopc = 1,
                                  .regf = R_AX, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
        else
            enc(b, &(struct ins){ .pf = wpf(w), .opc = { (uint8_t)(0x88 + (w != W8)) }, .nopc = 1,
                                  .regf = rm.reg, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &acc });
        clob(b, R_AX);
    }
    if (is_mem(&rm) && chance(b, 3))
        pf |= PF_LOCK;
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, (uint8_t)(0xb0 + (w != W8)) }, .nopc = 2,
                          .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
    clob(b, R_AX);
    if (!is_mem(&rm))
        clob(b, rm.reg);
    fx(b, 0, F_ARITH, 0);
    setform(b, 0, wform(w, r, &rm), is_mem(&rm));
}

/* cmpxchg8b m64 (p 0), cmpxchg16b m128 (p 1) */
static void t_cmpxchg8b(struct bld *b, int p)
{
    int size = p ? 16 : 8, half = size / 2;
    b->avoid |= (1u << R_AX) | (1u << R_DX);
    struct op rm;
    if (!mk_mem(b, &rm, size, p ? 16 : 1, MF_WRITE, 0))
        return;
    unsigned w = p ? PF_W : 0;
    if (chance(b, 2)) {
        struct op hi = mem_plus(&rm, half);
        enc(b, &(struct ins){ .pf = w, .opc = { 0x8b }, .nopc = 1, .regf = R_AX, .regk = RK_REG,
                              .rm = &rm });
        if (chance(b, 4))   /* sometimes only the low half matches */
            enc(b, &(struct ins){ .pf = w, .opc = { 0x8b }, .nopc = 1, .regf = R_DX,
                                  .regk = RK_REG, .rm = &hi });
        clob(b, R_AX);
        clob(b, R_DX);
    }
    enc(b, &(struct ins){ .pf = w | (chance(b, 3) ? PF_LOCK : 0), .opc = { 0x0f, 0xc7 },
                          .nopc = 2, .regf = 1, .regk = RK_DIGIT, .rm = &rm });
    clob(b, R_AX);
    clob(b, R_DX);
    fx(b, 0, F_ZF, 0);
    setform(b, 0, p ? W64 : W32, 1);
}

static void t_xadd(struct bld *b, int p)
{
    (void)p;
    int w = pick_w(b, WM_ALL);
    unsigned pf = wpf(w);
    int r = pick_gr(b, w, 0, 1);
    struct op rm;
    pick_rm(b, &rm, w, 0, 1, 0);
    if (is_mem(&rm) && chance(b, 3))
        pf |= PF_LOCK;
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, (uint8_t)(0xc0 + (w != W8)) }, .nopc = 2,
                          .regf = r, .regk = w == W8 ? RK_REG8 : RK_REG, .rm = &rm });
    clob(b, r);
    if (!is_mem(&rm))
        clob(b, rm.reg);
    fx(b, 0, F_ARITH, 0);
    setform(b, 0, wform(w, r, &rm), is_mem(&rm));
}

static void t_bswap(struct bld *b, int p)
{
    (void)p;
    int w = pick_w(b, (1u << W32) | (1u << W64));
    int r = pick_reg(b, 0);
    enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, 0xc8 }, .nopc = 2, .regf = r,
                          .regk = RK_OP });
    clob(b, r);
    setform(b, 0, w, 0);
}

/* xlat: al = [rbx + al] */
static void t_xlat(struct bld *b, int p)
{
    (void)p;
    int alt = chance(b, 4);
    int asz = is64(b) ? (alt ? 32 : 64) : (alt ? 16 : 32);
    for (int attempt = 0; attempt < 8; attempt++) {
        int off = (int)rn(b, 4096 - 256);
        int seg = chance(b, 3) ? noise_segs[rn(b, sizeof noise_segs)] : 0;
        int64_t S = seg_base(b, seg);
        if (!addr_ok(b, asz, S, off, 256))
            continue;
        int64_t v = off - S;
        if (alt && is64(b) && chance(b, 2))
            v += (int64_t)(r64(b) << 32);   /* 32-bit addressing ignores these */
        else if (alt && !is64(b))
            v += (int64_t)(r64(b) & 0xffff0000ull);
        if (!is64(b))
            v &= 0xffffffff;
        setup_mov(b, R_BX, (uint64_t)v, 1);
        enc(b, &(struct ins){ .pf = (alt ? PF_67 : 0) | (is64(b) && chance(b, 3) ? PF_W : 0) | PF_NONOISE,
                              .seg = seg, .opc = { 0xd7 }, .nopc = 1 });
        clob(b, R_AX);
        setform(b, alt, W8, 1);
        return;
    }
    b->fail = 1;
}

/* ---- string instructions ------------------------------------------------- */

/* p: op (0 movs, 1 stos, 2 lods, 3 cmps, 4 scas) + 8 * rep (0 none, 1 f3, 2 f2) */
static void t_str(struct bld *b, int p)
{
    int op = p & 7, rep = p >> 3;
    int w = pick_w(b, WM_ALL);
    int size = wbytes(w);
    int alt = chance(b, 4);
    int asz = is64(b) ? (alt ? 32 : 64) : (alt ? 16 : 32);
    int k = rep ? (chance(b, 8) ? 0 : (int)rn(b, 25)) : 1;
    int span = (k ? k : 1) * size;
    int src = op == 0 || op == 2 || op == 3, dst = op == 0 || op == 1 || op == 3 || op == 4;
    int seg = 0;
    int64_t S = 0;
    if (src && chance(b, 3)) {
        seg = noise_segs[rn(b, sizeof noise_segs)];
        S = seg_base(b, seg);
    } else if (!src && chance(b, 10)) {
        seg = noise_segs[rn(b, sizeof noise_segs)];   /* es: cannot be overridden */
    }
    int soff = 0, doff = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt == 8) {
            b->fail = 1;
            return;
        }
        soff = span + (int)rn(b, (unsigned)(4096 - 2 * span - size + 1));
        doff = span + (int)rn(b, (unsigned)(4096 - 2 * span - size + 1));
        if (op == 3 && chance(b, 3))
            doff = soff;   /* equal strings: repe runs to the end */
        if ((!src || addr_ok(b, asz, S, soff - span, 2 * span + size)) &&
            (!dst || addr_ok(b, asz, 0, doff - span, 2 * span + size)))
            break;
    }
    /* pointers and count; with 0x67 the upper bits must not matter */
    uint64_t garbage = 0;
    if (alt && chance(b, 2))
        garbage = is64(b) ? r64(b) << 32 : r64(b) & 0xffff0000ull;
    if (src)
        setup_mov(b, R_SI, ((uint64_t)(soff - S) + garbage) & mmask(b->mode), 1);
    if (dst)
        setup_mov(b, R_DI, ((uint64_t)doff + garbage) & mmask(b->mode), 1);
    if (rep)
        setup_mov(b, R_CX, ((uint64_t)k + garbage) & mmask(b->mode), 0);
    static const uint8_t opc[] = { 0xa4, 0xaa, 0xac, 0xa6, 0xae };
    unsigned pf = wpf(w) | (alt ? PF_67 : 0) | (rep == 1 ? PF_F3 : rep == 2 ? PF_F2 : 0) | PF_NONOISE;
    enc(b, &(struct ins){ .pf = pf, .seg = seg, .opc = { (uint8_t)(opc[op] + (w != W8)) },
                          .nopc = 1 });
    if (src)
        clob(b, R_SI);
    if (dst)
        clob(b, R_DI);
    if (rep)
        clob(b, R_CX);
    if (op == 2)
        clob(b, R_AX);
    if ((op == 3 || op == 4) && k)
        fx(b, 0, F_ARITH, 0);
    setform(b, alt, w, 1);
}

/* ---- nops ------------------------------------------------------------------ */

static void t_nop(struct bld *b, int p)
{
    (void)p;
    int v = (int)rn(b, 5);
    struct op rm = { 0 };
    int w = W32;
    switch (v) {
    case 0: enc1(b, 0, 0x90); break;
    case 1: enc1(b, PF_66, 0x90); w = W16; break;
    case 2: enc1(b, PF_F3, 0x90); break;   /* pause */
    case 3:
        w = pick_w(b, WM_NO8);
        rm.kind = OK_REG;
        rm.reg = pick_src(b, 0);
        enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, 0x1f }, .nopc = 2, .regf = 0,
                              .regk = RK_DIGIT, .rm = &rm });
        break;
    default:
        w = pick_w(b, WM_NO8);
        mk_any_mem(b, &rm);
        enc(b, &(struct ins){ .pf = wpf(w), .opc = { 0x0f, 0x1f }, .nopc = 2, .regf = 0,
                              .regk = RK_DIGIT, .rm = &rm });
        break;
    }
    setform(b, v, w, is_mem(&rm));
}

static void t_prefetch(struct bld *b, int p)
{
    (void)p;
    int hint = (int)rn(b, 4);
    struct op rm;
    if (!mk_mem(b, &rm, 1, 1, 0, 0))
        return;
    enc(b, &(struct ins){ .opc = { 0x0f, 0x18 }, .nopc = 2, .regf = hint, .regk = RK_DIGIT,
                          .rm = &rm });
    setform(b, hint, W8, 1);
}

/* ---- BCD (32-bit mode) ------------------------------------------------------ */

static void t_bcd(struct bld *b, int p)
{
    static const uint8_t opc[] = { 0x27, 0x2f, 0x37, 0x3f, 0xd4, 0xd5 };
    if (p < 2) {
        need_flags(b, F_CF | F_AF);
        enc1(b, 0, opc[p]);
        fx(b, F_CF | F_AF, F_ARITH, F_OF);
    } else if (p < 4) {
        need_flags(b, F_AF);
        enc1(b, 0, opc[p]);
        fx(b, F_AF, F_ARITH, F_OF | F_SF | F_ZF | F_PF);
    } else {
        uint64_t imm = chance(b, 2) ? 10 : rn(b, 256);
        if (p == 4 && imm == 0)
            imm = 10;
        enc(b, &(struct ins){ .opc = { opc[p] }, .nopc = 1, .imm = imm, .immsz = 1 });
        fx(b, 0, F_ARITH, F_OF | F_AF | F_CF);
    }
    clob(b, R_AX);
    setform(b, 0, W8, 0);
}

/* ==== the template table =================================================== */

/* ---- SSE, SSE2, MMX (64-bit mode: the oracle runs it on the CPU) ---------------- */

/* What an SSE form is: prefix, opcode, memory operand size, and: */
enum {
    SF_ALIGN = 1,     /* a 16-byte memory operand that must be aligned */
    SF_IMM = 2,       /* imm8 */
    SF_MMX = 4,       /* mm registers (no prefix) */
    SF_REG = 8,       /* register source only */
    SF_MEM = 0x10,    /* memory only */
    SF_STORE = 0x20,  /* r/m is the destination */
    SF_EFL = 0x40,    /* writes ZF PF CF, clears OF SF AF; no register */
    SF_GSRC = 0x80,   /* r/m is a general register or memory (reg: xmm/mm) */
    SF_GDST = 0x100,  /* reg is a general register (r/m: xmm/mm) */
    SF_W = 0x200,     /* REX.W chooses 32/64 bits of the general operand */
    SF_CMP = 0x400,   /* imm8 is a compare predicate */
    SF_G16 = 0x800,   /* the general source is r32 or m16 (pinsrw) */
};

struct sse_form {
    uint8_t pfx, op, msize;
    uint16_t fl;
};

#define XM(op) { 0x66, op, 16, SF_ALIGN }
#define MM(op) { 0, op, 8, SF_MMX }
static const struct sse_form sse_int_forms[] = {
    XM(0x60), XM(0x61), XM(0x62), XM(0x63), XM(0x64), XM(0x65), XM(0x66), XM(0x67),
    XM(0x68), XM(0x69), XM(0x6a), XM(0x6b), XM(0x6c), XM(0x6d), XM(0x74), XM(0x75),
    XM(0x76), XM(0xd1), XM(0xd2), XM(0xd3), XM(0xd4), XM(0xd5), XM(0xd8), XM(0xd9),
    XM(0xda), XM(0xdb), XM(0xdc), XM(0xdd), XM(0xde), XM(0xdf), XM(0xe0), XM(0xe1),
    XM(0xe2), XM(0xe3), XM(0xe4), XM(0xe5), XM(0xe8), XM(0xe9), XM(0xea), XM(0xeb),
    XM(0xec), XM(0xed), XM(0xee), XM(0xef), XM(0xf1), XM(0xf2), XM(0xf3), XM(0xf4),
    XM(0xf5), XM(0xf6), XM(0xf8), XM(0xf9), XM(0xfa), XM(0xfb), XM(0xfc), XM(0xfd),
    XM(0xfe),
    { 0x66, 0x70, 16, SF_ALIGN | SF_IMM }, { 0xf3, 0x70, 16, SF_ALIGN | SF_IMM },
    { 0xf2, 0x70, 16, SF_ALIGN | SF_IMM },
};
static const struct sse_form mmx_int_forms[] = {
    MM(0x60), MM(0x61), MM(0x62), MM(0x63), MM(0x64), MM(0x65), MM(0x66), MM(0x67),
    MM(0x68), MM(0x69), MM(0x6a), MM(0x6b), MM(0x74), MM(0x75), MM(0x76), MM(0xd1),
    MM(0xd2), MM(0xd3), MM(0xd4), MM(0xd5), MM(0xd8), MM(0xd9), MM(0xda), MM(0xdb),
    MM(0xdc), MM(0xdd), MM(0xde), MM(0xdf), MM(0xe0), MM(0xe1), MM(0xe2), MM(0xe3),
    MM(0xe4), MM(0xe5), MM(0xe8), MM(0xe9), MM(0xea), MM(0xeb), MM(0xec), MM(0xed),
    MM(0xee), MM(0xef), MM(0xf1), MM(0xf2), MM(0xf3), MM(0xf4), MM(0xf5), MM(0xf6),
    MM(0xf8), MM(0xf9), MM(0xfa), MM(0xfb), MM(0xfc), MM(0xfd), MM(0xfe),
    { 0, 0x70, 8, SF_MMX | SF_IMM },
    { 0, 0x6f, 8, SF_MMX }, { 0, 0x7f, 8, SF_MMX | SF_STORE }, { 0, 0xe7, 8, SF_MMX | SF_STORE | SF_MEM },
    { 0, 0x6e, 4, SF_MMX | SF_GSRC | SF_W }, { 0, 0x7e, 4, SF_MMX | SF_GSRC | SF_STORE | SF_W },
    { 0, 0xc4, 2, SF_MMX | SF_GSRC | SF_IMM | SF_G16 }, { 0, 0xc5, 0, SF_MMX | SF_GDST | SF_REG | SF_IMM },
    { 0, 0xd7, 0, SF_MMX | SF_GDST | SF_REG }, { 0, 0x77, 0, SF_MMX | SF_REG },
};
#define PS(op) { 0, op, 16, SF_ALIGN }, { 0x66, op, 16, SF_ALIGN }, { 0xf3, op, 4, 0 }, { 0xf2, op, 8, 0 }
static const struct sse_form sse_fp_forms[] = {
    PS(0x51), PS(0x58), PS(0x59), PS(0x5c), PS(0x5d), PS(0x5e), PS(0x5f),
    { 0, 0x52, 16, SF_ALIGN }, { 0xf3, 0x52, 4, 0 }, { 0, 0x53, 16, SF_ALIGN }, { 0xf3, 0x53, 4, 0 },
    { 0, 0xc2, 16, SF_ALIGN | SF_IMM | SF_CMP }, { 0x66, 0xc2, 16, SF_ALIGN | SF_IMM | SF_CMP },
    { 0xf3, 0xc2, 4, SF_IMM | SF_CMP }, { 0xf2, 0xc2, 8, SF_IMM | SF_CMP },
    { 0, 0x2e, 4, SF_EFL }, { 0x66, 0x2e, 8, SF_EFL }, { 0, 0x2f, 4, SF_EFL }, { 0x66, 0x2f, 8, SF_EFL },
    { 0, 0x54, 16, SF_ALIGN }, { 0x66, 0x54, 16, SF_ALIGN }, { 0, 0x55, 16, SF_ALIGN },
    { 0x66, 0x55, 16, SF_ALIGN }, { 0, 0x56, 16, SF_ALIGN }, { 0x66, 0x56, 16, SF_ALIGN },
    { 0, 0x57, 16, SF_ALIGN }, { 0x66, 0x57, 16, SF_ALIGN },
    { 0, 0x14, 16, SF_ALIGN }, { 0x66, 0x14, 16, SF_ALIGN }, { 0, 0x15, 16, SF_ALIGN },
    { 0x66, 0x15, 16, SF_ALIGN }, { 0, 0xc6, 16, SF_ALIGN | SF_IMM }, { 0x66, 0xc6, 16, SF_ALIGN | SF_IMM },
};
static const struct sse_form sse_cvt_forms[] = {
    { 0, 0x5a, 8, 0 }, { 0x66, 0x5a, 16, SF_ALIGN }, { 0xf3, 0x5a, 4, 0 }, { 0xf2, 0x5a, 8, 0 },
    { 0, 0x5b, 16, SF_ALIGN }, { 0x66, 0x5b, 16, SF_ALIGN }, { 0xf3, 0x5b, 16, SF_ALIGN },
    { 0x66, 0xe6, 16, SF_ALIGN }, { 0xf3, 0xe6, 8, 0 }, { 0xf2, 0xe6, 16, SF_ALIGN },
    { 0xf3, 0x2a, 4, SF_GSRC | SF_W }, { 0xf2, 0x2a, 4, SF_GSRC | SF_W },
    { 0xf3, 0x2c, 4, SF_GDST | SF_W }, { 0xf2, 0x2c, 8, SF_GDST | SF_W },
    { 0xf3, 0x2d, 4, SF_GDST | SF_W }, { 0xf2, 0x2d, 8, SF_GDST | SF_W },
    { 0, 0x2a, 8, SF_MMX }, { 0x66, 0x2a, 8, SF_MMX }, { 0, 0x2c, 8, SF_MMX },
    { 0x66, 0x2c, 16, SF_MMX | SF_ALIGN }, { 0, 0x2d, 8, SF_MMX },
    { 0x66, 0x2d, 16, SF_MMX | SF_ALIGN },
    { 0xf3, 0xd6, 0, SF_MMX | SF_REG }, { 0xf2, 0xd6, 0, SF_MMX | SF_REG },
};
static const struct sse_form sse_mov_forms[] = {
    { 0, 0x10, 16, 0 }, { 0x66, 0x10, 16, 0 }, { 0xf3, 0x10, 4, 0 }, { 0xf2, 0x10, 8, 0 },
    { 0, 0x11, 16, SF_STORE }, { 0x66, 0x11, 16, SF_STORE }, { 0xf3, 0x11, 4, SF_STORE },
    { 0xf2, 0x11, 8, SF_STORE }, { 0, 0x28, 16, SF_ALIGN }, { 0x66, 0x28, 16, SF_ALIGN },
    { 0, 0x29, 16, SF_ALIGN | SF_STORE }, { 0x66, 0x29, 16, SF_ALIGN | SF_STORE },
    { 0x66, 0x6f, 16, SF_ALIGN }, { 0xf3, 0x6f, 16, 0 }, { 0x66, 0x7f, 16, SF_ALIGN | SF_STORE },
    { 0xf3, 0x7f, 16, SF_STORE },
    { 0, 0x12, 8, 0 }, { 0x66, 0x12, 8, SF_MEM }, { 0, 0x13, 8, SF_MEM | SF_STORE },
    { 0x66, 0x13, 8, SF_MEM | SF_STORE }, { 0, 0x16, 8, 0 }, { 0x66, 0x16, 8, SF_MEM },
    { 0, 0x17, 8, SF_MEM | SF_STORE }, { 0x66, 0x17, 8, SF_MEM | SF_STORE },
    { 0, 0x2b, 16, SF_ALIGN | SF_MEM | SF_STORE }, { 0x66, 0x2b, 16, SF_ALIGN | SF_MEM | SF_STORE },
    { 0x66, 0xe7, 16, SF_ALIGN | SF_MEM | SF_STORE },
    { 0x66, 0x6e, 4, SF_GSRC | SF_W }, { 0x66, 0x7e, 4, SF_GSRC | SF_STORE | SF_W },
    { 0xf3, 0x7e, 8, 0 }, { 0x66, 0xd6, 8, SF_STORE },
    { 0x66, 0xc4, 2, SF_GSRC | SF_IMM | SF_G16 }, { 0x66, 0xc5, 0, SF_GDST | SF_REG | SF_IMM },
    { 0x66, 0xd7, 0, SF_GDST | SF_REG }, { 0, 0x50, 0, SF_GDST | SF_REG },
    { 0x66, 0x50, 0, SF_GDST | SF_REG },
    { 0, 0xc3, 4, SF_GSRC | SF_STORE | SF_MEM | SF_W },
};

static const struct sse_form *sse_tabs[] = { sse_int_forms, mmx_int_forms, sse_fp_forms,
                                             sse_cvt_forms, sse_mov_forms };
static const unsigned sse_tab_n[] = {
    sizeof sse_int_forms / sizeof sse_int_forms[0], sizeof mmx_int_forms / sizeof mmx_int_forms[0],
    sizeof sse_fp_forms / sizeof sse_fp_forms[0], sizeof sse_cvt_forms / sizeof sse_cvt_forms[0],
    sizeof sse_mov_forms / sizeof sse_mov_forms[0],
};

/* param: table * 256 + first form; the template covers up to 16 forms. */
static void t_sse(struct bld *b, int p)
{
    unsigned tab = (unsigned)p >> 8, first = (unsigned)p & 0xff;
    unsigned n = sse_tab_n[tab] - first;
    if (n > 16)
        n = 16;
    unsigned v = rn(b, n);
    const struct sse_form *f = &sse_tabs[tab][first + v];
    unsigned fl = f->fl;
    bool mmx_reg = fl & SF_MMX;
    /* cvt forms with an mm operand: the other one is xmm */
    bool cvt_mm = tab == 3 && mmx_reg;
    /* which side is the xmm register: cvtpi2ps/pd and movq2dq read an mm one */
    bool xmm_reg = f->op == 0x2a || (f->op == 0xd6 && f->pfx == 0xf3);
    int nreg = mmx_reg && !cvt_mm ? 8 : 16;
    int wide = (fl & SF_W) && chance(b, 2);
    unsigned pf = f->pfx == 0x66 ? PF_66 : f->pfx == 0xf3 ? PF_F3 : f->pfx == 0xf2 ? PF_F2 : 0;
    if (wide)
        pf |= PF_W;
    struct op rm;
    memset(&rm, 0, sizeof rm);
    int reg;
    int mem = !(fl & SF_REG) && ((fl & SF_MEM) || chance(b, 2));
    if (f->op == 0x77) {
        enc(b, &(struct ins){ .opc = { 0x0f, 0x77 }, .nopc = 2 });
        setform(b, (int)v, W32, 0);
        return;
    }
    if (fl & SF_GDST) {
        reg = pick_reg(b, 0);
        if (mem) {
            mk_mem(b, &rm, f->msize, (fl & SF_ALIGN) ? 16 : 1, 0, 0);
        } else {
            rm.kind = OK_REG;
            rm.reg = (int)rn(b, cvt_mm ? 16 : (unsigned)nreg);
        }
        clob(b, reg);
    } else if (fl & SF_GSRC) {
        reg = (int)rn(b, (unsigned)nreg);
        int size = (fl & SF_G16) ? 2 : wide ? 8 : 4;
        if (mem) {
            mk_mem(b, &rm, size, 1, (fl & SF_STORE) ? MF_WRITE : 0, 0);
        } else {
            rm.kind = OK_REG;
            rm.reg = (fl & SF_STORE) ? pick_reg(b, 0) : pick_src(b, 0);
            if (fl & SF_STORE)
                clob(b, rm.reg);
        }
    } else {
        reg = (int)rn(b, cvt_mm ? (xmm_reg ? 16 : 8) : (unsigned)nreg);
        if (mem) {
            mk_mem(b, &rm, f->msize, (fl & SF_ALIGN) ? 16 : 1, (fl & SF_STORE) ? MF_WRITE : 0, 0);
        } else {
            rm.kind = OK_REG;
            rm.reg = (int)rn(b, cvt_mm ? (xmm_reg ? 8 : 16) : (unsigned)nreg);
        }
    }
    uint64_t imm = 0;
    if (fl & SF_CMP)
        imm = chance(b, 8) ? r64(b) & 0xff : rn(b, 8);
    else if (fl & SF_IMM)
        imm = r64(b) & 0xff;
    enc(b, &(struct ins){ .pf = pf, .opc = { 0x0f, f->op }, .nopc = 2, .regf = reg,
                          .regk = RK_REG, .rm = &rm, .imm = imm,
                          .immsz = (fl & SF_IMM) ? 1 : 0 });
    if (fl & SF_EFL)
        fx(b, 0, F_ARITH, 0);
    setform(b, (int)v, wide ? W64 : W32, mem);
}

/* 0f 71-73: shifts by an immediate. */
static void t_sse_shift_imm(struct bld *b, int p)
{
    static const uint8_t ops[8][2] = { { 0x71, 2 }, { 0x71, 4 }, { 0x71, 6 }, { 0x72, 2 },
                                       { 0x72, 4 }, { 0x72, 6 }, { 0x73, 2 }, { 0x73, 6 } };
    unsigned v = rn(b, p ? 8 : 10);
    unsigned op, digit;
    if (v < 8) {
        op = ops[v][0];
        digit = ops[v][1];
    } else {
        op = 0x73;
        digit = v == 8 ? 3 : 7;
    }
    struct op rm = { .kind = OK_REG, .reg = (int)rn(b, p ? 8 : 16) };
    uint64_t imm = chance(b, 2) ? rn(b, 20) : r64(b) & 0xff;
    enc(b, &(struct ins){ .pf = p ? 0 : PF_66, .opc = { 0x0f, (uint8_t)op }, .nopc = 2,
                          .regf = (int)digit, .regk = RK_DIGIT, .rm = &rm, .imm = imm, .immsz = 1 });
    setform(b, (int)v, W32, 0);
}

/* ldmxcsr of a known value (every exception masked), stmxcsr. */
static void t_mxcsr(struct bld *b, int p)
{
    struct op m;
    mk_mem(b, &m, 4, 1, MF_WRITE, 0);
    if (p == 0) {
        uint32_t v = 0x1f80 | ((uint32_t)r64(b) & (0x3f | 0x40 | 0x6000 | 0x8000));
        enc(b, &(struct ins){ .opc = { 0xc7 }, .nopc = 1, .regk = RK_DIGIT, .rm = &m,
                              .imm = v, .immsz = 4 });
    }
    enc(b, &(struct ins){ .opc = { 0x0f, 0xae }, .nopc = 2, .regf = p ? 3 : 2, .regk = RK_DIGIT,
                          .rm = &m });
    setform(b, p, W32, 1);
}

/* fences, clflush */
static void t_fence(struct bld *b, int p)
{
    (void)p;
    unsigned v = rn(b, 4);
    if (v < 3) {
        struct op rm = { .kind = OK_REG, .reg = 0 };
        enc(b, &(struct ins){ .opc = { 0x0f, 0xae }, .nopc = 2, .regf = (int)(5 + v),
                              .regk = RK_DIGIT, .rm = &rm });
        setform(b, (int)v, W32, 0);
        return;
    }
    struct op m;
    mk_mem(b, &m, 1, 1, 0, 0);
    enc(b, &(struct ins){ .opc = { 0x0f, 0xae }, .nopc = 2, .regf = 7, .regk = RK_DIGIT, .rm = &m });
    setform(b, 3, W32, 1);
}

/* ---- x87 ------------------------------------------------------------------------------ */

/* Register forms: opcode byte and ModRM.reg per variant, st(i) random. */
struct x87_form { uint8_t op, digit, fixed_rm, efl; };
static const struct x87_form x87_reg_forms[] = {
    { 0xd8, 0, 8, 0 }, { 0xd8, 1, 8, 0 }, { 0xd8, 2, 8, 0 }, { 0xd8, 3, 8, 0 },
    { 0xd8, 4, 8, 0 }, { 0xd8, 5, 8, 0 }, { 0xd8, 6, 8, 0 }, { 0xd8, 7, 8, 0 },
    { 0xdc, 0, 8, 0 }, { 0xdc, 1, 8, 0 }, { 0xdc, 4, 8, 0 }, { 0xdc, 5, 8, 0 },
    { 0xdc, 6, 8, 0 }, { 0xdc, 7, 8, 0 }, { 0xde, 0, 8, 0 }, { 0xde, 1, 8, 0 },
    /* 16 */
    { 0xde, 4, 8, 0 }, { 0xde, 5, 8, 0 }, { 0xde, 6, 8, 0 }, { 0xde, 7, 8, 0 },
    { 0xde, 3, 1, 0 }, { 0xdd, 4, 8, 0 }, { 0xdd, 5, 8, 0 }, { 0xda, 5, 1, 0 },
    { 0xdb, 5, 8, 1 }, { 0xdb, 6, 8, 1 }, { 0xdf, 5, 8, 1 }, { 0xdf, 6, 8, 1 },
    { 0xd9, 0, 8, 0 }, { 0xd9, 1, 8, 0 }, { 0xdd, 2, 8, 0 }, { 0xdd, 3, 8, 0 },
    /* 32 */
    { 0xdd, 0, 8, 0 }, { 0xdf, 0, 8, 0 }, { 0xd9, 2, 0, 0 }, { 0xda, 0, 8, 2 },
    { 0xda, 1, 8, 2 }, { 0xda, 2, 8, 2 }, { 0xda, 3, 8, 2 }, { 0xdb, 0, 8, 2 },
    { 0xdb, 1, 8, 2 }, { 0xdb, 2, 8, 2 }, { 0xdb, 3, 8, 2 }, { 0xdb, 4, 2, 0 },
    { 0xdb, 4, 3, 0 },
};
/* d9 e0-ff */
static const uint8_t x87_d9_ops[] = { 0xe0, 0xe1, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed,
                                      0xee, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
                                      0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff };

static void t_x87_reg(struct bld *b, int p)
{
    unsigned n = sizeof x87_reg_forms / sizeof x87_reg_forms[0] - (unsigned)p;
    if (n > 16)
        n = 16;
    unsigned v = rn(b, n);
    const struct x87_form *f = &x87_reg_forms[(unsigned)p + v];
    if (f->efl == 2)
        need_flags(b, F_CF | F_ZF | F_PF);
    struct op rm = { .kind = OK_REG, .reg = f->fixed_rm < 8 ? f->fixed_rm : (int)rn(b, 8) };
    enc(b, &(struct ins){ .opc = { f->op }, .nopc = 1, .regf = f->digit, .regk = RK_DIGIT,
                          .rm = &rm });
    if (f->efl == 1)
        fx(b, 0, F_ARITH, 0);
    setform(b, (int)v, W32, 0);
}

static void t_x87_d9(struct bld *b, int p)
{
    unsigned n = sizeof x87_d9_ops - (unsigned)p;
    if (n > 16)
        n = 16;
    unsigned v = rn(b, n);
    uint8_t op = x87_d9_ops[(unsigned)p + v];
    enc(b, &(struct ins){ .opc = { 0xd9, op }, .nopc = 2 });
    setform(b, (int)v, W32, 0);
}

/* Memory forms: opcode, digit, operand size. */
static const struct x87_form x87_mem_forms[] = {
    /* arithmetic and compares: d8 m32, dc m64, da m32int, de m16int */
    { 0xd8, 0, 4, 0 }, { 0xd8, 1, 4, 0 }, { 0xd8, 2, 4, 0 }, { 0xd8, 3, 4, 0 },
    { 0xd8, 4, 4, 0 }, { 0xd8, 5, 4, 0 }, { 0xd8, 6, 4, 0 }, { 0xd8, 7, 4, 0 },
    { 0xdc, 0, 8, 0 }, { 0xdc, 1, 8, 0 }, { 0xdc, 2, 8, 0 }, { 0xdc, 3, 8, 0 },
    { 0xdc, 4, 8, 0 }, { 0xdc, 5, 8, 0 }, { 0xdc, 6, 8, 0 }, { 0xdc, 7, 8, 0 },
    { 0xda, 0, 4, 0 }, { 0xda, 1, 4, 0 }, { 0xda, 2, 4, 0 }, { 0xda, 3, 4, 0 },
    { 0xda, 4, 4, 0 }, { 0xda, 5, 4, 0 }, { 0xda, 6, 4, 0 }, { 0xda, 7, 4, 0 },
    { 0xde, 0, 2, 0 }, { 0xde, 1, 2, 0 }, { 0xde, 2, 2, 0 }, { 0xde, 3, 2, 0 },
    { 0xde, 4, 2, 0 }, { 0xde, 5, 2, 0 }, { 0xde, 6, 2, 0 }, { 0xde, 7, 2, 0 },
    /* loads */
    { 0xd9, 0, 4, 0 }, { 0xdd, 0, 8, 0 }, { 0xdb, 5, 10, 0 }, { 0xdf, 0, 2, 0 },
    { 0xdb, 0, 4, 0 }, { 0xdf, 5, 8, 0 }, { 0xdf, 4, 10, 0 },
    /* stores (1: writes) */
    { 0xd9, 2, 4, 1 }, { 0xd9, 3, 4, 1 }, { 0xdd, 2, 8, 1 }, { 0xdd, 3, 8, 1 },
    { 0xdb, 7, 10, 1 }, { 0xdf, 2, 2, 1 }, { 0xdf, 3, 2, 1 }, { 0xdb, 2, 4, 1 },
    { 0xdb, 3, 4, 1 }, { 0xdf, 7, 8, 1 }, { 0xdb, 1, 4, 1 }, { 0xdd, 1, 8, 1 },
    { 0xdf, 1, 2, 1 }, { 0xdf, 6, 10, 1 },
    /* control: fnstcw fnstsw m16 */
    { 0xd9, 7, 2, 1 }, { 0xdd, 7, 2, 1 },
};

static void t_x87_mem(struct bld *b, int p)
{
    unsigned n = sizeof x87_mem_forms / sizeof x87_mem_forms[0] - (unsigned)p;
    if (n > 16)
        n = 16;
    unsigned v = rn(b, n);
    const struct x87_form *f = &x87_mem_forms[(unsigned)p + v];
    struct op m;
    mk_mem(b, &m, f->fixed_rm, 1, f->efl ? MF_WRITE : 0, 0);
    enc(b, &(struct ins){ .opc = { f->op }, .nopc = 1, .regf = f->digit, .regk = RK_DIGIT,
                          .rm = &m });
    setform(b, (int)v, W32, 1);
}

/* Overwrite FIP/FOP/FDP/FCS/FDS in a stored image (the SDM leaves what
 * they hold to the implementation). */
static void zero_fields(struct bld *b, const struct op *m, const int *offs, int n)
{
    for (int k = 0; k < n; k++) {
        struct op f = mem_plus(m, offs[k]);
        enc(b, &(struct ins){ .opc = { 0xc7 }, .nopc = 1, .regk = RK_DIGIT, .rm = &f,
                              .imm = 0, .immsz = 4 });
    }
}

/* Control instructions: fnstsw ax, fldcw (of a known, masked value),
 * fnclex, fninit, fnstenv+fldenv, fnsave+frstor, fxsave+fxrstor, fwait. */
static void t_x87_ctl(struct bld *b, int p)
{
    (void)p;
    unsigned v = rn(b, 8);
    struct op m;
    switch (v) {
    case 0:
        enc(b, &(struct ins){ .opc = { 0xdf, 0xe0 }, .nopc = 2 });
        clob(b, R_AX);
        break;
    case 1: {
        mk_mem(b, &m, 2, 1, MF_WRITE, 0);
        uint16_t cw = (uint16_t)(0x7f | (r64(b) & 0xf00));
        if ((cw & 0x300) == 0x100)
            cw |= 0x200;
        enc(b, &(struct ins){ .pf = PF_66, .opc = { 0xc7 }, .nopc = 1, .regk = RK_DIGIT,
                              .rm = &m, .imm = cw, .immsz = 2 });
        enc(b, &(struct ins){ .opc = { 0xd9 }, .nopc = 1, .regf = 5, .regk = RK_DIGIT, .rm = &m });
        break;
    }
    case 2: enc(b, &(struct ins){ .opc = { 0xdb, 0xe2 }, .nopc = 2 }); break;
    case 3: enc(b, &(struct ins){ .opc = { 0xdb, 0xe3 }, .nopc = 2 }); break;
    case 4:
    case 5: {
        static const int offs[] = { 12, 16, 20, 24 };
        mk_mem(b, &m, v == 4 ? 28 : 108, 1, MF_WRITE, 0);
        enc(b, &(struct ins){ .opc = { (uint8_t)(v == 4 ? 0xd9 : 0xdd) }, .nopc = 1, .regf = 6,
                              .regk = RK_DIGIT, .rm = &m });
        zero_fields(b, &m, offs, 4);
        if (chance(b, 2))
            enc(b, &(struct ins){ .opc = { (uint8_t)(v == 4 ? 0xd9 : 0xdd) }, .nopc = 1,
                                  .regf = 4, .regk = RK_DIGIT, .rm = &m });
        break;
    }
    case 6: {
        static const int offs[] = { 6, 10, 14, 18, 20 };
        mk_mem(b, &m, 512, 16, MF_WRITE, 0);
        unsigned w = chance(b, 2) ? PF_W : 0;
        enc(b, &(struct ins){ .pf = w, .opc = { 0x0f, 0xae }, .nopc = 2, .regf = 0,
                              .regk = RK_DIGIT, .rm = &m });
        zero_fields(b, &m, offs, 5);
        if (chance(b, 2)) {
            enc(b, &(struct ins){ .pf = w, .opc = { 0x0f, 0xae }, .nopc = 2, .regf = 1,
                                  .regk = RK_DIGIT, .rm = &m });
        }
        break;
    }
    default: enc1(b, 0, 0x9b); break;
    }
    setform(b, (int)v, W32, v == 1 || (v >= 4 && v <= 6));
}

#define ALU(name, op)                                                            \
    { name "_rm_r", t_alu, op | AF_RM_R << 3, T_BOTH, 0 },                       \
    { name "_r_rm", t_alu, op | AF_R_RM << 3, T_BOTH, 0 },                       \
    { name "_acc_imm", t_alu, op | AF_ACC_IMM << 3, T_BOTH, 0 },                 \
    { name "_rm_imm", t_alu, op | AF_RM_IMM << 3, T_BOTH, 0 },                   \
    { name "_rm_imm8", t_alu, op | AF_RM_IMM8 << 3, T_BOTH, 0 },                 \
    { name "_rm_imm_82", t_alu, op | AF_RM_IMM82 << 3, T_PROT32, 1 }

#define SHIFT(name, op)                                                          \
    { name "_1", t_shift, op, T_BOTH, 0 },                                       \
    { name "_imm", t_shift, op | 1 << 3, T_BOTH, 0 },                            \
    { name "_cl", t_shift, op | 2 << 3, T_BOTH, 0 }

const struct tmpl dt_templates[] = {
    ALU("add", 0), ALU("or", 1), ALU("adc", 2), ALU("sbb", 3),
    ALU("and", 4), ALU("sub", 5), ALU("xor", 6), ALU("cmp", 7),
    { "test_rm_r", t_test, 0, T_BOTH, 0 },
    { "test_acc_imm", t_test, 1, T_BOTH, 0 },
    { "test_rm_imm", t_test, 2, T_BOTH, 0 },
    { "inc_rm", t_unary, 0, T_BOTH, 0 },
    { "dec_rm", t_unary, 1, T_BOTH, 0 },
    { "not", t_unary, 2, T_BOTH, 0 },
    { "neg", t_unary, 3, T_BOTH, 0 },
    { "inc_r_short", t_incdec_short, 0, T_PROT32, 0 },
    { "dec_r_short", t_incdec_short, 1, T_PROT32, 0 },
    { "mul", t_mul1, 0, T_BOTH, 0 },
    { "imul_1op", t_mul1, 1, T_BOTH, 0 },
    { "div", t_div, 0, T_BOTH, 3 },
    { "idiv", t_div, 1, T_BOTH, 3 },
    { "imul_r_rm", t_imul, 0, T_BOTH, 0 },
    { "imul_r_rm_imm8", t_imul, 1, T_BOTH, 0 },
    { "imul_r_rm_imm", t_imul, 2, T_BOTH, 0 },
    SHIFT("rol", 0), SHIFT("ror", 1), SHIFT("rcl", 2), SHIFT("rcr", 3),
    SHIFT("shl", 4), SHIFT("shr", 5), SHIFT("sar", 7),
    { "shld_imm", t_shxd, 0, T_BOTH, 0 },
    { "shrd_imm", t_shxd, 1, T_BOTH, 0 },
    { "shld_cl", t_shxd, 2, T_BOTH, 0 },
    { "shrd_cl", t_shxd, 3, T_BOTH, 0 },
    { "bt_rm_r", t_bt, 0, T_BOTH, 0 },
    { "bts_rm_r", t_bt, 1, T_BOTH, 0 },
    { "btr_rm_r", t_bt, 2, T_BOTH, 0 },
    { "btc_rm_r", t_bt, 3, T_BOTH, 0 },
    { "bt_rm_imm", t_bt, 4, T_BOTH, 0 },
    { "bts_rm_imm", t_bt, 5, T_BOTH, 0 },
    { "btr_rm_imm", t_bt, 6, T_BOTH, 0 },
    { "btc_rm_imm", t_bt, 7, T_BOTH, 0 },
    { "bsf", t_bitscan, 0, T_BOTH, 0 },
    { "bsr", t_bitscan, 1, T_BOTH, 0 },
    { "tzcnt", t_bitscan, 2, T_BOTH, 0 },
    { "lzcnt", t_bitscan, 3, T_BOTH, 0 },
    { "popcnt", t_bitscan, 4, T_BOTH, 0 },
    { "setcc", t_setcc, 0, T_BOTH, 4 },
    { "cmovcc", t_cmov, 0, T_BOTH, 4 },
    { "jcc_short", t_jcc, 0, T_BOTH, 4 },
    { "jcc_near", t_jcc, 1, T_BOTH, 3 },
    { "jmp_short", t_jmp, 0, T_BOTH, 0 },
    { "jmp_near", t_jmp, 1, T_BOTH, 0 },
    { "jmp_r", t_jmp_rm, 0, T_BOTH, 0 },
    { "jmp_m", t_jmp_rm, 1, T_BOTH, 0 },
    { "loop", t_loop, 0, T_BOTH, 0 },
    { "loope", t_loop, 1, T_BOTH, 0 },
    { "loopne", t_loop, 2, T_BOTH, 0 },
    { "jcxz", t_jcxz, 0, T_BOTH, 0 },
    { "call_ret", t_call, 0, T_BOTH, 0 },
    { "call_ret_imm", t_call, 1, T_BOTH, 0 },
    { "call_r", t_call, 2, T_BOTH, 0 },
    { "call_m", t_call, 3, T_BOTH, 0 },
    { "enter_leave", t_enter, 0, T_BOTH, 0 },
    { "enter1_leave", t_enter, 1, T_BOTH, 1 },
    { "push_r", t_push_r, 0, T_BOTH, 0 },
    { "pop_r", t_pop_r, 0, T_BOTH, 0 },
    { "push_imm8", t_push_imm, 0, T_BOTH, 0 },
    { "push_imm", t_push_imm, 1, T_BOTH, 0 },
    { "push_rm", t_push_rm, 0, T_BOTH, 0 },
    { "pop_rm", t_pop_rm, 0, T_BOTH, 0 },
    { "push_pop_rsp", t_push_pop_rsp, 0, T_BOTH, 0 },
    { "pushf", t_pushf, 0, T_BOTH, 0 },
    { "popf", t_popf, 0, T_BOTH, 0 },
    { "pusha", t_pusha, 0, T_PROT32, 0 },
    { "popa", t_pusha, 1, T_PROT32, 0 },
    { "pusha_popa", t_pusha, 2, T_PROT32, 0 },
    { "lahf", t_lahf, 0, T_BOTH, 0 },
    { "sahf", t_sahf, 0, T_BOTH, 0 },
    { "cmc", t_flagop, 0, T_BOTH, 0 },
    { "clc", t_flagop, 1, T_BOTH, 1 },
    { "stc", t_flagop, 2, T_BOTH, 1 },
    { "cld", t_flagop, 3, T_BOTH, 1 },
    { "std", t_flagop, 4, T_BOTH, 1 },
    { "cli", t_flagop, 5, T_BOTH, 1 },
    { "cbw_cwde_cdqe", t_cbw, 0, T_BOTH, 0 },
    { "cwd_cdq_cqo", t_cbw, 1, T_BOTH, 0 },
    { "mov_rm_r", t_mov, 0, T_BOTH, 0 },
    { "mov_r_rm", t_mov, 1, T_BOTH, 0 },
    { "mov_rm_imm", t_mov, 2, T_BOTH, 0 },
    { "mov_r_imm", t_mov, 3, T_BOTH, 0 },
    { "mov_acc_moffs", t_moffs, 0, T_BOTH, 0 },
    { "mov_moffs_acc", t_moffs, 1, T_BOTH, 0 },
    { "mov_rm_sreg", t_mov_sreg, 0, T_BOTH, 0 },
    { "movzx", t_movx, 0, T_BOTH, 0 },
    { "movsx", t_movx, 1, T_BOTH, 0 },
    { "movsxd", t_movsxd, 0, T_LONG64, 0 },
    { "lea", t_lea, 0, T_BOTH, 0 },
    { "xchg_rm_r", t_xchg, 0, T_BOTH, 0 },
    { "xchg_acc_r", t_xchg, 1, T_BOTH, 0 },
    { "cmpxchg", t_cmpxchg, 0, T_BOTH, 0 },
    { "cmpxchg8b", t_cmpxchg8b, 0, T_BOTH, 0 },
    { "cmpxchg16b", t_cmpxchg8b, 1, T_LONG64 | T_NORING0, 0 },
    { "xadd", t_xadd, 0, T_BOTH, 0 },
    { "bswap", t_bswap, 0, T_BOTH, 0 },
    { "xlat", t_xlat, 0, T_BOTH, 0 },
    { "movs", t_str, 0, T_BOTH, 0 },
    { "rep_movs", t_str, 0 | 1 << 3, T_BOTH, 0 },
    { "stos", t_str, 1, T_BOTH, 0 },
    { "rep_stos", t_str, 1 | 1 << 3, T_BOTH, 0 },
    { "lods", t_str, 2, T_BOTH, 0 },
    { "rep_lods", t_str, 2 | 1 << 3, T_BOTH, 0 },
    { "cmps", t_str, 3, T_BOTH, 0 },
    { "repe_cmps", t_str, 3 | 1 << 3, T_BOTH, 0 },
    { "repne_cmps", t_str, 3 | 2 << 3, T_BOTH, 0 },
    { "scas", t_str, 4, T_BOTH, 0 },
    { "repe_scas", t_str, 4 | 1 << 3, T_BOTH, 0 },
    { "repne_scas", t_str, 4 | 2 << 3, T_BOTH, 0 },
    { "nop", t_nop, 0, T_BOTH, 0 },
    { "prefetch", t_prefetch, 0, T_BOTH, 1 },
    { "daa", t_bcd, 0, T_PROT32, 1 },
    { "das", t_bcd, 1, T_PROT32, 1 },
    { "aaa", t_bcd, 2, T_PROT32, 1 },
    { "aas", t_bcd, 3, T_PROT32, 1 },
    { "aam", t_bcd, 4, T_PROT32, 1 },
    { "aad", t_bcd, 5, T_PROT32, 1 },
    { "sse_int0", t_sse, 0 << 8 | 0, T_LONG64, 1 },
    { "sse_int1", t_sse, 0 << 8 | 16, T_LONG64, 1 },
    { "sse_int2", t_sse, 0 << 8 | 32, T_LONG64, 1 },
    { "sse_int3", t_sse, 0 << 8 | 48, T_LONG64, 1 },
    { "mmx_int0", t_sse, 1 << 8 | 0, T_LONG64, 1 },
    { "mmx_int1", t_sse, 1 << 8 | 16, T_LONG64, 1 },
    { "mmx_int2", t_sse, 1 << 8 | 32, T_LONG64, 1 },
    { "mmx_int3", t_sse, 1 << 8 | 48, T_LONG64, 1 },
    { "sse_fp0", t_sse, 2 << 8 | 0, T_LONG64, 1 },
    { "sse_fp1", t_sse, 2 << 8 | 16, T_LONG64, 1 },
    { "sse_fp2", t_sse, 2 << 8 | 32, T_LONG64, 1 },
    { "sse_fp3", t_sse, 2 << 8 | 48, T_LONG64, 1 },
    { "sse_cvt0", t_sse, 3 << 8 | 0, T_LONG64, 1 },
    { "sse_cvt1", t_sse, 3 << 8 | 16, T_LONG64, 1 },
    { "sse_mov0", t_sse, 4 << 8 | 0, T_LONG64, 1 },
    { "sse_mov1", t_sse, 4 << 8 | 16, T_LONG64, 1 },
    { "sse_mov2", t_sse, 4 << 8 | 32, T_LONG64, 1 },
    { "sse_shift_imm", t_sse_shift_imm, 0, T_LONG64, 1 },
    { "mmx_shift_imm", t_sse_shift_imm, 1, T_LONG64, 1 },
    { "mxcsr_ld", t_mxcsr, 0, T_LONG64, 1 },
    { "mxcsr_st", t_mxcsr, 1, T_LONG64, 1 },
    { "fence_clflush", t_fence, 0, T_LONG64, 1 },
    { "x87_reg0", t_x87_reg, 0, T_LONG64, 1 },
    { "x87_reg1", t_x87_reg, 16, T_LONG64, 1 },
    { "x87_reg2", t_x87_reg, 32, T_LONG64, 1 },
    { "x87_d9_0", t_x87_d9, 0, T_LONG64, 1 },
    { "x87_d9_1", t_x87_d9, 16, T_LONG64, 1 },
    { "x87_mem0", t_x87_mem, 0, T_LONG64, 1 },
    { "x87_mem1", t_x87_mem, 16, T_LONG64, 1 },
    { "x87_mem2", t_x87_mem, 32, T_LONG64, 1 },
    { "x87_mem3", t_x87_mem, 48, T_LONG64, 1 },
    { "x87_ctl", t_x87_ctl, 0, T_LONG64, 1 },
};
const unsigned dt_ntemplates = sizeof dt_templates / sizeof dt_templates[0];

/* ==== sequences ============================================================== */

static int req_ok(const struct req *q, const struct rk *st, int mode)
{
    const struct rk *k = &st[q->reg];
    if (!k->known || k->rel != q->rel)
        return 0;
    if (q->kind == RQ_EXACT)
        return ((k->v ^ q->v) & mmask(mode)) == 0;
    int64_t v = mode == DM_LONG64 ? (int64_t)k->v : (int64_t)(int32_t)(uint32_t)k->v;
    return v >= q->lo && v <= q->hi;
}

/* Check an instance against the state and apply it. */
static int apply(struct rk *st, uint32_t *undef, const struct inst *in, int mode)
{
    for (int i = 0; i < in->nreq; i++)
        if (!req_ok(&in->req[i], st, mode))
            return 0;
    if (in->fread & *undef)
        return 0;
    *undef = (*undef & ~in->fdef) | in->fundef;
    for (int r = 0; r < NGPR; r++) {
        const struct eff *e = &in->eff[r];
        switch (e->kind) {
        case EF_UNKNOWN: st[r].known = 0; break;
        case EF_KNOWN: st[r] = (struct rk){ 1, e->rel, e->v }; break;
        case EF_DELTA: st[r].v = (st[r].v + e->v) & mmask(mode); break;
        default: break;
        }
    }
    return 1;
}

bool dt_validate(struct seq *s)
{
    struct rk st[NGPR];
    memcpy(st, s->init, sizeof st);
    uint32_t undef = 0;
    for (int i = 0; i < s->n; i++)
        if (!apply(st, &undef, &s->ins[i], s->mode))
            return false;
    s->final_undef = undef;
    return true;
}

/* Build one instance of template t on the given state. */
static int build(const struct gen_cfg *cfg, uint64_t *rs, const struct rk *st, uint32_t undef,
                 unsigned t, struct inst *in)
{
    struct bld b;
    memset(&b, 0, sizeof b);
    memset(in, 0, sizeof *in);
    b.cfg = cfg;
    b.mode = cfg->mode;
    b.rs = *rs;
    b.in = in;
    memcpy(b.r, st, sizeof b.r);
    b.undef0 = undef;
    in->tmpl = (uint16_t)t;
    in->bug_off = -1;
    dt_templates[t].fn(&b, dt_templates[t].param);
    *rs = b.rs;
    if (b.fail || !b.formset || in->len == 0)
        return 0;
    in->fread = b.R;
    in->fdef = b.D;
    in->fundef = b.U;
    for (int r = 0; r < NGPR; r++) {
        if (r == R_SP) {
            if (b.rsp_delta)
                in->eff[r] = (struct eff){ .kind = EF_DELTA, .v = (uint64_t)b.rsp_delta };
        } else if (b.touched[r]) {
            in->eff[r] = b.r[r].known
                ? (struct eff){ .kind = EF_KNOWN, .rel = b.r[r].rel, .v = b.r[r].v }
                : (struct eff){ .kind = EF_UNKNOWN };
        }
    }
    if (b.rsp_req) {
        if (in->nreq >= INST_REQS)
            return 0;
        in->req[in->nreq++] = (struct req){ .reg = R_SP, .kind = RQ_RANGE, .rel = 1,
                                            .lo = (int32_t)b.rsp_lo, .hi = (int32_t)b.rsp_hi };
    }
    return 1;
}

void dt_generate(const struct gen_cfg *cfg, uint64_t seed, struct seq *s)
{
    struct bld b;   /* only for its random numbers */
    memset(&b, 0, sizeof b);
    b.rs = seed;
    b.mode = cfg->mode;
    memset(s, 0, sizeof *s);
    s->mode = cfg->mode;
    s->seed = dt_mix(seed ^ 0x5eed);
    int nr = cfg->mode == DM_LONG64 ? 16 : 8;
    int bits = cfg->mode == DM_LONG64 ? 64 : 32;
    for (int r = 0; r < NGPR; r++) {
        struct rk *k = &s->init[r];
        k->known = 1;
        if (r >= nr) {
            k->v = 0;
        } else if (r == R_SP) {
            k->rel = 1;
            k->v = 0x400 + rn(&b, 0x800);
            if (!chance(&b, 8))
                k->v &= ~7ull;
        } else {
            unsigned c = rn(&b, 20);
            if (c < 5) {
                k->rel = 1;
                k->v = (uint64_t)((int64_t)rn(&b, 4096 + 512) - 256) & mmask(cfg->mode);
            } else if (c < 8) {
                k->v = (uint64_t)((int64_t)rn(&b, 2048) - 256) & mmask(cfg->mode);
            } else {
                k->v = ival(&b, bits);
            }
        }
    }
    s->init_flags = 2 | F_IOPL3 | ((uint32_t)r64(&b) & (F_ARITH | F_DF));
    if (chance(&b, 8))
        s->init_flags |= F_ID;

    /* the templates this mode and ring may use, by weight */
    unsigned cand[512], ncand = 0;
    unsigned mbit = cfg->mode == DM_LONG64 ? T_LONG64 : T_PROT32;
    for (unsigned t = 0; t < dt_ntemplates; t++) {
        const struct tmpl *tp = &dt_templates[t];
        if (!(tp->props & mbit) || (cfg->ring == 0 && (tp->props & T_NORING0)))
            continue;
        if (cfg->enabled && !cfg->enabled[t])
            continue;
        unsigned wgt = tp->weight ? tp->weight : 2;
        for (unsigned i = 0; i < wgt && ncand < 512; i++)
            cand[ncand++] = t;
    }
    if (!ncand)
        return;
    int n = 1 + (int)rn(&b, (unsigned)cfg->maxlen);
    struct rk st[NGPR];
    memcpy(st, s->init, sizeof st);
    uint32_t undef = 0;
    for (int i = 0; i < n; i++) {
        for (int tries = 0; tries < 40; tries++) {
            unsigned t = cand[rn(&b, ncand)];
            struct inst *in = &s->ins[s->n];
            if (!build(cfg, &b.rs, st, undef, t, in))
                continue;
            struct rk st2[NGPR];
            memcpy(st2, st, sizeof st2);
            uint32_t u2 = undef;
            if (!apply(st2, &u2, in, s->mode))
                continue;   /* cannot happen: a generator bug; try another */
            memcpy(st, st2, sizeof st);
            undef = u2;
            s->n++;
            break;
        }
    }
    s->final_undef = undef;
}

void dt_fill_page(uint64_t seed, uint8_t page[4096])
{
    uint64_t x = seed;
    for (int i = 0; i < 4096; i += 64) {
        uint64_t h = dt_mix(x++);
        if ((h & 7) == 0) {          /* runs of one byte, for repe/repne */
            memset(page + i, (int)(h >> 8 & 0xff), 64);
        } else if ((h & 7) == 1) {
            memset(page + i, 0, 64);
        } else {
            for (int j = 0; j < 64; j += 8) {
                uint64_t v = dt_mix(x++);
                memcpy(page + i + j, &v, 8);
            }
        }
    }
}


/* Values that find x87/SSE bugs, as raw bits. */
static uint32_t fp32(uint64_t h, uint64_t r)
{
    switch (h % 12) {
    case 0: return 0;
    case 1: return 0x80000000u;
    case 2: return 0x7f800000u | (uint32_t)(r & 0x80000000u);                /* inf */
    case 3: return 0x7fc00000u | (uint32_t)(r & 0x803fffffu);                /* QNaN */
    case 4: return 0x7f800001u | (uint32_t)(r & 0x801fffffu);                /* SNaN */
    case 5: return (uint32_t)(r & 0x807fffffu);                              /* denormal */
    case 6: return 0x3f800000u | (uint32_t)(r & 0x80000000u) | (uint32_t)(r >> 40 & 0x7f);
    case 7: return (uint32_t)(r & 0xffffu);                                  /* small int */
    default: return (uint32_t)r;
    }
}

static uint64_t fp64(uint64_t h, uint64_t r)
{
    switch (h % 12) {
    case 0: return 0;
    case 1: return 1ull << 63;
    case 2: return 0x7ff0000000000000ull | (r & (1ull << 63));
    case 3: return 0x7ff8000000000000ull | (r & 0x8007ffffffffffffull);
    case 4: return 0x7ff0000000000001ull | (r & 0x8003ffffffffffffull);
    case 5: return r & 0x800fffffffffffffull;
    case 6: return 0x3ff0000000000000ull | (r & (1ull << 63)) | (r >> 40 & 0xff);
    case 7: return r & 0xffffffffull;
    default: return r;
    }
}

void dt_fill_fpu(uint64_t seed, uint8_t img[512])
{
    uint64_t x = seed ^ 0xf9u;
    memset(img, 0, 512);
    uint64_t h = dt_mix(x++);
    static const uint16_t pc[4] = { 0x000, 0x200, 0x300, 0x300 };
    uint16_t fcw = (uint16_t)(0x7f | pc[h & 3] | ((h >> 2 & 3) << 10));
    uint16_t fsw = (uint16_t)((dt_mix(x++) & 0x473f & ~0x40u) | ((h >> 4 & 7) << 11));
    uint64_t t1 = dt_mix(x++), t2 = dt_mix(x++);
    uint8_t ftw = (uint8_t)(t1 | t2);   /* 3/4 of the registers valid */
    uint32_t mxcsr = 0x1f80 | (uint32_t)(h >> 8 & 0x3f) | ((h >> 14 & 1) ? 0x40 : 0) |
                     (uint32_t)(h >> 15 & 3) << 13 | ((h >> 17 & 1) ? 0x8000 : 0);
    memcpy(img, &fcw, 2);
    memcpy(img + 2, &fsw, 2);
    img[4] = ftw;
    memcpy(img + 24, &mxcsr, 4);
    for (int k = 0; k < 8; k++) {
        uint64_t a = dt_mix(x++), r = dt_mix(x++);
        uint64_t mant;
        uint16_t sexp = (uint16_t)(r >> 48 & 0x8000);
        switch (a % 10) {
        case 0: mant = 0; break;                                   /* zero */
        case 1: mant = 1ull << 63; sexp |= 0x7fff; break;          /* inf */
        case 2: mant = 3ull << 62 | (r >> 3); sexp |= 0x7fff; break;  /* QNaN */
        case 3: mant = r >> 2 | 1ull << 63 | 1; mant &= ~(1ull << 62); sexp |= 0x7fff; break;
        case 4: mant = r >> 1; break;                              /* denormal */
        case 5: mant = 1ull << 63 | (r & 0xfff); sexp |= (uint16_t)(0x3fff + (a >> 8) % 64); break;
        default: mant = r | 1ull << 63; sexp |= (uint16_t)(0x3fff + (int)((a >> 8) % 200) - 100); break;
        }
        if (a % 97 == 96)
            mant &= ~(1ull << 63);                                 /* unnormal */
        memcpy(img + 32 + 16 * k, &mant, 8);
        memcpy(img + 40 + 16 * k, &sexp, 2);
    }
    for (int k = 0; k < 16; k++) {
        uint64_t a = dt_mix(x++);
        for (int l = 0; l < 2; l++) {
            uint64_t r = dt_mix(x++), hh = dt_mix(x++), q;
            switch (a >> (8 * l) & 3) {
            case 0: q = r; break;
            case 1: q = fp64(hh, r); break;
            default: q = fp32(hh, r) | (uint64_t)fp32(hh >> 8, r >> 13) << 32; break;
            }
            memcpy(img + 160 + 16 * k + 8 * l, &q, 8);
        }
    }
}

uint64_t dt_value(const struct rk *k, uint64_t page_base, int mode)
{
    return (k->v + (k->rel ? page_base : 0)) & mmask(mode);
}

void dt_place(const struct inst *in, uint64_t addr, uint64_t page_base, int mode, uint8_t *out)
{
    (void)mode;
    memcpy(out, in->bytes, in->len);
    for (int i = 0; i < in->nrel; i++) {
        const struct reloc *r = &in->rel[i];
        uint64_t v = (uint64_t)r->addend + (uint64_t)(int64_t)r->mult * page_base;
        if (r->code)
            v += addr;
        if (r->pcrel)
            v -= addr + r->end;
        for (int j = 0; j < r->size; j++)
            out[r->off + j] = (uint8_t)(v >> (8 * j));
    }
}

void dt_raw_seq(struct seq *s, int mode, const uint8_t *bytes, int len)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    for (int r = 0; r < NGPR; r++)
        s->init[r] = (struct rk){ .known = 1, .rel = r == R_SP, .v = r == R_SP ? 0x800 : 0 };
    s->init_flags = 2 | F_IOPL3;
    s->n = 1;
    struct inst *in = &s->ins[0];
    in->bug_off = -1;
    for (unsigned t = 0; t < dt_ntemplates; t++)
        if (dt_templates[t].fn == t_nop)
            in->tmpl = (uint16_t)t;
    memcpy(in->bytes, bytes, (size_t)len);
    in->len = (uint8_t)len;
    in->nins = 1;
    in->eff[R_AX].kind = EF_UNKNOWN;
    in->eff[R_CX].kind = EF_UNKNOWN;
}

const char *dt_form_name(unsigned tmpl, unsigned form, char *buf, size_t len)
{
    static const char *wn[WN] = { "8", "8h", "16", "32", "64" };
    unsigned variant = form / 16, w = (form / 2) % 8, mem = form & 1;
    snprintf(buf, len, "%s/%s%s%s%u", tmpl < dt_ntemplates ? dt_templates[tmpl].name : "?",
             w < WN ? wn[w] : "?", mem ? "/mem" : "/reg", "/v", variant);
    return buf;
}
