"""The foundation's guest scenarios, from Python, on every accelerator.

The programs are in guests.py (the bytes of tests/guests/*.asm with their
assembly); each test runs once per accelerator (see vxtest.per_accel) and
skips where the accelerator is not available. The expectations are those
of tests/check_guests.c: the architecture's and the API's.
"""

from __future__ import annotations

import gc
import struct
import threading
import time
import unittest
import weakref

import guests as G
from vxtest import MODES, GuestMixin, per_accel

import libvx
from libvx import ExitReason

PIO, MMIO = "pio", "mmio"

# The accesses of pio16/32/64 in order: (space, is_write, len, addr, value).
PIO_SCRIPT = [
    (PIO, True, 1, 0x10, 0x11),
    (PIO, True, 2, 0x12, 0x2233),
    (PIO, True, 4, 0x14, 0x44556677),
    (PIO, True, 1, 0x17, 0x77),
    (PIO, False, 1, 0x11, 0xA1),
    (PIO, False, 2, 0x12, 0xB2C2),
    (PIO, False, 4, 0x14, 0xD4E4F404),
]

# mmio16/32/64; the 8-byte accesses are in mmio64 only.
MMIO_SCRIPT = [
    (MMIO, True, 1, 0xA0001, 0x11),
    (MMIO, True, 2, 0xA0002, 0x2233),
    (MMIO, True, 4, 0xA0004, 0x44556677),
    (MMIO, True, 8, 0xA0008, 0x8899AABBCCDDEEFF),
    (MMIO, False, 1, 0xA0010, 0x5A),
    (MMIO, False, 2, 0xA0012, 0x5AA5),
    (MMIO, False, 4, 0xA0014, 0xDEADBEEF),
    (MMIO, False, 8, 0xA0018, 0x0123456789ABCDEF),
    (MMIO, False, 4, 0xA0020, 0x100),
    (MMIO, True, 4, 0xA0020, 0x180),
]

PROGRAMS = {
    "pio": {"real": G.PIO16, "prot32": G.PIO32, "long64": G.PIO64},
    "mmio": {"real": G.MMIO16, "prot32": G.MMIO32, "long64": G.MMIO64},
}


class Script:
    """The accesses a program must make, in order; answers its reads.
    A mismatch raises AssertionError: inside a callback, run() re-raises it."""

    def __init__(self, accesses, vcpu=None, qwords=True):
        self.want = [a for a in accesses if qwords or a[2] != 8]
        self.next = 0
        self.callbacks = 0
        self.exits = 0
        self.vcpu = vcpu

    def take(self, space, is_write, addr, size, value=None):
        got = (space, is_write, size, addr, value if is_write else None)
        if self.next >= len(self.want):
            raise AssertionError(f"unexpected access {got} after the last one")
        w = self.want[self.next]
        want = (w[0], w[1], w[2], w[3], w[4] if w[1] else None)
        if got != want:
            raise AssertionError(f"access {self.next}: got {got}, want {want}")
        self.next += 1
        return None if is_write else w[4]

    # callbacks
    def _check_current(self):
        self.callbacks += 1
        if self.vcpu is not None and libvx.current_vcpu() is not self.vcpu:
            raise AssertionError(f"current_vcpu() is {libvx.current_vcpu()!r}")

    def pio_read(self, port, size):
        self._check_current()
        return self.take(PIO, False, port, size)

    def pio_write(self, port, size, value):
        self._check_current()
        self.take(PIO, True, port, size, value)

    def mmio_read(self, gpa, size):
        self._check_current()
        return self.take(MMIO, False, gpa, size)

    def mmio_write(self, gpa, size, value):
        self._check_current()
        self.take(MMIO, True, gpa, size, value)

    def done(self):
        return self.next == len(self.want)


class Guests(GuestMixin):
    # -- helpers --------------------------------------------------------------

    def run_script(self, vcpu, script, stop_at_read=False):
        """Run to hlt, answering IO/MMIO exits from the script."""
        stopped = False
        for _ in range(len(script.want) + 1):
            e = self.run_vcpu(vcpu)
            if e.reason == ExitReason.HLT:
                break
            if e.reason == ExitReason.IO:
                answer = script.take(PIO, e.is_write, e.port, e.len, e.value)
            elif e.reason == ExitReason.MMIO:
                answer = script.take(MMIO, e.is_write, e.gpa, e.len, e.value)
            else:
                self.fail(f"{self.ACCEL}: unexpected exit {e!r} after {script.next} accesses")
            script.exits += 1
            if not e.is_write:
                e.value = answer
                self.assertIn(f"value={answer:#x}", repr(e))
                if stop_at_read and not stopped:
                    # The answer is in the exit; a run that reports the stop
                    # must not lose it.
                    stopped = True
                    vcpu.stop()
                    self.assertEqual(self.run_vcpu(vcpu).reason, ExitReason.STOPPED)
        else:
            self.fail(f"{self.ACCEL}: more exits than scripted accesses")
        self.assertTrue(script.done(), f"{self.ACCEL}: {script.next} of {len(script.want)} accesses")
        return stopped

    def check_pio_regs(self, vcpu):
        self.assertRegs(vcpu, rbx=0xFFFFFFA1, rcx=0xFFFFB2C2, rax=0xD4E4F404)

    def check_mmio_regs(self, vcpu, mode):
        self.assertRegs(vcpu, rbx=0xFFFFFF5A, rcx=0xFFFF5AA5, rdx=0xDEADBEEF)
        if mode == "long64":
            self.assertRegs(vcpu, rsi=0x0123456789ABCDEF)

    # -- modes ------------------------------------------------------------------

    def test_real16(self):
        m = self.setup_guest(G.REAL16, "real")
        m.vcpu.regs.rbx = 0x12340000
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rax=0x34562345, rbx=0x12340000, rcx=0, rdx=55, rsi=0x12,
                        rdi=0x5678, rbp=0x3456, rsp=G.STACK_TOP)
        self.assertEqual(struct.unpack("<H", m.read(0x8000, 2))[0], 0x5678)
        self.assertEqual(struct.unpack("<I", m.read(0x8004, 4))[0], 0x34567800)

    def test_prot32(self):
        m = self.setup_guest(G.PROT32, "prot32")
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rax=0x55AA55AA, rbx=0x23456780, rcx=0, rdx=5050, rsi=1,
                        rdi=0xDEADBEEF, rbp=0x55AA55AA, rsp=G.STACK_TOP)
        self.assertEqual(m.read(0x20000, 4), struct.pack("<I", 0xDEADBEEF))
        s = m.vcpu.get_sregs()
        self.assertEqual(s.cs.selector, libvx.x86.SEL_CODE32)
        self.assertEqual(s.cs.db, 1)
        self.assertEqual(s.cs.limit, 0xFFFFFFFF)
        self.assertEqual(s.ds.selector, libvx.x86.SEL_DATA)
        self.assertEqual(s.ss.selector, libvx.x86.SEL_DATA)
        self.assertEqual(s.gs.selector, libvx.x86.SEL_DATA)
        # the live view says the same
        self.assertEqual(m.vcpu.sregs.cs.selector, libvx.x86.SEL_CODE32)
        self.assertEqual(m.vcpu.sregs.ds.limit, 0xFFFFFFFF)

    def test_long64(self):
        m = self.setup_guest(G.LONG64, "long64")
        self.run_to_hlt(m.vcpu)
        self.assertRegs(
            m.vcpu, rax=4, rdx=2, rcx=4, rbx=0x12345678, r8=0x2222222222222222, r9=5,
            r10=0x300000000, r11=0x1100, r12=0xFEEDFACECAFEBEEF, r13=0x0102030405060708,
            r14=0x0807060504030201, r15=0x0102030405060708, rsp=G.STACK_TOP,
        )
        self.assertEqual(m.read(0x20000, 8), struct.pack("<Q", 0x0102030405060708))
        s = m.vcpu.sregs
        self.assertEqual(s.cs.selector, libvx.x86.SEL_CODE64)
        self.assertEqual(s.cs.l, 1)
        self.assertEqual(s.efer & 0x400, 0x400)  # LMA

    def test_set_mode_state(self):
        for mode, _ in MODES:
            m = self.new_machine()
            m.vcpu.set_mode(mode, G.TABLES_GPA)
            s = m.vcpu.get_sregs()
            self.assertEqual(m.vcpu.regs.rflags, 2)
            self.assertEqual(s.cs.base, 0)
            self.assertEqual(s.cs.dpl, 0)
            if mode == "real":
                self.assertEqual(s.cr0 & 1, 0)
                self.assertEqual((s.cs.selector, s.cs.limit), (0, 0xFFFF))
            elif mode == "prot32":
                self.assertEqual(s.cr0 & 0x80000001, 1)
                self.assertEqual(s.cs.selector, libvx.x86.SEL_CODE32)
                self.assertEqual(s.gdt.base, G.TABLES_GPA + 0x6000)
            else:
                self.assertEqual(s.cr0 & 0x80000001, 0x80000001)
                self.assertEqual(s.efer & 0xD01, 0xD01)  # SCE LME LMA NXE
                self.assertEqual(s.cr3 & ~0xFFF, G.TABLES_GPA)
                self.assertEqual(m.vcpu.get_msr(libvx.x86.MSR_EFER), s.efer)
                self.assertEqual(m.vcpu.msrs[libvx.x86.MSR_EFER], s.efer)
                pml4e = struct.unpack("<Q", m.read(G.TABLES_GPA, 8))[0]
                self.assertEqual(pml4e & 0xFFFFFFFFFF001, G.TABLES_GPA + 0x1000 + 1)
            m.close()

    def test_set_mode_errors(self):
        m = self.new_machine()
        v = m.vcpu
        with self.assertRaises(libvx.OutOfRange) as cm:  # tables past the end of RAM
            v.set_mode("long64", G.RAM_SIZE - 0x4000)
        self.assertEqual(cm.exception.code, libvx.ERANGE)
        self.assertIn("writable RAM", cm.exception.detail)
        with self.assertRaises(libvx.InvalidArgument) as cm:  # unaligned
            v.set_mode("prot32", G.TABLES_GPA + 0x800)
        self.assertEqual(cm.exception.code, libvx.EINVAL)
        with self.assertRaises(libvx.InvalidArgument):  # no such mode, checked by C
            v.set_mode(9, G.TABLES_GPA)
        with self.assertRaises(libvx.InvalidArgument):  # no such mode, checked here
            v.set_mode("long32", G.TABLES_GPA)
        with self.assertRaises(libvx.InvalidArgument):  # long mode needs its tables
            v.set_mode("long64")
        v.set_mode(libvx.Mode.REAL)  # real mode does not

    # -- port I/O -----------------------------------------------------------------

    def test_pio_callbacks(self):
        for mode, _ in MODES:
            m = self.setup_guest(PROGRAMS["pio"][mode], mode)
            script = Script(PIO_SCRIPT, m.vcpu)
            dev = m.on_pio(G.PORT, 8, read=script.pio_read, write=script.pio_write)
            self.assertEqual((dev.space, dev.base, dev.size, dev.registered), ("pio", 0x10, 8, True))
            self.run_script(m.vcpu, script)
            self.assertEqual(script.exits, 0, mode)
            self.assertEqual(script.callbacks, len(PIO_SCRIPT), mode)
            self.check_pio_regs(m.vcpu)
            self.assertIsNone(libvx.current_vcpu())
            m.close()

    def test_pio_range_end(self):
        m = self.setup_guest(G.PIO32, "prot32")
        script = Script(PIO_SCRIPT, m.vcpu)
        m.on_pio(G.PORT, 7, read=script.pio_read, write=script.pio_write)

        def never(*args):
            raise AssertionError(f"callback {args} of a range nothing accesses")

        m.on_pio(0x18, 1, read=never, write=never)
        m.on_pio(0x0F, 1, read=never, write=never)
        with self.assertRaises(libvx.Exists) as cm:
            m.on_pio(0x16, 2, read=never)
        self.assertEqual(cm.exception.code, libvx.EEXIST)
        self.run_script(m.vcpu, script)
        self.assertEqual(script.exits, 1)  # the write to 0x17
        self.assertEqual(script.callbacks, len(PIO_SCRIPT) - 1)
        self.check_pio_regs(m.vcpu)

    def test_io_exits(self):
        """Unclaimed ports: every access is an IO exit; reads complete with
        the value set on the exit."""
        for mode, _ in MODES:
            m = self.setup_guest(PROGRAMS["pio"][mode], mode)
            dev = m.on_pio(G.PORT, 8, read=lambda p, s: 0, write=lambda p, s, v: None)
            dev.unregister()
            self.assertFalse(dev.registered)
            with self.assertRaises(libvx.NotFound) as cm:
                m.unregister_pio(G.PORT)
            self.assertEqual(cm.exception.code, libvx.ENOENT)
            script = Script(PIO_SCRIPT)
            self.run_script(m.vcpu, script)
            self.assertEqual(script.exits, len(PIO_SCRIPT), mode)
            self.check_pio_regs(m.vcpu)
            m.close()

    def test_io_exit_repr(self):
        m = self.setup_guest(G.PIO32, "prot32")
        e = self.run_expect(m.vcpu, ExitReason.IO)
        self.assertEqual((e.port, e.len, e.is_write, e.value), (0x10, 1, True, 0x11))
        self.assertEqual(repr(e), "<Exit io write port=0x10 len=1 value=0x11>")
        self.assertEqual(e.name, "io")
        self.assertIsNone(e.gpa)
        with self.assertRaises(libvx.InvalidArgument):
            e.value = 5  # a write exit takes no value
        for _ in range(3):
            self.run_expect(m.vcpu, ExitReason.IO)
        e = self.run_expect(m.vcpu, ExitReason.IO)
        self.assertTrue(e.is_read)
        self.assertEqual(repr(e), "<Exit io read port=0x11 len=1>")
        e.value = 0xA1
        self.assertEqual(repr(e), "<Exit io read port=0x11 len=1 value=0xa1>")
        e2 = self.run_expect(m.vcpu, ExitReason.IO)
        with self.assertRaises(libvx.InvalidArgument):
            e.value = 1  # no longer the latest exit
        e2.value = 0xB2C2
        e3 = self.run_expect(m.vcpu, ExitReason.IO)
        e3.value = 0xD4E4F404
        hlt = self.run_to_hlt(m.vcpu)
        self.assertEqual(repr(hlt), "<Exit hlt>")
        self.check_pio_regs(m.vcpu)

    def test_pio_sizes_and_echo(self):
        """Many round trips through Python: in and out of 4 bytes."""
        m = self.setup_guest(G.ECHO32, "prot32")
        reads, writes = [], []

        def read(port, size):
            self.assertEqual((port, size), (0x14, 4))
            reads.append(len(reads) * 0x01010101 & 0xFFFFFFFF)
            return reads[-1]

        def write(port, size, value):
            self.assertEqual((port, size), (0x10, 4))
            writes.append(value)

        m.on_pio(0x14, 1, read=read)
        m.on_pio(0x10, 1, write=write)
        m.vcpu.regs.rcx = 200
        self.run_to_hlt(m.vcpu)
        self.assertEqual(len(reads), 200)
        self.assertEqual(writes, [(r + 1) & 0xFFFFFFFF for r in reads])
        self.assertEqual(m.vcpu.regs.rsi, sum(reads) & 0xFFFFFFFF)

    def test_string_io_callbacks(self):
        m = self.setup_guest(G.STRING32, "prot32")
        writes, reads = [], []

        def lens(n):
            return 1 if n < 4 else 2 if n < 7 else 4 if n < 9 else 1

        def read(port, size):
            n = len(reads)
            self.assertEqual((port, size), (G.PORT, lens(n)))
            reads.append(n)
            return ((n + 1) & 0xFF) * 0x0101010101010101  # the binding masks it to size

        m.on_pio(G.PORT, 1, read=read, write=lambda p, s, v: writes.append((s, v)))
        self.run_to_hlt(m.vcpu)
        self.assertEqual(writes, [(1, ord(c)) for c in "Hello"] +
                         [(2, 0x1111), (2, 0x2222), (2, 0x3333), (4, 0x44444444),
                          (4, 0x55555555)] + [(1, ord(c)) for c in "leH"])
        self.assertEqual(len(reads), 9 + 5000)
        want = b"".join(bytes([(n + 1) & 0xFF]) * lens(n) for n in range(9))
        self.assertEqual(m.read(G.DATA_GPA, len(want)), want)
        big = m.read(0x20FF0, 5000)
        self.assertEqual(big, bytes((10 + k) & 0xFF for k in range(5000)))
        self.assertRegs(m.vcpu, rcx=0, rdi=0x20FF0 + 5000, rsi=0x10FF)

    def test_null_callbacks(self):
        m = self.setup_guest(G.PIO32, "prot32")
        m.on_pio(G.PORT, 8)  # claimed, no callables: reads all ones, writes ignored
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rbx=0xFFFFFFFF, rcx=0xFFFFFFFF, rax=0xFFFFFFFF)
        m = self.setup_guest(G.MMIO64, "long64")
        m.on_mmio(G.MMIO_GPA, 0x100)
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rbx=0xFFFFFFFF, rcx=0xFFFFFFFF, rdx=0xFFFFFFFF,
                        rsi=0xFFFFFFFFFFFFFFFF)

    def test_ignore_unclaimed_io(self):
        m = self.setup_guest(G.PIO32, "prot32", flags=libvx.MachineFlags.IGNORE_UNCLAIMED_IO)
        self.assertEqual(m.flags, libvx.MachineFlags.IGNORE_UNCLAIMED_IO)
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rbx=0xFFFFFFFF, rcx=0xFFFFFFFF, rax=0xFFFFFFFF)

    # -- MMIO -----------------------------------------------------------------------

    def test_mmio_callbacks(self):
        for mode, _ in MODES:
            m = self.setup_guest(PROGRAMS["mmio"][mode], mode)
            script = Script(MMIO_SCRIPT, m.vcpu, qwords=mode == "long64")
            m.on_mmio(G.MMIO_GPA, 0x100, read=script.mmio_read, write=script.mmio_write)
            self.run_script(m.vcpu, script)
            self.assertEqual(script.exits, 0, mode)
            self.assertEqual(script.callbacks, len(script.want), mode)
            self.check_mmio_regs(m.vcpu, mode)
            m.close()

    def test_mmio_range_end(self):
        m = self.setup_guest(G.MMIO64, "long64")
        script = Script(MMIO_SCRIPT, m.vcpu)
        m.on_mmio(G.MMIO_GPA, 0x20, read=script.mmio_read, write=script.mmio_write)

        def never(*args):
            raise AssertionError(f"callback {args} of a range nothing accesses")

        m.on_mmio(G.MMIO_GPA + 0x24, 3, read=never, write=never)
        with self.assertRaises(libvx.Exists):
            m.on_mmio(G.MMIO_GPA + 0x1F, 2, read=never)
        with self.assertRaises(libvx.Exists):  # overlaps RAM
            m.on_mmio(G.RAM_SIZE - 1, 2, read=never)
        self.run_script(m.vcpu, script)
        self.assertEqual(script.exits, 2)  # the or at 0xa0020
        self.check_mmio_regs(m.vcpu, "long64")

    def test_mmio_exits(self):
        for mode, _ in MODES:
            m = self.setup_guest(PROGRAMS["mmio"][mode], mode)
            m.on_mmio(G.MMIO_GPA, 0x100, read=lambda a, s: 0)
            m.unregister_mmio(G.MMIO_GPA)
            with self.assertRaises(libvx.NotFound):
                m.unregister_mmio(G.MMIO_GPA)
            script = Script(MMIO_SCRIPT, qwords=mode == "long64")
            self.run_script(m.vcpu, script)
            self.assertEqual(script.exits, len(script.want), mode)
            self.check_mmio_regs(m.vcpu, mode)
            m.close()

    def test_stop_during_read_exit(self):
        m = self.setup_guest(G.PIO32, "prot32")
        self.assertTrue(self.run_script(m.vcpu, Script(PIO_SCRIPT), stop_at_read=True))
        self.check_pio_regs(m.vcpu)
        m = self.setup_guest(G.MMIO32, "prot32")
        self.assertTrue(self.run_script(m.vcpu, Script(MMIO_SCRIPT, qwords=False),
                                        stop_at_read=True))
        self.check_mmio_regs(m.vcpu, "prot32")

    # -- ROM, hlt, shutdown -------------------------------------------------------------

    def test_rom(self):
        m = self.setup_guest(G.ROM32, "prot32")
        rom = bytearray(G.ROM_SIZE)
        rom[0:8] = struct.pack("<II", 0x11223344, 0x55667788)
        rom[0x10:0x20] = struct.pack("<I", 0x99AABBCC) * 4
        rom[0x100:0x106] = bytes.fromhex("ba0d600000c3")  # mov edx, 0x600d; ret
        view = m.map(G.ROM_GPA, G.ROM_SIZE, "rx")
        self.assertEqual(m.regions()[-1].prot, libvx.Prot.READ | libvx.Prot.EXEC)
        view[:] = rom  # the host writes ROM through its view
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rax=0x11223344, rbx=0x55667788, rsi=0x99AABBCC, rdx=0x600D,
                        rcx=0xDDDDDDDD)
        self.assertEqual(m.read(G.ROM_GPA, G.ROM_SIZE), bytes(rom))
        self.assertEqual(bytes(view), bytes(rom))
        m.write(G.ROM_GPA, b"\x01")  # and with write()
        self.assertEqual(view[0], 1)

    def test_hlt(self):
        for mode, _ in MODES:
            m = self.setup_guest(G.HLT, mode)
            e = self.run_to_hlt(m.vcpu)
            self.assertEqual(e.name, "hlt")
            self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA + 0x11)
            self.run_to_hlt(m.vcpu)  # resumes after the hlt
            self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA + 0x21)
            m.close()

    def test_triple_fault(self):
        for program, mode in ((G.TRIPLE32, "prot32"), (G.TRIPLE64, "long64")):
            m = self.setup_guest(program, mode)
            e = self.run_expect(m.vcpu, ExitReason.SHUTDOWN)
            self.assertEqual(e.kind, libvx.ShutdownKind.TRIPLE_FAULT)
            self.assertEqual(repr(e), "<Exit shutdown triple_fault code=0>")
            m.close()

    def test_user_mode(self):
        m = self.setup_guest(G.USER64, "long64")
        e = self.run_expect(m.vcpu, ExitReason.MMIO)
        self.assertEqual((e.gpa, e.len, e.is_write, e.value),
                         (G.UNCLAIMED_GPA, 8, True, 0x1122334455667788))
        self.assertEqual(m.vcpu.sregs.cs.selector, libvx.x86.SEL_USER_CODE64 | 3)
        self.assertEqual(m.vcpu.sregs.cs.dpl, 3)
        self.assertEqual(m.vcpu.regs.rax, 5050)
        e = self.run_expect(m.vcpu, ExitReason.MMIO)
        self.assertEqual((e.gpa, e.len, e.is_write), (G.UNCLAIMED_GPA + 8, 4, False))
        e.value = 0x1000
        e = self.run_expect(m.vcpu, ExitReason.MMIO)
        self.assertEqual((e.gpa, e.is_write, e.value), (G.UNCLAIMED_GPA + 0x10, True, 0x1000 + 5050))

    # -- callbacks failing ------------------------------------------------------------

    def test_callback_exception_reraised(self):
        """An exception in a callback stops the vCPU and run() re-raises it."""

        class DeviceBroke(Exception):
            pass

        kinds = ["pio write", "pio read", "mmio write", "mmio read"]
        for kind, what in enumerate(kinds):
            m = self.setup_guest(G.CBFAIL32, "prot32")
            calls = []
            raised = DeviceBroke(what)

            def fail(*args, raised=raised):
                calls.append(args)
                raise raised

            m.on_pio(G.PORT, 1, read=fail, write=fail)
            m.on_mmio(G.MMIO_GPA, 0x10, read=fail, write=fail)
            m.vcpu.regs.rbx = kind
            with self.assertRaises(DeviceBroke) as cm:
                m.vcpu.run()
            self.assertIs(cm.exception, raised, what)  # the very same object
            self.assertEqual(len(calls), 1, what)
            e = cm.exception.libvx_exit
            self.assertEqual(e.reason, ExitReason.INTERNAL, what)
            self.assertIn("callback", e.error, what)
            self.assertIn("returned", repr(e), what)
            # The machine is still usable, and nothing is left pending.
            self.assertIsNone(libvx.current_vcpu())
            m.close()

    def test_callback_bad_return(self):
        m = self.setup_guest(G.PIO32, "prot32")
        m.on_pio(G.PORT, 8, read=lambda port, size: None, write=lambda *a: None)
        with self.assertRaises(TypeError) as cm:
            m.vcpu.run()
        self.assertIn("must return an int", str(cm.exception))

    def test_keyboard_interrupt_in_callback(self):
        """BaseExceptions (Ctrl-C, SystemExit) are not swallowed either."""
        m = self.setup_guest(G.PIO32, "prot32")

        def interrupt(*args):
            raise KeyboardInterrupt

        m.on_pio(G.PORT, 8, write=interrupt)
        with self.assertRaises(KeyboardInterrupt):
            m.vcpu.run()

    def test_nested_run_is_busy(self):
        """A callback may not run its own vCPU: Busy, re-raised by run()."""
        m = self.setup_guest(G.CURRENT32, "prot32")
        m.on_pio(G.PORT, 1, write=lambda *a: libvx.current_vcpu().run())
        with self.assertRaises(libvx.Busy) as cm:
            m.vcpu.run()
        self.assertEqual(cm.exception.code, libvx.EBUSY)

    def test_stop_from_callback(self):
        m = self.setup_guest(G.CURRENT32, "prot32")
        seen = []
        m.on_pio(G.PORT, 1, write=lambda p, s, v: (seen.append("pio"), libvx.current_vcpu().stop()))
        m.on_mmio(G.MMIO_GPA, 0x10, write=lambda a, s, v: seen.append("mmio"))
        self.run_expect(m.vcpu, ExitReason.STOPPED)
        self.assertEqual(seen, ["pio"])
        self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA + 2)  # just after out 0x10, al
        self.run_to_hlt(m.vcpu)
        self.assertEqual(seen, ["pio", "mmio"])

    def test_callback_changes_registers(self):
        m = self.setup_guest(G.CURRENT32, "prot32")

        def write(port, size, value):
            v = libvx.current_vcpu()
            v.regs.rdi = 0x1234  # a callback may write its vCPU's registers
            v.machine.write(G.BUF_GPA, b"cb")

        m.on_pio(G.PORT, 1, write=write)
        m.on_mmio(G.MMIO_GPA, 0x10)
        self.run_to_hlt(m.vcpu)
        self.assertEqual(m.vcpu.regs.rdi, 0x1234)
        self.assertEqual(m.read(G.BUF_GPA, 2), b"cb")

    # -- vCPUs and threads -----------------------------------------------------------

    def test_current_vcpu(self):
        m = self.new_machine(vcpus=2)
        m.load_flat(G.CODE_GPA, G.CURRENT32)
        self.assertEqual(len(m.vcpus), 2)
        v1 = m.vcpus[1]
        self.assertEqual(v1.index, 1)
        self.assertIs(v1.machine, m)
        log = []
        m.on_pio(G.PORT, 1, write=lambda p, s, v: log.append((libvx.current_vcpu(), "pio", v)))
        m.on_mmio(G.MMIO_GPA, 0x10, write=lambda a, s, v: log.append((libvx.current_vcpu(), "mmio", v)))
        order = (v1, m.vcpus[0])
        for v in order:
            self.start_vcpu(v, "prot32")
            v.regs.rax = 0x40 + v.index
        self.assertIsNone(libvx.current_vcpu())
        for v in order:
            self.run_to_hlt(v)
            self.assertIsNone(libvx.current_vcpu())
        self.assertEqual(log, [(v1, "pio", 0x41), (v1, "mmio", 0x41),
                               (m.vcpus[0], "pio", 0x40), (m.vcpus[0], "mmio", 0x40)])

    def test_two_machines_in_threads(self):
        """Two machines run in two threads at once, each with its own Python
        device; an exception in one does not leak into the other."""
        results = {}

        def worker(tag, rounds, fail):
            try:
                m = self.setup_guest(G.ECHO32, "prot32")
                seen = []

                def read(port, size):
                    if fail and len(seen) == rounds // 2:
                        raise RuntimeError(f"device {tag} fails")
                    return 7

                m.on_pio(0x14, 1, read=read)
                m.on_pio(0x10, 1, write=lambda p, s, v: seen.append(v))
                m.vcpu.regs.rcx = rounds
                try:
                    e = m.vcpu.run()
                    results[tag] = (e.name, len(seen), m.vcpu.regs.rsi)
                except RuntimeError as exc:
                    results[tag] = ("raised", str(exc), len(seen))
            except BaseException as exc:  # skip or failure: report to the main thread
                results[tag] = exc

        threads = [threading.Thread(target=worker, args=("A", 150, False)),
                   threading.Thread(target=worker, args=("B", 150, True))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for tag in "AB":
            if isinstance(results.get(tag), unittest.SkipTest):
                raise results[tag]
            if isinstance(results.get(tag), BaseException):
                raise results[tag]
        self.assertEqual(results["A"], ("hlt", 150, 7 * 150))
        self.assertEqual(results["B"], ("raised", "device B fails", 75))

    def test_threaded_stop(self):
        """stop() from another thread ends run() of a spinning guest; run()
        and register access meanwhile are Busy."""
        m = self.setup_guest(G.SPIN32, "prot32")
        counter = m.view(G.DATA_GPA, 8).cast("I")
        out = {}

        def spin():
            try:
                out["exit"] = m.vcpu.run()
            except BaseException as exc:
                out["exc"] = exc

        t = threading.Thread(target=spin)
        t.start()
        deadline = time.monotonic() + 10
        while counter[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        running = counter[0] != 0
        self.assertTrue(m.vcpu.running)
        with self.assertRaises(libvx.Busy):
            m.vcpu.run()
        with self.assertRaises(libvx.Busy):
            m.vcpu.get_regs()
        with self.assertRaises(libvx.Busy):
            m.close()  # the binding refuses to destroy a running machine
        m.vcpu.stop()
        t.join(10)
        self.assertFalse(t.is_alive(), "run() did not return after stop()")
        self.assertTrue(running, "the guest's counter never moved")
        self.assertNotIn("exc", out)
        self.assertEqual(out["exit"].reason, ExitReason.STOPPED)
        self.assertFalse(m.vcpu.running)
        counter[1] = 1  # let it halt
        self.run_to_hlt(m.vcpu)
        self.assertGreater(counter[0], 0)

    def test_stop_before_run(self):
        m = self.setup_guest(G.HLT, "prot32")
        m.vcpu.stop()
        self.run_expect(m.vcpu, ExitReason.STOPPED)
        self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA)
        self.run_to_hlt(m.vcpu)

    # -- registers ------------------------------------------------------------------------

    def test_regs_roundtrip(self):
        m = self.setup_guest(G.REGS64, "long64")
        want = libvx.Regs()
        seed = 0x0123456789ABCDEF
        for name in libvx.x86.REG_NAMES[:16]:
            seed = (seed * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
            setattr(want, name, seed)
        want.rip = G.CODE_GPA
        want.rflags = 0x2 | 0x1 | 0x40 | 0x80 | 0x800  # CF ZF SF OF
        m.vcpu.set_regs(want)
        got = m.vcpu.get_regs()
        self.assertEqual(got, want)
        self.run_to_hlt(m.vcpu)
        got = m.vcpu.get_regs()
        for name in libvx.x86.REG_NAMES[:16]:
            self.assertEqual(getattr(got, name), getattr(want, name) + 1 & (2**64 - 1), name)
        self.assertEqual(got.rip, G.CODE_GPA + len(G.REGS64))
        self.assertEqual(got.rflags & 0x8D5, want.rflags & 0x8D5)
        # rflags bit 1 always reads as 1
        m.vcpu.regs.rflags = 1
        self.assertEqual(m.vcpu.regs.rflags, 3)

    def test_regs_views(self):
        m = self.setup_guest(G.HLT, "long64")
        v = m.vcpu
        v.regs.rax = -1  # two's complement
        self.assertEqual(v.regs.rax, 2**64 - 1)
        v.set_regs(rbx=1, rcx=2)
        self.assertEqual((v.regs.rbx, v.regs.rcx, v.regs.rax), (1, 2, 2**64 - 1))
        v.regs = {"rdx": 3}  # a dict changes just those
        self.assertEqual((v.regs.rdx, v.regs.rbx), (3, 1))
        snap = v.regs.get()
        snap.rsi = 0x55
        self.assertNotEqual(v.regs.rsi, 0x55)  # a snapshot is not live
        v.regs = snap
        self.assertEqual(v.regs.rsi, 0x55)
        self.assertEqual(snap._asdict()["rsi"], 0x55)
        self.assertIn("rsi=0x55", repr(v.regs))
        with self.assertRaises(AttributeError):
            v.regs.rsx = 1  # a misspelt register is an error, not a new attribute
        with self.assertRaises(TypeError):
            v.set_regs(rsx=1)
        with self.assertRaises(libvx.InvalidArgument):
            v.regs.rax = 1 << 64
        with self.assertRaises(TypeError):
            v.regs.rax = "1"

    def test_sregs_roundtrip(self):
        for mode, _ in MODES:
            m = self.setup_guest(G.HLT, mode)
            first = m.vcpu.get_sregs()
            m.vcpu.set_sregs(first)
            self.assertEqual(m.vcpu.get_sregs(), first, mode)
            m.vcpu.sregs = first.copy()
            self.assertEqual(m.vcpu.sregs.get(), first, mode)
            self.run_to_hlt(m.vcpu)
            self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA + 0x11, mode)
            m.close()

    def test_fpu_roundtrip(self):
        m = self.setup_guest(G.HLT, "long64")
        f = m.vcpu.get_fpu()
        self.assertEqual((f.fcw, f.mxcsr), (0x37F, 0x1F80))
        f.mxcsr = 0x9FC0
        f.xmm[3][0] = 0x5A
        m.vcpu.set_fpu(f)
        g = m.vcpu.get_fpu()
        self.assertEqual(g.mxcsr, 0x9FC0)
        self.assertEqual(g.xmm_bytes(3)[0], 0x5A)
        m.close()

    def test_sregs_real(self):
        m = self.setup_guest(G.SREGS16, "real")
        m.write(0x20000, b"\x34\x12")
        m.write(0x30000, b"\x78\x56")
        m.write(0x40000, b"\xbc\x9a")
        s = m.vcpu.get_sregs()
        s.ds.selector, s.ds.base = 0x2000, 0x20000  # nested members are s's own memory
        m.vcpu.set_sregs(s, es={"selector": 0x3000, "base": 0x30000})
        self.run_to_hlt(m.vcpu)
        r = m.vcpu.get_regs()
        self.assertEqual((r.rax & 0xFFFF, r.rbx & 0xFFFF, r.rdx & 0xFFFF), (0x1234, 0x5678, 0x9ABC))
        fs = m.vcpu.sregs.fs
        self.assertEqual((fs.selector, fs.base), (0x4000, 0x40000))
        self.assertEqual(m.vcpu.sregs.ds.get().selector, 0x2000)

    def test_sregs_long(self):
        m = self.setup_guest(G.SREGS64, "long64")
        m.write(0x20000, struct.pack("<Q", 0x1111222233334444))
        m.write(0x30008, struct.pack("<Q", 0x5555666677778888))
        m.vcpu.sregs.fs.base = 0x20000  # live: a get, modify, set each
        m.vcpu.sregs.gs.base = 0x30000
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rax=0x1111222233334444, rbx=0x5555666677778888)
        self.assertEqual(m.vcpu.sregs.fs.base, 0x20000)
        self.assertEqual(m.vcpu.sregs.gs.base, 0x30000)
        gdt = m.vcpu.sregs.gdt
        self.assertEqual(gdt.base, G.TABLES_GPA + 0x6000)
        self.assertIsInstance(gdt.get(), libvx.DTable)
        with self.assertRaises(AttributeError):
            m.vcpu.sregs.fs.bsae = 1

    def test_msrs(self):
        m = self.setup_guest(G.HLT, "long64")
        KERNEL_GS_BASE = 0xC0000102
        m.vcpu.msrs[KERNEL_GS_BASE] = 0xFFFF800012345000
        self.assertEqual(m.vcpu.get_msr(KERNEL_GS_BASE), 0xFFFF800012345000)
        with self.assertRaises(libvx.NotSupported):
            m.vcpu.get_msr(0x0BADC0DE)  # an MSR no x86 has
        with self.assertRaises(libvx.InvalidArgument):
            m.vcpu.get_msr(1 << 32)

    def test_translate(self):
        m = self.setup_guest(G.HLT, "long64")
        self.assertEqual(m.vcpu.translate(0x1234), 0x1234)
        with self.assertRaises(libvx.NotFound):
            m.vcpu.translate(0x8000000000)  # beyond the identity map of 4 GiB
        with self.assertRaises(libvx.InvalidArgument):
            m.vcpu.translate(-1)

    def test_budget(self):
        """Instruction budgets: exact on tcg, NotSupported on kvm."""
        m = self.setup_guest(G.HLT, "prot32")  # 16 nops, hlt, ...
        try:
            m.vcpu.set_budget(5)
        except libvx.NotSupported as exc:
            self.assertEqual(self.ACCEL, "kvm", f"{self.ACCEL} refused a budget: {exc}")
            self.assertEqual(m.vcpu.instructions, 0)
            return
        before = m.vcpu.instructions
        self.run_expect(m.vcpu, ExitReason.BUDGET)
        self.assertEqual(m.vcpu.regs.rip, G.CODE_GPA + 5)
        self.assertEqual(m.vcpu.instructions - before, 5)
        m.vcpu.set_budget(0)
        self.run_to_hlt(m.vcpu)
        # 16 nops and the hlt (whether a hlt counts as retired is the
        # accelerator's business)
        self.assertIn(m.vcpu.instructions - before, (16, 17))

    # -- garbage collection ----------------------------------------------------------------

    def test_gc_safety(self):
        """Register callables, drop every reference, collect, run: the
        machine kept them."""
        m = self.setup_guest(G.PIO32, "prot32")

        class Dev:
            def __init__(self, answers):
                self.answers = answers
                self.log = []

            def read(self, port, size):
                return self.answers[port]

            def write(self, port, size, value):
                self.log.append((port, value))

        answers = {0x11: 0xA1, 0x12: 0xB2C2, 0x14: 0xD4E4F404}
        dev = Dev(answers)
        log = dev.log
        m.on_pio(G.PORT, 8, read=dev.read, write=dev.write)  # bound methods
        dev_ref = weakref.ref(dev)
        del dev
        # junk for the collector
        for _ in range(3):
            [object() for _ in range(10000)]
            gc.collect()
        self.assertIsNotNone(dev_ref(), "the machine did not keep the device alive")
        self.run_to_hlt(m.vcpu)
        self.check_pio_regs(m.vcpu)
        self.assertEqual(log, [(0x10, 0x11), (0x12, 0x2233), (0x14, 0x44556677), (0x17, 0x77)])
        # Unregistered, the device may go.
        m.unregister_pio(G.PORT)
        gc.collect()
        self.assertIsNone(dev_ref(), "the device outlived its registration")

    def test_gc_of_lambdas_and_machine(self):
        """Lambdas referring to their own machine: the machine, never closed,
        is collected and destroyed once unreachable."""
        m = self.setup_guest(G.CURRENT32, "prot32")
        hits = []
        # a cycle: machine -> device -> lambda -> machine
        m.on_pio(G.PORT, 1, write=lambda p, s, v, machine=m: hits.append(machine.accel))
        m.on_mmio(G.MMIO_GPA, 0x10, write=lambda a, s, v: hits.append(v))
        gc.collect()
        self.run_to_hlt(m.vcpu)
        self.assertEqual(hits, [self.ACCEL, 0])
        view = m.view(G.CODE_GPA, 2)
        self.assertEqual(bytes(view), G.CURRENT32[:2])
        ref = weakref.ref(m)
        del m
        gc.collect()
        self.assertIsNone(ref(), "the machine was not collected")
        # The view survived its machine: released, not dangling.
        with self.assertRaises(ValueError):
            view[0]

    # -- memory ------------------------------------------------------------------------------

    def test_memory_views(self):
        m = self.new_machine(ram=False)
        ram = m.map(0, 0x10000)
        self.assertEqual((len(ram), ram.format, ram.readonly), (0x10000, "B", False))
        ram[0x1000:0x1005] = b"hello"
        self.assertEqual(m.read(0x1000, 5), b"hello")
        m.write(0x2000, bytearray(b"world"))
        self.assertEqual(bytes(ram[0x2000:0x2005]), b"world")
        part = m.view(0x2000, 5)
        self.assertEqual(bytes(part), b"world")
        buf = bytearray(5)
        self.assertEqual(m.readinto(0x1000, buf), 5)
        self.assertEqual(buf, b"hello")
        sliced = ram[0x1000:0x1005]  # derived before the unmap
        # A region of the caller's own memory.
        import mmap

        host = mmap.mmap(-1, 0x4000)
        hv = m.map(0x100000, 0x4000, "rw", host=host)
        hv[0:3] = b"abc"
        self.assertEqual(host[0:3], b"abc")
        self.assertEqual(m.read(0x100000, 3), b"abc")
        self.assertIn("0x100000+0x4000 rw-", repr(m))
        # Unmapped: the views are released, a derived one is detached, the
        # host buffer is the caller's again.
        m.unmap(0, 0x10000)
        for v in (ram, part):
            with self.assertRaises(ValueError):
                v[0]
        self.assertEqual(bytes(sliced), b"hello")  # still readable, no crash
        sliced[0] = ord("j")  # and writable, but no longer guest memory
        with self.assertRaises(libvx.OutOfRange):
            m.read(0x1000, 1)
        with self.assertRaises(libvx.OutOfRange):
            m.view(0x1000, 1)
        m.unmap(0x100000, 0x4000)
        del hv
        host.close()  # no longer pinned
        # Mapping again at the same address gives fresh zeroed memory.
        again = m.map(0, 0x10000)
        self.assertEqual(bytes(again[0x1000:0x1005]), bytes(5))


per_accel(Guests, globals())

if __name__ == "__main__":
    unittest.main()
