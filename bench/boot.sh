#!/bin/sh
# Boot time of Debian's kernel to /init on tcg, side by side with QEMU's TCG
# on the same kernel and initramfs, and vx-run's host memory beyond guest
# RAM. /init prints a marker and leaves at once through the debug-exit port
# (QEMU: isa-debug-exit at the same port), so a run's wall time is process
# start to marker plus an exit. Median of RUNS (default 5).
#   bench/boot.sh [RUNS]        (make bench-boot)
set -u
runs=${1:-5}
top=$(cd "$(dirname "$0")/.." && pwd)
build=${abs_top_builddir:-$top}
vxrun="$build/tools/vx-run"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
if [ -z "$kernel" ] || ! command -v busybox >/dev/null 2>&1; then
    echo "boot bench: SKIP: needs /boot/vmlinuz-* and busybox-static"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/init" <<'INIT'
#!/bin/sh
echo LIBVX-BOOT-MARKER
vx-exit 0
INIT
"$top/scripts/make-initramfs" "$tmp/initrd.gz" "$tmp/init" >/dev/null || exit 1
append="console=ttyS0 quiet panic=-1"

now() { date +%s.%N; }

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_once() {  # label, command...: prints the seconds to the marker and exit
    label=$1
    shift
    t0=$(now)
    "$@" </dev/null >"$tmp/out" 2>&1
    t1=$(now)
    if ! grep -q LIBVX-BOOT-MARKER "$tmp/out"; then
        echo "$label: no marker; output:" >&2
        tail -5 "$tmp/out" >&2
        return 1
    fi
    awk "BEGIN { print $t1 - $t0 }"
}

vx_boot() {
    run_once vx-run "$vxrun" --accel tcg --mem 256 --kernel "$kernel" --initrd "$tmp/initrd.gz" \
        --append "$append"
}

qemu_boot() {
    run_once qemu qemu-system-x86_64 -accel tcg -m 256 -nodefaults -no-user-config \
        -display none -serial stdio -no-reboot -device isa-debug-exit,iobase=0x501,iosize=1 \
        -kernel "$kernel" -initrd "$tmp/initrd.gz" -append "$append"
}

have_qemu=false
command -v qemu-system-x86_64 >/dev/null 2>&1 && have_qemu=true
echo "boot to /init: $(basename "$kernel"), busybox initramfs, 256 MiB, median of $runs" \
    "(the two take turns, so the host's load weighs on both)"
: >"$tmp/vx"
: >"$tmp/qemu"
i=0
while [ "$i" -lt "$runs" ]; do
    vx_boot >>"$tmp/vx" || exit 1
    if $have_qemu; then qemu_boot >>"$tmp/qemu" || exit 1; fi
    i=$((i + 1))
done
vx=$(median <"$tmp/vx")
printf '  %-28s %6.2f s\n' "libvx tcg (vx-run)" "$vx"
if $have_qemu; then
    q=$(median <"$tmp/qemu")
    printf '  %-28s %6.2f s\n' "QEMU TCG ($(qemu-system-x86_64 --version | head -1 | awk '{print $4}'))" "$q"
    awk "BEGIN { printf \"  libvx / QEMU                  %6.2f x\\n\", $vx / $q }"
else
    echo "  QEMU: not installed (apt-get install qemu-system-x86)"
fi
# Memory: vx-run reports its peak resident size and what of it is guest RAM.
VX_RUN_STATS=1 "$vxrun" --accel tcg --mem 256 --kernel "$kernel" --initrd "$tmp/initrd.gz" \
    --append "$append" </dev/null 2>&1 >/dev/null | grep '^vx-run: memory' | sed 's/^/  /'
