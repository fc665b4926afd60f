#!/bin/sh
# make check's system-level differential test: 60,000 cases from a fixed
# seed, rings 0 and 3 and the three paging modes (4-level long mode, 32-bit
# with 4 MiB pages, 32-bit PAE with NX) in turn (see tests/difftest_sys.c).
# Run it by hand with another --seed and a larger --count to look further.
bin="${top_builddir:-.}/tests/difftest-sys"
exec "$bin" --seed 1 --count 60000 --ring all --mode all
