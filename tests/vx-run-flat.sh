#!/bin/sh
# vx-run --flat: one position-independent binary (tests/guests/flat.asm)
# loaded at different addresses and started in each --mode prints FLAT-OK
# on COM1 and leaves with status 5 (exit code 11), on tcg; and the
# options' errors are usage errors (exit code 2).
set -u
vxrun="${abs_top_builddir:?}/tools/vx-run"
bin="${abs_top_builddir}/tests/guests/flat.bin"
if [ ! -f "$bin" ]; then
    echo "SKIP: $bin not built (no nasm)"
    exit 77
fi
status=0
run() {  # what, args...
    what=$1
    shift
    out=$(timeout 30 "$vxrun" --accel tcg "$@" </dev/null 2>&1)
    rc=$?
    if [ "$rc" = 11 ] && printf '%s\n' "$out" | grep -q '^FLAT-OK'; then
        echo "PASS: $what"
    else
        echo "FAIL: $what: exit $rc, output:"
        printf '%s\n' "$out" | tail -5
        status=1
    fi
}
run "real mode at 0x7c00" --flat "$bin@0x7c00"
run "real mode at 0x12345 (CS 0x1000)" --flat "$bin@0x12345" --mode real
run "real mode with --entry" --flat "$bin@0x8000" --entry 0x8000 --mode real
run "prot32 at 0x100000" --flat "$bin@0x100000" --mode prot32
run "long64 at 0x200000" --flat "$bin@0x200000" --mode long64 --mem 64
usage() {  # what, args...
    what=$1
    shift
    "$vxrun" "$@" </dev/null >/dev/null 2>&1
    rc=$?
    if [ "$rc" = 2 ]; then
        echo "PASS: usage error: $what"
    else
        echo "FAIL: usage error: $what: exit $rc (want 2)"
        status=1
    fi
}
usage "no kernel nor flat"
usage "kernel and flat" --kernel /dev/null --flat "$bin@0x7c00"
usage "flat without an address" --flat "$bin"
usage "real-mode entry above 1 MiB" --flat "$bin@0x200000"
usage "bad mode" --flat "$bin@0x7c00" --mode vm86
usage "bad accel" --flat "$bin@0x7c00" --accel qemu
"$vxrun" --accel tcg --flat "$bin@0x7fffff000" --mode long64 --mem 16 </dev/null >/dev/null 2>&1
rc=$?
if [ "$rc" = 1 ]; then echo "PASS: a binary outside RAM is refused"; else echo "FAIL: outside RAM: exit $rc"; status=1; fi
exit $status
