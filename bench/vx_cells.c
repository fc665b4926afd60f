/*
 * vxbench: the libvx columns. One function per workload serves every
 * accelerator; the column picks it. Written as an application would write
 * it, through the public API only.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libvx/vx.h>

#include "bench.h"

static vx_accel col_accel(enum bench_col col)
{
    return col == COL_TCG ? VX_ACCEL_TCG : VX_ACCEL_KVM;
}

static int vx_fail(struct bench_result *r, const char *what, int err)
{
    bench_note(r, "%s: %s (%s)", what, vx_strerror(err), vx_last_error());
    return -1;
}

/* A machine that cannot be created at all is "not available here", not a
 * failure of the benchmark: no /dev/kvm, or tcg not built yet. */
static int create_machine(const struct bench_ctx *ctx, uint64_t flags, vx_machine **m,
                          struct bench_result *r)
{
    vx_machine_opts mo = {
        .size = sizeof(mo),
        .arch = VX_ARCH_X86_64,
        .accel = col_accel(ctx->col),
        .vcpus = 1,
        .flags = flags,
    };
    int err = vx_machine_create(&mo, m);
    if (err == VX_ENOTSUP) {
        bench_note(r, "%s", vx_last_error());
        return BENCH_NA;
    }
    if (err)
        return vx_fail(r, "vx_machine_create", err);
    return 0;
}

/* Ring 3 on top of the flat ring-0 state vx_vcpu_set_mode() leaves: the
 * user selectors of its GDT, which its page tables already allow; its TSS
 * already lets ring 3 use every port. */
static int enter_ring3(vx_machine *m, vx_vcpu *v, struct bench_result *r)
{
    (void)m;
    vx_x86_sregs s;
    int err = vx_vcpu_get_sregs(v, &s);
    if (err)
        return vx_fail(r, "vx_vcpu_get_sregs", err);
    s.cs.selector = VX_X86_SEL_USER_CODE64 | 3;
    s.cs.dpl = 3;
    vx_x86_segment data = s.ss;
    data.selector = VX_X86_SEL_USER_DATA | 3;
    data.dpl = 3;
    s.ss = s.ds = s.es = s.fs = s.gs = data;
    err = vx_vcpu_set_sregs(v, &s);
    if (err)
        return vx_fail(r, "vx_vcpu_set_sregs", err);
    return 0;
}

/* The registers of a loop guest's run: its inputs, entry, stack, IOPL 3 in
 * ring 3 (so the tail's `out` is allowed). */
static int set_loop_regs(vx_vcpu *v, const struct bench_loop *l, int ring,
                         const struct bench_regs *g, struct bench_result *r)
{
    vx_x86_regs regs = {
        .rax = g->rax, .rbx = g->rbx, .rcx = g->rcx, .rdx = g->rdx,
        .rsi = g->rsi, .rdi = g->rdi, .r8 = g->r8, .r9 = g->r9, .r10 = g->r10, .r11 = g->r11,
        .rip = GUEST_CODE_GPA + l->entry,
        .rsp = GUEST_STACK_TOP,
        .rflags = 0x2 | (ring ? 0x3000 : 0),
    };
    int err = vx_vcpu_set_regs(v, &regs);
    if (err)
        return vx_fail(r, "vx_vcpu_set_regs", err);
    return 0;
}

static int set_regs(vx_vcpu *v, int ring, uint64_t rcx, struct bench_result *r)
{
    vx_x86_regs regs = {
        .rip = GUEST_CODE_GPA,
        .rsp = GUEST_STACK_TOP,
        .rflags = 0x2 | (ring ? 0x3000 : 0),   /* IOPL 3 lets ring 3 `out` */
        .rcx = rcx,
        .rdx = BENCH_PORT,
        .rbx = BENCH_END_PORT,
    };
    int err = vx_vcpu_set_regs(v, &regs);
    if (err)
        return vx_fail(r, "vx_vcpu_set_regs", err);
    return 0;
}

static int load_guest(vx_machine *m, const uint8_t *code, size_t len, int ring,
                      uint64_t ram, struct bench_result *r)
{
    int err = vx_memory_map(m, 0, ram, NULL, VX_MEM_RWX);
    if (err)
        return vx_fail(r, "vx_memory_map", err);
    err = vx_load_flat(m, GUEST_CODE_GPA, code, len);
    if (err)
        return vx_fail(r, "vx_load_flat", err);
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    err = vx_vcpu_set_mode(v, VX_MODE_LONG64, GUEST_TABLES_GPA);
    if (err)
        return vx_fail(r, "vx_vcpu_set_mode", err);
    if (ring && enter_ring3(m, v, r))
        return -1;
    return 0;
}

int vx_out_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    int ring = ctx->arg;
    vx_machine *m = NULL;
    int rc = create_machine(ctx, ring ? VX_MACHINE_USER_ONLY : 0, &m, r);
    if (rc)
        return rc;

    rc = -1;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    static const vx_io_ops sink_ops = { .size = sizeof(vx_io_ops), .write = bench_sink_write };
    int err = vx_pio_register(m, BENCH_PORT, 1, &sink_ops, NULL);
    if (err) {
        vx_fail(r, "vx_pio_register", err);
        goto out;
    }
    if (load_guest(m, guest_out_loop, guest_out_loop_len, ring, GUEST_RAM_SIZE, r) ||
        set_regs(v, ring, o->out_count, r))
        goto out;

    uint64_t calls = bench_sink_count;
    uint64_t insns = vx_vcpu_instructions(v);
    vx_exit ex = { .size = sizeof(ex) };
    uint64_t t0 = bench_now_ns();
    err = vx_vcpu_run(v, &ex);
    uint64_t t1 = bench_now_ns();
    insns = vx_vcpu_instructions(v) - insns;
    if (err) {
        vx_fail(r, "vx_vcpu_run", err);
        goto out;
    }
    if (ex.reason != VX_EXIT_IO || ex.u.io.port != BENCH_END_PORT) {
        bench_note(r, "unexpected exit %u (%s)", ex.reason, vx_last_error());
        goto out;
    }
    if (bench_sink_count - calls != o->out_count) {
        bench_note(r, "callback ran %llu times, expected %llu",
                   (unsigned long long)(bench_sink_count - calls),
                   (unsigned long long)o->out_count);
        goto out;
    }
    /* tcg counts what retired: 3 per out (out, dec, jnz), then the `mov`
     * and the final out (a port write is complete when the run returns). */
    if (ctx->col == COL_TCG && insns != 3 * o->out_count + 2) {
        bench_note(r, "vx_vcpu_instructions counted %llu, the guest ran %llu",
                   (unsigned long long)insns, (unsigned long long)(3 * o->out_count + 2));
        goto out;
    }
    /* Divide as the bare column does: every out plus the final one. */
    r->ns = (double)(t1 - t0) / (double)(o->out_count + 1);
    rc = 0;
out:
    vx_machine_destroy(m);
    return rc;
}

/* Run a loop guest to its tail: the `out` to END_PORT, unclaimed. */
static int run_to_tail(vx_vcpu *v, struct bench_result *r)
{
    vx_exit ex = { .size = sizeof(ex) };
    int err = vx_vcpu_run(v, &ex);
    if (err)
        return vx_fail(r, "vx_vcpu_run", err);
    if (ex.reason != VX_EXIT_IO || ex.u.io.port != BENCH_END_PORT || !ex.u.io.is_write) {
        bench_note(r, "unexpected exit %u (%s)", ex.reason, vx_last_error());
        return -1;
    }
    return 0;
}

/* A loop row. kvm always runs the guest in ring 3: a software KVM such as
 * kvm_pvm emulates ring-0 code one instruction at a time (~270 ns each),
 * while ring 3 runs on the CPU; on a hardware KVM the two run alike. tcg
 * runs it in the row's ring. Only vx_vcpu_run to the tail is timed, after
 * a warm-up run on the same machine. */
int vx_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_loop *l = ctx->loop;
    int ring = ctx->col == COL_KVM ? 3 : ctx->arg;
    uint64_t iters = bench_loop_iters(l, ctx->opts);
    vx_machine *m = NULL;
    int rc = create_machine(ctx, ring ? VX_MACHINE_USER_ONLY : 0, &m, r);
    if (rc)
        return rc;

    rc = -1;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    if (load_guest(m, l->code, l->len, ring, GUEST_LOOP_RAM_SIZE, r))
        goto out;
    uint8_t *data = vx_memory_ptr(m, GUEST_DATA_GPA, GUEST_DATA_SIZE);
    if (!data) {
        vx_fail(r, "vx_memory_ptr", VX_ERANGE);
        goto out;
    }
    bench_loop_fill(data);

    struct bench_regs g;
    bench_loop_regs(l, BENCH_WARMUP_ITERS, GUEST_DATA_GPA, &g);
    if (set_loop_regs(v, l, ring, &g, r) || run_to_tail(v, r))
        goto out;

    bench_loop_regs(l, iters, GUEST_DATA_GPA, &g);
    if (set_loop_regs(v, l, ring, &g, r))
        goto out;
    uint64_t insns = vx_vcpu_instructions(v);
    uint64_t c0 = bench_thread_ns();
    uint64_t t0 = bench_now_ns();
    if (run_to_tail(v, r))
        goto out;
    uint64_t ns = bench_now_ns() - t0;
    uint64_t cpu = bench_thread_ns() - c0;
    insns = vx_vcpu_instructions(v) - insns;

    vx_x86_regs regs;
    int err = vx_vcpu_get_regs(v, &regs);
    if (err) {
        vx_fail(r, "vx_vcpu_get_regs", err);
        goto out;
    }
    g = (struct bench_regs){
        .rax = regs.rax, .rbx = regs.rbx, .rcx = regs.rcx, .rdx = regs.rdx,
        .rsi = regs.rsi, .rdi = regs.rdi, .r8 = regs.r8, .r9 = regs.r9, .r10 = regs.r10,
        .r11 = regs.r11,
    };
    /* An unclaimed port write is complete when vx_vcpu_run returns, on
     * every accelerator: rip is past the tail's `out 0xf4, al` (2 bytes),
     * and tcg has counted it. */
    uint64_t end = GUEST_CODE_GPA + l->tail + 2;
    if (regs.rip != end) {
        bench_note(r, "the run ended at rip 0x%llx, not after the tail's out at 0x%llx",
                   (unsigned long long)regs.rip, (unsigned long long)end);
        goto out;
    }
    uint64_t expect = l->insns_per_iter * iters + 1;
    if (ctx->col == COL_TCG) {
        if (insns != expect) {
            bench_note(r, "vx_vcpu_instructions counted %llu, the guest ran %llu",
                       (unsigned long long)insns, (unsigned long long)expect);
            goto out;
        }
        snprintf(r->info, sizeof(r->info),
                 "%llu x %llu + the out = %llu instructions, as vx_vcpu_instructions counts",
                 (unsigned long long)l->insns_per_iter, (unsigned long long)iters,
                 (unsigned long long)expect);
    }
    rc = bench_loop_finish(l, iters, ns, cpu, bench_loop_digest(l, &g, GUEST_DATA_GPA, data),
                           r);
out:
    vx_machine_destroy(m);
    return rc;
}

/* Wait until a background teardown has closed every VM fd; give up after a
 * few seconds (an fd the library leaks would otherwise hang the bench). */
static void wait_for_fds(int baseline)
{
    uint64_t deadline = bench_now_ns() + 5000000000u;
    while (bench_open_fds() > baseline && bench_now_ns() < deadline) {
        struct timespec pause = { 0, 50000 };
        nanosleep(&pause, NULL);
    }
}

int vx_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    enum { P_CREATE, P_MAP, P_SETUP, P_RUN, P_DESTROY, P_N };
    static const char *const names[P_N] = {
        "vx_machine_create",
        "vx_memory_map",
        "vx_load_flat, set_mode, set_regs",
        "vx_vcpu_run to hlt",
        "vx_machine_destroy",
    };

    uint64_t phase[P_N] = { 0 };
    int fds = bench_open_fds();
    uint64_t cpu = bench_cpu_ns();
    uint64_t start = bench_now_ns();
    for (unsigned i = 0; i < o->create_count; i++) {
        vx_machine *m = NULL;
        uint64_t t[P_N + 1];
        t[0] = bench_now_ns();
        int rc = create_machine(ctx, 0, &m, r);
        if (rc)
            return rc;
        t[1] = bench_now_ns();
        int err = vx_memory_map(m, 0, GUEST_RAM_SIZE, NULL, VX_MEM_RWX);
        if (err) {
            vx_fail(r, "vx_memory_map", err);
            goto fail;
        }
        t[2] = bench_now_ns();
        vx_vcpu *v = vx_machine_vcpu(m, 0);
        err = vx_load_flat(m, GUEST_CODE_GPA, guest_hlt, guest_hlt_len);
        if (err) {
            vx_fail(r, "vx_load_flat", err);
            goto fail;
        }
        err = vx_vcpu_set_mode(v, VX_MODE_LONG64, GUEST_TABLES_GPA);
        if (err) {
            vx_fail(r, "vx_vcpu_set_mode", err);
            goto fail;
        }
        if (set_regs(v, 0, 0, r))
            goto fail;
        t[3] = bench_now_ns();
        vx_exit ex = { .size = sizeof(ex) };
        err = vx_vcpu_run(v, &ex);
        if (err) {
            vx_fail(r, "vx_vcpu_run", err);
            goto fail;
        }
        if (ex.reason != VX_EXIT_HLT) {
            bench_note(r, "guest did not halt (exit %u: %s)", ex.reason, vx_last_error());
            goto fail;
        }
        t[4] = bench_now_ns();
        vx_machine_destroy(m);
        t[5] = bench_now_ns();
        for (int p = 0; p < P_N; p++)
            phase[p] += t[p + 1] - t[p];
        continue;
    fail:
        vx_machine_destroy(m);
        return -1;
    }
    uint64_t end = bench_now_ns();
    r->ns = (double)(end - start) / o->create_count;
    for (int p = 0; p < P_N; p++)
        bench_phase(r, names[p], (double)phase[p] / o->create_count);

    /* A library may finish destroying machines in the background. The row
     * shows what the application waits for; these show the rest. */
    wait_for_fds(fds);
    uint64_t drained = bench_now_ns();
    cpu = bench_cpu_ns() - cpu;
    bench_phase(r, "(background teardown after the loop)",
                (double)(drained - end) / o->create_count);
    bench_phase(r, "(CPU time of the process)", (double)cpu / o->create_count);
    return 0;
}
