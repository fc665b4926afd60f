/*
 * The x86 Linux boot protocol (vx_boot_linux in include/libvx/pc.h): a
 * bzImage's setup header, boot_params ("the zero page"), the e820 map, the
 * command line and the initrd, and the 64-bit entry state. Offsets are
 * the protocol's (Documentation/arch/x86/boot.rst, "The real-mode kernel
 * header" and "zero-page.rst").
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libvx/pc.h>
#include <libvx/x86.h>

#include "core/error.h"
#include "core/linux.h"
#include "core/machine.h"
#include "devices/pc.h"

#define ULL(x) ((unsigned long long)(x))

/* Setup header fields, as offsets into the bzImage's first sector(s). */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE 0x234
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_VID_MODE 0x1fa

/* boot_params fields outside the header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define XLF_KERNEL_64 1u
#define LOADED_HIGH 1u

/* Where the loader puts its own things in low RAM (below 640 KiB). */
#define BOOT_PARAMS_GPA 0x7000ull
#define BOOT_STACK_GPA 0x8ff0ull
#define BOOT_TABLES_GPA 0x10000ull /* vx_vcpu_set_mode's tables and GDT */
#define CMDLINE_GPA 0x20000ull
#define CMDLINE_MAX 0x10000ull
#define KERNEL_DEFAULT_GPA 0x1000000ull
_Static_assert(PC_ACPI_GPA + PC_ACPI_SIZE == 0x9fc00, "the ACPI tables end where the EBDA starts");

static uint16_t rd16(const uint8_t *p, unsigned off)
{
    return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t rd32(const uint8_t *p, unsigned off)
{
    return (uint32_t)rd16(p, off) | (uint32_t)rd16(p, off + 2) << 16;
}

static uint64_t rd64(const uint8_t *p, unsigned off)
{
    return (uint64_t)rd32(p, off) | (uint64_t)rd32(p, off + 4) << 32;
}

static void wr32(uint8_t *p, unsigned off, uint32_t v)
{
    for (unsigned k = 0; k < 4; k++)
        p[off + k] = (uint8_t)(v >> (8 * k));
}

static void wr64(uint8_t *p, unsigned off, uint64_t v)
{
    wr32(p, off, (uint32_t)v);
    wr32(p, off + 4, (uint32_t)(v >> 32));
}

static void e820_add(uint8_t *bp, uint64_t addr, uint64_t size, uint32_t type)
{
    unsigned n = bp[BP_E820_ENTRIES];
    if (n >= BP_E820_MAX || !size)
        return;
    uint8_t *e = bp + BP_E820_TABLE + 20 * n;
    wr64(e, 0, addr);
    wr64(e, 8, size);
    wr32(e, 16, type);
    bp[BP_E820_ENTRIES] = (uint8_t)(n + 1);
}

VX_API int vx_boot_linux(vx_machine *m, const void *kernel, size_t kernel_len,
                         const void *initrd, size_t initrd_len, const char *cmdline)
{
    unsigned n = m ? vx_machine_vcpu_count(m) : 0;
    return vxi_boot_linux(m, kernel, kernel_len, initrd, initrd_len, cmdline, n);
}

int vxi_boot_linux(vx_machine *m, const void *kernel_, size_t kernel_len, const void *initrd,
                   size_t initrd_len, const char *cmdline, unsigned acpi_cpus)
{
    const uint8_t *k = kernel_;
    if (!m || !k)
        return vxi_error(VX_EINVAL, "vx_boot_linux: %s is NULL", m ? "kernel" : "machine");
    if (!initrd && initrd_len)
        return vxi_error(VX_EINVAL, "vx_boot_linux: initrd is NULL but initrd_len is %zu",
                         initrd_len);
    const struct vx_pc_layout *pc = vxi_pc_layout(m);
    if (!pc)
        return vxi_error(VX_EINVAL, "vx_boot_linux: the machine is not a PC (vx_board_pc)");
    if (kernel_len < 0x400 || rd16(k, HDR_BOOT_FLAG) != 0xaa55 ||
        memcmp(k + HDR_MAGIC, "HdrS", 4) != 0)
        return vxi_error(VX_ECORRUPT, "vx_boot_linux: not a bzImage (no 0xaa55 boot flag and "
                         "\"HdrS\" setup header)");
    uint16_t version = rd16(k, HDR_VERSION);
    if (version < 0x020c)
        return vxi_error(VX_ENOTSUP, "vx_boot_linux: boot protocol %u.%02u is older than 2.12, "
                         "which 64-bit entry needs", version >> 8, version & 0xff);
    if (!(rd16(k, HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return vxi_error(VX_ENOTSUP, "vx_boot_linux: the kernel has no 64-bit entry point "
                         "(XLF_KERNEL_64 clear)");
    if (!(k[HDR_LOADFLAGS] & LOADED_HIGH))
        return vxi_error(VX_ENOTSUP, "vx_boot_linux: a zImage (not loaded high)");
    unsigned setup_sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;
    size_t setup_len = (size_t)(setup_sects + 1) * 512;
    unsigned hdr_end = 0x202 + k[0x201]; /* the header's own length byte */
    if (setup_len >= kernel_len || hdr_end > setup_len || hdr_end > 0x1000)
        return vxi_error(VX_ECORRUPT, "vx_boot_linux: setup of %zu bytes in a %zu-byte image",
                         setup_len, kernel_len);
    size_t pm_len = kernel_len - setup_len;

    /* The protected-mode kernel: at its preferred address when RAM has
     * room for init_size there (it is relocatable from 2.10 on). */
    uint64_t init_size = rd32(k, HDR_INIT_SIZE);
    if (init_size < pm_len)
        init_size = pm_len;
    uint64_t load = rd64(k, HDR_PREF_ADDRESS);
    if (!load)
        load = KERNEL_DEFAULT_GPA;
    if (load < 0x100000 || load + init_size > pc->low_end)
        return vxi_error(VX_ERANGE, "vx_boot_linux: the kernel needs 0x%llx bytes at 0x%llx; "
                         "RAM below the hole ends at 0x%llx", ULL(init_size), ULL(load),
                         ULL(pc->low_end));

    /* The command line. */
    size_t clen = cmdline ? strlen(cmdline) : 0;
    uint32_t cmax = rd32(k, HDR_CMDLINE_SIZE);
    if (cmax > CMDLINE_MAX - 1)
        cmax = CMDLINE_MAX - 1;
    if (clen > cmax)
        return vxi_error(VX_EINVAL, "vx_boot_linux: command line of %zu bytes; the kernel takes "
                         "at most %u", clen, cmax);

    /* The initrd: as high as initrd_addr_max and RAM allow, page-aligned,
     * above the kernel's init_size. */
    uint64_t initrd_gpa = 0;
    if (initrd_len) {
        uint64_t top = (uint64_t)rd32(k, HDR_INITRD_ADDR_MAX) + 1;
        if (top > pc->low_end)
            top = pc->low_end;
        if (initrd_len > top)
            return vxi_error(VX_ERANGE, "vx_boot_linux: an initrd of %zu bytes does not fit "
                             "below 0x%llx", initrd_len, ULL(top));
        initrd_gpa = (top - initrd_len) & ~0xfffull;
        if (initrd_gpa < load + init_size)
            return vxi_error(VX_ERANGE, "vx_boot_linux: an initrd of %zu bytes does not fit "
                             "between the kernel (ending at 0x%llx) and 0x%llx", initrd_len,
                             ULL(load + init_size), ULL(top));
    }

    /* boot_params. */
    uint8_t *bp = calloc(1, 0x1000);
    if (!bp)
        return vxi_error(VX_ENOMEM, "vx_boot_linux: out of memory");
    memcpy(bp + HDR_SETUP_SECTS, k + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
    bp[HDR_VID_MODE] = 0xff;
    bp[HDR_VID_MODE + 1] = 0xff; /* "normal" */
    bp[HDR_TYPE_OF_LOADER] = 0xff; /* no registered loader ID */
    wr32(bp, HDR_CMD_LINE_PTR, (uint32_t)CMDLINE_GPA);
    wr32(bp, HDR_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
    wr32(bp, HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
    /* The e820 map: conventional memory (less the ACPI tables, when there
     * are any), the legacy video and BIOS area reserved (RAM is mapped
     * there, reading as zeros), the rest. */
    uint64_t rsdp = 0;
    if (acpi_cpus) {
        e820_add(bp, 0, PC_ACPI_GPA, 1);
        e820_add(bp, PC_ACPI_GPA, PC_ACPI_SIZE, 3);
    } else {
        e820_add(bp, 0, PC_ACPI_GPA + PC_ACPI_SIZE, 1);
    }
    e820_add(bp, 0x9fc00, 0x100000 - 0x9fc00, 2);
    e820_add(bp, 0x100000, pc->low_end - 0x100000, 1);
    e820_add(bp, 4ull << 30, pc->high_size, 1);

    int rc = acpi_cpus ? vxi_pc_write_acpi(m, acpi_cpus, &rsdp) : 0;
    wr64(bp, BP_ACPI_RSDP_ADDR, rsdp);
    if (!rc)
        rc = vx_memory_write(m, load, k + setup_len, pm_len);
    if (!rc)
        rc = vx_memory_write(m, BOOT_PARAMS_GPA, bp, 0x1000);
    free(bp);
    char zero = 0;
    if (!rc && clen)
        rc = vx_memory_write(m, CMDLINE_GPA, cmdline, clen);
    if (!rc)
        rc = vx_memory_write(m, CMDLINE_GPA + clen, &zero, 1);
    if (!rc && initrd_len)
        rc = vx_memory_write(m, initrd_gpa, initrd, initrd_len);
    if (rc)
        return rc;

    /* vCPU 0 in 64-bit mode with identity page tables; the GDT gets the
     * protocol's flat __BOOT_CS (0x10) and __BOOT_DS (0x18). */
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    if ((rc = vx_vcpu_set_mode(v, VX_MODE_LONG64, BOOT_TABLES_GPA)))
        return rc;
    static const uint64_t gdt[4] = { 0, 0, 0x00af9a000000ffffull, 0x00cf92000000ffffull };
    if ((rc = vx_memory_write(m, BOOT_TABLES_GPA + 0x6000, gdt, sizeof gdt)))
        return rc;
    vx_x86_sregs s;
    if ((rc = vx_vcpu_get_sregs(v, &s)))
        return rc;
    s.cs.selector = 0x10;
    s.ds.selector = s.es.selector = s.ss.selector = s.fs.selector = s.gs.selector = 0x18;
    if ((rc = vx_vcpu_set_sregs(v, &s)))
        return rc;
    vx_x86_regs r;
    memset(&r, 0, sizeof r);
    r.rsi = BOOT_PARAMS_GPA;
    r.rsp = BOOT_STACK_GPA;
    r.rip = load + 0x200; /* startup_64 */
    r.rflags = 0x2;
    return vx_vcpu_set_regs(v, &r);
}
