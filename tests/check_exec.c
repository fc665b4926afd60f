/* Execution behaviour: self-modifying code on every accelerator; exact
 * instruction budgets and retired-instruction counts where the accelerator
 * counts (tcg; kvm refuses budgets with VX_ENOTSUP). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "guest_util.h"

START_TEST(test_smc)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "smc64", VX_MODE_LONG64))
        return;
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rbx, 6);
    GUEST_REG(&g, r, rdx, 42);
    guest_destroy(&g);
}
END_TEST

#define COUNT_TOTAL 3007u

START_TEST(test_instruction_count)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "count64", VX_MODE_LONG64))
        return;
    uint64_t before = vx_vcpu_instructions(g.v);
    guest_run_to_hlt(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 1000);
    if (vx_machine_accel(g.m) == VX_ACCEL_KVM) {
        GUEST_EQ(&g, "instructions on kvm", vx_vcpu_instructions(g.v), 0);
    } else {
        GUEST_EQ(&g, "instructions retired", vx_vcpu_instructions(g.v) - before, COUNT_TOTAL);
    }
    guest_destroy(&g);
}
END_TEST

/* Run with budget n from the start: the exit is VX_EXIT_BUDGET after exactly
 * n instructions, and running on with more budget reaches the same end. */
static void budget_case(vx_accel accel, uint64_t n)
{
    guest g;
    if (!guest_setup(&g, accel, "count64", VX_MODE_LONG64))
        return;
    if (accel == VX_ACCEL_KVM) {
        ck_assert_int_eq(vx_vcpu_set_budget(g.v, n), VX_ENOTSUP);
        guest_destroy(&g);
        return;
    }
    ck_assert_int_eq(vx_vcpu_set_budget(g.v, n), 0);
    vx_exit e;
    guest_exit_init(&e);
    guest_run_expect(&g, &e, n < COUNT_TOTAL ? VX_EXIT_BUDGET : VX_EXIT_HLT);
    uint64_t done = vx_vcpu_instructions(g.v);
    GUEST_EQ(&g, "instructions at the budget's end", done, n < COUNT_TOTAL ? n : COUNT_TOTAL);
    if (n >= 3 && n < 3003) {
        /* Inside the loop: rax counts the inc instructions retired. */
        vx_x86_regs r = guest_get_regs(&g, g.v);
        GUEST_REG(&g, r, rax, (n - 2 + 2) / 3);
    }
    /* A further budget of 1 runs exactly one more. */
    if (n < COUNT_TOTAL) {
        ck_assert_int_eq(vx_vcpu_set_budget(g.v, 1), 0);
        guest_exit_init(&e);
        guest_run_expect(&g, &e, n + 1 < COUNT_TOTAL ? VX_EXIT_BUDGET : VX_EXIT_HLT);
        GUEST_EQ(&g, "instructions after one more", vx_vcpu_instructions(g.v), n + 1);
        /* No budget: to the end. */
        ck_assert_int_eq(vx_vcpu_set_budget(g.v, 0), 0);
        if (n + 1 < COUNT_TOTAL)
            guest_run_to_hlt(&g);
        GUEST_EQ(&g, "instructions at the end", vx_vcpu_instructions(g.v), COUNT_TOTAL);
        vx_x86_regs r = guest_get_regs(&g, g.v);
        GUEST_REG(&g, r, rax, 1000);
        GUEST_REG(&g, r, rcx, 0);
    }
    guest_destroy(&g);
}

START_TEST(test_budget)
{
    /* Inside a block, at block ends, one short of the end, the end, past it. */
    static const uint64_t cases[] = { 1, 2, 3, 4, 5, 1000, 3001, 3002, 3003, 3005, 3006, 3007, 5000 };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        budget_case(guest_accels[_i], cases[k]);
}
END_TEST

struct flaky {
    int reads, writes;
    uint64_t written;
};

static int flaky_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    struct flaky *f = opaque;
    if (f->reads++ == 0)
        return -1;
    *value = 0x42;
    return 0;
}

static int flaky_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct flaky *f = opaque;
    if (f->writes++ == 0)
        return -1;
    f->written = value;
    return 0;
}

START_TEST(test_callback_retry)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "retry32", VX_MODE_PROT32))
        return;
    struct flaky f = { 0 };
    vx_io_ops ops = { .size = sizeof ops, .read = flaky_read, .write = flaky_write };
    ck_assert_int_eq(vx_pio_register(g.m, 0x10, 2, &ops, &f), 0);
    vx_exit e;
    guest_exit_init(&e);
    guest_run_expect(&g, &e, VX_EXIT_INTERNAL); /* the read failed */
    GUEST_EQ(&g, "read calls after the failure", f.reads, 1);
    guest_run_expect(&g, &e, VX_EXIT_INTERNAL); /* read retried and done; the write failed */
    GUEST_EQ(&g, "read calls", f.reads, 2);
    GUEST_EQ(&g, "write calls after the failure", f.writes, 1);
    guest_run_to_hlt(&g);
    GUEST_EQ(&g, "write calls", f.writes, 2);
    GUEST_EQ(&g, "value written", f.written, 0x1234);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rbx, 0x42);
    GUEST_REG(&g, r, rdx, 0x55);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_farptr)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "farptr32", VX_MODE_PROT32))
        return;
    vx_exit e;
    guest_exit_init(&e);
    guest_run_vcpu(&g, g.v, &e);
    if (e.reason == VX_EXIT_INTERNAL && strstr(vx_last_error(), "software KVM")) {
        /* kvm_pvm runs ring 0 in KVM's emulator, which lacks bound. */
        printf("SKIP: %s: %s\n", g.label, vx_last_error());
        guest_destroy(&g);
        return;
    }
    ck_assert_msg(e.reason == VX_EXIT_HLT, "%s: exit %s, want hlt (%s)", g.label,
                  guest_exit_name(e.reason), vx_last_error());
    vx_x86_regs r = guest_get_regs(&g, g.v);
    GUEST_REG(&g, r, rax, 0x12340013);
    GUEST_REG(&g, r, rbx, 0x12345678);
    GUEST_REG(&g, r, rcx, 0x12345601);
    GUEST_REG(&g, r, rdx, 0x12345678);
    GUEST_REG(&g, r, rsi, 0x12345678);
    GUEST_REG(&g, r, rdi, 15);
    vx_x86_sregs s = guest_get_sregs(&g, g.v);
    GUEST_EQ(&g, "ds", s.ds.selector, 0x10);
    GUEST_EQ(&g, "gs", s.gs.selector, 0x10);
    GUEST_EQ(&g, "ss", s.ss.selector, 0x10);
    guest_destroy(&g);
}
END_TEST

struct stopper {
    vx_vcpu *v;
    int outs;
};

static int stop_every_1000(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    struct stopper *s = opaque;
    if (++s->outs % 1000 == 0)
        vx_vcpu_stop(s->v);
    return 0;
}

START_TEST(test_stop_chained)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "stopchain64", VX_MODE_LONG64))
        return;
    struct stopper s = { g.v, 0 };
    vx_io_ops ops = { .size = sizeof ops, .write = stop_every_1000 };
    ck_assert_int_eq(vx_pio_register(g.m, 0x10, 1, &ops, &s), 0);
    /* kvm_pvm emulates ring 0 at ~270 ns an instruction: fewer passes there. */
    int passes = vx_machine_accel(g.m) == VX_ACCEL_KVM ? 2 : 20;
    for (int k = 1; k <= passes; k++) {
        vx_exit e;
        guest_exit_init(&e);
        guest_run_expect(&g, &e, VX_EXIT_STOPPED);
        GUEST_EQ(&g, "outs when the run stopped", s.outs, k * 1000);
        vx_x86_regs r = guest_get_regs(&g, g.v);
        GUEST_REG(&g, r, rax, (uint64_t)k * 1000);
    }
    guest_destroy(&g);
}
END_TEST

/* Page-level protection, as the page walk enforces it on tcg and the CPU
 * on kvm: the first 2 MiB is remapped with 4 KiB pages, one of them
 * supervisor-only and one read-only; a guest makes one access and either
 * reaches its out or faults (#PF with an empty IDT: a triple fault), with
 * CR2 naming the address. */
#define PT_GPA 0x30000u   /* the new page table, in the guest's RAM */
#define SUPER_PAGE 0x40000u
#define RO_PAGE 0x41000u

static void protect_pages(guest *g)
{
    uint64_t pt[512];
    for (uint64_t k = 0; k < 512; k++) {
        uint64_t e = (k << 12) | 0x7; /* present, writable, user */
        if (k << 12 == SUPER_PAGE)
            e &= ~4ull;
        if (k << 12 == RO_PAGE)
            e &= ~2ull;
        pt[k] = e;
    }
    guest_write(g, PT_GPA, pt, sizeof pt);
    /* PD[0] (the first 2 MiB page of vx_vcpu_set_mode's tables) -> the table. */
    guest_write_u64(g, GUEST_TABLES_GPA + 0x2000, PT_GPA | 0x7);
}

static void ring3(guest *g)
{
    vx_x86_sregs s = guest_get_sregs(g, g->v);
    s.cs.selector = VX_X86_SEL_USER_CODE64 | 3;
    s.cs.dpl = 3;
    s.ss.selector = s.ds.selector = s.es.selector = VX_X86_SEL_USER_DATA | 3;
    s.ss.dpl = s.ds.dpl = s.es.dpl = 3;
    guest_set_sregs(g, g->v, &s);
}

/* Run one access; returns true when it passed (the out came), false when
 * it faulted (checking CR2). */
static bool touch(vx_accel accel, bool user, bool write, uint64_t addr, bool *ran)
{
    guest g;
    *ran = false;
    if (!guest_setup(&g, accel, "touch64", VX_MODE_LONG64))
        return false;
    *ran = true;
    protect_pages(&g);
    if (user)
        ring3(&g);
    vx_x86_regs r = guest_get_regs(&g, g.v);
    r.rbx = addr;
    r.rcx = write;
    r.rflags = 0x2 | 0x3000; /* IOPL 3: the out is allowed in ring 3 */
    guest_set_regs(&g, g.v, &r);
    vx_exit e;
    guest_exit_init(&e);
    guest_run_vcpu(&g, g.v, &e);
    bool passed = e.reason == VX_EXIT_IO;
    if (!passed) {
        ck_assert_msg(e.reason == VX_EXIT_SHUTDOWN, "%s: exit %s (%s)", g.label,
                      guest_exit_name(e.reason), vx_last_error());
        GUEST_EQ(&g, "cr2 after the #PF", guest_get_sregs(&g, g.v).cr2, addr);
    }
    guest_destroy(&g);
    return passed;
}

START_TEST(test_page_protection)
{
    vx_accel a = guest_accels[_i];
    bool ran;
    static const struct { bool user, write; uint64_t addr; bool passes; const char *what; } cases[] = {
        { true, false, SUPER_PAGE + 8, false, "ring 3 reads a supervisor page" },
        { true, true, SUPER_PAGE + 8, false, "ring 3 writes a supervisor page" },
        { false, true, SUPER_PAGE + 8, true, "ring 0 writes a supervisor page" },
        { true, false, RO_PAGE + 8, true, "ring 3 reads a read-only page" },
        { true, true, RO_PAGE + 8, false, "ring 3 writes a read-only page" },
        { false, true, RO_PAGE + 8, false, "ring 0 writes a read-only page (CR0.WP)" },
        { true, true, RO_PAGE + 0x1000, true, "ring 3 writes the next, ordinary page" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bool passed = touch(a, cases[k].user, cases[k].write, cases[k].addr, &ran);
        if (!ran)
            return;
        ck_assert_msg(passed == cases[k].passes, "%s: %s: %s", a == VX_ACCEL_KVM ? "kvm" : "tcg",
                      cases[k].what, passed ? "allowed" : "faulted");
    }
}
END_TEST

START_TEST(test_budget_bad_args)
{
    ck_assert_int_eq(vx_vcpu_set_budget(NULL, 1), VX_EINVAL);
    ck_assert_uint_eq(vx_vcpu_instructions(NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("exec");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_smc, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_instruction_count, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_budget, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_callback_retry, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_farptr, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_stop_chained, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_page_protection, 0, GUEST_ACCEL_COUNT);
    tcase_add_test(tc, test_budget_bad_args);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
