/*
 * libvx: virtual machines inside any program.
 *
 * This header is the whole architecture-neutral public surface: versions and
 * errors, machines, guest memory, device callbacks, running vCPUs and loading
 * guest images. Register state and CPU modes are in <libvx/x86.h>, which this
 * header includes.
 *
 * Conventions, for every call declared here:
 *   - A call returns 0 on success or a negative VX_E* code. vx_strerror()
 *     names the code; vx_last_error() gives this thread's detail of the last
 *     failure ("memory region 0x1000+0x2000 overlaps 0x2000+0x1000").
 *   - The library never aborts, exits or prints. A bad argument is an error.
 *   - Structures passed across the ABI begin with a `size` member that the
 *     caller sets to sizeof the structure it was compiled with; the library
 *     accepts any size from the first released layout up to its own.
 *   - Guest-physical addresses (gpa) and sizes are in bytes.
 *   - Machines are independent of each other and may be used from different
 *     threads. One vCPU runs on one thread at a time. vx_vcpu_stop() may be
 *     called from any thread and from a signal handler.
 */
#ifndef LIBVX_VX_H
#define LIBVX_VX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VX_API __attribute__((visibility("default")))
#else
#define VX_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions and errors                                                       */
/* ------------------------------------------------------------------------ */

#define VX_VERSION_MAJOR 0
#define VX_VERSION_MINOR 1
#define VX_VERSION_PATCH 0
#define VX_VERSION_NUMBER \
    ((VX_VERSION_MAJOR << 16) | (VX_VERSION_MINOR << 8) | VX_VERSION_PATCH)

/* The version of the library actually loaded: (major << 16) | (minor << 8) |
 * patch. Compare with VX_VERSION_NUMBER to detect a header/library mismatch. */
VX_API unsigned vx_version(void);

/* The same as a static string, "0.1.0". */
VX_API const char *vx_version_string(void);

/* Error codes. Every failing call returns one of these (always negative). */
enum {
    VX_OK = 0,
    VX_EINVAL = -1,   /* a bad argument: NULL handle, misaligned size, bad enum */
    VX_ENOMEM = -2,   /* out of host memory */
    VX_ENOTSUP = -3,  /* this accelerator or build cannot do it */
    VX_EEXIST = -4,   /* overlaps something already mapped or registered */
    VX_ENOENT = -5,   /* nothing mapped or registered there */
    VX_EBUSY = -6,    /* the vCPU or machine is running, or in use */
    VX_EACCEL = -7,   /* the accelerator failed (a KVM ioctl, for example) */
    VX_EIO = -8,      /* a host I/O error */
    VX_ECORRUPT = -9, /* a malformed file, image or data */
    VX_ERANGE = -10,  /* an address or length outside what is mapped or allowed */
};

/* Static English text for any code above ("invalid argument"); for an
 * unknown code, "unknown error". Never NULL. */
VX_API const char *vx_strerror(int err);

/* The detail of this thread's most recent failure, as a NUL-terminated string
 * owned by the library and valid until this thread's next libvx call. Empty
 * ("") if nothing has failed on this thread. Calls that succeed do not clear
 * it. */
VX_API const char *vx_last_error(void);

/* ------------------------------------------------------------------------ */
/* Machines                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct vx_machine vx_machine;
typedef struct vx_vcpu vx_vcpu;

typedef enum vx_accel {
    VX_ACCEL_AUTO = 0, /* kvm where it is hardware-assisted, else tcg */
    VX_ACCEL_KVM = 1,  /* Linux KVM through /dev/kvm */
    VX_ACCEL_TCG = 2,  /* the built-in translator */
} vx_accel;

typedef enum vx_arch {
    VX_ARCH_X86_64 = 1,
} vx_arch;

/* vx_machine_opts.flags */
/* The guest runs its code in ring 3 only (test harnesses, user-mode
 * emulation). With VX_ACCEL_AUTO this lets a software KVM such as kvm_pvm be
 * chosen: such a KVM runs ring-3 code on the CPU but emulates ring 0. */
#define VX_MACHINE_USER_ONLY (1ull << 0)
/* Port accesses that no device claims are ignored (reads return all ones)
 * instead of ending vx_vcpu_run() with VX_EXIT_IO, as on a PC. */
#define VX_MACHINE_IGNORE_UNCLAIMED_IO (1ull << 1)
/* The machine gets the PC's interrupt controller and timer: an i8259 pair
 * (ports 0x20-0x21, 0xa0-0xa1, ELCR 0x4d0-0x4d1; a PC BIOS's setup: vectors
 * 0x08 and 0x70, all lines masked) and an i8254 (0x40-0x43, port B 0x61)
 * whose channel 0 drives IRQ 0. Lines are driven with vx_irq_set(). Under
 * kvm these are KVM's in-kernel irqchip and PIT; under tcg, libvx's models.
 * With it, `hlt` with interrupts enabled waits for an interrupt inside
 * vx_vcpu_run() instead of returning VX_EXIT_HLT. (A `hlt` with interrupts
 * disabled still returns VX_EXIT_HLT under tcg; under kvm the vCPU sleeps in
 * KVM until an NMI or vx_vcpu_stop(), so end such guests with an exit of
 * your own, such as an unclaimed port write.) */
#define VX_MACHINE_IRQCHIP (1ull << 2)

typedef struct vx_machine_opts {
    size_t size;     /* sizeof(vx_machine_opts) */
    vx_arch arch;    /* 0 means VX_ARCH_X86_64 */
    vx_accel accel;  /* VX_ACCEL_AUTO, _KVM or _TCG */
    unsigned vcpus;  /* number of vCPUs, 0 means 1; at most VX_MAX_VCPUS */
    uint64_t flags;  /* VX_MACHINE_* bits; unknown bits are VX_EINVAL */
} vx_machine_opts;

#define VX_MAX_VCPUS 64

/* 1 if a machine can be created with this accelerator in this process, else
 * 0. For VX_ACCEL_KVM: /dev/kvm opens and a VM can be created. For
 * VX_ACCEL_AUTO: 1 if either can. */
VX_API int vx_accel_available(vx_accel accel);

/* Create a machine with no memory and no devices; its vCPUs are in the
 * x86 reset state. `opts` may be NULL (all defaults).
 * VX_ACCEL_AUTO takes kvm when KVM runs guest ring 0 on the CPU (kvm_intel,
 * kvm_amd) or the machine is VX_MACHINE_USER_ONLY; otherwise tcg; and a
 * software KVM when tcg is not available in this build. The environment
 * variable VX_ACCEL=kvm|tcg|auto overrides VX_ACCEL_AUTO (and only AUTO);
 * another value is VX_EINVAL.
 * Errors: VX_EINVAL (bad opts), VX_ENOTSUP (accelerator not available or not
 * built; vx_last_error() says why), VX_EACCEL, VX_ENOMEM.
 * On success *out is the new machine; on failure *out is set to NULL. */
VX_API int vx_machine_create(const vx_machine_opts *opts, vx_machine **out);

/* Destroy a machine, its vCPUs and the memory libvx allocated for it. No vCPU
 * may be running. NULL is accepted and does nothing. Memory the caller gave
 * to vx_memory_map() stays the caller's. */
VX_API void vx_machine_destroy(vx_machine *m);

/* The accelerator the machine actually uses (never VX_ACCEL_AUTO), and its
 * name, "kvm" or "tcg". For NULL: VX_ACCEL_AUTO and "none". */
VX_API vx_accel vx_machine_accel(const vx_machine *m);
VX_API const char *vx_machine_accel_name(const vx_machine *m);

/* The vCPU with this index, owned by the machine; NULL if out of range. */
VX_API vx_vcpu *vx_machine_vcpu(vx_machine *m, unsigned index);

/* The number of vCPUs of the machine (0 for NULL). */
VX_API unsigned vx_machine_vcpu_count(const vx_machine *m);

/* ------------------------------------------------------------------------ */
/* Guest memory                                                              */
/* ------------------------------------------------------------------------ */

#define VX_MEM_READ 1u
#define VX_MEM_WRITE 2u
#define VX_MEM_EXEC 4u
#define VX_MEM_RWX 7u

#define VX_PAGE_SIZE 4096u

/* Map guest-physical [gpa, gpa + size) to host memory.
 *   gpa, size: multiples of VX_PAGE_SIZE; size > 0; no wrap past 2^64.
 *   host: NULL and libvx allocates zeroed memory, freed at unmap or machine
 *     destroy; otherwise page-aligned caller memory of at least `size` bytes,
 *     used in place (guest and caller share it) and still the caller's after
 *     unmap. It must stay valid while mapped.
 *   prot: VX_MEM_* bits, VX_MEM_READ required. Without VX_MEM_WRITE the
 *     region is ROM: guest writes are dropped under every accelerator, while
 *     vx_memory_write() from the host still stores (to load the ROM).
 * Call while no vCPU of the machine runs.
 * Errors: VX_EINVAL (alignment, zero size, bad prot), VX_EEXIST (overlaps a
 * mapped region or a registered MMIO range), VX_ENOMEM, VX_EACCEL. */
VX_API int vx_memory_map(vx_machine *m, uint64_t gpa, uint64_t size, void *host,
                         unsigned prot);

/* Unmap exactly one region previously mapped with this gpa and size.
 * Errors: VX_EINVAL (alignment), VX_ENOENT (no region starts at gpa with that
 * size). */
VX_API int vx_memory_unmap(vx_machine *m, uint64_t gpa, uint64_t size);

/* Copy between guest RAM/ROM and a host buffer. The whole range must be
 * mapped (it may span adjacent regions); otherwise VX_ERANGE and nothing is
 * copied. len 0 succeeds. These do not call MMIO callbacks. */
VX_API int vx_memory_read(vx_machine *m, uint64_t gpa, void *buf, size_t len);
VX_API int vx_memory_write(vx_machine *m, uint64_t gpa, const void *buf, size_t len);

/* A host pointer to guest memory [gpa, gpa + len), valid until that memory is
 * unmapped; NULL (with vx_last_error() set) unless the whole range lies in one
 * mapped region. Stores through it are not seen by the tcg accelerator's
 * cache of translated code: to change code a vCPU may already have run,
 * use vx_memory_write() (or the loaders), which tcg watches. */
VX_API void *vx_memory_ptr(vx_machine *m, uint64_t gpa, size_t len);

/* ------------------------------------------------------------------------ */
/* Device callbacks                                                          */
/* ------------------------------------------------------------------------ */

/* Callbacks for a range of ports or guest-physical addresses.
 *   addr: the absolute port or guest-physical address accessed.
 *   len: 1, 2, 4 or 8 bytes.
 *   read: store the value in *value (zero-extended); *value starts at 0.
 *   A NULL read returns all ones; a NULL write ignores the store.
 *   Returning non-zero stops the vCPU with VX_EXIT_INTERNAL; the return value
 *   and the access are named in vx_last_error(). The access did not happen:
 *   running the vCPU again makes it again (and calls the callback again).
 * Only the low `len` bytes of a read value reach the guest.
 * Callbacks run on the vCPU's thread, inside vx_vcpu_run(). A callback may
 * stop its own vCPU (vx_vcpu_stop), read or write its registers, and (when
 * it is the machine's only running vCPU) map memory or register devices; it
 * may not run that vCPU again (VX_EBUSY). */
typedef struct vx_io_ops {
    size_t size; /* sizeof(vx_io_ops) */
    int (*read)(void *opaque, uint64_t addr, unsigned len, uint64_t *value);
    int (*write)(void *opaque, uint64_t addr, unsigned len, uint64_t value);
} vx_io_ops;

/* Claim ports [port, port + count), count >= 1, port + count <= 0x10000.
 * `ops` is copied; `opaque` is passed back to the callbacks.
 * String I/O (rep ins/outs) calls the callback once per element.
 * Errors: VX_EINVAL, VX_EEXIST (overlaps a registered range). */
VX_API int vx_pio_register(vx_machine *m, uint16_t port, uint32_t count,
                           const vx_io_ops *ops, void *opaque);

/* Claim guest-physical [gpa, gpa + size), size >= 1, not overlapping RAM or
 * another MMIO range (VX_EEXIST). No alignment is required. An access wider
 * than 8 bytes (SSE, AVX) arrives as several accesses of at most 8. */
VX_API int vx_mmio_register(vx_machine *m, uint64_t gpa, uint64_t size,
                            const vx_io_ops *ops, void *opaque);

/* Remove the range that starts at this port / gpa. VX_ENOENT if none does. */
VX_API int vx_pio_unregister(vx_machine *m, uint16_t port);
VX_API int vx_mmio_unregister(vx_machine *m, uint64_t gpa);

/* Drive interrupt line `line` (0-15: the PC's ISA IRQs) of a machine created
 * with VX_MACHINE_IRQCHIP to `level` (0 low, else high). Edge-triggered
 * lines (the default) request an interrupt on a rising edge; a device that
 * pulses its line calls this twice. Any thread; not a signal handler.
 * Errors: VX_EINVAL (NULL, line > 15), VX_ENOTSUP (no VX_MACHINE_IRQCHIP),
 * VX_EACCEL. */
VX_API int vx_irq_set(vx_machine *m, unsigned line, int level);

/* Inside a callback: the vCPU whose access it is. NULL outside callbacks. */
VX_API vx_vcpu *vx_vcpu_current(void);

/* ------------------------------------------------------------------------ */
/* Running                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum vx_exit_reason {
    VX_EXIT_HLT = 1,      /* hlt with interrupts off, or nothing can wake it */
    VX_EXIT_IO = 2,       /* port access no device claimed */
    VX_EXIT_MMIO = 3,     /* access to unmapped guest-physical memory */
    VX_EXIT_SHUTDOWN = 4, /* triple fault, or a reset/power-off device */
    VX_EXIT_STOPPED = 5,  /* vx_vcpu_stop() */
    VX_EXIT_BUDGET = 6,   /* the instruction budget ran out */
    VX_EXIT_DEBUG = 7,    /* breakpoint or single step */
    VX_EXIT_INTERNAL = 8, /* the accelerator or a callback failed; see vx_last_error() */
} vx_exit_reason;

/* vx_exit.u.shutdown.kind */
enum {
    VX_SHUTDOWN_TRIPLE_FAULT = 1,
    VX_SHUTDOWN_RESET = 2,
    VX_SHUTDOWN_POWEROFF = 3,
};

typedef struct vx_exit {
    size_t size;     /* sizeof(vx_exit), set by the caller */
    uint32_t reason; /* a vx_exit_reason */
    union {
        /* VX_EXIT_IO: for a write, value is what the guest wrote; for a
         * read, store the result in value before the next vx_vcpu_run(). */
        struct { uint16_t port; uint8_t len; uint8_t is_write; uint64_t value; } io;
        /* VX_EXIT_MMIO: the same, for guest-physical addresses. */
        struct { uint64_t gpa; uint8_t len; uint8_t is_write; uint64_t value; } mmio;
        /* VX_EXIT_DEBUG */
        struct { uint64_t rip; } debug;
        /* VX_EXIT_SHUTDOWN: kind is VX_SHUTDOWN_*; code the guest's exit status. */
        struct { uint32_t kind; uint32_t code; } shutdown;
        uint64_t pad[4]; /* room for later members */
    } u;
} vx_exit;

/* Run the vCPU on the calling thread until something the application must
 * see: see vx_exit_reason. Port and MMIO accesses that a callback claims are
 * handled inside and do not return.
 *
 * After VX_EXIT_IO or VX_EXIT_MMIO for a read, store the value in
 * exit->u.io.value (u.mmio.value) and call vx_vcpu_run() again with the same
 * `exit`: the guest's read completes with it, as with KVM (only the low `len`
 * bytes count). If that run returns VX_EXIT_STOPPED at once, the answer was
 * still taken and is not asked for again.
 *
 * Returns 0 when *exit is filled in (VX_EXIT_INTERNAL included: its detail is
 * in vx_last_error()); a negative code when the call itself was wrong
 * (VX_EINVAL for NULL or a too small exit->size, VX_EBUSY if the vCPU is
 * already running, on another thread or further up this one). */
VX_API int vx_vcpu_run(vx_vcpu *v, vx_exit *exit);

/* Ask the vCPU to return from vx_vcpu_run() with VX_EXIT_STOPPED as soon as
 * possible. Callable from any thread and from a signal handler. If the vCPU
 * is not running, its next vx_vcpu_run() returns VX_EXIT_STOPPED at once. */
VX_API int vx_vcpu_stop(vx_vcpu *v);

/* Raise a non-maskable interrupt on the vCPU (vector 2, whatever RFLAGS.IF;
 * held while the guest's NMI handler runs, until its iret). It is taken at
 * the next instruction boundary the vCPU reaches inside vx_vcpu_run(), and
 * wakes a vCPU waiting in hlt. Several requests before it is taken make one
 * NMI. Callable from any thread and from a signal handler. */
VX_API int vx_vcpu_nmi(vx_vcpu *v);

/* Stop after exactly `instructions` more guest instructions with
 * VX_EXIT_BUDGET; 0 removes the budget. tcg only: VX_ENOTSUP on kvm. */
VX_API int vx_vcpu_set_budget(vx_vcpu *v, uint64_t instructions);

/* Guest instructions retired so far on this vCPU (tcg); 0 on kvm. */
VX_API uint64_t vx_vcpu_instructions(vx_vcpu *v);

/* The vCPU's index in its machine, and its machine. */
VX_API unsigned vx_vcpu_index(const vx_vcpu *v);
VX_API vx_machine *vx_vcpu_machine(vx_vcpu *v);

/* ------------------------------------------------------------------------ */
/* Loading guests                                                            */
/* ------------------------------------------------------------------------ */

/* Copy a raw image to guest-physical gpa. The whole of [gpa, gpa + len)
 * must be mapped RAM or ROM; otherwise VX_ERANGE and nothing is written. */
VX_API int vx_load_flat(vx_machine *m, uint64_t gpa, const void *image, size_t len);

/* Load a static ELF32 (EM_386) or ELF64 (EM_X86_64) executable (ET_EXEC):
 * each PT_LOAD segment is copied to its physical address (p_paddr) and its
 * bss (p_memsz beyond p_filesz) zeroed. The entry point goes to *entry
 * (entry may be NULL). Every segment is checked before anything is written.
 * Errors: VX_ECORRUPT (not ELF, truncated, inconsistent headers; the message
 * names the segment), VX_ENOTSUP (another machine or type), VX_ERANGE (a
 * segment outside mapped RAM; the message names it). */
VX_API int vx_load_elf(vx_machine *m, const void *image, size_t len, uint64_t *entry);

#ifdef __cplusplus
}
#endif

#include <libvx/x86.h>

#endif /* LIBVX_VX_H */
