/*
 * vxbench: shared definitions.
 *
 * The benchmark is a table: one row per workload, one column per way of
 * running it (natively on the host, on bare KVM ioctls, through libvx on each
 * accelerator, through Unicorn). A cell is one function; a NULL function or
 * one that returns BENCH_NA prints "-". Adding a workload means adding a row
 * to the table in vxbench.c and the cell functions that can run it.
 *
 * Every column runs the same guest bytes (guests.c) at the same addresses,
 * so a difference between two cells is the cost of the way of running them.
 * The native column runs the loop guests' bytes as host code (native.c),
 * and its result is the reference every other column's must equal.
 */
#ifndef VXBENCH_BENCH_H
#define VXBENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- columns -------------------------------------------------------- */

enum bench_col {
    COL_NATIVE,   /* the workload as host code, where that means anything */
    COL_KVM_BARE, /* raw KVM ioctls, no libvx: the floor for COL_KVM */
    COL_KVM,      /* libvx, VX_ACCEL_KVM */
    COL_TCG,      /* libvx, VX_ACCEL_TCG */
    COL_UNICORN,  /* Unicorn's C library, when configure finds it */
    BENCH_NCOLS
};

/* ---- options -------------------------------------------------------- */

struct bench_opts {
    uint64_t loop_insns;    /* guest instructions per run of a loop row (about) */
    uint64_t out_count;     /* `out`s per run of the out-to-callback rows */
    unsigned create_count;  /* machines per run of the create+run+destroy row */
    unsigned reps;          /* runs per cell; vxbench.c reports the fastest */
    bool ring3;             /* add the ring-3 rows (tcg loops and outs in ring 3) */
    const char *only;       /* run and print only rows whose name has this */
    const char *columns;    /* run only these columns (comma-separated names) */
    bool verbose;
};

/* ---- cells ---------------------------------------------------------- */

/* A cell function runs its workload once (the caller repeats it and keeps
 * the fastest run). It returns 0 with the result filled in, BENCH_NA if this
 * column cannot run the workload here (no /dev/kvm, tcg not built, ...; put
 * the reason in `note`), or -1 on a failure (the reason in `note`). */
#define BENCH_NA 1

#define BENCH_MAX_PHASES 8

struct bench_result {
    double ns;   /* nanoseconds per unit of the row (per exit, per machine, per
                  * guest instruction for the loop rows, printed as MIPS) */
    /* Optional breakdown, printed under the table: where the time goes. */
    unsigned nphases;
    struct { const char *name; double ns; } phase[BENCH_MAX_PHASES];
    char note[160];
    char info[160]; /* a line printed under the table for a cell that ran */
};

struct bench_loop;

/* What a cell is asked to run. `arg` is the row's parameter (the ring for
 * the out rows and for tcg in the loop rows), so one cell function can serve
 * several rows; `loop` is the guest of a loop row. */
struct bench_ctx {
    const struct bench_opts *opts;
    enum bench_col col;
    int arg;
    const struct bench_loop *loop;
};

typedef int (*bench_fn)(const struct bench_ctx *ctx, struct bench_result *r);

/* ---- guest layout, shared by every column ----------------------------- */

#define GUEST_RAM_SIZE   (2u << 20)   /* 2 MiB at gpa 0 */
#define GUEST_LOOP_RAM_SIZE (4u << 20) /* the loop rows: 4 MiB, with the data */
#define GUEST_TABLES_GPA 0x1000u      /* GDT and page tables (VX_X86_MODE_TABLES_SIZE) */
#define GUEST_CODE_GPA   0x10000u
#define GUEST_STACK_TOP  0x1ff000u
/* The memory loop's buffer: 1 MiB, above the stack, in the loop rows' RAM. */
#define GUEST_DATA_GPA   0x200000u
#define GUEST_DATA_SIZE  (1u << 20)

/* The bare baseline's ring-3 rows: a TSS whose I/O permission bitmap allows
 * every port, as the one vx_vcpu_set_mode() writes does. IOPL 3 alone is
 * not enough everywhere: kvm_pvm checks the bitmap for ring-3 in/out
 * whatever IOPL says. The bitmap (all zero bits: allowed) follows the
 * 0x68-byte TSS, then the 0xff byte the CPU may read past its end. Placed
 * after the libvx tables so the two layouts never overlap. */
#define GUEST_TSS_GPA    0xc000u
#define GUEST_TSS_IOMAP  0x68u
#define GUEST_TSS_LIMIT  (GUEST_TSS_IOMAP + 0x2000u)

/* The port the out rows write to, and the one that ends their run: a guest in
 * ring 3 cannot `hlt`, so every out guest ends with an `out` to END_PORT,
 * which nothing claims (libvx returns VX_EXIT_IO). */
#define BENCH_PORT     0xe9
#define BENCH_END_PORT 0xf4

/* The loop rows' guests end by writing END_PORT with `out imm8, al`, which
 * changes no register, so every column ends with the same registers. */

/* guests.c */
extern const uint8_t guest_out_loop[];
extern const size_t guest_out_loop_len;
extern const uint8_t guest_hlt[];
extern const size_t guest_hlt_len;

/* ---- the loop rows' guests (guests.c) ---------------------------------- */

/* The registers a loop guest reads and writes; nothing else changes (but
 * rsp and the memory below it, for the call loop, and the data buffer). */
struct bench_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, r8, r9, r10, r11;
};

/* A loop guest. The bytes run from `entry`, loop `iters` times (rcx counts
 * down), and fall through to `tail`: `out 0xf4, al; hlt` for the guests
 * (nothing claims port 0xf4: libvx returns VX_EXIT_IO there, and ring 3
 * cannot hlt), a `ret` in its place for the native column, a stop address
 * for Unicorn. A run retires exactly insns_per_iter * iters instructions
 * before the tail (then tcg counts the tail's `out` too). */
struct bench_loop {
    const char *name;
    const uint8_t *code;
    size_t len;
    size_t entry, tail;
    uint64_t insns_per_iter;
    bool uses_data;   /* rbx..rsi is the 1 MiB buffer, rdi walks it */
};

extern const struct bench_loop bench_loop_alu, bench_loop_mem, bench_loop_call;

/* Iterations of a timed run: opts->loop_insns guest instructions, rounded
 * down to whole iterations (at least 1). Before it, every column runs the
 * same guest once with BENCH_WARMUP_ITERS on the same machine (translation,
 * page faults and caches warm, on each column alike). */
#define BENCH_WARMUP_ITERS 1
uint64_t bench_loop_iters(const struct bench_loop *l, const struct bench_opts *o);

/* The input registers of a run of `iters` iterations, the buffer at `data`
 * (its guest-physical or host address; ignored without uses_data). */
void bench_loop_regs(const struct bench_loop *l, uint64_t iters, uint64_t data,
                     struct bench_regs *r);
/* The buffer's contents before the warm-up run. */
void bench_loop_fill(uint8_t *buf);
/* A digest of the result of a run: the registers (addresses taken relative
 * to `data`) and, with uses_data, the buffer. Equal digests in two columns
 * mean both ran the same computation. */
uint64_t bench_loop_digest(const struct bench_loop *l, const struct bench_regs *r,
                           uint64_t data, const uint8_t *buf);

/* The expected digest (native.c): the native column's result for the same
 * warm-up and timed run, computed once per loop and iteration count. A loop
 * cell whose digest differs fails. 0 and a note if the host cannot run it. */
int bench_loop_expect(const struct bench_loop *l, uint64_t iters, uint64_t *digest,
                      struct bench_result *r);
/* Fill r->ns (per instruction) from the timed run's wall-clock ns and
 * check the digest; 0 or -1. cpu_ns is the thread's CPU time over the same
 * run: a share under 90% is noted under the table. */
int bench_loop_finish(const struct bench_loop *l, uint64_t iters, uint64_t ns,
                      uint64_t cpu_ns, uint64_t digest, struct bench_result *r);

/* ---- helpers (vxbench.c) -------------------------------------------- */

uint64_t bench_now_ns(void);
/* CPU time of the whole process, every thread: work a library hands to a
 * background thread still shows here. */
uint64_t bench_cpu_ns(void);
/* Open file descriptors of the process: VM and vCPU fds that a background
 * teardown has not closed yet are still counted. */
int bench_open_fds(void);
/* CPU time of the calling thread: with bench_now_ns() around a timed run,
 * the share of a CPU the run had (less than all of it on a busy host). */
uint64_t bench_thread_ns(void);
void bench_note(struct bench_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_phase(struct bench_result *r, const char *name, double ns);

/* The device callback of the out rows, shared so every column pays for the
 * same call. It counts, so the compiler cannot drop it. */
extern volatile uint64_t bench_sink_count;
int bench_sink_write(void *opaque, uint64_t addr, unsigned len, uint64_t value);

/* ---- cells ---------------------------------------------------------- */

/* kvm_bare.c: raw ioctls */
int bare_out_loop(const struct bench_ctx *ctx, struct bench_result *r);
int bare_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r);
/* Fills `buf` with the KVM module loaded (kvm_intel, kvm_amd, kvm_pvm...). */
void bare_kvm_module(char *buf, size_t len);

/* native.c: the loop guests as host code */
int native_loop(const struct bench_ctx *ctx, struct bench_result *r);

/* vx_cells.c: libvx, the accelerator chosen by ctx->col */
int vx_loop(const struct bench_ctx *ctx, struct bench_result *r);
int vx_out_loop(const struct bench_ctx *ctx, struct bench_result *r);
int vx_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r);

/* unicorn.c: Unicorn's C library; BENCH_NA when built without it
 * (VX_HAVE_UNICORN undefined). */
int uc_loop(const struct bench_ctx *ctx, struct bench_result *r);
int uc_out_loop(const struct bench_ctx *ctx, struct bench_result *r);
int uc_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r);
/* "Unicorn 2.0.1", or why the column is empty. */
const char *uc_bench_version(void);

#endif /* VXBENCH_BENCH_H */
