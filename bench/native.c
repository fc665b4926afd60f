/*
 * vxbench: the native column. The loop guests' own bytes, copied into an
 * executable host buffer with a `ret` in place of the guest's exit tail and
 * called with the same input registers, so "native" is the same instruction
 * stream on the host CPU. The memory loop gets a host buffer of its own.
 *
 * The native run is also the reference: every other column's result (its
 * registers and the buffer) must match the native one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

#if defined(__x86_64__)

struct native_code {
    uint8_t *code;  /* the loop's bytes, tail replaced by `ret` */
    size_t code_size;
    uint8_t *data;  /* the 1 MiB buffer, for the memory loop */
};

static void native_free(struct native_code *n)
{
    if (n->code)
        munmap(n->code, n->code_size);
    if (n->data)
        munmap(n->data, GUEST_DATA_SIZE);
    n->code = n->data = NULL;
}

static int native_prepare(const struct bench_loop *l, struct native_code *n,
                          struct bench_result *r)
{
    *n = (struct native_code){ .code_size = 4096 };
    void *p = mmap(NULL, n->code_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        bench_note(r, "mmap code: %s", strerror(errno));
        return -1;
    }
    n->code = p;
    memcpy(n->code, l->code, l->tail);
    n->code[l->tail] = 0xc3; /* ret */
    if (mprotect(n->code, n->code_size, PROT_READ | PROT_EXEC) != 0) {
        bench_note(r, "mprotect code executable: %s", strerror(errno));
        native_free(n);
        return BENCH_NA;
    }
    if (l->uses_data) {
        p = mmap(NULL, GUEST_DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
        if (p == MAP_FAILED) {
            bench_note(r, "mmap data: %s", strerror(errno));
            native_free(n);
            return -1;
        }
        n->data = p;
        bench_loop_fill(n->data);
    }
    return 0;
}

/* Call the code with the guest's registers in place. The call pushes its
 * return address below rsp, so step over the red zone first, where the
 * compiler may keep locals of this leaf function. The loops use no register
 * but these (and rsp), and leave the direction flag alone. */
static void native_call(const uint8_t *entry, struct bench_regs *g)
{
    register uint64_t r8 __asm__("r8") = g->r8;
    register uint64_t r9 __asm__("r9") = g->r9;
    register uint64_t r10 __asm__("r10") = g->r10;
    register uint64_t r11 __asm__("r11") = g->r11;
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "call *%[fn]\n\t"
                     "add $128, %%rsp"
                     : "+a"(g->rax), "+b"(g->rbx), "+c"(g->rcx), "+d"(g->rdx),
                       "+S"(g->rsi), "+D"(g->rdi), "+r"(r8), "+r"(r9), "+r"(r10), "+r"(r11)
                     : [fn] "r"(entry)
                     : "memory", "cc");
    g->r8 = r8;
    g->r9 = r9;
    g->r10 = r10;
    g->r11 = r11;
}

/* The warm-up run, then the timed one. Returns the timed run's ns, and its
 * CPU time in *cpu. */
static uint64_t native_runs(const struct bench_loop *l, struct native_code *n, uint64_t iters,
                            struct bench_regs *g, uint64_t *cpu)
{
    uint64_t data = (uintptr_t)n->data;
    bench_loop_regs(l, BENCH_WARMUP_ITERS, data, g);
    native_call(n->code + l->entry, g);
    bench_loop_regs(l, iters, data, g);
    uint64_t c0 = bench_thread_ns();
    uint64_t t0 = bench_now_ns();
    native_call(n->code + l->entry, g);
    uint64_t t1 = bench_now_ns();
    *cpu = bench_thread_ns() - c0;
    return t1 - t0;
}

/* One expected digest per loop: the table runs one iteration count. */
static struct {
    const struct bench_loop *loop;
    uint64_t iters, digest;
} expected[8];

static void remember(const struct bench_loop *l, uint64_t iters, uint64_t digest)
{
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (!expected[i].loop || (expected[i].loop == l && expected[i].iters == iters)) {
            expected[i].loop = l;
            expected[i].iters = iters;
            expected[i].digest = digest;
            return;
        }
    }
}

int bench_loop_expect(const struct bench_loop *l, uint64_t iters, uint64_t *digest,
                      struct bench_result *r)
{
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (expected[i].loop == l && expected[i].iters == iters) {
            *digest = expected[i].digest;
            return 0;
        }
    }
    struct native_code n;
    int rc = native_prepare(l, &n, r);
    if (rc)
        return rc;
    struct bench_regs g;
    uint64_t cpu;
    native_runs(l, &n, iters, &g, &cpu);
    *digest = bench_loop_digest(l, &g, (uintptr_t)n.data, n.data);
    native_free(&n);
    remember(l, iters, *digest);
    return 0;
}

int native_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_loop *l = ctx->loop;
    uint64_t iters = bench_loop_iters(l, ctx->opts);
    struct native_code n;
    int rc = native_prepare(l, &n, r);
    if (rc)
        return rc;
    struct bench_regs g;
    uint64_t cpu;
    uint64_t ns = native_runs(l, &n, iters, &g, &cpu);
    uint64_t digest = bench_loop_digest(l, &g, (uintptr_t)n.data, n.data);
    native_free(&n);
    uint64_t want;
    if (bench_loop_expect(l, iters, &want, r) == 0 && want != digest) {
        /* Native code is deterministic: two runs that differ mean the
         * harness is broken, not the CPU. */
        bench_note(r, "native runs disagree (%016llx vs %016llx)", (unsigned long long)digest,
                   (unsigned long long)want);
        return -1;
    }
    remember(l, iters, digest);
    return bench_loop_finish(l, iters, ns, cpu, digest, r);
}

#else /* not an x86-64 host */

int bench_loop_expect(const struct bench_loop *l, uint64_t iters, uint64_t *digest,
                      struct bench_result *r)
{
    (void)l, (void)iters, (void)digest;
    bench_note(r, "the host is not x86-64: no native run to check results against");
    return BENCH_NA;
}

int native_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    (void)ctx;
    bench_note(r, "the host is not x86-64");
    return BENCH_NA;
}

#endif
