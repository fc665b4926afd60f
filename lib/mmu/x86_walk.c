/* The x86 page walk: 32-bit, PAE and 4-level paging. */
#include "config.h"

#include <libvx/vx.h>

#include "mmu/x86_walk.h"

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_G (1ull << 8)
#define PTE_XD (1ull << 63)

#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_SMEP (1ull << 20)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* The physical address width the tcg CPU model advertises (CPUID
 * 0x80000008): entry bits above it are reserved. */
#define MAXPHYADDR 40
#define PHYS_MASK (((1ull << MAXPHYADDR) - 1) & ~0xfffull)

/* A page-table entry in guest RAM, or NULL when it is not in RAM. */
static void *entry_ptr(struct vx_addrspace *as, uint64_t gpa, unsigned size)
{
    struct vx_region *r = vx_as_find(as, gpa);
    if (!r || gpa + size - r->gpa > r->size)
        return NULL;
    return r->host + (gpa - r->gpa);
}

static uint64_t read_entry(void *p, unsigned size)
{
    if (!p)
        return 0; /* outside RAM: not present */
    if (size == 4)
        return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
    return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
}

static void set_bits(struct vx_addrspace *as, uint64_t gpa, void *p, unsigned size,
                     uint64_t bits)
{
    struct vx_region *r = vx_as_find(as, gpa);
    if (!p || !r || !(r->prot & VX_MEM_WRITE))
        return; /* the CPU cannot update a table in ROM either */
    if (size == 4)
        __atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
    else
        __atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_RELAXED);
}

struct level {
    uint64_t gpa;
    void *ptr;
};

bool vx_x86_walk(struct vx_addrspace *as, const struct vx_x86_paging *p, uint64_t lin,
                 unsigned access, struct vx_walk *w, uint32_t *pf_error)
{
    if (!(p->cr0 & CR0_PG)) {
        bool lma = p->efer & EFER_LMA;
        w->gpa = lma ? lin : (uint32_t)lin;
        w->page_size = 0x1000;
        w->writable = w->user = w->executable = true;
        w->global = false;
        return true;
    }
    bool nxe = p->efer & EFER_NXE;
    bool write = access & VX_WALK_WRITE, user = access & VX_WALK_USER;
    bool fetch = access & VX_WALK_FETCH;
    uint32_t err_base = (write ? VX_PF_W : 0) | (user ? VX_PF_U : 0) |
                        (fetch && (nxe || (p->cr4 & CR4_SMEP)) ? VX_PF_I : 0);
    struct level lv[5];
    unsigned nlv = 0;
    unsigned esize;
    int levels;       /* walk depth */
    uint64_t table;   /* physical address of the current table */
    uint64_t rsvd = 0; /* reserved bits of non-leaf entries */
    bool rw = true, us = true, xd = false;
    uint64_t entry = 0;
    uint64_t page_size = 0x1000, gpa = 0;

    if (p->efer & EFER_LMA) {
        esize = 8;
        levels = 4;
        table = p->cr3 & PHYS_MASK;
        /* bits 51:MAXPHYADDR; 62:52 are ignored (software's) in 4-level
         * paging, unlike PAE's, where they are reserved too */
        rsvd = ((1ull << 52) - 1) & ~PHYS_MASK & ~0xfffull;
    } else if (p->cr4 & CR4_PAE) {
        esize = 8;
        levels = 3;
        table = p->cr3 & 0xffffffe0ull;
        rsvd = ~PHYS_MASK & ~0xfffull & ~PTE_XD;
    } else {
        esize = 4;
        levels = 2;
        table = p->cr3 & 0xfffff000ull;
        lin = (uint32_t)lin;
    }
    if (!nxe)
        rsvd |= (esize == 8) ? PTE_XD : 0;

    for (int level = levels; level >= 1; level--) {
        unsigned shift = esize == 4 ? 12 + 10 * (unsigned)(level - 1) : 12 + 9 * (unsigned)(level - 1);
        uint64_t idx;
        if (esize == 4)
            idx = (lin >> shift) & 0x3ff;
        else if (levels == 3 && level == 3)
            idx = (lin >> 30) & 3; /* the four PDPTEs of PAE */
        else
            idx = (lin >> shift) & 0x1ff;
        uint64_t egpa = table + idx * esize;
        void *ptr = entry_ptr(as, egpa, esize);
        entry = read_entry(ptr, esize);
        if (!(entry & PTE_P)) {
            *pf_error = err_base;
            return false;
        }
        bool pae_pdpte = levels == 3 && level == 3;
        if (pae_pdpte) {
            /* PAE PDPTEs have no RW/US/XD: only P and the address. */
            if (entry & ((~PHYS_MASK & ~0xfffull) | 0x1e6ull)) {
                *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                return false;
            }
        } else {
            if (entry & rsvd) {
                *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                return false;
            }
            rw = rw && (entry & PTE_RW);
            us = us && (entry & PTE_US);
            xd = xd || (nxe && (entry & PTE_XD));
        }
        lv[nlv].gpa = egpa;
        lv[nlv].ptr = ptr;
        nlv++;
        bool leaf = level == 1;
        if (!leaf && !pae_pdpte && (entry & PTE_PS)) {
            if (esize == 4 && (p->cr4 & CR4_PSE) && level == 2) {
                /* 4 MiB page; PSE-36 puts address bits 39:32 in 20:13
                 * and leaves bit 21 reserved. */
                if (entry & (1u << 21)) {
                    *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                    return false;
                }
                page_size = 4ull << 20;
                gpa = (entry & 0xffc00000ull) | ((entry & 0x1fe000ull) << 19);
                leaf = true;
            } else if (esize == 8 && level == 2) {
                page_size = 2ull << 20;
                if (entry & 0x1fe000ull) {
                    *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                    return false;
                }
                gpa = entry & PHYS_MASK & ~(page_size - 1);
                leaf = true;
            } else if (esize == 8 && level == 3 && levels == 4) {
                page_size = 1ull << 30;
                if (entry & 0x3fffe000ull) {
                    *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                    return false;
                }
                gpa = entry & PHYS_MASK & ~(page_size - 1);
                leaf = true;
            } else if (esize == 8) {
                /* PS in a PML4E is reserved. */
                *pf_error = err_base | VX_PF_P | VX_PF_RSVD;
                return false;
            }
        }
        if (leaf) {
            if (page_size == 0x1000)
                gpa = entry & (esize == 4 ? 0xfffff000ull : PHYS_MASK);
            break;
        }
        table = entry & (esize == 4 ? 0xfffff000ull : PHYS_MASK);
    }

    /* Permissions: user accesses need US everywhere; stores need RW (for
     * supervisor stores only when CR0.WP); fetches need no XD, and SMEP
     * forbids supervisor fetches from user pages. */
    bool wp = p->cr0 & CR0_WP;
    bool denied = (user && !us) || (write && !rw && (user || wp)) || (fetch && xd) ||
                  (fetch && !user && us && (p->cr4 & CR4_SMEP));
    if (denied) {
        *pf_error = err_base | VX_PF_P;
        return false;
    }
    if (!(access & VX_WALK_PROBE)) {
        for (unsigned i = 0; i < nlv; i++) {
            bool is_leaf = i == nlv - 1;
            uint64_t bits = PTE_A | (is_leaf && write ? PTE_D : 0);
            bool pae_pdpte = levels == 3 && i == 0;
            if (!pae_pdpte)
                set_bits(as, lv[i].gpa, lv[i].ptr, esize, bits);
        }
    }
    w->page_size = page_size;
    w->gpa = gpa + (lin & (page_size - 1));
    w->writable = rw || (!user && !wp);
    w->user = us;
    w->executable = !xd;
    w->global = entry & PTE_G;
    return true;
}
