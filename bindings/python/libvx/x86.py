"""x86 vCPU state: the structures of <libvx/x86.h> and the CPU modes.

:class:`Regs`, :class:`Sregs`, :class:`Segment` and :class:`DTable` are
ctypes structures with the C layout, so they pass to the library without
conversion. They are *snapshots*: :meth:`libvx.Vcpu.get_regs` returns one,
changing it changes nothing until :meth:`libvx.Vcpu.set_regs` writes it back::

    r = vcpu.get_regs()          # one vx_vcpu_get_regs()
    r.rip, r.rsp = 0x1000, 0x8000
    vcpu.set_regs(r)             # one vx_vcpu_set_regs()

A nested member shares its parent's memory, as in C: ``s.cs.selector = 8``
changes ``s``. For one register at a time, ``vcpu.regs.rax`` and
``vcpu.sregs.cs.base`` read and write the vCPU directly (see
:class:`libvx.Vcpu`).

All values are unsigned Python ints; a register set to a negative number
takes its two's complement (``rax = -1`` is ``0xffffffffffffffff``).
"""

from __future__ import annotations

import enum
from ctypes import Structure, c_size_t, c_uint8, c_uint16, c_uint32, c_uint64
from typing import Any, Dict

__all__ = [
    "Regs",
    "Segment",
    "DTable",
    "Sregs",
    "Fpu",
    "Mode",
    "REG_NAMES",
    "SEGMENT_NAMES",
    "DTABLE_NAMES",
    "CONTROL_NAMES",
    "MODE_TABLES_SIZE",
    "SEL_CODE64",
    "SEL_DATA",
    "SEL_CODE32",
    "SEL_USER_CODE32",
    "SEL_USER_DATA",
    "SEL_USER_CODE64",
    "SEL_TSS",
    "MSR_EFER",
]

#: Bytes of guest RAM that :meth:`libvx.Vcpu.set_mode` writes at tables_gpa
#: (VX_X86_MODE_TABLES_SIZE).
MODE_TABLES_SIZE = 0x9000

# Selectors of the GDT that set_mode() writes (PROT32 and LONG64).
SEL_CODE64 = 0x08  #: ring 0, 64-bit code
SEL_DATA = 0x10  #: ring 0, flat 4 GiB data
SEL_CODE32 = 0x18  #: ring 0, flat 4 GiB 32-bit code
SEL_USER_CODE32 = 0x20  #: ring 3, flat 32-bit code
SEL_USER_DATA = 0x28  #: ring 3, flat data
SEL_USER_CODE64 = 0x30  #: ring 3, 64-bit code
SEL_TSS = 0x38  #: the task state segment

#: The architectural index of EFER, for :meth:`libvx.Vcpu.get_msr`.
MSR_EFER = 0xC0000080

REG_NAMES = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags",
)  # fmt: skip
SEGMENT_NAMES = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
SEGMENT_FIELDS = ("base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl")
DTABLE_NAMES = ("gdt", "idt")
CONTROL_NAMES = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")


class _Snapshot(Structure):
    """Shared behaviour of the register structures."""

    def _asdict(self) -> Dict[str, Any]:
        """The fields as a dict (nested structures as dicts too)."""
        out: Dict[str, Any] = {}
        for name, _ in self._fields_:
            value = getattr(self, name)
            out[name] = value._asdict() if isinstance(value, _Snapshot) else value
        return out

    def copy(self):
        """An independent copy."""
        new = type(self)()
        new._update_from(self)
        return new

    def _update_from(self, other: "Structure") -> None:
        import ctypes

        ctypes.memmove(ctypes.addressof(self), ctypes.addressof(other), ctypes.sizeof(self))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._asdict() == other._asdict()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _field_repr(self, name: str) -> str:
        value = getattr(self, name)
        if isinstance(value, _Snapshot):
            return f"{name}={value!r}"
        return f"{name}={value:#x}"

    def __repr__(self) -> str:
        inner = " ".join(self._field_repr(name) for name, _ in self._fields_)
        return f"{type(self).__name__}({inner})"


class Regs(_Snapshot):
    """General registers (vx_x86_regs): rax..r15, rip, rflags.

    ``Regs(rip=0x1000, rflags=2)`` makes one with the other fields 0.
    rflags bit 1 always reads back as 1.
    """

    _fields_ = [(name, c_uint64) for name in REG_NAMES]


class Segment(_Snapshot):
    """A segment register with its hidden descriptor cache (vx_x86_segment).

    ``limit`` is byte-granular (after the G bit was applied); ``type`` is
    the 4-bit descriptor type; ``present``, ``db``, ``s``, ``l``, ``g`` and
    ``avl`` are 0 or 1; ``dpl`` is 0..3.
    """

    _fields_ = [
        ("base", c_uint64),
        ("limit", c_uint32),
        ("selector", c_uint16),
        ("type", c_uint8),
        ("present", c_uint8),
        ("dpl", c_uint8),
        ("db", c_uint8),
        ("s", c_uint8),
        ("l", c_uint8),
        ("g", c_uint8),
        ("avl", c_uint8),
    ]

    def _field_repr(self, name: str) -> str:
        value = getattr(self, name)
        if name in ("base", "limit", "selector", "type"):
            return f"{name}={value:#x}"
        return f"{name}={value}"


class DTable(_Snapshot):
    """A descriptor table register, GDTR or IDTR (vx_x86_dtable)."""

    _fields_ = [("base", c_uint64), ("limit", c_uint16)]


class Sregs(_Snapshot):
    """System registers (vx_x86_sregs): the segment registers cs, ds, es,
    fs, gs, ss, tr, ldt (:class:`Segment`), gdt and idt (:class:`DTable`),
    and cr0, cr2, cr3, cr4, cr8, efer, apic_base.

    Setting CR0/CR4/EFER with :meth:`libvx.Vcpu.set_sregs` changes the CPU
    mode directly, without the checks a guest's own ``mov cr0`` would make.
    """

    _fields_ = (
        [(name, Segment) for name in SEGMENT_NAMES]
        + [(name, DTable) for name in DTABLE_NAMES]
        + [(name, c_uint64) for name in CONTROL_NAMES]
    )

    def __repr__(self) -> str:
        parts = [f"{n}.selector={getattr(self, n).selector:#x}" for n in ("cs", "ss")]
        parts += [f"{n}={getattr(self, n):#x}" for n in ("cr0", "cr3", "cr4", "efer")]
        return f"Sregs({' '.join(parts)} ...)"


class Fpu(Structure):
    """x87/MMX/SSE state (vx_x86_fpu), in the FXSAVE layout: fcw, fsw, ftw
    (the abridged tag byte), fop, fip, fdp, mxcsr, mxcsr_mask, st (8 x 16
    bytes, ST(0)..ST(7), 80-bit values in bytes 0..9) and xmm (16 x 16
    bytes). ``size`` is filled in by the binding."""

    _fields_ = [
        ("size", c_size_t),
        ("fcw", c_uint16),
        ("fsw", c_uint16),
        ("ftw", c_uint8),
        ("reserved0", c_uint8),
        ("fop", c_uint16),
        ("fip", c_uint64),
        ("fdp", c_uint64),
        ("mxcsr", c_uint32),
        ("mxcsr_mask", c_uint32),
        ("st", (c_uint8 * 16) * 8),
        ("xmm", (c_uint8 * 16) * 16),
    ]

    def xmm_bytes(self, n: int) -> bytes:
        """XMM register n as 16 little-endian bytes."""
        return bytes(self.xmm[n])


class Mode(enum.IntEnum):
    """The flat modes of :meth:`libvx.Vcpu.set_mode` (vx_cpu_mode).

    ``set_mode`` also takes the names "real" (or "real16", "16"),
    "prot32" ("protected", "32") and "long64" ("long", "64").
    """

    REAL = 1  #: 16-bit real mode, all segments 0
    PROT32 = 2  #: 32-bit flat protected mode, no paging
    LONG64 = 3  #: 64-bit long mode, identity paging of 0..4 GiB

    @classmethod
    def parse(cls, mode: "Mode | int | str") -> int:
        if isinstance(mode, str):
            key = mode.strip().lower()
            for member, names in _MODE_NAMES.items():
                if key in names:
                    return int(member)
            from .errors import InvalidArgument

            raise InvalidArgument(
                -1, f"unknown CPU mode {mode!r}: expected one of real, prot32, long64"
            )
        return int(mode)


_MODE_NAMES = {
    Mode.REAL: ("real", "real16", "16", "real_mode"),
    Mode.PROT32: ("prot32", "protected", "protected32", "32", "pm32"),
    Mode.LONG64: ("long64", "long", "64", "long_mode"),
}
