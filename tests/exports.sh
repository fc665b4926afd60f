#!/bin/sh
# The shared library exports vx_* and nothing else, all at version LIBVX_1.0.
lib="${top_builddir:-.}/lib/.libs/libvx.so"
if ! test -f "$lib"; then
    echo "SKIP: $lib not built (static-only build?)"
    exit 77
fi
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^LIBVX_1\.0$')
bad=$(printf '%s\n' "$syms" | grep -v '^vx_' || true)
if test -n "$bad"; then
    echo "FAIL: symbols outside vx_* are exported:"
    printf '%s\n' "$bad"
    exit 1
fi
count=$(printf '%s\n' "$syms" | grep -c '^vx_')
if test "$count" -lt 30; then
    echo "FAIL: only $count vx_* symbols exported"
    exit 1
fi
unversioned=$(objdump -T "$lib" | awk '/ vx_/ && $0 !~ /LIBVX_1\.0/' || true)
if test -n "$unversioned"; then
    echo "FAIL: vx_* symbols without the LIBVX_1.0 version:"
    printf '%s\n' "$unversioned"
    exit 1
fi
echo "PASS: $count vx_* symbols exported, all LIBVX_1.0, nothing else"
