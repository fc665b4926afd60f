/* vCPUs: registers, modes, running and stopping. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/machine.h"
#include "cpu/x86/mode.h"
#include "mmu/x86_walk.h"

/* The vCPU this thread is running. Set for the whole of vx_vcpu_run(), where
 * the only application code that runs on the thread is callbacks: cheaper
 * than setting it around each callback, and the same to the application. */
static _Thread_local vx_vcpu *current_vcpu;

VX_API vx_vcpu *vx_vcpu_current(void)
{
    return current_vcpu;
}

static int self_tid(void)
{
    return (int)syscall(SYS_gettid);
}

/* Register access is for a vCPU no other thread is running; its own thread
 * may look from inside a callback. */
static int check_vcpu(vx_vcpu *v, const void *p, const char *fn)
{
    if (!v || !p)
        return vxi_error(VX_EINVAL, "%s: %s is NULL", fn, v ? "argument" : "vcpu");
    if (atomic_load(&v->running) && atomic_load(&v->tid) != self_tid())
        return vxi_error(VX_EBUSY, "%s: vCPU %u is running on another thread", fn, v->index);
    return 0;
}

VX_API int vx_vcpu_get_regs(vx_vcpu *v, vx_x86_regs *r)
{
    int rc = check_vcpu(v, r, "vx_vcpu_get_regs");
    return rc ? rc : v->machine->ops->get_regs(v, r);
}

VX_API int vx_vcpu_set_regs(vx_vcpu *v, const vx_x86_regs *r)
{
    int rc = check_vcpu(v, r, "vx_vcpu_set_regs");
    return rc ? rc : v->machine->ops->set_regs(v, r);
}

VX_API int vx_vcpu_get_sregs(vx_vcpu *v, vx_x86_sregs *s)
{
    int rc = check_vcpu(v, s, "vx_vcpu_get_sregs");
    return rc ? rc : v->machine->ops->get_sregs(v, s);
}

VX_API int vx_vcpu_set_sregs(vx_vcpu *v, const vx_x86_sregs *s)
{
    int rc = check_vcpu(v, s, "vx_vcpu_set_sregs");
    return rc ? rc : v->machine->ops->set_sregs(v, s);
}

static int check_fpu(vx_vcpu *v, const vx_x86_fpu *f, const char *fn)
{
    int rc = check_vcpu(v, f, fn);
    if (rc)
        return rc;
    if (f->size < sizeof *f)
        return vxi_error(VX_EINVAL, "%s: vx_x86_fpu.size is %zu, expected at least %zu (set it "
                         "to sizeof(vx_x86_fpu))", fn, f->size, sizeof *f);
    return 0;
}

VX_API int vx_vcpu_get_fpu(vx_vcpu *v, vx_x86_fpu *f)
{
    int rc = check_fpu(v, f, "vx_vcpu_get_fpu");
    if (rc)
        return rc;
    size_t size = f->size;
    memset(f, 0, sizeof *f);
    f->size = size;
    return v->machine->ops->get_fpu(v, f);
}

VX_API int vx_vcpu_set_fpu(vx_vcpu *v, const vx_x86_fpu *f)
{
    int rc = check_fpu(v, f, "vx_vcpu_set_fpu");
    if (rc)
        return rc;
    if (f->mxcsr & ~0xffffu)
        return vxi_error(VX_EINVAL, "vx_vcpu_set_fpu: MXCSR 0x%x has reserved bits set (the "
                         "CPU allows 0xffff)", f->mxcsr);
    return v->machine->ops->set_fpu(v, f);
}

VX_API int vx_vcpu_get_msr(vx_vcpu *v, uint32_t index, uint64_t *value)
{
    int rc = check_vcpu(v, value, "vx_vcpu_get_msr");
    return rc ? rc : v->machine->ops->get_msr(v, index, value);
}

VX_API int vx_vcpu_set_msr(vx_vcpu *v, uint32_t index, uint64_t value)
{
    int rc = check_vcpu(v, v, "vx_vcpu_set_msr");
    return rc ? rc : v->machine->ops->set_msr(v, index, value);
}

VX_API int vx_vcpu_translate(vx_vcpu *v, uint64_t gva, uint64_t *gpa)
{
    int rc = check_vcpu(v, gpa, "vx_vcpu_translate");
    if (rc)
        return rc;
    vx_x86_sregs s;
    memset(&s, 0, sizeof s);
    if ((rc = v->machine->ops->get_sregs(v, &s)))
        return rc;
    struct vx_x86_paging p = { s.cr0, s.cr3, s.cr4, s.efer };
    struct vx_walk w;
    uint32_t err;
    if (!vx_x86_walk(&v->machine->as, &p, gva, VX_WALK_PROBE, &w, &err))
        return vxi_error(VX_ENOENT, "vx_vcpu_translate: 0x%llx is not mapped (a supervisor "
                         "read would raise #PF with error code 0x%x)",
                         (unsigned long long)gva, err);
    *gpa = w.gpa;
    return 0;
}

VX_API int vx_vcpu_set_mode(vx_vcpu *v, vx_cpu_mode mode, uint64_t tables_gpa)
{
    int rc = check_vcpu(v, v, "vx_vcpu_set_mode");
    if (rc)
        return rc;
    if (mode != VX_MODE_REAL && mode != VX_MODE_PROT32 && mode != VX_MODE_LONG64)
        return vxi_error(VX_EINVAL, "vx_vcpu_set_mode: %d is not a vx_cpu_mode", (int)mode);
    vx_machine *m = v->machine;
    if (mode != VX_MODE_REAL) {
        if (tables_gpa & (VX_PAGE_SIZE - 1))
            return vxi_error(VX_EINVAL, "vx_vcpu_set_mode: tables_gpa 0x%llx is not 4 KiB "
                             "aligned", (unsigned long long)tables_gpa);
        uint64_t bad;
        if (tables_gpa > UINT64_MAX - VX_X86_MODE_TABLES_SIZE ||
            !vx_as_covered(&m->as, tables_gpa, VX_X86_MODE_TABLES_SIZE,
                           VX_MEM_READ | VX_MEM_WRITE, &bad))
            return vxi_error(VX_ERANGE, "vx_vcpu_set_mode: tables at 0x%llx+0x%x are not all "
                             "writable RAM (0x%llx is not)", (unsigned long long)tables_gpa,
                             VX_X86_MODE_TABLES_SIZE, (unsigned long long)bad);
    }
    vx_x86_sregs s;
    vx_x86_regs r;
    if ((rc = m->ops->get_sregs(v, &s)) || (rc = m->ops->get_regs(v, &r)))
        return rc;
    uint8_t *tables = malloc(VX_X86_MODE_TABLES_SIZE);
    if (!tables)
        return vxi_error(VX_ENOMEM, "vx_vcpu_set_mode: out of memory");
    int n = x86_flat_mode(mode, tables_gpa, &s, tables);
    if (n > 0) {
        rc = vx_as_write(&m->as, tables_gpa, tables, (size_t)n, true);
        vxi_memory_written(m, tables_gpa, (uint64_t)n);
    }
    free(tables);
    if (rc)
        return vxi_error(rc, "vx_vcpu_set_mode: cannot write the tables at 0x%llx",
                         (unsigned long long)tables_gpa);
    if ((rc = m->ops->set_sregs(v, &s)))
        return rc;
    r.rflags = 0x2;
    return m->ops->set_regs(v, &r);
}

VX_API int vx_vcpu_run(vx_vcpu *v, vx_exit *exit)
{
    if (!v || !exit)
        return vxi_error(VX_EINVAL, "vx_vcpu_run: %s is NULL", v ? "exit" : "vcpu");
    if (exit->size < sizeof *exit)
        return vxi_error(VX_EINVAL, "vx_exit.size is %zu, expected at least %zu (set it to "
                         "sizeof(vx_exit))", exit->size, sizeof *exit);
    int idle = 0;
    if (!atomic_compare_exchange_strong(&v->running, &idle, 1))
        return vxi_error(VX_EBUSY, "vx_vcpu_run: vCPU %u is already running", v->index);
    atomic_store(&v->tid, self_tid());
    vx_vcpu *outer = current_vcpu; /* a callback may run another machine's vCPU */
    current_vcpu = v;
    int rc = v->machine->ops->run(v, exit);
    current_vcpu = outer;
    atomic_store(&v->tid, 0);
    atomic_store(&v->running, 0);
    return rc;
}

VX_API int vx_vcpu_stop(vx_vcpu *v)
{
    /* Async-signal-safe: atomics and the accelerator's kick only. */
    if (!v)
        return VX_EINVAL;
    atomic_store(&v->stop_requested, 1);
    v->machine->ops->kick(v);
    return 0;
}

VX_API int vx_vcpu_nmi(vx_vcpu *v)
{
    /* Async-signal-safe, as vx_vcpu_stop: the kick makes a running vCPU
     * look (kvm re-enters KVM_RUN after injecting it). */
    if (!v)
        return VX_EINVAL;
    atomic_store(&v->nmi_pending, 1);
    v->machine->ops->kick(v);
    return 0;
}

VX_API int vx_vcpu_set_budget(vx_vcpu *v, uint64_t instructions)
{
    if (!v)
        return vxi_error(VX_EINVAL, "vx_vcpu_set_budget: vcpu is NULL");
    if (!v->machine->ops->set_budget)
        return vxi_error(VX_ENOTSUP, "instruction budgets need the tcg accelerator; %s "
                         "cannot count guest instructions", v->machine->ops->name);
    return v->machine->ops->set_budget(v, instructions);
}

VX_API uint64_t vx_vcpu_instructions(vx_vcpu *v)
{
    if (!v || !v->machine->ops->instructions)
        return 0;
    return v->machine->ops->instructions(v);
}

VX_API unsigned vx_vcpu_index(const vx_vcpu *v)
{
    return v ? v->index : 0;
}

VX_API vx_machine *vx_vcpu_machine(vx_vcpu *v)
{
    return v ? v->machine : NULL;
}
