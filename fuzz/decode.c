/*
 * Fuzz target: the translator's decoder and one block's execution.
 *
 * Input: byte 0 picks the mode (real, 32-bit, 64-bit; ring 0 or 3), byte 1
 * seeds the registers, the rest is code at 0x1000 in 64 KiB of RAM with an
 * unclaimed MMIO hole above it. The run is bounded by an instruction budget;
 * port and MMIO exits are answered and the run goes on a few times. Whatever
 * the bytes, libvx must not crash, hang or touch host memory outside the
 * guest's (ASan watches), and every exit must be one of the documented ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/vx.h>

#define RAM_SIZE 0x20000u
#define CODE_GPA 0x1000u
#define TABLES_GPA 0x10000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    vx_machine_opts o = { .size = sizeof o, .accel = VX_ACCEL_TCG };
    vx_machine *m;
    if (vx_machine_create(&o, &m))
        abort(); /* tcg is always there */
    if (vx_memory_map(m, 0, RAM_SIZE, NULL, VX_MEM_RWX))
        abort();
    size_t code = size - 2;
    if (code > RAM_SIZE - CODE_GPA - 0x1000)
        code = RAM_SIZE - CODE_GPA - 0x1000;
    vx_load_flat(m, CODE_GPA, data + 2, code);
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    static const vx_cpu_mode modes[3] = { VX_MODE_REAL, VX_MODE_PROT32, VX_MODE_LONG64 };
    vx_cpu_mode mode = modes[(data[0] & 3) % 3];
    if (vx_vcpu_set_mode(v, mode, TABLES_GPA))
        abort();
    if (mode != VX_MODE_REAL && (data[0] & 4)) {
        /* Ring 3 with the user selectors of the mode's GDT. */
        vx_x86_sregs s;
        vx_vcpu_get_sregs(v, &s);
        s.cs.selector = (mode == VX_MODE_LONG64 ? VX_X86_SEL_USER_CODE64 : VX_X86_SEL_USER_CODE32) | 3;
        s.cs.dpl = 3;
        s.ss.selector = s.ds.selector = s.es.selector = VX_X86_SEL_USER_DATA | 3;
        s.ss.dpl = s.ds.dpl = s.es.dpl = 3;
        vx_vcpu_set_sregs(v, &s);
    }
    vx_x86_regs r;
    memset(&r, 0, sizeof r);
    uint64_t seed = data[1] * 0x9e3779b97f4a7c15ull;
    uint64_t *g = &r.rax;
    for (int k = 0; k < 16; k++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        /* Half the registers point into RAM, so memory operands land there. */
        g[k] = (k & 1) ? seed : 0x8000 + (seed & 0x7fff);
    }
    r.rip = CODE_GPA;
    r.rsp = 0xf000;
    r.rflags = 0x2 | ((data[0] & 8) ? 0x400 : 0) | ((data[0] & 0x10) ? 0x3000 : 0);
    vx_vcpu_set_regs(v, &r);
    vx_vcpu_set_budget(v, 2000);
    vx_exit e = { .size = sizeof e };
    for (int round = 0; round < 8; round++) {
        if (vx_vcpu_run(v, &e))
            abort();
        if (e.reason == VX_EXIT_IO) {
            e.u.io.value = 0x5a5a5a5a;
            continue;
        }
        if (e.reason == VX_EXIT_MMIO) {
            e.u.mmio.value = 0xa5a5a5a5a5a5a5a5ull;
            continue;
        }
        if (e.reason < VX_EXIT_HLT || e.reason > VX_EXIT_INTERNAL)
            abort();
        break;
    }
    vx_machine_destroy(m);
    return 0;
}
