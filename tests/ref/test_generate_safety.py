"""`hippo generate` guards the user's files and its own memory (issue 11):
- --save-state never replaces an input (the model, --load-state, a prompt file, through
  symlinks and hard links too) nor an existing file that is not a hippo state file;
- --prompt-file refuses directories and other non-regular files;
- state files carry a checksum: flipped bytes are refused; a file's claims (batch, position)
  are checked against its real tensors before anything is allocated;
- the KV cache grows with the tokens made: memory before the first token does not depend on -n;
- a model file truncated while generation runs is an error message, not a SIGBUS death;
- every count option is range-checked before any work.
"""
import json
import os
import signal
import struct
import subprocess
import tempfile
import time
import unittest

import torch

import refcommon
from refcommon import RefTestCase, save_safetensors
from torch_h3 import LM, randomize_

EOT = 256  # the byte tokenizer's end-of-text id
CFG = {"vocab_size": 257, "d_model": 32, "n_layer": 2, "d_state": 16, "attn_heads": 2,
       "layers": ["h3", "attention"]}
LINEAR = ("proj.weight", "proj.bias", "Wqkv.weight", "Wqkv.bias", "output_linear.weight",
          "output_linear.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def write_model(path, cfg=CFG, seed=0, endless=False):
    """A random model. endless: mixers and MLPs output zero and the end-of-text embedding is
    ~0, so greedy decoding repeats a token forever (never end-of-text): a run that lasts."""
    model = LM(cfg)
    randomize_(model, scale=0.3, seed=seed)
    params = dict(model.named_parameters())
    if endless:
        with torch.no_grad():
            for k, v in params.items():
                if k.endswith(LINEAR):
                    v.zero_()
            params["backbone.ln_f.weight"].fill_(1.0)
            params["backbone.ln_f.bias"].zero_()
            params["backbone.embeddings.word_embeddings.weight"][EOT:].mul_(1e-3)
    save_safetensors(path, params, {"format": "hippo", "config": json.dumps(cfg)})


# The state checksum (src/generate/state_io.cpp), written out here so that a test can make a
# file whose claims are wrong but whose checksum is right.
M64 = (1 << 64) - 1
P1, P2 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F


def fnv1a(data, h):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def fmix(k):
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & M64
    return k ^ (k >> 33)


def words_hash(data, seed):
    v = [(seed ^ ((j + 1) * P1 & M64)) & M64 for j in range(4)]
    n = len(data)
    padded = data + b"\0" * (-n % 8)
    for i, (w,) in enumerate(struct.iter_unpack("<Q", padded)):
        x = v[i & 3] ^ ((w * P2) & M64)
        x = ((x << 31) | (x >> 33)) & M64
        v[i & 3] = (x * P1) & M64
    h = (seed ^ ((n * P1) & M64)) & M64
    for x in v:
        h = ((h ^ fmix(x)) * P2) & M64
    return fmix(h)


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_st(path, header, blob):
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def state_checksum(header, blob):
    h = 0xCBF29CE484222325
    meta = header["__metadata__"]
    for k in sorted(meta):
        if k != "checksum":
            h = fnv1a(k.encode() + b"\0" + meta[k].encode() + b"\0", h)
    for name in sorted(k for k in header if k != "__metadata__"):
        e = header[name]
        shape = ",".join(str(s) for s in e["shape"])
        h = fnv1a(f"{name}\0{e['dtype']}\0{shape}\0".encode(), h)
        b, en = e["data_offsets"]
        h = words_hash(blob[b:en], h)
    return f"{h:016x}"


# Starts a command from a small process and reports its peak RSS: the peak a child gets from
# wait4 includes what the parent held when it forked (this test holds torch: ~200 MB).
SHIM = """import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
sys.stderr.write("\\nPEAK_KB %d\\n" % ru.ru_maxrss)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_with_peak(argv, timeout=120):
    """(exit status, stderr, peak RSS in MB) of argv run alone."""
    r = subprocess.run(["/usr/bin/python3", "-S", "-c", SHIM, *argv], capture_output=True,
                       timeout=timeout)
    err = r.stderr.decode(errors="replace")
    head, _, tail = err.rpartition("\nPEAK_KB ")
    return r.returncode, head, int(tail.split()[0]) / 1024.0


def vm_hwm_mb(pid):
    """Peak RSS so far of a running process (reset at exec, unlike wait4's)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM")


class GenerateSafetyTest(RefTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.model = os.path.join(cls.dir, "m.safetensors")
        write_model(cls.model, seed=1)
        cls.endless = os.path.join(cls.dir, "endless.safetensors")
        write_model(cls.endless, seed=2, endless=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def hippo(self, *args, ok=True, cmd="generate"):
        argv = [refcommon.ARGS.hippo_bin, *cmd.split(), *args]
        if cmd == "generate":
            argv[2:2] = ["-t", "1", "--tokenizer", "byte"]
        r = subprocess.run(argv, capture_output=True, timeout=300)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r

    def refused(self, *args, expect=(), cmd="generate"):
        r = self.hippo(*args, ok=False, cmd=cmd)
        err = r.stderr.decode(errors="replace")
        self.assertNotEqual(r.returncode, 0, f"accepted: {args}\n{err}")
        self.assertGreater(r.returncode, 0, f"killed by a signal: {args}\n{err}")
        for e in expect:
            self.assertIn(e, err, f"{args}")
        print(f"  refused {' '.join(args)[-60:]}: {err.strip().splitlines()[-1][:150]}")
        return err

    def read(self, p):
        with open(p, "rb") as f:
            return f.read()

    # --- item 2: --save-state never replaces an input or a file of another kind -------------

    def test_save_state_never_replaces_inputs_or_other_files(self):
        before = self.read(self.model)
        # The model itself, directly, through a symlink and through a hard link.
        link = self.path("link.safetensors")
        hard = self.path("hard.safetensors")
        for p in (link, hard):
            if os.path.lexists(p):
                os.unlink(p)
        os.symlink(self.model, link)
        os.link(self.model, hard)
        for target in (self.model, link, hard):
            err = self.refused("-m", self.model, "-p", "hi", "-n", "2", "--save-state", target,
                               expect=("--save-state",))
            self.assertIn("input", err)
        self.assertEqual(self.read(self.model), before, "the model file was changed")
        # A prompt file, and any other existing file that is not a hippo state file.
        prompt = self.path("prompt.txt")
        with open(prompt, "wb") as f:
            f.write(b"Hello")
        self.refused("-m", self.model, "--prompt-file", prompt, "-n", "2", "--save-state", prompt,
                     expect=("--save-state", "input"))
        notes = self.path("notes.txt")
        with open(notes, "wb") as f:
            f.write(b"my notes")
        self.refused("-m", self.model, "-p", "hi", "-n", "2", "--save-state", notes,
                     expect=("--save-state", "not a hippo state file"))
        self.assertEqual(self.read(notes), b"my notes")
        self.assertEqual(self.read(prompt), b"Hello")
        # Another model's weights are not a state either; a folder is refused.
        other = self.path("other.safetensors")
        write_model(other, seed=5)
        self.refused("-m", self.model, "-p", "hi", "-n", "2", "--save-state", other,
                     expect=("not a hippo state file",))
        self.refused("-m", self.model, "-p", "hi", "-n", "2", "--save-state", self.dir,
                     expect=("--save-state",))
        # A state file may be replaced, but not the one being loaded.
        state = self.path("s.state")
        self.hippo("-m", self.model, "-p", "hi", "-n", "2", "--save-state", state)
        self.hippo("-m", self.model, "-p", "ho", "-n", "2", "--save-state", state)
        self.refused("-m", self.model, "--load-state", state, "-p", "x", "-n", "2",
                     "--save-state", state, expect=("--save-state", "input"))
        self.assertEqual(self.read(self.model), before)

    # --- item 12: prompt files must be regular files; states carry a checksum ----------------

    def test_prompt_file_must_be_a_regular_file(self):
        self.refused("-m", self.model, "--prompt-file", self.dir, "-n", "2",
                     expect=(self.dir, "directory"))
        self.refused("-m", self.model, "--prompt-file", "/dev/null", "-n", "2",
                     expect=("/dev/null", "not a regular file"))
        self.refused("-m", self.model, "--prompt-file", self.path("missing.txt"), "-n", "2",
                     expect=("missing.txt",))

    def test_corrupt_state_is_refused(self):
        state = self.path("c.state")
        self.hippo("-m", self.model, "-p", "The state", "-n", "2", "--save-state", state)
        self.hippo("-m", self.model, "--load-state", state, "-n", "2")
        header, blob = read_st(state)
        self.assertEqual(header["__metadata__"]["format"], "hippo-state-v2")
        self.assertEqual(header["__metadata__"]["checksum"], state_checksum(header, blob))
        # One flipped bit in the tensor data, anywhere.
        data = bytearray(self.read(state))
        for pos in (len(data) - 3, len(data) - len(blob) + 5, len(data) - len(blob) // 2):
            bad = bytearray(data)
            bad[pos] ^= 0x10
            p = self.path("flipped.state")
            with open(p, "wb") as f:
                f.write(bad)
            self.refused("-m", self.model, "--load-state", p, "-n", "2", expect=(p, "checksum"))
        # A changed metadata value (the position) with the header still well formed.
        h2 = json.loads(json.dumps(header))
        h2["__metadata__"]["position"] = str(int(header["__metadata__"]["position"]) + 1)
        p = self.path("meta.state")
        write_st(p, h2, blob)
        self.refused("-m", self.model, "--load-state", p, "-n", "2", expect=("checksum",))
        # Version 1 had no checksum: refused with a clear message.
        h1 = json.loads(json.dumps(header))
        h1["__metadata__"]["format"] = "hippo-state-v1"
        del h1["__metadata__"]["checksum"]
        p = self.path("v1.state")
        write_st(p, h1, blob)
        self.refused("-m", self.model, "--load-state", p, "-n", "2",
                     expect=("hippo-state-v1", "checksum", "--save-state"))

    # --- item 15: claims in a state file are checked before allocating ----------------------

    def peak_of(self, argv, timeout=120):
        """Runs argv; returns (returncode, stderr, peak RSS in MB of that process alone)."""
        return run_with_peak(argv, timeout)

    def test_state_claims_are_checked_against_the_file(self):
        state = self.path("claims.state")
        self.hippo("-m", self.model, "-p", "Hi", "-n", "2", "--save-state", state)
        header, blob = read_st(state)
        base = [refcommon.ARGS.hippo_bin, "generate", "-t", "1", "--tokenizer", "byte",
                "-m", self.model, "-n", "1", "--load-state"]
        rc, err, ok_peak = self.peak_of(base + [state])
        self.assertEqual(rc, 0, err)
        # Claims that would need 1.28 GB (position) and a few GB (batch); checksums correct.
        for key, value in (("position", "5000000"), ("batch", "1000000")):
            h = json.loads(json.dumps(header))
            h["__metadata__"][key] = value
            h["__metadata__"]["checksum"] = state_checksum(h, blob)
            p = self.path(f"claims_{key}.state")
            write_st(p, h, blob)
            self.assertLess(os.path.getsize(p), 20000)
            rc, err, peak = self.peak_of(base + [p])
            print(f"  {key} {value}: exit {rc}, peak {peak:.0f} MB (valid state: {ok_peak:.0f} MB): "
                  f"{err.strip()[-160:]}")
            self.assertGreater(rc, 0, err)
            self.assertIn(p, err)
            self.assertIn("shape", err)
            self.assertLess(peak, ok_peak + 50, f"{key}: memory allocated before the claim was checked")

    # --- item 14: the KV cache grows as tokens come ------------------------------------------

    def first_token_peak(self, n):
        """Peak RSS (MB) of `generate -n N` up to just after its first generated byte."""
        out_path = self.path(f"out_{n}.txt")
        prompt = "abc"
        with open(out_path, "wb") as out, tempfile.TemporaryFile() as err:
            p = subprocess.Popen([refcommon.ARGS.hippo_bin, "generate", "-t", "1", "--tokenizer",
                                  "byte", "-m", self.endless, "-p", prompt, "-n", str(n),
                                  "--temp", "0"], stdout=out, stderr=err)
            t0 = time.time()
            while os.path.getsize(out_path) <= len(prompt) and p.poll() is None:
                self.assertLess(time.time() - t0, 120, "no token within 120 s")
                time.sleep(0.005)
            t_first = time.time() - t0
            err.seek(0)
            # The endless model never ends by itself: it is still running here.
            self.assertIsNone(p.poll(), err.read().decode(errors="replace"))
            peak = vm_hwm_mb(p.pid)
            p.kill()
            p.wait()
        return peak, t_first

    def test_first_token_memory_does_not_depend_on_n(self):
        # A whole run of 64 tokens, against a run of 2,000,000 (a full-length KV cache would
        # be 512 MB) up to its first token.
        rc, err, small = run_with_peak([refcommon.ARGS.hippo_bin, "generate", "-t", "1", "--tokenizer",
                                        "byte", "-m", self.endless, "-p", "abc", "-n", "64",
                                        "--temp", "0"])
        self.assertEqual(rc, 0, err)
        huge, t_huge = self.first_token_peak(2_000_000)
        print(f"  peak RSS: whole run of -n 64 {small:.0f} MB; -n 2000000 up to its first token "
              f"{huge:.0f} MB ({t_huge:.2f} s)")
        self.assertLess(huge, small + 64, "memory before the first token grows with -n")

    # --- item 16: a model file truncated while mapped ---------------------------------------

    def test_model_truncated_while_generating_is_an_error(self):
        model = self.path("victim.safetensors")
        write_model(model, seed=3, endless=True)
        out_path = self.path("victim_out.txt")
        with open(out_path, "wb") as out, tempfile.TemporaryFile() as err:
            p = subprocess.Popen([refcommon.ARGS.hippo_bin, "generate", "-t", "1", "--tokenizer",
                                  "byte", "-m", model, "-p", "abc", "-n", "100000000", "--temp", "0"],
                                 stdout=out, stderr=err)
            t0 = time.time()
            while os.path.getsize(out_path) < 10 and p.poll() is None:
                self.assertLess(time.time() - t0, 120, "no tokens within 120 s")
                time.sleep(0.005)
            self.assertIsNone(p.poll(), "generation ended before the file was truncated")
            os.truncate(model, 0)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.fail("generation went on after its model file was truncated")
            err.seek(0)
            msg = err.read().decode(errors="replace")
        print(f"  exit {p.returncode}: {msg.strip()[-200:]}")
        self.assertNotEqual(p.returncode, -signal.SIGBUS, "killed by SIGBUS")
        self.assertGreater(p.returncode, 0)
        self.assertIn(model, msg)
        self.assertIn("changed or was truncated", msg)

    # --- item 13: count options --------------------------------------------------------------

    def test_count_options_are_range_checked(self):
        m = ["-m", self.model, "-p", "hi"]
        for opt, val in (("-n", "-1"), ("-n", "99999999999"), ("-n", "2000000000"),
                         ("--samples", "0"), ("--samples", "-3"), ("--samples", "100000000"),
                         ("--top-k", "-1"), ("--top-p", "0"), ("--top-p", "1.5"),
                         ("--top-p", "nan"), ("--temp", "-1"), ("--temp", "nan"),
                         ("--temp", "inf"), ("--threads", "-1"), ("--threads", "1000000")):
            self.refused(*m, opt, val, expect=(opt,) if opt != "-n" else ())
        # Many prompts times many samples: the state memory is estimated and refused up front.
        err = self.refused(*m, "--samples", "65536", *(["-p", "x"] * 40), "-n", "1",
                           expect=("--samples",))
        # bench generate refuses before building a model.
        for opt, val in (("-n", "0"), ("-n", "-5"), ("-n", "100000000"), ("--prompts", "0"),
                         ("--prompts", "100000000"), ("--batches", "0"), ("--batches", "100000"),
                         ("-t", "-1"), ("-t", "1000000")):
            self.refused(opt, val, cmd="bench generate", expect=(opt,))


if __name__ == "__main__":
    refcommon.main()
