/*
 * vxbench: the Unicorn column. The same guest bytes at the same addresses,
 * through Unicorn's C library as its users call it: uc_open in 64-bit mode
 * (flat, ring 0, no page tables: Unicorn's own way to run such code),
 * uc_mem_map, uc_reg_write, uc_emu_start. Built only when configure finds
 * libunicorn (VX_HAVE_UNICORN); otherwise every cell says why it is empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef VX_HAVE_UNICORN

#include <unicorn/unicorn.h>

const char *uc_bench_version(void)
{
    static char buf[48];
    unsigned major, minor;
    unsigned v = uc_version(&major, &minor);
    /* Unicorn 2 packs major.minor.patch.extra into the result, a byte each. */
    snprintf(buf, sizeof(buf), "Unicorn %u.%u.%u", major, minor, (v >> 8) & 0xff);
    return buf;
}

static int uc_fail(struct bench_result *r, const char *what, uc_err err)
{
    bench_note(r, "%s: %s", what, uc_strerror(err));
    return -1;
}

static int uc_new(uc_engine **uc, uint64_t ram, struct bench_result *r)
{
    uc_err err = uc_open(UC_ARCH_X86, UC_MODE_64, uc);
    if (err)
        return uc_fail(r, "uc_open", err);
    err = uc_mem_map(*uc, 0, ram, UC_PROT_ALL);
    if (err) {
        uc_close(*uc);
        return uc_fail(r, "uc_mem_map", err);
    }
    return 0;
}

static const int loop_reg_ids[] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI,
    UC_X86_REG_RDI, UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
};
#define NLOOP_REGS (sizeof(loop_reg_ids) / sizeof(loop_reg_ids[0]))

/* struct bench_regs is ten uint64_t in the order of loop_reg_ids. */
static uc_err loop_regs(uc_engine *uc, struct bench_regs *g, bool write)
{
    uint64_t *field[NLOOP_REGS] = {
        &g->rax, &g->rbx, &g->rcx, &g->rdx, &g->rsi, &g->rdi, &g->r8, &g->r9, &g->r10, &g->r11,
    };
    for (size_t i = 0; i < NLOOP_REGS; i++) {
        uc_err err = write ? uc_reg_write(uc, loop_reg_ids[i], field[i])
                           : uc_reg_read(uc, loop_reg_ids[i], field[i]);
        if (err)
            return err;
    }
    if (write) {
        uint64_t rsp = GUEST_STACK_TOP;
        return uc_reg_write(uc, UC_X86_REG_RSP, &rsp);
    }
    return UC_ERR_OK;
}

/* Run from the loop's entry to its tail: Unicorn stops at the `until`
 * address before executing it, so no hook is needed (a hook would slow
 * Unicorn down). */
static int uc_run_loop(uc_engine *uc, const struct bench_loop *l, struct bench_result *r)
{
    uc_err err = uc_emu_start(uc, GUEST_CODE_GPA + l->entry, GUEST_CODE_GPA + l->tail, 0, 0);
    if (err)
        return uc_fail(r, "uc_emu_start", err);
    uint64_t rip = 0;
    uc_reg_read(uc, UC_X86_REG_RIP, &rip);
    if (rip != GUEST_CODE_GPA + l->tail) {
        bench_note(r, "the run ended at rip 0x%llx, not at the tail",
                   (unsigned long long)rip);
        return -1;
    }
    return 0;
}

int uc_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_loop *l = ctx->loop;
    uint64_t iters = bench_loop_iters(l, ctx->opts);
    uc_engine *uc;
    if (uc_new(&uc, GUEST_LOOP_RAM_SIZE, r))
        return -1;

    int rc = -1;
    uint8_t *data = NULL;
    uc_err err = uc_mem_write(uc, GUEST_CODE_GPA, l->code, l->len);
    if (err) {
        uc_fail(r, "uc_mem_write", err);
        goto out;
    }
    if (l->uses_data) {
        data = malloc(GUEST_DATA_SIZE);
        if (!data) {
            bench_note(r, "out of memory");
            goto out;
        }
        bench_loop_fill(data);
        err = uc_mem_write(uc, GUEST_DATA_GPA, data, GUEST_DATA_SIZE);
        if (err) {
            uc_fail(r, "uc_mem_write", err);
            goto out;
        }
    }

    struct bench_regs g;
    bench_loop_regs(l, BENCH_WARMUP_ITERS, GUEST_DATA_GPA, &g);
    if ((err = loop_regs(uc, &g, true))) {
        uc_fail(r, "uc_reg_write", err);
        goto out;
    }
    if (uc_run_loop(uc, l, r))
        goto out;

    bench_loop_regs(l, iters, GUEST_DATA_GPA, &g);
    if ((err = loop_regs(uc, &g, true))) {
        uc_fail(r, "uc_reg_write", err);
        goto out;
    }
    uint64_t c0 = bench_thread_ns();
    uint64_t t0 = bench_now_ns();
    if (uc_run_loop(uc, l, r))
        goto out;
    uint64_t ns = bench_now_ns() - t0;
    uint64_t cpu = bench_thread_ns() - c0;

    if ((err = loop_regs(uc, &g, false))) {
        uc_fail(r, "uc_reg_read", err);
        goto out;
    }
    if (l->uses_data && (err = uc_mem_read(uc, GUEST_DATA_GPA, data, GUEST_DATA_SIZE))) {
        uc_fail(r, "uc_mem_read", err);
        goto out;
    }
    rc = bench_loop_finish(l, iters, ns, cpu, bench_loop_digest(l, &g, GUEST_DATA_GPA, data),
                           r);
out:
    free(data);
    uc_close(uc);
    return rc;
}

/* ---- out to a callback ------------------------------------------------ */

struct out_state {
    uint64_t outs;
    int failed;
};

/* UC_HOOK_INSN for `out`: the same C callback every column calls, through a
 * pointer as a VMM with several devices would; the end port stops the run,
 * as an unclaimed port ends vx_vcpu_run. */
static void out_hook(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user)
{
    int (*volatile write_cb)(void *, uint64_t, unsigned, uint64_t) = bench_sink_write;
    struct out_state *s = user;
    s->outs++;
    if (port == BENCH_END_PORT) {
        uc_emu_stop(uc);
        return;
    }
    if (write_cb(NULL, port, (unsigned)size, value) != 0) {
        s->failed = 1;
        uc_emu_stop(uc);
    }
}

int uc_out_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    if (ctx->arg != 0) {
        bench_note(r, "the Unicorn cells run ring 0 only");
        return BENCH_NA;
    }
    uc_engine *uc;
    if (uc_new(&uc, GUEST_RAM_SIZE, r))
        return -1;

    int rc = -1;
    struct out_state s = { 0 };
    uc_hook hh;
    uc_err err = uc_hook_add(uc, &hh, UC_HOOK_INSN, (void *)out_hook, &s, 1, 0, UC_X86_INS_OUT);
    if (err) {
        uc_fail(r, "uc_hook_add", err);
        goto out;
    }
    uint64_t rcx = o->out_count, rdx = BENCH_PORT, rbx = BENCH_END_PORT, rsp = GUEST_STACK_TOP;
    if ((err = uc_mem_write(uc, GUEST_CODE_GPA, guest_out_loop, guest_out_loop_len)) ||
        (err = uc_reg_write(uc, UC_X86_REG_RCX, &rcx)) ||
        (err = uc_reg_write(uc, UC_X86_REG_RDX, &rdx)) ||
        (err = uc_reg_write(uc, UC_X86_REG_RBX, &rbx)) ||
        (err = uc_reg_write(uc, UC_X86_REG_RSP, &rsp))) {
        uc_fail(r, "setting up the guest", err);
        goto out;
    }
    uint64_t calls = bench_sink_count;
    uint64_t t0 = bench_now_ns();
    err = uc_emu_start(uc, GUEST_CODE_GPA, GUEST_CODE_GPA + guest_out_loop_len, 0, 0);
    uint64_t t1 = bench_now_ns();
    if (err) {
        uc_fail(r, "uc_emu_start", err);
        goto out;
    }
    if (s.failed || s.outs != o->out_count + 1 || bench_sink_count - calls != o->out_count) {
        bench_note(r, "%llu outs and %llu callbacks, expected %llu and %llu",
                   (unsigned long long)s.outs, (unsigned long long)(bench_sink_count - calls),
                   (unsigned long long)o->out_count + 1, (unsigned long long)o->out_count);
        goto out;
    }
    r->ns = (double)(t1 - t0) / (double)(o->out_count + 1);
    rc = 0;
out:
    uc_close(uc);
    return rc;
}

/* ---- create, run hlt, destroy ----------------------------------------- */

int uc_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    enum { P_OPEN, P_MAP, P_SETUP, P_RUN, P_CLOSE, P_N };
    static const char *const names[P_N] = {
        "uc_open",
        "uc_mem_map",
        "uc_mem_write code, uc_reg_write rsp",
        "uc_emu_start to hlt",
        "uc_close",
    };
    uint64_t phase[P_N] = { 0 };
    uint64_t cpu = bench_cpu_ns();
    uint64_t start = bench_now_ns();
    for (unsigned i = 0; i < o->create_count; i++) {
        uint64_t t[P_N + 1];
        uc_engine *uc;
        t[0] = bench_now_ns();
        uc_err err = uc_open(UC_ARCH_X86, UC_MODE_64, &uc);
        if (err)
            return uc_fail(r, "uc_open", err);
        t[1] = bench_now_ns();
        if ((err = uc_mem_map(uc, 0, GUEST_RAM_SIZE, UC_PROT_ALL))) {
            uc_fail(r, "uc_mem_map", err);
            goto fail;
        }
        t[2] = bench_now_ns();
        uint64_t rsp = GUEST_STACK_TOP;
        if ((err = uc_mem_write(uc, GUEST_CODE_GPA, guest_hlt, guest_hlt_len)) ||
            (err = uc_reg_write(uc, UC_X86_REG_RSP, &rsp))) {
            uc_fail(r, "setting up the guest", err);
            goto fail;
        }
        t[3] = bench_now_ns();
        /* Unicorn ends uc_emu_start at a hlt. No `until`: 0 is never reached. */
        if ((err = uc_emu_start(uc, GUEST_CODE_GPA, 0, 0, 0))) {
            uc_fail(r, "uc_emu_start", err);
            goto fail;
        }
        uint64_t rip = 0;
        uc_reg_read(uc, UC_X86_REG_RIP, &rip);
        if (rip != GUEST_CODE_GPA + guest_hlt_len) {
            bench_note(r, "the guest did not stop after its hlt (rip 0x%llx)",
                       (unsigned long long)rip);
            goto fail;
        }
        t[4] = bench_now_ns();
        uc_close(uc);
        t[5] = bench_now_ns();
        for (int p = 0; p < P_N; p++)
            phase[p] += t[p + 1] - t[p];
        continue;
    fail:
        uc_close(uc);
        return -1;
    }
    r->ns = (double)(bench_now_ns() - start) / o->create_count;
    cpu = bench_cpu_ns() - cpu;
    for (int p = 0; p < P_N; p++)
        bench_phase(r, names[p], (double)phase[p] / o->create_count);
    bench_phase(r, "(CPU time of the process)", (double)cpu / o->create_count);
    return 0;
}

#else /* !VX_HAVE_UNICORN */

#define NO_UNICORN \
    "built without Unicorn (configure found no libunicorn, or --without-unicorn)"

const char *uc_bench_version(void)
{
    return "not built";
}

int uc_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    (void)ctx;
    bench_note(r, NO_UNICORN);
    return BENCH_NA;
}

int uc_out_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    (void)ctx;
    bench_note(r, NO_UNICORN);
    return BENCH_NA;
}

int uc_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r)
{
    (void)ctx;
    bench_note(r, NO_UNICORN);
    return BENCH_NA;
}

#endif
