"""The training data pipeline (issue 15), through the real binary: token shards written by
`hippo tokenize --shards` hold exactly the corpus (checked against the file's bytes with the
byte tokenizer, an independent reference) and train bit for bit like the text they came from;
a JSONL file trains like the text file of its records joined by <|endoftext|>; --val-data
names the validation set; and bad input (a JSONL line that is not JSON, lacks "text", a shard
truncated, damaged or from another tokenizer) is refused naming the file and the line or byte
offset, never skipped. Needs only the hippo binary (and numpy)."""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HIPPO = None
EOT = 256  # the byte tokenizer's end-of-text id
CONFIG = {"vocab_size": 257, "d_model": 16, "n_layer": 2, "d_state": 8, "attn_heads": 2,
          "layers": ["h3", "attention"]}
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def fnv1a64(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_shard(path):
    """(tokenizer id, ids) of a token file, parsed here from its documented layout."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"HIPPOTOK"
    version, width, vocab, id_len = struct.unpack_from("<4I", b, 8)
    (count,) = struct.unpack_from("<Q", b, 40)
    offset = (64 + id_len + 63) // 64 * 64
    ids = np.frombuffer(b[offset:offset + count * width], dtype="<u2" if width == 2 else "<u4")
    return b[64:64 + id_len].decode(), ids.astype(np.int64)


def weights(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}


def corpus_text(n_lines=250, seed=0):
    words = ["state", "space", "model", "token", "café", "naïve", "x", "long", "short"]
    rng = np.random.default_rng(seed)
    return "\n".join(" ".join(words[i] for i in rng.integers(0, len(words), 10)) for _ in range(n_lines)) + "\n"


class DataPipelineTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg = self.path("cfg.json")
        with open(self.cfg, "w") as f:
            json.dump(CONFIG, f)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w", encoding="utf-8") as f:
            f.write(text)
        return self.path(name)

    def hippo(self, *args, ok=True):
        r = subprocess.run([HIPPO, *args], capture_output=True, text=True, timeout=300, env=ENV)
        if ok:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def shards(self, data, out):
        return self.hippo("tokenize", "--shards", self.path(out), "-d", data)

    def train(self, data, out, *extra, ok=True, steps=6):
        return self.hippo("train", "-c", self.cfg, "-d", data, "-t", "1", "-b", "2", "-L", "16", "-n", str(steps),
                          "--eval-every", "0", "--eval-tokens", "64", "--warmup", "0", "-q",
                          "--cache-dir", self.path("cache"), "-o", self.path(out), *extra, ok=ok)

    def all_ids(self, shard_dir):
        ids = [read_shard(os.path.join(self.path(shard_dir), s + "-00000.tok"))[1]
               for s in ("train", "validation", "test")]
        return np.concatenate(ids)

    def refused(self, r, *needles):
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)

    def test_shards_hold_the_corpus_and_train_like_the_text(self):
        docs = [corpus_text(150, 1), corpus_text(100, 2), "tiny last document"]
        text = self.write("c.txt", "<|endoftext|>".join(docs))
        r = self.shards(text, "sh")
        self.assertIn("100%", r.stderr)  # progress
        tok_id, _ = read_shard(self.path("sh/train-00000.tok"))
        self.assertEqual(tok_id, "byte-v1")
        ids = self.all_ids("sh")
        expected = []
        for d in docs:  # the reference: each document's bytes, then end-of-text
            expected += list(d.encode()) + [EOT]
        self.assertEqual(ids.tolist(), expected)
        # training on the shards is training on the text, bit for bit
        self.train(text, "from_text")
        self.train(self.path("sh"), "from_shards")
        self.assertEqual(weights(self.path("from_text/model.safetensors")),
                         weights(self.path("from_shards/model.safetensors")))
        # and a resume may switch between them (the data fingerprint is the tokens')
        self.train(self.path("sh"), "from_text", "--resume", steps=8)

    def test_jsonl_trains_like_the_joined_text_file(self):
        records = [corpus_text(120, 3), 'quotes "inside", a tab\t and\nnewlines é', corpus_text(80, 4)]
        jsonl = self.write("c.jsonl", "".join(json.dumps({"text": t, "id": i}) + "\n"
                                              for i, t in enumerate(records)))
        text = self.write("c.txt", "<|endoftext|>".join(records))
        self.shards(jsonl, "j")
        self.shards(text, "t")
        ids = self.all_ids("j")
        self.assertEqual(ids.tolist(), self.all_ids("t").tolist())
        expected = []
        for t in records:
            expected += list(t.encode()) + [EOT]
        self.assertEqual(ids.tolist(), expected)  # not the bytes of the JSON
        self.train(jsonl, "from_jsonl")
        self.train(text, "from_text")
        self.assertEqual(weights(self.path("from_jsonl/model.safetensors")),
                         weights(self.path("from_text/model.safetensors")))

    def test_bad_jsonl_is_refused_naming_file_and_line(self):
        good = json.dumps({"text": corpus_text(20)})
        cases = {
            "not JSON": (good + "\n" + good + "\n{\"text\": \"unterminated\n", ":3: not valid JSON"),
            "no text": (good + "\n{\"body\": \"x\"}\n", ':2: no "text" field'),
            "text not a string": (good + "\n" + good + "\n" + good + "\n{\"text\": 5}\n", ':4: "text" is a number'),
            "not an object": ("[\"text\"]\n", ":1: a JSON array"),
            "blank line": (good + "\n\n" + good + "\n", ":2: empty line"),
        }
        for name, (content, needle) in cases.items():
            with self.subTest(name):
                path = self.write("bad.jsonl", content)
                self.refused(self.train(path, "run", ok=False), "bad.jsonl" + needle)
                self.refused(self.hippo("tokenize", "--shards", self.path("sh"), "-d", path, ok=False),
                             "bad.jsonl" + needle)
        self.assertFalse(os.path.exists(self.path("sh")))

    def test_shards_already_in_the_folder_are_replaced_only_with_force(self):
        data = self.write("c.txt", corpus_text(200))
        sh = self.path("sh")
        self.hippo("tokenize", "--shards", sh, "-d", data, "--shard-tokens", "1000")
        before = {f: os.path.getmtime(os.path.join(sh, f)) for f in os.listdir(sh)}
        self.assertGreater(len([f for f in before if f.startswith("train-")]), 2)
        r = self.hippo("tokenize", "--shards", sh, "-d", data, ok=False)
        self.refused(r, f"--shards {sh}: already holds token shards (test-00000.tok", "--force")
        self.assertEqual(before, {f: os.path.getmtime(os.path.join(sh, f)) for f in os.listdir(sh)})
        # --force replaces them, the earlier run's extra files included
        self.hippo("tokenize", "--shards", sh, "-d", data, "--force")
        self.assertEqual(sorted(os.listdir(sh)), ["test-00000.tok", "train-00000.tok", "validation-00000.tok"])
        # a folder with other files (no shards) is fine, and they stay; the corpus folder itself is not
        other = self.path("other")
        os.makedirs(other)
        self.write("other/notes.md", "mine")
        self.hippo("tokenize", "--shards", other, "-d", data)
        self.assertIn("notes.md", os.listdir(other))
        corpus_dir = self.path("corpus")
        os.makedirs(corpus_dir)
        self.write("corpus/a.txt", corpus_text(100))
        self.write("corpus/b.txt", corpus_text(100, 2))
        self.refused(self.hippo("tokenize", "--shards", corpus_dir, "-d", corpus_dir, "--force", ok=False),
                     "is the corpus folder itself")
        self.refused(self.hippo("tokenize", "--shards", data, "-d", data, ok=False), "is not a folder")

    def test_bad_shard_sizes_are_refused_before_writing(self):
        data = self.write("s.txt", corpus_text(50))
        for bad, msg in (("-5", "--shard-tokens must be >= 0"), ("abc", "--shard-tokens must be an integer")):
            self.refused(self.hippo("tokenize", "--shards", self.path("no"), "-d", data, "--shard-tokens", bad,
                                    ok=False), msg)
            self.assertFalse(os.path.exists(self.path("no")))

    def test_bad_shards_are_refused_naming_file_and_offset(self):
        self.shards(self.write("c.txt", corpus_text(200)), "sh")
        train = self.path("sh/train-00000.tok")
        with open(train, "rb") as f:
            good = f.read()

        def check(data, *needles):
            with open(train, "wb") as f:
                f.write(data)
            self.refused(self.train(self.path("sh"), "run", ok=False), train, *needles)

        check(good[:-7], "truncated", f"{len(good) - 7} bytes", "offset 40")
        check(good[:30], "truncated", "30 bytes")
        damaged = bytearray(good)
        damaged[200] ^= 1
        check(bytes(damaged), "checksum", "offset 128")
        # another tokenizer's shard (a well-formed header: its checksum recomputed here)
        other = b"gpt2-bpe-v1:0123"
        hdr = bytearray(good[:64])
        struct.pack_into("<I", hdr, 20, len(other))
        struct.pack_into("<Q", hdr, 56, fnv1a64(other, fnv1a64(bytes(hdr[:56]))))
        check(bytes(hdr) + other + good[64 + len(other):],  # the ids stay at offset 128 "tokenized by 'gpt2-bpe-v1:0123'",
              "not by this run's tokenizer 'byte-v1'")
        check(b"NOTATOKENFILE" + good[13:], "bad magic at offset 0")
        with open(train, "wb") as f:
            f.write(good)
        self.train(self.path("sh"), "run")  # whole again: accepted

    def peak_kb(self, *args):
        """Peak resident memory (KiB) of `hippo ARGS`, from a wrapper process's children."""
        code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
        r = subprocess.run([sys.executable, "-c", code, HIPPO, *args], capture_output=True, text=True,
                           timeout=300, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return int(r.stdout.split()[-1])

    def test_large_corpus_streams_into_bounded_shards(self):
        """tokenize --shards holds neither the text nor the ids: peak memory at 4 MB and 32 MB of
        corpus is the same within 16 MB (reading it whole, as before, took 250 MB more), and the
        many shard files hold exactly the corpus."""
        block = "<|endoftext|>".join(corpus_text(2000, k) for k in range(4))  # ~0.5 MB
        peaks = {}
        for mb in (4, 32):
            path = self.path(f"c{mb}.txt")
            with open(path, "w", encoding="utf-8") as f:
                for _ in range(mb * 2):
                    f.write(block + "<|endoftext|>")
            out = f"sh{mb}"
            peaks[mb] = self.peak_kb("tokenize", "--shards", self.path(out), "-d", path, "-t", "2",
                                     "--shard-tokens", "1000000")
            files = sorted(os.listdir(self.path(out)))
            self.assertGreaterEqual(len([f for f in files if f.startswith("train-")]), mb * 6 // 10)
        growth_mb = (peaks[32] - peaks[4]) / 1024
        self.assertLess(growth_mb, 16, f"peak {peaks[4]} KiB at 4 MB, {peaks[32]} KiB at 32 MB")
        # the 32 MB corpus, all splits in order, against its bytes (the byte tokenizer's ids)
        with open(self.path("c32.txt"), "rb") as f:
            raw = f.read()
        got = np.concatenate([read_shard(os.path.join(self.path("sh32"), f))[1]
                              for s in ("train", "validation", "test")
                              for f in sorted(os.listdir(self.path("sh32"))) if f.startswith(s + "-")])
        expected = np.frombuffer(raw.replace(b"<|endoftext|>", b"\x00"), dtype=np.uint8).astype(np.int64)
        expected[expected == 0] = EOT
        self.assertEqual(len(got), len(expected))
        self.assertTrue(np.array_equal(got, expected))

    def test_val_data_is_the_validation_set(self):
        data = self.write("c.txt", corpus_text(200))
        val_text = corpus_text(30, 7)
        val = self.write("v.txt", val_text)
        r = self.train(data, "run", "--val-data", val)
        # all of v.txt: its bytes and one end-of-text
        self.assertIn(f"{len(val_text.encode()) + 1} validation (--val-data {val})", r.stderr)
        r = self.train(data, "run2", "--val-data", self.path("missing.txt"), ok=False)
        self.refused(r, "missing.txt")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-bin")
    ap.add_argument("--hippo-bin", required=True)
    args, rest = ap.parse_known_args()
    HIPPO = os.path.abspath(args.hippo_bin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
