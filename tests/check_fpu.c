/*
 * x87/SSE through the public API: vx_vcpu_get_fpu/vx_vcpu_set_fpu on every
 * accelerator (reset values, round trips, argument errors, a guest that
 * computes with the state the host set), and the faults tcg raises for
 * CR0.TS, CR0.EM and CR4.OSFXSR (with the empty IDT vx_vcpu_set_mode()
 * leaves, the run ends and vx_last_error() names the vector).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#define RAM 0x200000u
#define TABLES 0x100000u
#define CODE 0x10000u
#define PORT 0x99

static vx_machine *machine(vx_accel accel)
{
    vx_machine_opts o = { .size = sizeof o, .accel = accel };
    vx_machine *m = NULL;
    int rc = vx_machine_create(&o, &m);
    ck_assert_msg(rc == 0, "vx_machine_create: %s", vx_last_error());
    ck_assert_int_eq(vx_memory_map(m, 0, RAM, NULL, VX_MEM_RWX), 0);
    return m;
}

static int have(vx_accel a)
{
    return vx_accel_available(a);
}

static const vx_accel accels[] = { VX_ACCEL_TCG, VX_ACCEL_KVM };

static void check_reset(vx_accel a)
{
    vx_machine *m = machine(a);
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    vx_x86_fpu f = { .size = sizeof f };
    ck_assert_msg(vx_vcpu_get_fpu(v, &f) == 0, "get_fpu: %s", vx_last_error());
    ck_assert_uint_eq(f.size, sizeof f);
    ck_assert_uint_eq(f.fcw, 0x37f);
    ck_assert_uint_eq(f.fsw, 0);
    ck_assert_uint_eq(f.ftw, 0);
    ck_assert_uint_eq(f.mxcsr, 0x1f80);
    ck_assert_uint_eq(f.mxcsr_mask, 0xffff);
    vx_machine_destroy(m);
}

START_TEST(test_fpu_reset)
{
    for (size_t k = 0; k < 2; k++)
        if (have(accels[k]))
            check_reset(accels[k]);
}
END_TEST

static void fill(vx_x86_fpu *f, unsigned seed)
{
    memset(f, 0, sizeof *f);
    f->size = sizeof *f;
    f->fcw = 0x27f;
    f->fsw = (uint16_t)(3u << 11 | 0x4100);
    f->ftw = 0xa5;
    f->mxcsr = 0x1f80 | 0x2000 | 0x8000 | 0x40;
    for (int i = 0; i < 8; i++) {
        uint64_t mant = 0x8000000000000000ull | (uint64_t)(seed * 77 + (unsigned)i);
        uint16_t sexp = (uint16_t)(0x3fff + i);
        memcpy(f->st[i], &mant, 8);
        memcpy(f->st[i] + 8, &sexp, 2);
    }
    for (int i = 0; i < 16; i++)
        for (int b = 0; b < 16; b++)
            f->xmm[i][b] = (uint8_t)(seed + i * 16 + b);
}

START_TEST(test_fpu_round_trip)
{
    for (size_t k = 0; k < 2; k++) {
        if (!have(accels[k]))
            continue;
        vx_machine *m = machine(accels[k]);
        vx_vcpu *v = vx_machine_vcpu(m, 0);
        vx_x86_fpu f, g = { .size = sizeof g };
        fill(&f, 3);
        ck_assert_msg(vx_vcpu_set_fpu(v, &f) == 0, "set_fpu: %s", vx_last_error());
        ck_assert_int_eq(vx_vcpu_get_fpu(v, &g), 0);
        ck_assert_uint_eq(g.fcw, f.fcw);
        ck_assert_uint_eq(g.fsw, f.fsw);
        ck_assert_uint_eq(g.ftw, f.ftw);
        ck_assert_uint_eq(g.mxcsr, f.mxcsr);
        for (int i = 0; i < 8; i++)
            ck_assert_msg(!memcmp(g.st[i], f.st[i], 10), "st%d differs on %s", i,
                          k ? "kvm" : "tcg");
        ck_assert(!memcmp(g.xmm, f.xmm, sizeof f.xmm));
        vx_machine_destroy(m);
    }
}
END_TEST

START_TEST(test_fpu_errors)
{
    vx_machine *m = machine(VX_ACCEL_TCG);
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    vx_x86_fpu f = { .size = sizeof f - 1 };
    ck_assert_int_eq(vx_vcpu_get_fpu(v, &f), VX_EINVAL);
    ck_assert_ptr_nonnull(strstr(vx_last_error(), "size"));
    ck_assert_int_eq(vx_vcpu_get_fpu(NULL, &f), VX_EINVAL);
    ck_assert_int_eq(vx_vcpu_get_fpu(v, NULL), VX_EINVAL);
    fill(&f, 1);
    f.mxcsr = 0x10000;
    ck_assert_int_eq(vx_vcpu_set_fpu(v, &f), VX_EINVAL);
    ck_assert_ptr_nonnull(strstr(vx_last_error(), "MXCSR"));
    vx_machine_destroy(m);
}
END_TEST

/* Run code at CODE in 64-bit ring 0 with cr0/cr4 adjusted; returns the exit. */
static vx_exit run(vx_machine *m, const uint8_t *code, size_t len, uint64_t cr0_set,
                   uint64_t cr0_clear, uint64_t cr4_clear)
{
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_int_eq(vx_vcpu_set_mode(v, VX_MODE_LONG64, TABLES), 0);
    vx_x86_sregs s;
    ck_assert_int_eq(vx_vcpu_get_sregs(v, &s), 0);
    s.cr0 = (s.cr0 | cr0_set) & ~cr0_clear;
    s.cr4 &= ~cr4_clear;
    ck_assert_msg(vx_vcpu_set_sregs(v, &s) == 0, "set_sregs: %s", vx_last_error());
    ck_assert_int_eq(vx_memory_write(m, CODE, code, len), 0);
    vx_x86_regs r = { .rip = CODE, .rsp = 0x8000, .rflags = 2 };
    ck_assert_int_eq(vx_vcpu_set_regs(v, &r), 0);
    vx_exit ex = { .size = sizeof ex };
    ck_assert_int_eq(vx_vcpu_run(v, &ex), 0);
    return ex;
}

/* The guest adds what the host put in XMM0/XMM1 and ST(0)/ST(1). */
START_TEST(test_fpu_guest_sees_state)
{
    static const uint8_t code[] = {
        0x0f, 0x58, 0xc1,       /* addps xmm0, xmm1 */
        0xde, 0xc1,             /* faddp st(1), st */
        0xe6, PORT,             /* out 0x99, al */
    };
    for (size_t k = 0; k < 2; k++) {
        if (!have(accels[k]))
            continue;
        vx_machine *m = machine(accels[k]);
        vx_vcpu *v = vx_machine_vcpu(m, 0);
        ck_assert_int_eq(vx_vcpu_set_mode(v, VX_MODE_LONG64, TABLES), 0);
        vx_x86_fpu f = { .size = sizeof f };
        ck_assert_int_eq(vx_vcpu_get_fpu(v, &f), 0);
        float a[4] = { 1.5f, 2, -3, 1 }, b[4] = { 0.25f, 2, 3, 1e-10f };
        memcpy(f.xmm[0], a, 16);
        memcpy(f.xmm[1], b, 16);
        long double x = 1.25L, y = 2.5L;
        f.fsw = 6u << 11;            /* TOP 6: ST(0) = R6, ST(1) = R7 */
        f.ftw = 0xc0;
        memcpy(f.st[0], &x, 10);
        memcpy(f.st[1], &y, 10);
        ck_assert_int_eq(vx_vcpu_set_fpu(v, &f), 0);
        /* ring 3: kvm_pvm runs ring-0 code in KVM's instruction emulator */
        vx_x86_sregs sr;
        ck_assert_int_eq(vx_vcpu_get_sregs(v, &sr), 0);
        sr.cs.selector = VX_X86_SEL_USER_CODE64 | 3;
        sr.cs.dpl = 3;
        vx_x86_segment d = sr.ss;
        d.selector = VX_X86_SEL_USER_DATA | 3;
        d.dpl = 3;
        sr.ss = sr.ds = sr.es = sr.fs = sr.gs = d;
        ck_assert_int_eq(vx_vcpu_set_sregs(v, &sr), 0);
        ck_assert_int_eq(vx_memory_write(m, CODE, code, sizeof code), 0);
        vx_x86_regs r = { .rip = CODE, .rsp = 0x8000, .rflags = 0x3002 };
        ck_assert_int_eq(vx_vcpu_set_regs(v, &r), 0);
        vx_exit ex = { .size = sizeof ex };
        ck_assert_int_eq(vx_vcpu_run(v, &ex), 0);
        ck_assert_msg(ex.reason == VX_EXIT_IO, "%s: exit %d: %s", k ? "kvm" : "tcg",
                      (int)ex.reason, vx_last_error());
        vx_x86_fpu g = { .size = sizeof g };
        ck_assert_int_eq(vx_vcpu_get_fpu(v, &g), 0);
        float s[4];
        memcpy(s, g.xmm[0], 16);
        ck_assert(s[0] == 1.75f && s[1] == 4 && s[2] == 0 && s[3] == 1);
        long double z = 0;
        memcpy(&z, g.st[0], 10);
        ck_assert(z == 3.75L);
        ck_assert_uint_eq((g.fsw >> 11) & 7, 7);
        ck_assert_uint_eq(g.ftw, 0x80);
        ck_assert_uint_eq(g.mxcsr & 0x3f, 0x20); /* 1 + 1e-10 is inexact: PE */
        vx_machine_destroy(m);
    }
}
END_TEST

#define CR0_MP 0x2u
#define CR0_EM 0x4u
#define CR0_TS 0x8u
#define CR4_OSFXSR 0x200u

static void expect_fault(const uint8_t *code, size_t len, uint64_t cr0_set, uint64_t cr0_clear,
                         uint64_t cr4_clear, const char *vector)
{
    vx_machine *m = machine(VX_ACCEL_TCG);
    vx_exit ex = run(m, code, len, cr0_set, cr0_clear, cr4_clear);
    /* the IDT vx_vcpu_set_mode() leaves is empty: a shutdown naming the vector */
    ck_assert_msg(ex.reason == VX_EXIT_INTERNAL || ex.reason == VX_EXIT_SHUTDOWN,
                  "expected %s, got exit %d: %s", vector, (int)ex.reason, vx_last_error());
    ck_assert_msg(strstr(vx_last_error(), vector), "expected %s: %s", vector, vx_last_error());
    ck_assert_msg(strstr(vx_last_error(), "rip 0x10000"), "not at the instruction: %s",
                  vx_last_error());
    vx_machine_destroy(m);
}

static const uint8_t movaps[] = { 0x0f, 0x28, 0xc1, 0xe6, PORT };   /* movaps xmm0, xmm1 */
static const uint8_t fld1[] = { 0xd9, 0xe8, 0xe6, PORT };           /* fld1 */
static const uint8_t fwait[] = { 0x9b, 0xe6, PORT };                /* fwait */
static const uint8_t paddb_mm[] = { 0x0f, 0xfc, 0xc1, 0xe6, PORT }; /* paddb mm0, mm1 */
static const uint8_t fxsave[] = { 0x0f, 0xae, 0x04, 0x25, 0, 0x20, 0, 0, 0xe6, PORT };

START_TEST(test_tcg_faults)
{
    /* CR0.TS: #NM for SSE, x87, MMX and fxsave */
    expect_fault(movaps, sizeof movaps, CR0_TS, 0, 0, "#NM");
    expect_fault(fld1, sizeof fld1, CR0_TS, 0, 0, "#NM");
    expect_fault(paddb_mm, sizeof paddb_mm, CR0_TS, 0, 0, "#NM");
    expect_fault(fxsave, sizeof fxsave, CR0_TS, 0, 0, "#NM");
    /* fwait: #NM only with TS and MP */
    expect_fault(fwait, sizeof fwait, CR0_TS | CR0_MP, 0, 0, "#NM");
    /* CR0.EM: #UD for SSE and MMX, #NM for x87 */
    expect_fault(movaps, sizeof movaps, CR0_EM, 0, 0, "#UD");
    expect_fault(paddb_mm, sizeof paddb_mm, CR0_EM, 0, 0, "#UD");
    expect_fault(fld1, sizeof fld1, CR0_EM, 0, 0, "#NM");
    /* CR4.OSFXSR clear: #UD for SSE; x87 and MMX still run */
    expect_fault(movaps, sizeof movaps, 0, 0, CR4_OSFXSR, "#UD");
    vx_machine *m = machine(VX_ACCEL_TCG);
    vx_exit ex = run(m, fld1, sizeof fld1, 0, 0, CR4_OSFXSR);
    ck_assert_msg(ex.reason == VX_EXIT_IO, "fld1 without OSFXSR: %s", vx_last_error());
    ex = run(m, paddb_mm, sizeof paddb_mm, 0, 0, CR4_OSFXSR);
    ck_assert_msg(ex.reason == VX_EXIT_IO, "paddb mm without OSFXSR: %s", vx_last_error());
    /* fwait with TS alone runs */
    ex = run(m, fwait, sizeof fwait, CR0_TS, CR0_MP, 0);
    ck_assert_msg(ex.reason == VX_EXIT_IO, "fwait with TS, no MP: %s", vx_last_error());
    vx_machine_destroy(m);
}
END_TEST

/* movaps with a misaligned operand: #GP(0); lock on SSE: #UD; an unmasked
 * SSE exception: #XM, or #UD without CR4.OSXMMEXCPT; a pending unmasked
 * x87 exception: #MF at the next waiting instruction. */
START_TEST(test_tcg_faults_more)
{
    static const uint8_t misaligned[] = { 0x0f, 0x28, 0x04, 0x25, 0x08, 0x20, 0, 0, 0xe6, PORT };
    expect_fault(misaligned, sizeof misaligned, 0, 0, 0, "#GP");
    static const uint8_t locked[] = { 0xf0, 0x0f, 0x58, 0x04, 0x25, 0, 0x20, 0, 0, 0xe6, PORT };
    expect_fault(locked, sizeof locked, 0, 0, 0, "#UD");
    /* ldmxcsr of 0x1d80 (ZE unmasked), then 1.0 / 0.0 */
    static const uint8_t divz[] = {
        0xc7, 0x04, 0x25, 0, 0x20, 0, 0, 0x80, 0x1d, 0, 0,       /* mov dword [0x2000], 0x1d80 */
        0x0f, 0xae, 0x14, 0x25, 0, 0x20, 0, 0,                   /* ldmxcsr [0x2000] */
        0xb8, 0, 0, 0x80, 0x3f, 0x66, 0x0f, 0x6e, 0xc0,           /* mov eax, 1.0f; movd xmm0, eax */
        0x0f, 0x57, 0xc9,                                        /* xorps xmm1, xmm1 */
        0xf3, 0x0f, 0x5e, 0xc1,                                  /* divss xmm0, xmm1 */
        0xe6, PORT,
    };
    vx_machine *m = machine(VX_ACCEL_TCG);
    vx_exit ex = run(m, divz, sizeof divz, 0, 0, 0);
    ck_assert_msg(ex.reason != VX_EXIT_IO && strstr(vx_last_error(), "#XM"), "%s",
                  vx_last_error());
    ex = run(m, divz, sizeof divz, 0, 0, 0x400 /* OSXMMEXCPT */);
    ck_assert_msg(ex.reason != VX_EXIT_IO && strstr(vx_last_error(), "#UD"), "%s",
                  vx_last_error());
    /* fldcw 0x37b (ZE unmasked); fld1; fldz; fdivp: ES pending, then fwait: #MF */
    static const uint8_t mf[] = {
        0x66, 0xc7, 0x04, 0x25, 0, 0x20, 0, 0, 0x7b, 0x03,       /* mov word [0x2000], 0x37b */
        0xd9, 0x2c, 0x25, 0, 0x20, 0, 0,                         /* fldcw [0x2000] */
        0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9,                      /* fld1; fldz; fdivp */
        0x9b,                                                    /* fwait */
        0xe6, PORT,
    };
    ex = run(m, mf, sizeof mf, 0, 0, 0);
    ck_assert_msg(ex.reason != VX_EXIT_IO && strstr(vx_last_error(), "#MF"), "%s",
                  vx_last_error());
    vx_machine_destroy(m);
}
END_TEST

static Suite *fpu_suite(void)
{
    Suite *s = suite_create("fpu");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_fpu_reset);
    tcase_add_test(tc, test_fpu_round_trip);
    tcase_add_test(tc, test_fpu_errors);
    tcase_add_test(tc, test_fpu_guest_sees_state);
    suite_add_tcase(s, tc);
    tc = tcase_create("tcg faults");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_tcg_faults);
    tcase_add_test(tc, test_tcg_faults_more);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fpu_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
