/*
 * The x86 system architecture on every accelerator: guest programs that
 * take exceptions and interrupts, change privilege and paging, and report
 * what they saw on port 0x10 (a 32-bit out per value). Each test compares
 * the reports with the values written here, so tcg and kvm are held to the
 * same expectations.
 *
 * Under a software KVM (kvm_pvm) ring-0 guest code runs in KVM's own
 * instruction emulator, which stops on some instructions with an internal
 * error: the kvm half of such a test says SKIP with the reason and the tcg
 * half still checks the expectations.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#include "guest_util.h"

#define REPORT_PORT 0x10
#define MAX_REPORTS 512

typedef struct reports {
    unsigned n;
    uint32_t v[MAX_REPORTS];
} reports;

static int report_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)addr;
    (void)len;
    reports *r = opaque;
    if (r->n < MAX_REPORTS)
        r->v[r->n++] = (uint32_t)value;
    return 0;
}

static const vx_io_ops report_ops = { sizeof(vx_io_ops), NULL, report_write };

static void expect_reports(guest *g, const reports *r, const uint32_t *want, unsigned n,
                           bool prefix);

/* Run to hlt, collecting reports, and compare them with want[n]. When kvm's
 * instruction emulator cannot run the whole program on this host, the
 * reports it made before it stopped must still match (a prefix), and the
 * test says SKIP for the rest. */
static void run_expect_end(guest *g, reports *r, const uint32_t *want, unsigned n,
                           bool end_port);

static void run_expect(guest *g, reports *r, const uint32_t *want, unsigned n)
{
    run_expect_end(g, r, want, n, false);
}

/* end_port: the program ends with a write to the unclaimed port 0x99
 * instead of hlt. */
static void run_expect_end(guest *g, reports *r, const uint32_t *want, unsigned n,
                           bool end_port)
{
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(vx_pio_register(g->m, REPORT_PORT, 1, &report_ops, r), 0);
    vx_exit e;
    guest_exit_init(&e);
    guest_run_vcpu(g, g->v, &e);
    if (e.reason == VX_EXIT_INTERNAL && g->accel == VX_ACCEL_KVM &&
        strstr(vx_last_error(), "software KVM")) {
        printf("SKIP: %s: after %u reports: %s\n", g->label, r->n, vx_last_error());
        expect_reports(g, r, want, n, true);
        return;
    }
    char buf[128];
    bool ended = end_port ? e.reason == VX_EXIT_IO && e.u.io.port == 0x99 && e.u.io.is_write
                          : e.reason == VX_EXIT_HLT;
    ck_assert_msg(ended, "%s: exit %s (%s), want %s; %u reports", g->label,
                  guest_describe_exit(&e, buf, sizeof buf), vx_last_error(),
                  end_port ? "the write to port 0x99" : "hlt", r->n);
    expect_reports(g, r, want, n, false);
}

static void expect_reports(guest *g, const reports *r, const uint32_t *want, unsigned n,
                           bool prefix)
{
    for (unsigned k = 0; k < n && k < r->n; k++) {
        if (r->v[k] != want[k]) {
            fprintf(stderr, "%s: reports:", g->label);
            for (unsigned j = 0; j < r->n; j++)
                fprintf(stderr, "%s0x%x", j % 8 ? " " : "\n  ", r->v[j]);
            fprintf(stderr, "\n");
        }
        ck_assert_msg(r->v[k] == want[k], "%s: report %u = 0x%x, want 0x%x", g->label, k,
                      r->v[k], want[k]);
    }
    if (prefix)
        ck_assert_msg(r->n <= n, "%s: %u reports, want at most %u", g->label, r->n, n);
    else
        ck_assert_msg(r->n == n, "%s: %u reports, want %u", g->label, r->n, n);
}

/* One exception as idt64.inc reports it: vector, error code, rip matched,
 * CS, RF|IF of the saved RFLAGS. */
#define RF 0x10000u
#define EXC(vec, err, cs, flags) (vec), (err), 1, (cs), (flags)

START_TEST(test_exceptions64)
{
    static const uint32_t want[] = {
        EXC(0, 0, 0x08, RF),          /* #DE */
        EXC(6, 0, 0x08, RF),          /* #UD */
        EXC(13, 0, 0x08, RF),         /* #GP(0), non-canonical */
        EXC(12, 0, 0x08, RF),         /* #SS(0) */
        EXC(13, 0x1000, 0x08, RF),    /* #GP(selector) */
        EXC(11, 0x18, 0x08, RF),      /* #NP(selector) */
        EXC(14, 0, 0x08, RF), 0x200000,  /* #PF read, not present */
        EXC(14, 2, 0x08, RF), 0x200010,  /* #PF write, not present */
        EXC(13, 0, 0x08, RF),         /* wrmsr to no MSR */
        EXC(8, 0, 0x08, RF),          /* #DF from #GP with no #GP gate */
        EXC(13, 0x40 * 8 + 2, 0x08, RF), /* int 0x40 beyond the IDT */
        EXC(13, 0, 0x08, RF),         /* CR4 reserved bit */
        42, 0xd0e,
    };
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "exc64", VX_MODE_LONG64))
        return;
    reports r;
    run_expect(&g, &r, want, sizeof want / sizeof want[0]);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_exceptions32)
{
    static const uint32_t want[] = {
        EXC(0, 0, 0x08, RF),                /* #DE */
        EXC(6, 0, 0x08, RF),                /* #UD */
        EXC(5, 0, 0x08, RF),                /* #BR */
        EXC(4, 0, 0x08, 0),                 /* #OF: a trap */
        EXC(13, 0x1000, 0x08, RF),          /* #GP(selector) */
        EXC(11, 0x38, 0x08, RF),            /* #NP(selector) */
        EXC(13, 0, 0x08, RF),               /* past FS's limit */
        0x53,                               /* conforming code: CPL stays 3 */
        0x08, 0x10, 0x6800 - 24, 0x2222, 0x1111, /* through the call gate */
        0x23, 0x5000,                       /* back in ring 3, parameters dropped */
        0xd0e,
    };
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "exc32", VX_MODE_PROT32))
        return;
    reports r;
    run_expect_end(&g, &r, want, sizeof want / sizeof want[0], true);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_ring3_64)
{
    static const uint32_t want[] = {
        0x33,                               /* ring 3 */
        0x5c, 0x08, 1, 0x3202, 0x3000, 7,   /* syscall: CS, rcx, r11, RFLAGS (IF masked), rax */
        0x33,                               /* back in ring 3 after sysretq */
        EXC(29, 0, 0x33, 0x200),            /* int 29: DPL-3 gate */
        EXC(3, 0, 0x33, 0x200),             /* int3 */
        EXC(13, 30 * 8 + 2, 0x33, RF | 0x200), /* int 30: DPL-0 gate */
        EXC(13, 0, 0x33, RF | 0x200),       /* hlt in ring 3 */
        EXC(14, 5, 0x33, RF | 0x200), 0x200000, /* user read of a supervisor page */
        0xe000,                             /* rsp unchanged by all that */
        0x5c, 0x08, 1, 0x3246, 0x3000, 0,   /* the last syscall */
        0xd0e,
    };
    if (guest_accels[_i] == VX_ACCEL_KVM && guest_kvm_is_software()) {
        /* Measured: the LSTAR handler runs with the user's CS and without
         * IOPL, and its sysretq faults. */
        printf("SKIP: kvm: kvm_pvm handles a guest's syscall its own (paravirtual) way, so "
               "it is no oracle for syscall/sysret\n");
        return;
    }
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "user64sys", VX_MODE_LONG64))
        return;
    reports r;
    run_expect(&g, &r, want, sizeof want / sizeof want[0]);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_demand_paging)
{
    uint32_t want[8 * 2 + 3];
    for (unsigned k = 0; k < 8; k++) {
        want[2 * k] = 2 | 0;                       /* a write to a page not present */
        want[2 * k + 1] = 0x40000 + k * 0x1000 + 8; /* CR2 */
    }
    want[16] = 8;
    want[17] = 3 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7);
    want[18] = 0xd0e;
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "demand64", VX_MODE_LONG64))
        return;
    reports r;
    run_expect(&g, &r, want, sizeof want / sizeof want[0]);
    guest_destroy(&g);
}
END_TEST

/* A timer interrupt through the irqchip: the PIT ticks, the PIC delivers,
 * to a vCPU that spins and to one that waits in hlt. */
START_TEST(test_timer)
{
    static const uint32_t want[] = { 3, 5, 5, 0, 0xd0e };
    guest g;
    if (!guest_create(&g, guest_accels[_i], 1, VX_MACHINE_IRQCHIP))
        return;
    guest_load(&g, "timer64");
    guest_start_vcpu(&g, g.v, VX_MODE_LONG64);
    reports r;
    run_expect_end(&g, &r, want, sizeof want / sizeof want[0], true);
    guest_destroy(&g);
}
END_TEST

/* vx_irq_set: a line raised by the application, from another thread
 * while the guest waits in hlt, is delivered (and its arguments are
 * checked). */
START_TEST(test_irq_set_args)
{
    guest g;
    if (!guest_create(&g, guest_accels[_i], 1, 0))
        return;
    ck_assert_int_eq(vx_irq_set(g.m, 3, 1), VX_ENOTSUP);
    ck_assert_msg(strstr(vx_last_error(), "VX_MACHINE_IRQCHIP"), "%s", vx_last_error());
    guest_destroy(&g);
    if (!guest_create(&g, guest_accels[_i], 1, VX_MACHINE_IRQCHIP))
        return;
    ck_assert_int_eq(vx_irq_set(g.m, 16, 1), VX_EINVAL);
    ck_assert_int_eq(vx_irq_set(NULL, 3, 1), VX_EINVAL);
    ck_assert_int_eq(vx_irq_set(g.m, 3, 1), 0);
    ck_assert_int_eq(vx_irq_set(g.m, 3, 0), 0);
    guest_destroy(&g);
}
END_TEST

START_TEST(test_mode16)
{
    static const uint32_t want[] = {
        0x0d, 0x11,         /* real mode: #GP past the 64 KiB limit, then on */
        0x5a5a1234,         /* unreal mode reaches past it */
        0x1616, 2,          /* 16-bit protected mode: 2-byte pushes */
        0xd0e,
    };
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "mode16", VX_MODE_REAL))
        return;
    reports r;
    run_expect(&g, &r, want, sizeof want / sizeof want[0]);
    guest_destroy(&g);
}
END_TEST

/* TF single-stepping, and NMIs through an IST gate, held while one is
 * being handled. The guest asks for each NMI with a write to port 0x98. */
START_TEST(test_nmi_step)
{
    static const uint32_t want[] = {
        6,                  /* #DB traps */
        1, 0x7000 - 40,     /* the first NMI, on the IST stack */
        0x77,               /* the second is held until iretq */
        2, 0x7000 - 40,
        0x33, 2, 0xd0e,
    };
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "nmi64", VX_MODE_LONG64))
        return;
    reports r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(vx_pio_register(g.m, REPORT_PORT, 1, &report_ops, &r), 0);
    vx_exit e;
    unsigned nmis = 0;
    for (;;) {
        guest_exit_init(&e);
        guest_run_vcpu(&g, g.v, &e);
        if (e.reason != VX_EXIT_IO || e.u.io.port != 0x98)
            break;
        ck_assert_int_eq(vx_vcpu_nmi(g.v), 0);
        nmis++;
    }
    if (e.reason == VX_EXIT_INTERNAL && g.accel == VX_ACCEL_KVM &&
        strstr(vx_last_error(), "software KVM")) {
        printf("SKIP: %s: after %u reports: %s\n", g.label, r.n, vx_last_error());
        expect_reports(&g, &r, want, sizeof want / sizeof want[0], true);
        guest_destroy(&g);
        return;
    }
    char buf[128];
    ck_assert_msg(e.reason == VX_EXIT_HLT, "%s: exit %s (%s)", g.label,
                  guest_describe_exit(&e, buf, sizeof buf), vx_last_error());
    GUEST_EQ(&g, "NMIs raised", nmis, 2);
    expect_reports(&g, &r, want, sizeof want / sizeof want[0], false);
    guest_destroy(&g);
}
END_TEST

/* vx_vcpu_translate walks the tables as they are in guest memory now. */
START_TEST(test_translate)
{
    guest g;
    if (!guest_setup(&g, guest_accels[_i], "hlt", VX_MODE_LONG64))
        return;
    uint64_t gpa = 0;
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0x1234, &gpa), 0);
    GUEST_EQ(&g, "identity-mapped", gpa, 0x1234);
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0xfffff123ull, &gpa), 0);
    GUEST_EQ(&g, "top of the 4 GiB", gpa, 0xfffff123ull);
    /* PD 0 entry 1 (2-4 MiB) -> the 2 MiB page at 6 MiB; entry 2 absent. */
    guest_write_u64(&g, GUEST_TABLES_GPA + 0x2008, 0x600000 | 0x83);
    guest_write_u64(&g, GUEST_TABLES_GPA + 0x2010, 0);
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0x201234, &gpa), 0);
    GUEST_EQ(&g, "remapped", gpa, 0x601234);
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0x400000, &gpa), VX_ENOENT);
    ck_assert_msg(strstr(vx_last_error(), "not mapped"), "%s", vx_last_error());
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0x8000000000ull, &gpa), VX_ENOENT);
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0, NULL), VX_EINVAL);
    ck_assert_int_eq(vx_vcpu_translate(NULL, 0, &gpa), VX_EINVAL);
    /* The walk only looks: the PDE's accessed bit stays clear. */
    GUEST_EQ(&g, "PDE after translate", guest_read_u64(&g, GUEST_TABLES_GPA + 0x2008),
             0x600000 | 0x83);
    /* Real mode: no paging, the address is the physical one. */
    guest_start_vcpu(&g, g.v, VX_MODE_REAL);
    ck_assert_int_eq(vx_vcpu_translate(g.v, 0x201234, &gpa), 0);
    GUEST_EQ(&g, "real mode", gpa, 0x201234);
    guest_destroy(&g);
}
END_TEST

/* The page at the top of the 4 GiB space, where the reset vector is. */
static uint8_t reset_page[4096] __attribute__((aligned(4096)));

START_TEST(test_boot)
{
    static const uint32_t want[] = {
        0x16, 0x21, 0xde, 0xd0,             /* real mode: IVT for int 0x21 and #DE */
        0x60000011,                         /* CR0 in protected mode (CD, NW from reset) */
        0x23,                               /* ring 3 */
        0x10, 0x6800 - 20, 0x5000, 0x2b,    /* int 0x30: TSS stack, user esp and ss */
        0x3333,                             /* back in ring 3 */
        0x0d, 0,                            /* hlt in ring 3: #GP(0) */
        0x500,                              /* EFER: LME, LMA */
        0x64, 0,                            /* long mode; lm64's address filled in below */
    };
    guest g;
    if (!guest_create(&g, guest_accels[_i], 1, 0))
        return;
    guest_load(&g, "boot");
    memset(reset_page, 0xf4, sizeof reset_page);
    static const uint8_t jump[] = { 0xea, 0x00, 0x10, 0x00, 0x00 }; /* jmp 0000:1000 */
    memcpy(reset_page + 0xff0, jump, sizeof jump);
    ck_assert_int_eq(vx_memory_map(g.m, 0xfffff000, 4096, reset_page, VX_MEM_READ | VX_MEM_EXEC),
                     0);
    reports r;
    uint32_t w[sizeof want / sizeof want[0]];
    memcpy(w, want, sizeof w);
    /* lm64 is the last hlt's label: find it from the image (boot.asm puts
     * `REPORT 0x64` there: b8 64 00 00 00). */
    uint8_t image[4096];
    guest_read(&g, GUEST_CODE_GPA, image, sizeof image);
    for (unsigned k = 0; k + 5 <= sizeof image; k++)
        if (!memcmp(image + k, "\xb8\x64\x00\x00\x00", 5)) {
            w[sizeof w / sizeof w[0] - 1] = GUEST_CODE_GPA + k;
            break;
        }
    run_expect(&g, &r, w, sizeof w / sizeof w[0]);
    guest_destroy(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("system");
    TCase *tc = tcase_create("system");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_exceptions64, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_exceptions32, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_ring3_64, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_boot, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_demand_paging, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_translate, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_timer, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_nmi_step, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_mode16, 0, GUEST_ACCEL_COUNT);
    tcase_add_loop_test(tc, test_irq_set_args, 0, GUEST_ACCEL_COUNT);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
