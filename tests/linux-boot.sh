#!/bin/sh
# Boot Debian's kernel with a busybox initramfs through vx-run: /init
# prints a marker, loads the virtio modules, reads the first 64 KiB of a
# virtio-blk disk (the host compares its md5 with the image's), writes a
# line at sector 8 of it (the host finds it in the image afterwards), finds
# a second, read-only disk refusing a write, writes a line to the virtio
# console (the host finds it in the console's file) and leaves through the
# debug-exit port with status 21 (vx-run exits with (21 << 1) | 1 = 43).
# A second boot powers off with `poweroff -f` (ACPI S5): vx-run exits 0.
# On tcg everywhere (one vCPU); on kvm where KVM runs ring 0 on the CPU
# (kvm_intel or kvm_amd: a software KVM such as kvm_pvm cannot boot a
# stock kernel), with one vCPU and again with two (/init checks that the
# kernel sees both). tests/acpi-smp.sh checks the two-processor board on
# QEMU's APIC models where kvm cannot run it.
# SKIP (77) without an installed kernel or busybox-static.
set -u
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
if [ -z "$kernel" ] || [ ! -r "$kernel" ]; then
    echo "SKIP: no readable /boot/vmlinuz-* (apt-get install linux-image-cloud-amd64)"
    exit 77
fi
if ! command -v busybox >/dev/null 2>&1; then
    echo "SKIP: no busybox (apt-get install busybox-static)"
    exit 77
fi
vxrun="${abs_top_builddir:?}/tools/vx-run"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
if grep -q libvx_poweroff /proc/cmdline; then
    echo "LIBVX-POWERING-OFF"
    poweroff -f
fi
echo "LIBVX-BOOT-MARKER $(uname -r)"
echo "LIBVX-CPUS $(grep -c ^processor /proc/cpuinfo)"
for m in /lib/modules/virtio/*.ko; do insmod "$m" || echo "LIBVX-INSMOD-FAILED $m"; done
n=0
while [ ! -b /dev/vdb ] || [ ! -c /dev/hvc0 ]; do
    n=$((n + 1))
    [ $n -gt 200 ] && break
    sleep 0.05
done
echo "LIBVX-DISK-MD5 $(dd if=/dev/vda bs=4096 count=16 2>/dev/null | md5sum | cut -d' ' -f1)"
# vdc-vde share interrupt lines with vda, vdb and hvc0 (PIRQ A-D for 7
# devices): read them all at once.
for d in c d e; do
    (echo "LIBVX-SHARED-MD5 vd$d $(md5sum </dev/vd$d | cut -d' ' -f1)") &
done
wait
echo "LIBVX-DISK-WRITTEN-BY-THE-GUEST" | dd of=/dev/vda bs=512 seek=8 conv=sync 2>/dev/null
sync
if echo x | dd of=/dev/vdb bs=512 seek=1 conv=sync 2>/dev/null; then
    echo "LIBVX-RO-WRITTEN"
else
    echo "LIBVX-RO-REFUSED"
fi
echo "LIBVX-CONSOLE-HELLO" >/dev/hvc0
vx-exit 21
INIT
"${abs_top_srcdir:?}/scripts/make-initramfs" "$tmp/initrd.gz" "$tmp/init" || exit 1
# The disks: 1 MiB of random bytes (read-write) and 64 KiB of zeros (read-only).
head -c 1048576 /dev/urandom >"$tmp/disk.orig"
head -c 65536 /dev/zero >"$tmp/ro.img"
for d in c d e; do head -c 262144 /dev/urandom >"$tmp/shared-$d.img"; done
want_md5=$(head -c 65536 "$tmp/disk.orig" | md5sum | cut -d' ' -f1)

fail() {  # accel, what
    echo "FAIL: $1: $2; vx-run's output:"
    tail -40 "$tmp/out.$1"
    return 1
}

boot() {  # accel [cpus]
    cpus=${2:-1}
    cp "$tmp/disk.orig" "$tmp/disk.img"
    rm -f "$tmp/console.$1"
    start=$(date +%s.%N)
    timeout 300 "$vxrun" --accel "$1" --cpus "$cpus" --kernel "$kernel" --initrd "$tmp/initrd.gz" \
        --append "console=ttyS0 quiet panic=-1" --disk "$tmp/disk.img" \
        --disk "$tmp/ro.img,ro" --disk "$tmp/shared-c.img" --disk "$tmp/shared-d.img" \
        --disk "$tmp/shared-e.img" --console "$tmp/console.$1" </dev/null >"$tmp/out.$1" 2>&1
    rc=$?
    end=$(date +%s.%N)
    secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
    [ "$rc" = 43 ] || { fail "$1" "vx-run exited $rc (want 43)"; return 1; }
    grep -q "LIBVX-BOOT-MARKER" "$tmp/out.$1" || { fail "$1" "no marker from /init"; return 1; }
    grep -q "LIBVX-CPUS $cpus" "$tmp/out.$1" ||
        { fail "$1" "the kernel does not see $cpus processor(s)"; return 1; }
    ! grep -q "LIBVX-INSMOD-FAILED" "$tmp/out.$1" || { fail "$1" "a module did not load"; return 1; }
    grep -q "LIBVX-DISK-MD5 $want_md5" "$tmp/out.$1" ||
        { fail "$1" "the guest read other bytes from vda (want md5 $want_md5)"; return 1; }
    for d in c d e; do
        grep -q "LIBVX-SHARED-MD5 vd$d $(md5sum <"$tmp/shared-$d.img" | cut -d' ' -f1)" \
            "$tmp/out.$1" || { fail "$1" "vd$d (on a shared line) read wrong or not at all"; return 1; }
    done
    dd if="$tmp/disk.img" bs=512 skip=8 count=1 2>/dev/null |
        grep -q "LIBVX-DISK-WRITTEN-BY-THE-GUEST" ||
        { fail "$1" "the guest's write is not in the image at sector 8"; return 1; }
    cmp -s -n 4096 "$tmp/disk.img" "$tmp/disk.orig" ||
        { fail "$1" "the image changed where the guest did not write"; return 1; }
    grep -q "LIBVX-RO-REFUSED" "$tmp/out.$1" && cmp -s -n 65536 "$tmp/ro.img" /dev/zero ||
        { fail "$1" "the read-only disk took a write"; return 1; }
    grep -q "LIBVX-CONSOLE-HELLO" "$tmp/console.$1" 2>/dev/null ||
        { fail "$1" "nothing from the guest on the virtio console"; return 1; }
    echo "PASS: $1, $cpus vCPU(s): $(basename "$kernel") reached /init, loaded the virtio modules, read and wrote vda, read vdc-vde at once on shared lines, found vdb read-only, wrote to hvc0 and left with status 21 in $secs s"
}

# A clean power-off: poweroff -f reaches ACPI S5 (the board's PM1a
# control register) and vx-run exits 0.
poweroff_boot() {  # accel
    timeout 300 "$vxrun" --accel "$1" --kernel "$kernel" --initrd "$tmp/initrd.gz" \
        --append "console=ttyS0 quiet panic=-1 libvx_poweroff" </dev/null >"$tmp/off.$1" 2>&1
    rc=$?
    if [ "$rc" != 0 ] || ! grep -q "LIBVX-POWERING-OFF" "$tmp/off.$1" ||
        ! grep -q "reboot: Power down" "$tmp/off.$1"; then
        echo "FAIL: $1: poweroff -f: vx-run exited $rc; its output:"
        tail -20 "$tmp/off.$1"
        return 1
    fi
    echo "PASS: $1: poweroff -f powered the machine off through ACPI S5 (vx-run exited 0)"
}

status=0
boot tcg || status=1
poweroff_boot tcg || status=1
if grep -qE '^kvm_(intel|amd) ' /proc/modules 2>/dev/null && [ -w /dev/kvm ]; then
    boot kvm || status=1
    poweroff_boot kvm || status=1
    # Two vCPUs: the ACPI tables, the APICs, virtio through _PRT routing.
    boot kvm 2 || status=1
else
    echo "SKIP: kvm: no kvm_intel/kvm_amd here (a software KVM such as kvm_pvm cannot boot a stock kernel)"
fi
exit $status
