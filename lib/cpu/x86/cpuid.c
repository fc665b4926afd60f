/* The CPUID model (see cpuid.h for what it advertises and why). */
#include "config.h"

#include <string.h>

#include "cpu/x86/cpuid.h"

#define BIT(n) (1u << (n))

static void chars(uint32_t out[4], const char *s)
{
    char buf[16] = { 0 };
    memcpy(buf, s, strnlen(s, 16));
    memcpy(out, buf, 16);
}

void x86_cpuid(const struct x86_cpu *c, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    (void)subleaf;
    static const char brand[48] = "libvx tcg x86-64";
    out[0] = out[1] = out[2] = out[3] = 0;
    switch (leaf) {
    case 0:
        out[0] = 7;
        memcpy(&out[1], "Genu", 4); /* ebx edx ecx spell GenuineIntel */
        memcpy(&out[3], "ineI", 4);
        memcpy(&out[2], "ntel", 4);
        return;
    case 1:
        out[0] = (6u << 8) | (0x3u << 16) | (0xau << 4) | 9; /* family 6, model 0x3a */
        out[1] = (c->apic_id << 24) | (8u << 8); /* APIC id; clflush line 64 bytes */
        out[2] = BIT(13) | BIT(23);                              /* cx16 popcnt */
        /* fpu pse tsc pae cx8 cmov clflush mmx fxsr sse sse2: ops_fpu.c and
         * ops_sse.c implement every instruction of these (and fisttp of SSE3,
         * which is not advertised: SSE3 is not complete); msr sep pge pat
         * pse36: ops_system.c, msr.c and the page walker */
        out[3] = BIT(0) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(8) | BIT(11) | BIT(13) |
                 BIT(15) | BIT(16) | BIT(17) | BIT(19) | BIT(23) | BIT(24) | BIT(25) | BIT(26);
        return;
    case 0x80000000:
        out[0] = 0x80000008;
        return;
    case 0x80000001:
        out[2] = BIT(0) | BIT(5);              /* lahf_lm abm */
        out[3] = BIT(11) | BIT(20) | BIT(26) | BIT(27) | BIT(29); /* syscall nx pdpe1gb rdtscp lm */
        return;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
        char part[16];
        memcpy(part, brand + 16 * (leaf - 0x80000002), 16);
        chars(out, part);
        return;
    }
    case 0x80000008:
        out[0] = 40 | (48 << 8);
        return;
    default:
        /* Leaves above the maximum answer as the highest basic leaf does
         * on Intel; the leaves below it that this model has nothing in
         * answer zero. */
        if (leaf > 7 && leaf < 0x80000000)
            x86_cpuid(c, 7, subleaf, out);
        return;
    }
}
