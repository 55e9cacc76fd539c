"""hippo.load / Model.forward / Session / Tokenizer from Python.

Model.forward (every position's logits, convolution mode) is checked against the PyTorch
reference model tests/ref/torch_h3.py (float64, a path that shares no code with hippo),
against the CLI (`hippo eval`'s per-position losses of a document) and against the engine's
Session path (prefill of a prompt, then one recurrent step per token);
sessions fork, save and load; bad input raises hippo.Error with a message.
"""
import csv
import json
import os
import subprocess
import tempfile
import unittest

import numpy as np
import torch

import pyhelpers
import refcommon  # tests/ref (pyhelpers puts it on the path)
from pyhelpers import HIPPO_BIN, HYBRID, rel_err, write_model

import hippo

TRANSFORMER = {"vocab_size": 257, "d_model": 32, "n_layer": 2, "attn_heads": 4, "rotary_dim": 4,
               "learned_pos": True, "max_position": 64, "layers": ["attention", "attention"]}


class ModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "m.safetensors")
        cls.ref = write_model(cls.path, HYBRID, seed=1)
        cls.m = hippo.load(cls.path)
        g = torch.Generator().manual_seed(0)
        cls.tokens = torch.randint(0, 257, (2, 40), generator=g).numpy().astype(np.int32)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_forward_equals_torch_reference(self):
        for cfg, seed in [(HYBRID, 1), (TRANSFORMER, 2)]:
            path = os.path.join(self.tmp.name, f"f{seed}.safetensors")
            ref = write_model(path, cfg, seed=seed)
            m = hippo.load(path)
            ours = m.forward(self.tokens)
            self.assertEqual(ours.dtype, np.float32)
            self.assertEqual(ours.shape, (2, 40, 257))
            with torch.no_grad():
                want = ref(torch.from_numpy(self.tokens).long())[..., :257]
            e = rel_err(ours, want)
            print(f"  forward vs torch_h3 {cfg['layers']}: rel err {e:.2e}")
            self.assertLess(e, 1e-4)

    def test_forward_equals_cli_eval(self):
        # The CLI path: `hippo eval --seq-len 0 --position-csv` scores one document through the
        # binary and writes the mean next-token loss per position bucket [2^i, 2^(i+1)) to 6
        # decimals. The same losses from forward's logits must agree. The engine's softmax
        # runs over the padded vocabulary (264 rows here; forward returns the 257 real ones),
        # so the padding rows are zeroed: their logits are then exactly 0.
        V = HYBRID["vocab_size"]
        path = os.path.join(self.tmp.name, "cli.safetensors")
        model = write_model(path, HYBRID, seed=4)
        with torch.no_grad():
            model.get_parameter("backbone.embeddings.word_embeddings.weight")[V:] = 0
        refcommon.save_safetensors(path, dict(model.named_parameters()),
                                   {"format": "hippo", "config": json.dumps(HYBRID),
                                    "tokenizer": "byte"})
        text = "".join(f"Line {i}: the cat sat on the mat number {i * 7 % 13}.\n"
                       for i in range(40))
        doc, out = os.path.join(self.tmp.name, "doc.txt"), os.path.join(self.tmp.name, "pos.csv")
        with open(doc, "w") as f:
            f.write(text)
        r = subprocess.run([pyhelpers.HIPPO_BIN, "eval", "-t", "1", "-m", path, "-d", doc,
                            "--split", "train", "-L", "0", "--position-csv", out,
                            "--cache-dir", os.path.join(self.tmp.name, "cache")],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            rows = list(csv.DictReader(f))
        m = hippo.load(path)
        ids = m.tokenizer.encode(text)  # the train split is a prefix of it (first ~90%)
        lg = m.forward(np.array(ids, np.int32)).astype(np.float64)
        pad = (V + 7) // 8 * 8 - V
        full = np.concatenate([lg, np.zeros(lg.shape[:-1] + (pad,))], -1)
        top = full.max(-1)
        lse = np.log(np.exp(full - top[:, None]).sum(-1)) + top
        nll = lse[:-1] - lg[np.arange(len(ids) - 1), ids[1:]]  # predicting token t+1 from t
        self.assertGreater(len(rows), 8)
        worst = 0.0
        for row in rows:
            first, n = int(row["position_first"]), int(row["tokens"])
            self.assertLessEqual(first - 1 + n, len(nll))
            worst = max(worst, abs(float(row["loss"]) - nll[first - 1:first - 1 + n].mean()))
        print(f"  hippo eval position CSV vs forward: worst difference {worst:.1e} "
              f"({sum(int(r['tokens']) for r in rows)} positions)")
        self.assertLess(worst, 5e-6)

    def test_prefill_and_steps_equal_forward(self):
        full = self.m.forward(self.tokens)
        for b in range(2):
            s = self.m.session()
            lg = s.prefill(self.tokens[b, :7])
            self.assertLess(rel_err(lg, full[b, 6]), 1e-4)
            self.assertLess(rel_err(s.logits(), full[b, 6]), 1e-4)
            worst = 0.0
            for t in range(7, 40):
                lg = s.step(int(self.tokens[b, t]))
                worst = max(worst, rel_err(lg, full[b, t]))
            print(f"  sequence {b}: steps vs forward, worst rel err {worst:.2e}")
            self.assertLess(worst, 1e-4)
            self.assertEqual(s.position, 40)

    def test_forward_one_sequence_and_any_integer_dtype(self):
        full = self.m.forward(self.tokens)
        one = self.m.forward(self.tokens[1].astype(np.int64))
        self.assertEqual(one.shape, (40, 257))
        np.testing.assert_allclose(one, full[1], rtol=0, atol=1e-5 * np.abs(full).max())
        lst = self.m.forward([list(map(int, self.tokens[0, :5]))])
        np.testing.assert_allclose(lst[0], full[0, :5], rtol=0, atol=1e-5 * np.abs(full).max())

    def test_config_and_tokenizer(self):
        cfg = self.m.config
        self.assertIsInstance(cfg, dict)
        self.assertEqual(cfg["d_model"], 32)
        self.assertEqual(self.m.vocab_size, 257)
        tok = self.m.tokenizer
        ids = tok.encode("The jury said")
        self.assertEqual(ids, list(b"The jury said"))
        self.assertEqual(tok.decode(ids), "The jury said")
        self.assertEqual(tok.decode(np.array(ids, np.int32)), "The jury said")
        self.assertEqual(tok.encode("a<|endoftext|>", special=True), [97, tok.eot_id])
        self.assertEqual(tok.decode_bytes([0xC3]), b"\xc3")
        self.assertEqual(tok.decode([0xC3]), "\ufffd")
        with self.assertRaisesRegex(hippo.Error, "outside"):
            tok.decode([1000])

    def test_fork_save_and_load_session(self):
        s = self.m.session()
        s.prefill(self.tokens[0, :10])
        t = s.fork()
        a, b = s.step(5), t.step(5)
        np.testing.assert_array_equal(a, b)
        path = os.path.join(self.tmp.name, "s.state")
        s.save(path)
        s2 = self.m.load_session(path)
        self.assertEqual(s2.position, 11)
        np.testing.assert_array_equal(s2.logits(), s.logits())
        np.testing.assert_array_equal(s2.step(7), s.step(7))
        s3 = self.m.session()
        s3.restore_bytes(s.save_bytes())
        np.testing.assert_array_equal(s3.step(9), s.step(9))

    def test_bf16_model_stays_bf16(self):
        out = os.path.join(self.tmp.name, "bf16.safetensors")
        pyhelpers.write_bf16_model(out, self.ref, HYBRID)
        m = hippo.load(out)
        self.assertTrue(m.bf16_weights)
        self.assertFalse(self.m.bf16_weights)
        e = rel_err(m.forward(self.tokens), self.m.forward(self.tokens))
        print(f"  bf16 vs fp32 forward: rel err {e:.2e}")
        self.assertGreater(e, 0)
        self.assertLess(e, 0.05)

    def test_kv_cache_option(self):
        # "auto": bf16 for a bf16 file, fp32 for an fp32 one; a session saved with one cache
        # dtype is refused by a model loaded with the other.
        out = os.path.join(self.tmp.name, "bf16kv.safetensors")
        pyhelpers.write_bf16_model(out, self.ref, HYBRID)
        self.assertEqual(hippo.load(out).kv_cache, "bf16")
        self.assertEqual(self.m.kv_cache, "fp32")
        m32 = hippo.load(out, kv_cache="fp32")
        self.assertEqual(m32.kv_cache, "fp32")
        s = hippo.load(out).session()
        s.prefill(self.tokens[0, :10])
        s3 = m32.session()
        with self.assertRaisesRegex(hippo.Error, "bf16 KV cache but the model runs a fp32"):
            s3.restore_bytes(s.save_bytes())
        with self.assertRaisesRegex(hippo.Error, "kv_cache must be"):
            hippo.load(out, kv_cache="f16")
        # q8: int8 keys and values; a session round-trips through bytes exactly.
        mq = hippo.load(out, kv_cache="q8")
        self.assertEqual(mq.kv_cache, "q8")
        sq = mq.session()
        sq.prefill(self.tokens[0, :10])
        sq2 = mq.session()
        sq2.restore_bytes(sq.save_bytes())
        np.testing.assert_array_equal(sq2.step(5), sq.step(5))
        sb = hippo.load(out).session()  # the same steps with the bf16 cache
        sb.prefill(self.tokens[0, :10])
        sb.step(5)
        e = rel_err(sq.step(7), sb.step(7))
        print(f"  q8 vs bf16 KV cache, logits: rel err {e:.2e}")
        self.assertGreater(e, 0)
        self.assertLess(e, 0.05)

    def test_q8_layout_option(self):
        # A q8 file (hippo convert) used where mapped ("rows") or copied into four interleaved
        # rows ("rows4"): the same bits from forward and from decoding steps.
        out = os.path.join(self.tmp.name, "q8.safetensors")
        subprocess.run([HIPPO_BIN, "convert", self.path, out, "--dtype", "q8"], check=True,
                       capture_output=True)
        rows, rows4 = hippo.load(out, q8_layout="rows"), hippo.load(out, q8_layout="rows4")
        self.assertEqual((rows.q8_layout, rows4.q8_layout), ("rows", "rows4"))
        self.assertIn(hippo.load(out).q8_layout, ("rows", "rows4"))
        self.assertEqual(self.m.q8_layout, "")  # no q8 weights
        np.testing.assert_array_equal(rows.forward(self.tokens), rows4.forward(self.tokens))
        a, b = rows.session(), rows4.session()
        a.prefill(self.tokens[0, :10])
        b.prefill(self.tokens[0, :10])
        for t in (3, 9, 200):
            np.testing.assert_array_equal(a.step(t), b.step(t))
        with self.assertRaisesRegex(hippo.Error, "q8_layout must be"):
            hippo.load(out, q8_layout="rows8")

    def test_bf16_layout_option(self):
        # A bf16 file used where mapped ("rows") or copied into eight interleaved rows
        # ("rows8"): the same bits from forward and from decoding steps.
        out = os.path.join(self.tmp.name, "bf16layout.safetensors")
        pyhelpers.write_bf16_model(out, self.ref, HYBRID)
        rows, rows8 = hippo.load(out, bf16_layout="rows"), hippo.load(out, bf16_layout="rows8")
        self.assertEqual((rows.bf16_layout, rows8.bf16_layout), ("rows", "rows8"))
        self.assertIn(hippo.load(out).bf16_layout, ("rows", "rows8"))
        self.assertEqual(self.m.bf16_layout, "")  # no bf16 weights
        np.testing.assert_array_equal(rows.forward(self.tokens), rows8.forward(self.tokens))
        a, b = rows.session(), rows8.session()
        a.prefill(self.tokens[0, :10])
        b.prefill(self.tokens[0, :10])
        for t in (3, 9, 200):
            np.testing.assert_array_equal(a.step(t), b.step(t))
        # Sessions name their weights by a fingerprint that does not depend on the order.
        b.restore_bytes(a.save_bytes())
        np.testing.assert_array_equal(a.step(5), b.step(5))
        with self.assertRaisesRegex(hippo.Error, "bf16_layout must be"):
            hippo.load(out, bf16_layout="rows4")

    def test_errors_are_hippo_errors(self):
        self.assertTrue(issubclass(hippo.Error, RuntimeError))
        bad = [
            (lambda: hippo.load(os.path.join(self.tmp.name, "missing.safetensors")), "missing"),
            (lambda: self.m.forward(self.tokens.astype(np.float32)), "integers"),
            (lambda: self.m.forward(np.zeros((1, 2, 3), np.int32)), "dimensions"),
            (lambda: self.m.forward(np.zeros((1, 0), np.int32)), "empty"),
            (lambda: self.m.forward(np.array([[1, 300]], np.int32)), "outside the vocabulary"),
            (lambda: self.m.forward(np.array([[1, 2**40]])), "does not fit int32"),
            (lambda: self.m.forward("text"), "string"),
            (lambda: self.m.session().prefill([]), "no tokens"),
            (lambda: self.m.session().step(-1), "outside the vocabulary"),
            (lambda: self.m.session().sample(), "no logits"),
            (lambda: self.m.session().save(os.path.join(self.tmp.name, "x.state")), "nothing to save"),
            (lambda: self.m.load_session(self.path), ""),
        ]
        for f, msg in bad:
            with self.assertRaisesRegex(hippo.Error, msg):
                f()
        path = os.path.join(self.tmp.name, "t.safetensors")
        write_model(path, TRANSFORMER, seed=3)
        with self.assertRaisesRegex(hippo.Error, "max_position"):
            hippo.load(path).forward(np.zeros((1, 65), np.int32))


if __name__ == "__main__":
    unittest.main(verbosity=2)
