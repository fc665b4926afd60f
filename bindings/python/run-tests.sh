#!/bin/sh
# make check: the Python binding's tests (and examples/python) with the
# system's python3, against the library just built. The test environment
# (AM_TESTS_ENVIRONMENT) exports abs_top_srcdir and abs_top_builddir.
abs_top_srcdir=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
abs_top_builddir=${abs_top_builddir:-$abs_top_srcdir}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "SKIP: python3 not found"
    exit 77
fi

LIBVX_LIBRARY="$abs_top_builddir/lib/.libs/libvx.so.0"
if test ! -f "$LIBVX_LIBRARY"; then
    echo "FAIL: $LIBVX_LIBRARY was not built"
    exit 1
fi
# A sanitizer build of libvx (CI's -fsanitize=address,undefined) needs its
# runtimes loaded before anything else in the python3 process; and python3
# itself is not built for LeakSanitizer, whose report at exit would be
# Python's, not libvx's.
sanitizers=$(LC_ALL=C ldd "$LIBVX_LIBRARY" 2>/dev/null |
    awk '$1 ~ /^lib(asan|ubsan|tsan|lsan)\.so/ && $3 ~ /^\// { printf "%s%s", sep, $3; sep = ":" }')
if test -n "$sanitizers"; then
    LD_PRELOAD="$sanitizers${LD_PRELOAD:+:$LD_PRELOAD}"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    export LD_PRELOAD ASAN_OPTIONS
    echo "libvx is a sanitizer build: preloading $sanitizers"
fi
PYTHONPATH="$abs_top_srcdir/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
# The source tree may be read-only (make distcheck): no __pycache__ there.
PYTHONDONTWRITEBYTECODE=1
export LIBVX_LIBRARY PYTHONPATH PYTHONDONTWRITEBYTECODE abs_top_srcdir abs_top_builddir

exec "$PYTHON" -m unittest discover -s "$abs_top_srcdir/bindings/python/tests" -v
