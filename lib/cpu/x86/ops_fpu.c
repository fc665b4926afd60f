/*
 * x87 semantics: the register stack, tags, status and control words, the
 * environment and save formats, FXSAVE/FXRSTOR, and the arithmetic.
 *
 * The stack, TOP, the tags, stack overflow and underflow (IE with SF, C1
 * telling which), the masked responses (QNaN indefinite), the #MF pending
 * logic, the environment formats and the classification of fxam are this
 * file's own and exact. The arithmetic itself is done by the host's x87:
 * each operation runs as the same x87 instruction (inline asm) on the
 * host, with the guest's precision and rounding control in the host FCW
 * and every exception masked, and the exception flags and condition codes
 * it raises become the guest's. Results are then those of the CPU,
 * transcendental instructions included (whose precision is the host CPU's:
 * the same as the guest would see on that CPU, within the SDM's stated
 * bounds on others). This needs an x86 host: elsewhere a softfloat with
 * 80-bit extended precision (and the x87's NaN, denormal, unsupported-
 * format and precision-control rules) must replace the hx_* helpers.
 *
 * Unmasked exceptions: IE, DE and ZE leave the destination and the stack
 * unchanged; OE, UE and PE store the masked result (the CPU stores the
 * result with its exponent rebiased by 24576 for OE/UE: not modelled);
 * stores to memory are not made. FSW.ES and B are set, and the next
 * waiting x87 instruction raises #MF when CR0.NE is set (CR0.NE clear
 * asks for FERR#/IRQ 13, which is not modelled: nothing is raised).
 *
 * FOP, FIP and FDP are kept (FIP/FDP as offsets; FCS/FDS as selectors);
 * for memory forms FOP's ModRM byte has mod 00 and r/m 000, not the
 * original encoding's.
 */
#include "config.h"

#include "cpu/x86/fpu.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

#if !defined(__x86_64__) && !defined(__i386__)
#error "ops_fpu.c executes x87 arithmetic on the host: it needs an x86 host (or a softfloat)"
#endif

typedef long double f80;

#define FCW_MASKS 0x3fu
#define EXP_MAX 0x7fff

/* ---- registers ------------------------------------------------------------------- */

static inline unsigned top(const struct x86_cpu *c)
{
    return (c->fpu.fsw >> FSW_TOP_SHIFT) & 7;
}

static inline void set_top(struct x86_cpu *c, unsigned t)
{
    c->fpu.fsw = (uint16_t)((c->fpu.fsw & ~(7u << FSW_TOP_SHIFT)) | ((t & 7) << FSW_TOP_SHIFT));
}

static inline unsigned phys(const struct x86_cpu *c, unsigned i)
{
    return (top(c) + i) & 7;
}

static inline bool st_empty(const struct x86_cpu *c, unsigned i)
{
    return !((c->fpu.ftw >> phys(c, i)) & 1);
}

static inline f80 reg_to_f80(const struct x86_fpreg *r)
{
    f80 v = 0;
    memcpy(&v, &r->mant, 8);
    memcpy((uint8_t *)&v + 8, &r->sexp, 2);
    return v;
}

static inline struct x86_fpreg f80_to_reg(f80 v)
{
    struct x86_fpreg r;
    memcpy(&r.mant, &v, 8);
    memcpy(&r.sexp, (uint8_t *)&v + 8, 2);
    return r;
}

static inline f80 st_get(const struct x86_cpu *c, unsigned i)
{
    return reg_to_f80(&c->fpu.r[phys(c, i)]);
}

static inline void st_set(struct x86_cpu *c, unsigned i, f80 v)
{
    unsigned p = phys(c, i);
    c->fpu.r[p] = f80_to_reg(v);
    c->fpu.ftw |= (uint8_t)(1u << p);
}

static inline void st_set_reg(struct x86_cpu *c, unsigned i, struct x86_fpreg r)
{
    unsigned p = phys(c, i);
    c->fpu.r[p] = r;
    c->fpu.ftw |= (uint8_t)(1u << p);
}

static inline void pop(struct x86_cpu *c)
{
    c->fpu.ftw &= (uint8_t)~(1u << top(c));
    set_top(c, top(c) + 1);
}

static inline void push_reg(struct x86_cpu *c, struct x86_fpreg r)
{
    set_top(c, top(c) - 1);
    st_set_reg(c, 0, r);
}

static const struct x86_fpreg indefinite = { 0xc000000000000000ull, 0xffff };

static inline void set_c(struct x86_cpu *c, uint16_t mask, uint16_t val)
{
    c->fpu.fsw = (uint16_t)((c->fpu.fsw & ~mask) | (val & mask));
}

/* ES and B follow the exception flags and the masks. */
static inline void sync_es(struct x86_cpu *c)
{
    if (c->fpu.fsw & ~c->fpu.fcw & FCW_MASKS)
        c->fpu.fsw |= FSW_ES | FSW_B;
    else
        c->fpu.fsw &= (uint16_t)~(FSW_ES | FSW_B);
}

/* Record exception flags (IE DE ZE OE UE PE, and SF); true when one of
 * them is unmasked. */
static bool raise_flags(struct x86_cpu *c, uint16_t f)
{
    c->fpu.fsw |= f & (FCW_MASKS | FSW_SF);
    sync_es(c);
    return (f & ~c->fpu.fcw & FCW_MASKS) != 0;
}

/* Stack underflow (an empty operand) or overflow (a push onto a full
 * register): IE with SF, C1 0 or 1. True when IE is unmasked (nothing may
 * change then). */
static bool stack_fault(struct x86_cpu *c, bool overflow)
{
    set_c(c, FSW_C1, overflow ? FSW_C1 : 0);
    return raise_flags(c, FSW_IE | FSW_SF);
}

/* ---- checks ---------------------------------------------------------------------- */

/* #NM with CR0.EM or CR0.TS; then, for a waiting instruction, #MF for a
 * pending unmasked exception when CR0.NE is set. */
static enum x86_status fpu_check(struct x86_cpu *c, bool waiting)
{
    if (c->cr0 & (CR0_EM | CR0_TS))
        return x86_raise(c, X86_NM);
    if (waiting && (c->fpu.fsw & FSW_ES) && (c->cr0 & CR0_NE))
        return x86_raise(c, X86_MF);
    return X86_OK;
}

/* A non-control instruction: remember where it was. */
static void note_insn(struct x86_cpu *c, const struct x86_insn *i, bool mem)
{
    c->fpu.fop = (uint16_t)(((i->opcode & 7) << 8) |
                            (i->mem ? (unsigned)i->sub << 3
                                    : 0xc0u | (unsigned)i->sub << 3 | (i->rm & 7u)));
    c->fpu.fip = c->rip;
    c->fpu.fcs = c->seg[S_CS].selector;
    if (mem) {
        c->fpu.fdp = x86_ea(c, i);
        c->fpu.fds = c->seg[i->seg].selector;
    }
}

/* ---- the host's x87 ---------------------------------------------------------------- */

/* Enter the guest's precision and rounding control, every exception
 * masked, no flag set. Returns the host's control word for hx_end. */
static inline uint16_t hx_begin(const struct x86_cpu *c)
{
    uint16_t saved, cw = (uint16_t)(c->fpu.fcw | FCW_MASKS);
    __asm__ volatile("fnstcw %0" : "=m"(saved));
    __asm__ volatile("fldcw %0\n\tfnclex" : : "m"(cw));
    return saved;
}

/* The host status word the operations left (flags, condition codes);
 * the host's control word is back. */
static inline uint16_t hx_end(uint16_t saved)
{
    uint16_t sw;
    __asm__ volatile("fnstsw %0" : "=m"(sw));
    __asm__ volatile("fnclex\n\tfldcw %0" : : "m"(saved));
    return sw;
}

/* The condition codes an operation leaves must be read by the same asm
 * statement (fnstsw right after it): the compiler's own moves of long
 * doubles (fld, fstp) in between would change C1. Exception flags are
 * sticky and come from hx_end. */
#define HX_SW "\n\tfnstsw %[sw]"

/* a op b: 0 add, 1 mul, 4 sub (a - b), 5 subr (b - a), 6 div (a / b), 7 divr. */
static inline f80 hx_arith(unsigned op, f80 a, f80 b, uint16_t *sw)
{
    if (op == 5 || op == 7) {
        f80 t = a;
        a = b;
        b = t;
        op--;
    }
    switch (op) {
    case 0: __asm__ volatile("fadd %%st(1), %%st" HX_SW : "+t"(a), [sw] "=m"(*sw) : "u"(b)); break;
    case 1: __asm__ volatile("fmul %%st(1), %%st" HX_SW : "+t"(a), [sw] "=m"(*sw) : "u"(b)); break;
    case 4: __asm__ volatile("fsub %%st(1), %%st" HX_SW : "+t"(a), [sw] "=m"(*sw) : "u"(b)); break;
    default: __asm__ volatile("fdiv %%st(1), %%st" HX_SW : "+t"(a), [sw] "=m"(*sw) : "u"(b)); break;
    }
    return a;
}

/* st0 op memory, as the one instruction (an SNaN in st0 then hides a
 * denormal operand, as on the CPU). type: MT_F32, MT_F64, MT_I16, MT_I32. */
#define HX_MEM8(pre, suffix, T)                                                              \
    do {                                                                                \
        T m;                                                                            \
        memcpy(&m, p, sizeof m);                                                        \
        switch (op) {                                                                   \
        case 0: __asm__ volatile(pre "add" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break;  \
        case 1: __asm__ volatile(pre "mul" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break;  \
        case 2: case 3: __asm__ volatile(pre "com" suffix " %[m]" HX_SW : [sw] "=m"(*sw) : "t"(a), [m] "m"(m)); break; \
        case 4: __asm__ volatile(pre "sub" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break;  \
        case 5: __asm__ volatile(pre "subr" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break; \
        case 6: __asm__ volatile(pre "div" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break;  \
        default: __asm__ volatile(pre "divr" suffix " %[m]" HX_SW : "+t"(a), [sw] "=m"(*sw) : [m] "m"(m)); break; \
        }                                                                               \
    } while (0)

static inline f80 hx_arith_m(unsigned op, unsigned type, f80 a, const uint8_t *p, uint16_t *sw)
{
    switch (type) {
    case 0: HX_MEM8("f", "s", float); break;
    case 1: HX_MEM8("f", "l", double); break;
    case 2: HX_MEM8("fi", "s", int16_t); break;
    default: HX_MEM8("fi", "l", int32_t); break;
    }
    return a;
}

/* Memory operand types. */
enum { MT_F32, MT_F64, MT_I16, MT_I32, MT_I64, MT_F80, MT_BCD };
static const uint8_t mt_size[] = { 4, 8, 2, 4, 8, 10, 10 };

/* A memory operand to extended precision, on the host (so SNaN and
 * denormal sources raise what they raise). */
static inline f80 hx_load(unsigned type, const uint8_t *p)
{
    f80 r;
    float f;
    double d;
    int16_t w;
    int32_t l;
    int64_t q;
    switch (type) {
    case MT_F32: memcpy(&f, p, 4); __asm__ volatile("flds %1" : "=t"(r) : "m"(f)); break;
    case MT_F64: memcpy(&d, p, 8); __asm__ volatile("fldl %1" : "=t"(r) : "m"(d)); break;
    case MT_I16: memcpy(&w, p, 2); __asm__ volatile("filds %1" : "=t"(r) : "m"(w)); break;
    case MT_I32: memcpy(&l, p, 4); __asm__ volatile("fildl %1" : "=t"(r) : "m"(l)); break;
    case MT_I64: memcpy(&q, p, 8); __asm__ volatile("fildll %1" : "=t"(r) : "m"(q)); break;
    case MT_BCD: {
        uint8_t b[10];
        memcpy(b, p, 10);
        __asm__ volatile("fbld %1" : "=t"(r) : "m"(b));
        break;
    }
    default: r = 0; memcpy(&r, p, 10); break;
    }
    return r;
}

/* Store v as a memory type (fisttp: truncating). */
static inline void hx_store(unsigned type, bool trunc, f80 v, uint8_t *p, uint16_t *sw)
{
    switch (type) {
    case MT_F32: { float f; __asm__ volatile("fstps %0" HX_SW : "=m"(f), [sw] "=m"(*sw) : "t"(v) : "st"); memcpy(p, &f, 4); break; }
    case MT_F64: { double d; __asm__ volatile("fstpl %0" HX_SW : "=m"(d), [sw] "=m"(*sw) : "t"(v) : "st"); memcpy(p, &d, 8); break; }
    case MT_I16: {
        int16_t w;
        if (trunc)
            __asm__ volatile("fisttps %0" HX_SW : "=m"(w), [sw] "=m"(*sw) : "t"(v) : "st");
        else
            __asm__ volatile("fistps %0" HX_SW : "=m"(w), [sw] "=m"(*sw) : "t"(v) : "st");
        memcpy(p, &w, 2);
        break;
    }
    case MT_I32: {
        int32_t l;
        if (trunc)
            __asm__ volatile("fisttpl %0" HX_SW : "=m"(l), [sw] "=m"(*sw) : "t"(v) : "st");
        else
            __asm__ volatile("fistpl %0" HX_SW : "=m"(l), [sw] "=m"(*sw) : "t"(v) : "st");
        memcpy(p, &l, 4);
        break;
    }
    case MT_I64: {
        int64_t q;
        if (trunc)
            __asm__ volatile("fisttpll %0" HX_SW : "=m"(q), [sw] "=m"(*sw) : "t"(v) : "st");
        else
            __asm__ volatile("fistpll %0" HX_SW : "=m"(q), [sw] "=m"(*sw) : "t"(v) : "st");
        memcpy(p, &q, 8);
        break;
    }
    case MT_BCD: {
        uint8_t b[10];
        __asm__ volatile("fbstp %0" HX_SW : "=m"(b), [sw] "=m"(*sw) : "t"(v) : "st");
        memcpy(p, b, 10);
        break;
    }
    default: memcpy(p, &v, 10); break;
    }
}

/* fcom/fucom of a and b on the host: its status word (C0 C2 C3, flags). */
static inline uint16_t hx_com(bool unordered_ok, f80 a, f80 b, uint16_t saved)
{
    uint16_t sw;
    if (unordered_ok)
        __asm__ volatile("fucom %%st(1)" HX_SW : [sw] "=m"(sw) : "t"(a), "u"(b));
    else
        __asm__ volatile("fcom %%st(1)" HX_SW : [sw] "=m"(sw) : "t"(a), "u"(b));
    return (uint16_t)((sw & ~FCW_MASKS) | (hx_end(saved) & FCW_MASKS));
}

/* ---- memory operands ------------------------------------------------------------- */

static enum x86_status fpu_load_mem(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
                                    uint8_t *buf)
{
    uint64_t lin;
    enum x86_status st = x86_linear(c, i->seg, x86_ea(c, i), size, false, &lin);
    if (st)
        return st;
    return x86_load_lin(c, lin, size, buf);
}

static enum x86_status fpu_store_mem(struct x86_cpu *c, const struct x86_insn *i,
                                     uint64_t off, unsigned size, const uint8_t *buf)
{
    uint64_t lin;
    enum x86_status st = x86_linear(c, i->seg, off & x86_addr_mask(i->addrsize), size, true,
                                    &lin);
    if (st)
        return st;
    return x86_store_lin(c, lin, size, buf);
}

/* Will a store of `size` bytes at the operand succeed? (Checked before the
 * state changes, for instructions that store and then pop.) The store is
 * then made with the same bytes the check wrote; see fpu_st_m. */

/* ---- arithmetic -------------------------------------------------------------------- */

/* Deliver an arithmetic result to ST(dst): C1 from the host (rounded up),
 * flags; false when an unmasked IE/DE/ZE forbids the store. */
static bool deliver(struct x86_cpu *c, unsigned dst, f80 r, uint16_t hsw)
{
    uint16_t f = hsw & FCW_MASKS;
    bool unmasked = raise_flags(c, f);
    if (unmasked && (f & ~c->fpu.fcw & (FSW_IE | FSW_DE | FSW_ZE)))
        return false;
    set_c(c, FSW_C1, (hsw & FSW_PE) ? hsw : 0); /* C1: rounded up */
    st_set(c, dst, r);
    return true;
}

/* d8/dc mem: st0 = st0 op m32/m64; da/de mem: st0 = st0 op m32int/m16int. */
X86_OP(op_fpu_arith_m)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    unsigned opc = i->opcode & 7, op = i->sub;
    unsigned type = opc == 0 ? MT_F32 : opc == 4 ? MT_F64 : opc == 2 ? MT_I32 : MT_I16;
    uint8_t buf[16];
    if ((st = fpu_load_mem(c, i, mt_size[type], buf)))
        return st;
    note_insn(c, i, true);
    if (st_empty(c, 0)) {
        if (!stack_fault(c, false))
            st_set_reg(c, 0, indefinite);
        return X86_OK;
    }
    f80 a = st_get(c, 0);
    uint16_t h = hx_begin(c);
    uint16_t osw = 0;
    f80 r = hx_arith_m(op, type, a, buf, &osw);
    uint16_t hsw = (uint16_t)((osw & ~FCW_MASKS) | (hx_end(h) & FCW_MASKS));
    deliver(c, 0, r, hsw);
    return X86_OK;
}

/* d8 reg: st0 = st0 op st(i); dc reg: st(i) = st(i) op st0; de: and pop. */
X86_OP(op_fpu_arith_r)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned opc = i->opcode & 7, op = i->sub, k = i->rm & 7;
    bool rev = opc != 0, popit = opc == 6;
    if (rev && op >= 4)
        op ^= 1; /* dc/de e0+i is fsubr st(i), st0; e8+i fsub; f0 fdivr; f8 fdiv */
    unsigned dst = rev ? k : 0;
    if (st_empty(c, 0) || st_empty(c, k)) {
        if (stack_fault(c, false))
            return X86_OK;
        st_set_reg(c, dst, indefinite);
    } else {
        f80 a = st_get(c, dst), b = st_get(c, rev ? 0 : k);
        uint16_t h = hx_begin(c);
        uint16_t osw = 0;
        f80 r = hx_arith(op, a, b, &osw);
        uint16_t hsw = (uint16_t)((osw & ~FCW_MASKS) | (hx_end(h) & FCW_MASKS));
        if (!deliver(c, dst, r, hsw))
            return X86_OK;
    }
    if (popit)
        pop(c);
    return X86_OK;
}

/* Compare results in C3 C2 C0 (C1 cleared); pops. */
static void compare(struct x86_cpu *c, bool empty, f80 a, f80 b, bool unord, unsigned pops,
                    bool int_or_mem, unsigned type, const uint8_t *buf)
{
    if (empty) {
        if (stack_fault(c, false))
            return;
        set_c(c, FSW_C0 | FSW_C2 | FSW_C3, FSW_C0 | FSW_C2 | FSW_C3);
    } else {
        uint16_t h = hx_begin(c), hsw;
        if (int_or_mem) {
            uint16_t osw = 0;
            hx_arith_m(2, type, a, buf, &osw);
            hsw = (uint16_t)((osw & ~FCW_MASKS) | (hx_end(h) & FCW_MASKS));
        } else {
            hsw = hx_com(unord, a, b, h);
        }
        if (raise_flags(c, hsw & FCW_MASKS) && (hsw & ~c->fpu.fcw & (FSW_IE | FSW_DE)))
            return;
        set_c(c, FSW_C0 | FSW_C2 | FSW_C3, hsw);
        set_c(c, FSW_C1, 0);
    }
    while (pops--)
        pop(c);
}

/* d8/dc /2 /3 mem: fcom(p) m32/m64; da/de /2 /3: ficom(p) m32/m16. */
X86_OP(op_fpu_com_m)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    unsigned opc = i->opcode & 7;
    unsigned type = opc == 0 ? MT_F32 : opc == 4 ? MT_F64 : opc == 2 ? MT_I32 : MT_I16;
    uint8_t buf[16];
    if ((st = fpu_load_mem(c, i, mt_size[type], buf)))
        return st;
    note_insn(c, i, true);
    bool empty = st_empty(c, 0);
    compare(c, empty, empty ? 0 : st_get(c, 0), 0, false, i->sub == 3, true, type, buf);
    return X86_OK;
}

/* d8 /2 /3, dc /2 /3 (aliases), de /2 (alias), de d9 fcompp, dd /4 /5
 * fucom(p), da e9 fucompp. */
X86_OP(op_fpu_com_r)
{
    unsigned opc = i->opcode & 7, k = i->rm & 7, pops;
    bool unord = false;
    if (opc == 2 || opc == 5) { /* da e9 fucompp; dd e0+i fucom, e8+i fucomp */
        if (opc == 2 && k != 1)
            return x86_raise(c, X86_UD);
        unord = true;
        pops = opc == 2 ? 2 : i->sub == 5;
    } else if (opc == 6 && i->sub == 3) { /* de d9 fcompp */
        if (k != 1)
            return x86_raise(c, X86_UD);
        pops = 2;
    } else {
        pops = opc == 6 || i->sub == 3;
    }
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    bool empty = st_empty(c, 0) || st_empty(c, k);
    compare(c, empty, empty ? 0 : st_get(c, 0), empty ? 0 : st_get(c, k), unord, pops, false, 0,
            NULL);
    return X86_OK;
}

/* db /5 fucomi, db /6 fcomi, df /5 fucomip, df /6 fcomip: ZF PF CF. */
X86_OP(op_fpu_comi)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned k = i->rm & 7;
    bool unord = i->sub == 5, popit = (i->opcode & 7) == 7;
    uint64_t fl;
    if (st_empty(c, 0) || st_empty(c, k)) {
        if (stack_fault(c, false))
            return X86_OK;
        fl = F_ZF | F_PF | F_CF;
    } else {
        f80 a = st_get(c, 0), b = st_get(c, k);
        bool zf, pf, cf;
        uint16_t h = hx_begin(c);
        if (unord)
            __asm__ volatile("fucomi %%st(1), %%st" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf)
                             : "t"(a), "u"(b));
        else
            __asm__ volatile("fcomi %%st(1), %%st" : "=@ccz"(zf), "=@ccp"(pf), "=@ccc"(cf)
                             : "t"(a), "u"(b));
        uint16_t hsw = hx_end(h);
        if (raise_flags(c, hsw & FCW_MASKS) && (hsw & ~c->fpu.fcw & (FSW_IE | FSW_DE)))
            return X86_OK;
        fl = (zf ? F_ZF : 0) | (pf ? F_PF : 0) | (cf ? F_CF : 0);
    }
    x86_flush_flags(c);
    c->flags = (c->flags & ~(uint64_t)F_ARITH) | fl;
    if (popit)
        pop(c);
    return X86_OK;
}

/* ---- loads and stores ------------------------------------------------------------- */

/* d9 /0 fld m32, dd /0 fld m64, db /5 fld m80, df /0 fild m16, db /0 fild
 * m32, df /5 fild m64, df /4 fbld. */
X86_OP(op_fpu_ld_m)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    unsigned opc = i->opcode & 7, type;
    switch (opc) {
    case 1: type = MT_F32; break;
    case 5: type = MT_F64; break;
    case 3: type = i->sub == 0 ? MT_I32 : MT_F80; break;
    default: type = i->sub == 0 ? MT_I16 : i->sub == 4 ? MT_BCD : MT_I64; break;
    }
    uint8_t buf[16];
    if ((st = fpu_load_mem(c, i, mt_size[type], buf)))
        return st;
    note_insn(c, i, true);
    if (!st_empty(c, 7)) {
        if (!stack_fault(c, true))
            push_reg(c, indefinite);
        return X86_OK;
    }
    if (type == MT_F80) {
        struct x86_fpreg r;
        memcpy(&r.mant, buf, 8);
        memcpy(&r.sexp, buf + 8, 2);
        set_c(c, FSW_C1, 0);
        push_reg(c, r);
        return X86_OK;
    }
    uint16_t h = hx_begin(c);
    f80 v = hx_load(type, buf);
    uint16_t hsw = hx_end(h);
    if (raise_flags(c, hsw & FCW_MASKS) && (hsw & ~c->fpu.fcw & (FSW_IE | FSW_DE)))
        return X86_OK;
    set_c(c, FSW_C1, 0);
    push_reg(c, f80_to_reg(v));
    return X86_OK;
}

/* d9 /2 /3 fst(p) m32, dd /2 /3 m64, db /7 fstp m80, df /2 /3 fist(p) m16,
 * db /2 /3 m32, df /7 fistp m64, db/dd/df /1 fisttp m32/m64/m16, df /6 fbstp. */
X86_OP(op_fpu_st_m)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    unsigned opc = i->opcode & 7, sub = i->sub, type;
    bool popit = sub != 2, trunc = sub == 1;
    switch (opc) {
    case 1: type = MT_F32; break;
    case 5: type = sub == 1 ? MT_I64 : MT_F64; break;
    case 3: type = sub == 7 ? MT_F80 : MT_I32; break;
    default: type = sub == 7 ? MT_I64 : sub == 6 ? MT_BCD : MT_I16; break;
    }
    uint8_t buf[16];
    uint16_t hsw = 0;
    bool empty = st_empty(c, 0);
    if (empty) {
        /* underflow: with IE masked, the indefinite of the format is stored */
        f80 ind = reg_to_f80(&indefinite);
        uint16_t h = hx_begin(c);
        uint16_t osw;
        hx_store(type, trunc, ind, buf, &osw);
        hx_end(h);
        if (type == MT_F80)
            memcpy(buf, &indefinite.mant, 8), memcpy(buf + 8, &indefinite.sexp, 2);
        if (!(c->fpu.fcw & FSW_IE)) {
            /* unmasked: nothing is stored, nothing popped */
            note_insn(c, i, true);
            stack_fault(c, false);
            return X86_OK;
        }
    } else if (type == MT_F80) {
        const struct x86_fpreg *r = &c->fpu.r[phys(c, 0)];
        memcpy(buf, &r->mant, 8);
        memcpy(buf + 8, &r->sexp, 2);
    } else {
        f80 v = st_get(c, 0);
        uint16_t h = hx_begin(c);
        uint16_t osw = 0;
        hx_store(type, trunc, v, buf, &osw);
        hsw = (uint16_t)((osw & ~FCW_MASKS) | (hx_end(h) & FCW_MASKS));
    }
    if (!empty && (hsw & ~c->fpu.fcw & FCW_MASKS)) {
        /* unmasked: flags, no store */
        note_insn(c, i, true);
        raise_flags(c, hsw & FCW_MASKS);
        return X86_OK;
    }
    if ((st = fpu_store_mem(c, i, x86_ea(c, i), mt_size[type], buf)))
        return st;
    note_insn(c, i, true);
    if (empty) {
        stack_fault(c, false);
    } else {
        raise_flags(c, hsw & FCW_MASKS);
        set_c(c, FSW_C1, hsw);
    }
    if (popit)
        pop(c);
    return X86_OK;
}

/* d9 c0+i fld st(i). */
X86_OP(op_fpu_ld_r)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned k = i->rm & 7;
    if (st_empty(c, k) || !st_empty(c, 7)) {
        if (!stack_fault(c, !st_empty(c, k)))
            push_reg(c, indefinite);
        return X86_OK;
    }
    struct x86_fpreg r = c->fpu.r[phys(c, k)];
    set_c(c, FSW_C1, 0);
    push_reg(c, r);
    return X86_OK;
}

/* dd d0+i fst st(i), dd d8+i fstp st(i), d9 d8+i / df d0+i / df d8+i
 * (fstp aliases). */
X86_OP(op_fpu_st_r)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned k = i->rm & 7;
    bool popit = !((i->opcode & 7) == 5 && i->sub == 2);
    if (st_empty(c, 0)) {
        if (stack_fault(c, false))
            return X86_OK;
        st_set_reg(c, k, indefinite);
    } else {
        st_set_reg(c, k, c->fpu.r[phys(c, 0)]);
        set_c(c, FSW_C1, 0);
    }
    if (popit)
        pop(c);
    return X86_OK;
}

/* d9 c8+i fxch (dd c8+i, df c8+i: aliases). */
X86_OP(op_fpu_fxch)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned k = i->rm & 7;
    bool e0 = st_empty(c, 0), ek = st_empty(c, k);
    if (e0 || ek) {
        if (stack_fault(c, false))
            return X86_OK;
        /* masked: an empty one is taken as the indefinite */
        struct x86_fpreg a = e0 ? indefinite : c->fpu.r[phys(c, 0)];
        struct x86_fpreg b = ek ? indefinite : c->fpu.r[phys(c, k)];
        st_set_reg(c, 0, b);
        st_set_reg(c, k, a);
        return X86_OK;
    }
    struct x86_fpreg t = c->fpu.r[phys(c, 0)];
    c->fpu.r[phys(c, 0)] = c->fpu.r[phys(c, k)];
    c->fpu.r[phys(c, k)] = t;
    set_c(c, FSW_C1, 0);
    return X86_OK;
}

/* dd c0+i ffree; df c0+i ffreep. */
X86_OP(op_fpu_ffree)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    c->fpu.ftw &= (uint8_t)~(1u << phys(c, i->rm & 7));
    set_c(c, FSW_C1, 0); /* as the CPU does (the SDM leaves C1 undefined) */
    if ((i->opcode & 7) == 7)
        pop(c);
    return X86_OK;
}

/* da c0-df fcmovb/e/be/u; db c0-df fcmovnb/ne/nbe/nu. */
X86_OP(op_fpu_fcmov)
{
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    unsigned k = i->rm & 7;
    static const uint8_t cc[4] = { 2, 4, 6, 10 }; /* b, e, be, p */
    bool take = x86_cond(c, cc[i->sub & 3]) != ((i->opcode & 7) == 3);
    if (st_empty(c, 0) || st_empty(c, k)) {
        if (stack_fault(c, false))
            return X86_OK;
        st_set_reg(c, 0, indefinite); /* whatever the condition */
        return X86_OK;
    }
    if (take)
        st_set_reg(c, 0, c->fpu.r[phys(c, k)]);
    return X86_OK;
}

/* ---- d9 e0-ff, fnop --------------------------------------------------------------- */

/* fxam's class of a register in C3 C2 C0. */
static uint16_t fxam_class(const struct x86_fpreg *r, bool empty)
{
    if (empty)
        return FSW_C3 | FSW_C0;
    unsigned e = r->sexp & EXP_MAX;
    bool j = r->mant >> 63;
    uint64_t frac = r->mant << 1;
    if (e == EXP_MAX) {
        if (!j)
            return 0;                                 /* unsupported */
        return frac ? FSW_C0 : FSW_C2 | FSW_C0;       /* NaN, infinity */
    }
    if (e == 0)
        return r->mant ? FSW_C3 | FSW_C2 : FSW_C3;    /* denormal, zero */
    return j ? FSW_C2 : 0;                            /* normal, unnormal (unsupported) */
}

/* Two-operand transcendental and scaling instructions on st0 and st1. */
static f80 hx_two(unsigned op, f80 x, f80 y, uint16_t *sw)
{
    switch (op) {
    case 0xf1: __asm__ volatile("fyl2x" HX_SW : "=t"(x), [sw] "=m"(*sw) : "0"(x), "u"(y) : "st(1)"); break;
    case 0xf3: __asm__ volatile("fpatan" HX_SW : "=t"(x), [sw] "=m"(*sw) : "0"(x), "u"(y) : "st(1)"); break;
    case 0xf9: __asm__ volatile("fyl2xp1" HX_SW : "=t"(x), [sw] "=m"(*sw) : "0"(x), "u"(y) : "st(1)"); break;
    case 0xf5: __asm__ volatile("fprem1" HX_SW : "+t"(x), [sw] "=m"(*sw) : "u"(y)); break;
    case 0xf8: __asm__ volatile("fprem" HX_SW : "+t"(x), [sw] "=m"(*sw) : "u"(y)); break;
    default: __asm__ volatile("fscale" HX_SW : "+t"(x), [sw] "=m"(*sw) : "u"(y)); break;
    }
    return x;
}

static f80 hx_one(unsigned op, f80 x, uint16_t *sw)
{
    switch (op) {
    case 0xe0: __asm__ volatile("fchs" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    case 0xe1: __asm__ volatile("fabs" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    case 0xf0: __asm__ volatile("f2xm1" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    case 0xfa: __asm__ volatile("fsqrt" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    case 0xfc: __asm__ volatile("frndint" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    case 0xfe: __asm__ volatile("fsin" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    default: __asm__ volatile("fcos" HX_SW : "+t"(x), [sw] "=m"(*sw)); break;
    }
    return x;
}

static f80 hx_const(unsigned op)
{
    f80 r;
    switch (op) {
    case 0xe8: __asm__ volatile("fld1" : "=t"(r)); break;
    case 0xe9: __asm__ volatile("fldl2t" : "=t"(r)); break;
    case 0xea: __asm__ volatile("fldl2e" : "=t"(r)); break;
    case 0xeb: __asm__ volatile("fldpi" : "=t"(r)); break;
    case 0xec: __asm__ volatile("fldlg2" : "=t"(r)); break;
    case 0xed: __asm__ volatile("fldln2" : "=t"(r)); break;
    default: __asm__ volatile("fldz" : "=t"(r)); break;
    }
    return r;
}

/* fsin fcos fptan fsincos leave |x| >= 2^63 alone (C2 set). */
static bool trig_out_of_range(const struct x86_fpreg *r)
{
    unsigned e = r->sexp & EXP_MAX;
    return e != EXP_MAX && e >= 0x3fff + 63 && (r->mant >> 63); /* unnormals are invalid */
}

X86_OP(op_fpu_d9)
{
    unsigned op = 0xc0u | (unsigned)i->sub << 3 | (i->rm & 7u);
    bool valid;
    switch (op >> 3) {
    case 0xd0 >> 3: valid = op == 0xd0; break;
    case 0xe0 >> 3: valid = op == 0xe0 || op == 0xe1 || op == 0xe4 || op == 0xe5; break;
    case 0xe8 >> 3: valid = op != 0xef; break;
    default: valid = true; break;
    }
    if (!valid)
        return x86_raise(c, X86_UD);
    enum x86_status st = fpu_check(c, true);
    if (st)
        return st;
    note_insn(c, i, false);
    if (op == 0xd0) /* fnop */
        return X86_OK;
    if (op == 0xe5) { /* fxam */
        bool e = st_empty(c, 0);
        const struct x86_fpreg *r = &c->fpu.r[phys(c, 0)];
        set_c(c, FSW_CC, (uint16_t)(fxam_class(r, e) | ((r->sexp >> 15) ? FSW_C1 : 0)));
        return X86_OK;
    }
    if (op >= 0xe8 && op <= 0xee) { /* constants */
        if (!st_empty(c, 7)) {
            if (!stack_fault(c, true))
                push_reg(c, indefinite);
            return X86_OK;
        }
        uint16_t h = hx_begin(c);
        f80 r = hx_const(op);
        hx_end(h);
        set_c(c, FSW_C1, 0);
        push_reg(c, f80_to_reg(r));
        return X86_OK;
    }
    if (op == 0xf6 || op == 0xf7) { /* fdecstp, fincstp */
        set_top(c, top(c) + (op == 0xf7 ? 1 : (unsigned)-1));
        set_c(c, FSW_C1, 0);
        return X86_OK;
    }
    if (op == 0xe4) { /* ftst */
        bool empty = st_empty(c, 0);
        compare(c, empty, empty ? 0 : st_get(c, 0), 0.0L, false, 0, false, 0, NULL);
        return X86_OK;
    }
    bool two = op == 0xf1 || op == 0xf3 || op == 0xf5 || op == 0xf8 || op == 0xf9 || op == 0xfd;
    bool pushes = op == 0xf2 || op == 0xf4 || op == 0xfb;
    if (op == 0xf2 || op == 0xfb || op == 0xfe || op == 0xff || op == 0xf5 || op == 0xf8)
        set_c(c, FSW_C2, 0); /* in range / complete, or a stack fault */
    if (st_empty(c, 0) || (two && st_empty(c, 1))) {
        if (stack_fault(c, false))
            return X86_OK;
        bool popit = op == 0xf1 || op == 0xf3 || op == 0xf9;
        st_set_reg(c, two && popit ? 1 : 0, indefinite);
        if (popit)
            pop(c);
        else if (pushes)
            push_reg(c, indefinite);
        return X86_OK;
    }
    if (pushes && !st_empty(c, 7)) {
        if (stack_fault(c, true))
            return X86_OK;
        st_set_reg(c, 0, indefinite);
        push_reg(c, indefinite);
        return X86_OK;
    }
    const struct x86_fpreg *r0 = &c->fpu.r[phys(c, 0)];
    if ((op == 0xf2 || op == 0xfb || op == 0xfe || op == 0xff) && trig_out_of_range(r0)) {
        set_c(c, FSW_C1 | FSW_C2, FSW_C2);
        return X86_OK;
    }
    f80 x = st_get(c, 0), y = two ? st_get(c, 1) : 0, r2 = 0;
    uint16_t osw = 0;
    uint16_t h = hx_begin(c);
    f80 r;
    if (two) {
        r = hx_two(op, x, y, &osw);
    } else if (op == 0xf2) {
        __asm__ volatile("fptan" HX_SW : "=t"(r2), "=u"(r), [sw] "=m"(osw) : "0"(x));
    } else if (op == 0xfb) {
        __asm__ volatile("fsincos" HX_SW : "=t"(r2), "=u"(r), [sw] "=m"(osw) : "0"(x));
    } else if (op == 0xf4) {
        __asm__ volatile("fxtract" HX_SW : "=t"(r2), "=u"(r), [sw] "=m"(osw) : "0"(x));
    } else {
        r = hx_one(op, x, &osw);
    }
    uint16_t hsw = (uint16_t)((osw & ~FCW_MASKS) | (hx_end(h) & FCW_MASKS));
    uint16_t f = hsw & FCW_MASKS;
    if (raise_flags(c, f) && (f & ~c->fpu.fcw & (FSW_IE | FSW_DE | FSW_ZE)))
        return X86_OK;
    /* Condition codes the SDM leaves undefined keep their values on the CPU
     * (as the host's x87 shows): only the defined ones are taken. */
    if ((op == 0xf5 || op == 0xf8) && r == r) /* fprem(1): quotient, C2 incomplete */
        set_c(c, FSW_CC, hsw);
    else if (op == 0xf5 || op == 0xf8) /* a NaN result: C1 C2 cleared, C0 C3 kept */
        set_c(c, FSW_C1 | FSW_C2, hsw);
    else if (op == 0xfe || op == 0xff || op == 0xf2 || op == 0xfb)
        set_c(c, FSW_C1 | FSW_C2, hsw);
    else
        set_c(c, FSW_C1, hsw);
    if (op == 0xf1 || op == 0xf3 || op == 0xf9) {
        st_set(c, 1, r);
        pop(c);
    } else if (pushes) {
        st_set(c, 0, r);
        push_reg(c, f80_to_reg(r2));
    } else {
        st_set(c, 0, r);
    }
    return X86_OK;
}

/* ---- db e0-e7, wait, environment --------------------------------------------------- */

static void fninit(struct x86_cpu *c)
{
    x86_fpu_init_x87(&c->fpu);
}

X86_OP(op_fpu_db)
{
    unsigned k = i->rm & 7;
    if (i->sub != 4 || k > 4)
        return x86_raise(c, X86_UD);
    enum x86_status st = fpu_check(c, false);
    if (st)
        return st;
    if (k == 2) { /* fnclex */
        c->fpu.fsw &= (uint16_t)~(FCW_MASKS | FSW_SF | FSW_ES | FSW_B);
    } else if (k == 3) {
        fninit(c);
    }
    /* e0 feni, e1 fdisi, e4 fsetpm: no-ops since the 80287 */
    return X86_OK;
}

X86_OP(op_fwait)
{
    (void)i;
    if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
        return x86_raise(c, X86_NM);
    if ((c->fpu.fsw & FSW_ES) && (c->cr0 & CR0_NE))
        return x86_raise(c, X86_MF);
    return X86_OK;
}

uint16_t x86_fpu_full_tags(const struct x86_fpu *f)
{
    uint16_t t = 0;
    for (unsigned p = 0; p < 8; p++) {
        unsigned tag;
        const struct x86_fpreg *r = &f->r[p];
        unsigned e = r->sexp & EXP_MAX;
        if (!((f->ftw >> p) & 1))
            tag = 3;
        else if (e == EXP_MAX || (e == 0 && r->mant) || (e != 0 && !(r->mant >> 63)))
            tag = 2;
        else if (e == 0)
            tag = 1;
        else
            tag = 0;
        t |= (uint16_t)(tag << (2 * p));
    }
    return t;
}

static bool real_mode(const struct x86_cpu *c)
{
    return !(c->cr0 & CR0_PE) || (c->flags & F_VM);
}

/* The environment image (14 or 28 bytes) for fnstenv/fnsave. */
static unsigned env_image(const struct x86_cpu *c, bool o16, uint8_t *b)
{
    const struct x86_fpu *f = &c->fpu;
    uint16_t tw = x86_fpu_full_tags(f);
    uint32_t fip = (uint32_t)f->fip, fdp = (uint32_t)f->fdp;
    memset(b, 0, 28);
    if (o16) {
        uint16_t w[7] = { f->fcw, f->fsw, tw, (uint16_t)fip, f->fcs, (uint16_t)fdp, f->fds };
        if (real_mode(c)) {
            w[4] = (uint16_t)(((fip >> 16) & 0xf) << 12 | (f->fop & 0x7ff));
            w[6] = (uint16_t)(((fdp >> 16) & 0xf) << 12);
        }
        memcpy(b, w, 14);
        return 14;
    }
    uint32_t d[7] = { f->fcw | 0xffff0000u, f->fsw | 0xffff0000u, tw | 0xffff0000u, fip,
                      (uint32_t)f->fop << 16 | f->fcs, fdp, f->fds | 0xffff0000u };
    if (real_mode(c)) {
        d[3] = (fip & 0xffff) | 0xffff0000u;
        d[4] = (fip >> 16) << 12 | (f->fop & 0x7ff);
        d[5] = (fdp & 0xffff) | 0xffff0000u;
        d[6] = (fdp >> 16) << 12;
    }
    memcpy(b, d, 28);
    return 28;
}

static void env_load(struct x86_cpu *c, bool o16, const uint8_t *b)
{
    struct x86_fpu *f = &c->fpu;
    if (o16) {
        uint16_t w[7];
        memcpy(w, b, 14);
        f->fcw = w[0];
        f->fsw = w[1];
        f->ftw = x86_fpu_abridge_tags(w[2]);
        if (real_mode(c)) {
            f->fip = w[3] | (uint32_t)(w[4] >> 12) << 16;
            f->fop = w[4] & 0x7ff;
            f->fdp = w[5] | (uint32_t)(w[6] >> 12) << 16;
        } else {
            f->fip = w[3];
            f->fcs = w[4];
            f->fdp = w[5];
            f->fds = w[6];
        }
    } else {
        uint32_t d[7];
        memcpy(d, b, 28);
        f->fcw = (uint16_t)d[0];
        f->fsw = (uint16_t)d[1];
        f->ftw = x86_fpu_abridge_tags((uint16_t)d[2]);
        if (real_mode(c)) {
            f->fip = (d[3] & 0xffff) | (d[4] >> 12) << 16;
            f->fop = d[4] & 0x7ff;
            f->fdp = (d[5] & 0xffff) | (d[6] >> 12) << 16;
        } else {
            f->fip = d[3];
            f->fcs = (uint16_t)d[4];
            f->fop = (d[4] >> 16) & 0x7ff;
            f->fdp = d[5];
            f->fds = (uint16_t)d[6];
        }
    }
    sync_es(c);
}

/* Store len bytes in pieces of at most 16 (the slow path takes up to 16). */
static enum x86_status store_block(struct x86_cpu *c, const struct x86_insn *i,
                                   const uint8_t *b, unsigned len)
{
    uint64_t off = x86_ea(c, i);
    for (unsigned k = 0; k < len; k += 16) {
        unsigned n = len - k < 16 ? len - k : 16;
        enum x86_status st = fpu_store_mem(c, i, off + k, n, b + k);
        if (st)
            return st;
    }
    return X86_OK;
}

static enum x86_status load_block(struct x86_cpu *c, const struct x86_insn *i, uint8_t *b,
                                  unsigned len)
{
    uint64_t off = x86_ea(c, i);
    for (unsigned k = 0; k < len; k += 16) {
        unsigned n = len - k < 16 ? len - k : 16;
        uint64_t lin;
        enum x86_status st = x86_linear(c, i->seg, (off + k) & x86_addr_mask(i->addrsize), n,
                                        false, &lin);
        if (st || (st = x86_load_lin(c, lin, n, b + k)))
            return st;
    }
    return X86_OK;
}

/* d9 /4 fldenv, /5 fldcw, /6 fnstenv, /7 fnstcw; dd /4 frstor, /6 fnsave,
 * /7 fnstsw m16; df e0 fnstsw ax. */
X86_OP(op_fpu_env)
{
    unsigned opc = i->opcode & 7, sub = i->sub;
    bool o16 = i->opsize == 2;
    if (opc == 7 && (i->rm & 7) != 0) /* df e1-e7 */
        return x86_raise(c, X86_UD);
    bool waiting = opc == 1 ? (sub == 4 || sub == 5) : opc == 5 ? sub == 4 : false;
    enum x86_status st = fpu_check(c, waiting);
    if (st)
        return st;
    uint8_t b[108];
    if (opc == 7) { /* fnstsw ax */
        x86_set_reg(c, R_AX, 2, c->fpu.fsw);
        return X86_OK;
    }
    if (opc == 1 && sub == 7)
        return x86_store(c, i->seg, x86_ea(c, i), 2, c->fpu.fcw);
    if (opc == 5 && sub == 7)
        return x86_store(c, i->seg, x86_ea(c, i), 2, c->fpu.fsw);
    if (opc == 1 && sub == 5) {
        uint64_t v;
        if ((st = x86_load(c, i->seg, x86_ea(c, i), 2, &v)))
            return st;
        c->fpu.fcw = (uint16_t)v;
        sync_es(c);
        return X86_OK;
    }
    if (sub == 6) { /* fnstenv, fnsave */
        unsigned n = env_image(c, o16, b);
        if (opc == 5) {
            for (unsigned k = 0; k < 8; k++) {
                const struct x86_fpreg *r = &c->fpu.r[phys(c, k)];
                memcpy(b + n + 10 * k, &r->mant, 8);
                memcpy(b + n + 10 * k + 8, &r->sexp, 2);
            }
            n += 80;
        }
        if ((st = store_block(c, i, b, n)))
            return st;
        if (opc == 5)
            fninit(c);
        else
            c->fpu.fcw |= FCW_MASKS; /* fnstenv masks every exception */
        sync_es(c);
        return X86_OK;
    }
    /* fldenv, frstor */
    unsigned n = (o16 ? 14 : 28) + (opc == 5 ? 80 : 0);
    if ((st = load_block(c, i, b, n)))
        return st;
    env_load(c, o16, b);
    if (opc == 5) {
        unsigned e = o16 ? 14 : 28;
        for (unsigned k = 0; k < 8; k++) {
            struct x86_fpreg *r = &c->fpu.r[phys(c, k)];
            memcpy(&r->mant, b + e + 10 * k, 8);
            memcpy(&r->sexp, b + e + 10 * k + 8, 2);
        }
    }
    return X86_OK;
}

/* ---- fxsave / fxrstor ------------------------------------------------------------- */

void x86_fpu_to_fxsave(const struct x86_fpu *f, uint8_t img[512], int rex_w)
{
    memset(img, 0, 512);
    memcpy(img + 0, &f->fcw, 2);
    memcpy(img + 2, &f->fsw, 2);
    img[4] = f->ftw;
    memcpy(img + 6, &f->fop, 2);
    if (rex_w) {
        memcpy(img + 8, &f->fip, 8);
        memcpy(img + 16, &f->fdp, 8);
    } else {
        uint32_t ip = (uint32_t)f->fip, dp = (uint32_t)f->fdp;
        memcpy(img + 8, &ip, 4);
        memcpy(img + 12, &f->fcs, 2);
        memcpy(img + 16, &dp, 4);
        memcpy(img + 20, &f->fds, 2);
    }
    memcpy(img + 24, &f->mxcsr, 4);
    uint32_t mask = MXCSR_VALID;
    memcpy(img + 28, &mask, 4);
    unsigned t = (f->fsw >> FSW_TOP_SHIFT) & 7;
    for (unsigned k = 0; k < 8; k++) {
        const struct x86_fpreg *r = &f->r[(t + k) & 7];
        memcpy(img + 32 + 16 * k, &r->mant, 8);
        memcpy(img + 40 + 16 * k, &r->sexp, 2);
    }
    memcpy(img + 160, f->xmm, 256);
}

void x86_fpu_from_fxsave(struct x86_fpu *f, const uint8_t img[512], int rex_w)
{
    memcpy(&f->fcw, img + 0, 2);
    memcpy(&f->fsw, img + 2, 2);
    f->ftw = img[4];
    memcpy(&f->fop, img + 6, 2);
    f->fop &= 0x7ff;
    if (rex_w) {
        memcpy(&f->fip, img + 8, 8);
        memcpy(&f->fdp, img + 16, 8);
    } else {
        uint32_t ip, dp;
        memcpy(&ip, img + 8, 4);
        memcpy(&f->fcs, img + 12, 2);
        memcpy(&dp, img + 16, 4);
        memcpy(&f->fds, img + 20, 2);
        f->fip = ip;
        f->fdp = dp;
    }
    memcpy(&f->mxcsr, img + 24, 4);
    unsigned t = (f->fsw >> FSW_TOP_SHIFT) & 7;
    for (unsigned k = 0; k < 8; k++) {
        struct x86_fpreg *r = &f->r[(t + k) & 7];
        memcpy(&r->mant, img + 32 + 16 * k, 8);
        memcpy(&r->sexp, img + 40 + 16 * k, 2);
    }
    memcpy(f->xmm, img + 160, 256);
}

/* How much of the image fxsave writes: the x87 and SSE part, with XMM8-15
 * only in 64-bit mode; bytes 416-511 are left alone. */
static unsigned fx_len(const struct x86_cpu *c)
{
    return c->long64 ? 416 : 288;
}

static enum x86_status fx_check(struct x86_cpu *c, const struct x86_insn *i, bool write,
                                uint64_t *lin)
{
    if (!i->mem)
        return x86_raise(c, X86_UD);
    if (c->cr0 & (CR0_EM | CR0_TS))
        return x86_raise(c, X86_NM);
    enum x86_status st = x86_linear(c, i->seg, x86_ea(c, i), 512, write, lin);
    if (st)
        return st;
    if (*lin & 15)
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

X86_OP(op_fxsave)
{
    uint64_t lin;
    enum x86_status st = fx_check(c, i, true, &lin);
    if (st)
        return st;
    uint8_t img[512];
    x86_fpu_to_fxsave(&c->fpu, img, i->rex & 8);
    return store_block(c, i, img, fx_len(c));
}

X86_OP(op_fxrstor)
{
    uint64_t lin;
    enum x86_status st = fx_check(c, i, false, &lin);
    if (st)
        return st;
    uint8_t img[512];
    memset(img, 0, sizeof img);
    if ((st = load_block(c, i, img, fx_len(c))))
        return st;
    uint32_t mx;
    memcpy(&mx, img + 24, 4);
    if (mx & ~(uint32_t)MXCSR_VALID)
        return x86_raise_err(c, X86_GP, 0);
    struct x86_fpu f = c->fpu;
    x86_fpu_from_fxsave(&f, img, i->rex & 8);
    if (!c->long64)
        memcpy(f.xmm + 8, c->fpu.xmm + 8, 8 * sizeof f.xmm[0]);
    if (!(c->cr4 & CR4_OSFXSR)) {
        f.mxcsr = c->fpu.mxcsr;
        memcpy(f.xmm, c->fpu.xmm, sizeof f.xmm);
    }
    c->fpu = f;
    sync_es(c);
    return X86_OK;
}
