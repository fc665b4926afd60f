#!/usr/bin/env python3
"""A port-I/O device written in Python: a tiny serial port.

The guest (32-bit code below) reads characters from the port at 0x3f8
until it reads 0, writes each back upper-cased, then reads the device's
count of characters written from port 0x3fc and halts. The device is an
ordinary Python class; its bound methods are the callbacks.

Usage: pio_device.py [TEXT]
"""
import sys

import libvx


def asm(*hex_parts):
    return bytes.fromhex("".join(hex_parts))


GUEST = asm(
    "66baf803",  # mov dx, 0x3f8
    # .next:
    "ec",        # in al, dx              ; the next input character, 0 at the end
    "84c0",      # test al, al
    "740d",      # jz .done
    "3c61",      # cmp al, 'a'
    "7206",      # jb .out
    "3c7a",      # cmp al, 'z'
    "7702",      # ja .out
    "2c20",      # sub al, 0x20           ; upper case
    # .out:
    "ee",        # out dx, al
    "ebee",      # jmp .next
    # .done:
    "66bafc03",  # mov dx, 0x3fc
    "ed",        # in eax, dx             ; characters written so far
    "f4",        # hlt
)


class SerialPort:
    """Ports base..base+7: +0 data (in: next input byte, out: output byte),
    +4 a 32-bit count of the bytes output."""

    def __init__(self, text: bytes, base: int = 0x3F8):
        self.base = base
        self.input = list(text)
        self.output = bytearray()

    def read(self, port: int, size: int) -> int:
        if port == self.base:
            return self.input.pop(0) if self.input else 0
        if port == self.base + 4:
            return len(self.output)
        return 0xFF

    def write(self, port: int, size: int, value: int) -> None:
        if port == self.base:
            self.output.append(value)
            sys.stdout.write(chr(value))
            sys.stdout.flush()

    def attach(self, machine: libvx.Machine) -> libvx.Device:
        return machine.on_pio(self.base, 8, read=self.read, write=self.write)


def main() -> int:
    text = (sys.argv[1] if len(sys.argv) > 1 else "hello from a python device").encode()
    serial = SerialPort(text)
    with libvx.Machine() as m:
        m.map(0, 1 << 20)
        m.load_flat(0x1000, GUEST)
        serial.attach(m)
        vcpu = m.vcpu
        vcpu.set_mode("prot32", tables_gpa=0x10000)
        vcpu.regs.set(rip=0x1000, rsp=0x8000)
        exit = vcpu.run()
        print()
        print(f"{exit} on {m.accel}: the guest counted {vcpu.regs.rax} characters")
        return 0 if exit.reason == libvx.ExitReason.HLT and serial.output == text.upper() else 1


if __name__ == "__main__":
    sys.exit(main())
