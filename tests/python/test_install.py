"""`cmake --install` puts the package where the interpreter imports it: installed into a
temporary prefix, the package is imported from <prefix>/<HIPPO_PYTHON_INSTALL_DIR> by a fresh
interpreter that does not see build/python, and runs."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import pyhelpers


class InstallTest(unittest.TestCase):
    def test_install_and_import(self):
        build = os.path.abspath(pyhelpers.BUILD_DIR)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            site = re.search(r"^HIPPO_PYTHON_INSTALL_DIR:\w+=(.*)$", f.read(), re.M).group(1)
        with tempfile.TemporaryDirectory() as prefix:
            r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            where = site if os.path.isabs(site) else os.path.join(prefix, site)
            self.assertTrue(os.path.exists(os.path.join(where, "hippo", "__init__.py")), where)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env["PYTHONPATH"] = where
            code = ("import hippo, hippo.ops, torch; print(hippo.__file__); "
                    "print(hippo.ops.fftconv(torch.ones(1, 1, 3), torch.ones(1, 3), torch.zeros(1)).tolist())")
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=env, cwd=prefix)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(where), r.stdout)
            self.assertIn("[[[1.0, 2.0, 3.0]]]", r.stdout)
        # The default install folder is the interpreter's own site-packages (Debian: the
        # dist-packages of /usr/local, on sys.path) when it lies under the default prefix.
        print(f"  HIPPO_PYTHON_INSTALL_DIR = {site}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
