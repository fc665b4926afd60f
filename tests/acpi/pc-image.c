/*
 * pc-image: the guest memory of a pc board booting Linux with N processors
 * described in its ACPI tables, for another machine model to run: the
 * multiprocessor half of the pc board cannot run on tcg (no APICs) nor
 * on a software KVM, so tests/acpi-smp.sh hands this image to QEMU, whose
 * APICs bring the other processors up the way KVM's would.
 *
 *   pc-image KERNEL INITRD CMDLINE NCPUS MIB LOW.bin HIGH.bin
 *
 * LOW.bin is guest RAM [0, 640 KiB) and HIGH.bin [1 MiB, MIB MiB): the
 * legacy area between is the other machine's ROM. Just below the boot
 * tables, at BOOT_BLOCK, the 64-bit entry state vx_boot_linux gave vCPU 0:
 * rip, rsi, rsp, cr3 (tests/acpi/bios-stub.asm reads them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvx/pc.h>
#include <libvx/vx.h>
#include <libvx/x86.h>

#include "core/linux.h"

#define BOOT_BLOCK 0x6000u

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (*len = (size_t)ftell(f), fseek(f, 0, SEEK_SET))) {
        perror(path);
        exit(2);
    }
    void *p = malloc(*len ? *len : 1);
    if (!p || fread(p, 1, *len, f) != *len) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return p;
}

static void dump(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f)) {
        perror(path);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: pc-image KERNEL INITRD CMDLINE NCPUS MIB LOW.bin HIGH.bin\n");
        return 2;
    }
    size_t klen, ilen;
    void *kernel = slurp(argv[1], &klen), *initrd = slurp(argv[2], &ilen);
    unsigned ncpus = (unsigned)atoi(argv[4]);
    uint64_t mib = strtoull(argv[5], NULL, 0);
    vx_machine_opts o = { sizeof o, VX_ARCH_X86_64, VX_ACCEL_TCG, 1,
                          VX_MACHINE_IRQCHIP | VX_MACHINE_IGNORE_UNCLAIMED_IO };
    vx_machine *m;
    vx_pc_opts po = { .size = sizeof po, .ram_size = mib << 20, .serial_fd = -1 };
    if (vx_machine_create(&o, &m) || vx_board_pc(m, &po) ||
        vxi_boot_linux(m, kernel, klen, initrd, ilen, argv[3], ncpus)) {
        fprintf(stderr, "pc-image: %s\n", vx_last_error());
        return 1;
    }
    vx_vcpu *v = vx_machine_vcpu(m, 0);
    vx_x86_regs r;
    vx_x86_sregs s;
    if (vx_vcpu_get_regs(v, &r) || vx_vcpu_get_sregs(v, &s)) {
        fprintf(stderr, "pc-image: %s\n", vx_last_error());
        return 1;
    }
    uint64_t block[4] = { r.rip, r.rsi, r.rsp, s.cr3 };
    if (vx_memory_write(m, BOOT_BLOCK, block, sizeof block)) {
        fprintf(stderr, "pc-image: %s\n", vx_last_error());
        return 1;
    }
    uint8_t *ram = vx_memory_ptr(m, 0, mib << 20);
    if (!ram) {
        fprintf(stderr, "pc-image: %s\n", vx_last_error());
        return 1;
    }
    dump(argv[6], ram, 0xa0000);
    dump(argv[7], ram + 0x100000, (size_t)((mib << 20) - 0x100000));
    vx_machine_destroy(m);
    free(kernel);
    free(initrd);
    return 0;
}
