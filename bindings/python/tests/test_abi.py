"""The binding against the C headers: every public function is declared and
used, and every structure and constant matches what a C compiler makes of
include/libvx/*.h. A new public call in a header fails this test until the
binding wraps it."""

from __future__ import annotations

import ctypes
import glob
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

from vxtest import PACKAGE_DIR, source_tree

import libvx
from libvx import _native

INCLUDE = os.path.join(source_tree(), "include")
HEADERS = sorted(glob.glob(os.path.join(INCLUDE, "libvx", "*.h")))

# C constant -> the binding's value
CONSTANTS = {
    "VX_PAGE_SIZE": libvx.PAGE_SIZE,
    "VX_MAX_VCPUS": libvx.MAX_VCPUS,
    "VX_MEM_READ": libvx.MEM_READ,
    "VX_MEM_WRITE": libvx.MEM_WRITE,
    "VX_MEM_EXEC": libvx.MEM_EXEC,
    "VX_MEM_RWX": libvx.MEM_RWX,
    "VX_MACHINE_USER_ONLY": libvx.MACHINE_USER_ONLY,
    "VX_MACHINE_IGNORE_UNCLAIMED_IO": libvx.MACHINE_IGNORE_UNCLAIMED_IO,
    "VX_ACCEL_AUTO": libvx.Accel.AUTO,
    "VX_ACCEL_KVM": libvx.Accel.KVM,
    "VX_ACCEL_TCG": libvx.Accel.TCG,
    "VX_ARCH_X86_64": 1,
    "VX_MODE_REAL": libvx.Mode.REAL,
    "VX_MODE_PROT32": libvx.Mode.PROT32,
    "VX_MODE_LONG64": libvx.Mode.LONG64,
    "VX_X86_MODE_TABLES_SIZE": libvx.x86.MODE_TABLES_SIZE,
    "VX_X86_SEL_CODE64": libvx.x86.SEL_CODE64,
    "VX_X86_SEL_DATA": libvx.x86.SEL_DATA,
    "VX_X86_SEL_CODE32": libvx.x86.SEL_CODE32,
    "VX_X86_SEL_USER_CODE32": libvx.x86.SEL_USER_CODE32,
    "VX_X86_SEL_USER_DATA": libvx.x86.SEL_USER_DATA,
    "VX_X86_SEL_USER_CODE64": libvx.x86.SEL_USER_CODE64,
    "VX_X86_SEL_TSS": libvx.x86.SEL_TSS,
    "VX_SHUTDOWN_TRIPLE_FAULT": libvx.ShutdownKind.TRIPLE_FAULT,
    "VX_SHUTDOWN_RESET": libvx.ShutdownKind.RESET,
    "VX_SHUTDOWN_POWEROFF": libvx.ShutdownKind.POWEROFF,
    "VX_PC_DISK_READONLY": libvx.machine.DISK_READONLY,
    "VX_PC_VIRTIO_CONSOLE": libvx.machine.PC_VIRTIO_CONSOLE,
    "VX_PC_MAX_DISKS": libvx.machine.PC_MAX_DISKS,
}
CONSTANTS.update({f"VX_EXIT_{r.name}": int(r) for r in libvx.ExitReason})
CONSTANTS.update({name: getattr(libvx.errors, name[3:])
                  for name in ("VX_OK", "VX_EINVAL", "VX_ENOMEM", "VX_ENOTSUP", "VX_EEXIST",
                               "VX_ENOENT", "VX_EBUSY", "VX_EACCEL", "VX_EIO", "VX_ECORRUPT",
                               "VX_ERANGE")})


def header_functions() -> set:
    names = set()
    for path in HEADERS:
        with open(path) as f:
            text = f.read()
        names.update(re.findall(r"\bVX_API\b[^;{]*?\b(vx_\w+)\s*\(", text))
    return names


def package_source() -> str:
    out = []
    for path in glob.glob(os.path.join(PACKAGE_DIR, "libvx", "*.py")):
        with open(path) as f:
            out.append(f.read())
    return "\n".join(out)


def layout(struct, prefix=""):
    """(C member designator, offset, size) of every leaf field."""
    for name, ctype in struct._fields_:
        field = getattr(struct, name)
        path = f"{prefix}{name}"
        if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
            for sub, off, size in layout(ctype, path + "."):
                yield sub, field.offset + off, size
        else:
            yield path, field.offset, field.size


@unittest.skipUnless(HEADERS, f"no headers in {INCLUDE}")
class Headers(unittest.TestCase):
    def test_every_function_declared(self):
        declared = header_functions()
        self.assertGreater(len(declared), 30)
        missing = declared - set(_native.PROTOTYPES)
        self.assertFalse(missing, f"public functions the binding does not declare: {sorted(missing)}")
        extra = set(_native.PROTOTYPES) - declared - set(_native.OPTIONAL)
        self.assertFalse(extra, f"declared but in no header: {sorted(extra)}")

    def test_every_function_used(self):
        source = package_source()
        unused = sorted(n for n in _native.PROTOTYPES if not re.search(rf"\.{n}\(", source))
        self.assertFalse(unused, f"declared but never called by the binding: {unused}")

    def test_every_function_in_the_library(self):
        lib = _native.lib()
        for name in _native.PROTOTYPES:
            if name not in _native.OPTIONAL:
                self.assertTrue(hasattr(lib, name), name)

    def test_layouts_and_constants(self):
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            self.skipTest("no C compiler to check structure layouts against")
        lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <libvx/vx.h>",
                 "#include <libvx/pc.h>", "int main(void) {"]
        expect = {}
        for cname, struct in _native.STRUCTS.items():
            lines.append(f'printf("sizeof {cname} %zu\\n", sizeof({cname}));')
            expect[f"sizeof {cname}"] = ctypes.sizeof(struct)
            for member, off, size in layout(struct):
                key = f"{cname}.{member}"
                lines.append(f'printf("offset {key} %zu\\n", offsetof({cname}, {member}));')
                lines.append(f'printf("size {key} %zu\\n", sizeof((({cname} *)0)->{member}));')
                expect[f"offset {key}"] = off
                expect[f"size {key}"] = size
        for name, value in CONSTANTS.items():
            lines.append(f'printf("const {name} %lld\\n", (long long)({name}));')
            expect[f"const {name}"] = int(value)
        lines += ["return 0;", "}"]
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "layout.c")
            exe = os.path.join(tmp, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines) + "\n")
            cmd = shlex.split(cc) + ["-std=c11", "-I", INCLUDE, "-o", exe, src]
            r = subprocess.run(cmd, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{' '.join(cmd)}:\n{r.stderr}")
            out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
        got = {}
        for line in out.splitlines():
            key, _, value = line.rpartition(" ")
            got[key] = int(value)
        mismatches = [f"{k}: C {got.get(k)}, Python {v}" for k, v in expect.items() if got.get(k) != v]
        self.assertFalse(mismatches, "\n".join(mismatches))


if __name__ == "__main__":
    unittest.main()
