#!/usr/bin/env python3
"""Write the seed corpus of fuzz/virtio.c (see its header for the format):
python3 fuzz/virtio-seeds.py fuzz/corpus/virtio"""
import os
import struct
import sys

BLK, CONSOLE, RO, SETUP = 0, 1, 2, 4
Q0, Q1 = 0x1000, 0x4000  # desc; avail +0x1000, used +0x2000 (setup op)


def ram(off, data):
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([0]) + struct.pack("<HB", off, len(chunk)) + chunk
        off += len(chunk)
    return out


def desc(table, i, addr, length, flags, nxt=0):
    return ram(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))


def avail(q, heads):
    return ram(q + 0x1000, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))


def bar_write(off, width, value):
    return bytes([1]) + struct.pack("<HBQ", off, {1: 0, 2: 1, 4: 2, 8: 3}[width], value)


def bar_read(off, width):
    return bytes([2]) + struct.pack("<HB", off, {1: 0, 2: 1, 4: 2, 8: 3}[width])


def notify(q):
    return bytes([3, q])


def blk_header(t, sector):
    return struct.pack("<IIQ", t, 0, sector)


NEXT, WRITE, INDIRECT = 1, 2, 4
seeds = {}

seeds["blk-read"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(0, 2)) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0x9000, 1024, NEXT | WRITE, 2) + \
    desc(Q0, 2, 0x9400, 1, WRITE) + avail(Q0, [0]) + notify(0) + bar_read(0x1000, 1)

seeds["blk-write-flush-getid"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(1, 5)) + \
    ram(0x8010, blk_header(4, 0)) + ram(0x8020, blk_header(8, 0)) + ram(0x9000, bytes(range(256)) * 2) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0x9000, 512, NEXT, 2) + desc(Q0, 2, 0x9400, 1, WRITE) + \
    desc(Q0, 3, 0x8010, 16, NEXT, 4) + desc(Q0, 4, 0x9401, 1, WRITE) + \
    desc(Q0, 5, 0x8020, 16, NEXT, 6) + desc(Q0, 6, 0x9500, 20, NEXT | WRITE, 7) + desc(Q0, 7, 0x9402, 1, WRITE) + \
    avail(Q0, [0, 3, 5]) + notify(0)

seeds["blk-readonly-out"] = bytes([BLK | RO | SETUP]) + ram(0x8000, blk_header(1, 0)) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0x9000, 512, NEXT, 2) + desc(Q0, 2, 0x9400, 1, WRITE) + \
    avail(Q0, [0]) + notify(0)

seeds["blk-out-of-range"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(0, 63)) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0x9000, 1024, NEXT | WRITE, 2) + desc(Q0, 2, 0x9400, 1, WRITE) + \
    avail(Q0, [0]) + notify(0)

seeds["blk-indirect"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(0, 1)) + \
    desc(0xa000, 0, 0x8000, 16, NEXT, 1) + desc(0xa000, 1, 0x9000, 512, NEXT | WRITE, 2) + \
    desc(0xa000, 2, 0x9400, 1, WRITE) + desc(Q0, 0, 0xa000, 48, INDIRECT) + avail(Q0, [0]) + notify(0)

seeds["blk-loop"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(0, 1)) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0x9000, 512, NEXT | WRITE, 0) + avail(Q0, [0]) + \
    notify(0) + bar_read(0x1000, 1) + bar_read(0x14, 1) + bytes([7])

seeds["blk-outside-ram"] = bytes([BLK | SETUP]) + ram(0x8000, blk_header(0, 1)) + \
    desc(Q0, 0, 0x8000, 16, NEXT, 1) + desc(Q0, 1, 0xff00, 512, NEXT | WRITE, 2) + \
    desc(Q0, 2, 0x20000, 1, WRITE) + avail(Q0, [0]) + notify(0)

# A driver's setup through the BAR, small queue, then an avail idx jump.
manual = bytes([BLK]) + bar_write(0x14, 1, 0) + bar_write(0x14, 1, 3) + \
    bar_write(0x08, 4, 0) + bar_write(0x0c, 4, 1 << 28) + bar_write(0x08, 4, 1) + bar_write(0x0c, 4, 1) + \
    bar_write(0x14, 1, 11) + bar_read(0x14, 1) + bar_write(0x16, 2, 0) + bar_write(0x18, 2, 8) + \
    bar_write(0x20, 8, Q0) + bar_write(0x28, 4, Q0 + 0x1000) + bar_write(0x30, 4, Q0 + 0x2000) + \
    bar_write(0x1c, 2, 1) + bar_write(0x14, 1, 15) + ram(Q0 + 0x1000, struct.pack("<HH", 0, 100)) + notify(0)
seeds["blk-manual-setup"] = manual

seeds["console-out"] = bytes([CONSOLE | SETUP]) + ram(0x8000, b"hello, world\n") + \
    desc(Q1, 0, 0x8000, 7, NEXT, 1) + desc(Q1, 1, 0x8007, 6, 0) + avail(Q1, [0]) + notify(1)

seeds["console-in"] = bytes([CONSOLE | SETUP]) + desc(Q0, 0, 0x8000, 4, WRITE) + \
    desc(Q0, 1, 0x8100, 64, WRITE) + avail(Q0, [0, 1]) + notify(0) + bytes([4, 10]) + b"0123456789" + \
    bar_read(0x1000, 1)

# The PCI_CFG window: bar 0, length 4, offset 4 (device_feature), then a status write.
seeds["pci-cfg-window"] = bytes([CONSOLE]) + bytes([5, 0x88, 2]) + struct.pack("<I", 0) + \
    bytes([5, 0x90, 2]) + struct.pack("<I", 1) + bytes([5, 0x8c, 2]) + struct.pack("<I", 0x14) + \
    bytes([5, 0x94, 2]) + struct.pack("<I", 1) + bytes([6, 1, 3, 3])

out = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/virtio"
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
