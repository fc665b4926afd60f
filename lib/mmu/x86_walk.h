/*
 * The x86 page walker, shared by the translator, the debugger and
 * vx_vcpu_translate(): linear to guest-physical under 32-bit, PAE and
 * 4-level paging, with the permission checks and accessed/dirty updates
 * the CPU makes. Page-table entries are read from guest RAM through the
 * address space only; an entry outside RAM reads as not present.
 */
#ifndef VX_MMU_X86_WALK_H
#define VX_MMU_X86_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "mmu/addrspace.h"

/* What the walk depends on. */
struct vx_x86_paging {
    uint64_t cr0, cr3, cr4, efer;
};

/* Access kinds (combine). */
#define VX_WALK_WRITE 1u
#define VX_WALK_USER 2u  /* CPL 3 (and not an implicit supervisor access) */
#define VX_WALK_FETCH 4u
#define VX_WALK_PROBE 8u /* look only: no accessed/dirty updates */

/* #PF error code bits. */
#define VX_PF_P 1u
#define VX_PF_W 2u
#define VX_PF_U 4u
#define VX_PF_RSVD 8u
#define VX_PF_I 16u

struct vx_walk {
    uint64_t gpa;       /* the guest-physical address of lin */
    uint64_t page_size; /* 4 KiB, 2 MiB, 4 MiB or 1 GiB */
    bool writable;      /* a store with the same privilege would be allowed */
    bool user;          /* user-accessible */
    bool executable;
    bool global;
};

/* Translate lin. Returns true with *w filled, or false with the #PF error
 * code in *pf_error. With paging off, lin is the physical address. */
bool vx_x86_walk(struct vx_addrspace *as, const struct vx_x86_paging *p, uint64_t lin,
                 unsigned access, struct vx_walk *w, uint32_t *pf_error);

#endif
