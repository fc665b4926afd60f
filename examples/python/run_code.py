#!/usr/bin/env python3
"""Run x86-64 machine code in a VM and print rax. Usage: run_code.py [HEX]"""
import sys

import libvx

code = bytes.fromhex(sys.argv[1] if len(sys.argv) > 1 else "48c7c02a000000 4883c001 f4")
with libvx.Machine() as m:                     # mov rax, 42; add rax, 1; hlt
    m.map(0, 1 << 20)                          # 1 MiB of RAM at guest-physical 0
    m.load_flat(0x1000, code)
    m.vcpu.set_mode("long64", tables_gpa=0x10000)
    m.vcpu.regs.set(rip=0x1000, rsp=0x8000)
    print(m.vcpu.run(), "rax =", hex(m.vcpu.regs.rax))
