#!/bin/sh
# make check's system-level differential test: 40,000 cases from a fixed
# seed, rings 0 and 3 alternating (see tests/difftest_sys.c). Run it by
# hand with another --seed and a larger --count to look further.
bin="${top_builddir:-.}/tests/difftest-sys"
exec "$bin" --seed 1 --count 40000 --ring all
