"""The C-callable trampolines behind :meth:`Machine.on_pio` and :meth:`Machine.on_mmio`.

There are exactly two C function pointers, made once and never freed: one
for reads and one for writes. The ``opaque`` pointer libvx passes back is a
small integer key into :data:`_handlers`, which maps it (weakly) to the
Python :class:`~libvx.Device`. So:

* nothing the garbage collector can free is ever reachable from C: a key
  whose device is gone makes the callback fail cleanly (the vCPU stops with
  VX_EXIT_INTERNAL) instead of jumping into freed memory;
* the Machine owns its devices (and they own their callables), so a
  callable that refers back to its machine makes an ordinary collectable
  cycle, not an immortal one.

An exception raised by the Python callable must not be lost, and ctypes
would only print it. The trampoline catches it (BaseException: Ctrl-C and
SystemExit too), returns non-zero so that libvx stops the vCPU with
VX_EXIT_INTERNAL, and parks the exception in a thread-local slot;
:meth:`Vcpu.run`, on the same thread, takes it and raises it.
"""

from __future__ import annotations

import threading
import weakref
from typing import Dict, Optional

from ._native import READ_FN, WRITE_FN

MASK64 = (1 << 64) - 1

#: opaque key -> weakref to the Device
_handlers: Dict[int, "weakref.ref"] = {}
_next_key = 0
_key_lock = threading.Lock()

# The callback return value that marks "the Python callable raised"; libvx
# names it in vx_last_error() ("... callback at 0x10 (len 1) returned -1").
FAILED = -1


class _Pending(threading.local):
    exc: Optional[BaseException] = None


pending = _Pending()


def new_key(device) -> int:
    global _next_key
    with _key_lock:
        _next_key += 1
        key = _next_key
    _handlers[key] = weakref.ref(device)
    return key


def drop_key(key: int) -> None:
    _handlers.pop(key, None)


def _stash(exc: BaseException) -> None:
    # The first exception is the cause; the vCPU stops right after it.
    if pending.exc is None:
        pending.exc = exc


class _DeviceGone(RuntimeError):
    pass


def _read(opaque, addr, length, value):
    try:
        ref = _handlers.get(opaque)
        dev = ref() if ref is not None else None
        if dev is None:
            raise _DeviceGone(f"no live device for callback key {opaque}")
        result = dev.read(addr, length)
        try:
            value[0] = result & MASK64
        except TypeError:
            raise TypeError(
                f"the read callback of {dev!r} returned {result!r}; it must return an int"
            ) from None
        return 0
    except BaseException as exc:  # noqa: B902 - handed to Vcpu.run()
        _stash(exc)
        return FAILED


def _write(opaque, addr, length, value):
    try:
        ref = _handlers.get(opaque)
        dev = ref() if ref is not None else None
        if dev is None:
            raise _DeviceGone(f"no live device for callback key {opaque}")
        dev.write(addr, length, value)
        return 0
    except BaseException as exc:  # noqa: B902 - handed to Vcpu.run()
        _stash(exc)
        return FAILED


#: The two C function pointers; module globals, so alive for the process.
READ_TRAMPOLINE = READ_FN(_read)
WRITE_TRAMPOLINE = WRITE_FN(_write)
