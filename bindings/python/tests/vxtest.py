"""Shared helpers of the binding's tests (not a test module itself).

Every guest test is written once, in a mixin class, and runs once per
accelerator: :func:`per_accel` makes a ``unittest.TestCase`` for "kvm" and
one for "tcg". An accelerator that cannot create a machine here makes its
tests skip with the library's reason; one that says it is available
(``accel_available``) but then fails to create a machine is a failure, as
in the C tests.

The expectations are the architecture's and the API's, never one
accelerator's.
"""

from __future__ import annotations

import os
import sys
import threading
import unittest
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)  # bindings/python

try:
    import libvx  # noqa: F401
except ImportError:  # run from the source tree without PYTHONPATH (pytest)
    sys.path.insert(0, PACKAGE_DIR)
    import libvx  # noqa: F401

import guests as G  # noqa: E402

ACCELS = ("kvm", "tcg")

#: A guest run that takes longer than this is stopped and the test fails.
RUN_TIMEOUT = 20.0

MODES = (("real", "16"), ("prot32", "32"), ("long64", "64"))


def source_tree() -> str:
    """The top of the libvx source tree (abs_top_srcdir under make check)."""
    top = os.environ.get("abs_top_srcdir")
    if top:
        return top
    return os.path.dirname(os.path.dirname(PACKAGE_DIR))


class GuestMixin:
    """Machine set-up for a test class with ACCEL = "kvm" or "tcg"."""

    ACCEL = "auto"

    def new_machine(self, vcpus: int = 1, flags: int = 0, ram: bool = True) -> "libvx.Machine":
        try:
            m = libvx.Machine(accel=self.ACCEL, vcpus=vcpus, flags=flags)
        except libvx.NotSupported as exc:
            if libvx.accel_available(self.ACCEL):
                self.fail(f"{self.ACCEL}: accel_available() says yes but Machine() failed: {exc}")
            self.skipTest(f"{self.ACCEL}: {exc.detail or exc}")
        ref = weakref.ref(m)  # a test may drop its machine on purpose
        self.addCleanup(lambda: ref() is not None and ref().close())
        self.assertEqual(m.accel, self.ACCEL)
        if ram:
            m.map(0, G.RAM_SIZE, "rwx")
        return m

    def start_vcpu(self, vcpu: "libvx.Vcpu", mode: str) -> None:
        vcpu.set_mode(mode, G.TABLES_GPA)
        rflags = vcpu.regs.rflags
        vcpu.set_regs(libvx.Regs(rip=G.CODE_GPA, rsp=G.STACK_TOP, rflags=rflags))

    def setup_guest(self, program: bytes, mode: str, **machine_args) -> "libvx.Machine":
        m = self.new_machine(**machine_args)
        self.assertLessEqual(len(program), G.DATA_GPA - G.CODE_GPA)
        m.load_flat(G.CODE_GPA, program)
        self.start_vcpu(m.vcpu, mode)
        return m

    def run_vcpu(self, vcpu: "libvx.Vcpu", timeout: float = RUN_TIMEOUT) -> "libvx.Exit":
        """vcpu.run(), stopped by a watchdog after `timeout` seconds (a fail)."""
        fired = []

        def watchdog() -> None:
            fired.append(True)
            vcpu.stop()

        timer = threading.Timer(timeout, watchdog)
        timer.daemon = True
        timer.start()
        try:
            e = vcpu.run()
        finally:
            timer.cancel()
            timer.join()  # the timer thread holds the vCPU until it ends
        if fired and e.reason == libvx.ExitReason.STOPPED:
            self.fail(f"{self.ACCEL}: the guest ran for more than {timeout} s "
                      f"(rip {vcpu.regs.rip:#x})")
        return e

    def run_expect(self, vcpu: "libvx.Vcpu", reason: "libvx.ExitReason") -> "libvx.Exit":
        e = self.run_vcpu(vcpu)
        if e.reason != reason:
            self.fail(f"{self.ACCEL}: exit {e!r} at rip {vcpu.regs.rip:#x}, want "
                      f"{reason.name.lower()} (last error: {libvx.last_error()!r})")
        return e

    def run_to_hlt(self, vcpu: "libvx.Vcpu") -> "libvx.Exit":
        return self.run_expect(vcpu, libvx.ExitReason.HLT)

    def assertRegs(self, vcpu: "libvx.Vcpu", **want: int) -> None:
        r = vcpu.get_regs()
        for name, value in want.items():
            got = getattr(r, name)
            self.assertEqual(got, value, f"{self.ACCEL}: {name} = {got:#x}, want {value:#x}")


def per_accel(mixin: type, namespace: dict) -> None:
    """Define one TestCase per accelerator from `mixin` in `namespace`:
    ``FooGuests`` gives ``FooGuests_kvm`` and ``FooGuests_tcg``."""
    for accel in ACCELS:
        name = f"{mixin.__name__}_{accel}"
        cls = type(name, (mixin, unittest.TestCase), {"ACCEL": accel, "__module__": namespace["__name__"]})
        cls.__qualname__ = name
        namespace[name] = cls
