"""Sizing the synthetic tasks from the command line (issue 17): `--vocab`, `--seq-len` and
`--pairs` reach `hippo train -d synthetic:TASK` and `hippo synth`, the third task `mqar` trains,
and impossible sizes are refused with the option's name before any run starts. Only the hippo
binary is needed."""
import argparse
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HIPPO = None  # --hippo-bin

TINY = {"vocab_size": 40, "d_model": 16, "n_layer": 2, "d_state": 8, "attn_heads": 2,
        "layers": ["h3", "h3"]}


class SynthTasks(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg = os.path.join(self.dir, "tiny.json")
        with open(self.cfg, "w") as f:
            json.dump(TINY, f)

    def tearDown(self):
        self.tmp.cleanup()

    def hippo(self, *args):
        return subprocess.run([HIPPO, *args], capture_output=True, text=True, timeout=300)

    def refused(self, r, *words):
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_train_mqar_with_sizes(self):
        out = os.path.join(self.dir, "run")
        r = self.hippo("train", "-c", self.cfg, "-d", "synthetic:mqar", "--vocab", "40", "--pairs", "4",
                       "-L", "24", "-n", "3", "-b", "4", "-t", "1", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("test acc", r.stdout)
        with open(os.path.join(out, "checkpoint.safetensors"), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            meta = json.loads(f.read(n))["__metadata__"]
        # The sizes are run settings: a resume with other sizes is refused.
        self.assertIn("vocab 40, seq-len 24, pairs 4", json.dumps(meta))
        r = self.hippo("train", "-c", self.cfg, "-d", "synthetic:mqar", "--vocab", "40", "--pairs", "5",
                       "-L", "24", "-n", "4", "-b", "4", "-t", "1", "-o", out, "--resume")
        self.refused(r, "pairs 4")

    def test_train_refuses_sizes_that_do_not_fit(self):
        cases = [
            (["-d", "synthetic:induction_head", "--pairs", "3"], "--pairs applies to associative_recall"),
            (["-d", "synthetic:mqar", "--pairs", "8", "-L", "20"], "--seq-len >= 32"),
            (["-d", "synthetic:mqar", "--vocab", "10", "--pairs", "8"], "--vocab must be at least 18"),
            (["-d", "synthetic:associative_recall", "--pairs", "9", "-L", "12"], "--seq-len >= 21"),
            (["-d", "synthetic:copying"], "mqar"),  # the message lists the tasks
            (["--vocab", "30"], "size a synthetic task"),  # text data
        ]
        for extra, msg in cases:
            with self.subTest(extra=extra):
                self.refused(self.hippo("train", "-c", self.cfg, "-n", "1", "-t", "1", *extra), msg)

    def test_synth_run_is_one_thread(self):
        # -t counts runs in parallel; each run is one thread (deterministic, and no spinning
        # OpenMP workers competing with the other runs). With -t 1 the outer team is not an
        # active level, so the kernels inside used to open regions of every core. The process's
        # thread count is sampled while it trains, without OMP_NUM_THREADS, as users run it.
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        out = os.path.join(self.dir, "one_thread")
        p = subprocess.Popen([HIPPO, "synth", "--tasks", "induction_head", "--models", "attention", "--seeds", "1",
                              "-n", "200", "--eval-every", "50", "--n-train", "256", "--n-test", "64", "-t", "1",
                              "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        most = 0
        while p.poll() is None:
            try:
                most = max(most, len(os.listdir(f"/proc/{p.pid}/task")))
            except FileNotFoundError:
                break
            time.sleep(0.02)
        _, err = p.communicate()
        self.assertEqual(p.returncode, 0, err)
        self.assertGreaterEqual(most, 1, "the run ended before its threads could be counted")
        self.assertEqual(most, 1)

    def test_synth_study_at_other_sizes(self):
        out = os.path.join(self.dir, "study")
        r = self.hippo("synth", "--tasks", "mqar", "associative_recall", "--models", "h3", "--seeds", "1",
                       "-n", "2", "--eval-every", "1", "--d-model", "16", "--layers", "1",
                       "--n-train", "16", "--n-test", "4", "--vocab", "30", "--seq-len", "40", "--pairs", "5",
                       "--dropout", "0.1", "-t", "1", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "summary.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(sorted(x["task"] for x in rows), ["associative_recall", "mqar"])
        with open(os.path.join(out, "table.md")) as f:
            table = f.read()
        self.assertIn("vocab 30", table)
        self.assertIn("length 40", table)
        self.assertIn("dropout 0.1", table)
        bad = self.hippo("synth", "--tasks", "induction_head", "--pairs", "2", "-o", os.path.join(self.dir, "no"))
        self.refused(bad, "--pairs applies to")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))
        bad = self.hippo("synth", "--dropout", "1", "-o", os.path.join(self.dir, "no"))
        self.refused(bad, "--dropout must be in [0, 1)")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))

    def test_length_generalisation(self):
        # --test-lengths tests every trained run at other lengths: one row per run and length, and
        # at the training length the study's own test set, so that column equals the summary.
        out = os.path.join(self.dir, "lengths")
        r = self.hippo("synth", "--tasks", "induction_head", "--models", "h3", "attention", "--seeds", "1",
                       "-n", "3", "--eval-every", "0", "--d-model", "16", "--layers", "1", "--n-train", "16",
                       "--n-test", "8", "--seq-len", "16", "--test-lengths", "16,40", "-t", "1", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "lengths.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(sorted((x["model"], x["test_len"]) for x in rows),
                         [("attention", "16"), ("attention", "40"), ("h3", "16"), ("h3", "40")])
        with open(os.path.join(out, "summary.csv")) as f:
            acc = {x["model"]: float(x["acc_mean"]) for x in csv.DictReader(f)}
        for x in rows:
            self.assertEqual(x["train_len"], "16")
            a = float(x["test_acc"])
            self.assertTrue(0.0 <= a <= 1.0, x)
            if x["test_len"] == "16":
                self.assertAlmostEqual(100 * a, acc[x["model"]], places=3)
        with open(os.path.join(out, "table.md")) as f:
            table = f.read()
        self.assertIn("Length generalisation", table)
        self.assertIn("| task | model | 16 | 40 |", table)
        for args, message in [(["--seq-len", "16", "--attn-positions", "learned", "--test-lengths", "40"],
                                "need --attn-positions rotary"),
                               (["--seq-len", "16", "--test-lengths", "0"], "--test-lengths must be in"),
                               (["--tasks", "mqar", "--seq-len", "64", "--test-lengths", "20"], "need --seq-len >= 32")]:
            bad = self.hippo("synth", *args, "-o", os.path.join(self.dir, "no"))
            self.refused(bad, message)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))

    def test_length_curriculum(self):
        # --curriculum: a run that solves its task trains on at each longer length in turn, within
        # the stage budget, and stops after the first length it does not solve. This tiny study
        # (vocab 4, length 8, lr 0.01) solves length 8 and 12 and not 16 in its 3-step stages.
        out = os.path.join(self.dir, "curriculum")
        r = self.hippo("synth", "--tasks", "induction_head", "--models", "h3", "--seeds", "1", "-n", "200",
                       "--lr", "0.01", "--eval-every", "10", "--d-model", "16", "--layers", "1", "--n-train", "64",
                       "--n-test", "4", "--vocab", "4", "--seq-len", "8", "--curriculum", "12,16,20",
                       "--curriculum-steps", "3", "-t", "1", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "summary.csv")) as f:
            self.assertEqual(float(next(csv.DictReader(f))["acc_mean"]), 100.0)
        with open(os.path.join(out, "curriculum.csv")) as f:
            rows = list(csv.DictReader(f))
        lengths = [int(x["seq_len"]) for x in rows]
        self.assertEqual(lengths[0], 12)
        self.assertNotIn(20, lengths[:-1])  # nothing after an unsolved stage
        for x in rows[:-1]:
            self.assertEqual(float(x["test_acc"]), 1.0, x)
        for x in rows:
            self.assertTrue(1 <= int(x["steps"]) <= 3, x)
        last = rows[-1]
        if float(last["test_acc"]) < 1.0:
            self.assertEqual(int(last["steps"]), 3)  # an unsolved stage used its whole budget
        with open(os.path.join(out, "table.md")) as f:
            table = f.read()
        self.assertIn("| induction_head | h3 | 8: 100.0 |", table)
        self.assertIn("Length curriculum", table)
        for args, message in [(["--seq-len", "16", "--curriculum", "16"], "--curriculum lengths must grow"),
                              (["--seq-len", "16", "--curriculum", "32,24"], "--curriculum lengths must grow"),
                              (["--seq-len", "16", "--attn-positions", "learned", "--curriculum", "32"],
                               "--curriculum needs --attn-positions rotary"),
                              (["--curriculum-steps", "-1"], "--curriculum-steps")]:
            bad = self.hippo("synth", *args, "-o", os.path.join(self.dir, "no"))
            self.refused(bad, message)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))

    def study_steps(self, name, *extra):
        """Runs a 1-seed associative-recall study of attention and H3; returns the steps each ran
        (evaluation only at the end, so no run stops early) and the table."""
        out = os.path.join(self.dir, name)
        r = self.hippo("synth", "--tasks", "associative_recall", "--models", "attention", "h3", "--seeds", "1",
                       "--eval-every", "0", "--d-model", "16", "--layers", "1", "--n-train", "16",
                       "--n-test", "4", "-t", "1", "-o", out, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "summary.csv")) as f:
            steps = {x["model"]: float(x["steps_mean"]) for x in csv.DictReader(f)}
        with open(os.path.join(out, "table.md")) as f:
            return steps, f.read()

    def test_attention_has_its_own_budget_and_lr(self):
        # The study gives attention a budget and lr of its own; -n / --lr alone mean every model,
        # --attn-steps / --attn-lr set attention's.
        steps, table = self.study_steps("own", "-n", "2", "--attn-steps", "3", "--lr", "0.002",
                                        "--attn-lr", "0.0005")
        self.assertEqual(steps, {"attention": 3.0, "h3": 2.0})
        self.assertIn("attention up to 3 steps", table)
        self.assertIn("AdamW lr 0.002 (attention 0.0005)", table)
        steps, table = self.study_steps("same", "-n", "2", "--lr", "0.002")
        self.assertEqual(steps, {"attention": 2.0, "h3": 2.0})
        self.assertIn("the same for every model", table)
        self.assertIn("AdamW lr 0.002 (SSM", table)
        for extra, msg in [(["--attn-lr", "-1"], "--attn-lr must be"), (["--attn-steps", "-2"], "--attn-steps")]:
            with self.subTest(extra=extra):
                self.refused(self.hippo("synth", *extra, "-o", os.path.join(self.dir, "no")), msg)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "no")))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-bin")  # passed to every tests/ref file; unused here
    ap.add_argument("--hippo-bin", required=True)
    args, rest = ap.parse_known_args()
    HIPPO = os.path.abspath(args.hippo_bin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
