#!/bin/sh
# Boot Debian's kernel with a busybox initramfs through vx-run: /init
# prints a marker, loads the virtio modules and leaves through the
# debug-exit port with status 21 (vx-run exits with (21 << 1) | 1 = 43).
# On tcg everywhere; on kvm where KVM runs ring 0 on the CPU (kvm_intel or
# kvm_amd: a software KVM such as kvm_pvm cannot boot a stock kernel).
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
echo "LIBVX-BOOT-MARKER $(uname -r)"
for m in /lib/modules/virtio/*.ko; do insmod "$m" || echo "LIBVX-INSMOD-FAILED $m"; done
vx-exit 21
INIT
"${abs_top_srcdir:?}/scripts/make-initramfs" "$tmp/initrd.gz" "$tmp/init" || exit 1

boot() {  # accel
    start=$(date +%s.%N)
    timeout 300 "$vxrun" --accel "$1" --kernel "$kernel" --initrd "$tmp/initrd.gz" \
        --append "console=ttyS0 quiet panic=-1" </dev/null >"$tmp/out.$1" 2>&1
    rc=$?
    end=$(date +%s.%N)
    secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
    if [ "$rc" != 43 ] || ! grep -q "LIBVX-BOOT-MARKER" "$tmp/out.$1" ||
        grep -q "LIBVX-INSMOD-FAILED" "$tmp/out.$1"; then
        echo "FAIL: $1: vx-run exited $rc (want 43); its output:"
        tail -40 "$tmp/out.$1"
        return 1
    fi
    echo "PASS: $1: $(basename "$kernel") reached /init, loaded the virtio modules and left with status 21 in $secs s"
}

status=0
boot tcg || status=1
if grep -qE '^kvm_(intel|amd) ' /proc/modules 2>/dev/null && [ -w /dev/kvm ]; then
    boot kvm || status=1
else
    echo "SKIP: kvm: no kvm_intel/kvm_amd here (a software KVM such as kvm_pvm cannot boot a stock kernel)"
fi
exit $status
