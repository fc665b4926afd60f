"""libvx: virtual machines inside any Python program.

This package is the Python binding of libvx, a C library that creates and
runs x86 virtual machines on KVM or on its own translator (tcg), through
ctypes: pure Python, no compiled extension. It wraps the whole public C API
(include/libvx/vx.h and x86.h).

Run machine code and print rax::

    import libvx

    code = bytes.fromhex("48c7c02a000000 4883c001 f4")  # mov rax, 42; add rax, 1; hlt
    with libvx.Machine() as m:
        m.map(0, 1 << 20)                      # 1 MiB of RAM at gpa 0
        m.load_flat(0x1000, code)
        m.vcpu.set_mode("long64", tables_gpa=0x10000)
        m.vcpu.regs.set(rip=0x1000, rsp=0x8000)
        print(m.vcpu.run(), hex(m.vcpu.regs.rax))   # <Exit hlt> 0x2b

A port-I/O device in Python::

    m.on_pio(0xe9, 1, write=lambda port, size, value: print(chr(value), end=""))
    m.on_pio(0x60, 4, read=lambda port, size: 0x12345678)

The pieces:

* :class:`Machine` (a context manager): ``map``/``unmap``/``view`` guest
  memory as memoryviews, ``read``/``write``, ``load_flat``/``load_elf``,
  ``on_pio``/``on_mmio`` device callbacks, ``vcpus``.
* :class:`Vcpu`: registers live (``vcpu.regs.rax``, ``vcpu.sregs.cs.base``,
  ``vcpu.msrs[i]``) or in bulk (``get_regs``/``set_regs``,
  ``get_sregs``/``set_sregs``: :class:`Regs`, :class:`Sregs`,
  :class:`Segment`, :class:`DTable`), ``set_mode``, ``run`` (returns an
  :class:`Exit`), ``stop`` (from any thread), ``set_budget``,
  ``instructions``.
* :func:`current_vcpu` inside callbacks; :func:`accel_available`,
  :func:`available_accels`; :func:`version`, :func:`version_string`.
* Errors: :class:`Error` and its subclasses, one per ``VX_E*`` code
  (:mod:`libvx.errors`).

Coming from Unicorn (``m`` a Machine, ``v = m.vcpu``)::

    Uc(UC_ARCH_X86, UC_MODE_64)        Machine(); v.set_mode("long64", tables_gpa)
    uc.mem_map(addr, size, perms)      view = m.map(gpa, size, "rwx")   # a memoryview
    uc.mem_write(a, d), mem_read(a, n) m.write(gpa, data), m.read(gpa, size)
    uc.reg_write(UC_X86_REG_RAX, x)    v.regs.rax = x
    uc.hook_add(UC_HOOK_INSN, f, ..,   m.on_pio(port, count, write=f, read=g)
                UC_X86_INS_OUT)
    UC_HOOK_MEM_READ/WRITE_UNMAPPED    m.on_mmio(gpa, size, read=g, write=f)
    uc.emu_start(begin, until, 0, n)   v.regs.rip = begin; v.set_budget(n)  # tcg
                                       e = v.run()   # until hlt, unclaimed I/O...
    uc.emu_stop()                      v.stop()      # from any thread too

Exceptions in callbacks: a device callback that raises stops its vCPU (the
C callback returns non-zero, so libvx ends the run with VX_EXIT_INTERNAL),
and :meth:`Vcpu.run` re-raises the original exception. Ctrl-C inside a
callback arrives the same way.

Lifetimes: the machine keeps registered callbacks alive; views of guest
memory keep their bytes alive and are released when their region is
unmapped (see :meth:`Machine.map`); a machine not closed is destroyed when
garbage collected.

Threads: :meth:`Vcpu.run` releases the GIL while the guest runs and takes
it back for each callback, so one thread per vCPU works, and other threads
may call :meth:`Vcpu.stop`. Ctrl-C is not seen while a guest runs without
calling back into Python; stop such a guest from another thread (e.g.
``threading.Timer(5, vcpu.stop).start()``) or with an instruction budget.

The library: the binding loads ``libvx.so.0`` on first use, or the file the
environment variable ``LIBVX_LIBRARY`` names, and refuses a library whose
:func:`version` it does not support (:class:`LibraryError`).
"""

from __future__ import annotations

from typing import Tuple

from ._native import LIBRARY_ENV, MIN_VERSION, LibraryError, lib
from ._native import last_error as _last_error
from ._native import library_path
from ._native import strerror as _strerror
from ._native import version_tuple as _version_tuple
from .errors import (
    EACCEL,
    EBUSY,
    ECORRUPT,
    EEXIST,
    EINVAL,
    EIO,
    ENOENT,
    ENOMEM,
    ENOTSUP,
    ERANGE,
    OK,
    AcceleratorError,
    Busy,
    Corrupt,
    Error,
    Exists,
    HostIOError,
    InvalidArgument,
    NotFound,
    NotSupported,
    OutOfMemory,
    OutOfRange,
    error_name,
)
from .machine import (
    MAX_VCPUS,
    PAGE_SIZE,
    Accel,
    Device,
    Machine,
    MachineFlags,
    Prot,
    accel_available,
    available_accels,
)
from .vcpu import Exit, ExitReason, ShutdownKind, Vcpu, current_vcpu
from .x86 import DTable, Mode, Regs, Segment, Sregs
from . import x86

#: The version of this binding.
__version__ = "0.1.0"

# C-style constants, for code ported from C.
MEM_READ = Prot.READ
MEM_WRITE = Prot.WRITE
MEM_EXEC = Prot.EXEC
MEM_RWX = Prot.RWX
MACHINE_USER_ONLY = MachineFlags.USER_ONLY
MACHINE_IGNORE_UNCLAIMED_IO = MachineFlags.IGNORE_UNCLAIMED_IO
X86_MODE_TABLES_SIZE = x86.MODE_TABLES_SIZE


def version() -> Tuple[int, int, int]:
    """The loaded library's version as (major, minor, patch) (vx_version())."""
    return _version_tuple(lib().vx_version())


def version_string() -> str:
    """The loaded library's version as a string, "0.1.0" (vx_version_string())."""
    return lib().vx_version_string().decode()


def strerror(code: int) -> str:
    """The library's text for a VX_E* code (vx_strerror())."""
    return _strerror(code)


def last_error() -> str:
    """This thread's detail of its last failed libvx call (vx_last_error()).
    Every :class:`Error` carries it already, as ``detail``."""
    return _last_error()


__all__ = [
    "Machine",
    "Vcpu",
    "Device",
    "Exit",
    "ExitReason",
    "ShutdownKind",
    "Accel",
    "MachineFlags",
    "Prot",
    "Mode",
    "Regs",
    "Sregs",
    "Segment",
    "DTable",
    "current_vcpu",
    "accel_available",
    "available_accels",
    "version",
    "version_string",
    "strerror",
    "last_error",
    "library_path",
    "LibraryError",
    "LIBRARY_ENV",
    "MIN_VERSION",
    "Error",
    "InvalidArgument",
    "OutOfMemory",
    "NotSupported",
    "Exists",
    "NotFound",
    "Busy",
    "AcceleratorError",
    "HostIOError",
    "Corrupt",
    "OutOfRange",
    "error_name",
    "OK",
    "EINVAL",
    "ENOMEM",
    "ENOTSUP",
    "EEXIST",
    "ENOENT",
    "EBUSY",
    "EACCEL",
    "EIO",
    "ECORRUPT",
    "ERANGE",
    "PAGE_SIZE",
    "MAX_VCPUS",
    "MEM_READ",
    "MEM_WRITE",
    "MEM_EXEC",
    "MEM_RWX",
    "MACHINE_USER_ONLY",
    "MACHINE_IGNORE_UNCLAIMED_IO",
    "X86_MODE_TABLES_SIZE",
    "x86",
]
