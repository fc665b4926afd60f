#!/bin/sh
# Build the libFuzzer targets with clang: the library's sources compiled
# into each target with coverage and AddressSanitizer, the tcg accelerator
# only. Usage: fuzz/build.sh OUTDIR; then OUTDIR/decode-fuzz CORPUS_DIR
# (or OUTDIR/virtio-fuzz).
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: fuzz/build.sh OUTDIR}
mkdir -p "$out"
: >"$out/config.h"
CC=${CC:-clang}
FLAGS="-g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
libsrc=$(cd "$src" && ls lib/core/*.c lib/mmu/*.c lib/cpu/x86/*.c lib/accel-tcg/*.c lib/devices/*.c)
objs=
for f in $libsrc; do
    o="$out/$(echo "$f" | tr / _).o"
    $CC $FLAGS -fsanitize=fuzzer-no-link -c -I"$out" -I"$src/include" -I"$src/lib" "$src/$f" -o "$o"
    objs="$objs $o"
done
$CC $FLAGS -I"$src/include" "$src/fuzz/decode.c" $objs -lpthread -o "$out/decode-fuzz"
$CC $FLAGS -I"$out" -I"$src/include" -I"$src/lib" "$src/fuzz/virtio.c" $objs -lpthread -o "$out/virtio-fuzz"
$CC $FLAGS -I"$out" -I"$src/include" -I"$src/lib" "$src/fuzz/pci.c" $objs -lpthread -o "$out/pci-fuzz"
echo "built $out/decode-fuzz: run it as $out/decode-fuzz -max_total_time=600 $src/fuzz/corpus/decode"
echo "built $out/pci-fuzz: run it as $out/pci-fuzz -max_total_time=600 $src/fuzz/corpus/pci"
echo "built $out/virtio-fuzz: run it as $out/virtio-fuzz -max_total_time=600 $src/fuzz/corpus/virtio"
