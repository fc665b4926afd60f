/* Harness for the guest-program tests; see guest_util.h. */
#include "guest_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GUEST_DIR
#define GUEST_DIR "tests/guests"
#endif

const vx_accel guest_accels[GUEST_ACCEL_COUNT] = {VX_ACCEL_KVM, VX_ACCEL_TCG};

bool guest_kvm_is_software(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

const char *guest_accel_label(vx_accel accel)
{
    switch (accel) {
    case VX_ACCEL_KVM: return "kvm";
    case VX_ACCEL_TCG: return "tcg";
    case VX_ACCEL_AUTO: return "auto";
    }
    return "unknown";
}

const char *guest_exit_name(uint32_t reason)
{
    static _Thread_local char other[32];

    switch (reason) {
    case VX_EXIT_HLT: return "hlt";
    case VX_EXIT_IO: return "io";
    case VX_EXIT_MMIO: return "mmio";
    case VX_EXIT_SHUTDOWN: return "shutdown";
    case VX_EXIT_STOPPED: return "stopped";
    case VX_EXIT_BUDGET: return "budget";
    case VX_EXIT_DEBUG: return "debug";
    case VX_EXIT_INTERNAL: return "internal";
    }
    snprintf(other, sizeof(other), "reason %" PRIu32, reason);
    return other;
}

const char *guest_describe_exit(const vx_exit *e, char *buf, size_t size)
{
    switch (e->reason) {
    case VX_EXIT_IO:
        snprintf(buf, size, "io %s port 0x%x len %u value 0x%" PRIx64,
                 e->u.io.is_write ? "write" : "read", e->u.io.port, e->u.io.len,
                 e->u.io.value);
        break;
    case VX_EXIT_MMIO:
        snprintf(buf, size, "mmio %s gpa 0x%" PRIx64 " len %u value 0x%" PRIx64,
                 e->u.mmio.is_write ? "write" : "read", e->u.mmio.gpa, e->u.mmio.len,
                 e->u.mmio.value);
        break;
    case VX_EXIT_SHUTDOWN:
        snprintf(buf, size, "shutdown kind %" PRIu32 " code %" PRIu32, e->u.shutdown.kind,
                 e->u.shutdown.code);
        break;
    default:
        snprintf(buf, size, "%s", guest_exit_name(e->reason));
        break;
    }
    return buf;
}

bool guest_create(guest *g, vx_accel accel, unsigned vcpus, uint64_t flags)
{
    memset(g, 0, sizeof(*g));
    g->accel = accel;
    g->label = guest_accel_label(accel);

    vx_machine_opts opts = {
        .size = sizeof(opts),
        .arch = VX_ARCH_X86_64,
        .accel = accel,
        .vcpus = vcpus,
        .flags = flags,
    };
    /* Not NULL, to see that a failing create clears *out as vx.h says. */
    static char not_a_machine;
    vx_machine *m = (vx_machine *)&not_a_machine;
    int rc = vx_machine_create(&opts, &m);
    if (rc != 0) {
        /* vx_last_error() lives only until the next libvx call. */
        char why[512];
        snprintf(why, sizeof(why), "%s", vx_last_error());
        ck_assert_msg(rc < 0, "%s: vx_machine_create returned %d", g->label, rc);
        ck_assert_msg(m == NULL, "%s: vx_machine_create failed but left *out set", g->label);
        ck_assert_msg(!vx_accel_available(accel),
                      "%s: vx_accel_available() says yes but vx_machine_create failed: "
                      "%s (%s)", g->label, vx_strerror(rc), why);
        printf("SKIP: %s: %s\n", g->label, why[0] ? why : vx_strerror(rc));
        fflush(stdout);
        return false;
    }
    ck_assert_msg(m != NULL, "%s: vx_machine_create succeeded with no machine", g->label);
    g->m = m;
    ck_assert_msg(vx_machine_accel(m) == accel, "%s: machine reports accelerator %d",
                  g->label, (int)vx_machine_accel(m));
    ck_assert_str_eq(vx_machine_accel_name(m), g->label);
    ck_assert_uint_eq(vx_machine_vcpu_count(m), vcpus ? vcpus : 1);
    g->v = vx_machine_vcpu(m, 0);
    ck_assert_msg(g->v != NULL, "%s: no vCPU 0", g->label);

    rc = vx_memory_map(m, 0, GUEST_RAM_SIZE, NULL, VX_MEM_RWX);
    ck_assert_msg(rc == 0, "%s: mapping RAM: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
    return true;
}

void guest_load(guest *g, const char *name)
{
    const char *dir = getenv("VX_GUEST_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = GUEST_DIR;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.bin", dir, name);

    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open guest %s: %s", path, strerror(errno));
    /* The program must end below GUEST_DATA_GPA, where its data begins. */
    const size_t room = GUEST_DATA_GPA - GUEST_CODE_GPA;
    unsigned char *image = malloc(room + 1);
    ck_assert(image != NULL);
    size_t len = fread(image, 1, room + 1, f);
    fclose(f);
    ck_assert_msg(len > 0, "guest %s is empty", path);
    ck_assert_msg(len <= room, "guest %s does not fit below GUEST_DATA_GPA", path);

    int rc = vx_load_flat(g->m, GUEST_CODE_GPA, image, len);
    free(image);
    ck_assert_msg(rc == 0, "%s: vx_load_flat(%s): %s (%s)", g->label, name, vx_strerror(rc),
                  vx_last_error());
    g->image_len = len;
}

void guest_start_vcpu(guest *g, vx_vcpu *v, vx_cpu_mode mode)
{
    int rc = vx_vcpu_set_mode(v, mode, GUEST_TABLES_GPA);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_set_mode(%d): %s (%s)", g->label, (int)mode,
                  vx_strerror(rc), vx_last_error());
    vx_x86_regs r = guest_get_regs(g, v);
    uint64_t rflags = r.rflags;
    memset(&r, 0, sizeof(r));
    r.rip = GUEST_CODE_GPA;
    r.rsp = GUEST_STACK_TOP;
    r.rflags = rflags;
    guest_set_regs(g, v, &r);
}

bool guest_setup(guest *g, vx_accel accel, const char *name, vx_cpu_mode mode)
{
    if (!guest_create(g, accel, 1, 0))
        return false;
    guest_load(g, name);
    guest_start_vcpu(g, g->v, mode);
    return true;
}

void guest_destroy(guest *g)
{
    vx_machine_destroy(g->m);
    g->m = NULL;
    g->v = NULL;
}

void guest_exit_init(vx_exit *e)
{
    memset(e, 0, sizeof(*e));
    e->size = sizeof(*e);
}

void guest_run_vcpu(guest *g, vx_vcpu *v, vx_exit *e)
{
    int rc = vx_vcpu_run(v, e);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_run: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
}

void guest_run_expect(guest *g, vx_exit *e, uint32_t reason)
{
    guest_run_vcpu(g, g->v, e);
    if (e->reason == reason)
        return;

    char why[512], what[160];
    snprintf(why, sizeof(why), "%s", vx_last_error());
    guest_describe_exit(e, what, sizeof(what));
    vx_x86_regs r;
    memset(&r, 0, sizeof(r));
    vx_vcpu_get_regs(g->v, &r);
    ck_abort_msg("%s: exit %s at rip 0x%" PRIx64 ", want %s (last error: \"%s\")", g->label,
                 what, r.rip, guest_exit_name(reason), why);
}

void guest_run_to_hlt(guest *g)
{
    vx_exit e;
    guest_exit_init(&e);
    guest_run_expect(g, &e, VX_EXIT_HLT);
}

vx_x86_regs guest_get_regs(guest *g, vx_vcpu *v)
{
    vx_x86_regs r;
    memset(&r, 0, sizeof(r));
    int rc = vx_vcpu_get_regs(v, &r);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_get_regs: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
    return r;
}

void guest_set_regs(guest *g, vx_vcpu *v, const vx_x86_regs *r)
{
    int rc = vx_vcpu_set_regs(v, r);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_set_regs: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
}

vx_x86_sregs guest_get_sregs(guest *g, vx_vcpu *v)
{
    vx_x86_sregs s;
    memset(&s, 0, sizeof(s));
    int rc = vx_vcpu_get_sregs(v, &s);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_get_sregs: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
    return s;
}

void guest_set_sregs(guest *g, vx_vcpu *v, const vx_x86_sregs *s)
{
    int rc = vx_vcpu_set_sregs(v, s);
    ck_assert_msg(rc == 0, "%s: vx_vcpu_set_sregs: %s (%s)", g->label, vx_strerror(rc),
                  vx_last_error());
}

void guest_read(guest *g, uint64_t gpa, void *buf, size_t len)
{
    int rc = vx_memory_read(g->m, gpa, buf, len);
    ck_assert_msg(rc == 0, "%s: vx_memory_read(0x%" PRIx64 ", %zu): %s (%s)", g->label, gpa,
                  len, vx_strerror(rc), vx_last_error());
}

void guest_write(guest *g, uint64_t gpa, const void *buf, size_t len)
{
    int rc = vx_memory_write(g->m, gpa, buf, len);
    ck_assert_msg(rc == 0, "%s: vx_memory_write(0x%" PRIx64 ", %zu): %s (%s)", g->label, gpa,
                  len, vx_strerror(rc), vx_last_error());
}

/* Guest memory is little-endian whatever the host is. */
static uint64_t le_load(const unsigned char *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = len; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static void le_store(unsigned char *p, size_t len, uint64_t v)
{
    for (size_t i = 0; i < len; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

uint64_t guest_read_u64(guest *g, uint64_t gpa)
{
    unsigned char b[8];
    guest_read(g, gpa, b, sizeof(b));
    return le_load(b, sizeof(b));
}

uint32_t guest_read_u32(guest *g, uint64_t gpa)
{
    unsigned char b[4];
    guest_read(g, gpa, b, sizeof(b));
    return (uint32_t)le_load(b, sizeof(b));
}

uint16_t guest_read_u16(guest *g, uint64_t gpa)
{
    unsigned char b[2];
    guest_read(g, gpa, b, sizeof(b));
    return (uint16_t)le_load(b, sizeof(b));
}

void guest_write_u32(guest *g, uint64_t gpa, uint32_t value)
{
    unsigned char b[4];
    le_store(b, sizeof(b), value);
    guest_write(g, gpa, b, sizeof(b));
}

void guest_write_u64(guest *g, uint64_t gpa, uint64_t value)
{
    unsigned char b[8];
    le_store(b, sizeof(b), value);
    guest_write(g, gpa, b, sizeof(b));
}
