/* Segment register loads. */
#include "config.h"

#include "cpu/x86/mem.h"
#include "cpu/x86/seg.h"

void x86_descriptor_to_segment(uint64_t d, uint16_t sel, vx_x86_segment *s)
{
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    bool g = (d >> 55) & 1;
    *s = (vx_x86_segment){
        .base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
        .limit = g ? (limit << 12) | 0xfff : limit,
        .selector = sel,
        .type = (d >> 40) & 0xf,
        .s = (d >> 44) & 1,
        .dpl = (d >> 45) & 3,
        .present = (d >> 47) & 1,
        .avl = (d >> 52) & 1,
        .l = (d >> 53) & 1,
        .db = (d >> 54) & 1,
        .g = g,
    };
}

enum x86_status x86_read_descriptor(struct x86_cpu *c, uint16_t sel, uint64_t *desc,
                                    uint64_t *lin)
{
    bool ldt = sel & 4;
    uint64_t base = ldt ? c->ldt.base : c->gdt.base;
    uint64_t limit = ldt ? c->ldt.limit : c->gdt.limit;
    if ((ldt && !c->ldt.present) || (uint64_t)(sel & ~7u) + 7 > limit)
        return x86_raise_err(c, X86_GP, sel & ~3u);
    *lin = base + (sel & ~7u);
    if (!c->long64)
        *lin = (uint32_t)*lin;
    *desc = 0;
    return c->mem->load_sys(c, *lin, 8, desc);
}

static enum x86_status load_sreg(struct x86_cpu *c, unsigned seg, uint16_t sel);

/* A load of SS holds off interrupts until the next instruction is done
 * (so mov ss, then mov esp, switch stacks atomically). */
enum x86_status x86_load_sreg(struct x86_cpu *c, unsigned seg, uint16_t sel)
{
    enum x86_status st = load_sreg(c, seg, sel);
    if (st == X86_OK && seg == S_SS)
        c->shadow_rip = c->next_rip;
    return st;
}

static enum x86_status load_sreg(struct x86_cpu *c, unsigned seg, uint16_t sel)
{
    vx_x86_segment *s = &c->seg[seg];
    if (!(c->cr0 & CR0_PE) || (c->flags & F_VM)) {
        s->selector = sel;
        s->base = (uint64_t)sel << 4;
        if (c->flags & F_VM) {
            s->limit = 0xffff;
            s->type = 3;
            s->s = 1;
            s->present = 1;
            s->dpl = 3;
            s->db = 0;
        }
        x86_update_mode(c);
        return X86_OK;
    }
    unsigned rpl = sel & 3;
    if ((sel & ~3u) == 0) {
        /* Null: a fault for SS except in 64-bit mode below ring 3 with
         * RPL = CPL. */
        if (seg == S_SS && !(c->long64 && c->cpl < 3 && rpl == c->cpl))
            return x86_raise_err(c, X86_GP, 0);
        *s = (vx_x86_segment){ .selector = sel, .present = 0 };
        if (seg == S_SS)
            s->dpl = c->cpl;
        x86_update_mode(c);
        return X86_OK;
    }
    uint64_t d, lin;
    enum x86_status st = x86_read_descriptor(c, sel, &d, &lin);
    if (st)
        return st;
    vx_x86_segment n;
    x86_descriptor_to_segment(d, sel, &n);
    uint32_t err = sel & ~3u;
    bool code = n.type & 8;
    if (!n.s)
        return x86_raise_err(c, X86_GP, err);
    if (seg == S_SS) {
        if (rpl != c->cpl || n.dpl != c->cpl || code || !(n.type & 2))
            return x86_raise_err(c, X86_GP, err);
        if (!n.present)
            return x86_raise_err(c, X86_SS, err);
    } else {
        if (code && !(n.type & 2))
            return x86_raise_err(c, X86_GP, err); /* execute-only code */
        bool conforming_code = code && (n.type & 4);
        if (!conforming_code && n.dpl < (rpl > c->cpl ? rpl : c->cpl))
            return x86_raise_err(c, X86_GP, err);
        if (!n.present)
            return x86_raise_err(c, X86_NP, err);
    }
    if (!(n.type & 1)) {
        /* The CPU marks the descriptor accessed. */
        uint8_t access = (uint8_t)((d >> 40) | 1);
        if ((st = c->mem->store_sys(c, lin + 5, 1, &access)))
            return st;
        n.type |= 1;
    }
    *s = n;
    x86_update_mode(c);
    return X86_OK;
}
