/*
 * The kvm accelerator: Linux KVM through its ioctls.
 *
 * Once per process: /dev/kvm, the kvm_run size, the supported CPUID and the
 * capabilities. Per machine: a VM whose memslots mirror the address space.
 * Per vCPU: a KVM vCPU and its shared kvm_run page. The run loop handles
 * port and MMIO exits through vx_io_dispatch() and re-enters the guest
 * without returning; only what the application must see leaves it.
 *
 * Teardown of a VM (freeing its kernel state takes ~0.5 ms) is handed to a
 * background thread so vx_machine_destroy() does not wait for it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/io.h"
#include "core/machine.h"

/* The signal that kicks a vCPU thread out of KVM_RUN. Its handler does
 * nothing: the point is that KVM_RUN returns with EINTR. */
#define KICK_SIGNAL (SIGRTMIN + 5)

#define ULL(x) ((unsigned long long)(x))

/* ---- once per process ---------------------------------------------------- */

static struct {
    pthread_once_t once;
    int fd;                   /* /dev/kvm, or -1 */
    int err;                  /* VX_E* when fd < 0 */
    char reason[256];         /* why kvm is unusable */
    int run_size;             /* mmap size of struct kvm_run */
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
    int max_slots;
    bool readonly_mem;        /* KVM_MEM_READONLY works: ROM without tricks */
    bool ring0_native;        /* kvm_intel / kvm_amd, not a software KVM */
    bool intel;
} kvm = { .once = PTHREAD_ONCE_INIT, .fd = -1 };

static bool module_loaded(const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/sys/module/%s", name);
    struct stat st;
    return stat(path, &st) == 0;
}

static void kick_handler(int sig)
{
    (void)sig;
}

static void kvm_init_once(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        kvm.err = VX_ENOTSUP;
        snprintf(kvm.reason, sizeof kvm.reason, "cannot open /dev/kvm: %s", strerror(errno));
        return;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        snprintf(kvm.reason, sizeof kvm.reason, "/dev/kvm has API version %d, expected %d",
                 api, KVM_API_VERSION);
        goto fail;
    }
    static const struct { int cap; const char *name; } needed[] = {
        { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
        { KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
        { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (ioctl(fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
            snprintf(kvm.reason, sizeof kvm.reason, "KVM lacks %s", needed[i].name);
            goto fail;
        }
    kvm.run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm.run_size < (int)sizeof(struct kvm_run)) {
        snprintf(kvm.reason, sizeof kvm.reason, "KVM_GET_VCPU_MMAP_SIZE failed");
        goto fail;
    }
    kvm.max_slots = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    if (kvm.max_slots <= 0)
        kvm.max_slots = 32;
    kvm.readonly_mem = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    for (int n = 256; n <= 4096; n *= 2) { /* one call where a host has < 256 leaves */
        struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof c->entries[0]);
        if (!c) {
            snprintf(kvm.reason, sizeof kvm.reason, "out of memory");
            goto fail;
        }
        c->nent = n;
        if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            kvm.cpuid = c;
            break;
        }
        free(c);
        if (errno != E2BIG) {
            snprintf(kvm.reason, sizeof kvm.reason, "KVM_GET_SUPPORTED_CPUID: %s",
                     strerror(errno));
            goto fail;
        }
    }
    if (!kvm.cpuid) {
        snprintf(kvm.reason, sizeof kvm.reason, "KVM_GET_SUPPORTED_CPUID: too many entries");
        goto fail;
    }
    kvm.intel = module_loaded("kvm_intel");
    kvm.ring0_native = (kvm.intel || module_loaded("kvm_amd")) && !module_loaded("kvm_pvm");

    /* A realtime signal's default action kills the process, so the kick
     * signal needs a handler; keep one the application installed. */
    struct sigaction old;
    if (sigaction(KICK_SIGNAL, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(KICK_SIGNAL, &sa, NULL);
    }
    kvm.fd = fd;
    return;
fail:
    kvm.err = VX_EACCEL;
    close(fd);
}

static int kvm_available(void)
{
    pthread_once(&kvm.once, kvm_init_once);
    if (kvm.fd < 0) {
        vxi_error(kvm.err, "%s", kvm.reason);
        return 0;
    }
    return 1;
}

static int kvm_ring0_native(void)
{
    return kvm_available() && kvm.ring0_native;
}

/* ---- background teardown ------------------------------------------------- */

struct reap_job {
    struct reap_job *next;
    int vm_fd;
    unsigned nvcpus;
    struct { int fd; void *run; } vcpu[];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* work queued */
    pthread_cond_t idle;  /* queue empty and nothing in progress */
    struct reap_job *head;
    bool busy;            /* a job is being torn down */
    pid_t owner; /* the process the reaper thread lives in (fork leaves it behind) */
} reaper = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
             NULL, false, 0 };

static void reap(struct reap_job *j)
{
    for (unsigned i = 0; i < j->nvcpus; i++) {
        if (j->vcpu[i].run)
            munmap(j->vcpu[i].run, (size_t)kvm.run_size);
        if (j->vcpu[i].fd >= 0)
            close(j->vcpu[i].fd);
    }
    if (j->vm_fd >= 0)
        close(j->vm_fd);
    free(j);
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&reaper.lock);
    for (;;) {
        while (!reaper.head)
            pthread_cond_wait(&reaper.wake, &reaper.lock);
        struct reap_job *j = reaper.head;
        reaper.head = j->next;
        reaper.busy = true;
        pthread_mutex_unlock(&reaper.lock);
        reap(j);
        pthread_mutex_lock(&reaper.lock);
        reaper.busy = false;
        if (!reaper.head)
            pthread_cond_broadcast(&reaper.idle);
    }
    return NULL;
}

/* At exit, let queued teardowns finish. A VM owns kernel tasks that belong
 * to this process (kvm-nx-lpage-recovery); whatever stops all the process's
 * threads at exit (LeakSanitizer, a debugger) would freeze them while the
 * reaper waits inside close() for them: a deadlock. Draining first avoids it. */
static void reaper_drain(void)
{
    pthread_mutex_lock(&reaper.lock);
    if (reaper.owner == getpid())
        while (reaper.head || reaper.busy)
            pthread_cond_wait(&reaper.idle, &reaper.lock);
    pthread_mutex_unlock(&reaper.lock);
}

/* A fork while the reaper holds its lock would leave the child's copy
 * locked forever. */
static void reaper_prefork(void)
{
    pthread_mutex_lock(&reaper.lock);
}

static void reaper_postfork(void)
{
    pthread_mutex_unlock(&reaper.lock);
}

static void reap_later(struct reap_job *j)
{
    pthread_mutex_lock(&reaper.lock);
    if (reaper.owner != getpid()) {
        pthread_t t;
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        /* The reaper must not take the application's signals. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&t, &attr, reaper_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pthread_mutex_unlock(&reaper.lock);
            reap(j);
            return;
        }
        if (!reaper.owner) {
            atexit(reaper_drain);
            pthread_atfork(reaper_prefork, reaper_postfork, reaper_postfork);
        }
        reaper.owner = getpid();
        reaper.head = NULL; /* jobs queued before a fork belong to the parent */
        reaper.busy = false;
    }
    j->next = reaper.head;
    reaper.head = j;
    pthread_cond_signal(&reaper.wake);
    pthread_mutex_unlock(&reaper.lock);
}

/* ---- machines and memory ------------------------------------------------- */

struct kvm_machine {
    int vm_fd;
    unsigned char *slot_used; /* one byte per slot number */
    int nslots;
    unsigned ndead;           /* vCPUs already finished, waiting for the reaper */
    struct { int fd; void *run; } dead[VX_MAX_VCPUS];
};

struct kvm_vcpu {
    int fd;
    struct kvm_run *run;
    /* An exit handed to the application that the next run() completes, or
     * an access whose callback failed, which the next run() makes again. */
    enum { PENDING_NONE, PENDING_IO, PENDING_MMIO, RETRY_IO, RETRY_MMIO } pending;
    uint32_t io_next; /* the string-I/O element the application was asked about */
};

static int kvm_machine_init(vx_machine *m)
{
    if (!kvm_available())
        return VX_ENOTSUP;
    struct kvm_machine *km = calloc(1, sizeof *km);
    if (!km)
        return vxi_error(VX_ENOMEM, "out of memory");
    km->vm_fd = ioctl(kvm.fd, KVM_CREATE_VM, 0);
    if (km->vm_fd < 0) {
        int e = errno;
        free(km);
        return vxi_error(VX_EACCEL, "KVM_CREATE_VM: %s", strerror(e));
    }
    /* VMX without unrestricted guest runs real mode through a TSS of its
     * own; place it where guests rarely put RAM (QEMU's choice too). */
    if (kvm.intel)
        ioctl(km->vm_fd, KVM_SET_TSS_ADDR, 0xfeffd000ul);
    m->accel = km;
    return 0;
}

/* Which irqchip inputs each ISA line (KVM's GSI) drives: the PIC pin of
 * the same number (2 is the cascade: none) and the I/O APIC input of the
 * same number, except that the PIT's line 0 is input 2, as on every PC
 * and as the pc board's ACPI tables say (KVM's default sends it to 0). */
static int kvm_irq_routing(struct kvm_machine *km)
{
    enum { LINES = 24 };
    struct kvm_irq_routing *r =
        calloc(1, sizeof *r + 2 * LINES * sizeof(struct kvm_irq_routing_entry));
    if (!r)
        return vxi_error(VX_ENOMEM, "out of memory");
    unsigned n = 0;
    for (unsigned line = 0; line < LINES; line++) {
        if (line == 2)
            continue;
        if (line < 16) {
            struct kvm_irq_routing_entry *e = &r->entries[n++];
            e->gsi = line;
            e->type = KVM_IRQ_ROUTING_IRQCHIP;
            e->u.irqchip.irqchip = line < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
            e->u.irqchip.pin = line & 7;
        }
        struct kvm_irq_routing_entry *e = &r->entries[n++];
        e->gsi = line;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        e->u.irqchip.pin = line ? line : 2;
    }
    r->nr = n;
    int rc = 0;
    if (ioctl(km->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
        rc = vxi_error(VX_EACCEL, "KVM_SET_GSI_ROUTING: %s", strerror(errno));
    free(r);
    return rc;
}

/* KVM's in-kernel PIC pair, IOAPIC and PIT. The PIC starts as libvx's
 * userspace model does (a PC BIOS's setup), not uninitialised as KVM
 * leaves it, so guests see the same machine on both accelerators. */
static int kvm_irqchip_init(vx_machine *m)
{
    struct kvm_machine *km = m->accel;
    if (ioctl(km->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return vxi_error(VX_EACCEL, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
    int rc = kvm_irq_routing(km);
    if (rc)
        return rc;
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(km->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return vxi_error(VX_EACCEL, "KVM_CREATE_PIT2: %s", strerror(errno));
    for (unsigned chip = KVM_IRQCHIP_PIC_MASTER; chip <= KVM_IRQCHIP_PIC_SLAVE; chip++) {
        struct kvm_irqchip ic = { .chip_id = chip };
        if (ioctl(km->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
            return vxi_error(VX_EACCEL, "KVM_GET_IRQCHIP: %s", strerror(errno));
        struct kvm_pic_state *p = &ic.chip.pic;
        p->irq_base = chip == KVM_IRQCHIP_PIC_MASTER ? 0x08 : 0x70;
        p->imr = chip == KVM_IRQCHIP_PIC_MASTER ? 0xfb : 0xff;
        p->init4 = 1;
        p->init_state = 0;
        p->irr = p->isr = 0;
        if (ioctl(km->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
            return vxi_error(VX_EACCEL, "KVM_SET_IRQCHIP: %s", strerror(errno));
    }
    return 0;
}

static int kvm_irq_set(vx_machine *m, unsigned line, int level)
{
    struct kvm_machine *km = m->accel;
    struct kvm_irq_level l = { .irq = line, .level = (uint32_t)level };
    if (ioctl(km->vm_fd, KVM_IRQ_LINE, &l) < 0)
        return vxi_error(VX_EACCEL, "KVM_IRQ_LINE %u: %s", line, strerror(errno));
    return 0;
}

static int kvm_irq_level_triggered(vx_machine *m, unsigned line)
{
    struct kvm_machine *km = m->accel;
    struct kvm_irqchip ic = { .chip_id = line < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE };
    if (ioctl(km->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
        return vxi_error(VX_EACCEL, "KVM_GET_IRQCHIP: %s", strerror(errno));
    ic.chip.pic.elcr |= (uint8_t)(1u << (line & 7));
    if (ioctl(km->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
        return vxi_error(VX_EACCEL, "KVM_SET_IRQCHIP: %s", strerror(errno));
    return 0;
}

static void kvm_machine_fini(vx_machine *m)
{
    struct kvm_machine *km = m->accel;
    if (!km)
        return;
    struct reap_job *j = malloc(sizeof *j + km->ndead * sizeof j->vcpu[0]);
    if (j) {
        j->vm_fd = km->vm_fd;
        j->nvcpus = km->ndead;
        memcpy(j->vcpu, km->dead, km->ndead * sizeof j->vcpu[0]);
        reap_later(j);
    } else {
        for (unsigned i = 0; i < km->ndead; i++) {
            munmap(km->dead[i].run, (size_t)kvm.run_size);
            close(km->dead[i].fd);
        }
        close(km->vm_fd);
    }
    free(km->slot_used);
    free(km);
    m->accel = NULL;
}

static int kvm_map(vx_machine *m, struct vx_region *r)
{
    struct kvm_machine *km = m->accel;
    if (!(r->prot & VX_MEM_WRITE) && !kvm.readonly_mem)
        return vxi_error(VX_ENOTSUP, "read-only memory (ROM) at 0x%llx needs "
                         "KVM_CAP_READONLY_MEM, which this KVM lacks", ULL(r->gpa));
    int slot = 0;
    while (slot < km->nslots && km->slot_used[slot])
        slot++;
    if (slot == km->nslots) {
        if (km->nslots >= kvm.max_slots)
            return vxi_error(VX_ENOMEM, "KVM has no free memory slot (it has %d)",
                             kvm.max_slots);
        int n = km->nslots ? km->nslots * 2 : 16;
        if (n > kvm.max_slots)
            n = kvm.max_slots;
        unsigned char *s = realloc(km->slot_used, (size_t)n);
        if (!s)
            return vxi_error(VX_ENOMEM, "out of memory");
        memset(s + km->nslots, 0, (size_t)(n - km->nslots));
        km->slot_used = s;
        km->nslots = n;
    }
    struct kvm_userspace_memory_region mr = {
        .slot = (uint32_t)slot,
        .flags = (r->prot & VX_MEM_WRITE) ? 0 : KVM_MEM_READONLY,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uintptr_t)r->host,
    };
    if (ioctl(km->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
        return vxi_error(VX_EACCEL, "KVM_SET_USER_MEMORY_REGION 0x%llx+0x%llx: %s",
                         ULL(r->gpa), ULL(r->size), strerror(errno));
    km->slot_used[slot] = 1;
    r->slot = slot;
    return 0;
}

static int kvm_unmap(vx_machine *m, struct vx_region *r)
{
    struct kvm_machine *km = m->accel;
    struct kvm_userspace_memory_region mr = { .slot = (uint32_t)r->slot };
    if (ioctl(km->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
        return vxi_error(VX_EACCEL, "KVM_SET_USER_MEMORY_REGION (delete 0x%llx+0x%llx): %s",
                         ULL(r->gpa), ULL(r->size), strerror(errno));
    km->slot_used[r->slot] = 0;
    r->slot = -1;
    return 0;
}

/* ---- vCPUs --------------------------------------------------------------- */

static void set_cpu_id(struct kvm_cpuid2 *c, unsigned id)
{
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffffu) | (id << 24);
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = id; /* x2APIC id */
    }
}

static int kvm_vcpu_init(vx_vcpu *v)
{
    struct kvm_machine *km = v->machine->accel;
    struct kvm_vcpu *k = calloc(1, sizeof *k);
    if (!k)
        return vxi_error(VX_ENOMEM, "out of memory");
    k->fd = ioctl(km->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
    if (k->fd < 0) {
        int e = errno;
        free(k);
        return vxi_error(VX_EACCEL, "KVM_CREATE_VCPU %u: %s", v->index, strerror(e));
    }
    size_t csize = sizeof *kvm.cpuid + kvm.cpuid->nent * sizeof kvm.cpuid->entries[0];
    struct kvm_cpuid2 *c = malloc(csize);
    int rc = 0;
    if (!c) {
        rc = vxi_error(VX_ENOMEM, "out of memory");
    } else {
        memcpy(c, kvm.cpuid, csize);
        set_cpu_id(c, v->index);
        if (ioctl(k->fd, KVM_SET_CPUID2, c) < 0)
            rc = vxi_error(VX_EACCEL, "KVM_SET_CPUID2: %s", strerror(errno));
        free(c);
    }
    if (!rc) {
        k->run = mmap(NULL, (size_t)kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, 0);
        if (k->run == MAP_FAILED) {
            k->run = NULL;
            rc = vxi_error(VX_EACCEL, "mmap of kvm_run: %s", strerror(errno));
        }
    }
    if (rc) {
        close(k->fd);
        free(k);
        return rc;
    }
    v->accel = k;
    return 0;
}

static void kvm_vcpu_fini(vx_vcpu *v)
{
    struct kvm_machine *km = v->machine->accel;
    struct kvm_vcpu *k = v->accel;
    if (!k)
        return;
    km->dead[km->ndead].fd = k->fd;
    km->dead[km->ndead].run = k->run;
    km->ndead++;
    free(k);
    v->accel = NULL;
}

/* ---- registers ----------------------------------------------------------- */

static int ioctl_error(const char *what)
{
    return vxi_error(VX_EACCEL, "%s: %s", what, strerror(errno));
}

static int kvm_get_regs(vx_vcpu *v, vx_x86_regs *r)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_regs kr;
    if (ioctl(k->fd, KVM_GET_REGS, &kr) < 0)
        return ioctl_error("KVM_GET_REGS");
    *r = (vx_x86_regs){
        kr.rax, kr.rbx, kr.rcx, kr.rdx, kr.rsi, kr.rdi, kr.rsp, kr.rbp,
        kr.r8, kr.r9, kr.r10, kr.r11, kr.r12, kr.r13, kr.r14, kr.r15,
        kr.rip, kr.rflags,
    };
    return 0;
}

static int kvm_set_regs(vx_vcpu *v, const vx_x86_regs *r)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_regs kr = {
        r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
        r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
        r->rip, r->rflags | 2,
    };
    if (ioctl(k->fd, KVM_SET_REGS, &kr) < 0)
        return ioctl_error("KVM_SET_REGS");
    return 0;
}

static void seg_from_kvm(vx_x86_segment *d, const struct kvm_segment *s)
{
    *d = (vx_x86_segment){
        .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
        .present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
        .g = s->g, .avl = s->avl,
    };
}

static void seg_to_kvm(struct kvm_segment *d, const vx_x86_segment *s)
{
    *d = (struct kvm_segment){
        .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
        .present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
        .g = s->g, .avl = s->avl, .unusable = !s->present,
    };
}

static int kvm_get_sregs(vx_vcpu *v, vx_x86_sregs *s)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_sregs ks;
    if (ioctl(k->fd, KVM_GET_SREGS, &ks) < 0)
        return ioctl_error("KVM_GET_SREGS");
    seg_from_kvm(&s->cs, &ks.cs);
    seg_from_kvm(&s->ds, &ks.ds);
    seg_from_kvm(&s->es, &ks.es);
    seg_from_kvm(&s->fs, &ks.fs);
    seg_from_kvm(&s->gs, &ks.gs);
    seg_from_kvm(&s->ss, &ks.ss);
    seg_from_kvm(&s->tr, &ks.tr);
    seg_from_kvm(&s->ldt, &ks.ldt);
    s->gdt = (vx_x86_dtable){ ks.gdt.base, ks.gdt.limit };
    s->idt = (vx_x86_dtable){ ks.idt.base, ks.idt.limit };
    s->cr0 = ks.cr0;
    s->cr2 = ks.cr2;
    s->cr3 = ks.cr3;
    s->cr4 = ks.cr4;
    s->cr8 = ks.cr8;
    s->efer = ks.efer;
    s->apic_base = ks.apic_base;
    return 0;
}

static int kvm_set_sregs(vx_vcpu *v, const vx_x86_sregs *s)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_sregs ks;
    /* Read first: the pending-interrupt bitmap is KVM's, not ours. */
    if (ioctl(k->fd, KVM_GET_SREGS, &ks) < 0)
        return ioctl_error("KVM_GET_SREGS");
    seg_to_kvm(&ks.cs, &s->cs);
    seg_to_kvm(&ks.ds, &s->ds);
    seg_to_kvm(&ks.es, &s->es);
    seg_to_kvm(&ks.fs, &s->fs);
    seg_to_kvm(&ks.gs, &s->gs);
    seg_to_kvm(&ks.ss, &s->ss);
    seg_to_kvm(&ks.tr, &s->tr);
    seg_to_kvm(&ks.ldt, &s->ldt);
    ks.gdt.base = s->gdt.base;
    ks.gdt.limit = s->gdt.limit;
    ks.idt.base = s->idt.base;
    ks.idt.limit = s->idt.limit;
    ks.cr0 = s->cr0;
    ks.cr2 = s->cr2;
    ks.cr3 = s->cr3;
    ks.cr4 = s->cr4;
    ks.cr8 = s->cr8;
    ks.efer = s->efer;
    ks.apic_base = s->apic_base;
    if (ioctl(k->fd, KVM_SET_SREGS, &ks) < 0)
        return vxi_error(VX_EINVAL, "KVM_SET_SREGS refused the state (cr0 0x%llx cr4 0x%llx "
                         "efer 0x%llx): %s", ULL(s->cr0), ULL(s->cr4), ULL(s->efer),
                         strerror(errno));
    return 0;
}

struct one_msr {
    struct kvm_msrs hdr;
    struct kvm_msr_entry entry;
};

/* The x87/SSE state goes through KVM_GET_XSAVE/KVM_SET_XSAVE, whose first
 * 512 bytes are the FXSAVE layout: KVM_GET_FPU/KVM_SET_FPU would do, but
 * some KVMs (kvm_pvm here) neither report nor take MXCSR through them. A
 * KVM without KVM_CAP_XSAVE gets KVM_GET_FPU/KVM_SET_FPU. */
static int kvm_get_fpu(vx_vcpu *v, vx_x86_fpu *f)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_xsave xs;
    if (ioctl(k->fd, KVM_GET_XSAVE, &xs) == 0) {
        const uint8_t *img = (const uint8_t *)xs.region;
        memcpy(&f->fcw, img, 2);
        memcpy(&f->fsw, img + 2, 2);
        f->ftw = img[4];
        memcpy(&f->fop, img + 6, 2);
        memcpy(&f->fip, img + 8, 8);
        memcpy(&f->fdp, img + 16, 8);
        memcpy(&f->mxcsr, img + 24, 4);
        memcpy(&f->mxcsr_mask, img + 28, 4);
        if (!f->mxcsr_mask)
            f->mxcsr_mask = 0xffbf; /* the SDM's default: no DAZ */
        memcpy(f->st, img + 32, sizeof f->st);
        memcpy(f->xmm, img + 160, sizeof f->xmm);
        return 0;
    }
    struct kvm_fpu kf;
    if (ioctl(k->fd, KVM_GET_FPU, &kf) < 0)
        return ioctl_error("KVM_GET_FPU");
    f->fcw = kf.fcw;
    f->fsw = kf.fsw;
    f->ftw = kf.ftwx;
    f->fop = kf.last_opcode;
    f->fip = kf.last_ip;
    f->fdp = kf.last_dp;
    f->mxcsr = kf.mxcsr;
    f->mxcsr_mask = 0xffff;
    memcpy(f->st, kf.fpr, sizeof f->st);
    memcpy(f->xmm, kf.xmm, sizeof f->xmm);
    return 0;
}

static int kvm_set_fpu(vx_vcpu *v, const vx_x86_fpu *f)
{
    struct kvm_vcpu *k = v->accel;
    struct kvm_xsave xs;
    if (ioctl(k->fd, KVM_GET_XSAVE, &xs) == 0) {
        uint8_t *img = (uint8_t *)xs.region;
        memcpy(img, &f->fcw, 2);
        memcpy(img + 2, &f->fsw, 2);
        img[4] = f->ftw;
        memcpy(img + 6, &f->fop, 2);
        memcpy(img + 8, &f->fip, 8);
        memcpy(img + 16, &f->fdp, 8);
        memcpy(img + 24, &f->mxcsr, 4);
        memcpy(img + 32, f->st, sizeof f->st);
        memcpy(img + 160, f->xmm, sizeof f->xmm);
        img[512] |= 3; /* XSTATE_BV: x87 and SSE state are in the image */
        if (ioctl(k->fd, KVM_SET_XSAVE, &xs) < 0)
            return vxi_error(VX_EINVAL, "KVM_SET_XSAVE refused the x87/SSE state: %s",
                             strerror(errno));
        return 0;
    }
    struct kvm_fpu kf;
    memset(&kf, 0, sizeof kf);
    kf.fcw = f->fcw;
    kf.fsw = f->fsw;
    kf.ftwx = f->ftw;
    kf.last_opcode = f->fop;
    kf.last_ip = f->fip;
    kf.last_dp = f->fdp;
    kf.mxcsr = f->mxcsr;
    memcpy(kf.fpr, f->st, sizeof kf.fpr);
    memcpy(kf.xmm, f->xmm, sizeof kf.xmm);
    if (ioctl(k->fd, KVM_SET_FPU, &kf) < 0)
        return ioctl_error("KVM_SET_FPU");
    return 0;
}

static int kvm_get_msr(vx_vcpu *v, uint32_t index, uint64_t *value)
{
    struct kvm_vcpu *k = v->accel;
    struct one_msr m = { .hdr.nmsrs = 1, .entry.index = index };
    int n = ioctl(k->fd, KVM_GET_MSRS, &m);
    if (n < 0)
        return ioctl_error("KVM_GET_MSRS");
    if (n != 1)
        return vxi_error(VX_ENOTSUP, "MSR 0x%x cannot be read under kvm", index);
    *value = m.entry.data;
    return 0;
}

static int kvm_set_msr(vx_vcpu *v, uint32_t index, uint64_t value)
{
    struct kvm_vcpu *k = v->accel;
    struct one_msr m = { .hdr.nmsrs = 1, .entry.index = index, .entry.data = value };
    int n = ioctl(k->fd, KVM_SET_MSRS, &m);
    if (n < 0)
        return ioctl_error("KVM_SET_MSRS");
    if (n != 1)
        return vxi_error(VX_ENOTSUP, "MSR 0x%x cannot be set to 0x%llx under kvm", index,
                         ULL(value));
    return 0;
}

/* ---- running ------------------------------------------------------------- */

static void kvm_kick(vx_vcpu *v)
{
    struct kvm_vcpu *k = v->accel;
    if (!k)
        return;
    /* Order matters (see the top of kvm_run): the stop flag is already set;
     * immediate_exit catches a vCPU about to enter, the signal one inside. */
    ((volatile struct kvm_run *)k->run)->immediate_exit = 1;
    int tid = atomic_load(&v->tid);
    if (tid)
        syscall(SYS_tgkill, getpid(), tid, KICK_SIGNAL);
}

/* Fill *exit with VX_EXIT_INTERNAL; the detail is already in vx_last_error(). */
static int internal(vx_exit *exit)
{
    exit->reason = VX_EXIT_INTERNAL;
    return 1;
}

/* Handle the elements of a KVM_EXIT_IO from k->io_next on. Returns 0 when all
 * are done, 1 when *exit is for the application. */
static int handle_io(vx_vcpu *v, struct kvm_vcpu *k, vx_exit *exit)
{
    struct kvm_run *run = k->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = k->io_next; i < run->io.count; i++) {
        struct vx_io io = { .addr = run->io.port, .space = VX_IO_PIO, .len = (uint8_t)size,
                            .is_write = out };
        if (out)
            memcpy(&io.value, data + i * size, size);
        int rc = vx_io_dispatch(v, &io);
        if (rc == VX_IO_UNCLAIMED) {
            if (v->machine->flags & VX_MACHINE_IGNORE_UNCLAIMED_IO) {
                io.value = ~0ull;
            } else {
                k->pending = PENDING_IO;
                k->io_next = i;
                exit->reason = VX_EXIT_IO;
                exit->u.io.port = run->io.port;
                exit->u.io.len = (uint8_t)size;
                exit->u.io.is_write = out;
                exit->u.io.value = io.value;
                return 1;
            }
        } else if (rc < 0) {
            k->pending = RETRY_IO;
            k->io_next = i;
            return internal(exit);
        }
        if (!out)
            memcpy(data + i * size, &io.value, size);
    }
    k->pending = PENDING_NONE;
    k->io_next = 0;
    return 0;
}

static int handle_mmio(vx_vcpu *v, struct kvm_vcpu *k, vx_exit *exit)
{
    struct kvm_run *run = k->run;
    k->pending = PENDING_NONE;
    uint64_t gpa = run->mmio.phys_addr;
    unsigned len = run->mmio.len;
    bool write = run->mmio.is_write;
    if (len == 0 || len > 8) {
        vxi_error(VX_EACCEL, "KVM reported an MMIO access of %u bytes at 0x%llx", len, ULL(gpa));
        return internal(exit);
    }
    if (write) {
        /* A guest store to ROM: KVM hands it to us; ROM ignores it. */
        struct vx_region *r = vx_as_find(&v->machine->as, gpa);
        if (r && !(r->prot & VX_MEM_WRITE))
            return 0;
    }
    struct vx_io io = { .addr = gpa, .space = VX_IO_MMIO, .len = (uint8_t)len,
                        .is_write = write };
    if (write)
        memcpy(&io.value, run->mmio.data, len);
    int rc = vx_io_dispatch(v, &io);
    if (rc == VX_IO_UNCLAIMED) {
        k->pending = PENDING_MMIO;
        exit->reason = VX_EXIT_MMIO;
        exit->u.mmio.gpa = gpa;
        exit->u.mmio.len = (uint8_t)len;
        exit->u.mmio.is_write = write;
        exit->u.mmio.value = io.value;
        return 1;
    }
    if (rc < 0) {
        k->pending = RETRY_MMIO;
        return internal(exit);
    }
    k->pending = PENDING_NONE;
    if (!write)
        memcpy(run->mmio.data, &io.value, len);
    return 0;
}

/* Complete the exit the application was handed, with its answer. */
static int resume_pending(vx_vcpu *v, struct kvm_vcpu *k, vx_exit *exit)
{
    struct kvm_run *run = k->run;
    switch (k->pending) {
    case PENDING_IO:
        if (run->io.direction == KVM_EXIT_IO_IN)
            memcpy((uint8_t *)run + run->io.data_offset + k->io_next * run->io.size,
                   &exit->u.io.value, run->io.size);
        k->io_next++;
        return handle_io(v, k, exit);
    case PENDING_MMIO:
        if (!run->mmio.is_write)
            memcpy(run->mmio.data, &exit->u.mmio.value, run->mmio.len);
        k->pending = PENDING_NONE;
        return 0;
    case RETRY_IO: /* the failed element is dispatched again */
        return handle_io(v, k, exit);
    case RETRY_MMIO:
        return handle_mmio(v, k, exit);
    default:
        return 0;
    }
}

static const char *internal_suberror(uint32_t s)
{
    switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION: return "KVM's instruction emulator failed";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
    default: return "internal error";
    }
}

static int report_internal_error(vx_vcpu *v, struct kvm_vcpu *k, vx_exit *exit)
{
    struct kvm_run *run = k->run;
    char data[160] = "";
    size_t off = 0;
    for (uint32_t i = 0; i < run->internal.ndata && i < 4 && off < sizeof data; i++)
        off += (size_t)snprintf(data + off, sizeof data - off, " 0x%llx",
                                ULL(run->internal.data[i]));
    vx_x86_regs r = { 0 };
    kvm_get_regs(v, &r);
    vxi_error(VX_EACCEL, "kvm: %s (suberror %u) at rip 0x%llx; data:%s%s",
              internal_suberror(run->internal.suberror), run->internal.suberror, ULL(r.rip),
              data[0] ? data : " none",
              kvm.ring0_native ? "" : " (this is a software KVM: guest ring-0 code runs in "
                                      "KVM's instruction emulator, which lacks some "
                                      "instructions; the tcg accelerator runs them)");
    return internal(exit);
}

static int kvm_run(vx_vcpu *v, vx_exit *exit)
{
    struct kvm_vcpu *k = v->accel;
    volatile struct kvm_run *run = k->run;

    if (k->pending && resume_pending(v, k, exit))
        return 0;
    for (;;) {
        /* vx_vcpu_stop() sets the stop flag, then immediate_exit, then
         * signals. Clearing immediate_exit must come before looking at the
         * flag (hence the fence), so that a stop landing after the look
         * re-arms it and KVM_RUN returns at once. When it is already clear
         * there is nothing to order: the common exit path has no fence. */
        if (run->immediate_exit) {
            run->immediate_exit = 0;
            atomic_thread_fence(memory_order_seq_cst);
        }
        if (vxi_vcpu_take_stop(v, exit))
            return 0;
        if (atomic_load_explicit(&v->nmi_pending, memory_order_relaxed) &&
            atomic_exchange(&v->nmi_pending, 0) && ioctl(k->fd, KVM_NMI) < 0) {
            vxi_error(VX_EACCEL, "KVM_NMI: %s", strerror(errno));
            internal(exit);
            return 0;
        }
        if (ioctl(k->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            vxi_error(VX_EACCEL, "KVM_RUN: %s", strerror(errno));
            internal(exit);
            return 0;
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            k->io_next = 0;
            if (handle_io(v, k, exit))
                return 0;
            break;
        case KVM_EXIT_MMIO:
            if (handle_mmio(v, k, exit))
                return 0;
            break;
        case KVM_EXIT_HLT:
            exit->reason = VX_EXIT_HLT;
            return 0;
        case KVM_EXIT_SHUTDOWN:
            exit->reason = VX_EXIT_SHUTDOWN;
            exit->u.shutdown.kind = VX_SHUTDOWN_TRIPLE_FAULT;
            exit->u.shutdown.code = 0;
            vxi_error(VX_OK, "the guest triple-faulted");
            return 0;
        case KVM_EXIT_SYSTEM_EVENT:
            exit->reason = VX_EXIT_SHUTDOWN;
            exit->u.shutdown.kind = run->system_event.type == KVM_SYSTEM_EVENT_RESET
                                        ? VX_SHUTDOWN_RESET : VX_SHUTDOWN_POWEROFF;
            exit->u.shutdown.code = 0;
            return 0;
        case KVM_EXIT_DEBUG:
            exit->reason = VX_EXIT_DEBUG;
            exit->u.debug.rip = run->debug.arch.pc;
            return 0;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_FAIL_ENTRY:
            vxi_error(VX_EACCEL, "kvm: the CPU refused to enter the guest (hardware entry "
                      "failure reason 0x%llx): the register state is inconsistent",
                      ULL(run->fail_entry.hardware_entry_failure_reason));
            internal(exit);
            return 0;
        case KVM_EXIT_INTERNAL_ERROR:
            report_internal_error(v, k, exit);
            return 0;
        default:
            vxi_error(VX_EACCEL, "kvm: unexpected exit reason %u", run->exit_reason);
            internal(exit);
            return 0;
        }
    }
}

const struct vx_accel_ops vx_kvm_ops = {
    .name = "kvm",
    .id = VX_ACCEL_KVM,
    .available = kvm_available,
    .irqchip_apic = 1,
    .ring0_native = kvm_ring0_native,
    .machine_init = kvm_machine_init,
    .machine_fini = kvm_machine_fini,
    .irqchip_init = kvm_irqchip_init,
    .irq_set = kvm_irq_set,
    .irq_level_triggered = kvm_irq_level_triggered,
    .vcpu_init = kvm_vcpu_init,
    .vcpu_fini = kvm_vcpu_fini,
    .map = kvm_map,
    .unmap = kvm_unmap,
    .get_regs = kvm_get_regs,
    .set_regs = kvm_set_regs,
    .get_sregs = kvm_get_sregs,
    .set_sregs = kvm_set_sregs,
    .get_fpu = kvm_get_fpu,
    .set_fpu = kvm_set_fpu,
    .get_msr = kvm_get_msr,
    .set_msr = kvm_set_msr,
    .run = kvm_run,
    .kick = kvm_kick,
};
