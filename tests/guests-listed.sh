#!/bin/sh
# Every guest program in tests/guests/ is listed in GUEST_ASM, so a clean
# build assembles it and make dist ships it (an unlisted one works only in
# a tree where someone built it by hand).
set -e
dir="${abs_top_srcdir:?}/tests/guests"
missing=0
for f in "$dir"/*.asm; do
    name="tests/guests/$(basename "$f")"
    if ! grep -q "^[[:space:]]*$name" "$dir/Makefile.inc"; then
        echo "FAIL: $name is not in GUEST_ASM (tests/guests/Makefile.inc)"
        missing=1
    fi
done
[ "$missing" = 0 ] && echo "PASS: every tests/guests/*.asm is in GUEST_ASM"
exit $missing
