"""examples/python/*.py run, and say what they should: an example that does
not work is a bug. They use accel="auto" (VX_ACCEL overrides it)."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

from vxtest import PACKAGE_DIR, source_tree

import libvx

EXAMPLES = os.path.join(source_tree(), "examples", "python")


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], env=env,
                          capture_output=True, text=True, timeout=120)


@unittest.skipUnless(os.path.isdir(EXAMPLES), f"no {EXAMPLES}")
class Examples(unittest.TestCase):
    def setUp(self):
        if not libvx.accel_available("auto"):
            self.skipTest("no accelerator available: " + libvx.last_error())

    def test_run_code(self):
        r = run_example("run_code.py")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "<Exit hlt> rax = 0x2b\n")
        # mov eax, 0x1234; hlt
        r = run_example("run_code.py", "b834120000f4")
        self.assertEqual(r.stdout, "<Exit hlt> rax = 0x1234\n", r.stderr)

    def test_pio_device(self):
        r = run_example("pio_device.py", "Python devices!")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "PYTHON DEVICES!")
        self.assertRegex(lines[1], r"^<Exit hlt> on (kvm|tcg): the guest counted 15 characters$")


if __name__ == "__main__":
    unittest.main()
