"""Model.generate against `hippo generate` (a subprocess of build/hippo, the CLI's own batch
driver in src/api/generate.cpp) with the same sampling options and seed; streaming and
whole-text results agree; two Python threads generating at once from one model each get what
they get alone."""
import os
import subprocess
import tempfile
import threading
import unittest

import pyhelpers
from pyhelpers import HYBRID, write_model

import hippo


def cli_generate(path, prompt, n, *opts):
    r = subprocess.run([pyhelpers.HIPPO_BIN, "generate", "-m", path, "-p", prompt, "-n", str(n),
                        "-t", "1", *opts], capture_output=True)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = r.stdout
    assert out.startswith(prompt.encode()) and out.endswith(b"\n"), out
    return out[len(prompt.encode()):-1]


class GenerateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "m.safetensors")
        # Small weights keep the sampled text long (end-of-text is unlikely).
        write_model(cls.path, HYBRID, seed=5, scale=0.2)
        cls.m = hippo.load(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_equals_cli_with_same_seed(self):
        cases = [("The jury", 64, 0.8, 40, 0.95, 0), ("The jury", 64, 0.8, 40, 0.95, 7),
                 ("x", 30, 1.0, 0, 1.0, 3), ("Hello", 20, 0.0, 0, 1.0, 0)]
        for prompt, n, temp, k, p, seed in cases:
            want = cli_generate(self.path, prompt, n, "--temp", str(temp), "--top-k", str(k),
                                "--top-p", str(p), "-s", str(seed))
            got = self.m.generate(prompt, max_tokens=n, temperature=temp, top_k=k, top_p=p,
                                  seed=seed, stream=False, raw=True)
            print(f"  {prompt!r} seed {seed}: {len(got)} bytes, equal to the CLI: {got == want}")
            self.assertEqual(got, want)
            self.assertGreater(len(got), 3)
            pieces = list(self.m.generate(prompt, max_tokens=n, temperature=temp, top_k=k,
                                          top_p=p, seed=seed))
            self.assertTrue(all(isinstance(x, str) for x in pieces))
            self.assertEqual("".join(pieces), want.decode("utf-8", errors="replace"))
            self.assertEqual(self.m.generate(prompt, max_tokens=n, temperature=temp, top_k=k,
                                             top_p=p, seed=seed, stream=False),
                             want.decode("utf-8", errors="replace"))
        # A different seed gives different text (the comparison above can fail).
        self.assertNotEqual(self.m.generate("The jury", 64, 0.8, 40, 0.95, 0, stream=False),
                            self.m.generate("The jury", 64, 0.8, 40, 0.95, 1, stream=False))

    def test_bad_options(self):
        for kw, msg in [({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"),
                        ({"top_k": -2}, "top_k"), ({"max_tokens": -1}, "max_tokens")]:
            with self.assertRaisesRegex(hippo.Error, msg):
                self.m.generate("a", **kw)
        with self.assertRaisesRegex(hippo.Error, "str or bytes"):
            self.m.generate(123)
        self.assertEqual(self.m.generate("a", max_tokens=0, stream=False), "")

    def test_two_threads_get_what_they_get_alone(self):
        jobs = [("The jury", 3), ("Once upon a time", 4)]
        alone = [self.m.generate(p, max_tokens=300, temperature=0.9, seed=s, stream=False)
                 for p, s in jobs]
        results = [None, None]
        sessions = [None, None]

        def run(i):
            p, s = jobs[i]
            results[i] = self.m.generate(p, max_tokens=300, temperature=0.9, seed=s,
                                         stream=False)
            # Sessions and forward from the same model in the same threads.
            sess = self.m.session()
            sess.prefill(self.m.tokenizer.encode(p))
            sessions[i] = (sess.logits(), self.m.forward([self.m.tokenizer.encode(p)])[0, -1])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(2):
            self.assertEqual(results[i], alone[i])
            self.assertGreater(len(alone[i]), 50)
            a, b = sessions[i]
            self.assertLess(pyhelpers.rel_err(a, b), 1e-4)
        self.assertNotEqual(alone[0], alone[1])


    def test_gil_is_released_during_forward(self):
        """While one thread is inside Model.forward, another keeps running Python: the longest
        pause of the other thread is far shorter than the call (with the GIL held it would be
        the whole call, in every attempt). Up to three attempts, because on a loaded 2-core
        machine the OS alone can pause the measuring thread for a long time."""
        import numpy as np
        tokens = np.random.default_rng(0).integers(0, 257, (16, 1024)).astype(np.int32)
        tries = []
        for _ in range(3):
            dur, gap = self._forward_and_longest_pause(tokens)
            print(f"  forward {dur:.3f} s; longest pause of the other thread {gap:.3f} s")
            self.assertGreater(dur, 0.05)
            tries.append((dur, gap))
            if gap < 0.5 * dur:
                return
        self.fail(f"the other thread stalled for half the call or more in every attempt "
                  f"(forward s, longest pause s): {tries}")

    def _forward_and_longest_pause(self, tokens):
        import time
        state = {"inside": False, "measuring": False, "done": False, "dur": 0.0}

        def work():
            state["inside"] = True
            while not state["measuring"]:  # the other thread's loop is running before the call
                pass
            t0 = time.perf_counter()
            self.m.forward(tokens)
            state["dur"] = time.perf_counter() - t0
            state["done"] = True

        th = threading.Thread(target=work)
        th.start()
        while not state["inside"]:
            pass
        last, gap = time.perf_counter(), 0.0
        state["measuring"] = True
        while not state["done"]:
            now = time.perf_counter()
            gap, last = max(gap, now - last), now
        th.join()
        return state["dur"], gap


if __name__ == "__main__":
    unittest.main(verbosity=2)
