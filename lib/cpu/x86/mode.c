/* Register state and tables for the flat real, 32-bit and 64-bit modes. */
#include "config.h"

#include <string.h>

#include "cpu/x86/mode.h"

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A GDT descriptor from its parts; `access` is P|DPL|S|type, `flags` G|DB|L|AVL. */
static uint64_t descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
    return (uint64_t)(limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) |
           ((uint64_t)access << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
           ((uint64_t)(flags & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

static vx_x86_segment segment(uint16_t selector, uint32_t limit, uint8_t type, uint8_t db,
                              uint8_t l, uint8_t g)
{
    vx_x86_segment s = { .base = 0, .limit = limit, .selector = selector, .type = type,
                         .present = 1, .dpl = 0, .db = db, .s = 1, .l = l, .g = g };
    return s;
}

static void write_gdt(uint8_t *tables, uint64_t tables_gpa)
{
    /* Accessed bits preset: loading a selector then needs no write to the GDT. */
    static const struct { uint8_t access, flags; } seg[] = {
        [VX_X86_SEL_CODE64 / 8] = { 0x9b, 0xa },      /* ring 0, L=1 */
        [VX_X86_SEL_DATA / 8] = { 0x93, 0xc },        /* ring 0, 4 GiB, 32-bit */
        [VX_X86_SEL_CODE32 / 8] = { 0x9b, 0xc },
        [VX_X86_SEL_USER_CODE32 / 8] = { 0xfb, 0xc }, /* ring 3 */
        [VX_X86_SEL_USER_DATA / 8] = { 0xf3, 0xc },
        [VX_X86_SEL_USER_CODE64 / 8] = { 0xfb, 0xa },
    };
    uint8_t *gdt = tables + X86_MODE_GDT;
    for (unsigned i = 1; i < sizeof seg / sizeof seg[0]; i++)
        put64(gdt + 8 * i, descriptor(0, 0xfffff, seg[i].access, seg[i].flags));
    /* A busy TSS (type 0xb): what the CPU holds after ltr. In long mode the
     * descriptor is 16 bytes; its upper half holds base[63:32], zero here. */
    uint64_t tss = tables_gpa + X86_MODE_TSS;
    put64(gdt + VX_X86_SEL_TSS, descriptor((uint32_t)tss, X86_MODE_TSS_LIMIT, 0x8b, 0));
    put64(gdt + VX_X86_SEL_TSS + 8, tss >> 32);
    /* An I/O permission bitmap of zeros: ring-3 code may use every port.
     * The CPU consults it only when CPL > IOPL, but a software KVM
     * (kvm_pvm) consults it always, and ring-3 harnesses need their in/out. */
    uint8_t *t = tables + X86_MODE_TSS;
    t[0x66] = X86_MODE_IOMAP_OFFSET & 0xff;
    t[0x67] = X86_MODE_IOMAP_OFFSET >> 8;
    t[X86_MODE_TSS_LIMIT] = 0xff; /* the byte past the bitmap, inside the limit */
}

static void write_page_tables(uint8_t *tables, uint64_t tables_gpa)
{
    put64(tables + X86_MODE_PML4, (tables_gpa + X86_MODE_PDPT) | PTE_P | PTE_RW | PTE_US);
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t pd = X86_MODE_PD + i * 0x1000;
        put64(tables + X86_MODE_PDPT + 8 * i, (tables_gpa + pd) | PTE_P | PTE_RW | PTE_US);
        for (uint64_t j = 0; j < 512; j++)
            put64(tables + pd + 8 * j,
                  ((i * 512 + j) << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS);
    }
}

int x86_flat_mode(vx_cpu_mode mode, uint64_t tables_gpa, vx_x86_sregs *s, uint8_t *tables)
{
    vx_x86_segment tr = { .base = tables_gpa + X86_MODE_TSS, .limit = X86_MODE_TSS_LIMIT,
                          .selector = VX_X86_SEL_TSS, .type = 0xb, .present = 1 };
    vx_x86_segment ldt = { .type = 0x2, .present = 0 };
    s->cr2 = 0;
    s->cr8 = 0;
    s->idt.base = 0;
    s->idt.limit = 0;
    switch (mode) {
    case VX_MODE_REAL:
        s->cs = segment(0, 0xffff, 0xb, 0, 0, 0);
        s->ds = s->es = s->fs = s->gs = s->ss = segment(0, 0xffff, 0x3, 0, 0, 0);
        tr.base = 0;
        tr.limit = 0xffff;
        tr.selector = 0;
        s->tr = tr;
        s->ldt = ldt;
        s->gdt.base = 0;
        s->gdt.limit = 0xffff;
        s->idt.limit = 0x3ff; /* the real-mode interrupt vector table at 0 */
        s->cr0 = CR0_ET;
        s->cr3 = 0;
        s->cr4 = 0;
        s->efer = 0;
        return 0;
    case VX_MODE_PROT32:
    case VX_MODE_LONG64:
        break;
    default:
        return VX_EINVAL;
    }
    memset(tables, 0, VX_X86_MODE_TABLES_SIZE);
    write_gdt(tables, tables_gpa);
    s->gdt.base = tables_gpa + X86_MODE_GDT;
    s->gdt.limit = X86_MODE_GDT_LIMIT;
    s->ds = s->es = s->fs = s->gs = s->ss = segment(VX_X86_SEL_DATA, 0xffffffff, 0x3, 1, 0, 1);
    s->tr = tr;
    s->ldt = ldt;
    s->cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT;
    if (mode == VX_MODE_PROT32) {
        s->cs = segment(VX_X86_SEL_CODE32, 0xffffffff, 0xb, 1, 0, 1);
        s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE;
        s->cr3 = 0;
        s->efer = 0;
    } else {
        write_page_tables(tables, tables_gpa);
        s->cs = segment(VX_X86_SEL_CODE64, 0xffffffff, 0xb, 0, 1, 1);
        s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s->cr3 = tables_gpa + X86_MODE_PML4;
        s->cr4 |= CR4_PAE;
        s->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    }
    return VX_X86_MODE_TABLES_SIZE;
}
