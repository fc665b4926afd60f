/*
 * vxbench: the kvm-bare column. Raw KVM ioctls, written the way a minimal
 * hand-made VMM would write them, with no libvx anywhere: this is the floor
 * the kvm (libvx) column is measured against.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "bench.h"

/* /dev/kvm is opened once per process, as any VMM does; a VM is per run. */
static int kvm_fd = -1;
static size_t run_mmap_size;

struct bare_vm {
    int vm;
    int vcpu;
    uint8_t *mem;
    struct kvm_run *run;
};

void bare_kvm_module(char *buf, size_t len)
{
    static const char *const modules[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/sys/module/%s", modules[i]);
        if (access(path, F_OK) == 0 && used < len)
            used += snprintf(buf + used, len - used, "%s%s", used ? "," : "", modules[i]);
    }
    if (!used)
        snprintf(buf, len, "none");
}

static int bare_open(struct bench_result *r)
{
    if (kvm_fd >= 0)
        return 0;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        bench_note(r, "/dev/kvm: %s", strerror(errno));
        return BENCH_NA;
    }
    if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        bench_note(r, "/dev/kvm: unexpected API version");
        close(fd);
        return BENCH_NA;
    }
    int size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) {
        bench_note(r, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
        close(fd);
        return -1;
    }
    run_mmap_size = (size_t)size;
    kvm_fd = fd;
    return 0;
}

/* The host's CPUID as KVM can offer it, handed to the vCPU unchanged. The
 * table has no fixed size: start big enough for today's CPUs (each call
 * costs hundreds of microseconds on a software KVM) and grow on E2BIG. */
static struct kvm_cpuid2 *supported_cpuid(void)
{
    for (unsigned nent = 256; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
        if (!c)
            return NULL;
        c->nent = nent;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

static void bare_close(struct bare_vm *b)
{
    if (b->run)
        munmap(b->run, run_mmap_size);
    if (b->vcpu >= 0)
        close(b->vcpu);
    if (b->vm >= 0)
        close(b->vm);
    if (b->mem)
        munmap(b->mem, GUEST_RAM_SIZE);
    b->run = NULL;
    b->mem = NULL;
    b->vcpu = b->vm = -1;
}

/* ---- the steps of bringing up a VM, timed separately by the create row --- */

static int step_create_vm(struct bare_vm *b, struct bench_result *r)
{
    b->vm = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (b->vm < 0) {
        bench_note(r, "KVM_CREATE_VM: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int step_memory(struct bare_vm *b, struct bench_result *r)
{
    void *mem = mmap(NULL, GUEST_RAM_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        bench_note(r, "mmap guest RAM: %s", strerror(errno));
        return -1;
    }
    b->mem = mem;
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = GUEST_RAM_SIZE,
        .userspace_addr = (uintptr_t)mem,
    };
    if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        bench_note(r, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int step_vcpu(struct bare_vm *b, struct bench_result *r)
{
    b->vcpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
    if (b->vcpu < 0) {
        bench_note(r, "KVM_CREATE_VCPU: %s", strerror(errno));
        return -1;
    }
    struct kvm_cpuid2 *cpuid = supported_cpuid();
    if (!cpuid) {
        bench_note(r, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        return -1;
    }
    int rc = ioctl(b->vcpu, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    if (rc < 0) {
        bench_note(r, "KVM_SET_CPUID2: %s", strerror(errno));
        return -1;
    }
    void *run = mmap(NULL, run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->vcpu, 0);
    if (run == MAP_FAILED) {
        bench_note(r, "mmap kvm_run: %s", strerror(errno));
        return -1;
    }
    b->run = run;
    return 0;
}

/* Flat 64-bit mode as libvx's vx_vcpu_set_mode(VX_MODE_LONG64) describes it
 * (same GDT selectors, identity map with 2 MiB user-accessible pages), so
 * both columns run the guest in the same state. Only the first GiB is
 * mapped: the guest has 2 MiB. */
static void write_long64_tables(uint8_t *mem)
{
    uint64_t *pml4 = (uint64_t *)(mem + GUEST_TABLES_GPA);
    uint64_t *pdpt = (uint64_t *)(mem + GUEST_TABLES_GPA + 0x1000);
    uint64_t *pd = (uint64_t *)(mem + GUEST_TABLES_GPA + 0x2000);
    uint64_t *gdt = (uint64_t *)(mem + GUEST_TABLES_GPA + 0x6000);
    const uint64_t P = 1, RW = 2, US = 4, PS = 0x80;

    pml4[0] = (GUEST_TABLES_GPA + 0x1000) | P | RW | US;
    pdpt[0] = (GUEST_TABLES_GPA + 0x2000) | P | RW | US;
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = (i << 21) | P | RW | US | PS;

    gdt[0] = 0;
    gdt[1] = 0x00af9b000000ffffull; /* 0x08 code64, ring 0 */
    gdt[2] = 0x00cf93000000ffffull; /* 0x10 data, ring 0 */
    gdt[3] = 0x00cf9b000000ffffull; /* 0x18 code32, ring 0 */
    gdt[4] = 0x00cffb000000ffffull; /* 0x20 code32, ring 3 */
    gdt[5] = 0x00cff3000000ffffull; /* 0x28 data, ring 3 */
    gdt[6] = 0x00affb000000ffffull; /* 0x30 code64, ring 3 */
}

static int set_long64(struct bare_vm *b, int ring, struct bench_result *r)
{
    struct kvm_sregs s;
    if (ioctl(b->vcpu, KVM_GET_SREGS, &s) < 0) {
        bench_note(r, "KVM_GET_SREGS: %s", strerror(errno));
        return -1;
    }
    unsigned rpl = ring ? 3 : 0;
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = (ring ? 0x30 : 0x08) | rpl,
        .type = 11, .present = 1, .dpl = rpl, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = {
        .base = 0, .limit = 0xffffffff, .selector = (ring ? 0x28 : 0x10) | rpl,
        .type = 3, .present = 1, .dpl = rpl, .db = 1, .s = 1, .l = 0, .g = 1,
    };
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    if (ring) {
        /* The TSS's I/O bitmap grants ring 3 every port (see bench.h). */
        uint8_t *tss = b->mem + GUEST_TSS_GPA;
        memset(tss, 0, GUEST_TSS_LIMIT);
        tss[0x66] = GUEST_TSS_IOMAP & 0xff;
        tss[0x67] = GUEST_TSS_IOMAP >> 8;
        tss[GUEST_TSS_LIMIT] = 0xff;
        s.tr = (struct kvm_segment){
            .base = GUEST_TSS_GPA, .limit = GUEST_TSS_LIMIT, .selector = 0x38,
            .type = 11, .present = 1,
        };
    }
    s.gdt.base = GUEST_TABLES_GPA + 0x6000;
    s.gdt.limit = 8 * 8 - 1;
    s.cr3 = GUEST_TABLES_GPA;
    s.cr4 = 0x20 | 0x200;                  /* PAE, OSFXSR */
    s.cr0 = 0x80000000u | 0x10000 | 0x20 | 0x10 | 0x2 | 0x1; /* PG WP NE ET MP PE */
    s.efer = 0x100 | 0x400 | 0x800 | 0x1;  /* LME LMA NXE SCE */
    if (ioctl(b->vcpu, KVM_SET_SREGS, &s) < 0) {
        bench_note(r, "KVM_SET_SREGS: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int set_regs(struct bare_vm *b, int ring, uint64_t rcx, struct bench_result *r)
{
    struct kvm_regs regs = {
        .rip = GUEST_CODE_GPA,
        .rsp = GUEST_STACK_TOP,
        .rflags = 0x2 | (ring ? 0x3000 : 0),   /* IOPL 3 lets ring 3 `out` */
        .rcx = rcx,
        .rdx = BENCH_PORT,
        .rbx = BENCH_END_PORT,
    };
    if (ioctl(b->vcpu, KVM_SET_REGS, &regs) < 0) {
        bench_note(r, "KVM_SET_REGS: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The run loop: port writes go to the device callback, as a VMM dispatching
 * to a device would, until the guest halts or writes the end port. Returns
 * the number of exits, or -1. */
static long run_until_end(struct bare_vm *b, struct bench_result *r)
{
    /* Through a pointer, as a VMM with more than one device would call it. */
    int (*volatile write_cb)(void *, uint64_t, unsigned, uint64_t) = bench_sink_write;
    struct kvm_run *run = b->run;
    long exits = 0;

    for (;;) {
        if (ioctl(b->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            bench_note(r, "KVM_RUN: %s", strerror(errno));
            return -1;
        }
        exits++;
        switch (run->exit_reason) {
        case KVM_EXIT_HLT:
            return exits;
        case KVM_EXIT_IO:
            if (run->io.port == BENCH_END_PORT)
                return exits;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                const uint8_t *data = (const uint8_t *)run + run->io.data_offset;
                for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
                    uint64_t value = 0;
                    memcpy(&value, data, run->io.size);
                    if (write_cb(NULL, run->io.port, run->io.size, value) != 0) {
                        bench_note(r, "device callback failed");
                        return -1;
                    }
                }
            }
            break;
        default:
            bench_note(r, "unexpected KVM exit %u", run->exit_reason);
            return -1;
        }
    }
}

/* ---- rows ------------------------------------------------------------ */

int bare_out_loop(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    int ring = ctx->arg;
    struct bare_vm b = { .vm = -1, .vcpu = -1 };
    int rc = bare_open(r);
    if (rc)
        return rc;

    rc = -1;
    if (step_create_vm(&b, r) || step_memory(&b, r) || step_vcpu(&b, r))
        goto out;
    write_long64_tables(b.mem);
    memcpy(b.mem + GUEST_CODE_GPA, guest_out_loop, guest_out_loop_len);
    if (set_long64(&b, ring, r) || set_regs(&b, ring, o->out_count, r))
        goto out;
    uint64_t t0 = bench_now_ns();
    long exits = run_until_end(&b, r);
    uint64_t t1 = bench_now_ns();
    if (exits < 0)
        goto out;
    if ((uint64_t)exits != o->out_count + 1) {
        bench_note(r, "%ld exits, expected %llu", exits, (unsigned long long)o->out_count + 1);
        goto out;
    }
    r->ns = (double)(t1 - t0) / (double)exits;
    rc = 0;
out:
    bare_close(&b);
    return rc;
}

int bare_create_run_destroy(const struct bench_ctx *ctx, struct bench_result *r)
{
    const struct bench_opts *o = ctx->opts;
    enum { P_VM, P_MEM, P_VCPU, P_REGS, P_RUN, P_TEARDOWN, P_N };
    static const char *const names[P_N] = {
        "KVM_CREATE_VM",
        "mmap + SET_USER_MEMORY_REGION",
        "CREATE_VCPU + CPUID + mmap run",
        "tables, code, sregs, regs",
        "KVM_RUN to hlt",
        "teardown (munmap, close)",
    };
    int rc = bare_open(r);
    if (rc)
        return rc;

    uint64_t phase[P_N] = { 0 };
    uint64_t cpu = bench_cpu_ns();
    uint64_t start = bench_now_ns();
    for (unsigned i = 0; i < o->create_count; i++) {
        struct bare_vm b = { .vm = -1, .vcpu = -1 };
        uint64_t t[P_N + 1];
        t[0] = bench_now_ns();
        if (step_create_vm(&b, r))
            goto fail;
        t[1] = bench_now_ns();
        if (step_memory(&b, r))
            goto fail;
        t[2] = bench_now_ns();
        if (step_vcpu(&b, r))
            goto fail;
        t[3] = bench_now_ns();
        write_long64_tables(b.mem);
        memcpy(b.mem + GUEST_CODE_GPA, guest_hlt, guest_hlt_len);
        if (set_long64(&b, 0, r) || set_regs(&b, 0, 0, r))
            goto fail;
        t[4] = bench_now_ns();
        if (run_until_end(&b, r) < 0)
            goto fail;
        if (b.run->exit_reason != KVM_EXIT_HLT) {
            bench_note(r, "guest did not halt (exit %u)", b.run->exit_reason);
            goto fail;
        }
        t[5] = bench_now_ns();
        bare_close(&b);
        t[6] = bench_now_ns();
        for (int p = 0; p < P_N; p++)
            phase[p] += t[p + 1] - t[p];
        continue;
    fail:
        bare_close(&b);
        return -1;
    }
    r->ns = (double)(bench_now_ns() - start) / o->create_count;
    cpu = bench_cpu_ns() - cpu;
    for (int p = 0; p < P_N; p++)
        bench_phase(r, names[p], (double)phase[p] / o->create_count);
    bench_phase(r, "(CPU time of the process)", (double)cpu / o->create_count);
    return 0;
}
