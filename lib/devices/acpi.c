/*
 * ACPI tables for the pc board (acpi.h). Field offsets are the ACPI
 * specification's (6.4: 5.2.5 RSDP, 5.2.8 XSDT, 5.2.9 FADT, 5.2.10 FACS,
 * 5.2.12 MADT, 20 AML encoding, 6.4 resource descriptors).
 */
#include "config.h"

#include <string.h>

#include "devices/acpi.h"

uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--)
        s = (uint8_t)(s + *p++);
    return s;
}

/* ---- a growing byte buffer -------------------------------------------------- */

struct out {
    uint8_t *b;
    size_t n, cap;
    int overflow;
};

static void put(struct out *o, const void *p, size_t len)
{
    if (o->overflow || len > o->cap - o->n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void put8(struct out *o, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(o, &b, 1);
}

static void put16(struct out *o, unsigned v)
{
    put8(o, v);
    put8(o, v >> 8);
}

static void put32(struct out *o, uint32_t v)
{
    put16(o, v & 0xffff);
    put16(o, v >> 16);
}

static void put64(struct out *o, uint64_t v)
{
    put32(o, (uint32_t)v);
    put32(o, (uint32_t)(v >> 32));
}

static void set32(struct out *o, size_t at, uint32_t v)
{
    if (!o->overflow)
        for (unsigned k = 0; k < 4; k++)
            o->b[at + k] = (uint8_t)(v >> (8 * k));
}

static void align(struct out *o, size_t to)
{
    while (!o->overflow && o->n % to)
        put8(o, 0);
}

/* ---- system description tables ----------------------------------------------- */

/* The common 36-byte header; acpi_end() fills in length and checksum. */
static size_t table_begin(struct out *o, const char sig[4], unsigned revision)
{
    size_t at = o->n;
    put(o, sig, 4);
    put32(o, 0); /* length */
    put8(o, revision);
    put8(o, 0); /* checksum */
    put(o, "LIBVX ", 6);
    put(o, "LIBVXPC ", 8);
    put32(o, 1); /* OEM revision */
    put(o, "LBVX", 4);
    put32(o, 1); /* creator revision */
    return at;
}

static void table_end(struct out *o, size_t at)
{
    if (o->overflow)
        return;
    set32(o, at + 4, (uint32_t)(o->n - at));
    o->b[at + 9] = 0;
    o->b[at + 9] = (uint8_t)-acpi_sum(o->b + at, o->n - at);
}

/* A Generic Address Structure for a register in port space. */
static void gas_io(struct out *o, unsigned bits, unsigned access, uint64_t port)
{
    put8(o, port ? 1 : 0); /* address space: system I/O */
    put8(o, port ? bits : 0);
    put8(o, 0); /* bit offset */
    put8(o, port ? access : 0); /* 1 byte, 2 word, 3 dword */
    put64(o, port);
}

/* ---- AML ---------------------------------------------------------------- */

/* A PkgLength-prefixed object: aml_open() reserves one byte, aml_close()
 * encodes the length of everything since (itself included) in as many
 * bytes as it needs, moving the body up. */
static size_t aml_open(struct out *o)
{
    size_t at = o->n;
    put8(o, 0);
    return at;
}

static void aml_close(struct out *o, size_t at)
{
    if (o->overflow)
        return;
    size_t body = o->n - at - 1;
    unsigned k = body + 1 <= 63 ? 1 : body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
    size_t len = body + k;
    if (k > 1) {
        if (k - 1 > o->cap - o->n) {
            o->overflow = 1;
            return;
        }
        memmove(o->b + at + k, o->b + at + 1, body);
        o->n += k - 1;
        o->b[at] = (uint8_t)((k - 1) << 6 | (len & 0xf));
        for (unsigned i = 1; i < k; i++)
            o->b[at + i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
    } else {
        o->b[at] = (uint8_t)len;
    }
}

static void aml_int(struct out *o, uint64_t v)
{
    if (v == 0) {
        put8(o, 0x00); /* ZeroOp */
    } else if (v == 1) {
        put8(o, 0x01); /* OneOp */
    } else if (v <= 0xff) {
        put8(o, 0x0a);
        put8(o, (unsigned)v);
    } else if (v <= 0xffff) {
        put8(o, 0x0b);
        put16(o, (unsigned)v);
    } else if (v <= 0xffffffffu) {
        put8(o, 0x0c);
        put32(o, (uint32_t)v);
    } else {
        put8(o, 0x0e);
        put64(o, v);
    }
}

/* Name(seg, ...): the caller emits the object. */
static void aml_name(struct out *o, const char *seg)
{
    put8(o, 0x08); /* NameOp */
    put(o, seg, 4);
}

/* Package(n) { ... }: returns the PkgLength mark for aml_close(). */
static size_t aml_package(struct out *o, unsigned n)
{
    put8(o, 0x12); /* PackageOp */
    size_t at = aml_open(o);
    put8(o, n);
    return at;
}

/* A resource descriptor for an address range the bridge passes down:
 * Word (bus numbers, I/O) or DWord (memory) Address Space Descriptor,
 * producer, fixed minimum and maximum. */
static void res_word(struct out *o, unsigned type, unsigned tflags, uint16_t min, uint16_t max)
{
    put8(o, 0x88);
    put16(o, 13);
    put8(o, type);
    put8(o, 0x0c); /* producer, positive decode, min and max fixed */
    put8(o, tflags);
    put16(o, 0); /* granularity */
    put16(o, min);
    put16(o, max);
    put16(o, 0); /* translation offset */
    put16(o, (unsigned)(max - min + 1));
}

static void res_dword_mem(struct out *o, uint32_t min, uint32_t max)
{
    put8(o, 0x87);
    put16(o, 23);
    put8(o, 0); /* memory */
    put8(o, 0x0c);
    put8(o, 0x01); /* read-write, non-cacheable */
    put32(o, 0);
    put32(o, min);
    put32(o, max);
    put32(o, 0);
    put32(o, max - min + 1);
}

static void dsdt_body(struct out *o, const struct acpi_pc_config *c)
{
    put8(o, 0x10); /* ScopeOp */
    size_t scope = aml_open(o);
    put(o, "\\_SB_", 5);

    put8(o, 0x5b);
    put8(o, 0x82); /* DeviceOp */
    size_t dev = aml_open(o);
    put(o, "PCI0", 4);
    aml_name(o, "_HID");
    put8(o, 0x0c);
    put32(o, 0x030ad041u); /* EisaId("PNP0A03"): PCI root bridge */
    aml_name(o, "_UID");
    aml_int(o, 0);

    /* _CRS: bus 0-255; ports below and above the configuration ports;
     * the legacy VGA memory and the board's PCI memory window. */
    aml_name(o, "_CRS");
    put8(o, 0x11); /* BufferOp */
    size_t buf = aml_open(o);
    size_t size_at = o->n;
    put8(o, 0x0a);
    put8(o, 0); /* BufferSize, patched below */
    size_t start = o->n;
    res_word(o, 2, 0, 0, 0xff);          /* bus numbers */
    res_word(o, 1, 3, 0, 0x0cf7);        /* I/O, entire range */
    res_word(o, 1, 3, 0x0d00, 0xffff);
    res_dword_mem(o, 0xa0000, 0xbffff);
    res_dword_mem(o, c->pci_mmio_base, c->pci_mmio_base + c->pci_mmio_size - 1);
    put8(o, 0x79);
    put8(o, 0); /* end tag, checksum 0: "the sum is ignored" */
    if (!o->overflow)
        o->b[size_at + 1] = (uint8_t)(o->n - start);
    aml_close(o, buf);

    /* _PRT: INTA-INTD of every slot to its GSI (the board's PIRQ
     * swizzle). Source 0: the fourth field is the GSI itself. */
    aml_name(o, "_PRT");
    size_t prt = aml_package(o, 31 * 4);
    for (unsigned slot = 1; slot < 32; slot++)
        for (unsigned pin = 0; pin < 4; pin++) {
            size_t e = aml_package(o, 4);
            aml_int(o, (uint64_t)slot << 16 | 0xffff);
            aml_int(o, pin);
            aml_int(o, 0);
            aml_int(o, c->pci_irq[(slot + pin) % 4]);
            aml_close(o, e);
        }
    aml_close(o, prt);
    aml_close(o, dev);
    aml_close(o, scope);

    /* \_S5: power-off is SLP_TYP ACPI_S5_TYPE in PM1a_CNT. */
    aml_name(o, "_S5_");
    size_t s5 = aml_package(o, 4);
    aml_int(o, ACPI_S5_TYPE);
    aml_int(o, ACPI_S5_TYPE);
    aml_int(o, 0);
    aml_int(o, 0);
    aml_close(o, s5);
}

/* ---- the tables --------------------------------------------------------- */

static void madt_override(struct out *o, unsigned irq, unsigned gsi, unsigned flags)
{
    put8(o, 2); /* Interrupt Source Override */
    put8(o, 10);
    put8(o, 0); /* ISA */
    put8(o, irq);
    put32(o, gsi);
    put16(o, flags);
}

#define MPS_LEVEL_LOW 0x000f /* trigger level (3 << 2), polarity active low (3) */

/* The MADT: a local APIC per processor, the I/O APIC, the ISA overrides,
 * LINT1 as NMI. Returns its offset. */
static size_t madt_table(struct out *o, const struct acpi_pc_config *c)
{
    size_t madt = table_begin(o, "APIC", 3);
    put32(o, ACPI_LAPIC_ADDR);
    put32(o, 1); /* PCAT_COMPAT: there is an 8259 pair to mask */
    for (unsigned i = 0; i < c->ncpus; i++) {
        put8(o, 0); /* Processor Local APIC */
        put8(o, 8);
        put8(o, i); /* ACPI processor UID */
        put8(o, i); /* APIC id: the vCPU's index */
        put32(o, 1); /* enabled */
    }
    put8(o, 1); /* I/O APIC */
    put8(o, 12);
    put8(o, 0); /* id */
    put8(o, 0);
    put32(o, ACPI_IOAPIC_ADDR);
    put32(o, 0); /* GSI base */
    madt_override(o, 0, 2, 0); /* the PIT: ISA IRQ 0 is GSI 2 */
    /* The SCI's and PCI's lines: level, active low, as _PRT says. */
    unsigned done = 0;
    unsigned lines[5] = { c->sci_irq, c->pci_irq[0], c->pci_irq[1], c->pci_irq[2], c->pci_irq[3] };
    for (unsigned k = 0; k < 5; k++) {
        if (done & 1u << lines[k])
            continue;
        done |= 1u << lines[k];
        madt_override(o, lines[k], lines[k], MPS_LEVEL_LOW);
    }
    put8(o, 4); /* Local APIC NMI: LINT1 of every processor */
    put8(o, 6);
    put8(o, 0xff);
    put16(o, 0);
    put8(o, 1);
    table_end(o, madt);
    align(o, 16);
    return madt;
}

size_t acpi_build_pc(uint8_t *buf, size_t cap, uint64_t gpa, const struct acpi_pc_config *c)
{
    if (!c || !c->ncpus || c->ncpus > ACPI_MAX_CPUS || c->sci_irq > 15 || gpa % 16 ||
        gpa + cap > (1ull << 32) || !c->pci_mmio_size)
        return 0;
    for (unsigned k = 0; k < 4; k++)
        if (c->pci_irq[k] > 15 || c->pci_irq[k] < 3)
            return 0;
    struct out o = { buf, 0, cap, 0 };
    memset(buf, 0, cap);

    /* RSDP, 36 bytes; then the tables, each 16-aligned. */
    size_t rsdp = o.n;
    put(&o, "RSD PTR ", 8);
    put8(&o, 0);
    put(&o, "LIBVX ", 6);
    put8(&o, 2); /* ACPI 2.0+: XSDT */
    put32(&o, 0); /* no RSDT */
    put32(&o, 36);
    size_t rsdp_xsdt = o.n;
    put64(&o, 0);
    put8(&o, 0);
    put(&o, "\0\0\0", 3);
    align(&o, 64);

    size_t facs = o.n; /* 64-byte aligned, no checksum */
    put(&o, "FACS", 4);
    put32(&o, 64);
    put32(&o, 0); /* hardware signature */
    put32(&o, 0); /* waking vector */
    put32(&o, 0); /* global lock */
    put32(&o, 0); /* flags */
    put64(&o, 0);
    put8(&o, 2); /* version */
    put(&o, "\0\0\0", 3);
    put32(&o, 0);
    for (unsigned k = 0; k < 24; k++)
        put8(&o, 0);

    size_t dsdt = o.n;
    table_begin(&o, "DSDT", 2);
    dsdt_body(&o, c);
    table_end(&o, dsdt);
    align(&o, 16);

    size_t fadt = table_begin(&o, "FACP", 6);
    /* FIRMWARE_CTRL and DSDT: 0, as the specification asks when the
     * 64-bit X_ fields below hold the addresses. */
    put32(&o, 0);
    put32(&o, 0);
    put8(&o, 0);       /* reserved */
    put8(&o, 0);       /* preferred PM profile: unspecified */
    put16(&o, c->sci_irq);
    put32(&o, 0);      /* SMI_CMD: none, always in ACPI mode */
    put8(&o, 0);       /* ACPI_ENABLE */
    put8(&o, 0);       /* ACPI_DISABLE */
    put8(&o, 0);       /* S4BIOS_REQ */
    put8(&o, 0);       /* PSTATE_CNT */
    put32(&o, c->pm_base);     /* PM1a_EVT_BLK */
    put32(&o, 0);              /* PM1b_EVT_BLK */
    put32(&o, c->pm_base + 4u); /* PM1a_CNT_BLK */
    put32(&o, 0);              /* PM1b_CNT_BLK */
    put32(&o, 0);              /* PM2_CNT_BLK */
    put32(&o, c->pm_base + 8u); /* PM_TMR_BLK */
    put32(&o, 0);              /* GPE0_BLK */
    put32(&o, 0);              /* GPE1_BLK */
    put8(&o, 4);       /* PM1_EVT_LEN */
    put8(&o, 2);       /* PM1_CNT_LEN */
    put8(&o, 0);       /* PM2_CNT_LEN */
    put8(&o, 4);       /* PM_TMR_LEN */
    put8(&o, 0);       /* GPE0_BLK_LEN */
    put8(&o, 0);       /* GPE1_BLK_LEN */
    put8(&o, 0);       /* GPE1_BASE */
    put8(&o, 0);       /* CST_CNT */
    put16(&o, 101);    /* P_LVL2_LAT: > 100, no C2 */
    put16(&o, 1001);   /* P_LVL3_LAT: > 1000, no C3 */
    put16(&o, 0);      /* FLUSH_SIZE */
    put16(&o, 0);      /* FLUSH_STRIDE */
    put8(&o, 0);       /* DUTY_OFFSET */
    put8(&o, 0);       /* DUTY_WIDTH */
    put8(&o, 0);       /* DAY_ALRM */
    put8(&o, 0);       /* MON_ALRM */
    put8(&o, 0x32);    /* CENTURY: CMOS byte 0x32 */
    /* IAPC_BOOT_ARCH: legacy devices, an 8042, no VGA; the RTC is there. */
    put16(&o, 0x0007);
    put8(&o, 0);       /* reserved */
    /* Flags: WBINVD, C1 on all processors, power and sleep buttons not
     * fixed features, a 32-bit PM timer. */
    put32(&o, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 8);
    gas_io(&o, 0, 0, 0); /* RESET_REG: none */
    put8(&o, 0);         /* RESET_VALUE */
    put16(&o, 0);        /* ARM_BOOT_ARCH */
    put8(&o, 0);         /* FADT minor version */
    put64(&o, gpa + facs); /* X_FIRMWARE_CTRL */
    put64(&o, gpa + dsdt); /* X_DSDT */
    gas_io(&o, 32, 2, c->pm_base);      /* X_PM1a_EVT_BLK: 16-bit status + enable */
    gas_io(&o, 0, 0, 0);                /* X_PM1b_EVT_BLK */
    gas_io(&o, 16, 2, c->pm_base + 4u); /* X_PM1a_CNT_BLK */
    gas_io(&o, 0, 0, 0);                /* X_PM1b_CNT_BLK */
    gas_io(&o, 0, 0, 0);                /* X_PM2_CNT_BLK */
    gas_io(&o, 32, 3, c->pm_base + 8u); /* X_PM_TMR_BLK */
    gas_io(&o, 0, 0, 0);                /* X_GPE0_BLK */
    gas_io(&o, 0, 0, 0);                /* X_GPE1_BLK */
    gas_io(&o, 0, 0, 0);                /* SLEEP_CONTROL_REG */
    gas_io(&o, 0, 0, 0);                /* SLEEP_STATUS_REG */
    put64(&o, 0);                       /* hypervisor vendor identity */
    table_end(&o, fadt);
    align(&o, 16);

    size_t madt = c->apics ? madt_table(&o, c) : 0;

    size_t xsdt = table_begin(&o, "XSDT", 1);
    put64(&o, gpa + fadt);
    if (c->apics)
        put64(&o, gpa + madt);
    table_end(&o, xsdt);

    if (o.overflow)
        return 0;
    set32(&o, rsdp_xsdt, (uint32_t)(gpa + xsdt));
    set32(&o, rsdp_xsdt + 4, (uint32_t)((gpa + xsdt) >> 32));
    buf[rsdp + 8] = (uint8_t)-acpi_sum(buf + rsdp, 20);
    buf[rsdp + 32] = (uint8_t)-acpi_sum(buf + rsdp, 36);
    return o.n;
}
