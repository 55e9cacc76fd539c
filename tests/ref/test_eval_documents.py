"""Issue 16 through the `hippo` binary: `hippo eval --seq-len 0` evaluates each document as one
sequence of its full length through the chunked path (LanguageModel::score, chunks forced small
with HIPPO_PREFILL_CHUNK) and equals the old whole-window path where both fit; every token after
the first is predicted once with several documents too; `--position-csv` writes bits per byte
by position, consistent with the totals; bad combinations are refused."""
import csv
import json
import math
import os
import re
import subprocess
import tempfile

import refcommon
from refcommon import RefTestCase, save_safetensors
from torch_h3 import LM, randomize_

CFG = {"vocab_size": 257, "d_model": 16, "n_layer": 3, "d_state": 8, "attn_heads": 2,
       "layers": ["h3", "attention", "s4d"]}
LINE = re.compile(r"([0-9]+) tokens  loss ([0-9.]+)  perplexity ([0-9.]+)  bits/byte ([0-9.]+)")


class EvalDocumentsTest(RefTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        model = LM(CFG)
        randomize_(model, scale=0.3, seed=2)
        self.model = self.path("m.safetensors")
        save_safetensors(self.model, dict(model.named_parameters()),
                         {"format": "hippo", "config": json.dumps(CFG), "tokenizer": "byte"})

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def eval(self, *args, chunk=None):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if chunk:
            env["HIPPO_PREFILL_CHUNK"] = str(chunk)
        return subprocess.run([refcommon.ARGS.hippo_bin, "eval", "-t", "1", "-m", self.model,
                               "--cache-dir", self.path("cache"), *args],
                              capture_output=True, timeout=300, env=env)

    def ok(self, r):
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        m = LINE.search(r.stdout.decode())
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1)), float(m.group(2)), float(m.group(4))

    def story(self, lines, seed=0):
        return "".join(f"Line {i + seed}: the cat sat on the mat number {i * 7 % 13}.\n"
                       for i in range(lines))

    def test_one_document_equals_the_whole_window_path(self):
        text = self.path("story.txt")
        with open(text, "w") as f:
            f.write(self.story(60))
        whole = self.ok(self.eval("-d", text, "--split", "train", "-L", "100000", "-b", "1"))
        for chunk in (37, 64, 100000):
            doc = self.ok(self.eval("-d", text, "--split", "train", "-L", "0", chunk=chunk))
            self.assertEqual(doc[0], whole[0])
            self.assertAlmostEqual(doc[1], whole[1], delta=1.5e-4)
            self.assertAlmostEqual(doc[2], whole[2], delta=1.5e-4)
        self.assertGreater(whole[0], 1000)

    def test_documents_and_position_csv(self):
        folder = self.path("docs")
        os.makedirs(folder)
        for k in range(12):
            with open(os.path.join(folder, f"d{k}.txt"), "w") as f:
                f.write(self.story(3 + 2 * k, seed=k))
        windows = self.ok(self.eval("-d", folder, "--split", "train", "-L", "64"))
        out = self.path("pos.csv")
        docs = self.ok(self.eval("-d", folder, "--split", "train", "-L", "0", "--position-csv", out,
                                 chunk=50))
        self.assertEqual(docs[0], windows[0])  # every token after the first, once
        with open(out) as f:
            rows = list(csv.DictReader(f))
        self.assertGreater(len(rows), 5)
        tokens = sum(int(r["tokens"]) for r in rows)
        nats = sum(float(r["loss"]) * int(r["tokens"]) for r in rows)
        nbytes = sum(int(r["bytes"]) for r in rows)
        self.assertEqual(tokens, docs[0])
        self.assertAlmostEqual(nats / tokens, docs[1], delta=2e-4)
        self.assertAlmostEqual(nats / math.log(2) / nbytes, docs[2], delta=2e-4)
        for i, r in enumerate(rows):
            self.assertEqual(int(r["position_first"]), 2 ** i)
            self.assertEqual(int(r["position_last"]), 2 ** (i + 1) - 1)

    def test_refusals(self):
        text = self.path("story.txt")
        with open(text, "w") as f:
            f.write(self.story(20))
        r = self.eval("-d", text, "-L", "64", "--position-csv", self.path("p.csv"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--position-csv needs --seq-len 0", r.stderr)
        r = self.eval("-d", text, "-L", "0", "--position-csv", self.model)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--position-csv", r.stderr)
        self.assertTrue(os.path.getsize(self.model) > 1000)


if __name__ == "__main__":
    refcommon.main()
