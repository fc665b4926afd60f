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
    uint64_t out_count;     /* `out`s per run of the out-to-callback rows */
    unsigned create_count;  /* machines per run of the create+run+destroy row */
    unsigned reps;          /* runs per cell; vxbench.c reports the fastest */
    bool ring3;             /* add the ring-3 rows */
    const char *only;       /* run and print only rows whose name has this */
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
    double ns;   /* nanoseconds per unit of the row (per exit, per machine) */
    /* Optional breakdown, printed under the table: where the time goes. */
    unsigned nphases;
    struct { const char *name; double ns; } phase[BENCH_MAX_PHASES];
    char note[160];
};

/* What a cell is asked to run. `arg` is the row's parameter (the ring for
 * the out rows), so one cell function can serve several rows. */
struct bench_ctx {
    const struct bench_opts *opts;
    enum bench_col col;
    int arg;
};

typedef int (*bench_fn)(const struct bench_ctx *ctx, struct bench_result *r);

/* ---- guest layout, shared by every column ----------------------------- */

#define GUEST_RAM_SIZE   (2u << 20)   /* 2 MiB at gpa 0 */
#define GUEST_TABLES_GPA 0x1000u      /* GDT and page tables (VX_X86_MODE_TABLES_SIZE) */
#define GUEST_CODE_GPA   0x10000u
#define GUEST_STACK_TOP  0x1ff000u

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

/* guests.c */
extern const uint8_t guest_out_loop[];
extern const size_t guest_out_loop_len;
extern const uint8_t guest_hlt[];
extern const size_t guest_hlt_len;

/* ---- helpers (vxbench.c) -------------------------------------------- */

uint64_t bench_now_ns(void);
/* CPU time of the whole process, every thread: work a library hands to a
 * background thread still shows here. */
uint64_t bench_cpu_ns(void);
/* Open file descriptors of the process: VM and vCPU fds that a background
 * teardown has not closed yet are still counted. */
int bench_open_fds(void);
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

/* vx_cells.c: libvx, the accelerator chosen by ctx->col */
int vx_out_loop(const struct bench_ctx *ctx, struct bench_result *r);
int vx_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r);

#endif /* VXBENCH_BENCH_H */
