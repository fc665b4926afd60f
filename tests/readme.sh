#!/bin/sh
# The C example in README.md compiles against the public headers and runs.
set -e
src="${abs_top_srcdir:?}/README.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk '/^```c$/ { f = 1; next } /^```$/ { f = 0 } f' "$src" >"$work/readme.c"
test -s "$work/readme.c" || { echo "FAIL: no C example found in README.md"; exit 1; }
${CC:-cc} $CFLAGS -std=gnu11 -Wall -Werror -Wno-unused-parameter -I"$abs_top_srcdir/include" \
    "$work/readme.c" -o "$work/readme" -L"$abs_top_builddir/lib/.libs" -lvx $LDFLAGS
out=$(LD_LIBRARY_PATH="$abs_top_builddir/lib/.libs" "$work/readme" 2>&1) && rc=0 || rc=$?
case "$out" in
*"cannot open /dev/kvm"* | *"no accelerator available"*)
    echo "SKIP: no accelerator: $out"; exit 77 ;;
esac
if [ "$rc" -ne 0 ] || [ "$out" != "hi" ]; then
    echo "FAIL: README example exited $rc and printed: $out"
    exit 1
fi
echo "PASS: README C example printed '$out'"

# The Python example, with the binding from the source tree.
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 not found: README Python example not run"
    exit 0
fi
awk '/^```python$/ { f = 1; next } /^```$/ { f = 0 } f' "$src" >"$work/readme.py"
test -s "$work/readme.py" || { echo "FAIL: no Python example found in README.md"; exit 1; }
. "$abs_top_srcdir/bindings/python/env.sh"
out=$(python3 "$work/readme.py" 2>&1) && rc=0 || rc=$?
case "$out" in
*" 42") echo "PASS: README Python example printed '$out'" ;;
*) echo "FAIL: README Python example exited $rc and printed: $out"; exit 1 ;;
esac
