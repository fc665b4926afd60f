/*
 * The pc board's ACPI description (lib/devices/acpi.c) and its PM1 /
 * PM-timer registers (lib/devices/acpi_pm.c), checked against the ACPI
 * specification's layouts by walking the tables as an OS does: RSDP ->
 * XSDT -> FADT -> FACS/DSDT, XSDT -> MADT, and the DSDT's AML decoded
 * far enough to read _PRT back. Where acpica-tools is installed, `iasl -d`
 * must also decompile the DSDT without an error. The loader's side
 * (boot_params and e820 for a board of several processors) runs through
 * vxi_boot_linux with a minimal bzImage built here.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvx/pc.h>
#include <libvx/vx.h>

#include "core/linux.h"
#include "devices/acpi.h"
#include "devices/acpi_pm.h"
#include "devices/pc.h"

static const struct acpi_pc_config CFG = {
    .ncpus = 2, .apics = 1, .sci_irq = 9, .pm_base = 0x600, .pci_mmio_base = 0xe0000000u,
    .pci_mmio_size = 0x1ec00000u, .pci_irq = { 10, 11, 5, 9 },
};
#define GPA 0x9c000u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* The table at guest address gpa inside buf, checked: signature, length
 * inside the buffer, checksum. */
static const uint8_t *table(const uint8_t *buf, size_t len, uint64_t gpa, const char *sig)
{
    ck_assert_uint_ge(gpa, GPA);
    ck_assert_uint_lt(gpa - GPA + 36, len + 1);
    const uint8_t *t = buf + (gpa - GPA);
    ck_assert_msg(!memcmp(t, sig, 4), "want %s, found %.4s", sig, (const char *)t);
    ck_assert_uint_le(gpa - GPA + rd32(t + 4), len);
    ck_assert_msg(acpi_sum(t, rd32(t + 4)) == 0, "%s checksum", sig);
    return t;
}

struct walk {
    const uint8_t *fadt, *madt, *dsdt, *facs;
};

static struct walk walk_n(const uint8_t *buf, size_t len, unsigned want_tables)
{
    struct walk w = { 0 };
    ck_assert(!memcmp(buf, "RSD PTR ", 8));
    ck_assert_uint_eq(acpi_sum(buf, 20), 0);
    ck_assert_uint_eq(acpi_sum(buf, 36), 0);
    ck_assert_uint_eq(buf[15], 2);         /* revision: XSDT */
    ck_assert_uint_eq(rd32(buf + 20), 36); /* length */
    const uint8_t *x = table(buf, len, rd64(buf + 24), "XSDT");
    unsigned n = (rd32(x + 4) - 36) / 8;
    ck_assert_uint_eq(n, want_tables);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = rd64(x + 36 + 8 * i);
        const uint8_t *t = buf + (a - GPA);
        if (!memcmp(t, "FACP", 4))
            w.fadt = table(buf, len, a, "FACP");
        else
            w.madt = table(buf, len, a, "APIC");
    }
    ck_assert_ptr_nonnull(w.fadt);
    ck_assert(want_tables == 1 || w.madt);
    ck_assert_uint_eq(rd32(w.fadt + 4), 276); /* revision 6 */
    ck_assert_uint_eq(w.fadt[8], 6);
    /* The 32-bit FACS and DSDT fields are 0 when the X_ ones are used. */
    ck_assert_uint_eq(rd32(w.fadt + 36), 0);
    ck_assert_uint_eq(rd32(w.fadt + 40), 0);
    w.dsdt = table(buf, len, rd64(w.fadt + 140), "DSDT");
    uint64_t facs = rd64(w.fadt + 132);
    ck_assert_uint_eq(facs % 64, 0);
    w.facs = buf + (facs - GPA);
    ck_assert(!memcmp(w.facs, "FACS", 4));
    ck_assert_uint_eq(rd32(w.facs + 4), 64);
    return w;
}

/* The tables of a board with APICs: FADT and MADT. */
static struct walk walk(const uint8_t *buf, size_t len)
{
    return walk_n(buf, len, 2);
}

START_TEST(tables_chain_and_checksums)
{
    static uint8_t buf[PC_ACPI_SIZE];
    size_t len = acpi_build_pc(buf, sizeof buf, GPA, &CFG);
    ck_assert_uint_gt(len, 0);
    struct walk w = walk(buf, len);
    const uint8_t *f = w.fadt;
    ck_assert_uint_eq(f[46] | f[47] << 8, 9);      /* SCI_INT */
    ck_assert_uint_eq(rd32(f + 48), 0);            /* no SMI_CMD: always ACPI mode */
    ck_assert_uint_eq(rd32(f + 56), 0x600);        /* PM1a_EVT_BLK */
    ck_assert_uint_eq(rd32(f + 64), 0x604);        /* PM1a_CNT_BLK */
    ck_assert_uint_eq(rd32(f + 76), 0x608);        /* PM_TMR_BLK */
    ck_assert_uint_eq(f[88], 4);                   /* PM1_EVT_LEN */
    ck_assert_uint_eq(f[89], 2);                   /* PM1_CNT_LEN */
    ck_assert_uint_eq(f[91], 4);                   /* PM_TMR_LEN */
    ck_assert_uint_eq(f[109] | f[110] << 8, 0x7);  /* legacy devices, 8042, no VGA */
    uint32_t flags = rd32(f + 112);
    ck_assert(flags & 1u << 8);                    /* 32-bit PM timer */
    ck_assert(!(flags & 1u << 20));                /* not hardware-reduced */
    /* X_PM1a_EVT_BLK, X_PM1a_CNT_BLK, X_PM_TMR_BLK: system I/O, widths. */
    ck_assert_uint_eq(f[148], 1);
    ck_assert_uint_eq(f[149], 32);
    ck_assert_uint_eq(rd64(f + 152), 0x600);
    ck_assert_uint_eq(f[172], 1);
    ck_assert_uint_eq(f[173], 16);
    ck_assert_uint_eq(rd64(f + 176), 0x604);
    ck_assert_uint_eq(f[208], 1);
    ck_assert_uint_eq(f[209], 32);
    ck_assert_uint_eq(rd64(f + 212), 0x608);
}
END_TEST

START_TEST(madt_lists_every_cpu_the_ioapic_and_the_overrides)
{
    static const unsigned counts[] = { 1, 2, 3, 64, ACPI_MAX_CPUS };
    for (unsigned c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        static uint8_t buf[PC_ACPI_SIZE];
        struct acpi_pc_config cfg = CFG;
        cfg.ncpus = counts[c];
        size_t len = acpi_build_pc(buf, sizeof buf, GPA, &cfg);
        ck_assert_uint_gt(len, 0);
        const uint8_t *m = walk(buf, len).madt;
        ck_assert_uint_eq(rd32(m + 36), 0xfee00000u);
        ck_assert_uint_eq(rd32(m + 40), 1); /* PCAT_COMPAT */
        unsigned cpus = 0, ioapics = 0, nmis = 0, seen_irq = 0;
        for (size_t off = 44; off < rd32(m + 4);) {
            const uint8_t *e = m + off;
            ck_assert_uint_ge(e[1], 2);
            switch (e[0]) {
            case 0:
                ck_assert_uint_eq(e[1], 8);
                ck_assert_uint_eq(e[2], cpus); /* UID */
                ck_assert_uint_eq(e[3], cpus); /* APIC id = vCPU index */
                ck_assert_uint_eq(rd32(e + 4), 1);
                cpus++;
                break;
            case 1:
                ck_assert_uint_eq(e[1], 12);
                ck_assert_uint_eq(rd32(e + 4), 0xfec00000u);
                ck_assert_uint_eq(rd32(e + 8), 0);
                ioapics++;
                break;
            case 2: {
                ck_assert_uint_eq(e[1], 10);
                ck_assert_uint_eq(e[2], 0);
                unsigned irq = e[3], gsi = rd32(e + 4), fl = e[8] | e[9] << 8;
                ck_assert_msg(!(seen_irq & 1u << irq), "IRQ %u overridden twice", irq);
                seen_irq |= 1u << irq;
                if (irq == 0) {
                    ck_assert_uint_eq(gsi, 2);
                    ck_assert_uint_eq(fl, 0);
                } else {
                    ck_assert_uint_eq(gsi, irq);
                    ck_assert_uint_eq(fl, 0xf); /* level, active low */
                }
                break;
            }
            case 4:
                ck_assert_uint_eq(e[1], 6);
                ck_assert_uint_eq(e[2], 0xff);
                ck_assert_uint_eq(e[5], 1); /* LINT1 */
                nmis++;
                break;
            default:
                ck_abort_msg("unexpected MADT entry type %u", e[0]);
            }
            off += e[1];
        }
        ck_assert_uint_eq(cpus, counts[c]);
        ck_assert_uint_eq(ioapics, 1);
        ck_assert_uint_eq(nmis, 1);
        ck_assert_uint_eq(seen_irq, 1u << 0 | 1u << 5 | 1u << 9 | 1u << 10 | 1u << 11);
    }
}
END_TEST

/* ---- a decoder for the AML subset the DSDT uses ------------------------------ */

struct aml {
    const uint8_t *p, *end;
};

/* PkgLength: returns the end of the object it measures (from its own start). */
static const uint8_t *pkg_end(struct aml *a)
{
    const uint8_t *start = a->p;
    unsigned lead = *a->p++;
    unsigned extra = lead >> 6;
    size_t len = extra ? lead & 0xf : lead & 0x3f;
    for (unsigned i = 0; i < extra; i++)
        len |= (size_t)*a->p++ << (4 + 8 * i);
    ck_assert(start + len <= a->end);
    return start + len;
}

static uint64_t aml_int(struct aml *a)
{
    unsigned op = *a->p++;
    uint64_t v = 0;
    switch (op) {
    case 0x00:
        return 0;
    case 0x01:
        return 1;
    case 0x0a:
        return *a->p++;
    case 0x0b:
        v = a->p[0] | a->p[1] << 8;
        a->p += 2;
        return v;
    case 0x0c:
        v = rd32(a->p);
        a->p += 4;
        return v;
    default:
        ck_abort_msg("AML: 0x%02x is not an integer", op);
        return 0;
    }
}

/* Find Name(seg, ...) in [p, end) and position after the name. */
static bool find_name(struct aml *a, const char *seg)
{
    for (const uint8_t *q = a->p; q + 5 <= a->end; q++)
        if (q[0] == 0x08 && !memcmp(q + 1, seg, 4)) {
            a->p = q + 5;
            return true;
        }
    return false;
}

START_TEST(dsdt_routes_every_slot_by_the_swizzle)
{
    static uint8_t buf[PC_ACPI_SIZE];
    size_t len = acpi_build_pc(buf, sizeof buf, GPA, &CFG);
    const uint8_t *d = walk(buf, len).dsdt;
    struct aml a = { d + 36, d + rd32(d + 4) };

    /* Scope(\_SB_) { Device(PCI0) { ... } } spanning the rest but \_S5_ */
    ck_assert_uint_eq(*a.p++, 0x10);
    const uint8_t *scope_end = pkg_end(&a);
    ck_assert(!memcmp(a.p, "\\_SB_", 5));
    a.p += 5;
    ck_assert_uint_eq(a.p[0], 0x5b);
    ck_assert_uint_eq(a.p[1], 0x82);
    a.p += 2;
    const uint8_t *dev_end = pkg_end(&a);
    ck_assert_ptr_eq(dev_end, scope_end);
    ck_assert(!memcmp(a.p, "PCI0", 4));
    struct aml dev = { a.p + 4, dev_end };

    struct aml h = dev;
    ck_assert(find_name(&h, "_HID"));
    ck_assert_uint_eq(aml_int(&h), 0x030ad041u); /* PNP0A03 */

    struct aml prt = dev;
    ck_assert(find_name(&prt, "_PRT"));
    ck_assert_uint_eq(*prt.p++, 0x12);
    const uint8_t *prt_end = pkg_end(&prt);
    unsigned n = *prt.p++;
    ck_assert_uint_eq(n, 31 * 4);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_uint_eq(*prt.p++, 0x12);
        const uint8_t *e_end = pkg_end(&prt);
        ck_assert_uint_eq(*prt.p++, 4);
        uint64_t addr = aml_int(&prt), pin = aml_int(&prt), src = aml_int(&prt),
                 gsi = aml_int(&prt);
        ck_assert_ptr_eq(prt.p, e_end);
        unsigned slot = (unsigned)(addr >> 16);
        ck_assert_uint_eq(addr & 0xffff, 0xffff);
        ck_assert_uint_eq(slot, 1 + i / 4);
        ck_assert_uint_eq(pin, i % 4);
        ck_assert_uint_eq(src, 0);
        /* what lib/devices/pci.c drives: irq_map[(slot + pin - 1) % 4], pin 1-based */
        ck_assert_uint_eq(gsi, CFG.pci_irq[(slot + (unsigned)pin) % 4]);
    }
    ck_assert_ptr_eq(prt.p, prt_end);

    struct aml s5 = { scope_end, d + rd32(d + 4) };
    ck_assert(find_name(&s5, "_S5_"));
    ck_assert_uint_eq(*s5.p++, 0x12);
    pkg_end(&s5);
    ck_assert_uint_eq(*s5.p++, 4);
    ck_assert_uint_eq(aml_int(&s5), ACPI_S5_TYPE);
}
END_TEST

START_TEST(iasl_decompiles_the_dsdt)
{
    if (system("command -v iasl >/dev/null 2>&1") != 0) {
        printf("iasl_decompiles_the_dsdt: SKIP: no iasl (apt-get install acpica-tools)\n");
        return;
    }
    static uint8_t buf[PC_ACPI_SIZE];
    size_t len = acpi_build_pc(buf, sizeof buf, GPA, &CFG);
    const uint8_t *d = walk(buf, len).dsdt;
    char dir[] = "/tmp/check_acpi.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], cmd[768];
    snprintf(path, sizeof path, "%s/dsdt.dat", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d, 1, rd32(d + 4), f), rd32(d + 4));
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd %s && iasl -d dsdt.dat >log 2>&1 && grep -q 'PNP0A03' dsdt.dsl && "
             "grep -q '_PRT' dsdt.dsl && grep -q 'WordBusNumber' dsdt.dsl && "
             "grep -q 'DWordMemory' dsdt.dsl && ! grep -qi 'error' log",
             dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/log; head -80 %s/dsdt.dsl", dir, dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(rc == 0, "iasl could not decompile the DSDT cleanly");
}
END_TEST

START_TEST(without_apics_there_is_no_madt)
{
    static uint8_t buf[PC_ACPI_SIZE];
    struct acpi_pc_config cfg = CFG;
    cfg.ncpus = 1;
    cfg.apics = 0;
    size_t len = acpi_build_pc(buf, sizeof buf, GPA, &cfg);
    ck_assert_uint_gt(len, 0);
    struct walk w = walk_n(buf, len, 1);
    ck_assert_ptr_null(w.madt);
    ck_assert_uint_eq(rd32(w.fadt + 56), 0x600); /* the rest as before: PM1a, DSDT */
    ck_assert(!memcmp(w.dsdt, "DSDT", 4));
}
END_TEST

START_TEST(bad_configs_and_short_buffers_are_refused)
{
    static uint8_t buf[PC_ACPI_SIZE + 16];
    size_t need = acpi_build_pc(buf, PC_ACPI_SIZE, GPA, &CFG);
    ck_assert_uint_gt(need, 0);
    /* Every buffer too short: 0, and nothing written past its end. */
    static uint8_t guard[PC_ACPI_SIZE + 16];
    memset(guard, 0xa5, sizeof guard);
    for (size_t cap = 0; cap < need; cap += cap < 64 ? 1 : 37) {
        memset(buf, 0xa5, sizeof buf);
        ck_assert_uint_eq(acpi_build_pc(buf, cap, GPA, &CFG), 0);
        ck_assert_msg(!memcmp(buf + cap, guard, sizeof buf - cap),
                      "a %zu-byte buffer was written past its end", cap);
    }
    ck_assert_uint_eq(acpi_build_pc(buf, need, GPA, &CFG), need);
    struct acpi_pc_config c = CFG;
    c.ncpus = 0;
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA, &c), 0);
    c.ncpus = ACPI_MAX_CPUS + 1;
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA, &c), 0);
    c = CFG;
    c.sci_irq = 16;
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA, &c), 0);
    c = CFG;
    c.pci_irq[2] = 2;
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA, &c), 0);
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA + 8, &CFG), 0); /* unaligned */
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, 0xfffff000u, &CFG), 0); /* past 4 GiB */
    ck_assert_uint_eq(acpi_build_pc(buf, PC_ACPI_SIZE, GPA, NULL), 0);
}
END_TEST

/* ---- the PM registers ------------------------------------------------------- */

static uint64_t fake_ns;
static int powered_off;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

static void power_off(void *ctx)
{
    (void)ctx;
    powered_off++;
}

static struct acpi_pm pm;

static void pm_setup(void)
{
    fake_ns = 5000;
    powered_off = 0;
    acpi_pm_init(&pm, &(struct acpi_pm_config){ .base = 0x600, .now_ns = fake_clock,
                                                .power_off = power_off });
}

static uint64_t in(unsigned port, unsigned len)
{
    uint64_t v = ~0ull;
    ck_assert_int_eq(acpi_pm_read(&pm, port, len, &v), 0);
    return v;
}

static void out(unsigned port, unsigned len, uint64_t v)
{
    ck_assert_int_eq(acpi_pm_write(&pm, port, len, v), 0);
}

START_TEST(pm1_control_is_in_acpi_mode_and_s5_powers_off)
{
    ck_assert_uint_eq(in(0x604, 2) & 1, 1); /* SCI_EN */
    out(0x604, 2, 0);                        /* the OS cannot leave ACPI mode */
    ck_assert_uint_eq(in(0x604, 2) & 1, 1);
    out(0x604, 2, 3u << 10);                 /* SLP_TYP 3 without SLP_EN: stored */
    ck_assert_uint_eq(in(0x604, 2), 3u << 10 | 1);
    ck_assert_int_eq(powered_off, 0);
    out(0x604, 2, 3u << 10 | 1u << 13);      /* a sleep type the board has not */
    ck_assert_int_eq(powered_off, 0);
    ck_assert_uint_eq(in(0x604, 2) & 1u << 13, 0); /* SLP_EN reads 0 */
    out(0x605, 1, (ACPI_S5_TYPE << 10 | 1u << 13) >> 8); /* byte write of the high half */
    ck_assert_int_eq(powered_off, 1);
}
END_TEST

START_TEST(pm_timer_counts_at_3_58_mhz_and_wraps)
{
    uint32_t t0 = (uint32_t)in(0x608, 4);
    ck_assert_uint_eq(t0, 0);
    fake_ns += 1000000000ull;
    ck_assert_uint_eq(in(0x608, 4), ACPI_PM_TIMER_HZ);
    ck_assert_uint_eq(in(0x60a, 2), ACPI_PM_TIMER_HZ >> 16); /* upper half alone */
    fake_ns += 1000000000ull * 1200; /* 20 minutes: past 2^32 ticks */
    uint64_t ticks = 1201ull * ACPI_PM_TIMER_HZ;
    ck_assert_uint_eq(in(0x608, 4), (uint32_t)ticks);
    out(0x608, 4, 0); /* read-only */
    ck_assert_uint_eq(in(0x608, 4), (uint32_t)ticks);
    ck_assert_uint_eq(in(0x60c, 1), 0xff); /* past the block */
}
END_TEST

START_TEST(pm1_status_is_write_one_to_clear)
{
    ck_assert_uint_eq(in(0x600, 2), 0);
    /* TMR_STS comes up when the timer's bit 31 changes (~600 s). */
    fake_ns += 599ull * 1000000000ull;
    ck_assert_uint_eq(in(0x600, 2) & ACPI_PM_TMR_STS, 0);
    fake_ns += 2ull * 1000000000ull;
    ck_assert_uint_eq(in(0x600, 2) & ACPI_PM_TMR_STS, ACPI_PM_TMR_STS);
    out(0x600, 2, 0); /* writing 0 changes nothing */
    ck_assert_uint_eq(in(0x600, 2) & ACPI_PM_TMR_STS, ACPI_PM_TMR_STS);
    out(0x600, 4, ACPI_PM_TMR_STS | 0x0121u << 16); /* clear it, and enable in one dword */
    ck_assert_uint_eq(in(0x600, 2), 0);
    ck_assert_uint_eq(in(0x602, 2), 0x0121);
    out(0x602, 2, 0xffff); /* reserved enable bits stay 0 */
    ck_assert_uint_eq(in(0x602, 2), 0x4721);
    acpi_pm_reset(&pm);
    ck_assert_uint_eq(in(0x602, 2), 0);
    ck_assert_uint_eq(in(0x604, 2), 1);
}
END_TEST

/* ---- the loader and the board ------------------------------------------------ */

/* A bzImage the loader takes: a setup header and a small protected-mode part. */
static uint8_t *tiny_bzimage(size_t *len)
{
    *len = 2 * 512 + 4096;
    uint8_t *k = calloc(1, *len);
    k[0x1f1] = 1; /* setup_sects */
    k[0x1fe] = 0x55;
    k[0x1ff] = 0xaa;
    k[0x201] = 0x6a; /* header length: to 0x26c */
    memcpy(k + 0x202, "HdrS", 4);
    k[0x206] = 0x0f;
    k[0x207] = 0x02; /* protocol 2.15 */
    k[0x211] = 1;    /* LOADED_HIGH */
    k[0x22c] = 0xff;
    k[0x22d] = 0xff;
    k[0x22e] = 0xff;
    k[0x22f] = 0x7f; /* initrd_addr_max */
    k[0x236] = 1;    /* XLF_KERNEL_64 */
    k[0x238] = 0xff; /* cmdline_size */
    k[0x25a] = 0;    /* pref_address 0x1000000 */
    k[0x25b] = 1;
    k[0x261] = 0x10; /* init_size 0x1000 */
    return k;
}

/* A tcg machine of `vcpus` vCPUs and what vx_board_pc (64 MiB) returns. */
static vx_machine *pc_machine(unsigned vcpus, int *board_rc)
{
    vx_machine_opts o = { sizeof o, VX_ARCH_X86_64, VX_ACCEL_TCG, vcpus,
                          VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO };
    vx_machine *m;
    ck_assert_int_eq(vx_machine_create(&o, &m), 0);
    vx_pc_opts po = { .size = sizeof po, .ram_size = 64 << 20, .serial_fd = -1 };
    *board_rc = vx_board_pc(m, &po);
    return m;
}

START_TEST(loader_describes_several_cpus_in_acpi)
{
    int rc;
    vx_machine *m = pc_machine(1, &rc);
    ck_assert_int_eq(rc, 0);
    size_t klen;
    uint8_t *k = tiny_bzimage(&klen);

    /* No tables (vxi_boot_linux's 0): conventional memory to the EBDA. */
    uint8_t bp[4096];
    ck_assert_int_eq(vxi_boot_linux(m, k, klen, NULL, 0, "x", 0), 0);
    ck_assert_int_eq(vx_memory_read(m, 0x7000, bp, sizeof bp), 0);
    ck_assert_uint_eq(rd64(bp + 0x70), 0);
    ck_assert_uint_eq(rd64(bp + 0x2d0), 0);
    ck_assert_uint_eq(rd64(bp + 0x2d8), 0x9fc00);

    /* One processor: tables without a MADT. */
    ck_assert_int_eq(vxi_boot_linux(m, k, klen, NULL, 0, "x", 1), 0);
    ck_assert_int_eq(vx_memory_read(m, 0x7000, bp, sizeof bp), 0);
    ck_assert_uint_eq(rd64(bp + 0x70), PC_ACPI_GPA);
    static uint8_t one[PC_ACPI_SIZE];
    ck_assert_int_eq(vx_memory_read(m, PC_ACPI_GPA, one, sizeof one), 0);
    ck_assert_ptr_null(walk_n(one, sizeof one, 1).madt);

    /* Four: the tables at PC_ACPI_GPA, given in boot_params and e820. */
    ck_assert_int_eq(vxi_boot_linux(m, k, klen, NULL, 0, "x", 4), 0);
    ck_assert_int_eq(vx_memory_read(m, 0x7000, bp, sizeof bp), 0);
    ck_assert_uint_eq(rd64(bp + 0x70), PC_ACPI_GPA);
    unsigned n = bp[0x1e8];
    bool found = false;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *e = bp + 0x2d0 + 20 * i;
        if (rd64(e) == PC_ACPI_GPA) {
            ck_assert_uint_eq(rd64(e + 8), PC_ACPI_SIZE);
            ck_assert_uint_eq(rd32(e + 16), 3); /* ACPI data */
            found = true;
        } else if (rd32(e + 16) == 1) {
            /* usable RAM never overlaps the tables */
            ck_assert(rd64(e) + rd64(e + 8) <= PC_ACPI_GPA || rd64(e) >= PC_ACPI_GPA + PC_ACPI_SIZE);
        }
    }
    ck_assert(found);
    static uint8_t tables[PC_ACPI_SIZE];
    ck_assert_int_eq(vx_memory_read(m, PC_ACPI_GPA, tables, sizeof tables), 0);
    struct walk w = walk(tables, sizeof tables);
    unsigned cpus = 0;
    for (size_t off = 44; off < rd32(w.madt + 4); off += w.madt[off + 1])
        cpus += w.madt[off] == 0;
    ck_assert_uint_eq(cpus, 4);
    free(k);
    vx_machine_destroy(m);
}
END_TEST

START_TEST(tcg_board_refuses_several_vcpus)
{
    int rc;
    vx_machine *m = pc_machine(2, &rc);
    ck_assert_int_eq(rc, VX_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(vx_last_error(), "APIC"));
    /* Nothing of the board stayed: RAM can be mapped at 0 and the ports are free. */
    ck_assert_int_eq(vx_memory_map(m, 0, 1 << 20, NULL, VX_MEM_RWX), 0);
    ck_assert_int_eq(vx_pio_register(m, 0x600, 12, &acpi_pm_ops, &pm), 0);
    vx_machine_destroy(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("acpi");
    TCase *t = tcase_create("tables");
    tcase_add_test(t, tables_chain_and_checksums);
    tcase_add_test(t, madt_lists_every_cpu_the_ioapic_and_the_overrides);
    tcase_add_test(t, dsdt_routes_every_slot_by_the_swizzle);
    tcase_add_test(t, iasl_decompiles_the_dsdt);
    tcase_add_test(t, without_apics_there_is_no_madt);
    tcase_add_test(t, bad_configs_and_short_buffers_are_refused);
    suite_add_tcase(s, t);
    TCase *p = tcase_create("pm");
    tcase_add_checked_fixture(p, pm_setup, NULL);
    tcase_add_test(p, pm1_control_is_in_acpi_mode_and_s5_powers_off);
    tcase_add_test(p, pm_timer_counts_at_3_58_mhz_and_wraps);
    tcase_add_test(p, pm1_status_is_write_one_to_clear);
    suite_add_tcase(s, p);
    TCase *b = tcase_create("board");
    tcase_add_test(b, loader_describes_several_cpus_in_acpi);
    tcase_add_test(b, tcg_board_refuses_several_vcpus);
    suite_add_tcase(s, b);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
