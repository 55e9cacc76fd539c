"""The CLI (apps/) uses only the public headers (include/hippo/), CLI11 and the standard
library: every apps/*.cpp must compile with include/ as its only hippo include folder (and the
repository root, for apps/ itself), and name no src/ header. Needs a C++20 compiler."""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


class AppsUsePublicHeaders(unittest.TestCase):
    def sources(self):
        files = sorted(glob.glob(os.path.join(REPO, "apps", "*.cpp")) + glob.glob(os.path.join(REPO, "apps", "*.h")))
        self.assertTrue(files, "no apps/ sources found")
        return files

    def test_includes_name_only_public_or_apps_headers(self):
        for f in self.sources():
            with open(f) as fh:
                for n, line in enumerate(fh, 1):
                    m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
                    if m:
                        self.assertTrue(m.group(1).startswith(("hippo/", "apps/")),
                                        f"{os.path.relpath(f, REPO)}:{n} includes \"{m.group(1)}\", "
                                        "not a public header (include/hippo/)")

    @unittest.skipUnless(CXX, "no C++ compiler")
    def test_compiles_with_only_the_public_include_folder(self):
        procs = []
        for f in self.sources():
            if f.endswith(".cpp"):
                procs.append((f, subprocess.Popen(
                    [CXX, "-std=c++20", "-fsyntax-only", "-I", os.path.join(REPO, "include"), "-I", REPO,
                     '-DHIPPO_SOURCE_DIR="."', f], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        for f, p in procs:
            _, err = p.communicate()
            self.assertEqual(p.returncode, 0, f"{os.path.relpath(f, REPO)} needs more than include/:\n" + err[:3000])

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ref-bin")
    p.add_argument("--hippo-bin")
    _, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
