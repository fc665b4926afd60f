"""Machines: accelerators, guest memory, device callbacks, loaders."""

import ctypes
import enum
import mmap
import operator
import os
import sys
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _callbacks
from ._native import SERIAL_FN, IoOps, MachineOpts, PcDisk, PcOpts, lib
from .errors import EINVAL, Busy, Error, InvalidArgument, from_call
from .vcpu import Vcpu, _by_pointer

DISK_READONLY = 1  # VX_PC_DISK_READONLY
PC_VIRTIO_CONSOLE = 1  # VX_PC_VIRTIO_CONSOLE
PC_MAX_DISKS = 8  # VX_PC_MAX_DISKS


def _byte_sink(fn: Optional[Callable[[bytes], None]]) -> Any:
    """A C byte-run callback (opaque, buf, len) calling fn(bytes), or NULL."""
    if fn is None:
        return SERIAL_FN()

    def tramp(opaque: Any, buf: Any, n: int) -> None:
        try:
            fn(ctypes.string_at(buf, n))
        except BaseException:  # a callback must not unwind through C
            pass

    return SERIAL_FN(tramp)


__all__ = [
    "Machine",
    "Device",
    "Accel",
    "MachineFlags",
    "Prot",
    "accel_available",
    "available_accels",
    "PAGE_SIZE",
    "MAX_VCPUS",
]

MASK64 = (1 << 64) - 1
PAGE_SIZE = 4096  #: VX_PAGE_SIZE: gpa and size of map() are multiples of it
MAX_VCPUS = 64  #: VX_MAX_VCPUS

ReadFn = Callable[[int, int], int]
WriteFn = Callable[[int, int, int], Any]
Buffer = Union[bytes, bytearray, memoryview]  # or any object with the buffer protocol


class Accel(enum.IntEnum):
    """Accelerators (vx_accel). Anywhere one is asked for, the names
    "auto", "kvm" and "tcg" work too."""

    AUTO = 0  #: kvm where it is hardware-assisted, else tcg (VX_ACCEL=kvm|tcg overrides)
    KVM = 1  #: Linux KVM through /dev/kvm
    TCG = 2  #: the built-in translator

    @classmethod
    def parse(cls, accel: Union["Accel", int, str]) -> "Accel":
        if isinstance(accel, str):
            try:
                return cls[accel.strip().upper()]
            except KeyError:
                raise InvalidArgument(
                    EINVAL, f"unknown accelerator {accel!r}: expected auto, kvm or tcg"
                ) from None
        try:
            return cls(operator.index(accel))
        except ValueError:
            raise InvalidArgument(EINVAL, f"{accel!r} is not a vx_accel") from None


class MachineFlags(enum.IntFlag):
    """vx_machine_opts.flags bits, for ``Machine(flags=...)``."""

    NONE = 0
    #: The guest runs ring 3 only; lets AUTO pick a software KVM (kvm_pvm).
    USER_ONLY = 1 << 0
    #: Unclaimed ports read as all ones and ignore writes instead of exiting.
    IGNORE_UNCLAIMED_IO = 1 << 1
    #: The PC's 8259 PIC pair and 8254 PIT (KVM's in-kernel ones under kvm);
    #: lines are driven with ``Machine.irq_set``; hlt waits for interrupts.
    IRQCHIP = 1 << 2


class Prot(enum.IntFlag):
    """Guest memory protection (VX_MEM_*). ``map()`` also takes a string
    such as "rwx", "rx" or "r" (READ is required; no WRITE means ROM)."""

    READ = 1
    WRITE = 2
    EXEC = 4
    RWX = 7

    @classmethod
    def parse(cls, prot: Union["Prot", int, str]) -> int:
        if isinstance(prot, str):
            bits = 0
            for ch in prot.lower():
                if ch == "r":
                    bits |= cls.READ
                elif ch == "w":
                    bits |= cls.WRITE
                elif ch == "x":
                    bits |= cls.EXEC
                elif ch != "-":
                    raise InvalidArgument(EINVAL, f"bad protection {prot!r}: use r, w, x")
            return bits
        return operator.index(prot)


def accel_available(accel: Union[Accel, int, str] = Accel.AUTO) -> bool:
    """True if a machine can be created with this accelerator here
    (vx_accel_available). For "auto": if either can."""
    return bool(lib().vx_accel_available(Accel.parse(accel)))


def available_accels() -> List[str]:
    """The accelerators usable in this process, e.g. ["kvm"] or ["kvm", "tcg"]."""
    return [a.name.lower() for a in (Accel.KVM, Accel.TCG) if accel_available(a)]


def _u64(value: Any, what: str) -> int:
    v = operator.index(value)
    if not 0 <= v <= MASK64:
        raise InvalidArgument(EINVAL, f"{what} {value:#x} is not an unsigned 64-bit value")
    return v


# A bytes-like argument as something ctypes passes as `const void *`, with
# its length and whatever must stay alive during the call.
def _in_buffer(data: Buffer) -> Tuple[Any, int]:
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)
    if not view.contiguous:
        raise InvalidArgument(EINVAL, "the buffer is not contiguous")
    n = view.nbytes
    if n == 0:
        return b"", 0
    if view.readonly:
        return view.tobytes(), n
    return (ctypes.c_char * n).from_buffer(view.cast("B")), n


def _image_bytes(image: Union[Buffer, str, "os.PathLike[str]"]) -> Tuple[Any, int]:
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            data = f.read()
        return data, len(data)
    return _in_buffer(image)


# MAP_NORESERVE, as libvx maps its own guest RAM: big guests need no swap.
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)


class Region:
    """A memory region mapped through :meth:`Machine.map`: ``gpa``, ``size``,
    ``prot`` (:class:`Prot` bits), and the Python object that owns its bytes
    (``backing``)."""

    __slots__ = ("gpa", "size", "prot", "backing", "pin", "address", "views")

    def __init__(self, gpa: int, size: int, prot: int, backing: Any, pin: Any) -> None:
        self.gpa = gpa
        self.size = size
        self.prot = prot
        self.backing = backing  # the Python object that owns the bytes
        self.pin = pin  # a ctypes array on `backing`: holds it exported, gives the address
        self.address = ctypes.addressof(pin)
        self.views: List[weakref.ref] = []

    def release_views(self) -> None:
        for ref in self.views:
            view = ref()
            if view is not None:
                try:
                    view.release()
                except BufferError:
                    pass  # something holds a buffer on it: it keeps the bytes alive
        self.views = []


class Device:
    """A port or MMIO range claimed by Python callables; returned by
    :meth:`Machine.on_pio` and :meth:`Machine.on_mmio`.

    Attributes: ``space`` ("pio" or "mmio"), ``base``, ``size``, ``read``,
    ``write`` (the callables; replacing them takes effect at the next
    access), ``registered``.

    The machine keeps the device, and so its callables, alive while it is
    registered; you need not keep a reference. ``unregister()`` (or leaving
    a ``with`` block) removes it.
    """

    def __init__(
        self,
        machine: "Machine",
        space: str,
        base: int,
        size: int,
        read: Optional[ReadFn],
        write: Optional[WriteFn],
    ) -> None:
        self.space = space
        self.base = base
        self.size = size
        self.read = read
        self.write = write
        self._machine = weakref.ref(machine)
        self._key = 0
        self.registered = False

    def unregister(self) -> None:
        """Remove the range (vx_pio_unregister / vx_mmio_unregister)."""
        m = self._machine()
        if m is None or not self.registered:
            raise Error(-5, f"{self!r} is not registered", None)
        if self.space == "pio":
            m.unregister_pio(self.base)
        else:
            m.unregister_mmio(self.base)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.registered:
            self.unregister()

    def __repr__(self) -> str:
        what = "ports" if self.space == "pio" else "MMIO"
        state = "" if self.registered else " unregistered"
        return f"<libvx.Device {what} {self.base:#x}+{self.size:#x}{state}>"


def _destroy(
    ptr: int, vcpu_ptrs: List[int], keys: List[int], regions: Dict, running: List[set]
) -> None:
    # The machine's finalizer: close(), garbage collection, or interpreter
    # exit. Only at exit can a vCPU still be running (in a daemon thread):
    # destroying the machine under it would crash, so stop it and leave the
    # machine to the process's end.
    if any(running):
        for p in vcpu_ptrs:
            lib().vx_vcpu_stop(p)
        return
    for region in regions.values():
        region.release_views()
    for key in keys:
        _callbacks.drop_key(key)
    for p in vcpu_ptrs:
        _by_pointer.pop(p, None)
    lib().vx_machine_destroy(ptr)


class Machine:
    """A virtual machine: memory, devices and vCPUs (vx_machine).

    ``Machine(accel="auto", vcpus=1, flags=0)``:

    accel: "auto" (kvm where hardware-assisted, else tcg; the environment
        variable VX_ACCEL=kvm|tcg overrides), "kvm" or "tcg", or
        :class:`Accel`. An accelerator that is not available raises
        :class:`NotSupported` saying why.
    vcpus: 1 to 64.
    flags: :class:`MachineFlags` bits.

    A machine starts with no memory and no devices; its vCPUs are in the
    x86 reset state. Use it as a context manager, or call :meth:`close`::

        with libvx.Machine() as m:
            mem = m.map(0, 2 << 20)                 # RAM, a memoryview on it
            mem[0x1000:0x1003] = b"\\x48\\xff\\xc0"    # inc rax ...
            m.on_pio(0xe9, 1, write=lambda port, size, value: print(chr(value)))
            m.vcpu.set_mode("long64", 0x100000)
            m.vcpu.regs.set(rip=0x1000, rsp=0x8000)
            print(m.vcpu.run())                     # <Exit hlt>

    A machine that is garbage collected without close() is destroyed then.
    """

    def __init__(
        self,
        accel: Union[Accel, int, str] = "auto",
        vcpus: int = 1,
        flags: Union[MachineFlags, int] = 0,
    ) -> None:
        """Create the machine (vx_machine_create); see the class documentation."""
        L = lib()
        self._ptr: Optional[int] = None
        self._L = L
        self._regions: Dict[int, Region] = {}
        self._devices: Dict[Tuple[str, int], Device] = {}
        self._keys: List[int] = []
        self._vcpu_ptrs: List[int] = []
        n = operator.index(vcpus)
        f = operator.index(flags)
        if not 0 <= n <= 0xFFFFFFFF:
            raise InvalidArgument(EINVAL, f"vcpus = {n} is not a count")
        if not 0 <= f <= MASK64:
            raise InvalidArgument(EINVAL, f"flags {f:#x} are not 64-bit")
        opts = MachineOpts(
            size=ctypes.sizeof(MachineOpts), arch=1, accel=Accel.parse(accel), vcpus=n, flags=f
        )
        out = ctypes.c_void_p()
        rc = L.vx_machine_create(ctypes.byref(opts), ctypes.byref(out))
        if rc:
            raise from_call(rc, "vx_machine_create")
        ptr: int = out.value  # type: ignore[assignment]  # not NULL on success
        self._ptr = ptr
        # The finalizer holds the regions too, so guest memory outlives the
        # C machine however the Machine object dies.
        running: List[set] = []
        self._finalizer = weakref.finalize(
            self, _destroy, ptr, self._vcpu_ptrs, self._keys, self._regions, running
        )
        count = L.vx_machine_vcpu_count(ptr)
        vs = []
        for i in range(count):
            p = L.vx_machine_vcpu(ptr, i)
            self._vcpu_ptrs.append(p)
            vs.append(Vcpu(self, p))
            running.append(vs[-1]._running)
        self._vcpus: Tuple[Vcpu, ...] = tuple(vs)
        self.flags = MachineFlags(f)

    # -- lifetime -------------------------------------------------------------

    def close(self) -> None:
        """Destroy the machine (vx_machine_destroy): its vCPUs, devices and
        mappings. Views from :meth:`map`/:meth:`view` are released (see
        :meth:`map`). Closing twice is fine. Raises :class:`Busy` if a vCPU
        is running (stop it and let run() return first)."""
        if self._ptr is None:
            return
        for v in self._vcpus:
            if v.running:
                raise Busy(-6, f"vx_machine_destroy: vCPU {v.index} is running", None)
        self._finalizer()  # releases the views, destroys the C machine, drops the keys
        self._ptr = None
        for dev in self._devices.values():
            dev.registered = False
        self._devices.clear()
        self._regions.clear()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._ptr is None

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _handle(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise InvalidArgument(EINVAL, "the machine is closed", None)
        return ptr

    @property
    def handle(self) -> int:
        """The C ``vx_machine *`` as an int, for passing to other C code."""
        return self._handle()

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<libvx.Machine closed>"
        regions = ", ".join(
            f"{r.gpa:#x}+{r.size:#x} {_prot_text(r.prot)}" for r in self.regions()
        )
        return f"<libvx.Machine {self.accel} vcpus={len(self._vcpus)} memory=[{regions}]>"

    # -- identity -----------------------------------------------------------------

    @property
    def accel(self) -> str:
        """The accelerator the machine uses: "kvm" or "tcg" (never "auto")."""
        return self._L.vx_machine_accel_name(self._handle()).decode()

    @property
    def accel_id(self) -> Accel:
        """The same as an :class:`Accel`."""
        return Accel(self._L.vx_machine_accel(self._handle()))

    @property
    def vcpus(self) -> Tuple[Vcpu, ...]:
        """The vCPUs, by index."""
        return self._vcpus

    @property
    def vcpu(self) -> Vcpu:
        """vCPU 0."""
        return self._vcpus[0]

    # -- memory -------------------------------------------------------------------

    def map(
        self,
        gpa: int,
        size: int,
        prot: Union[Prot, int, str] = Prot.RWX,
        host: Optional[Buffer] = None,
    ) -> memoryview:
        """Map guest-physical [gpa, gpa + size) to RAM and return a writable
        memoryview of it (format "B", ``len == size``).

        gpa, size: multiples of 4 KiB (:data:`PAGE_SIZE`), size > 0.
        prot: :class:`Prot` bits or "rwx"/"rx"/"r"...; READ is required,
            and without WRITE the region is ROM: guest writes are dropped,
            while the host still writes it (view, :meth:`write`).
        host: None, and the binding allocates zeroed anonymous memory for
            the region; or a writable, page-aligned buffer of at least
            `size` bytes (an ``mmap.mmap``, say) that guest and host then
            share. It is pinned while mapped (an mmap cannot be closed, a
            bytearray not resized) and stays yours after unmap.

        **The view and the mapping.** The memory behind a view never goes
        away under it: the bytes belong to a Python object (the binding's
        anonymous mmap, or `host`) that every view keeps alive, and libvx
        only borrows them. When the region is unmapped (:meth:`unmap`,
        :meth:`close`) the views that :meth:`map` and :meth:`view` returned
        are *released*: using one raises ``ValueError: operation forbidden
        on released memoryview object``. Views derived from them before
        that (slices, ``memoryview(view)``, a NumPy array on one) stay
        usable but are no longer guest memory: what they read and write is
        the old bytes, which nothing else sees. So a stale view can be
        wrong, but it can never crash the process.

        Errors: InvalidArgument (alignment, zero size, bad prot or host),
        Exists (overlaps a region or an MMIO range), OutOfMemory, Busy.
        """
        gpa = _u64(gpa, "gpa")
        size = _u64(size, "size")
        bits = Prot.parse(prot)
        m = self._handle()
        if host is None:
            if size == 0 or size % PAGE_SIZE or gpa % PAGE_SIZE:
                # Let libvx phrase the error.
                rc = self._L.vx_memory_map(m, gpa, size, None, bits)
                raise from_call(rc or EINVAL, "vx_memory_map")
            try:
                backing: Any = mmap.mmap(
                    -1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
                )
            except (OSError, OverflowError) as exc:
                raise Error(-2, f"vx_memory_map: cannot allocate {size:#x} bytes: {exc}") from exc
        else:
            backing = host
        try:
            view = memoryview(backing)
            if view.readonly:
                raise InvalidArgument(EINVAL, "vx_memory_map: host memory must be writable")
            pin = (ctypes.c_char * size).from_buffer(view.cast("B"))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, Error):
                raise
            raise InvalidArgument(
                EINVAL, f"vx_memory_map: host memory: {exc} (need a writable buffer of "
                f"at least {size:#x} bytes)"
            ) from None
        rc = self._L.vx_memory_map(m, gpa, size, ctypes.addressof(pin), bits)
        if rc:
            raise from_call(rc, "vx_memory_map")
        self._regions[gpa] = Region(gpa, size, bits, backing, pin)
        return self.view(gpa, size)

    def unmap(self, gpa: int, size: int) -> None:
        """Unmap exactly one region mapped with this gpa and size
        (vx_memory_unmap). Its views are released; see :meth:`map`.
        NotFound if no region starts at gpa with that size."""
        gpa = _u64(gpa, "gpa")
        size = _u64(size, "size")
        rc = self._L.vx_memory_unmap(self._handle(), gpa, size)
        if rc:
            raise from_call(rc, "vx_memory_unmap")
        region = self._regions.pop(gpa, None)
        if region is not None:
            region.release_views()

    def view(self, gpa: int, size: int) -> memoryview:
        """A writable memoryview of guest memory [gpa, gpa + size), which
        must lie inside one mapped region (vx_memory_ptr; else OutOfRange).
        It is guest memory until that region is unmapped; see :meth:`map`."""
        gpa = _u64(gpa, "gpa")
        size = _u64(size, "size")
        m = self._handle()
        ptr = self._L.vx_memory_ptr(m, gpa, size)
        if not ptr:
            raise from_call(-10, "vx_memory_ptr")
        for region in self._regions.values():
            offset = ptr - region.address
            if 0 <= offset and offset + size <= region.size:
                view = memoryview(region.pin).cast("B")[offset : offset + size]
                region.views.append(weakref.ref(view))
                if len(region.views) > 64:
                    region.views = [r for r in region.views if r() is not None]
                return view
        # Memory libvx allocated itself (no such API yet): a bare view,
        # valid until that memory is unmapped.
        return memoryview((ctypes.c_char * size).from_address(ptr)).cast("B")

    def regions(self) -> List[Region]:
        """The regions mapped through this binding, by address; each has
        ``gpa``, ``size`` and ``prot``."""
        return [self._regions[k] for k in sorted(self._regions)]

    def read(self, gpa: int, size: int) -> bytes:
        """Copy `size` bytes of guest memory (RAM or ROM; may span adjacent
        regions) from gpa (vx_memory_read). OutOfRange unless all mapped.
        MMIO callbacks are not called."""
        gpa = _u64(gpa, "gpa")
        size = operator.index(size)
        if size < 0:
            raise InvalidArgument(EINVAL, f"size {size} is negative")
        buf = ctypes.create_string_buffer(size)
        rc = self._L.vx_memory_read(self._handle(), gpa, buf, size)
        if rc:
            raise from_call(rc, "vx_memory_read")
        return buf.raw

    def readinto(self, gpa: int, buffer: Buffer) -> int:
        """Fill a writable buffer from guest memory at gpa; returns its length."""
        gpa = _u64(gpa, "gpa")
        view = memoryview(buffer)
        if view.readonly:
            raise InvalidArgument(EINVAL, "readinto needs a writable buffer")
        n = view.nbytes
        if n:
            target = (ctypes.c_char * n).from_buffer(view.cast("B"))
            rc = self._L.vx_memory_read(self._handle(), gpa, target, n)
            if rc:
                raise from_call(rc, "vx_memory_read")
        return n

    def write(self, gpa: int, data: Buffer) -> None:
        """Copy bytes into guest memory at gpa (vx_memory_write); ROM too.
        OutOfRange unless the whole range is mapped (then nothing is written)."""
        gpa = _u64(gpa, "gpa")
        arg, n = _in_buffer(data)
        rc = self._L.vx_memory_write(self._handle(), gpa, arg, n)
        if rc:
            raise from_call(rc, "vx_memory_write")

    # -- loaders --------------------------------------------------------------------

    def load_flat(self, gpa: int, image: Union[Buffer, str, "os.PathLike[str]"]) -> None:
        """Copy a raw image (bytes-like, or a file path) to gpa
        (vx_load_flat). All of it must land in mapped RAM or ROM; else
        OutOfRange and nothing is written."""
        gpa = _u64(gpa, "gpa")
        arg, n = _image_bytes(image)
        rc = self._L.vx_load_flat(self._handle(), gpa, arg, n)
        if rc:
            raise from_call(rc, "vx_load_flat")

    def load_elf(self, image: Union[Buffer, str, "os.PathLike[str]"]) -> int:
        """Load a static ELF32 (EM_386) or ELF64 (EM_X86_64) executable
        (bytes-like, or a file path): each PT_LOAD segment to its physical
        address, bss zeroed. Returns the entry point. Corrupt (not ELF,
        truncated), NotSupported (other machine or type), OutOfRange (a
        segment outside mapped RAM); nothing is written on error."""
        arg, n = _image_bytes(image)
        entry = ctypes.c_uint64()
        rc = self._L.vx_load_elf(self._handle(), arg, n, ctypes.byref(entry))
        if rc:
            raise from_call(rc, "vx_load_elf")
        return entry.value

    # -- the pc board and Linux --------------------------------------------------------

    def board_pc(
        self,
        ram_size: int = 256 << 20,
        serial_fd: int = -1,
        serial_out: Optional[Callable[[bytes], None]] = None,
        disks: Sequence[Union[str, "os.PathLike[str]", Tuple[Any, bool]]] = (),
        console: bool = False,
        console_fd: int = -1,
        console_out: Optional[Callable[[bytes], None]] = None,
    ) -> None:
        """Make this machine a PC (vx_board_pc): RAM with the PC's holes, COM1,
        the RTC, the keyboard controller, the debug-exit port and a PCI bus.
        The machine must have been created with flags IRQCHIP |
        IGNORE_UNCLAIMED_IO. COM1's output goes to serial_fd (-1: nowhere)
        and/or serial_out(bytes), called on the vCPU's thread.

        disks: virtio-blk disks, each a path (read-write), an open file
        descriptor (an int), or a (path or fd, read_only) pair. console=True
        adds a virtio console whose output goes to console_fd and/or
        console_out(bytes); give it input with console_input()."""
        cb = _byte_sink(serial_out)
        ccb = _byte_sink(console_out)
        n = len(disks)
        arr = (PcDisk * max(n, 1))()
        paths = []
        for i, d in enumerate(disks):
            target, ro = d if isinstance(d, tuple) else (d, False)
            path = None if isinstance(target, int) else os.fsencode(target)
            paths.append(path)
            arr[i] = PcDisk(ctypes.sizeof(PcDisk), path, target if path is None else -1,
                            DISK_READONLY if ro else 0)
        opts = PcOpts(ctypes.sizeof(PcOpts), _u64(ram_size, "ram_size"), serial_fd, cb, None,
                      arr if n else None, n, PC_VIRTIO_CONSOLE if console else 0, console_fd,
                      ccb, None)
        rc = self._L.vx_board_pc(self._handle(), ctypes.byref(opts))
        if rc:
            raise from_call(rc, "vx_board_pc")
        # The C side keeps the pointers: keep the functions alive.
        self._serial_cb = cb
        self._console_cb = ccb

    def console_input(self, data: Buffer) -> int:
        """Give the virtio console bytes to read (vx_pc_console_input); returns
        how many fit in the buffers the guest has posted (0 before its driver
        is ready)."""
        arg, n = _in_buffer(data)
        rc = self._L.vx_pc_console_input(self._handle(), arg, n)
        if rc < 0:
            raise from_call(rc, "vx_pc_console_input")
        return rc

    def serial_input(self, data: Buffer) -> int:
        """Give COM1 bytes to read (vx_pc_serial_input); returns how many it
        took (one until the guest enables the UART's FIFO, then up to 16)."""
        arg, n = _in_buffer(data)
        rc = self._L.vx_pc_serial_input(self._handle(), arg, n)
        if rc < 0:
            raise from_call(rc, "vx_pc_serial_input")
        return rc

    def boot_linux(
        self,
        kernel: Union[Buffer, str, "os.PathLike[str]"],
        initrd: Union[Buffer, str, "os.PathLike[str]", None] = None,
        cmdline: str = "console=ttyS0",
    ) -> None:
        """Load a bzImage (and initrd) into this PC and put vCPU 0 at its
        64-bit entry (vx_boot_linux). Paths or bytes-like objects."""
        karg, kn = _image_bytes(kernel)
        iarg, inn = _image_bytes(initrd) if initrd is not None else (None, 0)
        rc = self._L.vx_boot_linux(self._handle(), karg, kn, iarg, inn, cmdline.encode())
        if rc:
            raise from_call(rc, "vx_boot_linux")

    # -- devices ----------------------------------------------------------------------

    def irq_set(self, line: int, level: Union[bool, int]) -> None:
        """Drive ISA interrupt line 0-15 of a machine created with
        ``MachineFlags.IRQCHIP`` high (truthy) or low (vx_irq_set)."""
        line = operator.index(line)
        if not 0 <= line <= 15:
            raise InvalidArgument(EINVAL, f"line {line} is not an ISA IRQ (0-15)")
        rc = self._L.vx_irq_set(self._handle(), line, 1 if level else 0)
        if rc:
            raise from_call(rc, "vx_irq_set")

    def on_pio(
        self,
        port: int,
        count: int = 1,
        read: Optional[ReadFn] = None,
        write: Optional[WriteFn] = None,
    ) -> Device:
        """Claim ports [port, port + count) with Python callables
        (vx_pio_register)::

            def read(port: int, size: int) -> int: ...          # in
            def write(port: int, size: int, value: int) -> None: ...  # out

        `port` is the absolute port accessed; `size` is 1, 2 or 4 (the
        access's length in bytes); only the low `size` bytes of what read
        returns reach the guest. Without `read`, reads return all ones;
        without `write`, writes are ignored (the range is claimed either
        way). String I/O (rep ins/outs) calls once per element.

        Callbacks run on the vCPU's thread, inside :meth:`Vcpu.run`, with
        :func:`libvx.current_vcpu` telling which vCPU. They may read or
        write its registers, stop it, map memory or register devices; not
        run it. An exception raised in one stops the vCPU and run()
        re-raises it.

        Returns the :class:`Device`; the machine keeps it (and the
        callables) alive until it is unregistered or the machine closed.
        Errors: InvalidArgument (count 0, beyond port 0xffff), Exists (overlap).
        """
        port = operator.index(port)
        count = operator.index(count)
        if not 0 <= port <= 0xFFFF:
            raise InvalidArgument(EINVAL, f"vx_pio_register: port {port:#x} is not 16-bit")
        if not 0 <= count <= 0xFFFFFFFF:
            raise InvalidArgument(EINVAL, f"vx_pio_register: count {count} is not 32-bit")
        return self._register("pio", port, count, read, write)

    def on_mmio(
        self,
        gpa: int,
        size: int,
        read: Optional[ReadFn] = None,
        write: Optional[WriteFn] = None,
    ) -> Device:
        """Claim guest-physical [gpa, gpa + size) with Python callables
        (vx_mmio_register), ``read(gpa, size) -> int`` and
        ``write(gpa, size, value)``, as :meth:`on_pio` (size up to 8; wider
        accesses arrive split). No alignment needed; the range may not
        overlap RAM or another MMIO range (Exists)."""
        gpa = _u64(gpa, "gpa")
        size = _u64(size, "size")
        return self._register("mmio", gpa, size, read, write)

    def _register(
        self,
        space: str,
        base: int,
        size: int,
        read: Optional[ReadFn],
        write: Optional[WriteFn],
    ) -> Device:
        for fn, what in ((read, "read"), (write, "write")):
            if fn is not None and not callable(fn):
                raise TypeError(f"{what} must be callable or None, not {type(fn).__name__}")
        m = self._handle()
        dev = Device(self, space, base, size, read, write)
        key = _callbacks.new_key(dev)
        ops = IoOps(size=ctypes.sizeof(IoOps))
        if read is not None:
            ops.read = _callbacks.READ_TRAMPOLINE
        if write is not None:
            ops.write = _callbacks.WRITE_TRAMPOLINE
        if space == "pio":
            rc = self._L.vx_pio_register(m, base, size, ctypes.byref(ops), key)
            function = "vx_pio_register"
        else:
            rc = self._L.vx_mmio_register(m, base, size, ctypes.byref(ops), key)
            function = "vx_mmio_register"
        if rc:
            err = from_call(rc, function)
            _callbacks.drop_key(key)
            raise err
        dev._key = key
        dev.registered = True
        self._keys.append(key)
        self._devices[(space, base)] = dev
        return dev

    def _forget(self, space: str, base: int) -> None:
        dev = self._devices.pop((space, base), None)
        if dev is not None:
            dev.registered = False
            _callbacks.drop_key(dev._key)
            try:
                self._keys.remove(dev._key)
            except ValueError:
                pass

    def unregister_pio(self, port: int) -> None:
        """Remove the port range that starts at `port` (vx_pio_unregister);
        NotFound if none does."""
        port = operator.index(port)
        if not 0 <= port <= 0xFFFF:
            raise InvalidArgument(EINVAL, f"vx_pio_unregister: port {port:#x} is not 16-bit")
        rc = self._L.vx_pio_unregister(self._handle(), port)
        if rc:
            raise from_call(rc, "vx_pio_unregister")
        self._forget("pio", port)

    def unregister_mmio(self, gpa: int) -> None:
        """Remove the MMIO range that starts at `gpa` (vx_mmio_unregister);
        NotFound if none does."""
        gpa = _u64(gpa, "gpa")
        rc = self._L.vx_mmio_unregister(self._handle(), gpa)
        if rc:
            raise from_call(rc, "vx_mmio_unregister")
        self._forget("mmio", gpa)

    def devices(self) -> List[Device]:
        """The devices registered through this binding."""
        return list(self._devices.values())


def _prot_text(prot: int) -> str:
    return "".join(c if prot & b else "-" for c, b in (("r", 1), ("w", 2), ("x", 4)))
