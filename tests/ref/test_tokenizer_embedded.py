"""A model file carries its tokenizer (src/data/tokenizer.h), driven through the real binary:
a model trained with the GPT-2 tokenizer, copied away and run from a folder without
data/gpt2, generates and tokenizes exactly as with the vocabulary folder given explicitly; a
damaged embedded vocabulary is refused naming the file and the key; a file in the older form
("gpt2:DIR", relative to the working directory) still loads where DIR is, and elsewhere fails
naming the file; `hippo convert --tokenizer` embeds the vocabulary the same way."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refcommon  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPT2 = os.environ.get("HIPPO_GPT2_DIR") or os.path.join(REPO, "data", "gpt2")
HAVE_GPT2 = all(os.path.isfile(os.path.join(GPT2, f)) for f in ("encoder.json", "vocab.bpe"))
TEXT = ("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
        "election produced no evidence that any irregularities took place. ") * 40


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


def rewrite_metadata(src, dst, edit):
    """Copies src to dst with edit(metadata) applied to its header (tensors unchanged)."""
    header, start = read_header(src)
    edit(header["__metadata__"])
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(src, "rb") as f, open(dst, "wb") as out:
        f.seek(start)
        out.write(struct.pack("<Q", len(h)) + h + f.read())


@unittest.skipUnless(HAVE_GPT2, f"{GPT2} missing: run scripts/get_gpt2_vocab.sh")
class EmbeddedTokenizerCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        os.makedirs(os.path.join(d, "corpus"))
        with open(os.path.join(d, "corpus", "a.txt"), "w") as f:
            f.write(TEXT)
        with open(os.path.join(d, "cfg.json"), "w") as f:
            json.dump({"vocab_size": 50257, "d_model": 16, "n_layer": 2, "d_state": 8,
                       "attn_heads": 2, "layers": ["h3", "attention"]}, f)
        r = cls.hippo(REPO, "train", "-c", os.path.join(d, "cfg.json"), "-d", os.path.join(d, "corpus"),
                      "--tokenizer", "gpt2:" + GPT2, "--cache-dir", os.path.join(d, "cache"),
                      "-n", "4", "-b", "2", "-L", "32", "-t", "1", "--eval-tokens", "64", "-q",
                      "-o", os.path.join(d, "run"))
        assert r.returncode == 0, r.stderr
        # The model alone, in a folder with no data/ beside it.
        cls.elsewhere = os.path.join(d, "elsewhere")
        os.makedirs(cls.elsewhere)
        cls.model = os.path.join(cls.elsewhere, "m.safetensors")
        shutil.copy(os.path.join(d, "run", "model.safetensors"), cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @staticmethod
    def hippo(cwd, *args, stdin=None):
        return subprocess.run([refcommon.ARGS.hippo_bin, *args], cwd=cwd, input=stdin,
                              capture_output=True, text=True)

    def generate(self, cwd, model, *extra):
        return self.hippo(cwd, "generate", "-m", model, "-t", "1", "-p", "The jury said", "-n", "12",
                          "--temp", "0.8", "-s", "7", *extra)

    def test_metadata_holds_the_vocabulary_texts(self):
        meta = read_header(self.model)[0]["__metadata__"]
        self.assertEqual(meta["tokenizer"], "gpt2-bpe")
        for key, name in (("tokenizer.encoder_json", "encoder.json"), ("tokenizer.vocab_bpe", "vocab.bpe")):
            with open(os.path.join(GPT2, name), encoding="utf-8") as f:
                self.assertEqual(meta[key], f.read(), key)
        self.assertTrue(meta["tokenizer.id"].startswith("gpt2-bpe:"))

    def test_runs_from_another_folder_exactly_as_with_the_vocabulary(self):
        self.assertFalse(os.path.exists(os.path.join(self.elsewhere, "data")))
        there = self.generate(self.elsewhere, "m.safetensors")
        self.assertEqual(there.returncode, 0, there.stderr)
        explicit = self.generate(REPO, self.model, "--tokenizer", "gpt2:" + GPT2)
        self.assertEqual(explicit.returncode, 0, explicit.stderr)
        self.assertEqual(there.stdout, explicit.stdout)
        self.assertGreater(len(there.stdout), len("The jury said\n"))
        # The model's tokenizer in `hippo tokenize -m`, both ways.
        enc = self.hippo(self.elsewhere, "tokenize", "-m", "m.safetensors", stdin=TEXT[:300])
        ref = self.hippo(REPO, "tokenize", "--tokenizer", "gpt2:" + GPT2, stdin=TEXT[:300])
        self.assertEqual(enc.returncode, 0, enc.stderr)
        self.assertEqual(enc.stdout, ref.stdout)
        dec = self.hippo(self.elsewhere, "tokenize", "-m", "m.safetensors", "--decode", stdin=enc.stdout)
        self.assertEqual(dec.stdout, TEXT[:300])
        ev = self.hippo(self.elsewhere, "eval", "-m", "m.safetensors", "-d", os.path.join(self.tmp.name, "corpus"),
                        "--cache-dir", "c", "-t", "1", "-L", "32")
        self.assertEqual(ev.returncode, 0, ev.stderr)

    def test_damaged_vocabulary_is_refused_naming_file_and_key(self):
        bad = os.path.join(self.elsewhere, "bad.safetensors")

        def swap_two_ids(meta):
            enc = json.loads(meta["tokenizer.encoder_json"])
            enc["the"], enc["The"] = enc["The"], enc["the"]
            meta["tokenizer.encoder_json"] = json.dumps(enc)

        for edit, needle in ((swap_two_ids, "bad.safetensors: __metadata__.tokenizer.id"),
                             (lambda m: m.update({"tokenizer.encoder_json": "{"}),
                              "bad.safetensors: __metadata__.tokenizer.encoder_json: not valid JSON")):
            rewrite_metadata(self.model, bad, edit)
            for args in (("generate", "-m", "bad.safetensors", "-p", "x", "-n", "1", "-t", "1"),
                         ("tokenize", "-m", "bad.safetensors")):
                r = self.hippo(self.elsewhere, *args, stdin="x")
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertTrue(r.stderr.startswith("hippo: error: "), r.stderr)

    def test_older_files_with_a_folder_spec(self):
        old = os.path.join(self.elsewhere, "old.safetensors")

        def legacy(meta):
            for k in ("tokenizer.encoder_json", "tokenizer.vocab_bpe", "tokenizer.id"):
                del meta[k]
            meta["tokenizer"] = "gpt2:data/gpt2"

        rewrite_metadata(self.model, old, legacy)
        if os.path.realpath(GPT2) == os.path.realpath(os.path.join(REPO, "data", "gpt2")):
            here = self.generate(REPO, old)
            self.assertEqual(here.returncode, 0, here.stderr)
            self.assertEqual(here.stdout, self.generate(self.elsewhere, "m.safetensors").stdout)
        r = self.generate(self.elsewhere, "old.safetensors")
        self.assertEqual(r.returncode, 1)
        self.assertIn("old.safetensors: __metadata__.tokenizer is \"gpt2:data/gpt2\"", r.stderr)
        self.assertIn("older hippo", r.stderr)


@unittest.skipUnless(HAVE_GPT2, f"{GPT2} missing: run scripts/get_gpt2_vocab.sh")
class ConvertEmbedsTokenizer(unittest.TestCase):
    def test_convert_with_tokenizer_runs_from_another_folder(self):
        import torch
        from test_convert import build_model, released_state_dict
        cfg = {"vocab_size": 50257, "d_model": 32, "n_layer": 2, "d_state": 64, "attn_heads": 2,
               "layers": ["h3", "attention"]}
        with tempfile.TemporaryDirectory() as d:
            torch.save(released_state_dict(build_model(cfg, seed=3), cfg), os.path.join(d, "m.pt"))
            out = os.path.join(d, "m.safetensors")
            r = subprocess.run([refcommon.ARGS.hippo_bin, "convert", os.path.join(d, "m.pt"), out,
                                "--heads", "2", "--tokenizer", "gpt2:" + GPT2], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            meta = read_header(out)[0]["__metadata__"]
            self.assertEqual(meta["tokenizer"], "gpt2-bpe")
            with open(os.path.join(GPT2, "vocab.bpe"), encoding="utf-8") as f:
                self.assertEqual(meta["tokenizer.vocab_bpe"], f.read())
            gen = ["generate", "-t", "1", "-p", "Hello world", "-n", "6", "--temp", "0"]
            there = subprocess.run([refcommon.ARGS.hippo_bin, *gen, "-m", "m.safetensors"], cwd=d,
                                   capture_output=True, text=True)
            explicit = subprocess.run([refcommon.ARGS.hippo_bin, *gen, "-m", out, "--tokenizer", "gpt2:" + GPT2],
                                      capture_output=True, text=True)
            self.assertEqual(there.returncode, 0, there.stderr)
            self.assertEqual(there.stdout, explicit.stdout)
            # The id the converter computed is the one hippo computes (checked on load).
            self.assertIn(meta["tokenizer.id"], there.stderr)
            bad = subprocess.run([refcommon.ARGS.hippo_bin, "convert", os.path.join(d, "m.pt"),
                                  os.path.join(d, "n.safetensors"), "--heads", "2", "--tokenizer", "gpt2:/no/such"],
                                 capture_output=True, text=True)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("/no/such/encoder.json", bad.stderr)


if __name__ == "__main__":
    refcommon.main()
