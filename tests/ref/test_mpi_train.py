"""Data-parallel training under mpirun (issue 15), through the real binary: `-np 2` gives the
same weights bit for bit as one process with --grad-accum 2 (synthetic and text data), more
micro-batches per rank stay within 1e-6 of one process after 100 steps, a run resumes at another
rank count as if never stopped, and a rank that is killed, hangs or fails ends the whole job
within a bounded time with a message, the last checkpoint intact and resumable.
Skipped (with a message) only when mpirun is not installed; needs a hippo built with MPI."""
import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HIPPO = None  # --hippo-bin
MPIRUN = shutil.which("mpirun")
CONFIG = {"vocab_size": 20, "d_model": 16, "n_layer": 2, "d_state": 8, "attn_heads": 2,
          "layers": ["h3", "attention"]}
TEXT_CONFIG = dict(CONFIG, vocab_size=257)
ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")


def read_safetensors(path):
    """name -> float32 array, and the metadata."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"])
    return out, meta


def ckpt_step(d):
    try:
        return int(read_safetensors(os.path.join(d, "checkpoint.safetensors"))[1]["optim.step"])
    except (FileNotFoundError, KeyError, struct.error, ValueError, json.JSONDecodeError):
        return -1


def rank_pid(mpirun_pid, rank):
    """The pid of rank `rank` among mpirun's children (by OMPI_COMM_WORLD_RANK)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != mpirun_pid:
                continue
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read().split(b"\0")
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                return int(p)
        except (OSError, ValueError, IndexError):
            continue
    return None


def wait_for(cond, timeout=60.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@unittest.skipIf(MPIRUN is None, "mpirun is not installed (Debian: openmpi-bin); MPI tests skipped")
class MpiTrainTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg = os.path.join(self.dir, "cfg.json")
        with open(self.cfg, "w") as f:
            json.dump(CONFIG, f)
        self.text_cfg = os.path.join(self.dir, "text_cfg.json")
        with open(self.text_cfg, "w") as f:
            json.dump(TEXT_CONFIG, f)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.tmp.cleanup()

    def cmd(self, n, out, *extra, text=False):
        base = [HIPPO, "train", "-t", "1", "-b", "4", "--eval-every", "0", "--warmup", "0",
                "--min-lr-ratio", "1", "-q", "-o", os.path.join(self.dir, out)]
        if text:
            base += ["-c", self.text_cfg, "-d", self.corpus(), "-L", "16", "--eval-tokens", "64",
                     "--cache-dir", os.path.join(self.dir, "cache")]
        else:
            base += ["-c", self.cfg, "-d", "synthetic:associative_recall"]
        base += list(extra)
        if n == 0:  # no mpirun at all
            return base
        return [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(n)] + base

    def corpus(self):
        path = os.path.join(self.dir, "corpus.txt")
        if not os.path.exists(path):
            words = ["alpha", "beta", "gamma", "delta", "state", "space", "model", "token"]
            rng = np.random.default_rng(0)
            lines = [" ".join(words[i] for i in rng.integers(0, len(words), 12)) for _ in range(300)]
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
        return path

    def run_ok(self, n, out, *extra, text=False):
        r = subprocess.run(self.cmd(n, out, *extra, text=text), capture_output=True, text=True,
                           timeout=300, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def weights(self, out):
        return read_safetensors(os.path.join(self.dir, out, "model.safetensors"))[0]

    def assert_bit_identical(self, a, b):
        wa, wb = self.weights(a), self.weights(b)
        self.assertEqual(sorted(wa), sorted(wb))
        for k in wa:
            self.assertTrue(np.array_equal(wa[k].view(np.uint32), wb[k].view(np.uint32)),
                            f"{k}: max |diff| {np.abs(wa[k] - wb[k]).max()}")

    def test_two_ranks_equal_grad_accum_two_bit_for_bit(self):
        for text in (False, True):
            with self.subTest(text=text):
                tag = "t" if text else "s"
                self.run_ok(1, tag + "ga2", "-n", "12", "--grad-accum", "2", text=text)
                r = self.run_ok(2, tag + "np2", "-n", "12", text=text)  # one micro-batch per rank
                self.assertIn("ranks: 2", r.stdout)
                self.assert_bit_identical(tag + "ga2", tag + "np2")
                # and it is a different run from one micro-batch per step (the test can fail)
                self.run_ok(1, tag + "ga1", "-n", "12", "--grad-accum", "1", text=text)
                w1, w2 = self.weights(tag + "ga1"), self.weights(tag + "np2")
                self.assertTrue(any(not np.array_equal(w1[k], w2[k]) for k in w1))

    def test_bucketed_allreduce_gives_the_same_weights_bit_for_bit(self):
        """--allreduce-bucket-mb: buckets all-reduced during the backward (of a rank's last
        micro-batch) give the weights of one all-reduce after it, and of one process."""
        self.run_ok(1, "ga2", "-n", "10", "--grad-accum", "2")
        self.run_ok(1, "ga4", "-n", "10", "--grad-accum", "4")
        for accum in ("2", "4"):  # one micro-batch per rank; two (the first's summed before)
            for mb in ("0", "0.001", "0.02", "1000") if accum == "2" else ("0", "0.001"):
                # single; a bucket per tensor; a few; one
                with self.subTest(accum=accum, mb=mb):
                    out = f"np2_{accum}_{mb}"
                    self.run_ok(2, out, "-n", "10", "--grad-accum", accum, "--allreduce-bucket-mb", mb)
                    self.assert_bit_identical("ga" + accum if accum == "2" else "np2_4_0", out)
        # 2 ranks of 2 micro-batches sum in another order than one process of 4 (docs/scaling.md)
        wa, wb = self.weights("ga4"), self.weights("np2_4_0.001")
        self.assertLessEqual(max(float(np.abs(wa[k] - wb[k]).max()) for k in wa), 1e-6)
        r = subprocess.run(self.cmd(0, "neg", "-n", "1", "--allreduce-bucket-mb", "-1"),
                           capture_output=True, text=True, timeout=60, env=ENV)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--allreduce-bucket-mb", r.stderr)

    def test_ranks_read_only_their_part_of_many_shards(self):
        """Shards of 500 ids: each rank maps them all but reads (and checks) only the token range
        of its micro-batches; the weights stay bit-identical to one process and to the text."""
        sh = os.path.join(self.dir, "sh")
        r = subprocess.run([HIPPO, "tokenize", "--shards", sh, "-d", self.corpus(), "--shard-tokens", "500"],
                           capture_output=True, text=True, timeout=120, env=ENV)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        files = sorted(f for f in os.listdir(sh) if f.startswith("train-"))
        self.assertGreater(len(files), 10)
        self.run_ok(1, "text_ga2", "-n", "8", "--grad-accum", "2", text=True)
        for out, n, extra in (("sh_ga2", 1, ["--grad-accum", "2"]), ("sh_np2", 2, [])):
            c = self.cmd(n, out, "-n", "8", *extra, text=True)
            c[c.index("-d") + 1] = sh
            r = subprocess.run(c, capture_output=True, text=True, timeout=300, env=ENV)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_bit_identical("sh_ga2", "sh_np2")
        self.assert_bit_identical("sh_ga2", "text_ga2")
        # A damaged id in the last file: only rank 1, whose half holds it, checks and refuses it.
        last = os.path.join(sh, files[-1])
        with open(last, "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 1]))
        c = self.cmd(2, "bad", "-n", "2", text=True)
        c[c.index("-d") + 1] = sh
        r = subprocess.run(c, capture_output=True, text=True, timeout=120, env=ENV)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rank 1 of 2", r.stderr)
        self.assertIn(files[-1] + ": corrupt: token checksum mismatch", r.stderr)
        self.assertNotIn("rank 0 of 2: token shard", r.stderr)

    def test_more_micro_batches_per_rank_within_1e6_after_100_steps(self):
        # Any N: 2 ranks of 2 micro-batches and 4 ranks of 1 (oversubscribed) against one process.
        self.run_ok(1, "ga4", "-n", "100", "--grad-accum", "4", "--lr", "1e-3")
        wa = self.weights("ga4")
        for n in (2, 4):
            with self.subTest(ranks=n):
                self.run_ok(n, f"np{n}", "-n", "100", "--grad-accum", "4", "--lr", "1e-3")
                wb = self.weights(f"np{n}")
                worst = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
                self.assertLessEqual(worst, 1e-6)

    def test_resume_at_another_rank_count_continues_the_same_run(self):
        self.run_ok(1, "straight", "-n", "20", "--grad-accum", "2")
        # 2 ranks for 10 steps, then 1 process (same global batch) to 20
        self.run_ok(2, "a", "-n", "10")
        self.run_ok(1, "a", "-n", "20", "--grad-accum", "2", "--resume")
        self.assert_bit_identical("straight", "a")
        # and the other way
        self.run_ok(1, "b", "-n", "10", "--grad-accum", "2")
        self.run_ok(2, "b", "-n", "20", "--grad-accum", "2", "--resume")
        self.assert_bit_identical("straight", "b")
        # another global batch is refused, naming the setting
        r = subprocess.run(self.cmd(2, "b", "-n", "30", "--grad-accum", "4", "--resume"),
                           capture_output=True, text=True, timeout=120, env=ENV)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("grad-accum", r.stderr)

    def start(self, *cmd_args, **kw):
        p = subprocess.Popen(self.cmd(2, *cmd_args, **kw), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)
        self.procs.append(p)
        return p

    def finish(self, p, within):
        t0 = time.time()
        out, err = p.communicate(timeout=within + 30)
        return time.time() - t0, out + err

    def test_killed_rank_ends_the_job_and_the_checkpoint_resumes(self):
        out = os.path.join(self.dir, "run")
        p = self.start("run", "-n", "1000000", "--save-every", "2", "--log-every", "1")
        wait_for(lambda: ckpt_step(out) >= 2, what="a checkpoint")
        pid = wait_for(lambda: rank_pid(p.pid, 1), what="rank 1's pid")
        os.kill(pid, signal.SIGKILL)
        took, msg = self.finish(p, 30)
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(took, 30, "the job must end soon after a rank dies")
        self.assertRegex(msg, r"rank 1|signal 9|Killed", msg)
        step = ckpt_step(out)
        self.assertGreaterEqual(step, 2, "the last checkpoint is intact")
        self.run_ok(1, "run", "-n", str(step + 2), "--grad-accum", "2", "--resume")
        self.assertEqual(ckpt_step(out), step + 2)

    def test_hung_rank_ends_the_job_after_the_timeout(self):
        out = os.path.join(self.dir, "run")
        p = self.start("run", "-n", "1000000", "--save-every", "2", "--dist-timeout", "3")
        wait_for(lambda: ckpt_step(out) >= 2, what="a checkpoint")
        pid = wait_for(lambda: rank_pid(p.pid, 1), what="rank 1's pid")
        os.kill(pid, signal.SIGSTOP)
        try:
            took, msg = self.finish(p, 40)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no reply from the other ranks", msg)
        self.assertIn("--dist-timeout 3", msg)
        self.assertGreaterEqual(ckpt_step(out), 2)
        self.run_ok(2, "run", "-n", str(ckpt_step(out) + 1), "--resume")

    def test_an_error_on_one_rank_ends_all_with_its_message(self):
        t0 = time.time()
        r = subprocess.run(self.cmd(2, "none", "-n", "5", "--resume"), capture_output=True, text=True,
                           timeout=120, env=ENV)
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(time.time() - t0, 60)
        self.assertIn("rank 0 of 2", r.stderr)
        self.assertIn("checkpoint", r.stderr)
        # a global batch that does not divide among the ranks is refused up front
        r = subprocess.run(self.cmd(2, "odd", "-n", "5", "--grad-accum", "3"), capture_output=True,
                           text=True, timeout=120, env=ENV)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("must be a multiple of the 2 ranks", r.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-bin")
    ap.add_argument("--hippo-bin", required=True)
    args, rest = ap.parse_known_args()
    HIPPO = os.path.abspath(args.hippo_bin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
