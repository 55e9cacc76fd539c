"""`hippo convert` guards the user's files and its own memory, and never guesses (issue 11):
- the output is never an input (also through symlinks and hard links) and never replaces an
  existing file other than hippo weights;
- attention heads come from an exact match with a released model's shapes (named in the
  output) or from --heads; anything else is refused;
- storage records of the .pt zip are checked against the archive's real size before reading
  (a small file cannot make the converter allocate gigabytes);
- a failing converter interpreter (HIPPO_TORCH_PYTHON) is reported with its exit status;
- count options are range-checked.
"""
import collections
import importlib.util
import io
import json
import os
import pickle
import stat
import struct
import subprocess
import tempfile
import time
import unittest
import zipfile

import torch

import refcommon
from refcommon import RefTestCase
from test_convert import SMALL, build_model, released_state_dict
from test_generate_safety import run_with_peak

torch.set_num_threads(1)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "convert_h3.py")


def load_converter():
    spec = importlib.util.spec_from_file_location("convert_h3", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def meta_state_dict(conv, cfg, rotary_dim=0):
    """Shapes only (meta tensors): the state dict a model of `cfg` has, as the authors save it."""
    sd = {k: torch.empty(s, device="meta") for k, s in conv.expected_shapes(cfg).items()}
    if rotary_dim:
        for i, kind in enumerate(cfg["layers"]):
            if kind == "attention":
                sd[f"backbone.layers.{i}.mixer.rotary_emb.inv_freq"] = torch.empty(
                    rotary_dim // 2, device="meta")
    return sd


def released_like(d, n, attn, rotary=0):
    return {"vocab_size": 50257, "d_model": d, "n_layer": n, "d_state": 64, "head_dim": 1,
            "layers": ["attention" if i in attn else "h3" for i in range(n)],
            "rotary_dim": rotary}


class ConvertSafetyTest(RefTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.model = build_model(SMALL, seed=0)
        cls.pt = os.path.join(cls.dir, "small.pt")
        torch.save(released_state_dict(cls.model, SMALL), cls.pt)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, p):
        with open(p, "rb") as f:
            return f.read()

    def convert(self, *args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([refcommon.ARGS.hippo_bin, "convert", *args], capture_output=True,
                              text=True, env=e, timeout=600)

    def refused(self, *args, expect=(), env=None):
        r = self.convert(*args, env=env)
        self.assertNotEqual(r.returncode, 0, f"accepted: {args}\n{r.stdout}\n{r.stderr}")
        self.assertNotIn("Traceback", r.stderr)
        for e in expect:
            self.assertIn(e, r.stderr, f"{args}")
        print(f"  refused {' '.join(args)[-70:]}: {r.stderr.strip().splitlines()[-1][:160]}")
        return r.stderr

    # --- item 2: never overwrite an input, never replace another kind of file ---------------

    def test_output_never_replaces_an_input_or_another_kind_of_file(self):
        before = self.read(self.pt)
        link, hard = self.path("link.pt"), self.path("hard.pt")
        os.symlink(self.pt, link)
        os.link(self.pt, hard)
        for out in (self.pt, link, hard):
            self.refused(self.pt, out, "--heads", "2", expect=("input",))
        # The script run directly refuses too.
        r = subprocess.run(["/usr/bin/python3", SCRIPT, self.pt, hard, "--heads", "2"],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("input", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(self.read(self.pt), before, "the input was changed")
        notes = self.path("notes.txt")
        with open(notes, "w") as f:
            f.write("keep me")
        self.refused(self.pt, notes, "--heads", "2", expect=("not hippo weights",))
        self.assertEqual(self.read(notes), b"keep me")
        self.refused(self.pt, self.dir, "--heads", "2", expect=(self.dir,))
        # A training checkpoint (weights + optimizer state) is another kind too.
        ckpt = self.path("checkpoint.safetensors")
        out = self.path("w.safetensors")
        r = self.convert(self.pt, out, "--heads", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        h = json.loads(self.read(out)[8:8 + struct.unpack("<Q", self.read(out)[:8])[0]])
        h["__metadata__"]["optim.step"] = "7"
        body = json.dumps(h).encode()
        body += b" " * ((8 - (8 + len(body)) % 8) % 8)
        data = self.read(out)
        (n,) = struct.unpack("<Q", data[:8])
        with open(ckpt, "wb") as f:
            f.write(struct.pack("<Q", len(body)) + body + data[8 + n:])
        self.refused(self.pt, ckpt, "--heads", "2", expect=("optimizer",))
        # hippo weights may be replaced (a re-conversion).
        r = self.convert(self.pt, out, "--heads", "2", "--dtype", "bf16")
        self.assertEqual(r.returncode, 0, r.stderr)

    # --- item 11: attention heads are never guessed ------------------------------------------

    def test_heads_are_never_guessed(self):
        cfg4 = dict(SMALL, attn_heads=4)
        m4 = build_model(cfg4, seed=1)
        pt4 = self.path("four_heads.pt")
        torch.save(released_state_dict(m4, cfg4), pt4)
        out = self.path("four.safetensors")
        self.refused(pt4, out, expect=("--heads", "d_model 128", "released"))
        self.assertFalse(os.path.exists(out))
        r = self.convert(pt4, out, "--heads", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 heads (--heads)", r.stdout)

    def test_released_shapes_match_exactly(self):
        conv = load_converter()
        released = {
            "H3-125M": (released_like(768, 12, [6]), 0, 12),
            "H3-355M": (released_like(1024, 24, [8, 16]), 0, 16),
            "H3-1.3B": (released_like(2048, 24, [8, 16]), 0, 16),
            "H3-2.7B (3 attention layers)": (released_like(2560, 32, [8, 16, 24]), 0, 20),
            "H3-2.7B (2 attention layers, rotary)": (released_like(2560, 32, [10, 21], 64), 64, 20),
        }
        for name, (cfg, rot, heads) in released.items():
            got = conv.infer_config(meta_state_dict(conv, cfg, rot))
            self.assertEqual((got["attn_heads"], got["rotary_dim"]), (heads, rot), name)
            self.assertEqual(conv.matched_release(got), name)
            # --heads still wins (said so in the output).
            self.assertEqual(conv.infer_config(meta_state_dict(conv, cfg, rot), heads=4)["attn_heads"], 4)
        # Near misses: every one differs from a released model in one shape and is refused.
        near = [released_like(768, 12, [5]), released_like(768, 12, [6], 32),
                released_like(768, 11, [6]), released_like(1024, 24, [8]),
                released_like(2560, 32, [10, 21]), dict(released_like(768, 12, [6]), d_state=32),
                dict(released_like(768, 12, [6]), vocab_size=1000), released_like(640, 12, [6])]
        for cfg in near:
            sd = meta_state_dict(conv, cfg, cfg["rotary_dim"])
            with self.assertRaises(conv.ConvertError) as ctx:
                conv.infer_config(sd)
            self.assertIn("--heads", str(ctx.exception))
        # A checkpoint without attention needs no heads.
        cfg = released_like(256, 2, [])
        self.assertEqual(conv.infer_config(meta_state_dict(conv, cfg))["layers"], ["h3", "h3"])

    # --- item 15: storage sizes are checked against the archive ------------------------------

    def bomb(self, path, numel):
        """A torch.save-style zip whose one float storage claims `numel` elements, stored
        deflated: about 1 MB on disk per GiB claimed."""

        class Storage:
            pass

        class FakeTensor:
            def __reduce__(self):
                return (torch._utils._rebuild_tensor_v2,
                        (Storage(), 0, (numel,), (1,), False, collections.OrderedDict()))

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, Storage):
                    return ("storage", torch.FloatStorage, "0", "cpu", numel)
                return None

        buf = io.BytesIO()
        P(buf, protocol=2).dump({"backbone.embeddings.word_embeddings.weight": FakeTensor()})
        chunk = bytes(1 << 22)
        with zipfile.ZipFile(path, "w", allowZip64=True) as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            z.writestr("archive/version", "3\n")
            info = zipfile.ZipInfo("archive/data/0")
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w", force_zip64=True) as f:
                for _ in range(numel * 4 // len(chunk)):
                    f.write(chunk)

    def test_storage_claims_are_checked_against_the_archive(self):
        bomb = self.path("bomb.pt")
        self.bomb(bomb, 1 << 26)  # claims 256 MiB
        size = os.path.getsize(bomb)
        self.assertLess(size, 1 << 20)
        out = self.path("bomb.safetensors")
        rc, msg, peak = run_with_peak([refcommon.ARGS.hippo_bin, "convert", bomb, out, "--heads", "2"])
        print(f"  {size / 1e6:.2f} MB zip claiming 256 MiB: peak {peak:.0f} MB: {msg.strip()[-200:]}")
        self.assertNotEqual(rc, 0)
        self.assertIn("archive/data/0", msg)
        self.assertNotIn("Traceback", msg)
        self.assertLess(peak, 500, "the converter allocated what the archive merely claims")
        self.assertFalse(os.path.exists(out))

    # --- item 18: a failing interpreter is reported ------------------------------------------

    def test_failing_interpreter_is_reported(self):
        out = self.path("py.safetensors")
        no_torch = self.path("python_without_torch")
        with open(no_torch, "w") as f:
            f.write("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")  # -S: no site-packages, no torch
        not_python = self.path("not_python")
        with open(not_python, "w") as f:
            f.write("this is not a program\n")
        for p in (no_torch, not_python):
            os.chmod(p, 0o755)
        cases = [("/bin/false", ("HIPPO_TORCH_PYTHON", "/bin/false", "exit status 1")),
                 ("/bin/true", ("HIPPO_TORCH_PYTHON", "/bin/true", "no output")),
                 (no_torch, ("PyTorch", "exit status 2")),
                 (not_python, ("HIPPO_TORCH_PYTHON", not_python)),
                 (self.path("missing_python"), ("HIPPO_TORCH_PYTHON", "missing_python")),
                 (self.dir, ("HIPPO_TORCH_PYTHON",))]
        for py, expect in cases:
            self.refused(self.pt, out, "--heads", "2", expect=expect, env={"HIPPO_TORCH_PYTHON": py})
            self.assertFalse(os.path.exists(out))

    def test_count_options_are_range_checked(self):
        out = self.path("opts.safetensors")
        for args in (["--heads", "0"], ["--heads", "-2"], ["--heads", "100000"],
                     ["--vocab-size", "0"], ["--vocab-size", "-1"], ["--vocab-size", "99999999999"]):
            self.refused(self.pt, out, *args, expect=(args[0],))
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    refcommon.main()
