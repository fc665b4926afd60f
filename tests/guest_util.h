/*
 * Harness for the guest-program tests (tests/check_guests.c): loads the
 * nasm-built programs of tests/guests/, sets up a machine with the standard
 * layout below on each accelerator, and runs it to an expected exit. The
 * helpers assert with Check, so they are for use inside a Check test only.
 *
 * Every guest test runs once per entry of guest_accels[]. An accelerator
 * that cannot create a machine here (no /dev/kvm, translator not built)
 * makes guest_create() print "SKIP: <accel>: <reason>" and return false;
 * the test then returns and passes. An accelerator that says it is
 * available (vx_accel_available) but fails to create a machine is a failure.
 *
 * Guest-physical layout, the same for every program and mode (a PC-like
 * first megabyte, so real mode reaches all of it through segments):
 *
 *   0x00000 - 0x9ffff  RAM (640 KiB), mapped RWX by guest_create()
 *     0x01000          GUEST_CODE_GPA: the program is loaded here and must
 *                      end below GUEST_DATA_GPA; rip starts here (real
 *                      mode: CS = 0, IP = 0x1000)
 *     0x08000          GUEST_DATA_GPA: a page of data the programs use
 *     0x0f000          GUEST_STACK_TOP: rsp at start; the stack grows down
 *     0x10000          GUEST_TABLES_GPA: vx_vcpu_set_mode() tables
 *                      (VX_X86_MODE_TABLES_SIZE = 0x9000 bytes)
 *     0x20000          GUEST_BUF_GPA: free RAM for larger buffers, to 0x9ffff
 *   0xa0000 - 0xaffff  GUEST_MMIO_GPA: not RAM; tests claim parts of it with
 *                      vx_mmio_register() or leave it unclaimed
 *   0xb0000 - 0xbffff  GUEST_UNCLAIMED_GPA: not RAM and never claimed: every
 *                      access is a VX_EXIT_MMIO
 *   0xc0000 - 0xc0fff  GUEST_ROM_GPA: mapped read-only by the ROM test only
 *
 * Ports: the programs use 0x10-0x17 (GUEST_PORT) for callbacks and exits.
 *
 * At start (guest_start_vcpu) every general register is 0, rip =
 * GUEST_CODE_GPA, rsp = GUEST_STACK_TOP, and the mode is what
 * vx_vcpu_set_mode() makes of the chosen vx_cpu_mode.
 */
#ifndef TESTS_GUEST_UTIL_H
#define TESTS_GUEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <libvx/vx.h>

#define GUEST_RAM_SIZE 0xa0000u
#define GUEST_CODE_GPA 0x1000u
#define GUEST_DATA_GPA 0x8000u
#define GUEST_STACK_TOP 0xf000u
#define GUEST_TABLES_GPA 0x10000u
#define GUEST_BUF_GPA 0x20000u
#define GUEST_MMIO_GPA 0xa0000u
#define GUEST_UNCLAIMED_GPA 0xb0000u
#define GUEST_ROM_GPA 0xc0000u
#define GUEST_ROM_SIZE 0x1000u
#define GUEST_PORT 0x10u

/* The accelerators every guest test runs on, in order; the index is the
 * loop index of tcase_add_loop_test(tc, fn, 0, GUEST_ACCEL_COUNT). */
#define GUEST_ACCEL_COUNT 2
extern const vx_accel guest_accels[GUEST_ACCEL_COUNT];

/* Is /dev/kvm a software KVM (kvm_pvm), whose ring-0 guest code runs in
 * KVM's instruction emulator and whose system calls are its own? */
bool guest_kvm_is_software(void);

/* "kvm", "tcg" */
const char *guest_accel_label(vx_accel accel);

/* "hlt", "io", ... for messages; "reason N" for an unknown value. */
const char *guest_exit_name(uint32_t reason);

typedef struct guest {
    vx_accel accel;
    const char *label;  /* guest_accel_label(accel), for messages */
    vx_machine *m;
    vx_vcpu *v;         /* vCPU 0 */
    size_t image_len;   /* bytes of the program loaded by guest_load() */
} guest;

/* Create a machine on `accel` with `vcpus` vCPUs and `flags`, and map the
 * RAM of the layout above. false (after printing SKIP) when the accelerator
 * is not available; any other failure fails the test. */
bool guest_create(guest *g, vx_accel accel, unsigned vcpus, uint64_t flags);

/* Load tests/guests/<name>.bin at GUEST_CODE_GPA. The directory is GUEST_DIR
 * (set by the build), or the environment variable VX_GUEST_DIR if set. */
void guest_load(guest *g, const char *name);

/* Put vCPU `v` in `mode` (tables at GUEST_TABLES_GPA), clear its general
 * registers, rip = GUEST_CODE_GPA, rsp = GUEST_STACK_TOP. */
void guest_start_vcpu(guest *g, vx_vcpu *v, vx_cpu_mode mode);

/* guest_create() with one vCPU and no flags, guest_load() and
 * guest_start_vcpu() on vCPU 0: the usual start of a test. */
bool guest_setup(guest *g, vx_accel accel, const char *name, vx_cpu_mode mode);

/* Destroy the machine; g may be half set up. */
void guest_destroy(guest *g);

/* A vx_exit with its size set and the rest zero. */
void guest_exit_init(vx_exit *e);

/* vx_vcpu_run(v) must return 0; the exit is in *e. */
void guest_run_vcpu(guest *g, vx_vcpu *v, vx_exit *e);

/* Run vCPU 0 once; the exit must be `reason`. On a mismatch the message
 * gives the exit's details, rip and vx_last_error(). */
void guest_run_expect(guest *g, vx_exit *e, uint32_t reason);

/* Run vCPU 0 to VX_EXIT_HLT with a fresh exit. */
void guest_run_to_hlt(guest *g);

/* Describe an exit ("io write port 0x10 len 1 value 0x11") into buf. */
const char *guest_describe_exit(const vx_exit *e, char *buf, size_t size);

vx_x86_regs guest_get_regs(guest *g, vx_vcpu *v);
void guest_set_regs(guest *g, vx_vcpu *v, const vx_x86_regs *r);
vx_x86_sregs guest_get_sregs(guest *g, vx_vcpu *v);
void guest_set_sregs(guest *g, vx_vcpu *v, const vx_x86_sregs *s);

/* Guest memory through the public API; must succeed. */
void guest_read(guest *g, uint64_t gpa, void *buf, size_t len);
void guest_write(guest *g, uint64_t gpa, const void *buf, size_t len);
uint64_t guest_read_u64(guest *g, uint64_t gpa);
uint32_t guest_read_u32(guest *g, uint64_t gpa);
uint16_t guest_read_u16(guest *g, uint64_t gpa);
void guest_write_u32(guest *g, uint64_t gpa, uint32_t value);
void guest_write_u64(guest *g, uint64_t gpa, uint64_t value);

/* Assert actual == want, both shown in hex, with the accelerator's name. */
#define GUEST_EQ(g, what, actual, want)                                           \
    do {                                                                          \
        uint64_t guest_eq_a_ = (uint64_t)(actual), guest_eq_w_ = (uint64_t)(want); \
        ck_assert_msg(guest_eq_a_ == guest_eq_w_, "%s: %s = 0x%llx, want 0x%llx",  \
                      (g)->label, (what), (unsigned long long)guest_eq_a_,        \
                      (unsigned long long)guest_eq_w_);                           \
    } while (0)

/* Assert a register of a vx_x86_regs: GUEST_REG(g, regs, rax, 0x1234). */
#define GUEST_REG(g, regs, name, want) GUEST_EQ(g, #name, (regs).name, want)

#endif
