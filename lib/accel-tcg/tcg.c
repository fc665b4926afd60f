/*
 * The tcg accelerator: libvx's own x86 translator, as an interpreter of
 * pre-decoded translation blocks.
 *
 * How it runs: the vCPU's linear rip is translated (fetch TLB, else the page
 * walk) to a guest-physical address; the block cached for that address and
 * the CPU mode is found or decoded; its instructions run one handler each.
 * Loads and stores go through the soft TLB; what misses comes here: the
 * page walk fills the TLB for RAM, ROM stores are dropped, everything else
 * is MMIO and goes to vx_io_dispatch() like a port access. A store into a
 * page that holds translated code invalidates those blocks (self-modifying
 * code). An access nobody claims leaves the run loop; the application's
 * answer completes it when the instruction runs again.
 *
 * vCPUs of one machine take turns: one holds the machine's lock while it
 * executes and lets others in between blocks when they wait.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel-tcg/tb.h"
#include "core/error.h"
#include "core/hostmem.h"
#include "core/io.h"
#include "core/machine.h"
#include "cpu/x86/cpu.h"
#include "devices/pc_intc.h"
#include "cpu/x86/insn.h"
#include "cpu/x86/interrupt.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/msr.h"
#include "cpu/x86/ops.h"
#include "mmu/x86_walk.h"

#define ULL(x) ((unsigned long long)(x))
/* The translation cache: address space reserved for TB_ARENA_SIZE bytes,
 * of which TB_ARENA_START may be used before the cache is flushed. Code
 * that runs once is not kept (tb_seen), and what a Linux boot keeps fits
 * with two flushes. A cache that fills again within TB_GROW_INSNS
 * instructions of its last flush doubles its limit instead: the working set
 * does not fit, and refilling 6 MiB (some 20,000 blocks to decode again)
 * that often would cost a few percent. The first fill says nothing of the
 * working set (start-up code runs once), so it always flushes. */
#define TB_ARENA_SIZE (256u << 20)
#define TB_ARENA_START (6u << 20)
#define TB_GROW_INSNS 200000000ull
#define MMIO_LOG 8

struct tcg_machine {
    pthread_mutex_t lock;
    atomic_int waiters;
    struct tb_cache tbs;
    /* Bumped whenever any vCPU's linear-to-physical mapping may have changed
     * (a TLB flush): a chained successor linked under an older generation
     * is looked up afresh. */
    uint64_t map_gen;
    struct pc_intc *intc; /* VX_MACHINE_IRQCHIP, else NULL */
    /* The last flush: by which vCPU, at which of its instruction counts. */
    const struct tcg_vcpu *flush_vcpu;
    uint64_t flush_insns;
};

#define CLOCK_CHECK_INSNS 4096

#define TCG_MACHINE_BYTES ((sizeof(struct tcg_machine) + 4095) & ~(size_t)4095)

struct mmio_entry {
    uint64_t gpa, value;
    uint8_t size;
    bool write;
};

struct tcg_vcpu {
    struct x86_cpu cpu;
    vx_vcpu *v;
    struct tcg_machine *tm;
    /* A block run once and not kept: the first run of code at an address
     * (most boot code runs once) is decoded here; the cache holds it from
     * the second run on (tb_seen). Never linked, hashed or in jmp_cache. */
    struct tb *scratch;
    struct tb *jmp_cache[1u << TB_JMP_BITS];
    uint64_t jmp_generation;
    uint32_t tlb_mode_key;
    uint64_t instructions;
    uint64_t clock_check_at; /* instructions: when to look at the host clock next */
    uint64_t budget; /* instructions left when budget_on */
    bool budget_on;
    enum { PENDING_NONE, PENDING_IO, PENDING_MMIO } pending;
    /* MMIO accesses the current instruction already made, replayed when it
     * runs again after an exit (so a device sees each access once). */
    struct mmio_entry log[MMIO_LOG];
    unsigned log_n, log_pos;
};

static struct tcg_vcpu *tv(struct x86_cpu *c)
{
    return c->opaque;
}

/* ---- address translation ------------------------------------------------ */

/* VX_WALK_USER is added for CPL 3 unless the access is a system one. */
#define WALK_SYS 0x100u

static enum x86_status walk(struct tcg_vcpu *t, uint64_t lin, unsigned access,
                            struct vx_walk *w)
{
    struct x86_cpu *c = &t->cpu;
    struct vx_x86_paging p = { c->cr0, c->cr3, c->cr4, c->efer };
    uint32_t err;
    if (c->cpl == 3 && !(access & WALK_SYS))
        access |= VX_WALK_USER;
    access &= ~WALK_SYS;
    if (vx_x86_walk(&t->v->machine->as, &p, lin, access, w, &err))
        return X86_OK;
    c->exc.addr = lin;
    return x86_raise_err(c, X86_PF, err);
}

/* ---- MMIO ------------------------------------------------------------------ */

/* A callback may have stopped its own vCPU: stop after this instruction, as
 * kvm does after the exit it was handling. */
static inline void after_callback(struct tcg_vcpu *t)
{
    if (atomic_load_explicit(&t->v->stop_requested, memory_order_relaxed))
        t->cpu.end_block = t->cpu.attention = true;
}

static enum x86_status mmio_one(struct tcg_vcpu *t, uint64_t gpa, unsigned size, bool write,
                                uint8_t *buf)
{
    struct x86_cpu *c = &t->cpu;
    uint64_t value = 0;
    if (write)
        memcpy(&value, buf, size);
    if (t->log_pos < t->log_n) {
        struct mmio_entry *e = &t->log[t->log_pos];
        if (e->gpa == gpa && e->size == size && e->write == write) {
            t->log_pos++;
            if (!write)
                memcpy(buf, &e->value, size);
            return X86_OK;
        }
        t->log_n = t->log_pos = 0; /* the instruction took another path */
    }
    if (c->io_answered && c->io_addr == gpa && c->io_size == size && c->io_write == write) {
        c->io_answered = false;
        if (!write)
            value = c->io_value & x86_mask(size);
    } else {
        struct vx_io io = { .addr = gpa, .value = value, .space = VX_IO_MMIO,
                            .len = (uint8_t)size, .is_write = write };
        int rc = vx_io_dispatch(t->v, &io);
        if (rc < 0) {
            c->exit_reason = X86_EXIT_CALLBACK;
            return X86_EXIT;
        }
        after_callback(t);
        if (rc == VX_IO_UNCLAIMED) {
            c->io_addr = gpa;
            c->io_size = (uint8_t)size;
            c->io_write = write;
            c->io_value = value;
            c->exit_reason = X86_EXIT_MMIO;
            return X86_EXIT;
        }
        value = io.value;
    }
    if (t->log_n < MMIO_LOG) {
        t->log[t->log_n++] = (struct mmio_entry){ gpa, value, (uint8_t)size, write };
        t->log_pos = t->log_n;
        c->attention = true;
    }
    if (!write)
        memcpy(buf, &value, size);
    return X86_OK;
}

static enum x86_status mmio(struct tcg_vcpu *t, uint64_t gpa, unsigned size, bool write,
                            uint8_t *buf)
{
    /* Devices take at most 8 bytes at a time (a 16-byte access is two). */
    while (size) {
        unsigned n = size > 8 ? 8 : size;
        enum x86_status st = mmio_one(t, gpa, n, write, buf);
        if (st)
            return st;
        gpa += n;
        buf += n;
        size -= n;
    }
    return X86_OK;
}

/* ---- loads and stores that missed the TLB ------------------------------------ */

/* Is t's scratch block alive and on guest-physical page `page`? */
static bool scratch_on(const struct tcg_vcpu *t, uint64_t page)
{
    const struct tb *s = t->scratch;
    return s->valid && (s->page[0] == page || s->page[1] == page);
}

/* Kill the scratch blocks (of every vCPU: another's may be kept later)
 * on a guest-physical page that was written. Returns true when t's own
 * was one. */
static bool kill_scratch(vx_machine *m, const struct tcg_vcpu *t, uint64_t page)
{
    bool own = false;
    for (unsigned k = 0; k < m->vcpu_count; k++) {
        struct tcg_vcpu *o = m->vcpus[k] ? m->vcpus[k]->accel : NULL;
        if (o && scratch_on(o, page)) {
            o->scratch->valid = false;
            own |= o == t;
        }
    }
    return own;
}

/* A store reached guest-physical page `page`: blocks translated from it die,
 * and the running block ends after this instruction (it may be one of them). */
static void code_stored(struct tcg_vcpu *t, uint64_t page)
{
    if (kill_scratch(t->v->machine, t, page))
        t->cpu.end_block = t->cpu.attention = true;
    if (tb_page_has_code(&t->tm->tbs, page)) {
        tb_invalidate_page(&t->tm->tbs, page);
        t->cpu.end_block = t->cpu.attention = true;
    }
}

/* The vCPU's linear-to-physical view may have changed (mode, control
 * registers, EFER): empty its TLB, note the mode it now holds, and make
 * every chained link re-check its successor. */
static void flush_tlb(struct tcg_vcpu *t)
{
    vx_tlb_flush(&t->cpu.tlb);
    t->tlb_mode_key = t->cpu.mode_key;
    t->tm->map_gen++;
}

static enum x86_status load_part(struct tcg_vcpu *t, uint64_t lin, unsigned size, uint8_t *buf)
{
    struct vx_walk w;
    enum x86_status st = walk(t, lin, 0, &w);
    if (st)
        return st;
    struct vx_region *r = vx_as_find(&t->v->machine->as, w.gpa);
    if (!r)
        return mmio(t, w.gpa, size, false, buf);
    uint64_t off = w.gpa - r->gpa;
    memcpy(buf, r->host + off, size);
    vx_tlb_fill(t->cpu.tlb.load, lin, r->host + (off & ~0xfffull), w.gpa & ~0xfffull);
    return X86_OK;
}

static enum x86_status tcg_load_slow(struct x86_cpu *c, uint64_t lin, unsigned size, void *val)
{
    struct tcg_vcpu *t = tv(c);
    unsigned first = 0x1000 - (unsigned)(lin & 0xfff);
    if (size <= first)
        return load_part(t, lin, size, val);
    enum x86_status st = load_part(t, lin, first, val);
    return st ? st : load_part(t, lin + first, size - first, (uint8_t *)val + first);
}

static enum x86_status store_part(struct tcg_vcpu *t, uint64_t lin, const struct vx_walk *w,
                                  unsigned size, const uint8_t *buf)
{
    struct x86_cpu *c = &t->cpu;
    struct vx_region *r = vx_as_find(&t->v->machine->as, w->gpa);
    if (!r)
        return mmio(t, w->gpa, size, true, (uint8_t *)buf);
    if (!(r->prot & VX_MEM_WRITE))
        return X86_OK; /* ROM: the store is dropped */
    uint64_t page = w->gpa & ~0xfffull;
    code_stored(t, page);
    uint64_t off = w->gpa - r->gpa;
    memcpy(r->host + off, buf, size);
    vx_tlb_fill(c->tlb.store, lin, r->host + (off & ~0xfffull), page);
    return X86_OK;
}

/* Supervisor accesses: walked as such, byte by byte across pages, and no
 * TLB fill (the TLB holds the current CPL's view). */
static enum x86_status sys_access(struct x86_cpu *c, uint64_t lin, unsigned size, uint8_t *buf,
                                  bool write)
{
    struct tcg_vcpu *t = tv(c);
    while (size) {
        unsigned n = 0x1000 - (unsigned)(lin & 0xfff);
        if (n > size)
            n = size;
        struct vx_walk w;
        enum x86_status st = walk(t, lin, WALK_SYS | (write ? VX_WALK_WRITE : 0), &w);
        if (st)
            return st;
        struct vx_region *r = vx_as_find(&t->v->machine->as, w.gpa);
        if (!r)
            st = mmio(t, w.gpa, n, write, buf);
        else if (!write)
            memcpy(buf, r->host + (w.gpa - r->gpa), n);
        else if (r->prot & VX_MEM_WRITE) {
            code_stored(t, w.gpa & ~0xfffull);
            memcpy(r->host + (w.gpa - r->gpa), buf, n);
        }
        if (st)
            return st;
        lin += n;
        buf += n;
        size -= n;
    }
    return X86_OK;
}

static enum x86_status tcg_load_sys(struct x86_cpu *c, uint64_t lin, unsigned size, void *val)
{
    return sys_access(c, lin, size, val, false);
}

static enum x86_status tcg_store_sys(struct x86_cpu *c, uint64_t lin, unsigned size,
                                     const void *val)
{
    return sys_access(c, lin, size, (uint8_t *)val, true);
}

static enum x86_status tcg_store_slow(struct x86_cpu *c, uint64_t lin, unsigned size,
                                      const void *val)
{
    struct tcg_vcpu *t = tv(c);
    unsigned first = 0x1000 - (unsigned)(lin & 0xfff);
    struct vx_walk w1, w2;
    enum x86_status st = walk(t, lin, VX_WALK_WRITE, &w1);
    if (st)
        return st;
    if (size <= first)
        return store_part(t, lin, &w1, size, val);
    /* Both pages must be writable before either is written. */
    if ((st = walk(t, lin + first, VX_WALK_WRITE, &w2)))
        return st;
    if ((st = store_part(t, lin, &w1, first, val)))
        return st;
    return store_part(t, lin + first, &w2, size - first, (const uint8_t *)val + first);
}

static enum x86_status tcg_load_for_store(struct x86_cpu *c, uint64_t lin, unsigned size,
                                         void *val)
{
    struct tcg_vcpu *t = tv(c);
    uint8_t *buf = val;
    /* Both pages are translated for the store before either is read. */
    unsigned first = 0x1000 - (unsigned)(lin & 0xfff);
    unsigned n[2] = { size <= first ? size : first, size <= first ? 0 : size - first };
    struct vx_walk w[2];
    for (unsigned k = 0; k < 2 && n[k]; k++) {
        enum x86_status st = walk(t, lin + (k ? first : 0), VX_WALK_WRITE, &w[k]);
        if (st)
            return st;
    }
    for (unsigned k = 0; k < 2 && n[k]; k++) {
        uint64_t at = lin + (k ? first : 0);
        struct vx_region *r = vx_as_find(&t->v->machine->as, w[k].gpa);
        if (!r) {
            enum x86_status st = mmio(t, w[k].gpa, n[k], false, buf);
            if (st)
                return st;
        } else {
            uint64_t off = w[k].gpa - r->gpa;
            memcpy(buf, r->host + off, n[k]);
            if (r->prot & VX_MEM_WRITE) {
                /* as store_part: translated code on the page dies before
                 * the store TLB may reach it */
                code_stored(t, w[k].gpa & ~0xfffull);
                vx_tlb_fill(c->tlb.store, at, r->host + (off & ~0xfffull),
                            w[k].gpa & ~0xfffull);
            }
        }
        buf += n[k];
    }
    return X86_OK;
}

static enum x86_status tcg_port(struct x86_cpu *c, uint16_t port, unsigned size, bool write,
                                uint64_t *val)
{
    struct tcg_vcpu *t = tv(c);
    uint64_t m = x86_mask(size);
    if (c->io_answered) {
        c->io_answered = false;
        if (c->io_addr == port && c->io_size == size && c->io_write == write) {
            if (!write)
                *val = c->io_value & m;
            return X86_OK;
        }
    }
    struct vx_io io = { .addr = port, .value = write ? *val & m : 0, .space = VX_IO_PIO,
                        .len = (uint8_t)size, .is_write = write };
    int rc = vx_io_dispatch(t->v, &io);
    after_callback(t);
    if (rc == VX_IO_DONE) {
        if (!write)
            *val = io.value;
        return X86_OK;
    }
    if (rc < 0) {
        c->exit_reason = X86_EXIT_CALLBACK;
        return X86_EXIT;
    }
    if (t->v->machine->flags & VX_MACHINE_IGNORE_UNCLAIMED_IO) {
        if (!write)
            *val = m;
        return X86_OK;
    }
    if (write) {
        /* Nothing to wait for: the write is done now and the exit comes
         * right after it, so rip (or a string instruction's registers) show
         * it done, as under KVM. A second unclaimed write in the same
         * instruction (rep outs) stops before itself. */
        if (c->exit_after)
            return X86_EXIT;
        c->io_addr = port;
        c->io_size = (uint8_t)size;
        c->io_write = true;
        c->io_value = io.value;
        c->exit_reason = X86_EXIT_IO;
        c->exit_after = c->attention = true;
        return X86_OK;
    }
    c->io_addr = port;
    c->io_size = (uint8_t)size;
    c->io_write = write;
    c->io_value = io.value;
    c->exit_reason = X86_EXIT_IO;
    return X86_EXIT;
}

/* invlpg flushes everything too: the TLB holds 4 KiB pieces of large pages
 * without remembering which large page they came from. */
static void tcg_tlb_flush(struct x86_cpu *c, uint64_t lin)
{
    (void)lin;
    flush_tlb(tv(c));
}

static const struct x86_mem_ops tcg_mem_ops = {
    .load_slow = tcg_load_slow,
    .store_slow = tcg_store_slow,
    .load_for_store = tcg_load_for_store,
    .load_sys = tcg_load_sys,
    .store_sys = tcg_store_sys,
    .port = tcg_port,
    .tlb_flush = tcg_tlb_flush,
};

/* ---- translation --------------------------------------------------------- */

static bool ends_block(x86_handler fn)
{
    return fn == op_jmp_rel || fn == op_jcc || fn == op_call_rel || fn == op_ret ||
           fn == op_jmp_rm || fn == op_call_rm || fn == op_loop || fn == op_jcxz ||
           fn == op_jmp_far || fn == op_call_far || fn == op_retf || fn == op_iret ||
           fn == op_int3 || fn == op_int || fn == op_into || fn == op_int1 || fn == op_hlt ||
           fn == op_ud || fn == op_gp0 || fn == op_mov_sreg_rm || fn == op_pop_sreg ||
           fn == op_popf || fn == op_flag || fn == op_syscall || fn == op_sysret ||
           fn == op_sysenter || fn == op_sysexit || fn == op_mov_cr;
}

/* Host pointer to the page holding guest-physical gpa, for fetching: RAM
 * or ROM only. */
static uint8_t *code_page(struct tcg_vcpu *t, uint64_t gpa)
{
    struct vx_region *r = vx_as_find(&t->v->machine->as, gpa);
    if (!r)
        return NULL;
    return r->host + ((gpa - r->gpa) & ~0xfffull);
}

/* Translate lin for instruction fetch: guest-physical address and host page. */
static enum x86_status fetch_page(struct tcg_vcpu *t, uint64_t lin, uint64_t *gpa,
                                  uint8_t **host)
{
    struct x86_cpu *c = &t->cpu;
    struct vx_tlb_entry *e = &c->tlb.fetch[vx_tlb_index(lin)];
    if (e->page == (lin & ~0xfffull)) {
        *gpa = e->gpa | (lin & 0xfff);
        *host = e->host;
        return X86_OK;
    }
    struct vx_walk w;
    enum x86_status st = walk(t, lin, VX_WALK_FETCH, &w);
    if (st)
        return st;
    uint8_t *h = code_page(t, w.gpa);
    if (!h) {
        vxi_error(VX_ENOTSUP, "tcg: instruction fetch at 0x%llx (guest-physical 0x%llx) is not "
                  "from RAM or ROM", ULL(lin), ULL(w.gpa));
        c->exit_reason = X86_EXIT_CALLBACK;
        return X86_EXIT;
    }
    vx_tlb_fill(c->tlb.fetch, lin, h, w.gpa & ~0xfffull);
    *gpa = w.gpa;
    *host = h;
    return X86_OK;
}

static uint64_t ip_mask(const struct x86_cpu *c)
{
    return c->code_size == 8 ? ~0ull : c->code_size == 4 ? 0xffffffffull : 0xffffull;
}

static uint64_t pc_linear(const struct x86_cpu *c)
{
    uint64_t lin = c->seg[S_CS].base + c->rip;
    return c->long64 ? lin : (uint32_t)lin;
}

static void flush_code_page_from_tlbs(struct tcg_vcpu *t, uint64_t gpa_page)
{
    vx_machine *m = t->v->machine;
    for (unsigned k = 0; k < m->vcpu_count; k++) {
        struct tcg_vcpu *o = m->vcpus[k]->accel;
        if (o)
            vx_tlb_flush_store_gpa(&o->cpu.tlb, gpa_page);
    }
}

/* The translation cache is full: flush it, or grow it if it filled too soon
 * after the last flush (TB_GROW_INSNS, counted by the vCPU that flushed). */
static void cache_full(struct tcg_vcpu *t)
{
    struct tcg_machine *tm = t->tm;
    if (tm->flush_vcpu == t && t->instructions - tm->flush_insns < TB_GROW_INSNS &&
        tb_cache_grow(&tm->tbs))
        return;
    tm->flush_vcpu = t;
    tm->flush_insns = t->instructions;
    tb_cache_flush(&tm->tbs);
}

/* The scratch block, still alive, is the block wanted at (lin, gpa, the
 * current mode) the second time: into the cache without a second decode.
 * Its pages are still out of the store TLBs, or a store would have killed
 * it. Returns false when it is some other block, or the cache is full. */
static bool keep_scratch(struct tcg_vcpu *t, uint64_t lin, uint64_t gpa, struct tb **out)
{
    struct tb *s = t->scratch;
    if (!s->valid || s->lin != lin || s->phys != gpa || s->mode_key != t->cpu.mode_key)
        return false;
    struct tb *tb = tb_alloc(&t->tm->tbs, s->count);
    if (!tb)
        return false;
    tb->lin = s->lin;
    tb->phys = s->phys;
    tb->page[0] = s->page[0];
    tb->page[1] = s->page[1];
    tb->mode_key = s->mode_key;
    tb->count = s->count;
    memcpy(tb->insn, s->insn, s->count * sizeof s->insn[0]);
    if (!tb_insert(&t->tm->tbs, tb))
        return false;
    s->valid = false;
    *out = tb;
    return true;
}

/* keep: into the cache; else into t->scratch, for one run. */
static enum x86_status translate(struct tcg_vcpu *t, uint64_t lin, uint64_t gpa,
                                 uint8_t *host, bool keep, struct tb **out)
{
    struct x86_cpu *c = &t->cpu;
    if (keep && keep_scratch(t, lin, gpa, out))
        return X86_OK;
    struct x86_insn buf[TB_MAX_INSNS];
    unsigned n = 0;
    uint64_t pc = lin, page2 = TB_NO_PAGE;
    uint8_t bytes[X86_MAX_INSN];
    for (;;) {
        unsigned off = (unsigned)(pc & 0xfff);
        unsigned in_page = 0x1000 - off;
        int len;
        if (in_page >= X86_MAX_INSN) {
            len = x86_decode(c, host + off, X86_MAX_INSN, &buf[n]);
        } else {
            memcpy(bytes, host + off, in_page);
            len = x86_decode(c, bytes, in_page, &buf[n]);
            if (len == 0) {
                /* The instruction runs into the next page. */
                uint64_t gpa2;
                uint8_t *host2;
                enum x86_status st = fetch_page(t, (pc + in_page) & (c->long64 ? ~0ull : 0xffffffffull),
                                                &gpa2, &host2);
                if (st) {
                    if (n == 0)
                        return st;
                    break; /* end the block before it; the fault comes when it runs */
                }
                memcpy(bytes + in_page, host2, X86_MAX_INSN - in_page);
                len = x86_decode(c, bytes, X86_MAX_INSN, &buf[n]);
                page2 = gpa2 & ~0xfffull;
            }
        }
        if (len < 0)
            len = X86_MAX_INSN; /* over 15 bytes: the handler raises #GP */
        x86_handler fn = buf[n].fn;
        x86_resolve_branch(c, &buf[n], pc); /* in 64-bit mode pc is the rip */
        n++;
        pc += (unsigned)len;
        if (ends_block(fn) || n == TB_MAX_INSNS || page2 != TB_NO_PAGE ||
            (c->mode_key & X86_MODE_STEP) ||
            (pc & 0xfff) == 0 || ((pc ^ lin) & ~0xfffull))
            break;
    }
    x86_specialize_block(buf, n);
    struct tb *tb = keep ? tb_alloc(&t->tm->tbs, n) : t->scratch;
    if (!tb) {
        cache_full(t);
        tb = tb_alloc(&t->tm->tbs, n);
        if (!tb) {
            vxi_error(VX_ENOMEM, "tcg: the translation cache cannot hold one block");
            c->exit_reason = X86_EXIT_CALLBACK;
            return X86_EXIT;
        }
    }
    tb->lin = lin;
    tb->phys = gpa;
    tb->page[0] = gpa & ~0xfffull;
    tb->page[1] = page2;
    tb->mode_key = c->mode_key;
    tb->count = n;
    memcpy(tb->insn, buf, n * sizeof buf[0]);
    if (!keep) {
        tb->valid = true;
        tb->succ = NULL;
    } else if (!tb_insert(&t->tm->tbs, tb)) {
        cache_full(t);
        return translate(t, lin, gpa, host, keep, out);
    }
    flush_code_page_from_tlbs(t, tb->page[0]);
    if (page2 != TB_NO_PAGE)
        flush_code_page_from_tlbs(t, page2);
    *out = tb;
    return X86_OK;
}

static enum x86_status find_block(struct tcg_vcpu *t, struct tb **out)
{
    struct x86_cpu *c = &t->cpu;
    uint64_t lin = pc_linear(c);
    uint64_t gpa;
    uint8_t *host;
    enum x86_status st = fetch_page(t, lin, &gpa, &host);
    if (st)
        return st;
    struct tb_cache *tc = &t->tm->tbs;
    if (t->jmp_generation != tc->generation) {
        memset(t->jmp_cache, 0, sizeof t->jmp_cache);
        t->jmp_generation = tc->generation;
    }
    unsigned h = (unsigned)(lin ^ (lin >> TB_JMP_BITS)) & ((1u << TB_JMP_BITS) - 1);
    struct tb *tb = t->jmp_cache[h];
    if (tb && tb->valid && tb->lin == lin && tb->phys == gpa && tb->mode_key == c->mode_key) {
        *out = tb;
        return X86_OK;
    }
    tb = tb_lookup(tc, gpa, c->mode_key, lin);
    if (!tb) {
        bool keep = tb_seen(tc, gpa, c->mode_key, lin);
        st = translate(t, lin, gpa, host, keep, &tb);
        if (st || !keep) {
            *out = tb;
            return st;
        }
    }
    t->jmp_cache[h] = tb;
    *out = tb;
    return X86_OK;
}

/* ---- exceptions ------------------------------------------------------------- */

/* The instruction at rip, for messages: "0f 0b (opcode 0f 0b)". */
static void describe_at_rip(struct tcg_vcpu *t, char *buf, size_t size)
{
    struct x86_cpu *c = &t->cpu;
    uint64_t gpa;
    uint8_t *host;
    struct x86_exc saved = c->exc;
    uint64_t lin = pc_linear(c);
    buf[0] = 0;
    if (fetch_page(t, lin, &gpa, &host) == X86_OK) {
        unsigned off = (unsigned)(lin & 0xfff), n = 0x1000 - off;
        if (n > X86_MAX_INSN)
            n = X86_MAX_INSN;
        struct x86_insn insn;
        if (x86_decode(c, host + off, n, &insn) <= 0)
            insn.len = (uint8_t)(n < 4 ? n : 4);
        x86_describe(&insn, host + off, buf, (unsigned)size);
    }
    c->exc = saved;
}

/* An instruction raised an exception: deliver it through the guest's
 * IVT/IDT. Returns true when the run must end (exit filled in): a triple
 * fault, or something tcg does not model. */
static bool take_exception(struct tcg_vcpu *t, vx_exit *exit)
{
    struct x86_cpu *c = &t->cpu;
    char what[96] = "";
    if (c->exc.vector == X86_UD)
        describe_at_rip(t, what, sizeof what);
    uint64_t rip = c->rip;
    enum x86_status st = x86_take_exception(c);
    if (st == X86_OK)
        return false;
    const struct x86_exc *e = &c->exc_first;
    char err[32] = "";
    if (e->has_error)
        snprintf(err, sizeof err, "(0x%x)", e->error);
    if (c->exit_reason == X86_EXIT_SHUTDOWN) {
        exit->reason = VX_EXIT_SHUTDOWN;
        exit->u.shutdown.kind = VX_SHUTDOWN_TRIPLE_FAULT;
        exit->u.shutdown.code = 0;
        vxi_error(VX_OK, "the guest triple-faulted: %s%s at rip 0x%llx%s%s could not be "
                  "delivered", x86_vector_name(e->vector), err, ULL(rip), what[0] ? ": " : "",
                  what);
    } else {
        exit->reason = VX_EXIT_INTERNAL;
        vxi_error(VX_ENOTSUP, "tcg: delivering %s%s at rip 0x%llx needs %s, which tcg does not "
                  "model", x86_vector_name(e->vector), err, ULL(rip), c->unsupported);
    }
    c->exit_reason = X86_EXIT_NONE;
    return true;
}

/* ---- the run loop --------------------------------------------------------- */

enum block_end { END_NEXT, END_STATUS, END_BUDGET };

/* After an instruction retired with attention set: forget what belonged to
 * it. Returns true when the block must end here (and *exit when the run
 * must leave for the application: a port write nobody claimed). */
static bool retire_attention(struct tcg_vcpu *t, bool *exit)
{
    struct x86_cpu *c = &t->cpu;
    bool end = c->end_block || c->exit_after;
    *exit = c->exit_after;
    t->log_n = t->log_pos = 0;
    c->io_answered = false;
    c->end_block = false;
    c->attention = false;
    return end;
}

/* ipmask: the instruction pointer's width in the block's mode (ip_mask()). */
static enum block_end run_block(struct tcg_vcpu *t, const struct tb *tb, uint64_t ipmask,
                                enum x86_status *st_out)
{
    struct x86_cpu *c = &t->cpu;
    unsigned n = tb->count;
    bool budget_cut = false;
    if (__builtin_expect(t->budget_on, 0) && t->budget < n) {
        n = (unsigned)t->budget;
        budget_cut = true;
    }
    const struct x86_insn *i = tb->insn, *end = tb->insn + n;
    enum block_end how = END_NEXT;
    /* rip runs ahead of c->rip across pure instructions (insn.h), which
     * need neither it nor next_rip nor a look at attention after them; it
     * is stored before any other instruction and when the block ends. The
     * mask can wait: masking a sum once is masking each addition. */
    uint64_t rip = c->rip;
    for (; i < end; i++) {
        if (i->pure) {
            i->fn(c, i);
            rip += i->len;
            continue;
        }
        rip &= ipmask;
        c->rip = rip;
        c->next_rip = (rip + i->len) & ipmask;
        enum x86_status st = i->fn(c, i);
        if (__builtin_expect(st == X86_OK, 1)) {
            rip = c->next_rip;
            bool leave = false;
            if (__builtin_expect(c->attention, 0)) {
                c->rip = rip;
                if (retire_attention(t, &leave)) {
                    i++;
                    if (leave) {
                        *st_out = X86_EXIT;
                        how = END_STATUS;
                        budget_cut = false;
                    }
                    goto out;
                }
            }
            continue;
        }
        if (st == X86_REPEAT) {
            /* A rep instruction that paused runs again: not retired yet. If
             * it paused for an unclaimed write, the exit comes now, before
             * the next element is touched. */
            if (c->exit_after) {
                *st_out = X86_EXIT;
                how = END_STATUS;
                budget_cut = false;
            }
            goto out;
        }
        if (st == X86_BRANCH) {
            c->rip = c->next_rip;
            if (__builtin_expect(i + 1 == end && !c->attention, 1))
                goto all_ran; /* the usual end: the block's last instruction */
            bool leave = false;
            if (c->attention)
                retire_attention(t, &leave);
            i++;
            budget_cut = budget_cut && i == end;
            if (leave) {
                *st_out = X86_EXIT;
                how = END_STATUS;
                budget_cut = false;
            }
            goto out;
        }
        if (st == X86_EXIT && c->exit_reason == X86_EXIT_HLT)
            i++; /* hlt retired (it moved rip itself) */
        *st_out = st;
        how = END_STATUS;
        budget_cut = false;
        goto out;
    }
    c->rip = rip & ipmask;
all_ran:
    t->instructions += n;
    if (__builtin_expect(t->budget_on, 0)) {
        t->budget -= n;
        if (budget_cut && t->budget == 0)
            return END_BUDGET;
    }
    return END_NEXT;
out:;
    unsigned done = (unsigned)(i - tb->insn);
    t->instructions += done;
    if (t->budget_on)
        t->budget -= done;
    if (how == END_NEXT && budget_cut && t->budget == 0)
        return END_BUDGET;
    return how;
}

/* Between blocks, with an interrupt controller: deliver the timer ticks
 * that fell due and take an external interrupt when RFLAGS.IF and the
 * interrupt shadow allow. Returns true when the run must end (exit filled
 * in: the delivery triple-faulted or needs a task switch). */
static bool event_failed(struct tcg_vcpu *t, vx_exit *exit, int vector);

static bool check_interrupts(struct tcg_vcpu *t, vx_exit *exit)
{
    struct x86_cpu *c = &t->cpu;
    struct pc_intc *ic = t->tm->intc;
    /* An NMI first: it ignores IF, not the shadow of mov ss. */
    if (atomic_load_explicit(&t->v->nmi_pending, memory_order_relaxed) && !c->nmi_blocked &&
        c->shadow_rip != c->rip && atomic_exchange(&t->v->nmi_pending, 0)) {
        if (x86_take_event(c, X86_NMI, X86_EV_NMI) != X86_OK)
            return event_failed(t, exit, X86_NMI);
    }
    if (!ic)
        return false;
    /* The clock is read every CLOCK_CHECK_INSNS instructions at most (some
     * microseconds of guest time, well inside a timer tick): reading it at
     * every burst cost 5% of a Linux boot here. */
    if (t->instructions >= t->clock_check_at) {
        t->clock_check_at = t->instructions + CLOCK_CHECK_INSNS;
        if (pc_intc_due(ic, pc_intc_now()))
            pc_intc_poll(ic);
    }
    if (!pc_intc_intr(ic) || !x86_interruptible(c)) {
        if (c->shadow_rip == c->rip)
            c->shadow_rip = ~0ull; /* the shadow covers one boundary only */
        return false;
    }
    int vector = pc_intc_acknowledge(ic);
    if (vector < 0)
        return false;
    if (x86_take_event(c, (unsigned)vector, X86_EV_EXTERNAL) == X86_OK)
        return false;
    return event_failed(t, exit, vector);
}

/* Delivering an external event failed: a triple fault or a task gate. */
static bool event_failed(struct tcg_vcpu *t, vx_exit *exit, int vector)
{
    struct x86_cpu *c = &t->cpu;
    if (c->exit_reason == X86_EXIT_SHUTDOWN) {
        exit->reason = VX_EXIT_SHUTDOWN;
        exit->u.shutdown.kind = VX_SHUTDOWN_TRIPLE_FAULT;
        exit->u.shutdown.code = 0;
        vxi_error(VX_OK, "the guest triple-faulted delivering interrupt vector 0x%x at rip "
                  "0x%llx", vector, ULL(c->rip));
    } else {
        exit->reason = VX_EXIT_INTERNAL;
        vxi_error(VX_ENOTSUP, "tcg: delivering interrupt vector 0x%x needs %s, which tcg does "
                  "not model", vector, c->unsupported);
    }
    c->exit_reason = X86_EXIT_NONE;
    return true;
}

static void lock_machine(struct tcg_machine *tm)
{
    if (pthread_mutex_trylock(&tm->lock) == 0)
        return;
    atomic_fetch_add(&tm->waiters, 1);
    pthread_mutex_lock(&tm->lock);
    atomic_fetch_sub(&tm->waiters, 1);
}

static int tcg_run(vx_vcpu *v, vx_exit *exit)
{
    struct tcg_vcpu *t = v->accel;
    struct x86_cpu *c = &t->cpu;
    struct tcg_machine *tm = t->tm;

    lock_machine(tm);
    if (t->pending != PENDING_NONE) {
        c->io_answered = c->attention = true;
        c->io_value = t->pending == PENDING_IO ? exit->u.io.value : exit->u.mmio.value;
        t->pending = PENDING_NONE;
    }
    t->log_pos = 0;
    unsigned blocks = 0;
    struct tb *prev = NULL;
    uint64_t prev_gen = 0;
    for (;;) {
        if (vxi_vcpu_take_stop(v, exit))
            break;
        if (t->budget_on && t->budget == 0) {
            exit->reason = VX_EXIT_BUDGET;
            break;
        }
        if (__builtin_expect(++blocks >= 256, 0)) {
            blocks = 0;
            if (atomic_load_explicit(&tm->waiters, memory_order_relaxed)) {
                pthread_mutex_unlock(&tm->lock);
                sched_yield();
                lock_machine(tm);
                prev = NULL; /* another vCPU may have flushed the cache meanwhile */
            }
        }
        if ((tm->intc || atomic_load_explicit(&v->nmi_pending, memory_order_relaxed)) &&
            check_interrupts(t, exit))
            break;
        if (c->mode_key != t->tlb_mode_key)
            flush_tlb(t);
        /* The block that followed last time, if it is still the one; else
         * the lookup, and the link for next time. A cache flush frees every
         * block, prev included. */
        struct tb *tb, *next = prev ? prev->succ : NULL;
        enum x86_status st = X86_OK;
        if (prev_gen != tm->tbs.generation)
            prev = next = NULL;
        if (next && next->valid && prev->succ_gen == tm->map_gen &&
            next->lin == pc_linear(c) && next->mode_key == c->mode_key) {
            tb = next;
        } else {
            st = find_block(t, &tb);
            if (st == X86_OK && prev && prev_gen == tm->tbs.generation && tb != t->scratch &&
                prev != t->scratch) {
                prev->succ = tb;
                prev->succ_gen = tm->map_gen;
            }
        }
        if (st == X86_OK) {
            /* A burst through chained blocks: the checks above (stop flag,
             * budget, waiting vCPUs, mode) are made once per burst; a chain
             * link that no longer holds, a mode change, a budget or any
             * block end but the plain one falls back to them. A vCPU stays
             * stoppable within a burst of 64 blocks. */
            enum block_end end;
            bool stepping = c->mode_key & X86_MODE_STEP;
            unsigned burst = t->budget_on || stepping ? 1 : 64;
            struct pc_intc *intc = tm->intc;
            /* A burst stays in one mode (a change ends it, and the loop
             * above flushes the TLB if it must): the instruction pointer's
             * mask holds for the whole burst. */
            uint32_t key = c->mode_key;
            uint64_t ipmask = ip_mask(c);
            for (;;) {
                prev = tb;
                prev_gen = tm->tbs.generation;
                end = run_block(t, tb, ipmask, &st);
                if (end != END_NEXT || --burst == 0 ||
                    atomic_load_explicit(&v->stop_requested, memory_order_relaxed) ||
                    (intc && pc_intc_intr(intc)))
                    break;
                struct tb *n = tb->succ;
                if (!n || !n->valid || tb->succ_gen != tm->map_gen || n->mode_key != key ||
                    c->mode_key != key || n->lin != pc_linear(c) ||
                    prev_gen != tm->tbs.generation)
                    break;
                tb = n;
            }
            if (__builtin_expect(stepping, 0) && end == END_NEXT) {
                /* TF was set when the instruction began (blocks of this
                 * mode hold one): a #DB trap after it, unless it was a
                 * software interrupt, whose delivery cleared TF. */
                x86_handler fn = tb->insn[0].fn;
                if (fn != op_int && fn != op_int3 && fn != op_into && fn != op_int1) {
                    c->dr[6] |= 0x4000; /* BS */
                    if (x86_take_event(c, X86_DB, X86_EV_ICEBP) != X86_OK &&
                        event_failed(t, exit, X86_DB))
                        break;
                }
            }
            if (end == END_NEXT)
                continue;
            if (end == END_BUDGET) {
                exit->reason = VX_EXIT_BUDGET;
                break;
            }
        }
        if (st == X86_EXCEPTION) {
            if (take_exception(t, exit))
                break;
            continue;
        }
        /* X86_EXIT */
        enum x86_exit_reason why = c->exit_reason;
        c->exit_reason = X86_EXIT_NONE;
        if (why == X86_EXIT_HLT) {
            if (atomic_load(&v->nmi_pending) && !c->nmi_blocked)
                continue; /* the NMI wakes it */
            if (tm->intc && (c->flags & F_IF)) {
                /* Wait for an interrupt, letting other vCPUs run. */
                pthread_mutex_unlock(&tm->lock);
                pc_intc_wait(tm->intc, &v->stop_requested, &v->nmi_pending);
                lock_machine(tm);
                prev = NULL;
                continue;
            }
            exit->reason = VX_EXIT_HLT;
            break;
        }
        if (why == X86_EXIT_IO) {
            /* A write exit is complete already; only a read waits for its value. */
            t->pending = c->exit_after ? PENDING_NONE : PENDING_IO;
            c->exit_after = false;
            exit->reason = VX_EXIT_IO;
            exit->u.io.port = (uint16_t)c->io_addr;
            exit->u.io.len = c->io_size;
            exit->u.io.is_write = c->io_write;
            exit->u.io.value = c->io_value;
            break;
        }
        if (why == X86_EXIT_MMIO) {
            t->pending = PENDING_MMIO;
            exit->reason = VX_EXIT_MMIO;
            exit->u.mmio.gpa = c->io_addr;
            exit->u.mmio.len = c->io_size;
            exit->u.mmio.is_write = c->io_write;
            exit->u.mmio.value = c->io_value;
            break;
        }
        if (why == X86_EXIT_UNSUPPORTED) {
            vxi_error(VX_ENOTSUP, "tcg: the instruction at rip 0x%llx needs %s, which tcg "
                      "does not model", ULL(c->rip), c->unsupported);
            exit->reason = VX_EXIT_INTERNAL;
            break;
        }
        /* A callback failed, or something tcg cannot do; vx_last_error() has it. */
        exit->reason = VX_EXIT_INTERNAL;
        break;
    }
    pthread_mutex_unlock(&tm->lock);
    return 0;
}

static void tcg_kick(vx_vcpu *v)
{
    /* The run loop looks at the stop flag before every block. */
    (void)v;
}

/* ---- machines and vCPUs ------------------------------------------------------ */

static int tcg_available(void)
{
    return 1;
}

static int tcg_ring0_native(void)
{
    return 0;
}

static int tcg_machine_init(vx_machine *m)
{
    /* Its block hash is large: pooled pages (core/hostmem.h), zeroed. */
    struct tcg_machine *tm = vxi_host_alloc(TCG_MACHINE_BYTES, true);
    if (!tm)
        return vxi_error(VX_ENOMEM, "tcg: out of memory");
    if (tb_cache_init(&tm->tbs, TB_ARENA_SIZE, TB_ARENA_START)) {
        vxi_host_free(tm, TCG_MACHINE_BYTES, true);
        return vxi_error(VX_ENOMEM, "tcg: cannot reserve the translation cache");
    }
    pthread_mutex_init(&tm->lock, NULL);
    m->accel = tm;
    return 0;
}

static int tcg_irqchip_init(vx_machine *m)
{
    struct tcg_machine *tm = m->accel;
    return pc_intc_create(m, &tm->intc);
}

static int tcg_irq_set(vx_machine *m, unsigned line, int level)
{
    struct tcg_machine *tm = m->accel;
    pc_intc_set_irq(tm->intc, line, level);
    return 0;
}

static int tcg_irq_level_triggered(vx_machine *m, unsigned line)
{
    struct tcg_machine *tm = m->accel;
    pc_intc_set_level_triggered(tm->intc, line);
    return 0;
}

static void tcg_machine_fini(vx_machine *m)
{
    struct tcg_machine *tm = m->accel;
    if (!tm)
        return;
    pc_intc_destroy(tm->intc);
    tb_cache_fini(&tm->tbs);
    pthread_mutex_destroy(&tm->lock);
    vxi_host_free(tm, TCG_MACHINE_BYTES, true);
    m->accel = NULL;
}

static int tcg_vcpu_init(vx_vcpu *v)
{
    /* The soft TLB inside wants cache-line alignment (mmu/tlb.h). */
    size_t size = (sizeof(struct tcg_vcpu) + 63) & ~(size_t)63;
    struct tcg_vcpu *t = aligned_alloc(64, size);
    if (!t)
        return vxi_error(VX_ENOMEM, "tcg: out of memory");
    memset(t, 0, size);
    t->scratch = calloc(1, sizeof(struct tb) + TB_MAX_INSNS * sizeof(struct x86_insn));
    if (!t->scratch) {
        free(t);
        return vxi_error(VX_ENOMEM, "tcg: out of memory");
    }
    t->scratch->page[0] = t->scratch->page[1] = TB_NO_PAGE;
    t->v = v;
    t->tm = v->machine->accel;
    x86_cpu_reset(&t->cpu);
    t->cpu.apic_id = v->index;
    if (v->index != 0)
        t->cpu.apic_base &= ~(1ull << 8); /* only vCPU 0 is the bootstrap processor */
    t->cpu.mem = &tcg_mem_ops;
    t->cpu.opaque = t;
    flush_tlb(t);
    v->accel = t;
    return 0;
}

static void tcg_vcpu_fini(vx_vcpu *v)
{
    struct tcg_vcpu *t = v->accel;
    if (t)
        free(t->scratch);
    free(v->accel);
    v->accel = NULL;
}

/* Guest memory changed under the TLBs and blocks: forget everything. */
static void forget_translations(vx_machine *m)
{
    struct tcg_machine *tm = m->accel;
    tb_cache_flush(&tm->tbs);
    tm->map_gen++;
    for (unsigned k = 0; k < m->vcpu_count; k++) {
        struct tcg_vcpu *t = m->vcpus[k] ? m->vcpus[k]->accel : NULL;
        if (t) {
            vx_tlb_flush(&t->cpu.tlb);
            t->scratch->valid = false;
        }
    }
}

static void tcg_memory_written(vx_machine *m, uint64_t gpa, uint64_t len)
{
    struct tcg_machine *tm = m->accel;
    /* From a device callback (DMA) the calling vCPU already holds the lock,
     * and the block it runs may be among those that die. */
    vx_vcpu *cur = vx_vcpu_current();
    bool held = cur && cur->machine == m;
    if (!held)
        lock_machine(tm);
    unsigned killed = 0;
    uint64_t first = gpa & ~0xfffull;
    for (uint64_t page = first; page < gpa + len && page >= first; page += 0x1000) {
        killed += tb_invalidate_page(&tm->tbs, page);
        if (kill_scratch(m, held ? cur->accel : NULL, page))
            killed++;
    }
    if (held && killed) {
        struct tcg_vcpu *t = cur->accel;
        t->cpu.end_block = t->cpu.attention = true;
    }
    if (!held)
        pthread_mutex_unlock(&tm->lock);
}

static int tcg_map(vx_machine *m, struct vx_region *r)
{
    (void)r;
    forget_translations(m);
    return 0;
}

static int tcg_unmap(vx_machine *m, struct vx_region *r)
{
    (void)r;
    forget_translations(m);
    return 0;
}

/* ---- registers ------------------------------------------------------------------ */

static int tcg_get_regs(vx_vcpu *v, vx_x86_regs *r)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    const uint64_t *g = c->regs;
    *r = (vx_x86_regs){ g[R_AX], g[R_BX], g[R_CX], g[R_DX], g[R_SI], g[R_DI], g[R_SP], g[R_BP],
                        g[R_R8], g[R_R9], g[R_R10], g[R_R11], g[R_R12], g[R_R13], g[R_R14],
                        g[R_R15], c->rip, x86_get_flags(c) | 2 };
    return 0;
}

static int tcg_set_regs(vx_vcpu *v, const vx_x86_regs *r)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    uint64_t *g = c->regs;
    g[R_AX] = r->rax; g[R_BX] = r->rbx; g[R_CX] = r->rcx; g[R_DX] = r->rdx;
    g[R_SI] = r->rsi; g[R_DI] = r->rdi; g[R_SP] = r->rsp; g[R_BP] = r->rbp;
    g[R_R8] = r->r8; g[R_R9] = r->r9; g[R_R10] = r->r10; g[R_R11] = r->r11;
    g[R_R12] = r->r12; g[R_R13] = r->r13; g[R_R14] = r->r14; g[R_R15] = r->r15;
    c->rip = r->rip;
    /* Reserved bits read as the CPU has them: bit 1 set, 3, 5, 15, 22+ clear. */
    c->flags = (r->rflags & 0x3f7fd5ull) | 2;
    c->lazy.op = CC_EFLAGS;
    x86_update_mode(c);
    return 0;
}

static int tcg_get_sregs(vx_vcpu *v, vx_x86_sregs *s)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    s->es = c->seg[S_ES];
    s->cs = c->seg[S_CS];
    s->ss = c->seg[S_SS];
    s->ds = c->seg[S_DS];
    s->fs = c->seg[S_FS];
    s->gs = c->seg[S_GS];
    s->tr = c->tr;
    s->ldt = c->ldt;
    s->gdt = c->gdt;
    s->idt = c->idt;
    s->cr0 = c->cr0;
    s->cr2 = c->cr2;
    s->cr3 = c->cr3;
    s->cr4 = c->cr4;
    s->cr8 = c->cr8;
    s->efer = c->efer;
    s->apic_base = c->apic_base;
    return 0;
}

static int tcg_set_sregs(vx_vcpu *v, const vx_x86_sregs *s)
{
    struct tcg_vcpu *t = v->accel;
    struct x86_cpu *c = &t->cpu;
    if ((s->efer & EFER_LMA) && !((s->cr0 & CR0_PG) && (s->cr4 & CR4_PAE)))
        return vxi_error(VX_EINVAL, "tcg: EFER.LMA without CR0.PG and CR4.PAE is not a state "
                         "the CPU can be in");
    c->seg[S_ES] = s->es;
    c->seg[S_CS] = s->cs;
    c->seg[S_SS] = s->ss;
    c->seg[S_DS] = s->ds;
    c->seg[S_FS] = s->fs;
    c->seg[S_GS] = s->gs;
    c->tr = s->tr;
    c->ldt = s->ldt;
    c->gdt = s->gdt;
    c->idt = s->idt;
    c->cr0 = s->cr0 | CR0_ET;
    c->cr2 = s->cr2;
    c->cr3 = s->cr3;
    c->cr4 = s->cr4;
    c->cr8 = s->cr8;
    c->efer = s->efer;
    c->apic_base = s->apic_base;
    x86_update_mode(c);
    flush_tlb(t);
    return 0;
}

/* x87/SSE state through the FXSAVE image the CPU model already makes. */
static int tcg_get_fpu(vx_vcpu *v, vx_x86_fpu *f)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    uint8_t img[512];
    x86_fpu_to_fxsave(&c->fpu, img, 1);
    memcpy(&f->fcw, img, 2);
    memcpy(&f->fsw, img + 2, 2);
    f->ftw = img[4];
    memcpy(&f->fop, img + 6, 2);
    memcpy(&f->fip, img + 8, 8);
    memcpy(&f->fdp, img + 16, 8);
    memcpy(&f->mxcsr, img + 24, 4);
    memcpy(&f->mxcsr_mask, img + 28, 4);
    memcpy(f->st, img + 32, sizeof f->st);
    memcpy(f->xmm, img + 160, sizeof f->xmm);
    return 0;
}

static int tcg_set_fpu(vx_vcpu *v, const vx_x86_fpu *f)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    uint8_t img[512] = { 0 };
    memcpy(img, &f->fcw, 2);
    memcpy(img + 2, &f->fsw, 2);
    img[4] = f->ftw;
    memcpy(img + 6, &f->fop, 2);
    memcpy(img + 8, &f->fip, 8);
    memcpy(img + 16, &f->fdp, 8);
    memcpy(img + 24, &f->mxcsr, 4);
    memcpy(img + 32, f->st, sizeof f->st);
    memcpy(img + 160, f->xmm, sizeof f->xmm);
    x86_fpu_from_fxsave(&c->fpu, img, 1);
    return 0;
}

static int tcg_get_msr(vx_vcpu *v, uint32_t index, uint64_t *value)
{
    struct x86_cpu *c = &((struct tcg_vcpu *)v->accel)->cpu;
    if (x86_rdmsr(c, index, value) != X86_OK)
        return vxi_error(VX_ENOTSUP, "tcg: MSR 0x%x is not modelled", index);
    return 0;
}

static int tcg_set_msr(vx_vcpu *v, uint32_t index, uint64_t value)
{
    struct tcg_vcpu *t = v->accel;
    struct x86_cpu *c = &t->cpu;
    if (index == MSR_EFER) {
        /* The application may set any state the CPU can be in (LMA too),
         * as with vx_vcpu_set_sregs. */
        if ((value & EFER_LMA) && !((c->cr0 & CR0_PG) && (c->cr4 & CR4_PAE)))
            return vxi_error(VX_EINVAL, "tcg: EFER.LMA without CR0.PG and CR4.PAE is not a "
                             "state the CPU can be in");
        if (value & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
            return vxi_error(VX_EINVAL, "tcg: EFER 0x%llx sets bits the CPU model lacks",
                             ULL(value));
        c->efer = value;
        x86_update_mode(c);
        flush_tlb(t);
        return 0;
    }
    uint64_t old;
    if (x86_rdmsr(c, index, &old) != X86_OK)
        return vxi_error(VX_ENOTSUP, "tcg: MSR 0x%x is not modelled", index);
    if (x86_wrmsr(c, index, value) != X86_OK)
        return vxi_error(VX_EINVAL, "tcg: MSR 0x%x cannot hold 0x%llx (the CPU would raise "
                         "#GP)", index, ULL(value));
    return 0;
}

static int tcg_set_budget(vx_vcpu *v, uint64_t instructions)
{
    struct tcg_vcpu *t = v->accel;
    t->budget_on = instructions != 0;
    t->budget = instructions;
    return 0;
}

static uint64_t tcg_instructions(vx_vcpu *v)
{
    return ((struct tcg_vcpu *)v->accel)->instructions;
}

const struct vx_accel_ops vx_tcg_ops = {
    .name = "tcg",
    .id = VX_ACCEL_TCG,
    .available = tcg_available,
    .ring0_native = tcg_ring0_native,
    .machine_init = tcg_machine_init,
    .machine_fini = tcg_machine_fini,
    .irqchip_init = tcg_irqchip_init,
    .irq_set = tcg_irq_set,
    .irq_level_triggered = tcg_irq_level_triggered,
    .vcpu_init = tcg_vcpu_init,
    .vcpu_fini = tcg_vcpu_fini,
    .memory_written = tcg_memory_written,
    .map = tcg_map,
    .unmap = tcg_unmap,
    .get_regs = tcg_get_regs,
    .set_regs = tcg_set_regs,
    .get_sregs = tcg_get_sregs,
    .set_sregs = tcg_set_sregs,
    .get_fpu = tcg_get_fpu,
    .set_fpu = tcg_set_fpu,
    .get_msr = tcg_get_msr,
    .set_msr = tcg_set_msr,
    .run = tcg_run,
    .kick = tcg_kick,
    .set_budget = tcg_set_budget,
    .instructions = tcg_instructions,
};
