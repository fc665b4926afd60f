/*
 * Translation blocks: runs of pre-decoded instructions, cached by the
 * guest-physical address of their first byte and the CPU mode they were
 * decoded in. A block ends at a control transfer or a page end, so it
 * covers one guest page, or two when its last instruction straddles them.
 *
 * Blocks are never freed one by one: an invalidated block (its page was
 * written) is only marked dead, and all memory goes at once when the arena
 * fills and the cache is flushed between blocks. That keeps chained and
 * cached pointers safe without reference counts.
 */
#ifndef VX_ACCEL_TCG_TB_H
#define VX_ACCEL_TCG_TB_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/x86/insn.h"

#define TB_MAX_INSNS 64
#define TB_NO_PAGE UINT64_MAX

struct tb {
    uint64_t lin;        /* linear address of the first instruction */
    uint64_t phys;       /* guest-physical address of the first byte */
    uint64_t page[2];    /* guest-physical pages covered (page[1] TB_NO_PAGE if one) */
    uint32_t mode_key;
    uint32_t count;      /* instructions */
    bool valid;
    struct tb *hash_next;
    struct tb *page_next[2]; /* other blocks on page[0] / page[1] */
    struct tb *succ;     /* the block that followed last time (a one-entry chain) */
    uint64_t succ_gen;   /* the machine's mapping generation when succ was linked */
    struct x86_insn insn[];
};

#define TB_HASH_BITS 14
#define TB_JMP_BITS 12
#define TB_SEEN_BITS 14

struct tb_page {
    uint64_t page;        /* guest-physical page address */
    struct tb *blocks;    /* blocks on it, linked through page_next */
    struct tb_page *next; /* hash chain */
};

struct tb_cache {
    struct tb *hash[1u << TB_HASH_BITS];
    struct tb_page *pages[1u << TB_HASH_BITS];
    /* Blocks decoded once and not kept (tb_seen): a 16-bit tag per slot
     * (32 KiB: a machine's creation zeroes all of this structure). */
    uint16_t seen[1u << TB_SEEN_BITS];
    /* Bump allocator for blocks and page records. */
    unsigned char *arena;
    size_t arena_size, arena_used;
    size_t arena_limit; /* what may be used before a flush: <= arena_size */
    size_t arena_keep;  /* the first limit: what a flush leaves resident */
    uint64_t generation;  /* bumped at every flush */
    unsigned long translated, invalidated, flushes;
};

/* Reserve arena_size bytes of address space, of which limit may be used
 * (committed as used) until tb_cache_grow raises it. */
int tb_cache_init(struct tb_cache *tc, size_t arena_size, size_t limit);
/* Double the limit, up to the reservation. Returns false when it is there. */
bool tb_cache_grow(struct tb_cache *tc);
void tb_cache_fini(struct tb_cache *tc);
void tb_cache_flush(struct tb_cache *tc);

struct tb *tb_lookup(struct tb_cache *tc, uint64_t phys, uint32_t mode_key, uint64_t lin);
/* Has a block starting at (phys, mode_key, lin) been decoded before? Notes
 * it as decoded either way. A hint only: a collision in the table can make
 * either answer wrong, which costs a decode or some memory, nothing else. */
bool tb_seen(struct tb_cache *tc, uint64_t phys, uint32_t mode_key, uint64_t lin);
/* Space for a block of up to `count` instructions, or NULL when the arena is
 * full (flush and retry). */
struct tb *tb_alloc(struct tb_cache *tc, unsigned count);
/* Enter a filled block into the hash and page lists. Returns false when the
 * arena had no room for a page record (flush and retry). */
bool tb_insert(struct tb_cache *tc, struct tb *tb);
/* Is there a live block on this guest-physical page? */
bool tb_page_has_code(const struct tb_cache *tc, uint64_t page);
/* Kill every block on the page; returns how many. */
unsigned tb_invalidate_page(struct tb_cache *tc, uint64_t page);

#endif
