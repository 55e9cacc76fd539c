"""Issue 16: `hippo bench prefill` runs the chunked prefill of each model kind at each length and
writes one CSV row per (model, length); the Transformer stops at --transformer-max; bad options
are refused by name."""
import csv
import os
import re
import subprocess
import tempfile

import refcommon
from refcommon import RefTestCase


class BenchPrefillTest(RefTestCase):
    def run_hippo(self, *args):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        return subprocess.run([refcommon.ARGS.hippo_bin, "bench", "prefill", *args],
                              capture_output=True, timeout=300, env=env)

    def test_rows_and_refusals(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "p.csv")
            r = self.run_hippo("--small", "--lengths", "300", "2000", "--chunk", "256",
                               "--transformer-max", "1000", "--csv", out)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
            with open(out) as f:
                rows = list(csv.DictReader(f))
            got = [(r["model"], int(r["length"])) for r in rows]
            self.assertEqual(got, [("h3", 300), ("h3", 2000), ("hybrid", 300), ("hybrid", 2000),
                                   ("transformer", 300)])
            for row in rows:
                self.assertEqual(int(row["chunk"]), 256)
                self.assertGreater(float(row["tokens_per_s_cpu"]), 0)
                self.assertGreater(float(row["peak_rss_mb"]), 0)
            # --repeat alternates the models and writes one row of medians per (model, length).
            r = self.run_hippo("--small", "--lengths", "300", "--repeat", "3",
                               "--models", "h3", "transformer", "--csv", out)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
            with open(out) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual([(r["model"], int(r["repeats"])) for r in rows],
                             [("h3", 3), ("transformer", 3)])
            log = r.stdout.decode()
            rounds = re.findall(r"^h3 +300 +\d+ +(\d+) ", log, re.M)  # model length chunk rep
            self.assertEqual(rounds, ["0", "1", "2"])
            self.assertIn("vs transformer", log)
        for args, name in [(["--models", "rnn"], "--models"), (["--lengths", "0"], "--lengths"),
                           (["--chunk", "-1"], "--chunk"), (["--repeat", "0"], "--repeat")]:
            r = self.run_hippo("--small", *args)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(name, r.stderr.decode(errors="replace"))


if __name__ == "__main__":
    refcommon.main()
