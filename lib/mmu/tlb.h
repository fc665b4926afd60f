/*
 * The soft TLB: direct-mapped tables from a linear page to the host memory
 * behind it, one for loads, one for stores, one for instruction fetch. An
 * entry is present only where the access needs no check beyond the page
 * being the same: permissions were checked when it was filled, MMIO and
 * ROM pages are never in the store table, and pages holding translated code
 * are kept out of the store table so stores to them take the slow path,
 * which invalidates the code.
 */
#ifndef VX_MMU_TLB_H
#define VX_MMU_TLB_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define VX_TLB_BITS 8
#define VX_TLB_SIZE (1u << VX_TLB_BITS)
#define VX_TLB_EMPTY 1ull /* no page-aligned address equals it */

/* 32 bytes, in tables aligned to a cache line: an entry never straddles
 * two lines (24 would, for a quarter of them, on the hottest lookups). */
struct vx_tlb_entry {
    uint64_t page;  /* linear page address, or VX_TLB_EMPTY */
    uint8_t *host;  /* host address of the page's first byte */
    uint64_t gpa;   /* guest-physical page address */
    uint64_t unused;
};

struct vx_tlb {
    _Alignas(64) struct vx_tlb_entry load[VX_TLB_SIZE];
    struct vx_tlb_entry store[VX_TLB_SIZE];
    struct vx_tlb_entry fetch[VX_TLB_SIZE];
};

static inline void vx_tlb_flush(struct vx_tlb *t)
{
    for (unsigned i = 0; i < VX_TLB_SIZE; i++)
        t->load[i].page = t->store[i].page = t->fetch[i].page = VX_TLB_EMPTY;
}

static inline unsigned vx_tlb_index(uint64_t lin)
{
    return (unsigned)(lin >> 12) & (VX_TLB_SIZE - 1);
}

/* Forget one linear page (invlpg). */
static inline void vx_tlb_flush_page(struct vx_tlb *t, uint64_t lin)
{
    unsigned i = vx_tlb_index(lin);
    uint64_t page = lin & ~0xfffull;
    if (t->load[i].page == page)
        t->load[i].page = VX_TLB_EMPTY;
    if (t->store[i].page == page)
        t->store[i].page = VX_TLB_EMPTY;
    if (t->fetch[i].page == page)
        t->fetch[i].page = VX_TLB_EMPTY;
}

/* Forget every store entry for a guest-physical page (it now holds code). */
static inline void vx_tlb_flush_store_gpa(struct vx_tlb *t, uint64_t gpa_page)
{
    for (unsigned i = 0; i < VX_TLB_SIZE; i++)
        if (t->store[i].page != VX_TLB_EMPTY && t->store[i].gpa == gpa_page)
            t->store[i].page = VX_TLB_EMPTY;
}

/* The host address for `size` bytes at lin in table `tab`, or NULL when the
 * entry is missing or the access crosses into the next page. */
static inline uint8_t *vx_tlb_lookup(struct vx_tlb_entry *tab, uint64_t lin, unsigned size)
{
    struct vx_tlb_entry *e = &tab[vx_tlb_index(lin)];
    uint64_t off = lin & 0xfff;
    if (__builtin_expect(e->page == (lin & ~0xfffull) && off + size <= 0x1000, 1))
        return e->host + off;
    return NULL;
}

static inline void vx_tlb_fill(struct vx_tlb_entry *tab, uint64_t lin, uint8_t *host_page,
                               uint64_t gpa_page)
{
    struct vx_tlb_entry *e = &tab[vx_tlb_index(lin)];
    e->page = lin & ~0xfffull;
    e->host = host_page;
    e->gpa = gpa_page;
}

#endif
