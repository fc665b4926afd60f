/*
 * vxbench: the guest programs, as bytes, with their source beside them.
 * Every column loads the same bytes at GUEST_CODE_GPA in 64-bit mode.
 */
#include <string.h>

#include "bench.h"

/*
 * The out-to-callback rows. Entered with rcx = number of outs, edx = the
 * port, ebx = the end port; ring 0 or ring 3 (with IOPL 3).
 *
 *     .loop:  out  dx, al
 *             dec  rcx
 *             jnz  .loop
 *             mov  edx, ebx
 *             out  dx, al        ; nothing claims it: the run ends here
 *             hlt
 */
const uint8_t guest_out_loop[] = {
    0xee,                   /* out dx, al */
    0x48, 0xff, 0xc9,       /* dec rcx */
    0x75, 0xfa,             /* jnz .loop */
    0x89, 0xda,             /* mov edx, ebx */
    0xee,                   /* out dx, al */
    0xf4,                   /* hlt */
};
const size_t guest_out_loop_len = sizeof(guest_out_loop);

/* The create+run+destroy row: the smallest guest there is. */
const uint8_t guest_hlt[] = {
    0xf4,                   /* hlt */
};
const size_t guest_hlt_len = sizeof(guest_hlt);

/* ---- the loop rows --------------------------------------------------------
 *
 * Each guest is listed with its offsets and, for each instruction, how many
 * times a run executes it; insns_per_iter is the sum over one iteration of
 * rcx, so a run of N iterations retires insns_per_iter * N instructions
 * before the tail. The tail's `out 0xf4, al` ends the run; a port write is
 * complete when vx_vcpu_run returns, so under tcg vx_vcpu_instructions()
 * grows by exactly insns_per_iter * N + 1 (vx_cells.c checks it). MIPS
 * counts the loop's instructions only: the native column runs a `ret`
 * there, Unicorn stops before it.
 */

/* The ALU loop: register-only integer work, two dependency chains (rax/rbx/
 * r8/r10 and rsi/rdi/r9), flags read only by the loop branch.
 *
 *  off                                              per iteration
 *  00  .loop: add  rax, rdx          48 01 d0       1
 *  03         xor  rbx, rax          48 31 c3       1
 *  06         lea  rsi, [rsi+rdi+1]  48 8d 74 3e 01 1
 *  0b         rol  rdi, 5            48 c1 c7 05    1
 *  0f         sub  r8, rbx           49 29 d8       1
 *  12         or   r9, rsi           49 09 f1       1
 *  15         shr  r9, 1             49 d1 e9       1
 *  18         xor  r10, r8           4d 31 c2       1
 *  1b         dec  rcx               48 ff c9       1
 *  1e         jnz  .loop             75 e0          1
 *  20         out  0xf4, al          e6 f4          (tail)
 *  22         hlt                    f4
 *                                              = 10 per iteration
 */
static const uint8_t alu_code[] = {
    0x48, 0x01, 0xd0,
    0x48, 0x31, 0xc3,
    0x48, 0x8d, 0x74, 0x3e, 0x01,
    0x48, 0xc1, 0xc7, 0x05,
    0x49, 0x29, 0xd8,
    0x49, 0x09, 0xf1,
    0x49, 0xd1, 0xe9,
    0x4d, 0x31, 0xc2,
    0x48, 0xff, 0xc9,
    0x75, 0xe0,
    0xe6, 0xf4,
    0xf4,
};
const struct bench_loop bench_loop_alu = {
    .name = "ALU loop", .code = alu_code, .len = sizeof(alu_code),
    .entry = 0x00, .tail = 0x20, .insns_per_iter = 10,
};

/* The memory loop: one pass per iteration reads, updates and writes back
 * every qword of the 1 MiB buffer [rbx, rsi) (256 pages), and sums the
 * values in r8.
 *
 *  off                                              per iteration (pass)
 *  00  .pass: mov  rdi, rbx          48 89 df       1
 *  03  .q:    mov  rax, [rdi]        48 8b 07       131072 (1 MiB / 8)
 *  06         add  rax, rdx          48 01 d0       131072
 *  09         mov  [rdi], rax        48 89 07       131072
 *  0c         add  r8, rax           49 01 c0       131072
 *  0f         add  rdi, 8            48 83 c7 08    131072
 *  13         cmp  rdi, rsi          48 39 f7       131072
 *  16         jb   .q                72 eb          131072
 *  18         dec  rcx               48 ff c9       1
 *  1b         jnz  .pass             75 e3          1
 *  1d         out  0xf4, al          e6 f4          (tail)
 *  1f         hlt                    f4
 *                            = 1 + 7 * 131072 + 2 = 917,507 per iteration
 */
static const uint8_t mem_code[] = {
    0x48, 0x89, 0xdf,
    0x48, 0x8b, 0x07,
    0x48, 0x01, 0xd0,
    0x48, 0x89, 0x07,
    0x49, 0x01, 0xc0,
    0x48, 0x83, 0xc7, 0x08,
    0x48, 0x39, 0xf7,
    0x72, 0xeb,
    0x48, 0xff, 0xc9,
    0x75, 0xe3,
    0xe6, 0xf4,
    0xf4,
};
const struct bench_loop bench_loop_mem = {
    .name = "memory loop", .code = mem_code, .len = sizeof(mem_code),
    .entry = 0x00, .tail = 0x1d, .insns_per_iter = 1 + 7 * (GUEST_DATA_SIZE / 8) + 2,
    .uses_data = true,
};

/* The call/ret loop: two nested calls per iteration, so half the
 * instructions are calls and returns (a block ends at each).
 *
 *  off                                              per iteration
 *  00  f2:    xor  rdx, rax          48 31 c2       1
 *  03         ret                    c3             1
 *  04  f1:    add  rax, rcx          48 01 c8       1
 *  07         call f2                e8 f4 ff ff ff 1
 *  0c         ret                    c3             1
 *  0d  .loop: call f1   (entry)      e8 f2 ff ff ff 1
 *  12         dec  rcx               48 ff c9       1
 *  15         jnz  .loop             75 f6          1
 *  17         out  0xf4, al          e6 f4          (tail)
 *  19         hlt                    f4
 *                                              = 8 per iteration
 */
static const uint8_t call_code[] = {
    0x48, 0x31, 0xc2,
    0xc3,
    0x48, 0x01, 0xc8,
    0xe8, 0xf4, 0xff, 0xff, 0xff,
    0xc3,
    0xe8, 0xf2, 0xff, 0xff, 0xff,
    0x48, 0xff, 0xc9,
    0x75, 0xf6,
    0xe6, 0xf4,
    0xf4,
};
const struct bench_loop bench_loop_call = {
    .name = "call/ret loop", .code = call_code, .len = sizeof(call_code),
    .entry = 0x0d, .tail = 0x17, .insns_per_iter = 8,
};

uint64_t bench_loop_iters(const struct bench_loop *l, const struct bench_opts *o)
{
    uint64_t n = o->loop_insns / l->insns_per_iter;
    return n ? n : 1;
}

void bench_loop_regs(const struct bench_loop *l, uint64_t iters, uint64_t data,
                     struct bench_regs *r)
{
    *r = (struct bench_regs){
        .rax = 0x0123456789abcdefull,
        .rbx = 0x9e3779b97f4a7c15ull,
        .rcx = iters,
        .rdx = 0x2545f4914f6cdd1dull,
        .rsi = 0xbf58476d1ce4e5b9ull,
        .rdi = 0x94d049bb133111ebull,
        .r8 = 0x5851f42d4c957f2dull,
        .r9 = 0x14057b7ef767814full,
        .r10 = 0xda942042e4dd58b5ull,
        .r11 = 0x1d8e4e27c47d124full,
    };
    if (l->uses_data) {
        r->rbx = data;
        r->rsi = data + GUEST_DATA_SIZE;
        r->rdi = data;
    }
}

void bench_loop_fill(uint8_t *buf)
{
    uint64_t x = 0x853c49e6748fea9bull;
    for (size_t i = 0; i < GUEST_DATA_SIZE; i += 8) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        memcpy(buf + i, &x, 8);
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t bench_loop_digest(const struct bench_loop *l, const struct bench_regs *r,
                           uint64_t data, const uint8_t *buf)
{
    struct bench_regs n = *r;
    if (l->uses_data) {
        n.rbx -= data;
        n.rsi -= data;
        n.rdi -= data;
    }
    uint64_t h = fnv(0xcbf29ce484222325ull, &n, sizeof(n));
    if (l->uses_data) {
        /* FNV over 1 MiB byte by byte is slow; fold qwords first. */
        uint64_t acc = 0;
        for (size_t i = 0; i < GUEST_DATA_SIZE; i += 8) {
            uint64_t q;
            memcpy(&q, buf + i, 8);
            acc = (acc ^ q) * 0x9e3779b97f4a7c15ull + i;
        }
        h = fnv(h, &acc, sizeof(acc));
    }
    return h;
}
