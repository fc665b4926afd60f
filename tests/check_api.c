/*
 * Check tests for the public API of libvx, through <libvx/vx.h> only:
 * versions and errors, machine options, guest memory, device registration
 * and the argument checks of the vCPU calls.
 *
 * A test that needs a machine creates one with an explicit accelerator; when
 * that accelerator is not available here it prints "SKIP: <accel>: <why>" and
 * passes. The memory and registration tests run once per accelerator
 * ({kvm, tcg}, through tcase_add_loop_test) because their behaviour must not
 * depend on it.
 */
#define _GNU_SOURCE
#include <libvx/vx.h>

#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static const vx_accel loop_accels[] = {VX_ACCEL_KVM, VX_ACCEL_TCG};
#define N_LOOP_ACCELS ((int)(sizeof loop_accels / sizeof loop_accels[0]))

static const char *accel_label(vx_accel a)
{
    switch (a) {
    case VX_ACCEL_AUTO: return "auto";
    case VX_ACCEL_KVM: return "kvm";
    case VX_ACCEL_TCG: return "tcg";
    }
    return "?";
}

static const char *code_name(int rc)
{
    switch (rc) {
    case VX_OK: return "VX_OK";
    case VX_EINVAL: return "VX_EINVAL";
    case VX_ENOMEM: return "VX_ENOMEM";
    case VX_ENOTSUP: return "VX_ENOTSUP";
    case VX_EEXIST: return "VX_EEXIST";
    case VX_ENOENT: return "VX_ENOENT";
    case VX_EBUSY: return "VX_EBUSY";
    case VX_EACCEL: return "VX_EACCEL";
    case VX_EIO: return "VX_EIO";
    case VX_ECORRUPT: return "VX_ECORRUPT";
    case VX_ERANGE: return "VX_ERANGE";
    }
    return "(not a VX_E* code)";
}

/* Assert that `expr` returns `want`; on failure say what it returned and the
 * library's detail. */
#define CHECK_RC(expr, want)                                                  \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        int want_ = (want);                                                   \
        ck_assert_msg(rc_ == want_,                                           \
                      "%s returned %d %s, expected %d %s; vx_last_error: \"%s\"", \
                      #expr, rc_, code_name(rc_), want_, code_name(want_),   \
                      vx_last_error());                                       \
    } while (0)

/* Case-insensitive substring test. */
static int mentions(const char *haystack, const char *needle)
{
    return haystack && strcasestr(haystack, needle) != NULL;
}

/* Options for a machine on `accel` with everything else default. */
static vx_machine_opts opts_for(vx_accel accel)
{
    vx_machine_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.accel = accel;
    return o;
}

/* Create a machine on `accel`; NULL (after printing SKIP and why) when that
 * accelerator cannot be used here. A failure other than "not available" with
 * valid options is a test failure. */
static vx_machine *machine_or_skip(vx_accel accel, unsigned vcpus, uint64_t flags)
{
    vx_machine_opts o = opts_for(accel);
    vx_machine *m = (vx_machine *)&o; /* must be overwritten */
    o.vcpus = vcpus;
    o.flags = flags;
    int rc = vx_machine_create(&o, &m);
    if (rc != 0) {
        ck_assert_msg(m == NULL,
                      "vx_machine_create(%s) failed with %d %s but left *out non-NULL",
                      accel_label(accel), rc, code_name(rc));
        ck_assert_msg(rc == VX_ENOTSUP || rc == VX_EACCEL || rc == VX_ENOMEM,
                      "vx_machine_create(%s, vcpus %u, flags %#llx) with valid options "
                      "returned %d %s (expected success, or VX_ENOTSUP/VX_EACCEL when "
                      "the accelerator is unavailable); vx_last_error: \"%s\"",
                      accel_label(accel), vcpus, (unsigned long long)flags, rc,
                      code_name(rc), vx_last_error());
        printf("SKIP: %s: %s\n", accel_label(accel), vx_last_error());
        fflush(stdout);
        return NULL;
    }
    ck_assert_msg(m != NULL, "vx_machine_create(%s) returned 0 but *out is NULL",
                  accel_label(accel));
    ck_assert_msg(vx_machine_accel(m) == accel,
                  "vx_machine_create asked for %s, vx_machine_accel says %d (%s)",
                  accel_label(accel), (int)vx_machine_accel(m),
                  vx_machine_accel_name(m));
    return m;
}

/* The accelerator of this loop iteration. */
static vx_machine *loop_machine(int i)
{
    ck_assert_int_lt(i, N_LOOP_ACCELS);
    return machine_or_skip(loop_accels[i], 0, 0);
}

static void map_ram(vx_machine *m, uint64_t gpa, uint64_t size)
{
    int rc = vx_memory_map(m, gpa, size, NULL, VX_MEM_RWX);
    ck_assert_msg(rc == 0, "vx_memory_map(%#llx, %#llx, NULL, RWX) on %s: %d %s: %s",
                  (unsigned long long)gpa, (unsigned long long)size,
                  vx_machine_accel_name(m), rc, code_name(rc), vx_last_error());
}

static void fill_guest(vx_machine *m, uint64_t gpa, size_t len, uint8_t byte)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    memset(b, byte, len);
    int rc = vx_memory_write(m, gpa, b, len);
    ck_assert_msg(rc == 0, "vx_memory_write(%#llx, len %#zx) to fill: %d %s: %s",
                  (unsigned long long)gpa, len, rc, code_name(rc), vx_last_error());
    free(b);
}

/* Assert guest [gpa, gpa+len) holds `byte` everywhere. */
static void expect_guest_bytes(vx_machine *m, uint64_t gpa, size_t len, uint8_t byte,
                               const char *why)
{
    uint8_t *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    int rc = vx_memory_read(m, gpa, b, len);
    ck_assert_msg(rc == 0, "vx_memory_read(%#llx, len %#zx): %d %s: %s",
                  (unsigned long long)gpa, len, rc, code_name(rc), vx_last_error());
    for (size_t k = 0; k < len; k++)
        if (b[k] != byte) /* not ck_assert per byte: that talks to the parent */
            ck_abort_msg("%s: guest byte at %#llx is %#x, expected %#x",
                         why, (unsigned long long)(gpa + k), b[k], byte);
    free(b);
}

static void pattern(uint8_t *b, size_t len, unsigned seed)
{
    for (size_t k = 0; k < len; k++)
        b[k] = (uint8_t)(seed * 131u + k * 7u + (k >> 8) + 1u);
}

static int dummy_read(void *opaque, uint64_t addr, unsigned len, uint64_t *value)
{
    (void)opaque; (void)addr; (void)len;
    *value = 0;
    return 0;
}

static int dummy_write(void *opaque, uint64_t addr, unsigned len, uint64_t value)
{
    (void)opaque; (void)addr; (void)len; (void)value;
    return 0;
}

static const vx_io_ops good_ops = {sizeof(vx_io_ops), dummy_read, dummy_write};

/* ------------------------------------------------------------------------ */
/* Versions and errors                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(test_version)
{
    ck_assert_msg(vx_version() == (unsigned)VX_VERSION_NUMBER,
                  "vx_version() = %#x but the header says %#x (VX_VERSION_NUMBER)",
                  vx_version(), (unsigned)VX_VERSION_NUMBER);
    ck_assert_uint_eq(VX_VERSION_NUMBER, (VX_VERSION_MAJOR << 16) |
                      (VX_VERSION_MINOR << 8) | VX_VERSION_PATCH);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", VX_VERSION_MAJOR, VX_VERSION_MINOR,
             VX_VERSION_PATCH);
    const char *s = vx_version_string();
    ck_assert_msg(s != NULL, "vx_version_string() returned NULL");
    ck_assert_msg(strcmp(s, want) == 0,
                  "vx_version_string() = \"%s\", the VX_VERSION_* macros say \"%s\"",
                  s, want);
    unsigned v = vx_version();
    char got[64];
    snprintf(got, sizeof got, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
    ck_assert_msg(strcmp(s, got) == 0, "vx_version_string() \"%s\" disagrees with "
                  "vx_version() %#x (\"%s\")", s, v, got);
}
END_TEST

START_TEST(test_strerror)
{
    static const int codes[] = {VX_EINVAL, VX_ENOMEM, VX_ENOTSUP, VX_EEXIST, VX_ENOENT,
                                VX_EBUSY, VX_EACCEL, VX_EIO, VX_ECORRUPT, VX_ERANGE};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = vx_strerror(-12345);
    ck_assert_msg(unknown != NULL, "vx_strerror(-12345) returned NULL");
    ck_assert_msg(strcmp(unknown, "unknown error") == 0,
                  "vx_strerror(-12345) = \"%s\", the header says \"unknown error\"",
                  unknown);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(codes[i] < 0, "%s is not negative", code_name(codes[i]));
        const char *s = vx_strerror(codes[i]);
        ck_assert_msg(s != NULL, "vx_strerror(%s) returned NULL", code_name(codes[i]));
        ck_assert_msg(s[0] != '\0', "vx_strerror(%s) is empty", code_name(codes[i]));
        ck_assert_msg(strcmp(s, unknown) != 0,
                      "vx_strerror(%s) = \"%s\", the text for unknown codes",
                      code_name(codes[i]), s);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, vx_strerror(codes[j])) != 0,
                          "vx_strerror(%s) and vx_strerror(%s) are both \"%s\"",
                          code_name(codes[i]), code_name(codes[j]), s);
        /* Static text: the same pointer content on a second call. */
        ck_assert_str_eq(vx_strerror(codes[i]), s);
    }
    ck_assert_msg(vx_strerror(VX_OK) != NULL, "vx_strerror(VX_OK) returned NULL");
    ck_assert_msg(strcmp(vx_strerror(VX_OK), unknown) != 0,
                  "vx_strerror(VX_OK) is \"unknown error\"; 0 is a code of the header");
    /* Unknown codes, including ones whose negation overflows. */
    static const int bad[] = {-11, -100, 1, 42, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *s = vx_strerror(bad[i]);
        ck_assert_msg(s != NULL, "vx_strerror(%d) returned NULL", bad[i]);
        ck_assert_msg(strcmp(s, "unknown error") == 0,
                      "vx_strerror(%d) = \"%s\", expected \"unknown error\"", bad[i], s);
    }
}
END_TEST

/* A failure on one thread must not show in another thread's vx_last_error(). */
struct thr_probe {
    char before[512];
    int rc;
    char after[512];
};

static void *probe_thread(void *p)
{
    struct thr_probe *t = p;
    const char *e = vx_last_error();
    snprintf(t->before, sizeof t->before, "%s", e ? e : "(NULL)");
    /* A different failure from the main thread's. */
    t->rc = vx_memory_map(NULL, 0, VX_PAGE_SIZE, NULL, VX_MEM_RWX);
    e = vx_last_error();
    snprintf(t->after, sizeof t->after, "%s", e ? e : "(NULL)");
    return NULL;
}

START_TEST(test_last_error_thread_local)
{
    vx_machine_opts o = opts_for(VX_ACCEL_KVM);
    o.size = 0; /* too small: VX_EINVAL */
    vx_machine *m = NULL;
    CHECK_RC(vx_machine_create(&o, &m), VX_EINVAL);
    ck_assert_ptr_null(m);
    char mine[512];
    ck_assert_msg(vx_last_error() != NULL, "vx_last_error() returned NULL");
    snprintf(mine, sizeof mine, "%s", vx_last_error());
    ck_assert_msg(mine[0] != '\0',
                  "vx_machine_create with opts.size 0 failed but vx_last_error() is empty");

    struct thr_probe t;
    memset(&t, 0, sizeof t);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, probe_thread, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    ck_assert_msg(strcmp(t.before, "") == 0,
                  "a new thread that made no libvx call sees vx_last_error() = \"%s\" "
                  "(the main thread's failure leaked into it; it must be \"\")",
                  t.before);
    ck_assert_msg(t.rc == VX_EINVAL, "vx_memory_map(NULL, ...) on a thread returned %d %s",
                  t.rc, code_name(t.rc));
    ck_assert_msg(t.after[0] != '\0', "vx_memory_map(NULL, ...) failed on a thread but "
                  "that thread's vx_last_error() is empty");
    ck_assert_msg(strcmp(t.after, mine) != 0,
                  "test precondition: the two failures gave the same text \"%s\"", mine);
    ck_assert_msg(strcmp(vx_last_error(), mine) == 0,
                  "the main thread's vx_last_error() changed from \"%s\" to \"%s\" after "
                  "another thread failed", mine, vx_last_error());
}
END_TEST

/* Several threads failing at the same time each keep their own detail. */
#define STRESS_THREADS 4
#define STRESS_ITERS 2000

struct stress_arg {
    int kind;
    int mismatches;
    char first[512];
    char bad[512];
};

static int stress_fail(int kind)
{
    vx_machine_opts o = opts_for(VX_ACCEL_KVM);
    vx_machine *m = NULL;
    switch (kind) {
    case 0: o.size = 0; return vx_machine_create(&o, &m);
    case 1: o.flags = 1ull << 62; return vx_machine_create(&o, &m);
    case 2: return vx_memory_unmap(NULL, 0, VX_PAGE_SIZE);
    default: return vx_pio_register(NULL, 0x3f8, 8, &good_ops, NULL);
    }
}

static void *stress_thread(void *p)
{
    struct stress_arg *a = p;
    stress_fail(a->kind);
    snprintf(a->first, sizeof a->first, "%s", vx_last_error());
    for (int i = 0; i < STRESS_ITERS; i++) {
        stress_fail(a->kind);
        sched_yield();
        const char *e = vx_last_error();
        if (strcmp(e, a->first) != 0) {
            if (!a->mismatches)
                snprintf(a->bad, sizeof a->bad, "%s", e);
            a->mismatches++;
        }
    }
    return NULL;
}

START_TEST(test_last_error_concurrent)
{
    struct stress_arg args[STRESS_THREADS];
    pthread_t th[STRESS_THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < STRESS_THREADS; i++) {
        args[i].kind = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < STRESS_THREADS; i++) {
        ck_assert_msg(args[i].first[0] != '\0',
                      "failure kind %d left vx_last_error() empty", i);
        ck_assert_msg(args[i].mismatches == 0,
                      "thread %d: vx_last_error() was \"%s\" instead of its own \"%s\" "
                      "%d times while other threads failed (not thread-local)",
                      i, args[i].bad, args[i].first, args[i].mismatches);
    }
}
END_TEST

/* A successful call leaves the previous failure's detail in place. */
START_TEST(test_last_error_kept_on_success)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 0, 0);
    if (!m)
        return;
    CHECK_RC(vx_memory_map(m, 0x800, VX_PAGE_SIZE, NULL, VX_MEM_RWX), VX_EINVAL);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", vx_last_error());
    ck_assert_msg(msg[0] != '\0', "vx_memory_map with gpa 0x800 failed but "
                  "vx_last_error() is empty");
    CHECK_RC(vx_memory_map(m, 0, VX_PAGE_SIZE, NULL, VX_MEM_RWX), 0);
    ck_assert_msg(strcmp(vx_last_error(), msg) == 0,
                  "a successful vx_memory_map changed vx_last_error() from \"%s\" to "
                  "\"%s\"; the header says successes do not clear it",
                  msg, vx_last_error());
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Machines and options                                                      */
/* ------------------------------------------------------------------------ */

/* An accelerator for the option checks: one that works here if any, so that
 * the only thing wrong with the options is the field under test. */
static vx_accel usable_accel(void)
{
    if (vx_accel_available(VX_ACCEL_KVM))
        return VX_ACCEL_KVM;
    if (vx_accel_available(VX_ACCEL_TCG))
        return VX_ACCEL_TCG;
    return VX_ACCEL_KVM;
}

/* Create must fail with VX_EINVAL, set *out to NULL and say why. */
static void expect_create_einval(const vx_machine_opts *o, const char *what)
{
    vx_machine *m = (vx_machine *)&m;
    int rc = vx_machine_create(o, &m);
    ck_assert_msg(rc == VX_EINVAL,
                  "vx_machine_create with %s returned %d %s, expected VX_EINVAL; "
                  "vx_last_error: \"%s\"", what, rc, code_name(rc), vx_last_error());
    ck_assert_msg(m == NULL, "vx_machine_create with %s failed but left *out non-NULL",
                  what);
    ck_assert_msg(vx_last_error()[0] != '\0',
                  "vx_machine_create with %s failed but vx_last_error() is empty", what);
}

START_TEST(test_opts_null)
{
    unsetenv("VX_ACCEL");
    vx_machine *m = (vx_machine *)&m;
    int rc = vx_machine_create(NULL, &m);
    if (rc != 0) {
        /* On a host where AUTO resolves to an accelerator that is not there
         * (e.g. software KVM and no translator yet) that is fine, but said. */
        ck_assert_msg(rc == VX_ENOTSUP || rc == VX_EACCEL,
                      "vx_machine_create(NULL opts) returned %d %s; NULL opts must mean "
                      "all defaults; vx_last_error: \"%s\"", rc, code_name(rc),
                      vx_last_error());
        ck_assert_ptr_null(m);
        const char *e = vx_last_error();
        ck_assert_msg(e[0] != '\0', "vx_machine_create(NULL) failed with no vx_last_error()");
        /* It says why the translator could not be used either, and the
         * text is not garbled (e.g. formatted from itself). */
        ck_assert_msg(mentions(e, "translator"),
                      "AUTO found no accelerator but vx_last_error() \"%s\" does not say "
                      "why the translator could not be used", e);
        char head[25];
        snprintf(head, sizeof head, "%s", e);
        ck_assert_msg(strlen(head) < 24 || strstr(e + 1, head) == NULL,
                      "vx_last_error() \"%s\" repeats its own beginning \"%s\": garbled "
                      "(formatted from the buffer it writes into?)", e, head);
        printf("SKIP: auto: %s\n", e);
        return;
    }
    ck_assert_ptr_nonnull(m);
    vx_accel a = vx_machine_accel(m);
    ck_assert_msg(a == VX_ACCEL_KVM || a == VX_ACCEL_TCG,
                  "vx_machine_accel of an AUTO machine is %d, must be kvm or tcg", (int)a);
    ck_assert_uint_eq(vx_machine_vcpu_count(m), 1);
    ck_assert_ptr_nonnull(vx_machine_vcpu(m, 0));
    ck_assert_ptr_null(vx_machine_vcpu(m, 1));
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_opts_out_null)
{
    vx_machine_opts o = opts_for(usable_accel());
    CHECK_RC(vx_machine_create(&o, NULL), VX_EINVAL);
    CHECK_RC(vx_machine_create(NULL, NULL), VX_EINVAL);
}
END_TEST

START_TEST(test_opts_size)
{
    vx_machine_opts o = opts_for(usable_accel());
    o.size = 0;
    expect_create_einval(&o, "opts.size 0");
    o.size = sizeof(size_t);
    expect_create_einval(&o, "opts.size sizeof(size_t)");
    o.size = offsetof(vx_machine_opts, flags);
    expect_create_einval(&o, "opts.size offsetof(flags) (the first layout is the "
                         "current one, so this is too small)");
}
END_TEST

START_TEST(test_opts_flags)
{
    vx_machine_opts o = opts_for(usable_accel());
    o.flags = 1ull << 3;
    expect_create_einval(&o, "flags bit 3 (unknown)");
    o.flags = 1ull << 63;
    expect_create_einval(&o, "flags bit 63 (unknown)");
    o.flags = VX_MACHINE_USER_ONLY | (1ull << 40);
    expect_create_einval(&o, "a known flag plus unknown bit 40");
    o.flags = ~0ull;
    expect_create_einval(&o, "flags ~0");
}
END_TEST

START_TEST(test_opts_known_flags)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 0,
                                    VX_MACHINE_USER_ONLY | VX_MACHINE_IGNORE_UNCLAIMED_IO);
    if (!m)
        return;
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_opts_enums)
{
    vx_machine_opts o = opts_for(usable_accel());
    o.accel = (vx_accel)3;
    expect_create_einval(&o, "accel 3");
    o.accel = (vx_accel)-1;
    expect_create_einval(&o, "accel -1");
    o.accel = (vx_accel)0x7fffffff;
    expect_create_einval(&o, "accel 0x7fffffff");
    o = opts_for(usable_accel());
    o.arch = (vx_arch)2;
    expect_create_einval(&o, "arch 2");
    o.arch = (vx_arch)-1;
    expect_create_einval(&o, "arch -1");
    o.arch = (vx_arch)99;
    expect_create_einval(&o, "arch 99");
}
END_TEST

START_TEST(test_opts_arch_default)
{
    vx_machine_opts o = opts_for(VX_ACCEL_KVM);
    vx_machine *m = NULL;
    o.arch = (vx_arch)0;
    int rc = vx_machine_create(&o, &m);
    if (rc == VX_ENOTSUP || rc == VX_EACCEL) {
        printf("SKIP: kvm: %s\n", vx_last_error());
        return;
    }
    ck_assert_msg(rc == 0, "arch 0 (means x86-64): %d %s: %s", rc, code_name(rc),
                  vx_last_error());
    vx_machine_destroy(m);
    o.arch = VX_ARCH_X86_64;
    CHECK_RC(vx_machine_create(&o, &m), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_opts_vcpus)
{
    vx_machine_opts o = opts_for(usable_accel());
    o.vcpus = VX_MAX_VCPUS + 1;
    expect_create_einval(&o, "vcpus VX_MAX_VCPUS + 1");
    o.vcpus = UINT_MAX;
    expect_create_einval(&o, "vcpus UINT_MAX");

    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 0, 0);
    if (!m)
        return;
    ck_assert_msg(vx_machine_vcpu_count(m) == 1, "vcpus 0 must mean 1, got %u vCPUs",
                  vx_machine_vcpu_count(m));
    vx_vcpu *v0 = vx_machine_vcpu(m, 0);
    ck_assert_msg(v0 != NULL, "vx_machine_vcpu(m, 0) is NULL on a 1-vCPU machine");
    ck_assert_msg(vx_machine_vcpu(m, 1) == NULL, "vx_machine_vcpu(m, 1) on a 1-vCPU "
                  "machine is not NULL");
    ck_assert_uint_eq(vx_vcpu_index(v0), 0);
    ck_assert_ptr_eq(vx_vcpu_machine(v0), m);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_vcpu_lookup)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 3, 0);
    if (!m)
        return;
    ck_assert_uint_eq(vx_machine_vcpu_count(m), 3);
    vx_vcpu *v[3];
    for (unsigned i = 0; i < 3; i++) {
        v[i] = vx_machine_vcpu(m, i);
        ck_assert_msg(v[i] != NULL, "vx_machine_vcpu(m, %u) of 3 is NULL", i);
        ck_assert_uint_eq(vx_vcpu_index(v[i]), i);
        ck_assert_ptr_eq(vx_vcpu_machine(v[i]), m);
        ck_assert_ptr_eq(vx_machine_vcpu(m, i), v[i]);
        for (unsigned j = 0; j < i; j++)
            ck_assert_msg(v[i] != v[j], "vCPUs %u and %u are the same handle", i, j);
    }
    ck_assert_msg(vx_machine_vcpu(m, 3) == NULL, "vx_machine_vcpu(m, 3) of 3 not NULL");
    ck_assert_msg(vx_machine_vcpu(m, VX_MAX_VCPUS) == NULL, "vcpu VX_MAX_VCPUS not NULL");
    ck_assert_msg(vx_machine_vcpu(m, UINT_MAX) == NULL, "vcpu UINT_MAX not NULL");
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_vcpus_max)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, VX_MAX_VCPUS, 0);
    if (!m)
        return;
    ck_assert_uint_eq(vx_machine_vcpu_count(m), VX_MAX_VCPUS);
    ck_assert_ptr_nonnull(vx_machine_vcpu(m, VX_MAX_VCPUS - 1));
    ck_assert_ptr_null(vx_machine_vcpu(m, VX_MAX_VCPUS));
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_accel_available)
{
    ck_assert_msg(vx_accel_available((vx_accel)3) == 0, "vx_accel_available(3) != 0");
    ck_assert_msg(vx_accel_available((vx_accel)-1) == 0, "vx_accel_available(-1) != 0");
    int k = vx_accel_available(VX_ACCEL_KVM);
    int t = vx_accel_available(VX_ACCEL_TCG);
    int a = vx_accel_available(VX_ACCEL_AUTO);
    ck_assert_msg(k == 0 || k == 1, "vx_accel_available(KVM) = %d, not 0 or 1", k);
    ck_assert_msg(t == 0 || t == 1, "vx_accel_available(TCG) = %d, not 0 or 1", t);
    ck_assert_msg(a == (k || t), "vx_accel_available(AUTO) = %d but KVM %d, TCG %d", a, k, t);
    /* Consistent with vx_machine_create. */
    for (int i = 0; i < N_LOOP_ACCELS; i++) {
        vx_machine_opts o = opts_for(loop_accels[i]);
        vx_machine *m = NULL;
        int rc = vx_machine_create(&o, &m);
        int avail = vx_accel_available(loop_accels[i]);
        ck_assert_msg((rc == 0) == (avail == 1),
                      "vx_accel_available(%s) = %d but vx_machine_create(%s) = %d %s (%s)",
                      accel_label(loop_accels[i]), avail, accel_label(loop_accels[i]),
                      rc, code_name(rc), rc ? vx_last_error() : "ok");
        vx_machine_destroy(m);
    }
}
END_TEST

START_TEST(test_kvm_machine)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 0, 0);
    if (!m)
        return;
    ck_assert_int_eq(vx_machine_accel(m), VX_ACCEL_KVM);
    ck_assert_msg(vx_machine_accel_name(m) && strcmp(vx_machine_accel_name(m), "kvm") == 0,
                  "vx_machine_accel_name of a kvm machine is \"%s\"",
                  vx_machine_accel_name(m) ? vx_machine_accel_name(m) : "(NULL)");
    vx_machine_destroy(m);
    /* Many machines, one after another and side by side. */
    vx_machine *ms[8];
    for (int i = 0; i < 8; i++) {
        ms[i] = machine_or_skip(VX_ACCEL_KVM, 0, 0);
        ck_assert_msg(ms[i] != NULL, "kvm machine %d of 8 side by side failed", i);
        map_ram(ms[i], 0, 0x10000);
    }
    for (int i = 0; i < 8; i++)
        vx_machine_destroy(ms[i]);
}
END_TEST

/* The translator: either works, or says VX_ENOTSUP and names itself. */
static void expect_tcg_outcome(int rc, vx_machine *m, const char *how)
{
    if (rc == 0) {
        ck_assert_ptr_nonnull(m);
        ck_assert_msg(vx_machine_accel(m) == VX_ACCEL_TCG,
                      "%s: machine accel is %d (%s), expected tcg", how,
                      (int)vx_machine_accel(m), vx_machine_accel_name(m));
        ck_assert_str_eq(vx_machine_accel_name(m), "tcg");
        return;
    }
    ck_assert_msg(rc == VX_ENOTSUP,
                  "%s returned %d %s; the translator must give a machine or VX_ENOTSUP; "
                  "vx_last_error: \"%s\"", how, rc, code_name(rc), vx_last_error());
    ck_assert_ptr_null(m);
    const char *e = vx_last_error();
    ck_assert_msg(mentions(e, "translator") || mentions(e, "tcg"),
                  "%s gave VX_ENOTSUP but vx_last_error() \"%s\" does not mention the "
                  "translator (tcg)", how, e);
}

START_TEST(test_tcg_machine)
{
    unsetenv("VX_ACCEL");
    vx_machine_opts o = opts_for(VX_ACCEL_TCG);
    vx_machine *m = NULL;
    int rc = vx_machine_create(&o, &m);
    expect_tcg_outcome(rc, m, "vx_machine_create(VX_ACCEL_TCG)");
    ck_assert_msg((rc == 0) == (vx_accel_available(VX_ACCEL_TCG) == 1),
                  "vx_machine_create(TCG) = %d but vx_accel_available(TCG) = %d",
                  rc, vx_accel_available(VX_ACCEL_TCG));
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_env_accel_tcg)
{
    setenv("VX_ACCEL", "tcg", 1);
    vx_machine_opts o = opts_for(VX_ACCEL_AUTO);
    vx_machine *m = NULL;
    int rc = vx_machine_create(&o, &m);
    expect_tcg_outcome(rc, m, "VX_ACCEL=tcg, vx_machine_create(AUTO)");
    vx_machine_destroy(m);
    /* Even when the flags would let AUTO take a software KVM. */
    o.flags = VX_MACHINE_USER_ONLY;
    m = NULL;
    rc = vx_machine_create(&o, &m);
    expect_tcg_outcome(rc, m, "VX_ACCEL=tcg, vx_machine_create(AUTO, USER_ONLY)");
    vx_machine_destroy(m);
    /* NULL opts is AUTO too. */
    m = NULL;
    rc = vx_machine_create(NULL, &m);
    expect_tcg_outcome(rc, m, "VX_ACCEL=tcg, vx_machine_create(NULL opts)");
    vx_machine_destroy(m);
    /* It overrides AUTO only: an explicit kvm stays kvm. */
    if (vx_accel_available(VX_ACCEL_KVM)) {
        o = opts_for(VX_ACCEL_KVM);
        m = NULL;
        CHECK_RC(vx_machine_create(&o, &m), 0);
        ck_assert_msg(vx_machine_accel(m) == VX_ACCEL_KVM,
                      "VX_ACCEL=tcg changed an explicit VX_ACCEL_KVM machine to %s",
                      vx_machine_accel_name(m));
        vx_machine_destroy(m);
    }
    unsetenv("VX_ACCEL");
}
END_TEST

START_TEST(test_env_accel_kvm)
{
    if (!vx_accel_available(VX_ACCEL_KVM)) {
        printf("SKIP: kvm: not available\n");
        return;
    }
    setenv("VX_ACCEL", "kvm", 1);
    vx_machine_opts o = opts_for(VX_ACCEL_AUTO);
    vx_machine *m = NULL;
    int rc = vx_machine_create(&o, &m);
    ck_assert_msg(rc == 0, "VX_ACCEL=kvm, vx_machine_create(AUTO) with kvm available: "
                  "%d %s: %s", rc, code_name(rc), vx_last_error());
    ck_assert_msg(vx_machine_accel(m) == VX_ACCEL_KVM,
                  "VX_ACCEL=kvm but the AUTO machine uses %s", vx_machine_accel_name(m));
    ck_assert_str_eq(vx_machine_accel_name(m), "kvm");
    vx_machine_destroy(m);
    /* And an explicit tcg stays tcg. */
    o = opts_for(VX_ACCEL_TCG);
    m = NULL;
    rc = vx_machine_create(&o, &m);
    expect_tcg_outcome(rc, m, "VX_ACCEL=kvm, vx_machine_create(TCG)");
    vx_machine_destroy(m);
    unsetenv("VX_ACCEL");
}
END_TEST

START_TEST(test_null_handles)
{
    vx_machine_destroy(NULL);
    ck_assert_int_eq(vx_machine_accel(NULL), VX_ACCEL_AUTO);
    ck_assert_msg(vx_machine_accel_name(NULL) &&
                  strcmp(vx_machine_accel_name(NULL), "none") == 0,
                  "vx_machine_accel_name(NULL) is \"%s\", the header says \"none\"",
                  vx_machine_accel_name(NULL) ? vx_machine_accel_name(NULL) : "(NULL)");
    ck_assert_ptr_null(vx_machine_vcpu(NULL, 0));
    ck_assert_uint_eq(vx_machine_vcpu_count(NULL), 0);

    uint8_t buf[16] = {0};
    CHECK_RC(vx_memory_map(NULL, 0, VX_PAGE_SIZE, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_unmap(NULL, 0, VX_PAGE_SIZE), VX_EINVAL);
    CHECK_RC(vx_memory_read(NULL, 0, buf, sizeof buf), VX_EINVAL);
    CHECK_RC(vx_memory_write(NULL, 0, buf, sizeof buf), VX_EINVAL);
    ck_assert_ptr_null(vx_memory_ptr(NULL, 0, 1));

    CHECK_RC(vx_pio_register(NULL, 0x3f8, 8, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(NULL, 0xd0000000, 0x1000, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_pio_unregister(NULL, 0x3f8), VX_EINVAL);
    CHECK_RC(vx_mmio_unregister(NULL, 0xd0000000), VX_EINVAL);
    ck_assert_ptr_null(vx_vcpu_current());

    vx_exit ex;
    memset(&ex, 0, sizeof ex);
    ex.size = sizeof ex;
    CHECK_RC(vx_vcpu_run(NULL, &ex), VX_EINVAL);
    CHECK_RC(vx_vcpu_stop(NULL), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_budget(NULL, 100), VX_EINVAL);
    ck_assert_uint_eq(vx_vcpu_instructions(NULL), 0);
    ck_assert_ptr_null(vx_vcpu_machine(NULL));
    (void)vx_vcpu_index(NULL); /* unspecified value, must not crash */

    vx_x86_regs r;
    vx_x86_sregs s;
    uint64_t val = 0;
    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    CHECK_RC(vx_vcpu_get_regs(NULL, &r), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_regs(NULL, &r), VX_EINVAL);
    CHECK_RC(vx_vcpu_get_sregs(NULL, &s), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_sregs(NULL, &s), VX_EINVAL);
    CHECK_RC(vx_vcpu_get_msr(NULL, 0xc0000080, &val), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_msr(NULL, 0xc0000080, 0), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_mode(NULL, VX_MODE_LONG64, 0), VX_EINVAL);

    CHECK_RC(vx_load_flat(NULL, 0, buf, sizeof buf), VX_EINVAL);
    uint64_t entry = 0;
    CHECK_RC(vx_load_elf(NULL, buf, sizeof buf, &entry), VX_EINVAL);
    ck_assert_msg(vx_last_error()[0] != '\0', "VX_EINVAL for a NULL machine with no "
                  "vx_last_error() detail");
}
END_TEST

/* NULL pointers other than the handle, on a real machine and vCPU. */
START_TEST(test_null_args)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_ptr_nonnull(v);
    map_ram(m, 0, 0x10000);
    CHECK_RC(vx_memory_read(m, 0, NULL, 16), VX_EINVAL);
    CHECK_RC(vx_memory_write(m, 0, NULL, 16), VX_EINVAL);
    CHECK_RC(vx_vcpu_get_regs(v, NULL), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_regs(v, NULL), VX_EINVAL);
    CHECK_RC(vx_vcpu_get_sregs(v, NULL), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_sregs(v, NULL), VX_EINVAL);
    CHECK_RC(vx_vcpu_get_msr(v, 0xc0000080, NULL), VX_EINVAL);
    CHECK_RC(vx_load_flat(m, 0, NULL, 16), VX_EINVAL);
    CHECK_RC(vx_load_elf(m, NULL, 64, NULL), VX_EINVAL);
    /* NULL ops: whatever the library decides, no crash, and a registration
     * that succeeded can be removed. */
    if (vx_pio_register(m, 0x80, 1, NULL, NULL) == 0)
        CHECK_RC(vx_pio_unregister(m, 0x80), 0);
    if (vx_mmio_register(m, 0xd0000000, 0x1000, NULL, NULL) == 0)
        CHECK_RC(vx_mmio_unregister(m, 0xd0000000), 0);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Guest memory                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(test_map_unmap)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0, 0x10000);
    expect_guest_bytes(m, 0, 0x10000, 0, "libvx-allocated RAM must start zeroed");
    fill_guest(m, 0x100, 0x100, 0x5a);
    expect_guest_bytes(m, 0x100, 0x100, 0x5a, "written bytes");
    CHECK_RC(vx_memory_unmap(m, 0, 0x10000), 0);
    uint8_t b[4];
    CHECK_RC(vx_memory_read(m, 0x100, b, sizeof b), VX_ERANGE);
    CHECK_RC(vx_memory_unmap(m, 0, 0x10000), VX_ENOENT);
    /* The space is free again; new memory is zeroed again. */
    map_ram(m, 0, 0x10000);
    expect_guest_bytes(m, 0x100, 0x100, 0, "RAM mapped again after unmap must be zeroed");
    /* Regions that touch are fine. */
    map_ram(m, 0x10000, 0x1000);
    map_ram(m, 0x20000, 0x1000);
    map_ram(m, 0x1f000, 0x1000);
    /* High addresses. */
    map_ram(m, 0x100000000ull, 0x2000);
    fill_guest(m, 0x100000ffcull, 8, 0x11);
    expect_guest_bytes(m, 0x100000ffcull, 8, 0x11, "RAM above 4 GiB");
    /* Unmap in another order than mapped; destroy frees the rest. */
    CHECK_RC(vx_memory_unmap(m, 0x1f000, 0x1000), 0);
    CHECK_RC(vx_memory_unmap(m, 0x10000, 0x1000), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_map_bad_args)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    CHECK_RC(vx_memory_map(m, 0, 0, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0x1000, 0, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1001, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x800, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0x800, 0x1000, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0x1001, 0x1000, NULL, VX_MEM_RWX), VX_EINVAL);
    /* Wraps past 2^64. */
    CHECK_RC(vx_memory_map(m, 0xfffffffffffff000ull, 0x2000, NULL, VX_MEM_RWX), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0x2000, 0xfffffffffffff000ull, NULL, VX_MEM_RWX), VX_EINVAL);
    /* prot: READ is required; unknown bits are bad too. */
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, 0), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, VX_MEM_WRITE), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, VX_MEM_EXEC), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, VX_MEM_WRITE | VX_MEM_EXEC), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, VX_MEM_RWX | 0x8u), VX_EINVAL);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, NULL, 0x80000000u | VX_MEM_READ), VX_EINVAL);
    /* Host memory that is not page aligned. */
    void *host = mmap(NULL, 0x3000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    ck_assert(host != MAP_FAILED);
    CHECK_RC(vx_memory_map(m, 0, 0x1000, (char *)host + 8, VX_MEM_RWX), VX_EINVAL);
    /* None of these left anything mapped. */
    uint8_t b;
    CHECK_RC(vx_memory_read(m, 0, &b, 1), VX_ERANGE);
    CHECK_RC(vx_memory_read(m, 0x1000, &b, 1), VX_ERANGE);
    map_ram(m, 0, 0x2000);
    /* Unmap alignment. */
    CHECK_RC(vx_memory_unmap(m, 0x800, 0x1000), VX_EINVAL);
    CHECK_RC(vx_memory_unmap(m, 0, 0x1800), VX_EINVAL);
    CHECK_RC(vx_memory_unmap(m, 0, 0x2000), 0);
    vx_machine_destroy(m);
    munmap(host, 0x3000);
}
END_TEST

START_TEST(test_map_overlap)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0x100000, 0x10000);
    fill_guest(m, 0x100000, 0x10000, 0x77);

    CHECK_RC(vx_memory_map(m, 0x108000, 0x10000, NULL, VX_MEM_RWX), VX_EEXIST);
    const char *e = vx_last_error();
    ck_assert_msg(mentions(e, "108000") && mentions(e, "100000"),
                  "overlap of 0x108000+0x10000 with 0x100000+0x10000: vx_last_error() "
                  "\"%s\" should name both regions' addresses", e);
    /* Same range, inside, enclosing, the start, the end. */
    CHECK_RC(vx_memory_map(m, 0x100000, 0x10000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0x104000, 0x1000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0xf0000, 0x30000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0xff000, 0x2000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0x10f000, 0x1000, NULL, VX_MEM_READ), VX_EEXIST);
    /* Caller memory overlapping too. */
    void *host = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    ck_assert(host != MAP_FAILED);
    CHECK_RC(vx_memory_map(m, 0x10f000, 0x2000, host, VX_MEM_RWX), VX_EEXIST);
    /* The original is intact and still the only thing there. */
    expect_guest_bytes(m, 0x100000, 0x10000, 0x77, "RAM after refused overlapping maps");
    uint8_t b;
    CHECK_RC(vx_memory_read(m, 0x110000, &b, 1), VX_ERANGE);
    CHECK_RC(vx_memory_read(m, 0xfffff, &b, 1), VX_ERANGE);
    /* Neighbours on both sides are fine. */
    map_ram(m, 0x110000, 0x1000);
    map_ram(m, 0xff000, 0x1000);
    vx_machine_destroy(m);
    munmap(host, 0x2000);
}
END_TEST

START_TEST(test_unmap_enoent)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    CHECK_RC(vx_memory_unmap(m, 0, 0x1000), VX_ENOENT);
    map_ram(m, 0x10000, 0x4000);
    fill_guest(m, 0x10000, 0x4000, 0x3c);
    CHECK_RC(vx_memory_unmap(m, 0x10000, 0x2000), VX_ENOENT);  /* wrong size */
    CHECK_RC(vx_memory_unmap(m, 0x10000, 0x8000), VX_ENOENT);  /* wrong size */
    CHECK_RC(vx_memory_unmap(m, 0x11000, 0x1000), VX_ENOENT);  /* inside */
    CHECK_RC(vx_memory_unmap(m, 0x11000, 0x3000), VX_ENOENT);  /* the tail */
    CHECK_RC(vx_memory_unmap(m, 0xf000, 0x5000), VX_ENOENT);   /* around */
    CHECK_RC(vx_memory_unmap(m, 0x20000, 0x4000), VX_ENOENT);  /* elsewhere */
    expect_guest_bytes(m, 0x10000, 0x4000, 0x3c, "RAM after refused unmaps");
    CHECK_RC(vx_memory_unmap(m, 0x10000, 0x4000), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_rw_within_and_across)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0x0, 0x1000);
    map_ram(m, 0x1000, 0x1000);  /* adjacent, a separate region */
    map_ram(m, 0x2000, 0x2000);
    uint8_t w[0x2800], r[0x2800];
    pattern(w, sizeof w, 1);
    /* Within one region. */
    CHECK_RC(vx_memory_write(m, 0x10, w, 0x100), 0);
    memset(r, 0, sizeof r);
    CHECK_RC(vx_memory_read(m, 0x10, r, 0x100), 0);
    ck_assert_mem_eq(r, w, 0x100);
    /* Across two and three adjacent regions. */
    CHECK_RC(vx_memory_write(m, 0x800, w, 0x1000), 0);
    memset(r, 0, sizeof r);
    CHECK_RC(vx_memory_read(m, 0x800, r, 0x1000), 0);
    ck_assert_mem_eq(r, w, 0x1000);
    /* The halves landed in their own regions. */
    uint8_t *p0 = vx_memory_ptr(m, 0x800, 0x800);
    uint8_t *p1 = vx_memory_ptr(m, 0x1000, 0x800);
    ck_assert_msg(p0 && p1, "vx_memory_ptr within one region returned NULL: %s",
                  vx_last_error());
    ck_assert_mem_eq(p0, w, 0x800);
    ck_assert_mem_eq(p1, w + 0x800, 0x800);
    CHECK_RC(vx_memory_write(m, 0xc00, w, 0x2800), 0);
    memset(r, 0, sizeof r);
    CHECK_RC(vx_memory_read(m, 0xc00, r, 0x2800), 0);
    ck_assert_mem_eq(r, w, 0x2800);
    /* Single bytes at the ends of the mapped space. */
    uint8_t one = 0xe1;
    CHECK_RC(vx_memory_write(m, 0, &one, 1), 0);
    CHECK_RC(vx_memory_write(m, 0x3fff, &one, 1), 0);
    one = 0;
    CHECK_RC(vx_memory_read(m, 0x3fff, &one, 1), 0);
    ck_assert_uint_eq(one, 0xe1);
    /* len 0 succeeds, mapped or not. */
    CHECK_RC(vx_memory_read(m, 0x100, r, 0), 0);
    CHECK_RC(vx_memory_write(m, 0x100, w, 0), 0);
    CHECK_RC(vx_memory_read(m, 0x900000, r, 0), 0);
    CHECK_RC(vx_memory_write(m, 0x900000, w, 0), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_rw_outside)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0x0, 0x2000);
    map_ram(m, 0x3000, 0x1000);  /* hole at 0x2000..0x3000 */
    fill_guest(m, 0, 0x2000, 0xaa);
    fill_guest(m, 0x3000, 0x1000, 0xaa);
    uint8_t w[0x3000], r[0x3000];
    memset(w, 0x55, sizeof w);

    /* Partly past the end. */
    CHECK_RC(vx_memory_write(m, 0x1800, w, 0x1000), VX_ERANGE);
    expect_guest_bytes(m, 0, 0x2000, 0xaa, "a refused (partly outside) write changed RAM");
    /* Across the hole: starts and ends in RAM. */
    CHECK_RC(vx_memory_write(m, 0x1f00, w, 0x1200), VX_ERANGE);
    expect_guest_bytes(m, 0, 0x2000, 0xaa, "a write across a hole changed RAM before it");
    expect_guest_bytes(m, 0x3000, 0x1000, 0xaa, "a write across a hole changed RAM after it");
    /* Runs past the last region. */
    CHECK_RC(vx_memory_write(m, 0x3000 + 0x800, w, 0x1000), VX_ERANGE);
    expect_guest_bytes(m, 0x3000, 0x1000, 0xaa, "a write past the last region changed it");
    /* Wholly outside, and wrapping past 2^64. */
    CHECK_RC(vx_memory_write(m, 0x10000, w, 16), VX_ERANGE);
    CHECK_RC(vx_memory_write(m, UINT64_MAX - 7, w, 16), VX_ERANGE);
    CHECK_RC(vx_memory_write(m, UINT64_MAX, w, 1), VX_ERANGE);
    CHECK_RC(vx_memory_read(m, UINT64_MAX - 7, r, 16), VX_ERANGE);
    CHECK_RC(vx_memory_write(m, 0x1000, w, SIZE_MAX), VX_ERANGE);
    expect_guest_bytes(m, 0, 0x2000, 0xaa, "refused writes changed RAM");

    /* Reads that fail copy nothing into the buffer. */
    memset(r, 0x5a, sizeof r);
    CHECK_RC(vx_memory_read(m, 0x1800, r, 0x1000), VX_ERANGE);
    for (size_t k = 0; k < 0x1000; k++)
        if (r[k] != 0x5a)
            ck_abort_msg("a refused read (0x1800+0x1000) wrote buf[%#zx] = %#x", k, r[k]);
    CHECK_RC(vx_memory_read(m, 0x1f00, r, 0x1200), VX_ERANGE);
    for (size_t k = 0; k < 0x1200; k++)
        if (r[k] != 0x5a)
            ck_abort_msg("a refused read across a hole wrote buf[%#zx] = %#x", k, r[k]);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_host_memory)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    const size_t sz = 0x4000;
    uint8_t *host = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    ck_assert(host != MAP_FAILED);
    pattern(host, sz, 7);
    int rc = vx_memory_map(m, 0x200000, sz, host, VX_MEM_RWX);
    ck_assert_msg(rc == 0, "vx_memory_map with caller memory: %d %s: %s", rc,
                  code_name(rc), vx_last_error());
    /* Used in place, not copied: the guest sees what the host wrote, before
     * and after the map. */
    uint8_t r[0x4000], want[0x4000];
    pattern(want, sz, 7);
    CHECK_RC(vx_memory_read(m, 0x200000, r, sz), 0);
    ck_assert_msg(memcmp(r, want, sz) == 0, "guest RAM does not hold the caller's "
                  "bytes that were there before the map (memory copied or zeroed?)");
    memcpy(host + 0x1230, "from the host", 14);
    CHECK_RC(vx_memory_read(m, 0x201230, r, 14), 0);
    ck_assert_msg(memcmp(r, "from the host", 14) == 0,
                  "a host store to the caller's buffer is not visible through "
                  "vx_memory_read (not used in place)");
    CHECK_RC(vx_memory_write(m, 0x203ff0, "from the guest", 15), 0);
    ck_assert_msg(memcmp(host + 0x3ff0, "from the guest", 15) == 0,
                  "vx_memory_write did not store into the caller's buffer");
    ck_assert_msg(vx_memory_ptr(m, 0x200000, sz) == host,
                  "vx_memory_ptr of caller memory is %p, the caller's buffer is %p",
                  vx_memory_ptr(m, 0x200000, sz), (void *)host);
    ck_assert_msg(vx_memory_ptr(m, 0x201000, 0x10) == host + 0x1000,
                  "vx_memory_ptr(0x201000) is not host + 0x1000");
    /* Unmap: the buffer stays the caller's, with its contents. */
    CHECK_RC(vx_memory_unmap(m, 0x200000, sz), 0);
    ck_assert_msg(memcmp(host + 0x3ff0, "from the guest", 15) == 0,
                  "after unmap the caller's buffer lost its contents");
    host[0] = 0x42; /* still writable: would fault if libvx unmapped it */
    ck_assert_uint_eq(host[0], 0x42);
    CHECK_RC(vx_memory_read(m, 0x200000, r, 1), VX_ERANGE);
    /* Map it again, and leave it mapped across vx_machine_destroy. */
    CHECK_RC(vx_memory_map(m, 0x400000, sz, host, VX_MEM_RWX), 0);
    CHECK_RC(vx_memory_read(m, 0x400000, r, 1), 0);
    ck_assert_uint_eq(r[0], 0x42);
    vx_machine_destroy(m);
    ck_assert_msg(memcmp(host + 0x3ff0, "from the guest", 15) == 0,
                  "after vx_machine_destroy the caller's buffer lost its contents");
    host[sz - 1] = 0x99;
    ck_assert_uint_eq(host[sz - 1], 0x99);
    ck_assert_int_eq(munmap(host, sz), 0);
}
END_TEST

START_TEST(test_memory_ptr)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0, 0x2000);
    map_ram(m, 0x2000, 0x1000);
    uint8_t *p = vx_memory_ptr(m, 0, 0x2000);
    ck_assert_msg(p != NULL, "vx_memory_ptr of a whole region is NULL: %s", vx_last_error());
    ck_assert_msg(vx_memory_ptr(m, 0x1000, 0x1000) == p + 0x1000,
                  "vx_memory_ptr(0x1000) is not ptr(0) + 0x1000");
    ck_assert_ptr_nonnull(vx_memory_ptr(m, 0x2000, 0x1000));
    ck_assert_ptr_nonnull(vx_memory_ptr(m, 0x1fff, 1));
    memcpy(p + 0x123, "ptr", 4);
    char r[4];
    CHECK_RC(vx_memory_read(m, 0x123, r, 4), 0);
    ck_assert_str_eq(r, "ptr");

    /* A distinct earlier failure, so we can see the NULLs set the detail. */
    CHECK_RC(vx_memory_map(m, 0x800, 0x1000, NULL, VX_MEM_RWX), VX_EINVAL);
    char before[512];
    snprintf(before, sizeof before, "%s", vx_last_error());
    ck_assert_msg(vx_memory_ptr(m, 0x1800, 0x1000) == NULL,
                  "vx_memory_ptr of a range spanning two regions is not NULL");
    ck_assert_msg(vx_last_error()[0] != '\0' && strcmp(vx_last_error(), before) != 0,
                  "vx_memory_ptr returned NULL without setting vx_last_error() "
                  "(still \"%s\")", vx_last_error());
    ck_assert_msg(vx_memory_ptr(m, 0x2800, 0x1000) == NULL,
                  "vx_memory_ptr of a range partly outside RAM is not NULL");
    ck_assert_msg(vx_memory_ptr(m, 0x5000, 1) == NULL,
                  "vx_memory_ptr of unmapped memory is not NULL");
    ck_assert_msg(vx_memory_ptr(m, UINT64_MAX, 2) == NULL,
                  "vx_memory_ptr of a range wrapping 2^64 is not NULL");
    ck_assert_msg(vx_memory_ptr(m, 0x1000, SIZE_MAX) == NULL,
                  "vx_memory_ptr with len SIZE_MAX is not NULL");
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_rom_host_write)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    int rc = vx_memory_map(m, 0xf0000, 0x10000, NULL, VX_MEM_READ | VX_MEM_EXEC);
    ck_assert_msg(rc == 0, "mapping ROM (READ|EXEC): %d %s: %s", rc, code_name(rc),
                  vx_last_error());
    CHECK_RC(vx_memory_map(m, 0xe0000, 0x10000, NULL, VX_MEM_READ), 0);
    static const uint8_t reset[] = {0xea, 0x5b, 0xe0, 0x00, 0xf0}; /* jmp f000:e05b */
    CHECK_RC(vx_memory_write(m, 0xffff0, reset, sizeof reset), 0);
    uint8_t r[sizeof reset];
    CHECK_RC(vx_memory_read(m, 0xffff0, r, sizeof r), 0);
    ck_assert_msg(memcmp(r, reset, sizeof r) == 0,
                  "a host vx_memory_write to ROM did not store (it must, to load ROM)");
    /* Across the two ROM regions. */
    uint8_t w[0x100];
    pattern(w, sizeof w, 3);
    CHECK_RC(vx_memory_write(m, 0xeff80, w, sizeof w), 0);
    uint8_t rr[0x100];
    CHECK_RC(vx_memory_read(m, 0xeff80, rr, sizeof rr), 0);
    ck_assert_mem_eq(rr, w, sizeof w);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Device registration                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(test_pio_register)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    CHECK_RC(vx_pio_register(m, 0x3f8, 8, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_register(m, 0x3f8, 8, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0x3fc, 8, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0x3f0, 9, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0x3ff, 1, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0x3f9, 2, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0x300, 0x200, &good_ops, NULL), VX_EEXIST);
    /* Neighbours. */
    CHECK_RC(vx_pio_register(m, 0x3f0, 8, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_register(m, 0x400, 1, &good_ops, NULL), 0);
    /* The top of the port space. */
    CHECK_RC(vx_pio_register(m, 0xfff0, 0x10, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_register(m, 0xffe0, 0x11, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_pio_register(m, 0xff00, 0x101, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_pio_register(m, 0xffff, 2, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_pio_register(m, 0, 0x10001, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_pio_register(m, 0x1000, UINT32_MAX, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_pio_register(m, 0x1000, 0, &good_ops, NULL), VX_EINVAL);
    /* Unregister: only by the start of a range. */
    CHECK_RC(vx_pio_unregister(m, 0x100), VX_ENOENT);
    CHECK_RC(vx_pio_unregister(m, 0x3f9), VX_ENOENT);
    CHECK_RC(vx_pio_unregister(m, 0x3f8), 0);
    CHECK_RC(vx_pio_unregister(m, 0x3f8), VX_ENOENT);
    /* The range is free again, for any shape. */
    CHECK_RC(vx_pio_register(m, 0x3f8, 8, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_unregister(m, 0x3f8), 0);
    CHECK_RC(vx_pio_register(m, 0x3fa, 2, &good_ops, NULL), 0);
    /* The whole space when empty. */
    CHECK_RC(vx_pio_unregister(m, 0x3fa), 0);
    CHECK_RC(vx_pio_unregister(m, 0x3f0), 0);
    CHECK_RC(vx_pio_unregister(m, 0x400), 0);
    CHECK_RC(vx_pio_unregister(m, 0xfff0), 0);
    CHECK_RC(vx_pio_register(m, 0, 0x10000, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_unregister(m, 0), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_io_ops_size)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    vx_io_ops ops = good_ops;
    ops.size = 0;
    CHECK_RC(vx_pio_register(m, 0x80, 1, &ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &ops, NULL), VX_EINVAL);
    ops.size = offsetof(vx_io_ops, read);
    CHECK_RC(vx_pio_register(m, 0x80, 1, &ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &ops, NULL), VX_EINVAL);
    ops.size = offsetof(vx_io_ops, write);
    CHECK_RC(vx_pio_register(m, 0x80, 1, &ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &ops, NULL), VX_EINVAL);
    /* Nothing was registered by the refusals. */
    CHECK_RC(vx_pio_unregister(m, 0x80), VX_ENOENT);
    CHECK_RC(vx_mmio_unregister(m, 0xd0000000), VX_ENOENT);
    /* NULL callbacks are allowed (reads all ones, writes ignored). */
    vx_io_ops none;
    memset(&none, 0, sizeof none);
    none.size = sizeof none;
    CHECK_RC(vx_pio_register(m, 0x80, 1, &none, NULL), 0);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &none, NULL), 0);
    /* ops is copied: changing the caller's struct afterwards is harmless. */
    ops = good_ops;
    CHECK_RC(vx_pio_register(m, 0x90, 1, &ops, NULL), 0);
    memset(&ops, 0, sizeof ops);
    CHECK_RC(vx_pio_unregister(m, 0x90), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_mmio_register)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &good_ops, NULL), 0);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xd0000800, 0x1000, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xcffffff0, 0x11, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xd0000fff, 1, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xc0000000, 0x20000000, &good_ops, NULL), VX_EEXIST);
    /* No alignment required; neighbours are fine. */
    CHECK_RC(vx_mmio_register(m, 0xd0001000, 3, &good_ops, NULL), 0);
    CHECK_RC(vx_mmio_register(m, 0xd0001003, 1, &good_ops, NULL), 0);
    CHECK_RC(vx_mmio_register(m, 0xd0001002, 2, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xcffffff0, 0x10, &good_ops, NULL), 0);
    /* Bad sizes. */
    CHECK_RC(vx_mmio_register(m, 0xe0000000, 0, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(m, UINT64_MAX, 2, &good_ops, NULL), VX_EINVAL);
    CHECK_RC(vx_mmio_register(m, 0xe0000000, UINT64_MAX, &good_ops, NULL), VX_EINVAL);
    /* Unregister: only by the start. */
    CHECK_RC(vx_mmio_unregister(m, 0xe0000000), VX_ENOENT);
    CHECK_RC(vx_mmio_unregister(m, 0xd0000001), VX_ENOENT);
    CHECK_RC(vx_mmio_unregister(m, 0xd0000000), 0);
    CHECK_RC(vx_mmio_unregister(m, 0xd0000000), VX_ENOENT);
    CHECK_RC(vx_mmio_register(m, 0xd0000000, 0x1000, &good_ops, NULL), 0);
    /* Ports and addresses are separate spaces. */
    CHECK_RC(vx_pio_register(m, 0x1003, 1, &good_ops, NULL), 0);
    CHECK_RC(vx_mmio_register(m, 0x1003, 1, &good_ops, NULL), 0);
    CHECK_RC(vx_pio_unregister(m, 0x1003), 0);
    CHECK_RC(vx_mmio_unregister(m, 0x1003), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_mmio_vs_ram)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    map_ram(m, 0, 0x10000);
    /* MMIO over RAM. */
    CHECK_RC(vx_mmio_register(m, 0xff00, 0x200, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0x0, 1, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0x8000, 0x10, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0xffff, 1, &good_ops, NULL), VX_EEXIST);
    CHECK_RC(vx_mmio_register(m, 0x10000, 0x10, &good_ops, NULL), 0);  /* just after */
    /* ROM counts as memory too. */
    CHECK_RC(vx_memory_map(m, 0xf0000, 0x10000, NULL, VX_MEM_READ), 0);
    CHECK_RC(vx_mmio_register(m, 0xfffff, 1, &good_ops, NULL), VX_EEXIST);
    /* RAM over MMIO. */
    CHECK_RC(vx_mmio_register(m, 0xd0000800, 0x10, &good_ops, NULL), 0);
    CHECK_RC(vx_memory_map(m, 0xd0000000, 0x1000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0xcfff0000, 0x20000, NULL, VX_MEM_RWX), VX_EEXIST);
    CHECK_RC(vx_memory_map(m, 0x10000, 0x1000, NULL, VX_MEM_RWX), VX_EEXIST);
    uint8_t b;
    CHECK_RC(vx_memory_read(m, 0xd0000000, &b, 1), VX_ERANGE);
    /* After unregistering, the RAM fits. */
    CHECK_RC(vx_mmio_unregister(m, 0xd0000800), 0);
    CHECK_RC(vx_memory_map(m, 0xd0000000, 0x1000, NULL, VX_MEM_RWX), 0);
    /* vx_memory_read/write do not reach MMIO: it is not "mapped". */
    uint8_t w[0x20] = {0};
    CHECK_RC(vx_memory_write(m, 0xfff8, w, 0x10), VX_ERANGE);
    expect_guest_bytes(m, 0xfff8, 8, 0, "a refused write into MMIO changed RAM");
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* vCPU argument checks                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(test_run_bad_exit)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_ptr_nonnull(v);
    CHECK_RC(vx_vcpu_run(v, NULL), VX_EINVAL);
    vx_exit ex;
    memset(&ex, 0, sizeof ex);
    ex.size = 0;
    CHECK_RC(vx_vcpu_run(v, &ex), VX_EINVAL);
    ex.size = sizeof(size_t);
    CHECK_RC(vx_vcpu_run(v, &ex), VX_EINVAL);
    ex.size = offsetof(vx_exit, u);
    CHECK_RC(vx_vcpu_run(v, &ex), VX_EINVAL);
    /* The refusals did not run the vCPU: still at the reset vector. */
    vx_x86_regs r;
    CHECK_RC(vx_vcpu_get_regs(v, &r), 0);
    ck_assert_msg(r.rip == 0xfff0, "after refused vx_vcpu_run calls rip = %#llx, "
                  "expected the reset value 0xfff0", (unsigned long long)r.rip);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_set_mode_args)
{
    vx_machine *m = loop_machine(_i);
    if (!m)
        return;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_ptr_nonnull(v);
    /* No RAM at all. */
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0x10000), VX_ERANGE);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_PROT32, 0x10000), VX_ERANGE);
    /* Real mode does not use the tables. */
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_REAL, 0x10000), 0);
    /* Some RAM, but less than VX_X86_MODE_TABLES_SIZE at tables_gpa. */
    map_ram(m, 0, 0x4000);
    fill_guest(m, 0, 0x4000, 0xaa);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0), VX_ERANGE);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_PROT32, 0), VX_ERANGE);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0x3000), VX_ERANGE);
    expect_guest_bytes(m, 0, 0x4000, 0xaa, "vx_vcpu_set_mode refused with VX_ERANGE "
                       "but wrote tables into RAM");
    /* In ROM: the header asks for mapped RAM. */
    CHECK_RC(vx_memory_map(m, 0x100000, 0x10000, NULL, VX_MEM_READ), 0);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0x100000), VX_ERANGE);
    /* Tables that would run past 2^64. */
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, UINT64_MAX & ~0xfffull), VX_ERANGE);
    /* Bad modes. */
    map_ram(m, 0x10000, 0x10000);
    CHECK_RC(vx_vcpu_set_mode(v, (vx_cpu_mode)0, 0x10000), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_mode(v, (vx_cpu_mode)4, 0x10000), VX_EINVAL);
    CHECK_RC(vx_vcpu_set_mode(v, (vx_cpu_mode)-1, 0x10000), VX_EINVAL);
    /* Misaligned tables: a bad argument, as for vx_memory_map. */
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0x10800), VX_EINVAL);
    /* And the success that these were measured against. */
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_LONG64, 0x10000), 0);
    uint64_t pml4e = 0;
    CHECK_RC(vx_memory_read(m, 0x10000, &pml4e, sizeof pml4e), 0);
    ck_assert_msg((pml4e & 1) && (pml4e & ~0xfffull & 0x000ffffffffff000ull) == 0x11000,
                  "PML4[0] = %#llx, expected present and pointing at tables+0x1000 (0x11000)",
                  (unsigned long long)pml4e);
    vx_x86_sregs s;
    CHECK_RC(vx_vcpu_get_sregs(v, &s), 0);
    ck_assert_msg(s.cs.selector == VX_X86_SEL_CODE64 && s.cs.l == 1,
                  "after LONG64 cs = %#x l=%u, expected %#x l=1", s.cs.selector, s.cs.l,
                  VX_X86_SEL_CODE64);
    ck_assert_msg((s.efer & 0x500) == 0x500, "after LONG64 efer = %#llx, LME|LMA not set",
                  (unsigned long long)s.efer);
    ck_assert_msg((s.cr0 & 0x80000001u) == 0x80000001u, "after LONG64 cr0 = %#llx",
                  (unsigned long long)s.cr0);
    ck_assert_msg(s.cr3 == 0x10000, "after LONG64 cr3 = %#llx, expected 0x10000",
                  (unsigned long long)s.cr3);
    CHECK_RC(vx_vcpu_set_mode(v, VX_MODE_PROT32, 0x10000), 0);
    CHECK_RC(vx_vcpu_get_sregs(v, &s), 0);
    ck_assert_msg(s.cs.selector == VX_X86_SEL_CODE32 && (s.cr0 & 0x80000001u) == 1 &&
                  (s.efer & 0x400) == 0,
                  "after PROT32 cs = %#x cr0 = %#llx efer = %#llx", s.cs.selector,
                  (unsigned long long)s.cr0, (unsigned long long)s.efer);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_budget_kvm)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_KVM, 0, 0);
    if (!m)
        return;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_ptr_nonnull(v);
    CHECK_RC(vx_vcpu_set_budget(v, 1000), VX_ENOTSUP);
    ck_assert_msg(vx_last_error()[0] != '\0',
                  "vx_vcpu_set_budget on kvm: VX_ENOTSUP without a vx_last_error() detail");
    ck_assert_uint_eq(vx_vcpu_instructions(v), 0);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(test_budget_tcg)
{
    vx_machine *m = machine_or_skip(VX_ACCEL_TCG, 0, 0);
    if (!m)
        return;
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    ck_assert_ptr_nonnull(v);
    CHECK_RC(vx_vcpu_set_budget(v, 1000), 0);
    CHECK_RC(vx_vcpu_set_budget(v, 0), 0);
    ck_assert_uint_eq(vx_vcpu_instructions(v), 0);
    vx_machine_destroy(m);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc;

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_last_error_thread_local);
    tcase_add_test(tc, test_last_error_concurrent);
    tcase_add_test(tc, test_last_error_kept_on_success);
    suite_add_tcase(s, tc);

    tc = tcase_create("machine");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_opts_null);
    tcase_add_test(tc, test_opts_out_null);
    tcase_add_test(tc, test_opts_size);
    tcase_add_test(tc, test_opts_flags);
    tcase_add_test(tc, test_opts_known_flags);
    tcase_add_test(tc, test_opts_enums);
    tcase_add_test(tc, test_opts_arch_default);
    tcase_add_test(tc, test_opts_vcpus);
    tcase_add_test(tc, test_vcpu_lookup);
    tcase_add_test(tc, test_vcpus_max);
    tcase_add_test(tc, test_accel_available);
    tcase_add_test(tc, test_kvm_machine);
    tcase_add_test(tc, test_tcg_machine);
    tcase_add_test(tc, test_env_accel_tcg);
    tcase_add_test(tc, test_env_accel_kvm);
    tcase_add_test(tc, test_null_handles);
    tcase_add_loop_test(tc, test_null_args, 0, N_LOOP_ACCELS);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_map_unmap, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_map_bad_args, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_map_overlap, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_unmap_enoent, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_rw_within_and_across, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_rw_outside, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_host_memory, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_memory_ptr, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_rom_host_write, 0, N_LOOP_ACCELS);
    suite_add_tcase(s, tc);

    tc = tcase_create("devices");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_pio_register, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_io_ops_size, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_mmio_register, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_mmio_vs_ram, 0, N_LOOP_ACCELS);
    suite_add_tcase(s, tc);

    tc = tcase_create("vcpu");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_run_bad_exit, 0, N_LOOP_ACCELS);
    tcase_add_loop_test(tc, test_set_mode_args, 0, N_LOOP_ACCELS);
    tcase_add_test(tc, test_budget_kvm);
    tcase_add_test(tc, test_budget_tcg);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
