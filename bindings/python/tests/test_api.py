"""The binding's API itself: loading, versions, errors, argument checks,
memory, loaders, devices and lifetimes. Machine tests run on every
accelerator (vxtest.per_accel)."""

from __future__ import annotations

import os
import pydoc
import struct
import subprocess
import sys
import tempfile
import unittest

import guests as G
from vxtest import PACKAGE_DIR, GuestMixin, per_accel

import libvx
from libvx import ExitReason, _native


def python_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=python_env(**env),
                          capture_output=True, text=True, timeout=60)


class Library(unittest.TestCase):
    def test_version(self):
        v = libvx.version()
        self.assertEqual(libvx.version_string(), "%d.%d.%d" % v)
        self.assertEqual(v[0], _native.SUPPORTED_MAJOR)
        self.assertGreaterEqual(v, libvx.MIN_VERSION)
        self.assertTrue(libvx.library_path())

    def test_version_check(self):
        _native.check_version((0 << 16) | (1 << 8))
        _native.check_version((0 << 16) | (9 << 8) | 3)  # newer minors add, not break
        for bad in ((1 << 16), (0 << 16) | (0 << 8) | 9):
            with self.assertRaises(libvx.LibraryError) as cm:
                _native.check_version(bad)
            self.assertIn("this binding supports", str(cm.exception))
        self.assertTrue(issubclass(libvx.LibraryError, ImportError))

    def test_library_env(self):
        """LIBVX_LIBRARY names the library; a bad one is a clear LibraryError
        at first use, not at import."""
        r = run_python("import libvx; print(libvx.Machine.__doc__ is not None)\n"
                       "try:\n    libvx.version()\nexcept libvx.LibraryError as e:\n"
                       "    print('LibraryError:', e)",
                       LIBVX_LIBRARY="/nonexistent/libvx.so.0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("True", r.stdout)
        self.assertIn("LibraryError: cannot load libvx: /nonexistent/libvx.so.0", r.stdout)
        self.assertIn("LIBVX_LIBRARY", r.stdout)
        import ctypes.util

        libc = ctypes.util.find_library("c")
        if libc:
            r = run_python("import libvx\ntry:\n    libvx.version()\n"
                           "except libvx.LibraryError as e:\n    print('LibraryError:', e)",
                           LIBVX_LIBRARY=libc)
            self.assertIn("is not libvx", r.stdout, r.stderr)

    def test_vx_accel_env(self):
        """An error detail made by the library reaches the exception."""
        r = run_python("import libvx\ntry:\n    libvx.Machine()\n"
                       "except libvx.InvalidArgument as e:\n"
                       "    print(e.code, e.name, e.detail)", VX_ACCEL="bogus")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('-1 VX_EINVAL environment variable VX_ACCEL="bogus"', r.stdout)

    def test_errors(self):
        e = libvx.Error(libvx.EINVAL, "the detail", "vx_something")
        self.assertIsInstance(e, libvx.InvalidArgument)
        self.assertIsInstance(e, ValueError)
        self.assertEqual((e.code, e.name, e.detail, e.function), (-1, "VX_EINVAL", "the detail",
                                                                  "vx_something"))
        self.assertEqual(str(e), "the detail [VX_EINVAL]")
        self.assertEqual(e.strerror, libvx.strerror(libvx.EINVAL))
        classes = {
            libvx.EINVAL: libvx.InvalidArgument, libvx.ENOMEM: libvx.OutOfMemory,
            libvx.ENOTSUP: libvx.NotSupported, libvx.EEXIST: libvx.Exists,
            libvx.ENOENT: libvx.NotFound, libvx.EBUSY: libvx.Busy,
            libvx.EACCEL: libvx.AcceleratorError, libvx.EIO: libvx.HostIOError,
            libvx.ECORRUPT: libvx.Corrupt, libvx.ERANGE: libvx.OutOfRange,
        }
        for code, cls in classes.items():
            err = libvx.Error(code)
            self.assertIs(type(err), cls)
            self.assertEqual(libvx.error_name(code), err.name)
            self.assertTrue(err.strerror and err.strerror != "unknown error", code)
            self.assertIn(err.strerror, str(err))
        self.assertIsInstance(libvx.Error(libvx.ENOMEM), MemoryError)
        self.assertIsInstance(libvx.Error(libvx.ENOENT), LookupError)
        other = libvx.Error(-99)
        self.assertIs(type(other), libvx.Error)
        self.assertEqual(other.name, "VX_E(-99)")
        self.assertEqual(libvx.strerror(-99), "unknown error")
        import pickle

        again = pickle.loads(pickle.dumps(libvx.Error(libvx.EEXIST, "x", "f")))
        self.assertIs(type(again), libvx.Exists)
        self.assertEqual((again.detail, again.function), ("x", "f"))

    def test_accel_names(self):
        self.assertEqual(libvx.Accel.parse("KVM"), libvx.Accel.KVM)
        self.assertEqual(libvx.Accel.parse(2), libvx.Accel.TCG)
        with self.assertRaises(libvx.InvalidArgument):
            libvx.Accel.parse("qemu")
        with self.assertRaises(libvx.InvalidArgument):
            libvx.Machine(accel="qemu")
        with self.assertRaises(libvx.InvalidArgument):
            libvx.Machine(accel=7)
        avail = libvx.available_accels()
        self.assertTrue(set(avail) <= {"kvm", "tcg"})
        self.assertEqual(libvx.accel_available("auto"), bool(avail))
        for a in ("kvm", "tcg"):
            self.assertEqual(libvx.accel_available(a), a in avail)

    def test_help_reads_well(self):
        text = pydoc.render_doc(libvx.Machine, renderer=pydoc.plaintext)
        for word in ("class Machine", "context manager", "map(self, gpa: int, size: int",
                     "on_pio(self, port: int", "load_elf(", "The view and the mapping",
                     "close(self)", "vcpus"):
            self.assertIn(word, text)
        text = pydoc.render_doc(libvx.Vcpu, renderer=pydoc.plaintext)
        for word in ("run(self) -> libvx.vcpu.Exit", "set_mode(", "regs", "stop(self)", "set_budget("):
            self.assertIn(word, text)
        text = pydoc.render_doc(libvx, renderer=pydoc.plaintext)
        self.assertIn("Run machine code and print rax", text)
        for name in libvx.__all__:
            self.assertTrue(hasattr(libvx, name), name)

    def test_current_vcpu_outside_callbacks(self):
        self.assertIsNone(libvx.current_vcpu())

    def test_exit_objects(self):
        e = libvx.Exit(ExitReason.MMIO, gpa=0xB0000, len=8, is_write=True, value=5)
        self.assertEqual(repr(e), "<Exit mmio write gpa=0xb0000 len=8 value=0x5>")
        self.assertEqual(repr(libvx.Exit(ExitReason.INTERNAL, error="boom")),
                         "<Exit internal: boom>")
        self.assertEqual(repr(libvx.Exit(ExitReason.DEBUG, rip=0x1000)), "<Exit debug rip=0x1000>")
        self.assertEqual(repr(libvx.Exit(ExitReason.BUDGET)), "<Exit budget>")
        self.assertEqual(libvx.Exit(42).name, "reason 42")


def elf64(code: bytes, paddr: int, entry: int, bss: int = 0, machine: int = 62,
          etype: int = 2) -> bytes:
    """A minimal static ELF64 executable: one PT_LOAD segment."""
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, etype, machine, 1,
                       entry, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x78, paddr, paddr, len(code), len(code) + bss, 0x1000)
    return ehdr + phdr + code


def elf32(code: bytes, paddr: int, entry: int) -> bytes:
    ehdr = struct.pack("<4sBBBBB7xHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, 2, 3, 1, entry, 52,
                       0, 0, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0x54, paddr, paddr, len(code), len(code), 5, 0x1000)
    return ehdr + phdr + code


class Api(GuestMixin):
    def test_machine_basics(self):
        m = self.new_machine(vcpus=3, ram=False)
        self.assertEqual(m.accel_id, libvx.Accel.parse(self.ACCEL))
        self.assertEqual([v.index for v in m.vcpus], [0, 1, 2])
        self.assertIs(m.vcpu, m.vcpus[0])
        self.assertTrue(m.handle)
        self.assertTrue(m.vcpu.handle)
        self.assertEqual(repr(m), f"<libvx.Machine {self.ACCEL} vcpus=3 memory=[]>")
        self.assertEqual(repr(m.vcpus[2]), f"<libvx.Vcpu 2 ({self.ACCEL})>")
        # a new vCPU is in the reset state
        self.assertEqual(m.vcpu.regs.rip, 0xFFF0)
        self.assertEqual(m.vcpu.sregs.cs.selector, 0xF000)
        m.close()
        m.close()  # twice is fine
        self.assertTrue(m.closed)
        self.assertEqual(repr(m), "<libvx.Machine closed>")
        for call in (lambda: m.map(0, 4096), lambda: m.read(0, 1), lambda: m.accel,
                     lambda: m.vcpu.regs.rax, lambda: m.vcpu.run(), lambda: m.on_pio(1, 1)):
            with self.assertRaises(libvx.InvalidArgument) as cm:
                call()
            self.assertIn("closed", str(cm.exception))

    def test_exit_with_running_vcpu(self):
        """The interpreter exits while a daemon thread runs a spinning guest:
        the machine is not destroyed under it (no crash, no hang)."""
        self.new_machine(ram=False).close()  # skips if unavailable
        script = (
            "import sys, threading, time, libvx\n"
            "m = libvx.Machine(accel=sys.argv[1])\n"
            "m.map(0, 0xa0000)\n"
            f"m.load_flat(0x1000, bytes.fromhex('{G.SPIN32.hex()}'))\n"
            "m.vcpu.set_mode('prot32', 0x10000)\n"
            "m.vcpu.regs.set(rip=0x1000, rsp=0xf000)\n"
            "threading.Thread(target=m.vcpu.run, daemon=True).start()\n"
            "count = m.view(0x8000, 4).cast('I')\n"
            "while count[0] == 0:\n"
            "    time.sleep(0.001)\n"
            "print('exiting')\n"
        )
        r = subprocess.run([sys.executable, "-c", script, self.ACCEL], env=python_env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "exiting\n"), r.stderr)

    def test_context_manager(self):
        self.new_machine(ram=False).close()  # skips if unavailable
        with libvx.Machine(accel=self.ACCEL) as m:
            view = m.map(0, 4096)
        self.assertTrue(m.closed)
        with self.assertRaises(ValueError):
            view[0]

    def test_nmi_pending(self):
        """An NMI raised before run() waits for it (kept, not an error)."""
        m = self.new_machine(ram=False)
        m.vcpu.nmi()
        m.vcpu.nmi()

    def test_pc_board_and_linux_errors(self):
        m = self.new_machine(ram=False)
        with self.assertRaises(libvx.InvalidArgument):
            m.board_pc()  # needs IRQCHIP | IGNORE_UNCLAIMED_IO
        flags = libvx.MachineFlags.IRQCHIP | libvx.MachineFlags.IGNORE_UNCLAIMED_IO
        with libvx.Machine(accel=self.ACCEL, flags=flags) as pc:
            out = []
            pc.board_pc(ram_size=32 << 20, serial_out=out.append)
            with self.assertRaises(libvx.Busy):
                pc.board_pc()
            self.assertEqual(pc.serial_input(b"hi"), 1)  # FIFO off until the guest enables it
            with self.assertRaises(libvx.Corrupt):
                pc.boot_linux(b"\0" * 4096)  # not a bzImage
            with self.assertRaises(libvx.InvalidArgument) as cm:
                pc.console_input(b"x")  # no virtio console on this one
            self.assertIn("VX_PC_VIRTIO_CONSOLE", cm.exception.detail)
        # Several vCPUs need APICs: kvm has them, tcg's pc board takes one.
        with libvx.Machine(accel="tcg", vcpus=2, flags=flags) as two:
            with self.assertRaises(libvx.NotSupported) as cm:
                two.board_pc(ram_size=32 << 20)
            self.assertIn("APIC", cm.exception.detail)

    def test_pc_disks_and_console(self):
        self.new_machine(ram=False)  # skips where the accelerator is missing
        flags = libvx.MachineFlags.IRQCHIP | libvx.MachineFlags.IGNORE_UNCLAIMED_IO
        with tempfile.TemporaryDirectory() as tmp:
            img = os.path.join(tmp, "disk.img")
            with open(img, "wb") as f:
                f.write(b"\xa5" * 65536)
            missing = os.path.join(tmp, "missing.img")
            with libvx.Machine(accel=self.ACCEL, flags=flags) as pc:
                with self.assertRaises(libvx.NotFound) as cm:
                    pc.board_pc(ram_size=32 << 20, disks=[img, missing])
                self.assertIn("missing.img", cm.exception.detail)
                # Nothing of the failed board stayed: the same machine takes one.
                with self.assertRaises(libvx.InvalidArgument):
                    pc.board_pc(ram_size=32 << 20, disks=[img] * 9)
                fd = os.open(img, os.O_RDONLY)
                try:
                    pc.board_pc(ram_size=32 << 20, disks=[(img, True), (fd, True)],
                                console=True, console_out=lambda b: None)
                finally:
                    os.close(fd)
                self.assertEqual(pc.console_input(b"x"), 0)  # no driver yet

    def test_irq_set(self):
        m = self.new_machine(ram=False)
        with self.assertRaises(libvx.NotSupported) as cm:
            m.irq_set(4, True)
        self.assertIn("IRQCHIP", cm.exception.detail)
        with libvx.Machine(accel=self.ACCEL, flags=libvx.MachineFlags.IRQCHIP) as m2:
            m2.irq_set(4, True)
            m2.irq_set(4, False)
            with self.assertRaises(libvx.InvalidArgument):
                m2.irq_set(16, True)

    def test_machine_bad_args(self):
        self.new_machine(ram=False)
        with self.assertRaises(libvx.InvalidArgument) as cm:
            libvx.Machine(accel=self.ACCEL, vcpus=libvx.MAX_VCPUS + 1)
        self.assertIn("vcpus", cm.exception.detail)
        with self.assertRaises(libvx.InvalidArgument) as cm:
            libvx.Machine(accel=self.ACCEL, flags=1 << 40)
        self.assertIn("unknown bits", cm.exception.detail)
        with self.assertRaises(libvx.InvalidArgument):
            libvx.Machine(accel=self.ACCEL, vcpus=-1)
        with self.assertRaises(TypeError):
            libvx.Machine(accel=self.ACCEL, vcpus="2")

    def test_map_errors(self):
        m = self.new_machine(ram=False)
        m.map(0, 0x10000)
        cases = [
            (lambda: m.map(0x10001, 0x1000), libvx.InvalidArgument, "multiples of 4 KiB"),
            (lambda: m.map(0x20000, 0), libvx.InvalidArgument, "multiples of 4 KiB"),
            (lambda: m.map(0x20000, 0x1000, "w"), libvx.InvalidArgument, "VX_MEM_READ"),
            (lambda: m.map(0x20000, 0x1000, "rq"), libvx.InvalidArgument, "bad protection"),
            (lambda: m.map(0x8000, 0x10000), libvx.Exists, "overlaps 0x0+0x10000"),
            (lambda: m.map(-4096, 0x1000), libvx.InvalidArgument, "64-bit"),
            (lambda: m.map(1 << 64, 0x1000), libvx.InvalidArgument, "64-bit"),
            (lambda: m.map(0x20000, 0x1000, host=b"\0" * 0x1000), libvx.InvalidArgument,
             "writable"),
            (lambda: m.map(0x20000, 0x2000, host=bytearray(0x1000)), libvx.InvalidArgument,
             "at least 0x2000"),
            (lambda: m.map(0x20000, 0x1000, host=memoryview(bytearray(0x2001))[1:]),
             libvx.InvalidArgument, "page aligned"),
            (lambda: m.unmap(0, 0x1000), libvx.NotFound, "no region 0x0+0x1000"),
            (lambda: m.unmap(0x1001, 0x1000), libvx.InvalidArgument, ""),
            (lambda: m.read(0xF000, 0x2000), libvx.OutOfRange, "not all mapped"),
            (lambda: m.write(0x10000, b"x"), libvx.OutOfRange, "not all mapped"),
            (lambda: m.view(0xF000, 0x2000), libvx.OutOfRange, "one mapped region"),
            (lambda: m.read(0, -1), libvx.InvalidArgument, "negative"),
        ]
        for call, cls, text in cases:
            with self.assertRaises(cls) as cm:
                call()
            self.assertIn(text, str(cm.exception))
        self.assertEqual(len(m.regions()), 1)

    def test_spanning_read_write(self):
        m = self.new_machine(ram=False)
        m.map(0, 0x1000)
        m.map(0x1000, 0x1000, "r")
        m.write(0xFFE, b"abcd")  # spans two adjacent regions, ROM included
        self.assertEqual(m.read(0xFFE, 4), b"abcd")
        self.assertEqual(m.read(0, 0), b"")
        m.write(0, b"")
        m.write(0x10, memoryview(b"xyz"))
        m.write(0x20, memoryview(struct.pack("<2I", 1, 2)).cast("I"))
        self.assertEqual(m.read(0x10, 3), b"xyz")
        self.assertEqual(m.read(0x20, 8), struct.pack("<2I", 1, 2))

    def test_device_args(self):
        m = self.new_machine(ram=False)
        m.map(0, 0x10000)
        for call, cls in [
            (lambda: m.on_pio(0x10000, 1), libvx.InvalidArgument),
            (lambda: m.on_pio(-1, 1), libvx.InvalidArgument),
            (lambda: m.on_pio(0x10, 0), libvx.InvalidArgument),
            (lambda: m.on_pio(0xFFFF, 2), libvx.InvalidArgument),
            (lambda: m.on_mmio(0xA0000, 0), libvx.InvalidArgument),
            (lambda: m.on_mmio(0x8000, 0x10), libvx.Exists),
            (lambda: m.unregister_pio(0x10), libvx.NotFound),
            (lambda: m.unregister_mmio(0xA0000), libvx.NotFound),
            (lambda: m.on_pio(0x10, 1, read=42), TypeError),
        ]:
            with self.assertRaises(cls):
                call()
        dev = m.on_pio(0x10, 2)
        self.assertEqual(repr(dev), "<libvx.Device ports 0x10+0x2>")
        with self.assertRaises(libvx.Exists) as cm:
            m.on_pio(0x11, 1)
        self.assertIn("overlap", cm.exception.detail)
        self.assertEqual(m.devices(), [dev])
        with m.on_mmio(0xA0000, 0x10) as mdev:
            self.assertTrue(mdev.registered)
        self.assertFalse(mdev.registered)
        self.assertEqual(repr(mdev), "<libvx.Device MMIO 0xa0000+0x10 unregistered>")
        dev.unregister()
        with self.assertRaises(libvx.NotFound):
            dev.unregister()
        self.assertEqual(m.devices(), [])

    def test_replace_callables(self):
        m = self.setup_guest(G.CURRENT32, "prot32")
        m.vcpu.regs.rax = 7
        got = []
        dev = m.on_pio(G.PORT, 1, write=lambda p, s, v: got.append(("old", v)))
        dev.write = lambda p, s, v: got.append(("new", v))  # takes effect at the next access
        m.on_mmio(G.MMIO_GPA, 0x10)
        self.run_to_hlt(m.vcpu)
        self.assertEqual(got, [("new", 7)])

    def test_load_flat(self):
        m = self.new_machine()
        with self.assertRaises(libvx.OutOfRange):
            m.load_flat(G.RAM_SIZE - 2, b"abcd")
        self.assertEqual(m.read(G.RAM_SIZE - 2, 2), b"\0\0")  # nothing was written
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(G.HLT)
            f.flush()
            m.load_flat(G.CODE_GPA, f.name)  # a path works too
        self.assertEqual(m.read(G.CODE_GPA, len(G.HLT)), G.HLT)
        m.load_flat(G.CODE_GPA, bytearray(b"\x90"))

    def test_load_elf(self):
        m = self.new_machine()
        # mov rax, 0x1234; mov rbx, [rel bss]; hlt; then 8 bytes the loader zeroes
        code = bytes.fromhex("48c7c034120000" "488b1d01000000" "f4")
        m.write(0x2000 + len(code), b"\xff" * 8)  # bss that must be zeroed
        image = elf64(code, 0x2000, 0x2000, bss=8)
        self.assertEqual(m.load_elf(image), 0x2000)
        self.assertEqual(m.read(0x2000, len(code) + 8), code + bytes(8))
        m.vcpu.set_mode("long64", G.TABLES_GPA)
        m.vcpu.set_regs(rip=0x2000, rsp=G.STACK_TOP, rbx=5)
        self.run_to_hlt(m.vcpu)
        self.assertRegs(m.vcpu, rax=0x1234, rbx=0)
        # ELF32 for EM_386, from a file
        with tempfile.NamedTemporaryFile(suffix=".elf") as f:
            f.write(elf32(b"\xf4", 0x3000, 0x3000))
            f.flush()
            self.assertEqual(m.load_elf(f.name), 0x3000)
        self.assertEqual(m.read(0x3000, 1), b"\xf4")
        for image, cls, text in [
            (b"not an elf at all", libvx.Corrupt, "ELF magic"),
            (b"", libvx.Corrupt, "ELF magic"),
            (image[:40], libvx.Corrupt, "truncated"),
            (elf64(code, 0x2000, 0x2000, machine=183), libvx.NotSupported, "e_machine"),
            (elf64(code, 0x2000, 0x2000, etype=3), libvx.NotSupported, "ET_EXEC"),
            (elf64(code, G.RAM_SIZE - 4, 0), libvx.OutOfRange, "outside mapped memory"),
        ]:
            with self.assertRaises(cls) as cm:
                m.load_elf(image)
            self.assertIn(text, cm.exception.detail)


per_accel(Api, globals())

if __name__ == "__main__":
    unittest.main()
