#!/bin/sh
# make check's differential test: 600,000 random instruction sequences from a
# fixed seed, half in 64-bit long mode and half in 32-bit protected mode,
# ring 3, run on kvm (the oracle) and on tcg (the translator); registers, the
# flags the SDM defines and memory must match. tests/difftest prints SKIP and
# exits 77 without /dev/kvm or without tcg. Run it by hand with another
# --seed and a larger --count to look further.
bin="${top_builddir:-.}/tests/difftest"
exec "$bin" --seed 1 --count 600000 --mode all
