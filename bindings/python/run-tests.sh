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

if test ! -f "$abs_top_builddir/lib/.libs/libvx.so.0"; then
    echo "FAIL: $abs_top_builddir/lib/.libs/libvx.so.0 was not built"
    exit 1
fi
. "$abs_top_srcdir/bindings/python/env.sh"
export abs_top_srcdir abs_top_builddir

exec "$PYTHON" -m unittest discover -s "$abs_top_srcdir/bindings/python/tests" -v
