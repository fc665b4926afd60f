/*
 * hello: the smallest complete libvx program.
 *
 * It creates a machine with 2 MiB of RAM, puts its vCPU in 64-bit mode,
 * loads a few bytes of guest code and a string, and runs it. The guest writes
 * the string to I/O port 0xe9 one byte at a time; a callback registered for
 * that port prints each byte. The guest then halts and vx_vcpu_run() returns.
 *
 *     cc hello.c $(pkg-config --cflags --libs libvx) -o hello
 *
 * Exit status: 0 when the guest ran and halted, 1 on an error, 77 (the
 * automake "skipped" code) when this host has no accelerator libvx can use.
 */
#include <stdint.h>
#include <stdio.h>

#include <libvx/vx.h>

/* The guest's physical memory map. */
#define RAM_SIZE    (2u << 20) /* RAM at guest-physical 0 */
#define TABLES_GPA  0x1000     /* GDT and page tables, written by vx_vcpu_set_mode() */
#define CODE_GPA    0x10000
#define MESSAGE_GPA 0x11000

#define DEBUG_PORT 0xe9        /* the port the guest code below writes to */

/*
 * The guest: print the NUL-terminated string at rsi, then halt.
 *
 *             mov   edx, 0xe9
 *     next:   lodsb               ; al = *rsi++
 *             test  al, al
 *             jz    done
 *             out   dx, al        ; a port write: our callback runs
 *             jmp   next
 *     done:   hlt                 ; vx_vcpu_run() returns VX_EXIT_HLT
 */
static const uint8_t guest_code[] = {
    0xba, 0xe9, 0x00, 0x00, 0x00,   /* mov  edx, 0xe9 */
    0xac,                           /* lodsb */
    0x84, 0xc0,                     /* test al, al */
    0x74, 0x03,                     /* jz   done */
    0xee,                           /* out  dx, al */
    0xeb, 0xf8,                     /* jmp  next */
    0xf4,                           /* hlt */
};

static const char message[] = "Hello from a libvx guest!\n";

/* Called on the vCPU's thread, inside vx_vcpu_run(), for every guest write
 * to DEBUG_PORT. Returning non-zero would stop the guest with an error. */
static int debug_port_write(void *opaque, uint64_t port, unsigned len, uint64_t value)
{
    (void)opaque, (void)port, (void)len;
    putchar((int)(value & 0xff));
    return 0;
}

/* Report a failed call with libvx's own words for it, and clean up. */
static int fail(vx_machine *m, const char *what, int err)
{
    fprintf(stderr, "hello: %s: %s: %s\n", what, vx_strerror(err), vx_last_error());
    vx_machine_destroy(m);
    return 1;
}

/* VX_ACCEL_AUTO picks the best accelerator for this host. Where KVM is only
 * a software one (kvm_pvm), AUTO picks the tcg translator for a ring-0 guest
 * like ours; in a build without tcg that gives VX_ENOTSUP, and KVM, slower
 * here but able, is the next best. */
static int create_machine(vx_machine **m)
{
    vx_machine_opts opts = { .size = sizeof(opts), .accel = VX_ACCEL_AUTO };
    int err = vx_machine_create(&opts, m);
    if (err == VX_ENOTSUP) {
        opts.accel = VX_ACCEL_KVM;
        err = vx_machine_create(&opts, m);
    }
    return err;
}

int main(void)
{
    vx_machine *m = NULL;
    int err = create_machine(&m);
    if (err == VX_ENOTSUP) {
        printf("SKIP: no accelerator: %s\n", vx_last_error());
        return 77;
    }
    if (err)
        return fail(m, "vx_machine_create", err);

    /* host == NULL: libvx allocates the RAM (zeroed) and frees it with m. */
    if ((err = vx_memory_map(m, 0, RAM_SIZE, NULL, VX_MEM_RWX)))
        return fail(m, "vx_memory_map", err);
    if ((err = vx_load_flat(m, CODE_GPA, guest_code, sizeof(guest_code))))
        return fail(m, "vx_load_flat code", err);
    if ((err = vx_load_flat(m, MESSAGE_GPA, message, sizeof(message))))
        return fail(m, "vx_load_flat message", err);

    static const vx_io_ops debug_port = {
        .size = sizeof(vx_io_ops),
        .write = debug_port_write,
    };
    if ((err = vx_pio_register(m, DEBUG_PORT, 1, &debug_port, NULL)))
        return fail(m, "vx_pio_register", err);

    vx_vcpu *vcpu = vx_machine_vcpu(m, 0);
    if ((err = vx_vcpu_set_mode(vcpu, VX_MODE_LONG64, TABLES_GPA)))
        return fail(m, "vx_vcpu_set_mode", err);
    vx_x86_regs regs = {
        .rip = CODE_GPA,
        .rsi = MESSAGE_GPA,
        .rflags = 0x2,   /* bit 1 is always set; interrupts stay off */
    };
    if ((err = vx_vcpu_set_regs(vcpu, &regs)))
        return fail(m, "vx_vcpu_set_regs", err);

    vx_exit ex = { .size = sizeof(ex) };
    if ((err = vx_vcpu_run(vcpu, &ex)))
        return fail(m, "vx_vcpu_run", err);
    fflush(stdout);

    if (ex.reason != VX_EXIT_HLT) {
        /* VX_EXIT_INTERNAL explains itself in vx_last_error(); any other
         * reason means the guest did something this program did not expect. */
        fprintf(stderr, "hello: the guest stopped with exit reason %u, not hlt: %s\n",
                (unsigned)ex.reason, vx_last_error());
        vx_machine_destroy(m);
        return 1;
    }
    vx_machine_destroy(m);
    return 0;
}
