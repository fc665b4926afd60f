/*
 * Memory operands: effective addresses, segmentation, and loads and stores
 * through the soft TLB (inline fast path; the accelerator's slow path walks
 * the page tables, reaches MMIO and notices stores into code).
 */
#ifndef VX_CPU_X86_MEM_H
#define VX_CPU_X86_MEM_H

#include "cpu/x86/cpu.h"
#include "cpu/x86/insn.h"

static inline uint64_t x86_addr_mask(unsigned addrsize)
{
    return addrsize == 8 ? ~0ull : addrsize == 4 ? 0xffffffffull : 0xffffull;
}

/* The offset (within its segment) of the instruction's memory operand. */
static inline uint64_t x86_ea(const struct x86_cpu *c, const struct x86_insn *i)
{
    uint64_t a = i->disp;
    if (i->base != X86_NOREG)
        a += i->base == X86_RIPREL ? c->next_rip : c->regs[i->base];
    if (i->index != X86_NOREG)
        a += c->regs[i->index] << i->scale;
    return a & x86_addr_mask(i->addrsize);
}

/* Segment offset to linear address, with the checks segmentation makes:
 * limits and null selectors outside 64-bit mode, canonical form inside.
 * `write` asks for a writable data segment. */
enum x86_status x86_linear_slow(struct x86_cpu *c, unsigned seg, uint64_t off, unsigned size,
                                bool write, uint64_t *lin);

/* Alignment checking (#AC(0)): a misaligned data access at CPL 3 with
 * CR0.AM and RFLAGS.AC set. Only reached for a misaligned address, so the
 * aligned accesses of the fast path pay one test. */
bool x86_ac_fault(struct x86_cpu *c);

static inline bool x86_misaligned(uint64_t a, unsigned size)
{
    unsigned align = size >= 8 ? 8 : size;
    return (a & (align - 1)) != 0;
}

/* The soft TLB for a naturally aligned access (size 2, 4 or 8) only: the
 * direct paths that skip x86_linear() leave a misaligned access to the
 * generic one, which does alignment checking. */
static inline uint8_t *x86_tlb_aligned(struct vx_tlb_entry *tab, uint64_t lin, unsigned size)
{
    return (lin & (size - 1)) ? NULL : vx_tlb_lookup(tab, lin, size);
}

static inline enum x86_status x86_linear(struct x86_cpu *c, unsigned seg, uint64_t off,
                                         unsigned size, bool write, uint64_t *lin)
{
    if (c->long64) {
        uint64_t a = off;
        if (seg == S_FS || seg == S_GS)
            a += c->seg[seg].base;
        /* Canonical: bits 63..47 all equal. */
        if (__builtin_expect((uint64_t)(((int64_t)a >> 47) + 1) > 1, 0))
            return x86_raise_err(c, seg == S_SS ? X86_SS : X86_GP, 0);
        if (__builtin_expect(x86_misaligned(a, size), 0) && x86_ac_fault(c))
            return x86_raise_err(c, X86_AC, 0);
        *lin = a;
        return X86_OK;
    }
    if (c->flat && seg != S_FS && seg != S_GS) {
        *lin = (uint32_t)off;
        if (__builtin_expect(off + size - 1 <= 0xffffffffull, 1)) {
            if (__builtin_expect(x86_misaligned(off, size), 0) && x86_ac_fault(c))
                return x86_raise_err(c, X86_AC, 0);
            return X86_OK;
        }
    }
    return x86_linear_slow(c, seg, off, size, write, lin);
}

/* Host memory reads and writes of an operand's exact width (1, 2, 4 or 8):
 * a narrow copy into a zeroed wide value stalls store forwarding, and a
 * run-time-sized memcpy compiles to rep movs. */
static inline uint64_t x86_host_read(const uint8_t *p, unsigned size)
{
    uint16_t w;
    uint32_t d;
    uint64_t q;
    switch (size) {
    case 1: return *p;
    case 2: memcpy(&w, p, 2); return w;
    case 4: memcpy(&d, p, 4); return d;
    default: memcpy(&q, p, 8); return q;
    }
}

static inline void x86_host_write(uint8_t *p, unsigned size, uint64_t val)
{
    uint16_t w = (uint16_t)val;
    uint32_t d = (uint32_t)val;
    switch (size) {
    case 1: *p = (uint8_t)val; break;
    case 2: memcpy(p, &w, 2); break;
    case 4: memcpy(p, &d, 4); break;
    default: memcpy(p, &val, 8); break;
    }
}

/* A load through the load TLB, or (for_store: the read of a
 * read-modify-write, made with write intent as the CPU makes it, so a page
 * the store could not write faults here with W in the #PF error code)
 * through the store TLB. for_store is a constant at every call. */
static inline __attribute__((always_inline)) enum x86_status
x86_load_tlb(struct x86_cpu *c, bool for_store, uint64_t lin, unsigned size, void *val)
{
    uint8_t *p = vx_tlb_lookup(for_store ? c->tlb.store : c->tlb.load, lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        memcpy(val, p, size);
        return X86_OK;
    }
    return for_store ? c->mem->load_for_store(c, lin, size, val)
                     : c->mem->load_slow(c, lin, size, val);
}

static inline enum x86_status x86_load_lin(struct x86_cpu *c, uint64_t lin, unsigned size,
                                           void *val)
{
    return x86_load_tlb(c, false, lin, size, val);
}

static inline enum x86_status x86_load_for_store(struct x86_cpu *c, uint64_t lin, unsigned size,
                                                 void *val)
{
    return x86_load_tlb(c, true, lin, size, val);
}

static inline enum x86_status x86_store_lin(struct x86_cpu *c, uint64_t lin, unsigned size,
                                            const void *val)
{
    uint8_t *p = vx_tlb_lookup(c->tlb.store, lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        memcpy(p, val, size);
        return X86_OK;
    }
    return c->mem->store_slow(c, lin, size, val);
}

/* Load or store `size` bytes (1, 2, 4, 8) at seg:off, zero-extended. */
static inline enum x86_status x86_load(struct x86_cpu *c, unsigned seg, uint64_t off,
                                       unsigned size, uint64_t *val)
{
    uint64_t lin;
    enum x86_status st = x86_linear(c, seg, off, size, false, &lin);
    if (st)
        return st;
    uint8_t *p = vx_tlb_lookup(c->tlb.load, lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        *val = x86_host_read(p, size);
        return X86_OK;
    }
    *val = 0;
    return c->mem->load_slow(c, lin, size, val);
}

static inline enum x86_status x86_store(struct x86_cpu *c, unsigned seg, uint64_t off,
                                        unsigned size, uint64_t val)
{
    uint64_t lin;
    enum x86_status st = x86_linear(c, seg, off, size, true, &lin);
    if (st)
        return st;
    uint8_t *p = vx_tlb_lookup(c->tlb.store, lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        x86_host_write(p, size, val);
        return X86_OK;
    }
    return c->mem->store_slow(c, lin, size, &val);
}

/* The ModRM r/m operand, register or memory. */
static inline enum x86_status x86_rm_read(struct x86_cpu *c, const struct x86_insn *i,
                                          unsigned size, uint64_t *val)
{
    if (!i->mem) {
        *val = x86_get_reg(c, i->rm, size);
        return X86_OK;
    }
    return x86_load(c, i->seg, x86_ea(c, i), size, val);
}

static inline enum x86_status x86_rm_write(struct x86_cpu *c, const struct x86_insn *i,
                                           unsigned size, uint64_t val)
{
    if (!i->mem) {
        x86_set_reg(c, i->rm, size, val);
        return X86_OK;
    }
    return x86_store(c, i->seg, x86_ea(c, i), size, val);
}

/* Read-modify-write of the r/m operand: the linear address is computed (and
 * checked for a store) once by x86_rmw_read, and x86_rmw_write stores to it;
 * nothing is changed before the store has succeeded. */
struct x86_rmw {
    uint64_t lin;
};

static inline __attribute__((always_inline)) enum x86_status
x86_rmw_read(struct x86_cpu *c, const struct x86_insn *i, unsigned size, struct x86_rmw *w,
             uint64_t *val)
{
    if (!i->mem) {
        *val = x86_get_reg(c, i->rm, size);
        return X86_OK;
    }
    enum x86_status st = x86_linear(c, i->seg, x86_ea(c, i), size, true, &w->lin);
    if (st)
        return st;
    uint8_t *p = vx_tlb_lookup(c->tlb.store, w->lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        *val = x86_host_read(p, size);
        return X86_OK;
    }
    *val = 0;
    return c->mem->load_for_store(c, w->lin, size, val); /* write intent: x86_load_for_store */
}

static inline __attribute__((always_inline)) enum x86_status
x86_rmw_write(struct x86_cpu *c, const struct x86_insn *i, unsigned size,
              const struct x86_rmw *w, uint64_t val)
{
    if (!i->mem) {
        x86_set_reg(c, i->rm, size, val);
        return X86_OK;
    }
    uint8_t *p = vx_tlb_lookup(c->tlb.store, w->lin, size);
    if (__builtin_expect(p != NULL, 1)) {
        x86_host_write(p, size, val);
        return X86_OK;
    }
    return c->mem->store_slow(c, w->lin, size, &val);
}

/* Stack: push and pop at SS:rSP with the stack's address size; rSP changes
 * only within that size, and only once the access has succeeded. Inline:
 * every call, return and push goes through them. */
static inline uint64_t x86_sp_mask(const struct x86_cpu *c)
{
    return c->stack_size == 8 ? ~0ull : c->stack_size == 4 ? 0xffffffffull : 0xffffull;
}

static inline void x86_set_sp(struct x86_cpu *c, uint64_t sp)
{
    uint64_t m = x86_sp_mask(c);
    c->regs[R_SP] = (c->regs[R_SP] & ~m) | (sp & m);
}

static inline enum x86_status x86_push(struct x86_cpu *c, unsigned size, uint64_t val)
{
    uint64_t sp = (c->regs[R_SP] - size) & x86_sp_mask(c);
    enum x86_status st = x86_store(c, S_SS, sp, size, val);
    if (st)
        return st;
    x86_set_sp(c, sp);
    return X86_OK;
}

static inline enum x86_status x86_pop(struct x86_cpu *c, unsigned size, uint64_t *val)
{
    uint64_t sp = c->regs[R_SP] & x86_sp_mask(c);
    enum x86_status st = x86_load(c, S_SS, sp, size, val);
    if (st)
        return st;
    x86_set_sp(c, sp + size);
    return X86_OK;
}

/* 64-bit mode, a memory operand with a 64-bit address and a segment other
 * than FS and GS (x86_fast64_operand): its linear address is its offset,
 * with no segment base, limit or address-size mask. The canonical check is
 * left to the TLB: it holds canonical pages only, so an address that hits
 * is canonical; one that misses goes to the generic handler, which checks. */
static inline bool x86_fast64_operand(const struct x86_insn *i)
{
    return i->mem && i->addrsize == 8 && i->seg != S_FS && i->seg != S_GS;
}

static inline uint64_t x86_ea64(const struct x86_cpu *c, const struct x86_insn *i)
{
    uint64_t a = i->disp;
    if (i->base != X86_NOREG)
        a += c->regs[i->base];
    if (i->index != X86_NOREG)
        a += c->regs[i->index] << i->scale;
    return a;
}

/* 64-bit mode, 8-byte stack accesses through the TLB only (SS's base is 0
 * and rSP is 64 bits there): false when the page is not in the TLB or the
 * access would cross it, and then nothing changed; the caller takes its
 * generic path (x86_push / x86_pop), out of line so that the fast one stays
 * a leaf. The TLB holds canonical pages only, so a hit needs no canonical
 * check. */
static inline bool x86_try_push64(struct x86_cpu *c, uint64_t val)
{
    uint64_t sp = c->regs[R_SP] - 8;
    struct vx_tlb_entry *e = &c->tlb.store[vx_tlb_index(sp)];
    /* aligned (so inside the page, and never an #AC): else the generic path */
    if (__builtin_expect(e->page == (sp & ~0xfffull) && !(sp & 7), 1)) {
        memcpy(e->host + (sp & 0xfff), &val, 8);
        c->regs[R_SP] = sp;
        return true;
    }
    return false;
}

/* The 8 bytes at rSP, rSP unchanged. */
static inline bool x86_try_peek64(const struct x86_cpu *c, uint64_t *val)
{
    uint64_t sp = c->regs[R_SP];
    const struct vx_tlb_entry *e = &c->tlb.load[vx_tlb_index(sp)];
    if (__builtin_expect(e->page == (sp & ~0xfffull) && !(sp & 7), 1)) {
        memcpy(val, e->host + (sp & 0xfff), 8);
        return true;
    }
    return false;
}

#endif
