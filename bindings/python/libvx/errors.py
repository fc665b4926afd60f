"""Errors: every failing libvx call becomes a :class:`libvx.Error`.

A C call that returns a negative ``VX_E*`` code raises the subclass for that
code, carrying the code, its name, :func:`vx_strerror` text and this
thread's :func:`vx_last_error` detail::

    try:
        m.map(0x1001, 0x1000)
    except libvx.InvalidArgument as e:
        e.code    # -1 (libvx.EINVAL)
        e.name    # "VX_EINVAL"
        e.detail  # "vx_memory_map: gpa 0x1001 and size 0x1000 must be ..."

=====================  ===============  ==============================
subclass               code             also a
=====================  ===============  ==============================
:class:`InvalidArgument` ``EINVAL``     ValueError
:class:`OutOfMemory`   ``ENOMEM``       MemoryError
:class:`NotSupported`  ``ENOTSUP``
:class:`Exists`        ``EEXIST``
:class:`NotFound`      ``ENOENT``       LookupError
:class:`Busy`          ``EBUSY``
:class:`AcceleratorError` ``EACCEL``
:class:`HostIOError`   ``EIO``
:class:`Corrupt`       ``ECORRUPT``
:class:`OutOfRange`    ``ERANGE``
=====================  ===============  ==============================

Arguments the binding can judge itself (an unknown accelerator name, a
port above 0xffff, a negative address) raise the same classes with the
same codes, before reaching C.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
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
    "error_name",
]

OK = 0
EINVAL = -1  #: a bad argument
ENOMEM = -2  #: out of host memory
ENOTSUP = -3  #: this accelerator or build cannot do it
EEXIST = -4  #: overlaps something already mapped or registered
ENOENT = -5  #: nothing mapped or registered there
EBUSY = -6  #: the vCPU or machine is running, or in use
EACCEL = -7  #: the accelerator failed (a KVM ioctl, for example)
EIO = -8  #: a host I/O error
ECORRUPT = -9  #: a malformed file, image or data
ERANGE = -10  #: an address or length outside what is mapped or allowed

_NAMES = {
    OK: "VX_OK",
    EINVAL: "VX_EINVAL",
    ENOMEM: "VX_ENOMEM",
    ENOTSUP: "VX_ENOTSUP",
    EEXIST: "VX_EEXIST",
    ENOENT: "VX_ENOENT",
    EBUSY: "VX_EBUSY",
    EACCEL: "VX_EACCEL",
    EIO: "VX_EIO",
    ECORRUPT: "VX_ECORRUPT",
    ERANGE: "VX_ERANGE",
}


def error_name(code: int) -> str:
    """The C name of a code: ``error_name(-1) == "VX_EINVAL"``."""
    return _NAMES.get(code, f"VX_E({code})")


class Error(Exception):
    """A libvx call failed.

    Attributes:
        code: the negative ``VX_E*`` code (``libvx.EINVAL``...).
        name: its C name, ``"VX_EINVAL"``.
        strerror: the library's text for the code (``vx_strerror``).
        detail: the library's detail of this failure (``vx_last_error()``
            on the failing thread), or the binding's own for a check it made.
        function: the C function that failed, when one did.
    """

    code: int
    name: str
    detail: str
    function: Optional[str]

    def __new__(cls, code: int = EINVAL, detail: str = "", function: Optional[str] = None):
        # Error(code) picks the subclass for the code.
        if cls is Error:
            cls = _BY_CODE.get(code, Error)
        # Exception's __new__: MemoryError's own refuses subclasses it did not expect.
        return Exception.__new__(cls)

    def __init__(self, code: int = EINVAL, detail: str = "", function: Optional[str] = None):
        super().__init__(code, detail)
        self.code = code
        self.name = error_name(code)
        self.detail = detail
        self.function = function

    @property
    def strerror(self) -> str:
        from ._native import strerror

        try:
            return strerror(self.code)
        except ImportError:
            return self.name

    def __str__(self) -> str:
        text = self.detail
        if not text:
            text = self.strerror
            if self.function:
                text = f"{self.function}: {text}"
        return f"{text} [{self.name}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.detail!r})"

    def __reduce__(self):
        return (Error, (self.code, self.detail, self.function))


class InvalidArgument(Error, ValueError):
    """VX_EINVAL: a bad argument (a NULL handle, a misaligned size, a bad enum)."""


class OutOfMemory(Error, MemoryError):
    """VX_ENOMEM: out of host memory."""


class NotSupported(Error):
    """VX_ENOTSUP: this accelerator or build cannot do it (tcg not built,
    no /dev/kvm, an instruction budget on kvm...)."""


class Exists(Error):
    """VX_EEXIST: overlaps something already mapped or registered."""


class NotFound(Error, LookupError):
    """VX_ENOENT: nothing is mapped or registered there."""


class Busy(Error):
    """VX_EBUSY: the vCPU or machine is running, or in use."""


class AcceleratorError(Error):
    """VX_EACCEL: the accelerator failed (a KVM ioctl, for example)."""


class HostIOError(Error):
    """VX_EIO: a host I/O error."""


class Corrupt(Error):
    """VX_ECORRUPT: a malformed file, image or data."""


class OutOfRange(Error):
    """VX_ERANGE: an address or length outside what is mapped or allowed."""


_BY_CODE: Dict[int, Type[Error]] = {
    EINVAL: InvalidArgument,
    ENOMEM: OutOfMemory,
    ENOTSUP: NotSupported,
    EEXIST: Exists,
    ENOENT: NotFound,
    EBUSY: Busy,
    EACCEL: AcceleratorError,
    EIO: HostIOError,
    ECORRUPT: Corrupt,
    ERANGE: OutOfRange,
}


def from_call(code: int, function: str) -> Error:
    """The exception for C function `function` having returned `code`, with
    this thread's vx_last_error() (call on the thread that made the call,
    before any other libvx call)."""
    from ._native import last_error

    return Error(code, last_error(), function)
