#!/bin/sh
# make check's differential tests.
#  1. The oracle: 600,000 random instruction sequences from a fixed seed,
#     half in 64-bit long mode and half in 32-bit protected mode, ring 3,
#     run on kvm (the CPU) and on tcg (the translator); registers, the flags
#     the SDM defines and memory must match. Without /dev/kvm it says SKIP.
#  2. Always: 200,000 sequences with --tcg-twice: each batch runs once on a
#     tcg machine and twice on a second one, whose second run goes through
#     translated blocks and their fast paths (tcg keeps a block from its
#     second run on); the two must agree. The oracle's single runs never
#     reach those blocks, so this is what checks the fast paths (against
#     tcg's generic handlers, which the oracle checks against the CPU).
# Run either by hand with another --seed and a larger --count.
bin="${top_builddir:-.}/tests/difftest"
"$bin" --seed 1 --count 600000 --mode all
rc=$?
"$bin" --seed 1 --count 200000 --mode all --tcg-twice
rc2=$?
if [ "$rc" = 77 ]; then
    exit "$rc2"
fi
[ "$rc" = 0 ] && exit "$rc2"
exit "$rc"
