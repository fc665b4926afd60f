"""The C side: finding and loading libvx.so.0, its structures and prototypes.

Nothing here is public API. Everything the rest of the package needs from
the C library goes through :func:`lib`, which loads the library on first use,
checks its version, and declares every function the binding calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Optional, Tuple

# ---------------------------------------------------------------------------
# Versions this binding is written for.
# ---------------------------------------------------------------------------

#: The oldest library version this binding works with, as (major, minor, patch).
MIN_VERSION = (0, 1, 0)
#: The library major version this binding speaks. libvx 0.x keeps the
#: LIBVX_1.0 symbol version and libvx.so.0; a new major means a new binding.
SUPPORTED_MAJOR = 0

#: The environment variable naming the library file to load.
LIBRARY_ENV = "LIBVX_LIBRARY"


class LibraryError(ImportError):
    """libvx.so.0 could not be found or loaded, or its version is not one
    this binding supports. Raised on the first use of the library."""


# ---------------------------------------------------------------------------
# Structures, laid out as in include/libvx/vx.h and x86.h. tests/test_abi.py
# compiles the headers and checks every size and offset.
# ---------------------------------------------------------------------------


class MachineOpts(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("arch", c_int),
        ("accel", c_int),
        ("vcpus", c_uint),
        ("flags", c_uint64),
    ]


READ_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint, POINTER(c_uint64))
WRITE_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint, c_uint64)


SERIAL_FN = CFUNCTYPE(None, c_void_p, POINTER(c_uint8), c_size_t)


class PcDisk(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("path", c_char_p),
        ("fd", c_int),
        ("flags", c_uint),
    ]


class PcOpts(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("ram_size", c_uint64),
        ("serial_fd", c_int),
        ("serial_out", SERIAL_FN),
        ("serial_opaque", c_void_p),
        ("disks", POINTER(PcDisk)),
        ("disk_count", c_uint),
        ("flags", c_uint),
        ("console_fd", c_int),
        ("console_out", SERIAL_FN),
        ("console_opaque", c_void_p),
    ]


class IoOps(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("read", READ_FN),
        ("write", WRITE_FN),
    ]


class _ExitIo(Structure):
    _fields_ = [
        ("port", c_uint16),
        ("len", c_uint8),
        ("is_write", c_uint8),
        ("value", c_uint64),
    ]


class _ExitMmio(Structure):
    _fields_ = [
        ("gpa", c_uint64),
        ("len", c_uint8),
        ("is_write", c_uint8),
        ("value", c_uint64),
    ]


class _ExitDebug(Structure):
    _fields_ = [("rip", c_uint64)]


class _ExitShutdown(Structure):
    _fields_ = [("kind", c_uint32), ("code", c_uint32)]


class _ExitUnion(Union):
    _fields_ = [
        ("io", _ExitIo),
        ("mmio", _ExitMmio),
        ("debug", _ExitDebug),
        ("shutdown", _ExitShutdown),
        ("pad", c_uint64 * 4),
    ]


class ExitStruct(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("reason", c_uint32),
        ("u", _ExitUnion),
    ]


# The x86 register structures are public (libvx.x86 gives them methods);
# they are declared there and imported here only for the prototypes.
from .x86 import DTable, Fpu, Regs, Segment, Sregs  # noqa: E402

STRUCTS: Dict[str, Any] = {
    "vx_machine_opts": MachineOpts,
    "vx_pc_opts": PcOpts,
    "vx_pc_disk": PcDisk,
    "vx_io_ops": IoOps,
    "vx_exit": ExitStruct,
    "vx_x86_regs": Regs,
    "vx_x86_segment": Segment,
    "vx_x86_dtable": DTable,
    "vx_x86_sregs": Sregs,
    "vx_x86_fpu": Fpu,
}

# ---------------------------------------------------------------------------
# Prototypes: every public function of include/libvx/*.h. tests/test_abi.py
# fails when the headers declare one that is missing here.
# ---------------------------------------------------------------------------

_P = POINTER

PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    # versions and errors
    "vx_version": (c_uint, []),
    "vx_version_string": (c_char_p, []),
    "vx_strerror": (c_char_p, [c_int]),
    "vx_last_error": (c_char_p, []),
    # machines
    "vx_accel_available": (c_int, [c_int]),
    "vx_machine_create": (c_int, [_P(MachineOpts), _P(c_void_p)]),
    "vx_machine_destroy": (None, [c_void_p]),
    "vx_machine_accel": (c_int, [c_void_p]),
    "vx_machine_accel_name": (c_char_p, [c_void_p]),
    "vx_machine_vcpu": (c_void_p, [c_void_p, c_uint]),
    "vx_machine_vcpu_count": (c_uint, [c_void_p]),
    # guest memory
    "vx_memory_map": (c_int, [c_void_p, c_uint64, c_uint64, c_void_p, c_uint]),
    "vx_memory_unmap": (c_int, [c_void_p, c_uint64, c_uint64]),
    "vx_memory_read": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t]),
    "vx_memory_write": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t]),
    "vx_memory_ptr": (c_void_p, [c_void_p, c_uint64, c_size_t]),
    # device callbacks
    "vx_pio_register": (c_int, [c_void_p, c_uint16, c_uint32, _P(IoOps), c_void_p]),
    "vx_mmio_register": (c_int, [c_void_p, c_uint64, c_uint64, _P(IoOps), c_void_p]),
    "vx_pio_unregister": (c_int, [c_void_p, c_uint16]),
    "vx_mmio_unregister": (c_int, [c_void_p, c_uint64]),
    "vx_vcpu_current": (c_void_p, []),
    # running
    "vx_vcpu_run": (c_int, [c_void_p, _P(ExitStruct)]),
    "vx_vcpu_stop": (c_int, [c_void_p]),
    "vx_vcpu_nmi": (c_int, [c_void_p]),
    "vx_vcpu_set_budget": (c_int, [c_void_p, c_uint64]),
    "vx_vcpu_instructions": (c_uint64, [c_void_p]),
    "vx_vcpu_index": (c_uint, [c_void_p]),
    "vx_vcpu_machine": (c_void_p, [c_void_p]),
    # loading guests
    "vx_load_flat": (c_int, [c_void_p, c_uint64, c_void_p, c_size_t]),
    "vx_load_elf": (c_int, [c_void_p, c_void_p, c_size_t, _P(c_uint64)]),
    # x86 (x86.h)
    "vx_vcpu_get_regs": (c_int, [c_void_p, _P(Regs)]),
    "vx_vcpu_set_regs": (c_int, [c_void_p, _P(Regs)]),
    "vx_vcpu_get_sregs": (c_int, [c_void_p, _P(Sregs)]),
    "vx_vcpu_set_sregs": (c_int, [c_void_p, _P(Sregs)]),
    "vx_vcpu_get_fpu": (c_int, [c_void_p, _P(Fpu)]),
    "vx_vcpu_set_fpu": (c_int, [c_void_p, _P(Fpu)]),
    "vx_vcpu_get_msr": (c_int, [c_void_p, c_uint32, _P(c_uint64)]),
    "vx_vcpu_translate": (c_int, [c_void_p, c_uint64, _P(c_uint64)]),
    "vx_irq_set": (c_int, [c_void_p, c_uint, c_int]),
    "vx_board_pc": (c_int, [c_void_p, _P(PcOpts)]),
    "vx_pc_serial_input": (c_int, [c_void_p, c_void_p, c_size_t]),
    "vx_pc_console_input": (c_int, [c_void_p, c_void_p, c_size_t]),
    "vx_boot_linux": (c_int, [c_void_p, c_void_p, c_size_t, c_void_p, c_size_t, c_char_p]),
    "vx_vcpu_set_msr": (c_int, [c_void_p, c_uint32, c_uint64]),
    "vx_vcpu_set_mode": (c_int, [c_void_p, c_int, c_uint64]),
}

#: Functions of later library versions: declared when the loaded library has
#: them, absent (and the Python feature raises NotSupported) when it does not.
OPTIONAL: frozenset = frozenset()

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_path: Optional[str] = None


def _candidates() -> List[str]:
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return [env]
    names = ["libvx.so.0"]
    found = ctypes.util.find_library("vx")
    if found and found not in names:
        names.append(found)
    return names


def _declare(dll: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            if name in OPTIONAL:
                continue
            raise LibraryError(
                f"{_path}: the library has no {name}(); it is older than this "
                f"binding (which needs libvx {'.'.join(map(str, MIN_VERSION))} or later)"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes


def version_tuple(number: int) -> Tuple[int, int, int]:
    return ((number >> 16) & 0xFF, (number >> 8) & 0xFF, number & 0xFF)


def check_version(number: int) -> None:
    """Raise LibraryError unless a library of this vx_version() is supported."""
    v = version_tuple(number)
    if v[0] != SUPPORTED_MAJOR or v < MIN_VERSION:
        want = ".".join(map(str, MIN_VERSION))
        raise LibraryError(
            f"{_path} is libvx {'.'.join(map(str, v))}; this binding supports "
            f"libvx {SUPPORTED_MAJOR}.x from {want} on"
        )


def lib() -> ctypes.CDLL:
    """The loaded library (loading it the first time)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        dll = None
        for name in _candidates():
            try:
                dll = ctypes.CDLL(name)
                _path = name
                break
            except OSError as exc:
                tried.append(f"{name}: {exc}")
        if dll is None:
            hint = (
                f" (set {LIBRARY_ENV} to the path of libvx.so.0, e.g. "
                f"<build>/lib/.libs/libvx.so.0, or install libvx)"
            )
            raise LibraryError("cannot load libvx: " + "; ".join(tried) + hint)
        try:
            version = dll.vx_version
        except AttributeError:
            raise LibraryError(f"{_path} is not libvx (no vx_version)") from None
        version.restype = c_uint
        version.argtypes = []
        check_version(version())
        _declare(dll)
        _lib = dll
        return dll


def library_path() -> str:
    """The name or path the library was loaded from."""
    lib()
    assert _path is not None
    return _path


def last_error() -> str:
    """This thread's vx_last_error() text."""
    raw = lib().vx_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def strerror(code: int) -> str:
    raw = lib().vx_strerror(code)
    return raw.decode("utf-8", "replace") if raw else ""
