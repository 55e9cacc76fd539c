"""The harder table's collector (scripts/plot_synth_harder.py, issue 17): it reads the length
study's lengths.csv and the vocabulary studies' summary.csv files that scripts/synth_harder.sh
leaves, and writes harder.csv and table.md with the mean and spread over seeds. The inputs here
are written by the test with known numbers, so the expected means are computed by hand."""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "plot_synth_harder.py")


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


class SynthHarderTable(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_script(self):
        return subprocess.run([sys.executable, SCRIPT, self.out, "90"], capture_output=True, text=True, timeout=120)

    def test_means_over_seeds_per_length_and_vocabulary(self):
        write_csv(os.path.join(self.out, "ih", "lengths.csv"),
                  ["task", "model", "seed", "train_len", "test_len", "test_acc"],
                  [["induction_head", "h3", 0, 32, 32, 1.0], ["induction_head", "h3", 1, 32, 32, 0.5],
                   ["induction_head", "h3", 0, 32, 1024, 0.25], ["induction_head", "h3", 1, 32, 1024, 0.75],
                   ["induction_head", "s4d", 0, 32, 32, 0.1]])
        summary = ["task", "model", "params", "acc_mean", "acc_std", "steps_mean", "stopped_early",
                   "tokens_per_s", "vocab", "seq_len", "pairs"]
        write_csv(os.path.join(self.out, "cur", "summary.csv"), summary,
                  [["induction_head", "h3", 1, 100.0, 0, 2000, 1, 1, 20, 32, 0],
                   ["induction_head", "s4d", 1, 8.0, 0, 3000, 0, 1, 20, 32, 0]])
        write_csv(os.path.join(self.out, "cur", "curriculum.csv"),
                  ["task", "model", "seed", "seq_len", "steps", "test_acc"],
                  [["induction_head", "h3", 0, 64, 1500, 0.995], ["induction_head", "h3", 0, 128, 750, 0.5]])
        for vocab, acc in [(10, 99.0), (64, 12.5)]:
            write_csv(os.path.join(self.out, f"ar{vocab}", "summary.csv"), summary,
                      [["associative_recall", "h3", 1, acc, 0, 3000, 0, 1, vocab, 20, 8]])
        r = self.run_script()
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.out, "harder.csv")) as f:
            rows = {(x["task"], x["model"], x["axis"].split(" ")[0], int(x["x"])): x for x in csv.DictReader(f)}
        self.assertEqual(float(rows[("induction_head", "h3", "test", 32)]["acc_mean"]), 75.0)
        self.assertEqual(float(rows[("induction_head", "h3", "test", 32)]["acc_std"]), 25.0)
        self.assertEqual(float(rows[("induction_head", "h3", "test", 1024)]["acc_mean"]), 50.0)
        self.assertEqual(int(rows[("induction_head", "h3", "test", 1024)]["n"]), 2)
        self.assertEqual(float(rows[("associative_recall", "h3", "vocabulary", 64)]["acc_mean"]), 12.5)
        self.assertEqual(len(rows), 9)
        with open(os.path.join(self.out, "harder.csv")) as f:
            cur = {(x["model"], int(x["x"])): float(x["acc_mean"]) for x in csv.DictReader(f)
                   if x["axis"].startswith("length, trained")}
        self.assertEqual(cur, {("h3", 32): 100.0, ("h3", 64): 99.5, ("h3", 128): 50.0, ("s4d", 32): 8.0})
        with open(os.path.join(self.out, "table.md")) as f:
            table = f.read()
        self.assertIn("test length (trained at 32)", table)
        self.assertIn("| h3 | 75.0 | 50.0 |", table)
        self.assertIn("| s4d | 10.0 |  |", table)
        self.assertIn("vocabulary (length 20, 8 pairs)", table)
        self.assertIn("| h3 | 99.0 | 12.5 |", table)
        self.assertIn("Wall time 1.5 min", table)
        self.assertIn("| h3 | 100.0 | 99.5 | 50.0 |", table)
        self.assertIn("| s4d | 8.0 |  |  |", table)
        self.assertTrue(os.path.getsize(os.path.join(self.out, "harder.png")) > 0)

    def test_refuses_a_folder_without_studies(self):
        r = self.run_script()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no */lengths.csv, */curriculum.csv", r.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-bin")
    ap.add_argument("--hippo-bin")
    args, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
