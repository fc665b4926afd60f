# Sourced by the scripts that run Python against the library just built
# (bindings/python/run-tests.sh, tests/readme.sh): sets LIBVX_LIBRARY and
# PYTHONPATH from abs_top_builddir/abs_top_srcdir, and for a sanitizer build
# of libvx (CI's -fsanitize=address,undefined) preloads its runtimes, which
# must come first in the python3 process. python3 itself is not built for
# LeakSanitizer, whose report at exit would be Python's, not libvx's.
LIBVX_LIBRARY="$abs_top_builddir/lib/.libs/libvx.so.0"
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
export LIBVX_LIBRARY PYTHONPATH PYTHONDONTWRITEBYTECODE
