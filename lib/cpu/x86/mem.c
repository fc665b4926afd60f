/* Segmentation outside 64-bit mode, and the stack. */
#include "config.h"

#include "cpu/x86/mem.h"

bool x86_ac_fault(struct x86_cpu *c)
{
    return c->cpl == 3 && (c->cr0 & CR0_AM) && (c->flags & F_AC);
}

enum x86_status x86_linear_slow(struct x86_cpu *c, unsigned seg, uint64_t off, unsigned size,
                                bool write, uint64_t *lin)
{
    const vx_x86_segment *s = &c->seg[seg];
    bool real = !(c->cr0 & CR0_PE) || (c->flags & F_VM);
    unsigned fault = seg == S_SS ? X86_SS : X86_GP;
    if (!real) {
        /* A null selector leaves the segment unusable (present = 0). */
        if (!s->present)
            return x86_raise_err(c, fault, 0);
        if (s->s && (s->type & 8) && (write || !(s->type & 2)) && seg != S_CS)
            return x86_raise_err(c, fault, 0); /* code: not writable; execute-only not readable */
        if (s->s && !(s->type & 8) && write && !(s->type & 2))
            return x86_raise_err(c, fault, 0); /* read-only data */
    }
    uint64_t last = off + size - 1;
    bool expand_down = s->s && !(s->type & 8) && (s->type & 4);
    if (expand_down) {
        uint64_t top = s->db ? 0xffffffffull : 0xffffull;
        if (off <= s->limit || last > top)
            return x86_raise_err(c, fault, 0);
    } else if (last > s->limit) {
        return x86_raise_err(c, fault, 0);
    }
    *lin = (uint32_t)(s->base + off);
    if (x86_misaligned(*lin, size) && x86_ac_fault(c))
        return x86_raise_err(c, X86_AC, 0);
    return X86_OK;
}
