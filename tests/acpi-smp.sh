#!/bin/sh
# The pc board's multiprocessor description, checked by a real kernel on
# real APIC models. Neither of libvx's accelerators can show it here: tcg
# has no APICs (one vCPU), and a software KVM (kvm_pvm) cannot boot a
# stock kernel. So tests/acpi/pc-image builds the guest memory that
# vx_boot_linux makes for a board of 2 processors (kernel, initramfs,
# boot_params, e820, ACPI tables) and QEMU's pc machine runs it, entered
# by a 64 KiB stub BIOS (tests/acpi/bios-stub.asm) that only switches to
# the 64-bit entry state vx_boot_linux gave vCPU 0. QEMU's own firmware
# tables are never built, so the kernel knows the machine from libvx's
# tables alone. Checked: the kernel takes the tables without an ACPI
# error, brings up both processors from the MADT, runs the PIT on GSI 2
# of the I/O APIC, and routes two virtio-blk disks' INTx (MSI-X off) by
# the DSDT's _PRT, reading both correctly.
# Where the host has kvm_intel/kvm_amd, tests/linux-boot.sh boots the
# same board on kvm with --cpus 2 itself.
# SKIP (77) without qemu-system-x86_64, a kernel or busybox-static.
set -u
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
for need in qemu-system-x86_64 busybox; do
    command -v $need >/dev/null 2>&1 ||
        { echo "SKIP: no $need (apt-get install qemu-system-x86 busybox-static)"; exit 77; }
done
[ -n "$kernel" ] && [ -r "$kernel" ] ||
    { echo "SKIP: no readable /boot/vmlinuz-* (apt-get install linux-image-cloud-amd64)"; exit 77; }
build=${abs_top_builddir:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "LIBVX-CPUS $(grep -c ^processor /proc/cpuinfo)"
for m in /lib/modules/virtio/*.ko; do insmod "$m" || echo "LIBVX-INSMOD-FAILED $m"; done
n=0
while [ ! -b /dev/vdb ]; do n=$((n + 1)); [ $n -gt 200 ] && break; sleep 0.05; done
for d in a b; do echo "LIBVX-MD5 vd$d $(md5sum </dev/vd$d | cut -d' ' -f1)"; done
sed -n 's/^ *\([0-9]*\):.*IO-APIC *\([0-9]*\)-\([a-z]*\) *\(.*\)$/LIBVX-IRQ \1 gsi=\2 \3 \4/p' /proc/interrupts
vx-exit 0
INIT
"${abs_top_srcdir:?}/scripts/make-initramfs" "$tmp/initrd.gz" "$tmp/init" >/dev/null || exit 1
head -c 262144 /dev/urandom >"$tmp/a.img"
head -c 262144 /dev/urandom >"$tmp/b.img"
"$build/tests/acpi/pc-image" "$kernel" "$tmp/initrd.gz" "console=ttyS0 panic=-1" 2 128 \
    "$tmp/low.bin" "$tmp/high.bin" || { echo "FAIL: pc-image"; exit 1; }
# Slots 3 and 4: INTA of slot s is the board's PIRQ (s % 4), lines 9 and 10.
timeout 300 qemu-system-x86_64 -accel tcg -smp 2 -m 128 -nodefaults -no-user-config \
    -display none -serial stdio -no-reboot -bios "$build/tests/acpi/bios-stub.bin" \
    -device loader,file="$tmp/low.bin",addr=0,force-raw=on \
    -device loader,file="$tmp/high.bin",addr=0x100000,force-raw=on \
    -device isa-debug-exit,iobase=0x501,iosize=1 \
    -drive file="$tmp/a.img",if=none,id=a,format=raw \
    -device virtio-blk-pci,drive=a,vectors=0,disable-legacy=on,addr=3 \
    -drive file="$tmp/b.img",if=none,id=b,format=raw \
    -device virtio-blk-pci,drive=b,vectors=0,disable-legacy=on,addr=4 \
    </dev/null >"$tmp/out" 2>&1
rc=$?
fail() {
    echo "FAIL: $1; the kernel's output:"
    tail -60 "$tmp/out"
    exit 1
}
[ "$rc" = 1 ] || fail "QEMU exited $rc (want 1: /init's vx-exit 0)"
grep -q "ACPI: Using ACPI (MADT) for SMP configuration information" "$tmp/out" ||
    fail "the kernel did not take the MADT"
grep -q "smp: Brought up 1 node, 2 CPUs" "$tmp/out" || fail "the second processor did not come up"
grep -q "^LIBVX-CPUS 2" "$tmp/out" || fail "/proc/cpuinfo does not show 2 processors"
! grep -qiE "ACPI (BIOS )?(Error|Warning)|ACPI Exception|firmware bug" "$tmp/out" ||
    fail "the kernel complained about the tables: $(grep -iE 'ACPI (BIOS )?(Error|Warning)|ACPI Exception|firmware bug' "$tmp/out" | head -3)"
grep -q "ACPI: PCI Root Bridge \[PCI0\]" "$tmp/out" || fail "no PCI root bridge from the DSDT"
grep -q "^LIBVX-IRQ 0 gsi=2 edge timer" "$tmp/out" || fail "the PIT is not on GSI 2"
! grep -q "LIBVX-INSMOD-FAILED" "$tmp/out" || fail "a virtio module did not load"
for d in a b; do
    grep -q "^LIBVX-MD5 vd$d $(md5sum <"$tmp/$d.img" | cut -d' ' -f1)" "$tmp/out" ||
        fail "vd$d read wrong or not at all"
done
grep -q "^LIBVX-IRQ 9 gsi=9 fasteoi .*virtio0" "$tmp/out" &&
    grep -q "^LIBVX-IRQ 10 gsi=10 fasteoi .*virtio1" "$tmp/out" ||
    fail "the disks' INTx are not level-triggered on GSI 9 and 10 as _PRT says"
echo "PASS: $(basename "$kernel") on QEMU's APICs with libvx's ACPI tables: 2 CPUs up, PIT on GSI 2, two virtio-blk disks read through _PRT routing (GSI 9 and 10, level)"
