#!/usr/bin/env python3
"""The cost of a port-I/O round trip from a guest to Python and back.

A 32-bit guest runs ``out 0x10, al`` in a loop (``in al, 0x10`` for the
read rows); each row is the wall-clock time per iteration, best of several
runs. On every available accelerator:

  callback (write)   out -> libvx -> a Python write callback -> back to the guest
  callback (read)    in  -> a Python read callback returning a value
  exit to Python     nobody claims the port: run() returns an IO exit, Python
                     calls run() again (the "no callbacks" style)
  claimed, no Python the port is claimed with no callables: libvx's own
                     dispatch, what the accelerator costs without Python
  bare loop          the same loop without the out (dec/jnz only)

and, when the ``unicorn`` module imports (Debian: python3-unicorn), the
same guest under Unicorn with a UC_HOOK_INSN hook on UC_X86_INS_OUT (and
UC_X86_INS_IN), and without a hook.

Usage: LIBVX_LIBRARY=<build>/lib/.libs/libvx.so.0 python3 bench_pio.py [-n N] [-r RUNS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import libvx  # noqa: E402


def asm(*hex_parts: str) -> bytes:
    return bytes.fromhex("".join(hex_parts))


OUT_LOOP = asm(
    # bits 32, loaded at 0x1000; ecx = iterations
    "e610",  # .loop: out 0x10, al
    "49",    # dec ecx
    "75fb",  # jnz .loop
    "f4",    # hlt
)
IN_LOOP = asm(
    "e410",  # .loop: in al, 0x10
    "49",    # dec ecx
    "75fb",  # jnz .loop
    "f4",    # hlt
)
BARE_LOOP = asm(
    "90",    # .loop: nop (two bytes like the others: nop; nop)
    "90",
    "49",    # dec ecx
    "75fb",  # jnz .loop
    "f4",    # hlt
)

CODE = 0x1000
PORT = 0x10


def best(runs: int, fn) -> float:
    return min(fn() for _ in range(runs))


def vx_time(accel: str, program: bytes, n: int, style: str) -> float:
    flags = 0
    with libvx.Machine(accel=accel, flags=flags) as m:
        m.map(0, 0x100000)
        m.load_flat(CODE, program)
        if style == "write":
            m.on_pio(PORT, 1, write=lambda port, size, value: None)
        elif style == "read":
            m.on_pio(PORT, 1, read=lambda port, size: 0x42)
        elif style == "claimed":
            m.on_pio(PORT, 1)
        v = m.vcpu
        v.set_mode("prot32", 0x10000)
        v.set_regs(rip=CODE, rsp=0x8000, rcx=n)
        t0 = time.perf_counter()
        e = v.run()
        while e.reason == libvx.ExitReason.IO:  # the "exit" style
            e = v.run()
        t1 = time.perf_counter()
        assert e.reason == libvx.ExitReason.HLT, e
        assert v.regs.rcx == 0
        return (t1 - t0) / n


def unicorn_time(program: bytes, n: int, hook: str) -> float:
    import unicorn
    from unicorn import x86_const as X

    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
    uc.mem_map(0, 0x100000)
    uc.mem_write(CODE, program)
    uc.reg_write(X.UC_X86_REG_ECX, n)
    uc.reg_write(X.UC_X86_REG_ESP, 0x8000)
    if hook == "out":
        uc.hook_add(unicorn.UC_HOOK_INSN, lambda uc, port, size, value, data: None,
                    None, 1, 0, X.UC_X86_INS_OUT)
    elif hook == "in":
        uc.hook_add(unicorn.UC_HOOK_INSN, lambda uc, port, size, data: 0x42,
                    None, 1, 0, X.UC_X86_INS_IN)
    end = CODE + len(program) - 1  # the hlt
    t0 = time.perf_counter()
    uc.emu_start(CODE, end)
    t1 = time.perf_counter()
    assert uc.reg_read(X.UC_X86_REG_ECX) == 0
    return (t1 - t0) / n


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:9.3f} us"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000,
                    help="loop iterations per run on kvm (ten times as many on tcg and unicorn, "
                    "which take far less time per iteration)")
    ap.add_argument("-r", "--runs", type=int, default=5, help="runs per row (the best counts)")
    args = ap.parse_args()
    runs = args.runs
    iterations = {"kvm": args.n, "tcg": args.n * 10, "unicorn": args.n * 10}

    print(f"libvx {libvx.version_string()} ({libvx.library_path()}), Python "
          f"{sys.version.split()[0]}; best of {runs} runs; time per loop iteration")
    rows = []
    for accel in ("kvm", "tcg"):
        n = iterations[accel]
        if not libvx.accel_available(accel):
            print(f"{accel}: not available: {libvx.last_error()}")
            continue
        rows += [
            (accel, "callback (write), out -> Python", best(runs, lambda: vx_time(accel, OUT_LOOP, n, "write"))),
            (accel, "callback (read), in -> Python", best(runs, lambda: vx_time(accel, IN_LOOP, n, "read"))),
            (accel, "exit to Python, run() again", best(runs, lambda: vx_time(accel, OUT_LOOP, n, "exit"))),
            (accel, "claimed, no Python (C dispatch)", best(runs, lambda: vx_time(accel, OUT_LOOP, n, "claimed"))),
            (accel, "bare loop, no out", best(runs, lambda: vx_time(accel, BARE_LOOP, n, "none"))),
        ]
    try:
        import unicorn

        uv = unicorn.__version__
        n = iterations["unicorn"]
        rows += [
            ("unicorn", "UC_HOOK_INSN out -> Python", best(runs, lambda: unicorn_time(OUT_LOOP, n, "out"))),
            ("unicorn", "UC_HOOK_INSN in -> Python", best(runs, lambda: unicorn_time(IN_LOOP, n, "in"))),
            ("unicorn", "out, no hook", best(runs, lambda: unicorn_time(OUT_LOOP, n, "none"))),
            ("unicorn", "bare loop, no out", best(runs, lambda: unicorn_time(BARE_LOOP, n, "none"))),
        ]
        print(f"unicorn {uv} (Python binding)")
    except ImportError as exc:
        print(f"unicorn: not installed ({exc}); apt-get install python3-unicorn")
    print()
    print(f"{'engine':8} {'what':36} {'iterations':>10} {'per iteration':>13}")
    for engine, what, t in rows:
        print(f"{engine:8} {what:36} {iterations[engine]:>10} {fmt(t):>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
