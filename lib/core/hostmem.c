/* The pool of released anonymous mappings (see hostmem.h). */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/hostmem.h"

/* Small enough that the resident memory a pool keeps after its machines
 * are gone stays modest; large enough for a harness that creates machines
 * a few at a time. Bigger mappings go straight back to the kernel. */
#define POOL_SLOTS 8
#define POOL_MAX_ZEROED (64u << 20)  /* guest RAM up to this size is pooled */
#define POOL_MAX_RAW (512u << 20)    /* reserved-not-committed arenas */

struct slot {
    void *p;
    size_t size;
    bool zero;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot pool[POOL_SLOTS];
static int pagemap_fd = -2; /* -2: not opened yet, -1: not available */

/* Clear every page of [p, p + size) that may hold data: those present
 * (unless they read as zero: the shared zero page, or zeroed already) or
 * swapped out. false if pagemap cannot tell. Called with the pool lock. */
static bool scrub(uint8_t *p, size_t size)
{
    if (pagemap_fd == -2)
        pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap_fd < 0)
        return false;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t entries[512];
    for (size_t done = 0; done < size;) {
        size_t n = (size - done) / page;
        if (n > 512)
            n = 512;
        off_t at = (off_t)(((uintptr_t)p + done) / page * sizeof(uint64_t));
        if (pread(pagemap_fd, entries, n * sizeof(uint64_t), at) != (ssize_t)(n * sizeof(uint64_t)))
            return false;
        for (size_t k = 0; k < n; k++) {
            const uint64_t present = 1ull << 63, swapped = 1ull << 62;
            if (!(entries[k] & (present | swapped)))
                continue; /* never touched, or given back: zero on the next fault */
            uint8_t *pg = p + done + k * page;
            const uint64_t *w = (const uint64_t *)pg;
            size_t i = 0;
            while (i < page / 8 && !w[i])
                i++;
            if (i < page / 8)
                memset(pg, 0, page);
        }
        done += n * page;
    }
    return true;
}

void *vxi_host_alloc(size_t size, bool zero)
{
    pthread_mutex_lock(&pool_lock);
    for (unsigned k = 0; k < POOL_SLOTS; k++) {
        struct slot *s = &pool[k];
        if (!s->p || s->size != size || s->zero != zero)
            continue;
        void *p = s->p;
        s->p = NULL;
        bool ok = !zero || scrub(p, size);
        pthread_mutex_unlock(&pool_lock);
        if (ok)
            return p;
        munmap(p, size);
        pthread_mutex_lock(&pool_lock);
        break;
    }
    pthread_mutex_unlock(&pool_lock);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void vxi_host_free(void *p, size_t size, bool zero)
{
    if (!p)
        return;
    if (size <= (zero ? POOL_MAX_ZEROED : POOL_MAX_RAW)) {
        pthread_mutex_lock(&pool_lock);
        for (unsigned k = 0; k < POOL_SLOTS; k++) {
            if (!pool[k].p) {
                pool[k] = (struct slot){ p, size, zero };
                pthread_mutex_unlock(&pool_lock);
                return;
            }
        }
        pthread_mutex_unlock(&pool_lock);
    }
    munmap(p, size);
}
