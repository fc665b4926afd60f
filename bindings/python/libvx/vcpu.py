"""vCPUs: registers, modes, running, and the exits run() returns."""

import ctypes
import enum
import operator
import struct
import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from . import _callbacks
from ._native import ExitStruct, lib
from .errors import EINVAL, InvalidArgument, from_call
from .x86 import (
    CONTROL_NAMES,
    DTABLE_NAMES,
    REG_NAMES,
    SEGMENT_FIELDS,
    SEGMENT_NAMES,
    DTable,
    Fpu,
    Mode,
    Regs,
    Segment,
    Sregs,
)

if TYPE_CHECKING:  # pragma: no cover
    from .machine import Machine

__all__ = ["Vcpu", "Exit", "ExitReason", "ShutdownKind", "current_vcpu"]

MASK64 = (1 << 64) - 1


class ExitReason(enum.IntEnum):
    """Why :meth:`Vcpu.run` returned (vx_exit_reason)."""

    HLT = 1  #: hlt with interrupts off, or nothing can wake it
    IO = 2  #: a port access no device claimed
    MMIO = 3  #: an access to unmapped guest-physical memory
    SHUTDOWN = 4  #: triple fault, or a reset/power-off device
    STOPPED = 5  #: Vcpu.stop()
    BUDGET = 6  #: the instruction budget ran out
    DEBUG = 7  #: breakpoint or single step
    INTERNAL = 8  #: the accelerator or a callback failed; see Exit.error


class ShutdownKind(enum.IntEnum):
    """Exit.kind of a SHUTDOWN exit."""

    TRIPLE_FAULT = 1
    RESET = 2
    POWEROFF = 3


def _reg_value(value: Any, what: str) -> int:
    v = operator.index(value)
    if not -(1 << 63) <= v <= MASK64:
        raise InvalidArgument(EINVAL, f"{what} = {value:#x} does not fit in 64 bits")
    return v & MASK64


# ---------------------------------------------------------------------------
# Exits
# ---------------------------------------------------------------------------


class Exit:
    """Why :meth:`Vcpu.run` returned: ``reason`` plus the fields that go with it.

    =============  ==========================================================
    reason         fields
    =============  ==========================================================
    ``IO``         ``port``, ``len`` (1, 2, 4), ``is_write``, ``value``
    ``MMIO``       ``gpa``, ``len`` (1, 2, 4, 8), ``is_write``, ``value``
    ``SHUTDOWN``   ``kind`` (:class:`ShutdownKind`), ``code``
    ``DEBUG``      ``rip``
    ``INTERNAL``   ``error``: vx_last_error() right after the run
    =============  ==========================================================

    Fields that do not go with the reason are None. ``name`` is the reason
    in lower case ("hlt", "io"...), and the repr reads like
    ``<Exit io write port=0x10 len=1 value=0x11>``.

    **Completing a read.** For an ``IO`` or ``MMIO`` read nobody claimed,
    set ``value`` and run the vCPU again: the guest's read completes with
    it (only the low ``len`` bytes count)::

        e = vcpu.run()
        if e.reason == ExitReason.IO and not e.is_write:
            e.value = 0x42
            e = vcpu.run()

    ``value`` can be set only on the vCPU's latest exit, before the next run.
    """

    # Class defaults: an exit sets only the fields of its reason.
    reason: Union[ExitReason, int] = 0
    port: Optional[int] = None
    gpa: Optional[int] = None
    len: Optional[int] = None
    is_write: Optional[bool] = None
    kind: Optional[Union[ShutdownKind, int]] = None
    code: Optional[int] = None
    rip: Optional[int] = None
    error: Optional[str] = None
    _value: Optional[int] = None
    _vcpu: Optional["Vcpu"] = None
    _seq: Optional[int] = None

    def __init__(self, reason: Union[ExitReason, int], **fields: Any) -> None:
        """An exit made by hand (tests, replays); Vcpu.run() makes the real ones."""
        self.reason = _REASONS.get(reason, reason)
        for name in ("port", "gpa", "len", "is_write", "kind", "code", "rip", "error"):
            if name in fields:
                setattr(self, name, fields.pop(name))
        if "value" in fields:
            self._value = fields.pop("value")
        if fields:
            raise TypeError(f"unknown Exit fields: {', '.join(fields)}")

    @classmethod
    def _from_struct(cls, s: ExitStruct, vcpu: "Vcpu", seq: int) -> "Exit":
        # struct.unpack_from on the C bytes: one call instead of a ctypes
        # object per nested member (run() is a hot path).
        reason = s.reason
        e = cls.__new__(cls)
        e.reason = _REASONS.get(reason, reason)
        e._vcpu = vcpu
        e._seq = seq
        if reason == _IO:
            e.port, e.len, w, value = _IO_LAYOUT.unpack_from(s, _UNION_OFFSET)
            e.is_write = w = bool(w)
            if w:
                e._value = value
            else:
                s.u.io.value = 0  # a read not answered completes with 0
        elif reason == _MMIO:
            e.gpa, e.len, w, value = _MMIO_LAYOUT.unpack_from(s, _UNION_OFFSET)
            e.is_write = w = bool(w)
            if w:
                e._value = value
            else:
                s.u.mmio.value = 0
        elif reason == ExitReason.SHUTDOWN:
            sd = s.u.shutdown
            e.kind = _KINDS.get(sd.kind, sd.kind)
            e.code = sd.code
        elif reason == ExitReason.DEBUG:
            e.rip = s.u.debug.rip
        elif reason == ExitReason.INTERNAL:
            from ._native import last_error

            e.error = last_error()
        return e

    @property
    def name(self) -> str:
        """The reason in lower case: "hlt", "io", "mmio", "shutdown"..."""
        if isinstance(self.reason, ExitReason):
            return self.reason.name.lower()
        return f"reason {self.reason}"

    @property
    def is_read(self) -> bool:
        """True for an IO or MMIO read (the exit waits for a value)."""
        return self.is_write is False

    @property
    def value(self) -> Optional[int]:
        """IO/MMIO: the value written; for a read, None until set (settable:
        the value the read gets when the vCPU runs again; unset, it gets 0)."""
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        if self.reason not in (ExitReason.IO, ExitReason.MMIO) or self.is_write:
            raise InvalidArgument(EINVAL, f"only a read exit takes a value; this is {self!r}")
        v = _reg_value(value, "Exit.value")
        vcpu = self._vcpu
        if vcpu is not None:
            if vcpu._seq != self._seq:
                raise InvalidArgument(
                    EINVAL,
                    f"{self!r} is not vCPU {vcpu.index}'s latest exit: set the value "
                    "before running it again",
                )
            if self.reason == ExitReason.IO:
                vcpu._exit.u.io.value = v
            else:
                vcpu._exit.u.mmio.value = v
        self._value = v

    def __repr__(self) -> str:
        r = self.reason
        if r == ExitReason.IO or r == ExitReason.MMIO:
            where = f"port={self.port:#x}" if r == ExitReason.IO else f"gpa={self.gpa:#x}"
            text = f"{self.name} {'write' if self.is_write else 'read'} {where} len={self.len}"
            if self._value is not None:
                text += f" value={self._value:#x}"
        elif r == ExitReason.SHUTDOWN:
            kind = self.kind.name.lower() if isinstance(self.kind, ShutdownKind) else self.kind
            text = f"shutdown {kind} code={self.code}"
        elif r == ExitReason.DEBUG:
            text = f"debug rip={self.rip:#x}"
        elif r == ExitReason.INTERNAL:
            text = f"internal: {self.error}" if self.error else "internal"
        else:
            text = self.name
        return f"<Exit {text}>"

    __str__ = __repr__


_REASONS = {int(r): r for r in ExitReason}
_KINDS = {int(k): k for k in ShutdownKind}
_IO = int(ExitReason.IO)
_MMIO = int(ExitReason.MMIO)
_UNION_OFFSET = ExitStruct.u.offset
# vx_exit.u.io and u.mmio: (port | gpa, len, is_write, value)
_IO_LAYOUT = struct.Struct("<HBB4xQ")
_MMIO_LAYOUT = struct.Struct("<QBB6xQ")


# ---------------------------------------------------------------------------
# Live views: vcpu.regs.rax, vcpu.sregs.cs.base, vcpu.msrs[0x10]
# ---------------------------------------------------------------------------


def _regs_property(name: str) -> property:
    def fget(self: "RegsView") -> int:
        return getattr(self._vcpu.get_regs(), name)

    def fset(self: "RegsView", value: int) -> None:
        self._vcpu.set_regs(None, **{name: value})

    return property(fget, fset, doc=f"The vCPU's {name}, read or written now.")


class RegsView:
    """The general registers of a vCPU, live: each read is a
    vx_vcpu_get_regs(), each write a get/modify/set. ``vcpu.regs.rax``,
    ``vcpu.regs.rip = 0x1000``. For several registers at once use
    :meth:`Vcpu.get_regs`/:meth:`Vcpu.set_regs` (or :meth:`get`/:meth:`set`
    here): one call each. A misspelt register name is an AttributeError."""

    __slots__ = ("_vcpu",)
    _vcpu: "Vcpu"

    def __init__(self, vcpu: "Vcpu") -> None:
        object.__setattr__(self, "_vcpu", vcpu)

    def get(self) -> Regs:
        """A snapshot (:class:`Regs`)."""
        return self._vcpu.get_regs()

    def set(self, regs: Union[Regs, Mapping[str, int], None] = None, **fields: int) -> None:
        """Same as :meth:`Vcpu.set_regs`."""
        self._vcpu.set_regs(regs, **fields)

    def __repr__(self) -> str:
        return repr(self._vcpu.get_regs())


for _n in REG_NAMES:
    setattr(RegsView, _n, _regs_property(_n))


def _segment_property(seg: str, field: str) -> property:
    def fget(self: "SegmentView") -> int:
        return getattr(getattr(self._vcpu.get_sregs(), seg), field)

    def fset(self: "SegmentView", value: int) -> None:
        s = self._vcpu.get_sregs()
        setattr(getattr(s, seg), field, _reg_value(value, f"{seg}.{field}"))
        self._vcpu.set_sregs(s)

    return property(fget, fset, doc=f"The vCPU's {seg}.{field}, read or written now.")


class SegmentView:
    """One segment register of a vCPU, live (``vcpu.sregs.cs.selector``)."""

    __slots__ = ("_vcpu", "_name")
    _vcpu: "Vcpu"
    _name: str

    def __init__(self, vcpu: "Vcpu", name: str) -> None:
        object.__setattr__(self, "_vcpu", vcpu)
        object.__setattr__(self, "_name", name)

    def get(self) -> Segment:
        """A snapshot (:class:`Segment`)."""
        return getattr(self._vcpu.get_sregs(), self._name).copy()

    def __repr__(self) -> str:
        return repr(self.get())

    def __getattr__(self, field: str) -> int:
        if field in SEGMENT_FIELDS:
            return getattr(getattr(self._vcpu.get_sregs(), self._name), field)
        raise AttributeError(f"a segment has no field {field!r}")

    def __setattr__(self, field: str, value: int) -> None:
        if field not in SEGMENT_FIELDS:
            raise AttributeError(f"a segment has no field {field!r}")
        s = self._vcpu.get_sregs()
        setattr(getattr(s, self._name), field, _reg_value(value, f"{self._name}.{field}"))
        self._vcpu.set_sregs(s)


class DTableView(SegmentView):
    """GDTR or IDTR of a vCPU, live (``vcpu.sregs.gdt.base``)."""

    __slots__ = ()

    def get(self) -> DTable:  # type: ignore[override]
        """A snapshot (:class:`DTable`)."""
        return getattr(self._vcpu.get_sregs(), self._name).copy()

    def __getattr__(self, field: str) -> int:
        if field in ("base", "limit"):
            return getattr(getattr(self._vcpu.get_sregs(), self._name), field)
        raise AttributeError(f"a descriptor table register has no field {field!r}")

    def __setattr__(self, field: str, value: int) -> None:
        if field not in ("base", "limit"):
            raise AttributeError(f"a descriptor table register has no field {field!r}")
        s = self._vcpu.get_sregs()
        setattr(getattr(s, self._name), field, _reg_value(value, f"{self._name}.{field}"))
        self._vcpu.set_sregs(s)


def _control_property(name: str) -> property:
    def fget(self: "SregsView") -> int:
        return getattr(self._vcpu.get_sregs(), name)

    def fset(self: "SregsView", value: int) -> None:
        self._vcpu.set_sregs(None, **{name: value})

    return property(fget, fset, doc=f"The vCPU's {name}, read or written now.")


def _table_property(name: str, view: type) -> property:
    def fget(self: "SregsView"):
        return view(self._vcpu, name)

    def fset(self: "SregsView", value) -> None:
        self._vcpu.set_sregs(None, **{name: value})

    return property(fget, fset, doc=f"The vCPU's {name}, live; assign a whole one to replace it.")


class SregsView:
    """The system registers of a vCPU, live: ``vcpu.sregs.cr0``,
    ``vcpu.sregs.fs.base = 0x20000``, ``vcpu.sregs.gdt.limit``. Each read is
    a vx_vcpu_get_sregs(), each write a get/modify/set; for several at
    once use :meth:`Vcpu.get_sregs`/:meth:`Vcpu.set_sregs`."""

    __slots__ = ("_vcpu",)
    _vcpu: "Vcpu"

    def __init__(self, vcpu: "Vcpu") -> None:
        object.__setattr__(self, "_vcpu", vcpu)

    def get(self) -> Sregs:
        """A snapshot (:class:`Sregs`)."""
        return self._vcpu.get_sregs()

    def set(self, sregs: Union[Sregs, Mapping[str, Any], None] = None, **fields: Any) -> None:
        """Same as :meth:`Vcpu.set_sregs`."""
        self._vcpu.set_sregs(sregs, **fields)

    def __repr__(self) -> str:
        return repr(self._vcpu.get_sregs())


for _n in CONTROL_NAMES:
    setattr(SregsView, _n, _control_property(_n))
for _n in SEGMENT_NAMES:
    setattr(SregsView, _n, _table_property(_n, SegmentView))
for _n in DTABLE_NAMES:
    setattr(SregsView, _n, _table_property(_n, DTableView))


class MsrView:
    """Model-specific registers by index, live: ``vcpu.msrs[0xc0000080]``
    reads EFER, ``vcpu.msrs[index] = value`` writes one. An MSR the
    accelerator does not have raises :class:`libvx.NotSupported`."""

    __slots__ = ("_vcpu",)

    def __init__(self, vcpu: "Vcpu") -> None:
        self._vcpu = vcpu

    def __getitem__(self, index: int) -> int:
        return self._vcpu.get_msr(index)

    def __setitem__(self, index: int, value: int) -> None:
        self._vcpu.set_msr(index, value)

    def __repr__(self) -> str:
        return f"<MSRs of vCPU {self._vcpu.index}>"


# ---------------------------------------------------------------------------
# vCPUs
# ---------------------------------------------------------------------------

#: vx_vcpu pointer -> weakref to its Vcpu, for current_vcpu()
_by_pointer: Dict[int, weakref.ref] = {}


def current_vcpu() -> Optional["Vcpu"]:
    """Inside a device callback, the :class:`Vcpu` whose access it is
    (vx_vcpu_current()); None outside callbacks."""
    ptr = lib().vx_vcpu_current()
    if not ptr:
        return None
    ref = _by_pointer.get(ptr)
    return ref() if ref is not None else None


class Vcpu:
    """One virtual CPU of a :class:`Machine` (``m.vcpus[i]``, ``m.vcpu`` for
    the first). The machine owns it; it is unusable after the machine is
    closed.

    Registers, one at a time (live) or in bulk (snapshots)::

        vcpu.regs.rax                      # read now
        vcpu.regs.rip = 0x1000             # write now
        r = vcpu.get_regs(); vcpu.set_regs(r, rax=1)
        vcpu.sregs.cs.selector, vcpu.sregs.cr0
        vcpu.set_sregs(fs=Segment(base=0x20000, ...))
        vcpu.msrs[0xc0000080]              # EFER

    Running::

        vcpu.set_mode("long64", tables_gpa=0x10000)
        vcpu.regs.set(rip=0x1000, rsp=0x8000)
        e = vcpu.run()                     # an Exit

    One vCPU runs on one thread at a time; :meth:`stop` works from any
    thread. ``run()`` releases the GIL while the guest runs, so other
    Python threads carry on (and may call :meth:`stop`).
    """

    def __init__(self, machine: "Machine", ptr: int) -> None:
        """Made by :class:`Machine`; not to be created directly."""
        L = lib()
        self._machine = machine
        self._ptr = ptr
        if L.vx_vcpu_machine(ptr) != machine._ptr:
            raise InvalidArgument(EINVAL, f"vCPU {ptr:#x} is not a vCPU of machine {machine._ptr:#x}")
        self.index: int = L.vx_vcpu_index(ptr)
        self._exit = ExitStruct(size=ctypes.sizeof(ExitStruct))
        # Made once: ctypes converts these fastest (run() is a hot path).
        self._exit_ref = ctypes.byref(self._exit)
        self._cptr = ctypes.c_void_p(ptr)
        self._seq = 0
        self._running: set = set()
        self._L = L
        _by_pointer[ptr] = weakref.ref(self)

    # -- identity -----------------------------------------------------------

    @property
    def machine(self) -> "Machine":
        """The machine this vCPU belongs to."""
        return self._machine

    @property
    def handle(self) -> int:
        """The C ``vx_vcpu *`` as an int, for passing to other C code."""
        return self._handle()

    def _handle(self) -> int:
        if self._machine._ptr is None:
            raise InvalidArgument(EINVAL, "the vCPU's machine is closed", None)
        return self._ptr

    @property
    def running(self) -> bool:
        """True while some thread is inside :meth:`run` for this vCPU."""
        return bool(self._running)

    def __repr__(self) -> str:
        state = "closed" if self._machine._ptr is None else self._machine.accel
        return f"<libvx.Vcpu {self.index} ({state})>"

    # -- registers ------------------------------------------------------------

    def get_regs(self) -> Regs:
        """The general registers, as a :class:`Regs` snapshot."""
        r = Regs()
        rc = self._L.vx_vcpu_get_regs(self._handle(), ctypes.byref(r))
        if rc:
            raise from_call(rc, "vx_vcpu_get_regs")
        return r

    def set_regs(self, regs: Union[Regs, Mapping[str, int], None] = None, **fields: int) -> None:
        """Write the general registers.

        ``set_regs(r)`` writes a whole :class:`Regs` (or a dict of some
        registers, the rest read back from the vCPU first);
        ``set_regs(rip=0x1000, rsp=0x8000)`` changes only those (one get,
        one set); both together apply the keywords on top of ``regs``.
        """
        if isinstance(regs, Regs) and not fields:
            r = regs
        else:
            r = regs.copy() if isinstance(regs, Regs) else self.get_regs()
            items = dict(regs or {}) if not isinstance(regs, Regs) else {}
            items.update(fields)
            for name, value in items.items():
                if name not in REG_NAMES:
                    raise TypeError(f"{name!r} is not a general register")
                setattr(r, name, _reg_value(value, name))
        rc = self._L.vx_vcpu_set_regs(self._handle(), ctypes.byref(r))
        if rc:
            raise from_call(rc, "vx_vcpu_set_regs")

    @property
    def regs(self) -> RegsView:
        """The general registers, live (:class:`RegsView`): ``vcpu.regs.rax``.
        Assigning a :class:`Regs` or a dict writes it (``vcpu.regs = r``)."""
        return RegsView(self)

    @regs.setter
    def regs(self, value: Union[Regs, Mapping[str, int]]) -> None:
        self.set_regs(value)

    def get_sregs(self) -> Sregs:
        """The system registers, as an :class:`Sregs` snapshot."""
        s = Sregs()
        rc = self._L.vx_vcpu_get_sregs(self._handle(), ctypes.byref(s))
        if rc:
            raise from_call(rc, "vx_vcpu_get_sregs")
        return s

    def get_fpu(self) -> Fpu:
        """The x87/MMX/SSE state, as an :class:`libvx.x86.Fpu` snapshot."""
        f = Fpu()
        f.size = ctypes.sizeof(Fpu)
        rc = self._L.vx_vcpu_get_fpu(self._handle(), ctypes.byref(f))
        if rc:
            raise from_call(rc, "vx_vcpu_get_fpu")
        return f

    def set_fpu(self, fpu: Fpu) -> None:
        """Write the x87/MMX/SSE state (an :class:`libvx.x86.Fpu`, typically
        from :meth:`get_fpu`)."""
        fpu.size = ctypes.sizeof(Fpu)
        rc = self._L.vx_vcpu_set_fpu(self._handle(), ctypes.byref(fpu))
        if rc:
            raise from_call(rc, "vx_vcpu_set_fpu")

    def set_sregs(self, sregs: Union[Sregs, Mapping[str, Any], None] = None, **fields: Any) -> None:
        """Write the system registers: a whole :class:`Sregs`, or only some
        (``set_sregs(cr0=..., fs=Segment(...), gdt=DTable(...))``; a segment
        or table may also be a dict of its fields, which changes just those).
        Setting CR0/CR4/EFER changes the mode without the guest's checks;
        the accelerator may refuse an inconsistent state."""
        if isinstance(sregs, Sregs) and not fields:
            s = sregs
        else:
            s = sregs.copy() if isinstance(sregs, Sregs) else self.get_sregs()
            items = dict(sregs or {}) if not isinstance(sregs, Sregs) else {}
            items.update(fields)
            for name, value in items.items():
                if name in CONTROL_NAMES:
                    setattr(s, name, _reg_value(value, name))
                elif name in SEGMENT_NAMES or name in DTABLE_NAMES:
                    target = getattr(s, name)
                    if isinstance(value, (Segment, DTable)):
                        if type(value) is not type(target):
                            raise TypeError(f"{name} takes a {type(target).__name__}")
                        target._update_from(value)
                    elif isinstance(value, (SegmentView, DTableView)):
                        target._update_from(value.get())
                    else:
                        for field, v in dict(value).items():
                            if field not in dict(type(target)._fields_):
                                raise TypeError(f"{name} has no field {field!r}")
                            setattr(target, field, _reg_value(v, f"{name}.{field}"))
                else:
                    raise TypeError(f"{name!r} is not a system register")
        rc = self._L.vx_vcpu_set_sregs(self._handle(), ctypes.byref(s))
        if rc:
            raise from_call(rc, "vx_vcpu_set_sregs")

    @property
    def sregs(self) -> SregsView:
        """The system registers, live (:class:`SregsView`):
        ``vcpu.sregs.cs.selector``, ``vcpu.sregs.cr0 = ...``. Assigning an
        :class:`Sregs` or a dict writes it."""
        return SregsView(self)

    @sregs.setter
    def sregs(self, value: Union[Sregs, Mapping[str, Any]]) -> None:
        self.set_sregs(value)

    def get_msr(self, index: int) -> int:
        """Read the MSR with this architectural index (0xc0000080 is EFER).
        NotSupported for an MSR the accelerator does not have."""
        index = operator.index(index)
        if not 0 <= index <= 0xFFFFFFFF:
            raise InvalidArgument(EINVAL, f"MSR index {index:#x} is not 32-bit")
        value = ctypes.c_uint64()
        rc = self._L.vx_vcpu_get_msr(self._handle(), index, ctypes.byref(value))
        if rc:
            raise from_call(rc, "vx_vcpu_get_msr")
        return value.value

    def translate(self, gva: int) -> int:
        """The guest-physical address of a guest-virtual (linear) one, by the
        vCPU's page tables as they are now (vx_vcpu_translate). NotFound when
        it is not mapped."""
        gva = operator.index(gva)
        if not 0 <= gva <= 0xFFFFFFFFFFFFFFFF:
            raise InvalidArgument(EINVAL, f"address {gva:#x} is not 64-bit")
        gpa = ctypes.c_uint64()
        rc = self._L.vx_vcpu_translate(self._handle(), gva, ctypes.byref(gpa))
        if rc:
            raise from_call(rc, "vx_vcpu_translate")
        return gpa.value

    def set_msr(self, index: int, value: int) -> None:
        """Write one MSR."""
        index = operator.index(index)
        if not 0 <= index <= 0xFFFFFFFF:
            raise InvalidArgument(EINVAL, f"MSR index {index:#x} is not 32-bit")
        rc = self._L.vx_vcpu_set_msr(self._handle(), index, _reg_value(value, "MSR value"))
        if rc:
            raise from_call(rc, "vx_vcpu_set_msr")

    @property
    def msrs(self) -> MsrView:
        """MSRs by index, live: ``vcpu.msrs[0xc0000080]``."""
        return MsrView(self)

    def set_mode(self, mode: Union[Mode, int, str], tables_gpa: Optional[int] = None) -> None:
        """Put the vCPU in a flat mode, Unicorn-style (vx_vcpu_set_mode).

        mode: :class:`Mode` or "real", "prot32", "long64".
        tables_gpa: for prot32 and long64, where the GDT, TSS and (long64)
            identity page tables go: 4 KiB aligned, with
            :data:`libvx.x86.MODE_TABLES_SIZE` bytes of writable RAM.
            Unused in real mode.

        Every segment gets base 0, ring 0, interrupts off, rflags = 0x2.
        rip, rsp and the general registers are yours to set afterwards.
        """
        m = Mode.parse(mode)
        if tables_gpa is None:
            if m != Mode.REAL:
                raise InvalidArgument(
                    EINVAL,
                    f"set_mode({mode!r}) needs tables_gpa: 0x9000 bytes of writable RAM "
                    "for the GDT, TSS and page tables",
                )
            tables_gpa = 0
        gpa = operator.index(tables_gpa)
        if not 0 <= gpa <= MASK64:
            raise InvalidArgument(EINVAL, f"tables_gpa {gpa:#x} is not a 64-bit address")
        rc = self._L.vx_vcpu_set_mode(self._handle(), m, gpa)
        if rc:
            raise from_call(rc, "vx_vcpu_set_mode")

    # -- running ----------------------------------------------------------------

    def run(self) -> Exit:
        """Run the vCPU on this thread until something the application must
        see, and return it as an :class:`Exit`.

        Port and MMIO accesses that a callback claims are handled inside
        and do not return. The GIL is released while the guest runs and
        re-taken for each Python callback.

        If a device callback raised, the vCPU stops (VX_EXIT_INTERNAL) and
        this re-raises that exception, with the exit attached as its
        ``libvx_exit`` attribute. (What running the vCPU again does to the
        interrupted access, retry or not, libvx does not define yet, and
        the accelerators differ: treat the vCPU's state as suspect.)

        Raises :class:`Busy` if the vCPU is already running (on another
        thread, or further up this one: a callback may not run its own vCPU).
        """
        if self._machine._ptr is None:
            self._handle()  # raises
        tid = threading.get_ident()
        pending = _callbacks.pending
        outer = pending.exc
        pending.exc = None
        self._running.add(tid)
        try:
            rc = self._L.vx_vcpu_run(self._cptr, self._exit_ref)
        finally:
            self._running.discard(tid)
            exc = pending.exc
            pending.exc = outer
        if rc:
            raise from_call(rc, "vx_vcpu_run")
        self._seq += 1
        e = Exit._from_struct(self._exit, self, self._seq)
        if exc is not None:
            try:
                exc.libvx_exit = e  # type: ignore[attr-defined]
            except AttributeError:
                pass
            if hasattr(exc, "add_note"):
                exc.add_note(
                    f"(raised in a libvx device callback; vCPU {self.index} stopped: {e!r})"
                )
            raise exc
        return e

    def stop(self) -> None:
        """Make :meth:`run` return with ExitReason.STOPPED as soon as possible.
        Callable from any thread, and from a callback of this vCPU (the
        access completes, then run() returns). If the vCPU is not running,
        its next run() returns STOPPED at once."""
        rc = self._L.vx_vcpu_stop(self._handle())
        if rc:
            raise from_call(rc, "vx_vcpu_stop")

    def nmi(self) -> None:
        """Raise a non-maskable interrupt (vector 2) on this vCPU: taken at its
        next instruction boundary inside :meth:`run`, held while the guest's
        NMI handler runs. Callable from any thread."""
        rc = self._L.vx_vcpu_nmi(self._handle())
        if rc:
            raise from_call(rc, "vx_vcpu_nmi")

    def set_budget(self, instructions: int) -> None:
        """Stop after exactly `instructions` more guest instructions with
        ExitReason.BUDGET; 0 removes the budget. tcg only: NotSupported on
        kvm, which cannot count guest instructions."""
        n = operator.index(instructions)
        if not 0 <= n <= MASK64:
            raise InvalidArgument(EINVAL, f"budget {n} is not an unsigned 64-bit count")
        rc = self._L.vx_vcpu_set_budget(self._handle(), n)
        if rc:
            raise from_call(rc, "vx_vcpu_set_budget")

    @property
    def instructions(self) -> int:
        """Guest instructions retired so far on this vCPU (tcg); 0 on kvm."""
        return self._L.vx_vcpu_instructions(self._handle())
