/*
 * String instructions (movs, cmps, stos, lods, scas, ins, outs) with their
 * rep/repe/repne prefixes and the direction flag, and port I/O (in, out).
 *
 * Element by element. Each iteration computes its addresses, makes every
 * access that can fault or exit, and only then writes rSI/rDI/rCX (and the
 * lazy flags of cmps/scas), so an exception, a page fault or an X86_EXIT
 * in the middle of a rep leaves the registers describing the remaining
 * work, with rip still at the instruction: running it again continues.
 *
 * Bounded rep. One handler call performs at most REP_CHUNK iterations
 * (REP_CHUNK_IO for ins/outs, whose every element is a device access; 1
 * when RFLAGS.TF is set, as the CPU traps after every iteration), and
 * pauses early when cpu->end_block becomes set during the call (a store
 * invalidated translated code, a device callback asked the vCPU to stop)
 * or cpu->exit_after does (a port write nobody claimed is done and the
 * application must see it before the next element).
 * A paused instruction returns X86_REPEAT with next_rip = rip: the run loop
 * ends the block there without retiring or counting it, looks at stop
 * requests, interrupts and the budget, and runs it again from the
 * registers it left. Only the call that finishes counts: a rep string
 * instruction retires once, as on the CPU (a jump to itself, by contrast,
 * returns X86_BRANCH and retires every time).
 *
 * Fast path. For movs, stos and repe/repne cmps/scas, runs of elements
 * that lie in one page on each side (and in one piece of the 16/32-bit
 * address wrap and of the segment limit) go straight through the soft
 * TLB's host pointers: memmove/memset, memchr, word-at-a-time compares.
 * Overlap is decided on the host addresses (two linear pages may map the
 * same memory) and, where an element reads what an earlier one wrote, the
 * copy goes element by element as the CPU's does. Anything else (TLB miss,
 * element crossing a page, a segment check that fails) takes the element
 * path through x86_load/x86_store, whose slow path may refill the TLB.
 * Nothing on the fast path can fault, so the element path raises every
 * fault, at the right element.
 *
 * Nothing here reads the decoded instruction after the first access: a
 * store into translated code may free the block that holds it.
 */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/ops.h"

/* Iterations per handler call: a 16 KiB rep movsb, 128 KiB of movsq. */
#define REP_CHUNK 16384u
/* ins/outs: each element reaches a device. */
#define REP_CHUNK_IO 1024u

#define PAGE 0x1000u

/* What a string instruction needs of its decoding, copied once. */
struct str {
    uint64_t amask; /* address size: SI/DI/CX width */
    int64_t step;   /* +size or -size (DF) */
    unsigned size;  /* element bytes */
    unsigned shift; /* log2(size): sizes are powers of two, divisions are slow */
    unsigned as;    /* address bytes */
    unsigned seg;   /* source segment (DS or the override) */
    uint8_t rep;    /* 0, 0xf3, 0xf2 */
    bool down;      /* DF */
};

static inline void str_init(struct str *s, const struct x86_cpu *c, const struct x86_insn *i,
                            unsigned size)
{
    s->as = i->addrsize;
    s->amask = x86_addr_mask(s->as);
    s->size = size;
    s->shift = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
    s->down = (c->flags & F_DF) != 0;
    s->step = s->down ? -(int64_t)size : (int64_t)size;
    s->seg = i->seg;
    s->rep = i->rep;
}

/* ins/outs/in/out move at most 32 bits (REX.W does not widen them). */
static inline unsigned io_size(const struct x86_insn *i)
{
    return i->opsize > 4 ? 4 : i->opsize;
}

static inline uint64_t areg(const struct x86_cpu *c, unsigned r, const struct str *s)
{
    return c->regs[r] & s->amask;
}

/* rSI/rDI += n elements, wrapping within the address size (16 bits: only
 * the low word changes; 32 bits: the register is zero-extended). */
static inline void advance(struct x86_cpu *c, unsigned r, const struct str *s, uint64_t n)
{
    x86_set_reg(c, r, s->as, c->regs[r] + (uint64_t)s->step * n);
}

/* The element count: rCX with a prefix, else one. */
static inline uint64_t str_count(const struct x86_cpu *c, const struct str *s)
{
    return s->rep ? areg(c, R_CX, s) : 1;
}

static inline void set_count(struct x86_cpu *c, const struct str *s, uint64_t count)
{
    if (s->rep)
        x86_set_reg(c, R_CX, s->as, count);
}

static inline uint64_t str_budget(const struct x86_cpu *c, uint64_t chunk)
{
    return (c->flags & F_TF) ? 1 : chunk;
}

/* rep with rCX = 0: nothing happens, except that the CPU writes registers
 * back: with a 32-bit address size in 64-bit mode it clears the upper half
 * of RCX, and movs also of RSI and RDI, stos of RDI (their fast-string
 * microcode; measured on an Intel CPU, found by tests/difftest). Whether
 * ins/outs write back their pointer is not measured: left alone. */
static inline enum x86_status str_none(struct x86_cpu *c, const struct str *s, bool si, bool di)
{
    set_count(c, s, 0);
    if (si)
        advance(c, R_SI, s, 0);
    if (di)
        advance(c, R_DI, s, 0);
    return X86_OK;
}

/* After a call: done, or paused (come back to this instruction for the
 * rest, without retiring it). */
static inline enum x86_status str_end(struct x86_cpu *c, bool more)
{
    if (!more)
        return X86_OK;
    c->next_rip = c->rip;
    return X86_REPEAT;
}

/* Pause after this iteration: end_block or exit_after became set during
 * the call. Only a change counts, so that a flag left over from an earlier
 * pause cannot hold the instruction to one iteration per call. */
struct str_flags {
    bool end_block, exit_after;
};

static inline struct str_flags str_flags(const struct x86_cpu *c)
{
    return (struct str_flags){ c->end_block, c->exit_after };
}

static inline bool str_pause(const struct x86_cpu *c, struct str_flags at_entry)
{
    return __builtin_expect(c->end_block > at_entry.end_block ||
                            c->exit_after > at_entry.exit_after, 0);
}

/* repe stops on a mismatch, repne on a match. */
static inline bool rep_stops(uint8_t rep, uint64_t a, uint64_t b)
{
    return rep == 0xf2 ? a == b : a != b;
}

static inline uint64_t host_ld(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

/* ---- fast path ---------------------------------------------------------- */

/* Up to *n elements of the string operand at seg:off: the host address of
 * the first one when the TLB table `tab` maps them all in one page and
 * their segment checks pass, with *n reduced to what fits; NULL sends the
 * caller to the element path (which raises any fault at the right
 * element). */
static uint8_t *run_host(struct x86_cpu *c, struct vx_tlb_entry *tab, const struct str *s,
                         unsigned seg, uint64_t off, bool write, uint64_t *n)
{
    unsigned size = s->size;
    uint64_t lin, last_lin, room, in_page;

    if (x86_linear(c, seg, off, size, write, &lin) != X86_OK)
        return NULL;
    in_page = lin & (PAGE - 1);
    if (in_page + size > PAGE)
        return NULL;
    if (*n == 1) /* a single element: the checks above were all */
        return vx_tlb_lookup(tab, lin, size);
    if (!s->down) {
        room = (PAGE - in_page) >> s->shift;
        if (s->as < 8) { /* stop before the offset wraps */
            uint64_t w = (s->amask - off + 1) >> s->shift;
            room = w < room ? w : room;
        }
    } else {
        room = (in_page >> s->shift) + 1;
        if (s->as < 8) {
            uint64_t w = (off >> s->shift) + 1;
            room = w < room ? w : room;
        }
    }
    if (room < *n)
        *n = room;
    if (*n == 0)
        return NULL;
    uint64_t span = (*n - 1) << s->shift;
    if (span) {
        /* The valid offsets of a segment form one interval: the first and
         * the last element passing means every one between does. */
        uint64_t last_off = s->down ? off - span : off + span;
        if (x86_linear(c, seg, last_off, size, write, &last_lin) != X86_OK)
            return NULL;
        if (last_lin != (s->down ? lin - span : lin + span))
            return NULL;
    }
    uint8_t *h = vx_tlb_lookup(tab, s->down ? lin - span : lin, (unsigned)(span + size));
    if (!h)
        return NULL;
    return s->down ? h + span : h;
}

/* rep movs: up to max elements through the TLB; 0 when it cannot. */
static uint64_t movs_run(struct x86_cpu *c, const struct str *s, uint64_t si, uint64_t di,
                         uint64_t max)
{
    uint64_t n = max;
    uint8_t *src = run_host(c, c->tlb.load, s, s->seg, si, false, &n);
    if (!src)
        return 0;
    uint8_t *dst = run_host(c, c->tlb.store, s, S_ES, di, true, &n);
    if (!dst)
        return 0;
    size_t bytes = (size_t)n * s->size;
    uintptr_t hs = (uintptr_t)src, hd = (uintptr_t)dst;
    /* Does an element read bytes an earlier one wrote? Forward: the
     * destination starts inside the source run ahead of it; backward: the
     * mirror image. Otherwise the result is memmove's. */
    bool hazard = s->down ? (hd < hs && hs - hd < bytes) : (hd > hs && hd - hs < bytes);
    if (!hazard) {
        size_t back = s->down ? bytes - s->size : 0;
        memmove(dst - back, src - back, bytes);
        return n;
    }
    for (uint64_t k = 0; k < n; k++) {
        uint64_t v;
        memcpy(&v, src, s->size);
        memcpy(dst, &v, s->size);
        src += s->step;
        dst += s->step;
    }
    return n;
}

static uint64_t stos_run(struct x86_cpu *c, const struct str *s, uint64_t di, uint64_t max,
                         uint64_t val)
{
    uint64_t n = max;
    uint8_t *dst = run_host(c, c->tlb.store, s, S_ES, di, true, &n);
    if (!dst)
        return 0;
    size_t bytes = (size_t)n * s->size;
    uint8_t *lo = s->down ? dst - (bytes - s->size) : dst;
    if (s->size == 1) {
        memset(lo, (int)(val & 0xff), bytes);
        return n;
    }
    for (uint64_t k = 0; k < n; k++)
        memcpy(lo + k * s->size, &val, s->size);
    return n;
}

/* The scans of repe/repne cmps and scas: the index of the first of n
 * elements that stops the rep (n when none does). Forward scans go eight
 * bytes at a time over equal data (repe) or through memchr (repne scasb);
 * the rest compare element by element with the width fixed per loop. */
#define SCAN_LOOP(T, P_NEXT, VAL_A, VAL_B)                                    \
    for (uint64_t k = 0; k < n; k++) {                                       \
        T x_, y_;                                                            \
        memcpy(&x_, VAL_A, sizeof x_);                                       \
        memcpy(&y_, VAL_B, sizeof y_);                                       \
        if ((x_ == y_) == ne)                                                \
            return k;                                                        \
        P_NEXT;                                                              \
    }                                                                        \
    return n

static uint64_t scan_cmps(const uint8_t *p, const uint8_t *q, uint64_t n, unsigned size,
                          int64_t step, bool ne)
{
    if (!ne && step > 0) {
        uint64_t bytes = n * size, k = 0;
        for (; k + 8 <= bytes; k += 8) {
            uint64_t x, y;
            memcpy(&x, p + k, 8);
            memcpy(&y, q + k, 8);
            if (x != y)
                break;
        }
        uint64_t e = k / size;
        while (e < n && host_ld(p + e * size, size) == host_ld(q + e * size, size))
            e++;
        return e;
    }
    switch (size) {
    case 1: { SCAN_LOOP(uint8_t, (p += step, q += step), p, q); }
    case 2: { SCAN_LOOP(uint16_t, (p += step, q += step), p, q); }
    case 4: { SCAN_LOOP(uint32_t, (p += step, q += step), p, q); }
    default: { SCAN_LOOP(uint64_t, (p += step, q += step), p, q); }
    }
}

static uint64_t scan_scas(const uint8_t *p, uint64_t a, uint64_t n, unsigned size,
                          int64_t step, bool ne)
{
    if (step > 0 && ne && size == 1) {
        const uint8_t *hit = memchr(p, (int)a, n);
        return hit ? (uint64_t)(hit - p) : n;
    }
    if (step > 0 && !ne) {
        /* a repeated over a word: elements are aligned to p, so each
         * word at p + 8k holds whole copies of a. */
        uint64_t pat = size == 1 ? a * 0x0101010101010101ull
                     : size == 2 ? a * 0x0001000100010001ull
                     : size == 4 ? a | a << 32 : a;
        uint64_t bytes = n * size, k = 0;
        for (; k + 8 <= bytes; k += 8) {
            uint64_t x;
            memcpy(&x, p + k, 8);
            if (x != pat)
                break;
        }
        uint64_t e = k / size;
        while (e < n && host_ld(p + e * size, size) == a)
            e++;
        return e;
    }
    uint8_t a1 = (uint8_t)a;
    uint16_t a2 = (uint16_t)a;
    uint32_t a4 = (uint32_t)a;
    switch (size) {
    case 1: { SCAN_LOOP(uint8_t, p += step, &a1, p); }
    case 2: { SCAN_LOOP(uint16_t, p += step, &a2, p); }
    case 4: { SCAN_LOOP(uint32_t, p += step, &a4, p); }
    default: { SCAN_LOOP(uint64_t, p += step, &a, p); }
    }
}

/* repe/repne scas: compares a with the elements at ES:di until the prefix
 * stops it; returns how many were compared (the last one's value in *b,
 * whether it stopped the rep in *stop). */
static uint64_t scas_run(struct x86_cpu *c, const struct str *s, uint64_t di, uint64_t max,
                         uint64_t a, uint64_t *b, bool *stop)
{
    uint64_t n = max;
    const uint8_t *p = run_host(c, c->tlb.load, s, S_ES, di, false, &n);
    if (!p)
        return 0;
    uint64_t k = scan_scas(p, a, n, s->size, s->step, s->rep == 0xf2);
    *stop = k < n;
    if (*stop)
        k++;
    *b = host_ld(p + (int64_t)(k - 1) * s->step, s->size);
    return k;
}

static uint64_t cmps_run(struct x86_cpu *c, const struct str *s, uint64_t si, uint64_t di,
                         uint64_t max, uint64_t *a, uint64_t *b, bool *stop)
{
    uint64_t n = max;
    const uint8_t *p = run_host(c, c->tlb.load, s, s->seg, si, false, &n);
    if (!p)
        return 0;
    const uint8_t *q = run_host(c, c->tlb.load, s, S_ES, di, false, &n);
    if (!q)
        return 0;
    uint64_t k = scan_cmps(p, q, n, s->size, s->step, s->rep == 0xf2);
    *stop = k < n;
    if (*stop)
        k++;
    *a = host_ld(p + (int64_t)(k - 1) * s->step, s->size);
    *b = host_ld(q + (int64_t)(k - 1) * s->step, s->size);
    return k;
}

/* ---- memory string instructions ------------------------------------------ */

X86_OP(op_movs)
{
    struct str s;
    str_init(&s, c, i, i->opsize);
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, true, true);
    uint64_t budget = str_budget(c, REP_CHUNK);
    const struct str_flags eb0 = str_flags(c);
    while (count && budget) {
        uint64_t si = areg(c, R_SI, &s), di = areg(c, R_DI, &s);
        uint64_t n = movs_run(c, &s, si, di, count < budget ? count : budget);
        if (!n) {
            uint64_t v;
            enum x86_status st = x86_load(c, s.seg, si, s.size, &v);
            if (st)
                return st;
            st = x86_store(c, S_ES, di, s.size, v);
            if (st)
                return st;
            n = 1;
        }
        advance(c, R_SI, &s, n);
        advance(c, R_DI, &s, n);
        count -= n;
        budget -= n;
        set_count(c, &s, count);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0);
}

X86_OP(op_stos)
{
    struct str s;
    str_init(&s, c, i, i->opsize);
    uint64_t val = x86_get_reg(c, R_AX, s.size);
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, true);
    uint64_t budget = str_budget(c, REP_CHUNK);
    const struct str_flags eb0 = str_flags(c);
    while (count && budget) {
        uint64_t di = areg(c, R_DI, &s);
        uint64_t n = stos_run(c, &s, di, count < budget ? count : budget, val);
        if (!n) {
            enum x86_status st = x86_store(c, S_ES, di, s.size, val);
            if (st)
                return st;
            n = 1;
        }
        advance(c, R_DI, &s, n);
        count -= n;
        budget -= n;
        set_count(c, &s, count);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0);
}

/* rep lods is legal but pointless (only the last element stays), so it
 * has no fast path. */
X86_OP(op_lods)
{
    struct str s;
    str_init(&s, c, i, i->opsize);
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, false);
    uint64_t budget = str_budget(c, REP_CHUNK);
    const struct str_flags eb0 = str_flags(c);
    while (count && budget) {
        uint64_t v;
        enum x86_status st = x86_load(c, s.seg, areg(c, R_SI, &s), s.size, &v);
        if (st)
            return st;
        x86_set_reg(c, R_AX, s.size, v);
        advance(c, R_SI, &s, 1);
        count--;
        budget--;
        set_count(c, &s, count);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0);
}

/* cmps and scas: flags as cmp [rSI], [rDI] and cmp rAX, [rDI] would set
 * them, after every iteration (a fault in the middle shows the flags of the
 * last completed one). */
X86_OP(op_cmps)
{
    struct str s;
    str_init(&s, c, i, i->opsize);
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, false);
    uint64_t budget = str_budget(c, REP_CHUNK);
    const struct str_flags eb0 = str_flags(c);
    bool stop = false;
    while (count && budget && !stop) {
        uint64_t si = areg(c, R_SI, &s), di = areg(c, R_DI, &s);
        uint64_t a = 0, b = 0, n = 0;
        if (s.rep)
            n = cmps_run(c, &s, si, di, count < budget ? count : budget, &a, &b, &stop);
        if (!n) {
            enum x86_status st = x86_load(c, s.seg, si, s.size, &a);
            if (st)
                return st;
            st = x86_load(c, S_ES, di, s.size, &b);
            if (st)
                return st;
            stop = s.rep && rep_stops(s.rep, a, b);
            n = 1;
        }
        advance(c, R_SI, &s, n);
        advance(c, R_DI, &s, n);
        count -= n;
        budget -= n;
        set_count(c, &s, count);
        x86_set_lazy(c, CC_SUB, s.size, a - b, b, 0);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0 && !stop);
}

X86_OP(op_scas)
{
    struct str s;
    str_init(&s, c, i, i->opsize);
    uint64_t a = x86_get_reg(c, R_AX, s.size);
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, false);
    uint64_t budget = str_budget(c, REP_CHUNK);
    const struct str_flags eb0 = str_flags(c);
    bool stop = false;
    while (count && budget && !stop) {
        uint64_t di = areg(c, R_DI, &s);
        uint64_t b = 0, n = 0;
        if (s.rep)
            n = scas_run(c, &s, di, count < budget ? count : budget, a, &b, &stop);
        if (!n) {
            enum x86_status st = x86_load(c, S_ES, di, s.size, &b);
            if (st)
                return st;
            stop = s.rep && rep_stops(s.rep, a, b);
            n = 1;
        }
        advance(c, R_DI, &s, n);
        count -= n;
        budget -= n;
        set_count(c, &s, count);
        x86_set_lazy(c, CC_SUB, s.size, a - b, b, 0);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0 && !stop);
}

/* ---- port I/O ------------------------------------------------------------- */

/* Linear address of a system structure (the TSS): 64 bits in IA-32e mode,
 * 32 bits otherwise. */
static inline uint64_t sys_lin(const struct x86_cpu *c, uint64_t a)
{
    return (c->efer & EFER_LMA) ? a : (uint32_t)a;
}

enum x86_status x86_io_allowed(struct x86_cpu *c, uint16_t port, unsigned size)
{
    if (!(c->cr0 & CR0_PE))
        return X86_OK; /* real mode */
    if (!(c->flags & F_VM) && c->cpl <= ((c->flags & F_IOPL) >> 12))
        return X86_OK;
    /* Virtual-8086 mode, or CPL > IOPL: the I/O permission bitmap of a
     * 32/64-bit TSS (available 9 or busy 11; a 16-bit TSS has none). */
    const vx_x86_segment *tr = &c->tr;
    if (!tr->present || (tr->type & ~2u) != 9 || tr->limit < 0x67)
        return x86_raise_err(c, X86_GP, 0);
    uint16_t base = 0;
    enum x86_status st = c->mem->load_sys(c, sys_lin(c, tr->base + 0x66), 2, &base);
    if (st)
        return st;
    /* The CPU reads two bytes of the bitmap (a 4-byte access may span
     * two), and both must lie inside the limit: that is why a bitmap ends
     * with an 0xff byte, which also denies ports past 0xffff. */
    uint32_t off = (uint32_t)base + port / 8u;
    if (off + 1 > tr->limit)
        return x86_raise_err(c, X86_GP, 0);
    uint16_t bits = 0;
    st = c->mem->load_sys(c, sys_lin(c, tr->base + off), 2, &bits);
    if (st)
        return st;
    if ((bits >> (port & 7)) & ((1u << size) - 1))
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

/* e4-e7 take the port from imm8, ec-ef from DX. */
static inline uint16_t io_port(const struct x86_cpu *c, const struct x86_insn *i)
{
    return (i->opcode & 0x08) ? (uint16_t)c->regs[R_DX] : (uint8_t)i->imm;
}

X86_OP(op_in)
{
    unsigned size = io_size(i);
    uint16_t port = io_port(c, i);
    enum x86_status st = x86_io_allowed(c, port, size);
    if (st)
        return st;
    uint64_t v = 0;
    st = c->mem->port(c, port, size, false, &v);
    if (st)
        return st;
    x86_set_reg(c, R_AX, size, v); /* in eax zero-extends into rax */
    return X86_OK;
}

X86_OP(op_out)
{
    unsigned size = io_size(i);
    uint16_t port = io_port(c, i);
    enum x86_status st = x86_io_allowed(c, port, size);
    if (st)
        return st;
    uint64_t v = x86_get_reg(c, R_AX, size);
    return c->mem->port(c, port, size, true, &v);
}

/* ins/outs: one port access per element. The permission is checked before
 * anything else, even for a count of zero (the CPU does: a ring-3
 * "rep insb" with ECX = 0 and no permission raises #GP), and again before
 * every access. ins checks the destination's segment before
 * reading the port, so only a page fault on the store can lose a value
 * already read, as on the CPU. */
X86_OP(op_ins)
{
    struct str s;
    str_init(&s, c, i, io_size(i));
    uint16_t port = (uint16_t)c->regs[R_DX];
    enum x86_status st = x86_io_allowed(c, port, s.size);
    if (st)
        return st;
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, false);
    uint64_t budget = str_budget(c, REP_CHUNK_IO);
    const struct str_flags eb0 = str_flags(c);
    bool first = true;
    while (count && budget) {
        if (!first && (st = x86_io_allowed(c, port, s.size)) != X86_OK)
            return st;
        first = false;
        uint64_t lin, v = 0;
        st = x86_linear(c, S_ES, areg(c, R_DI, &s), s.size, true, &lin);
        if (st)
            return st;
        st = c->mem->port(c, port, s.size, false, &v);
        if (st)
            return st;
        st = x86_store_lin(c, lin, s.size, &v);
        if (st)
            return st;
        advance(c, R_DI, &s, 1);
        count--;
        budget--;
        set_count(c, &s, count);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0);
}

X86_OP(op_outs)
{
    struct str s;
    str_init(&s, c, i, io_size(i));
    uint16_t port = (uint16_t)c->regs[R_DX];
    enum x86_status st = x86_io_allowed(c, port, s.size);
    if (st)
        return st;
    uint64_t count = str_count(c, &s);
    if (!count)
        return str_none(c, &s, false, false);
    uint64_t budget = str_budget(c, REP_CHUNK_IO);
    const struct str_flags eb0 = str_flags(c);
    bool first = true;
    while (count && budget) {
        if (!first && (st = x86_io_allowed(c, port, s.size)) != X86_OK)
            return st;
        first = false;
        uint64_t v;
        st = x86_load(c, s.seg, areg(c, R_SI, &s), s.size, &v);
        if (st)
            return st;
        st = c->mem->port(c, port, s.size, true, &v);
        if (st)
            return st;
        advance(c, R_SI, &s, 1);
        count--;
        budget--;
        set_count(c, &s, count);
        if (str_pause(c, eb0))
            break;
    }
    return str_end(c, count != 0);
}
