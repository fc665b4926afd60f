/*
 * System instructions: descriptor-table registers (lgdt/lidt/sgdt/sidt,
 * lldt/sldt, ltr/str), lar/lsl/verr/verw, control and debug registers,
 * MSRs, syscall/sysret, sysenter/sysexit, swapgs, rdtscp, invlpg, the cache
 * instructions, and the software interrupts (int n, int3, into, int1).
 *
 * Privilege: everything that changes the system state needs CPL 0 (#GP(0)
 * otherwise; real mode is CPL 0). A change to what translation depends on
 * (CR0, CR3, CR4, EFER, CS) ends the block with X86_BRANCH so the next
 * block is decoded in the new mode; one that changes the linear-to-physical
 * mapping flushes the soft TLB through mem->tlb_flush.
 */
#include "config.h"

#include <x86intrin.h>

#include "cpu/x86/interrupt.h"
#include "cpu/x86/mem.h"
#include "cpu/x86/msr.h"
#include "cpu/x86/ops.h"
#include "cpu/x86/seg.h"

static bool protected_mode(const struct x86_cpu *c)
{
    return (c->cr0 & CR0_PE) && !(c->flags & F_VM);
}

static enum x86_status need_cpl0(struct x86_cpu *c)
{
    if (c->cpl != 0)
        return x86_raise_err(c, X86_GP, 0);
    return X86_OK;
}

/* End the block after this instruction: what follows was decoded for the
 * state before it. */
static enum x86_status end_block(struct x86_cpu *c)
{
    (void)c; /* next_rip already names the next instruction */
    return X86_BRANCH;
}

static bool canonical(uint64_t a)
{
    return (uint64_t)(((int64_t)a >> 47) + 1) <= 1;
}

/* ---- software interrupts ----------------------------------------------------- */

static enum x86_status soft_int(struct x86_cpu *c, unsigned vector, enum x86_event_kind kind)
{
    enum x86_status st = x86_deliver(c, vector, kind, false, 0, c->next_rip);
    if (st)
        return st;
    c->next_rip = c->rip; /* x86_deliver moved rip to the handler */
    return X86_BRANCH;
}

X86_OP(op_int)
{
    /* Virtual-8086 mode without VME: int n is IOPL-sensitive. */
    if ((c->flags & F_VM) && ((c->flags & F_IOPL) >> 12) < 3)
        return x86_raise_err(c, X86_GP, 0);
    return soft_int(c, (unsigned)(i->imm & 0xff), X86_EV_SOFTWARE);
}

X86_OP(op_int3)
{
    (void)i;
    return soft_int(c, X86_BP, X86_EV_SOFTWARE);
}

X86_OP(op_into)
{
    (void)i;
    if (!(x86_get_flags(c) & F_OF))
        return X86_OK;
    return soft_int(c, X86_OF, X86_EV_SOFTWARE);
}

X86_OP(op_int1)
{
    (void)i;
    return soft_int(c, X86_DB, X86_EV_ICEBP);
}

/* ---- descriptor tables ------------------------------------------------------- */

/* 0f 01 /0 sgdt, /1 sidt: limit then base (32 bits outside 64-bit mode,
 * where a 16-bit operand size still stores 32: the SDM's "24 bits" is what
 * a 286 stored). */
static enum x86_status store_dtable(struct x86_cpu *c, const struct x86_insn *i,
                                    const vx_x86_dtable *t)
{
    uint64_t off = x86_ea(c, i);
    unsigned bsize = c->long64 ? 8 : 4;
    enum x86_status st = x86_store(c, i->seg, off, 2, t->limit);
    if (st)
        return st;
    return x86_store(c, i->seg, (off + 2) & x86_addr_mask(i->addrsize), bsize, t->base);
}

/* 0f 01 /2 lgdt, /3 lidt. */
static enum x86_status load_dtable(struct x86_cpu *c, const struct x86_insn *i,
                                   vx_x86_dtable *t)
{
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    uint64_t off = x86_ea(c, i), limit = 0, base = 0;
    unsigned bsize = c->long64 ? 8 : 4;
    if ((st = x86_load(c, i->seg, off, 2, &limit)))
        return st;
    if ((st = x86_load(c, i->seg, (off + 2) & x86_addr_mask(i->addrsize), bsize, &base)))
        return st;
    if (c->long64 && !canonical(base))
        return x86_raise_err(c, X86_GP, 0);
    if (!c->long64 && i->opsize == 2)
        base &= 0xffffff;
    t->limit = (uint16_t)limit;
    t->base = base;
    return X86_OK;
}

/* A system-segment descriptor from the GDT (lldt, ltr): 16 bytes in long
 * mode, where the upper half holds base bits 63:32. */
static enum x86_status gdt_system_descriptor(struct x86_cpu *c, uint16_t sel, vx_x86_segment *s,
                                             uint64_t *lin, uint64_t *d)
{
    if (sel & 4)
        return x86_raise_err(c, X86_GP, sel & ~3u);
    enum x86_status st = x86_read_descriptor(c, sel, d, lin);
    if (st)
        return st;
    x86_descriptor_to_segment(*d, sel, s);
    if (c->efer & EFER_LMA) {
        if ((uint64_t)(sel & ~7u) + 15 > c->gdt.limit)
            return x86_raise_err(c, X86_GP, sel & ~3u);
        uint64_t hi = 0;
        if ((st = c->mem->load_sys(c, *lin + 8, 8, &hi)))
            return st;
        if ((hi >> 40) & 0x1f) /* the type field of the upper half must be 0 */
            return x86_raise_err(c, X86_GP, sel & ~3u);
        s->base |= (hi & 0xffffffffull) << 32;
        if (!canonical(s->base))
            return x86_raise_err(c, X86_GP, sel & ~3u);
    }
    return X86_OK;
}

static enum x86_status selector_operand(struct x86_cpu *c, const struct x86_insn *i,
                                        uint16_t *sel)
{
    uint64_t v = 0;
    enum x86_status st = i->mem ? x86_load(c, i->seg, x86_ea(c, i), 2, &v) : X86_OK;
    if (!i->mem)
        v = c->regs[i->rm];
    *sel = (uint16_t)v;
    return st;
}

/* sldt/str/smsw: to memory always 16 bits; to a register the operand size
 * (zero-extended). */
static enum x86_status store_word(struct x86_cpu *c, const struct x86_insn *i, uint64_t v)
{
    if (i->mem)
        return x86_store(c, i->seg, x86_ea(c, i), 2, v & 0xffff);
    x86_set_reg(c, i->rm, i->opsize, i->opsize == 2 ? v & 0xffff : v);
    return X86_OK;
}

static enum x86_status lldt(struct x86_cpu *c, const struct x86_insn *i)
{
    uint16_t sel;
    enum x86_status st = need_cpl0(c);
    if (st || (st = selector_operand(c, i, &sel)))
        return st;
    if ((sel & ~3u) == 0) {
        c->ldt = (vx_x86_segment){ .selector = sel, .present = 0 };
        return X86_OK;
    }
    vx_x86_segment s;
    uint64_t lin, d;
    if ((st = gdt_system_descriptor(c, sel, &s, &lin, &d)))
        return st;
    if (s.s || s.type != 2)
        return x86_raise_err(c, X86_GP, sel & ~3u);
    if (!s.present)
        return x86_raise_err(c, X86_NP, sel & ~3u);
    c->ldt = s;
    return X86_OK;
}

static enum x86_status ltr(struct x86_cpu *c, const struct x86_insn *i)
{
    uint16_t sel;
    enum x86_status st = need_cpl0(c);
    if (st || (st = selector_operand(c, i, &sel)))
        return st;
    if ((sel & ~3u) == 0)
        return x86_raise_err(c, X86_GP, 0);
    vx_x86_segment s;
    uint64_t lin, d;
    if ((st = gdt_system_descriptor(c, sel, &s, &lin, &d)))
        return st;
    /* An available TSS: 32/64-bit (9), or 16-bit (1) outside long mode. */
    bool ok = !s.s && (s.type == 9 || (s.type == 1 && !(c->efer & EFER_LMA)));
    if (!ok)
        return x86_raise_err(c, X86_GP, sel & ~3u);
    if (!s.present)
        return x86_raise_err(c, X86_NP, sel & ~3u);
    uint8_t access = (uint8_t)((d >> 40) | 2); /* busy */
    if ((st = c->mem->store_sys(c, lin + 5, 1, &access)))
        return st;
    s.type |= 2;
    c->tr = s;
    return X86_OK;
}

/* lar/lsl/verr/verw: may the CPL read this descriptor (and what is in it)?
 * ZF says; none of them faults on a bad selector. */
static bool descriptor_visible(struct x86_cpu *c, uint16_t sel, uint64_t *d, bool *fault,
                               enum x86_status *st)
{
    *fault = false;
    if ((sel & ~3u) == 0)
        return false;
    bool ldt = sel & 4;
    uint64_t limit = ldt ? c->ldt.limit : c->gdt.limit;
    if ((ldt && !c->ldt.present) || (uint64_t)(sel & ~7u) + 7 > limit)
        return false;
    uint64_t lin;
    *st = x86_read_descriptor(c, sel, d, &lin);
    if (*st) {
        *fault = true; /* a #PF reading the table is a real fault */
        return false;
    }
    vx_x86_segment s;
    x86_descriptor_to_segment(*d, sel, &s);
    bool conforming_code = s.s && (s.type & 0xc) == 0xc;
    if (!conforming_code && (s.dpl < c->cpl || s.dpl < (sel & 3)))
        return false;
    return true;
}

static void set_zf(struct x86_cpu *c, bool z)
{
    x86_flush_flags(c);
    c->flags = z ? c->flags | F_ZF : c->flags & ~(uint64_t)F_ZF;
}

/* 0f 02 lar, 0f 03 lsl. */
X86_OP(op_lar_lsl)
{
    if (!protected_mode(c))
        return x86_raise(c, X86_UD);
    uint16_t sel;
    enum x86_status st = selector_operand(c, i, &sel);
    if (st)
        return st;
    uint64_t d = 0;
    bool fault;
    bool ok = descriptor_visible(c, sel, &d, &fault, &st);
    if (fault)
        return st;
    bool lsl = i->opcode == 0x0f03;
    if (ok) {
        vx_x86_segment s;
        x86_descriptor_to_segment(d, sel, &s);
        if (!s.s) {
            /* System types lar accepts (lsl: the ones with a limit). */
            static const uint16_t lar_types = 0x0efe, lsl_types = 0x0a0e;
            static const uint16_t lar_types64 = 0x0a04, lsl_types64 = 0x0a04;
            uint16_t mask = (c->efer & EFER_LMA) ? (lsl ? lsl_types64 : lar_types64)
                                                 : (lsl ? lsl_types : lar_types);
            ok = (mask >> s.type) & 1;
        }
        if (ok) {
            uint64_t v = lsl ? s.limit : (d >> 32) & 0x00f0ff00ull;
            x86_set_reg(c, i->reg, i->opsize, v);
        }
    }
    set_zf(c, ok);
    return X86_OK;
}

static enum x86_status verr_verw(struct x86_cpu *c, const struct x86_insn *i, bool write)
{
    if (!protected_mode(c))
        return x86_raise(c, X86_UD);
    uint16_t sel;
    enum x86_status st = selector_operand(c, i, &sel);
    if (st)
        return st;
    uint64_t d = 0;
    bool fault;
    bool ok = descriptor_visible(c, sel, &d, &fault, &st);
    if (fault)
        return st;
    if (ok) {
        vx_x86_segment s;
        x86_descriptor_to_segment(d, sel, &s);
        if (!s.s)
            ok = false;
        else if (s.type & 8) /* code: readable for verr, never writable */
            ok = !write && (s.type & 2);
        else
            ok = !write || (s.type & 2);
    }
    set_zf(c, ok);
    return X86_OK;
}

/* 0f 00: group 6. */
X86_OP(op_grp6)
{
    if (!protected_mode(c))
        return x86_raise(c, X86_UD);
    switch (i->sub) {
    case 0: return store_word(c, i, c->ldt.selector); /* sldt */
    case 1: return store_word(c, i, c->tr.selector);  /* str */
    case 2: return lldt(c, i);
    case 3: return ltr(c, i);
    case 4: return verr_verw(c, i, false);
    case 5: return verr_verw(c, i, true);
    default: return x86_raise(c, X86_UD);
    }
}

/* ---- control registers -------------------------------------------------------- */

#define CR4_VME (1ull << 0)
#define CR4_PVI (1ull << 1)
#define CR4_TSD (1ull << 2)
#define CR4_DE (1ull << 3)
#define CR4_FSGSBASE (1ull << 16)
/* The CR4 bits this CPU model lets software set (CPUID says the same). */
#define CR4_SUPPORTED (CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_PGE | CR4_OSFXSR | \
                       CR4_OSXMMEXCPT)

/* After CR0/CR4/EFER changed: the derived mode and, where paging changed,
 * the TLB. */
static void paging_changed(struct x86_cpu *c)
{
    x86_update_mode(c);
    c->mem->tlb_flush(c, X86_FLUSH_ALL);
}

enum x86_status x86_write_cr0(struct x86_cpu *c, uint64_t v)
{
    if (v >> 32)
        return x86_raise_err(c, X86_GP, 0);
    v |= CR0_ET;
    if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
        return x86_raise_err(c, X86_GP, 0);
    bool lma = c->efer & EFER_LMA;
    if ((v & CR0_PG) && !(c->cr0 & CR0_PG) && (c->efer & EFER_LME)) {
        /* Turning paging on with LME: long mode, which needs PAE and may not
         * start from 64-bit code (there is none yet) */
        if (!(c->cr4 & CR4_PAE) || c->seg[S_CS].l)
            return x86_raise_err(c, X86_GP, 0);
        lma = true;
    } else if (!(v & CR0_PG) && (c->cr0 & CR0_PG) && lma) {
        if (c->long64)
            return x86_raise_err(c, X86_GP, 0); /* only from compatibility mode */
        lma = false;
    }
    if (lma && !(v & CR0_PE))
        return x86_raise_err(c, X86_GP, 0);
    c->cr0 = v;
    c->efer = lma ? c->efer | EFER_LMA : c->efer & ~EFER_LMA;
    paging_changed(c);
    return X86_OK;
}

enum x86_status x86_write_cr4(struct x86_cpu *c, uint64_t v)
{
    if (v & ~CR4_SUPPORTED)
        return x86_raise_err(c, X86_GP, 0);
    if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
        return x86_raise_err(c, X86_GP, 0);
    c->cr4 = v;
    paging_changed(c);
    return X86_OK;
}

static enum x86_status write_cr3(struct x86_cpu *c, uint64_t v)
{
    if ((c->efer & EFER_LMA) && (v >> 40)) /* beyond MAXPHYADDR */
        return x86_raise_err(c, X86_GP, 0);
    c->cr3 = (c->efer & EFER_LMA) ? v : (uint32_t)v;
    c->mem->tlb_flush(c, X86_FLUSH_ALL);
    return X86_OK;
}

/* 0f 20 mov r, cr; 0f 22 mov cr, r. The ModRM's mod is ignored (register
 * form always); the operand is 64 bits in 64-bit mode, else 32. */
X86_OP(op_mov_cr)
{
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    unsigned cr = i->reg, size = c->long64 ? 8 : 4;
    bool to_cr = i->opcode == 0x0f22;
    if (cr != 0 && cr != 2 && cr != 3 && cr != 4 && cr != 8)
        return x86_raise(c, X86_UD);
    if (cr == 8 && !c->long64)
        return x86_raise(c, X86_UD);
    if (!to_cr) {
        uint64_t v = cr == 0 ? c->cr0 : cr == 2 ? c->cr2 : cr == 3 ? c->cr3 : cr == 4 ? c->cr4
                                                                                   : c->cr8;
        x86_set_reg(c, i->rm, size, v);
        return X86_OK;
    }
    uint64_t v = x86_get_reg(c, i->rm, size);
    switch (cr) {
    case 0: st = x86_write_cr0(c, v); break;
    case 2: c->cr2 = v; return X86_OK;
    case 3: st = write_cr3(c, v); break;
    case 4: st = x86_write_cr4(c, v); break;
    default:
        if (v >> 4)
            return x86_raise_err(c, X86_GP, 0);
        c->cr8 = v;
        return X86_OK;
    }
    return st ? st : end_block(c);
}

/* 0f 21 mov r, dr; 0f 23 mov dr, r. Breakpoints are stored, not armed. */
X86_OP(op_mov_dr)
{
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    unsigned dr = i->reg, size = c->long64 ? 8 : 4;
    if (dr > 7)
        return x86_raise(c, X86_UD);
    if (dr == 4 || dr == 5) {
        if (c->cr4 & CR4_DE)
            return x86_raise(c, X86_UD);
        dr += 2;
    }
    if (i->opcode == 0x0f21) {
        x86_set_reg(c, i->rm, size, c->dr[dr]);
        return X86_OK;
    }
    uint64_t v = x86_get_reg(c, i->rm, size);
    if ((dr == 6 || dr == 7) && (v >> 32))
        return x86_raise_err(c, X86_GP, 0);
    if (dr == 6)
        v = (v & 0xe00f) | 0xffff0ff0; /* the bits that read as 1 */
    else if (dr == 7)
        v = (v & 0xffff2bff) | 0x400;
    c->dr[dr] = v;
    return X86_OK;
}

/* 0f 06 */
X86_OP(op_clts)
{
    (void)i;
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    c->cr0 &= ~CR0_TS;
    return X86_OK;
}

/* 0f 01 /4 smsw, /6 lmsw. */
static enum x86_status lmsw(struct x86_cpu *c, const struct x86_insn *i)
{
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    uint64_t v = 0;
    if (i->mem ? (st = x86_load(c, i->seg, x86_ea(c, i), 2, &v)) : X86_OK)
        return st;
    if (!i->mem)
        v = c->regs[i->rm];
    /* PE, MP, EM, TS; PE can be set but not cleared. */
    uint64_t cr0 = (c->cr0 & ~0xeull) | (v & 0xf) | (c->cr0 & CR0_PE);
    if ((st = x86_write_cr0(c, cr0)))
        return st;
    return end_block(c);
}

/* ---- group 7 (0f 01) ------------------------------------------------------------ */

X86_OP(op_grp7)
{
    enum x86_status st;
    if (!i->mem) {
        unsigned rm = i->rm & 7;
        switch (i->sub) {
        case 1:
            /* c8 monitor, c9 mwait: CPUID does not offer them. */
            return x86_raise(c, X86_UD);
        case 4: return store_word(c, i, c->cr0);
        case 6: return lmsw(c, i);
        case 7:
            if (rm == 0) { /* f8 swapgs */
                if (!c->long64)
                    return x86_raise(c, X86_UD);
                if ((st = need_cpl0(c)))
                    return st;
                uint64_t t = c->seg[S_GS].base;
                c->seg[S_GS].base = c->msr.kernel_gs_base;
                c->msr.kernel_gs_base = t;
                return X86_OK;
            }
            if (rm == 1) { /* f9 rdtscp */
                if ((c->cr4 & CR4_TSD) && c->cpl > 0 && (c->cr0 & CR0_PE))
                    return x86_raise_err(c, X86_GP, 0);
                uint64_t t = __rdtsc() + c->msr.tsc_offset;
                c->regs[R_AX] = (uint32_t)t;
                c->regs[R_DX] = t >> 32;
                c->regs[R_CX] = (uint32_t)c->msr.tsc_aux;
                return X86_OK;
            }
            return x86_raise(c, X86_UD);
        default:
            return x86_raise(c, X86_UD);
        }
    }
    switch (i->sub) {
    case 0: return store_dtable(c, i, &c->gdt);
    case 1: return store_dtable(c, i, &c->idt);
    case 2: return load_dtable(c, i, &c->gdt);
    case 3: return load_dtable(c, i, &c->idt);
    case 4: return store_word(c, i, c->cr0);
    case 6: return lmsw(c, i);
    case 7: { /* invlpg */
        if ((st = need_cpl0(c)))
            return st;
        uint64_t lin = x86_ea(c, i);
        if (c->long64) {
            if (i->seg == S_FS || i->seg == S_GS)
                lin += c->seg[i->seg].base;
        } else {
            lin = (uint32_t)(lin + c->seg[i->seg].base);
        }
        c->mem->tlb_flush(c, lin);
        return end_block(c);
    }
    default: return x86_raise(c, X86_UD);
    }
}

/* 0f 08 invd, 0f 09 wbinvd: caches are not modelled. */
X86_OP(op_invd)
{
    (void)i;
    return need_cpl0(c);
}

/* ---- MSRs ------------------------------------------------------------------------ */

/* 0f 32 rdmsr, 0f 30 wrmsr: ecx names the MSR, edx:eax the value. */
X86_OP(op_msr)
{
    enum x86_status st = need_cpl0(c);
    if (st)
        return st;
    uint32_t index = (uint32_t)c->regs[R_CX];
    if (i->opcode == 0x0f32) {
        uint64_t v;
        if ((st = x86_rdmsr(c, index, &v)))
            return st;
        c->regs[R_AX] = (uint32_t)v;
        c->regs[R_DX] = v >> 32;
        return X86_OK;
    }
    uint64_t v = (uint32_t)c->regs[R_AX] | (c->regs[R_DX] << 32);
    uint32_t mode_before = c->mode_key;
    uint64_t efer_before = c->efer;
    if ((st = x86_wrmsr(c, index, v)))
        return st;
    if (c->mode_key != mode_before || c->efer != efer_before)
        return end_block(c);
    return X86_OK;
}

/* ---- fast system calls ------------------------------------------------------------ */

static vx_x86_segment flat_segment(uint16_t sel, bool code, unsigned dpl, bool l)
{
    return (vx_x86_segment){
        .base = 0, .limit = 0xffffffffu, .selector = sel, .type = code ? 0xb : 0x3,
        .s = 1, .dpl = (uint8_t)dpl, .present = 1, .l = l, .db = !l, .g = 1,
    };
}

/* 0f 05. The model is an Intel CPU: syscall and sysret exist in 64-bit
 * mode only. */
X86_OP(op_syscall)
{
    (void)i;
    if (!(c->efer & EFER_SCE) || !c->long64)
        return x86_raise(c, X86_UD);
    uint16_t sel = (uint16_t)(c->msr.star >> 32) & 0xfffc;
    uint64_t flags = x86_get_flags(c);
    x86_flush_flags(c);
    c->regs[R_CX] = c->next_rip;
    c->regs[R_R11] = flags & ~(uint64_t)F_RF;
    c->flags = (flags & ~c->msr.fmask & ~(uint64_t)F_RF) | 2;
    c->seg[S_CS] = flat_segment(sel, true, 0, true);
    c->seg[S_SS] = flat_segment((uint16_t)(sel + 8), false, 0, false);
    c->next_rip = c->msr.lstar;
    x86_update_mode(c);
    return X86_BRANCH;
}

/* 0f 07: to 64-bit code with REX.W, else to compatibility mode. */
X86_OP(op_sysret)
{
    if (!(c->efer & EFER_SCE) || !c->long64)
        return x86_raise(c, X86_UD);
    if (c->cpl != 0)
        return x86_raise_err(c, X86_GP, 0);
    uint16_t base = (uint16_t)(c->msr.star >> 48);
    bool to64 = i->opsize == 8;
    if (to64 && !canonical(c->regs[R_CX]))
        return x86_raise_err(c, X86_GP, 0);
    x86_flush_flags(c);
    c->flags = (c->regs[R_R11] & 0x3c7fd7ull) | 2;
    c->seg[S_CS] = flat_segment((uint16_t)((to64 ? base + 16 : base) | 3), true, 3, to64);
    /* SS gets its selector; its cached attributes are fixed flat ones. */
    c->seg[S_SS] = flat_segment((uint16_t)((base + 8) | 3), false, 3, false);
    c->next_rip = to64 ? c->regs[R_CX] : (uint32_t)c->regs[R_CX];
    x86_update_mode(c);
    return X86_BRANCH;
}

/* 0f 34 */
X86_OP(op_sysenter)
{
    (void)i;
    uint16_t sel = (uint16_t)c->msr.sysenter_cs & 0xfffc;
    if (!(c->cr0 & CR0_PE) || sel == 0)
        return x86_raise_err(c, X86_GP, 0);
    bool lm = c->efer & EFER_LMA;
    x86_flush_flags(c);
    c->flags &= ~(uint64_t)(F_VM | F_IF | F_RF);
    c->seg[S_CS] = flat_segment(sel, true, 0, lm);
    c->seg[S_SS] = flat_segment((uint16_t)(sel + 8), false, 0, false);
    c->regs[R_SP] = lm ? c->msr.sysenter_esp : (uint32_t)c->msr.sysenter_esp;
    c->next_rip = lm ? c->msr.sysenter_eip : (uint32_t)c->msr.sysenter_eip;
    x86_update_mode(c);
    return X86_BRANCH;
}

/* 0f 35 */
X86_OP(op_sysexit)
{
    uint16_t sel = (uint16_t)c->msr.sysenter_cs & 0xfffc;
    if (!(c->cr0 & CR0_PE) || sel == 0 || c->cpl != 0)
        return x86_raise_err(c, X86_GP, 0);
    bool to64 = i->opsize == 8;
    if (to64 && (!canonical(c->regs[R_DX]) || !canonical(c->regs[R_CX])))
        return x86_raise_err(c, X86_GP, 0);
    c->seg[S_CS] = flat_segment((uint16_t)((sel + (to64 ? 32 : 16)) | 3), true, 3, to64);
    c->seg[S_SS] = flat_segment((uint16_t)((sel + (to64 ? 40 : 24)) | 3), false, 3, false);
    c->regs[R_SP] = to64 ? c->regs[R_CX] : (uint32_t)c->regs[R_CX];
    c->next_rip = to64 ? c->regs[R_DX] : (uint32_t)c->regs[R_DX];
    x86_update_mode(c);
    return X86_BRANCH;
}
