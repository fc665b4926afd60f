/* Machines: accelerator choice, lifetime, guest memory and device ranges. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"
#include "core/hostmem.h"
#include "core/machine.h"

#define ULL(x) ((unsigned long long)(x))

/* ---- accelerators ------------------------------------------------------- */

static const struct vx_accel_ops *accel_ops(vx_accel id)
{
    switch (id) {
#ifdef VX_HAVE_KVM
    case VX_ACCEL_KVM: return &vx_kvm_ops;
#endif
    case VX_ACCEL_TCG: return &vx_tcg_ops;
    default: return NULL;
    }
}

/* 1 if usable, else 0 with the reason in vx_last_error(). */
static int accel_usable(vx_accel id)
{
    const struct vx_accel_ops *ops = accel_ops(id);
    if (ops)
        return ops->available();
    if (id == VX_ACCEL_TCG)
        vxi_error(VX_ENOTSUP, "the tcg accelerator (the built-in translator) is not built yet");
    else
        vxi_error(VX_ENOTSUP, "this libvx was built without the kvm accelerator "
                  "(<linux/kvm.h> was missing at configure time)");
    return 0;
}

VX_API int vx_accel_available(vx_accel accel)
{
    if (accel == VX_ACCEL_AUTO)
        return accel_usable(VX_ACCEL_KVM) || accel_usable(VX_ACCEL_TCG);
    if (accel != VX_ACCEL_KVM && accel != VX_ACCEL_TCG)
        return 0;
    return accel_usable(accel);
}

/* AUTO: kvm where it runs guest ring 0 on the CPU, or where the guest runs
 * ring 3 only; otherwise the translator; a software KVM as the last resort
 * (until the translator is built it is the only way to run at all). */
static int choose_accel(vx_accel requested, uint64_t flags, vx_accel *out)
{
    if (requested == VX_ACCEL_AUTO) {
        const char *env = getenv("VX_ACCEL");
        if (env && *env) {
            if (!strcmp(env, "kvm"))
                requested = VX_ACCEL_KVM;
            else if (!strcmp(env, "tcg"))
                requested = VX_ACCEL_TCG;
            else if (strcmp(env, "auto"))
                return vxi_error(VX_EINVAL, "environment variable VX_ACCEL=\"%s\": "
                                 "expected kvm, tcg or auto", env);
        }
    }
    if (requested != VX_ACCEL_AUTO) {
        if (!accel_usable(requested))
            return vxi_error_prefix(VX_ENOTSUP, "accelerator %s is not available",
                                    requested == VX_ACCEL_KVM ? "kvm" : "tcg");
        *out = requested;
        return 0;
    }
    char kvm_reason[200] = "";
    int kvm = accel_usable(VX_ACCEL_KVM);
    if (!kvm)
        snprintf(kvm_reason, sizeof kvm_reason, "%s", vx_last_error());
    if (kvm && (accel_ops(VX_ACCEL_KVM)->ring0_native() || (flags & VX_MACHINE_USER_ONLY))) {
        *out = VX_ACCEL_KVM;
        return 0;
    }
    if (accel_usable(VX_ACCEL_TCG)) {
        *out = VX_ACCEL_TCG;
        return 0;
    }
    if (kvm) {
        *out = VX_ACCEL_KVM;
        return 0;
    }
    char tcg_reason[200];
    snprintf(tcg_reason, sizeof tcg_reason, "%s", vx_last_error());
    return vxi_error(VX_ENOTSUP, "no accelerator available: kvm: %s; tcg: %s", kvm_reason,
                     tcg_reason);
}

/* ---- machines ----------------------------------------------------------- */

#define KNOWN_MACHINE_FLAGS \
    (VX_MACHINE_USER_ONLY | VX_MACHINE_IGNORE_UNCLAIMED_IO | VX_MACHINE_IRQCHIP)

bool vxi_machine_running(const vx_machine *m)
{
    for (unsigned i = 0; i < m->vcpu_count; i++)
        if (atomic_load(&m->vcpus[i]->running))
            return true;
    return false;
}

/* Changes to memory and device ranges are made while no vCPU runs, or from
 * a callback of the machine's only running vCPU (a device moving its BAR):
 * then that vCPU is outside the accelerator and sees the change next. */
static int check_idle(const vx_machine *m, const char *what)
{
    const vx_vcpu *self = vx_vcpu_current();
    for (unsigned i = 0; i < m->vcpu_count; i++)
        if (m->vcpus[i] != self && atomic_load(&m->vcpus[i]->running))
            return vxi_error(VX_EBUSY, "%s: vCPU %u of this machine is running", what, i);
    return 0;
}

static void release_region(struct vx_region *r)
{
    if (r->owned)
        vxi_host_free(r->host, r->size, true);
}

VX_API int vx_machine_create(const vx_machine_opts *opts, vx_machine **out)
{
    if (!out)
        return vxi_error(VX_EINVAL, "vx_machine_create: out is NULL");
    *out = NULL;
    vx_machine_opts o = { .size = sizeof o };
    if (opts) {
        int rc = vxi_check_struct_size(opts, opts->size, sizeof *opts, "vx_machine_opts");
        if (rc)
            return rc;
        memcpy(&o, opts, sizeof o);
    }
    if (o.arch == 0)
        o.arch = VX_ARCH_X86_64;
    if (o.arch != VX_ARCH_X86_64)
        return vxi_error(VX_EINVAL, "vx_machine_opts.arch %d is not a vx_arch", (int)o.arch);
    if (o.accel != VX_ACCEL_AUTO && o.accel != VX_ACCEL_KVM && o.accel != VX_ACCEL_TCG)
        return vxi_error(VX_EINVAL, "vx_machine_opts.accel %d is not a vx_accel", (int)o.accel);
    if (o.vcpus == 0)
        o.vcpus = 1;
    if (o.vcpus > VX_MAX_VCPUS)
        return vxi_error(VX_EINVAL, "vx_machine_opts.vcpus %u is more than %u", o.vcpus,
                         VX_MAX_VCPUS);
    if (o.flags & ~KNOWN_MACHINE_FLAGS)
        return vxi_error(VX_EINVAL, "vx_machine_opts.flags has unknown bits 0x%llx",
                         ULL(o.flags & ~KNOWN_MACHINE_FLAGS));

    vx_accel id;
    int rc = choose_accel(o.accel, o.flags, &id);
    if (rc)
        return rc;

    vx_machine *m = calloc(1, sizeof *m);
    struct vx_vcpu **vcpus = calloc(o.vcpus, sizeof *vcpus);
    if (!m || !vcpus) {
        free(m);
        free(vcpus);
        return vxi_error(VX_ENOMEM, "vx_machine_create: out of memory");
    }
    m->ops = accel_ops(id);
    m->flags = o.flags;
    m->vcpus = vcpus;
    vx_as_init(&m->as);
    vx_io_bus_init(&m->pio);
    vx_io_bus_init(&m->mmio);

    rc = m->ops->machine_init(m);
    if (rc) {
        vx_io_bus_fini(&m->pio);
        vx_io_bus_fini(&m->mmio);
        vx_as_fini(&m->as);
        free(vcpus);
        free(m);
        return rc;
    }
    if (o.flags & VX_MACHINE_IRQCHIP) {
        rc = m->ops->irqchip_init(m);
        if (rc) {
            vx_machine_destroy(m);
            return rc;
        }
    }
    for (unsigned i = 0; i < o.vcpus; i++) {
        struct vx_vcpu *v = calloc(1, sizeof *v);
        if (!v) {
            rc = vxi_error(VX_ENOMEM, "vx_machine_create: out of memory");
            break;
        }
        v->machine = m;
        v->index = i;
        m->vcpus[i] = v;
        m->vcpu_count = i + 1;
        rc = m->ops->vcpu_init(v);
        if (rc) {
            m->vcpus[i] = NULL;
            m->vcpu_count = i;
            free(v);
            break;
        }
    }
    if (rc) {
        vx_machine_destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

void vxi_machine_shutdown(vx_machine *m, unsigned kind, uint32_t code)
{
    uint64_t none = 0;
    if (!atomic_compare_exchange_strong(&m->shutdown, &none, (uint64_t)kind << 32 | code))
        return; /* the first request stands */
    for (unsigned i = 0; i < m->vcpu_count; i++)
        vx_vcpu_stop(m->vcpus[i]);
}

VX_API int vx_irq_set(vx_machine *m, unsigned line, int level)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_irq_set: machine is NULL");
    if (line > 15)
        return vxi_error(VX_EINVAL, "vx_irq_set: line %u is not an ISA IRQ (0-15)", line);
    if (!(m->flags & VX_MACHINE_IRQCHIP))
        return vxi_error(VX_ENOTSUP, "vx_irq_set: the machine has no interrupt controller "
                         "(create it with VX_MACHINE_IRQCHIP)");
    return m->ops->irq_set(m, line, level != 0);
}

int vxi_irq_level_triggered(vx_machine *m, unsigned line)
{
    if (line > 15 || !(m->flags & VX_MACHINE_IRQCHIP) || !m->ops->irq_level_triggered)
        return vxi_error(VX_ENOTSUP, "line %u cannot be made level-triggered here", line);
    return m->ops->irq_level_triggered(m, line);
}

VX_API void vx_machine_destroy(vx_machine *m)
{
    if (!m)
        return;
    if (m->board_fini)
        m->board_fini(m->board);
    for (unsigned i = 0; i < m->vcpu_count; i++) {
        m->ops->vcpu_fini(m->vcpus[i]);
        free(m->vcpus[i]);
    }
    /* The accelerator lets go of guest memory before the memory goes. */
    m->ops->machine_fini(m);
    for (size_t i = 0; i < vx_as_count(&m->as); i++)
        release_region(vx_as_region(&m->as, i));
    vx_as_fini(&m->as);
    vx_io_bus_fini(&m->pio);
    vx_io_bus_fini(&m->mmio);
    free(m->vcpus);
    free(m);
}

VX_API vx_accel vx_machine_accel(const vx_machine *m)
{
    return m ? m->ops->id : VX_ACCEL_AUTO;
}

VX_API const char *vx_machine_accel_name(const vx_machine *m)
{
    return m ? m->ops->name : "none";
}

VX_API vx_vcpu *vx_machine_vcpu(vx_machine *m, unsigned index)
{
    if (!m || index >= m->vcpu_count)
        return NULL;
    return m->vcpus[index];
}

VX_API unsigned vx_machine_vcpu_count(const vx_machine *m)
{
    return m ? m->vcpu_count : 0;
}

/* ---- guest memory ------------------------------------------------------- */

/* [base, base + size) with size >= 1 stays below 2^64. */
static bool range_wraps(uint64_t base, uint64_t size)
{
    return size - 1 > UINT64_MAX - base;
}

VX_API int vx_memory_map(vx_machine *m, uint64_t gpa, uint64_t size, void *host, unsigned prot)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_memory_map: machine is NULL");
    if (size == 0 || (gpa | size) & (VX_PAGE_SIZE - 1))
        return vxi_error(VX_EINVAL, "vx_memory_map: gpa 0x%llx and size 0x%llx must be "
                         "non-zero multiples of 4 KiB", ULL(gpa), ULL(size));
    if (range_wraps(gpa, size))
        return vxi_error(VX_EINVAL, "vx_memory_map: 0x%llx+0x%llx wraps past 2^64",
                         ULL(gpa), ULL(size));
    if (size > SIZE_MAX)
        return vxi_error(VX_EINVAL, "vx_memory_map: size 0x%llx too large for this host",
                         ULL(size));
    if (!(prot & VX_MEM_READ) || (prot & ~VX_MEM_RWX))
        return vxi_error(VX_EINVAL, "vx_memory_map: prot 0x%x must include VX_MEM_READ and "
                         "only VX_MEM_* bits", prot);
    if ((uintptr_t)host & (VX_PAGE_SIZE - 1))
        return vxi_error(VX_EINVAL, "vx_memory_map: host memory %p is not page aligned", host);
    int rc = check_idle(m, "vx_memory_map");
    if (rc)
        return rc;
    const struct vx_region *c = vx_as_overlap(&m->as, gpa, size);
    if (c)
        return vxi_error(VX_EEXIST, "memory region 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
                         ULL(gpa), ULL(size), ULL(c->gpa), ULL(c->size));
    const struct vx_io_range *io = vx_io_bus_overlap(&m->mmio, gpa, size);
    if (io)
        return vxi_error(VX_EEXIST, "memory region 0x%llx+0x%llx overlaps the MMIO range "
                         "0x%llx+0x%llx", ULL(gpa), ULL(size), ULL(io->base), ULL(io->size));

    struct vx_region r = { .gpa = gpa, .size = size, .host = host, .prot = prot, .slot = -1 };
    if (!host) {
        void *p = vxi_host_alloc(size, true);
        if (!p)
            return vxi_error(VX_ENOMEM, "vx_memory_map: cannot allocate 0x%llx bytes of "
                             "guest memory", ULL(size));
        r.host = p;
        r.owned = true;
    }
    rc = vx_as_insert(&m->as, &r);
    if (rc) {
        release_region(&r);
        return vxi_error(rc, "vx_memory_map: out of memory");
    }
    struct vx_region *in = vx_as_find(&m->as, gpa);
    rc = m->ops->map(m, in);
    if (rc) {
        vx_as_remove(&m->as, gpa, size, &r);
        release_region(&r);
        return rc;
    }
    return 0;
}

VX_API int vx_memory_unmap(vx_machine *m, uint64_t gpa, uint64_t size)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_memory_unmap: machine is NULL");
    if (size == 0 || (gpa | size) & (VX_PAGE_SIZE - 1))
        return vxi_error(VX_EINVAL, "vx_memory_unmap: gpa 0x%llx and size 0x%llx must be "
                         "non-zero multiples of 4 KiB", ULL(gpa), ULL(size));
    int rc = check_idle(m, "vx_memory_unmap");
    if (rc)
        return rc;
    struct vx_region *in = vx_as_find(&m->as, gpa);
    if (!in || in->gpa != gpa || in->size != size)
        return vxi_error(VX_ENOENT, "vx_memory_unmap: no region 0x%llx+0x%llx is mapped",
                         ULL(gpa), ULL(size));
    rc = m->ops->unmap(m, in);
    if (rc)
        return rc;
    struct vx_region r;
    vx_as_remove(&m->as, gpa, size, &r);
    release_region(&r);
    return 0;
}

static int check_copy(vx_machine *m, uint64_t gpa, const void *buf, size_t len, const char *fn)
{
    if (!m)
        return vxi_error(VX_EINVAL, "%s: machine is NULL", fn);
    if (!buf && len)
        return vxi_error(VX_EINVAL, "%s: buffer is NULL", fn);
    uint64_t bad;
    if (len && (range_wraps(gpa, len) || !vx_as_covered(&m->as, gpa, len, 0, &bad)))
        return vxi_error(VX_ERANGE, "%s: guest-physical 0x%llx+0x%zx is not all mapped "
                         "memory", fn, ULL(gpa), len);
    return 0;
}

VX_API int vx_memory_read(vx_machine *m, uint64_t gpa, void *buf, size_t len)
{
    int rc = check_copy(m, gpa, buf, len, "vx_memory_read");
    return rc ? rc : vx_as_read(&m->as, gpa, buf, len);
}

VX_API int vx_memory_write(vx_machine *m, uint64_t gpa, const void *buf, size_t len)
{
    int rc = check_copy(m, gpa, buf, len, "vx_memory_write");
    if (rc)
        return rc;
    rc = vx_as_write(&m->as, gpa, buf, len, true);
    vxi_memory_written(m, gpa, len);
    return rc;
}

VX_API void *vx_memory_ptr(vx_machine *m, uint64_t gpa, size_t len)
{
    if (!m) {
        vxi_error(VX_EINVAL, "vx_memory_ptr: machine is NULL");
        return NULL;
    }
    void *p = vx_as_ptr(&m->as, gpa, len);
    if (!p)
        vxi_error(VX_ERANGE, "vx_memory_ptr: guest-physical 0x%llx+0x%zx is not inside one "
                  "mapped region", ULL(gpa), len);
    return p;
}

void *vxi_dma_ptr(vx_machine *m, uint64_t gpa, uint64_t len, unsigned need)
{
    if (len == 0 || range_wraps(gpa, len))
        return NULL;
    struct vx_region *r = vx_as_find(&m->as, gpa);
    if (!r || (r->prot & need) != need || len > r->size - (gpa - r->gpa))
        return NULL;
    return r->host + (gpa - r->gpa);
}

/* ---- device ranges ------------------------------------------------------ */

static int check_ops(const vx_io_ops *ops, const char *fn)
{
    if (!ops)
        return vxi_error(VX_EINVAL, "%s: ops is NULL", fn);
    return vxi_check_struct_size(ops, ops->size, sizeof *ops, "vx_io_ops");
}

VX_API int vx_pio_register(vx_machine *m, uint16_t port, uint32_t count, const vx_io_ops *ops,
                           void *opaque)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_pio_register: machine is NULL");
    int rc = check_ops(ops, "vx_pio_register");
    if (rc)
        return rc;
    if (count == 0 || (uint64_t)port + count > 0x10000)
        return vxi_error(VX_EINVAL, "vx_pio_register: ports 0x%x+%u must be at least one and "
                         "end at or below 0x10000", port, count);
    if ((rc = check_idle(m, "vx_pio_register")))
        return rc;
    const struct vx_io_range *c;
    rc = vx_io_bus_add(&m->pio, port, count, ops, opaque, &c);
    if (rc == VX_EEXIST)
        return vxi_error(rc, "ports 0x%x-0x%x overlap ports 0x%llx-0x%llx registered before",
                         port, port + count - 1, ULL(c->base), ULL(c->base + c->size - 1));
    if (rc)
        return vxi_error(rc, "vx_pio_register: out of memory");
    return 0;
}

VX_API int vx_mmio_register(vx_machine *m, uint64_t gpa, uint64_t size, const vx_io_ops *ops,
                            void *opaque)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_mmio_register: machine is NULL");
    int rc = check_ops(ops, "vx_mmio_register");
    if (rc)
        return rc;
    if (size == 0 || range_wraps(gpa, size))
        return vxi_error(VX_EINVAL, "vx_mmio_register: range 0x%llx+0x%llx is empty or wraps",
                         ULL(gpa), ULL(size));
    if ((rc = check_idle(m, "vx_mmio_register")))
        return rc;
    const struct vx_region *ram = vx_as_overlap(&m->as, gpa, size);
    if (ram)
        return vxi_error(VX_EEXIST, "MMIO range 0x%llx+0x%llx overlaps memory region "
                         "0x%llx+0x%llx", ULL(gpa), ULL(size), ULL(ram->gpa), ULL(ram->size));
    const struct vx_io_range *c;
    rc = vx_io_bus_add(&m->mmio, gpa, size, ops, opaque, &c);
    if (rc == VX_EEXIST)
        return vxi_error(rc, "MMIO range 0x%llx+0x%llx overlaps 0x%llx+0x%llx registered "
                         "before", ULL(gpa), ULL(size), ULL(c->base), ULL(c->size));
    if (rc)
        return vxi_error(rc, "vx_mmio_register: out of memory");
    return 0;
}

VX_API int vx_pio_unregister(vx_machine *m, uint16_t port)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_pio_unregister: machine is NULL");
    int rc = check_idle(m, "vx_pio_unregister");
    if (rc)
        return rc;
    if (vx_io_bus_remove(&m->pio, port))
        return vxi_error(VX_ENOENT, "vx_pio_unregister: no range starts at port 0x%x", port);
    return 0;
}

VX_API int vx_mmio_unregister(vx_machine *m, uint64_t gpa)
{
    if (!m)
        return vxi_error(VX_EINVAL, "vx_mmio_unregister: machine is NULL");
    int rc = check_idle(m, "vx_mmio_unregister");
    if (rc)
        return rc;
    if (vx_io_bus_remove(&m->mmio, gpa))
        return vxi_error(VX_ENOENT, "vx_mmio_unregister: no range starts at 0x%llx", ULL(gpa));
    return 0;
}
