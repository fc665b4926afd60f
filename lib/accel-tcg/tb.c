/* The translation block cache. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "accel-tcg/tb.h"
#include "core/hostmem.h"

static unsigned hash_phys(uint64_t phys, uint32_t key)
{
    uint64_t h = (phys ^ ((uint64_t)key << 32)) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - TB_HASH_BITS));
}

static unsigned hash_page(uint64_t page)
{
    return (unsigned)((page >> 12) * 0x9e3779b97f4a7c15ull >> (64 - TB_HASH_BITS));
}

/* tc must be zeroed memory (its hash tables are large: calloc's fresh pages
 * cost nothing until touched). */
int tb_cache_init(struct tb_cache *tc, size_t arena_size, size_t limit)
{
    /* Reserved, not committed: pages are touched only as blocks are made. */
    void *p = vxi_host_alloc(arena_size, false);
    if (!p)
        return -1;
    tc->arena = p;
    tc->arena_size = arena_size;
    tc->arena_limit = limit < arena_size ? limit : arena_size;
    tc->arena_keep = tc->arena_limit;
    return 0;
}

bool tb_cache_grow(struct tb_cache *tc)
{
    if (tc->arena_limit >= tc->arena_size)
        return false;
    tc->arena_limit = tc->arena_limit * 2 < tc->arena_size ? tc->arena_limit * 2 : tc->arena_size;
    return true;
}

void tb_cache_fini(struct tb_cache *tc)
{
    if (tc->arena)
        vxi_host_free(tc->arena, tc->arena_size, false);
    tc->arena = NULL;
}

void tb_cache_flush(struct tb_cache *tc)
{
    if (tc->arena_used == 0)
        return; /* nothing was ever translated: nothing to forget */
    memset(tc->hash, 0, sizeof tc->hash);
    memset(tc->pages, 0, sizeof tc->pages);
    /* Give the pages above the first limit back to the kernel: a cache that
     * grew once for a large guest need not stay resident. Those below it are
     * used again at once (faulting them in afresh cost more than decoding). */
    if (tc->arena_used > tc->arena_keep)
        madvise(tc->arena + tc->arena_keep, tc->arena_used - tc->arena_keep, MADV_DONTNEED);
    tc->arena_used = 0;
    tc->generation++;
    tc->flushes++;
}

static void *arena_alloc(struct tb_cache *tc, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (tc->arena_used + size > tc->arena_limit)
        return NULL;
    void *p = tc->arena + tc->arena_used;
    tc->arena_used += size;
    return p;
}

struct tb *tb_alloc(struct tb_cache *tc, unsigned count)
{
    struct tb *tb = arena_alloc(tc, sizeof *tb + count * sizeof tb->insn[0]);
    if (tb)
        memset(tb, 0, sizeof *tb);
    return tb;
}

bool tb_seen(struct tb_cache *tc, uint64_t phys, uint32_t mode_key, uint64_t lin)
{
    uint64_t h = (phys ^ ((uint64_t)mode_key << 40) ^ (lin << 20)) * 0x9e3779b97f4a7c15ull;
    uint16_t *slot = &tc->seen[h >> (64 - TB_SEEN_BITS)];
    uint16_t tag = (uint16_t)(h | 1); /* never 0, the empty slot */
    if (*slot == tag)
        return true;
    *slot = tag;
    return false;
}

struct tb *tb_lookup(struct tb_cache *tc, uint64_t phys, uint32_t mode_key, uint64_t lin)
{
    for (struct tb *tb = tc->hash[hash_phys(phys, mode_key)]; tb; tb = tb->hash_next)
        if (tb->phys == phys && tb->mode_key == mode_key && tb->lin == lin && tb->valid)
            return tb;
    return NULL;
}

static struct tb_page *find_page(const struct tb_cache *tc, uint64_t page)
{
    for (struct tb_page *p = tc->pages[hash_page(page)]; p; p = p->next)
        if (p->page == page)
            return p;
    return NULL;
}

bool tb_insert(struct tb_cache *tc, struct tb *tb)
{
    struct tb_page *pg[2] = { NULL, NULL };
    for (int k = 0; k < 2; k++) {
        if (tb->page[k] == TB_NO_PAGE)
            continue;
        pg[k] = find_page(tc, tb->page[k]);
        if (!pg[k]) {
            pg[k] = arena_alloc(tc, sizeof *pg[k]);
            if (!pg[k])
                return false;
            pg[k]->page = tb->page[k];
            pg[k]->blocks = NULL;
            unsigned h = hash_page(tb->page[k]);
            pg[k]->next = tc->pages[h];
            tc->pages[h] = pg[k];
        }
    }
    for (int k = 0; k < 2; k++) {
        if (!pg[k])
            continue;
        tb->page_next[k] = pg[k]->blocks;
        pg[k]->blocks = tb;
    }
    unsigned h = hash_phys(tb->phys, tb->mode_key);
    tb->hash_next = tc->hash[h];
    tc->hash[h] = tb;
    tb->valid = true;
    tc->translated++;
    return true;
}

bool tb_page_has_code(const struct tb_cache *tc, uint64_t page)
{
    const struct tb_page *p = find_page(tc, page);
    return p && p->blocks;
}

static void unlink_hash(struct tb_cache *tc, struct tb *tb)
{
    struct tb **pp = &tc->hash[hash_phys(tb->phys, tb->mode_key)];
    while (*pp && *pp != tb)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = tb->hash_next;
}

unsigned tb_invalidate_page(struct tb_cache *tc, uint64_t page)
{
    struct tb_page *p = find_page(tc, page);
    if (!p)
        return 0;
    unsigned n = 0;
    struct tb *tb = p->blocks;
    p->blocks = NULL;
    while (tb) {
        int k = tb->page[0] == page ? 0 : 1;
        struct tb *next = tb->page_next[k];
        if (tb->valid) {
            tb->valid = false;
            unlink_hash(tc, tb);
            /* A block spanning two pages stays listed on the other page, dead:
             * the list walk there skips it. */
            n++;
        }
        tb = next;
    }
    tc->invalidated += n;
    return n;
}
