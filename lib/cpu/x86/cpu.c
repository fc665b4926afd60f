/* CPU modes and reset. */
#include "config.h"

#include "cpu/x86/cpu.h"

static bool flat_segment(const vx_x86_segment *s)
{
    return s->base == 0 && s->limit == 0xffffffffu && s->present && s->db &&
           !(s->s && !(s->type & 8) && (s->type & 4)); /* not expand-down */
}

void x86_update_mode(struct x86_cpu *c)
{
    bool pe = c->cr0 & CR0_PE;
    bool vm = c->flags & F_VM;
    bool lma = c->efer & EFER_LMA;
    const vx_x86_segment *cs = &c->seg[S_CS];
    if (!pe) {
        c->cpl = 0;
    } else if (vm) {
        c->cpl = 3;
    } else {
        /* CS.DPL is the CPL once loaded, but for conforming code, which
         * runs at the caller's level: there CS.RPL says it (far transfers
         * set it to the CPL). */
        c->cpl = (cs->s && (cs->type & 0xc) == 0xc) ? (cs->selector & 3) : cs->dpl;
        if (!cs->s)
            c->cpl = c->seg[S_SS].dpl;
    }
    c->long64 = lma && cs->l;
    if (c->long64)
        c->code_size = 8;
    else if (pe && !vm && cs->db)
        c->code_size = 4;
    else
        c->code_size = 2;
    if (c->long64)
        c->stack_size = 8;
    else
        c->stack_size = (pe && !vm && c->seg[S_SS].db) ? 4 : 2;
    c->flat = !c->long64 && pe && !vm && flat_segment(&c->seg[S_DS]) &&
              flat_segment(&c->seg[S_ES]) && flat_segment(&c->seg[S_SS]) &&
              flat_segment(cs);
    c->mode_key = (uint32_t)c->code_size | (uint32_t)c->stack_size << 4 |
                  (uint32_t)c->cpl << 8 | (c->long64 ? 1u << 10 : 0) |
                  (c->flat ? 1u << 11 : 0) | (pe ? 1u << 12 : 0) | (vm ? 1u << 13 : 0) |
                  ((c->cr0 & CR0_PG) ? 1u << 14 : 0) |
                  ((c->flags & F_TF) ? X86_MODE_STEP : 0);
}

void x86_cpu_reset(struct x86_cpu *c)
{
    memset(c->regs, 0, sizeof c->regs);
    c->regs[R_DX] = 0x600; /* family 6 */
    c->rip = 0xfff0;
    c->flags = 0x2;
    c->lazy.op = CC_EFLAGS;
    for (int s = 0; s < 6; s++) {
        c->seg[s] = (vx_x86_segment){ .base = 0, .limit = 0xffff, .selector = 0, .type = 3,
                                      .present = 1, .s = 1 };
    }
    c->seg[S_CS] = (vx_x86_segment){ .base = 0xffff0000ull, .limit = 0xffff,
                                     .selector = 0xf000, .type = 0xb, .present = 1, .s = 1 };
    c->tr = (vx_x86_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
    c->ldt = (vx_x86_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
    c->gdt = (vx_x86_dtable){ 0, 0xffff };
    c->idt = (vx_x86_dtable){ 0, 0xffff };
    c->cr0 = CR0_ET | CR0_CD | CR0_NW;
    c->cr2 = c->cr3 = c->cr4 = c->cr8 = 0;
    c->efer = 0;
    c->apic_base = 0xfee00000ull | (1ull << 11) | (1ull << 8); /* enabled, BSP */
    memset(c->dr, 0, sizeof c->dr);
    c->dr[6] = 0xffff0ff0;
    c->dr[7] = 0x400;
    memset(&c->msr, 0, sizeof c->msr);
    c->msr.pat = 0x0007040600070406ull;
    c->msr.misc_enable = 1; /* fast strings */
    c->shadow_rip = ~0ull;
    c->nmi_blocked = false;
    x86_fpu_reset(&c->fpu);
    x86_update_mode(c);
}
