"""Load on `hippo serve`: 32 concurrent clients x 20 requests of random prompt lengths and
max_tokens (greedy and seeded sampling, whole and streamed), three rounds. Every reply must
equal the same request answered alone (continuous batching changes no result), no request may
fail, and the server's RSS must not grow from round to round (no leak)."""
import os
import random
import tempfile
import threading
import time
import unittest

import refcommon
import serve_common as sc

CLIENTS, REQUESTS, ROUNDS = 32, 20, 3


class ServeLoadTest(unittest.TestCase):
    def test_load(self):
        rng = random.Random(13)
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny.safetensors")
            sc.write_model(model, seed=7)
            srv = sc.Server(refcommon.ARGS.hippo_bin, model, "--parallel", "8", "--max-queue", "64")
            try:
                alphabet = "abcdefghijklmnopqrstuvwxyz ,."
                cases = []
                for i in range(40):
                    prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
                    body = {"prompt": prompt, "max_tokens": rng.randint(1, 48)}
                    if i % 3 == 0:
                        body.update(temperature=0.8, seed=rng.randint(0, 1000))
                    else:
                        body.update(temperature=0)
                    cases.append(body)
                # Each request alone, one after another: the expected replies.
                want = []
                for body in cases:
                    st, j = srv.post("/v1/completions", body)
                    self.assertEqual(st, 200, j)
                    want.append(j["choices"][0]["text"])
                rss = []
                for rnd in range(ROUNDS):
                    errors = []
                    done = [0]
                    lock = threading.Lock()

                    def client(c):
                        r = random.Random(rnd * 1000 + c)
                        for _ in range(REQUESTS):
                            k = r.randrange(len(cases))
                            try:
                                if r.random() < 0.3:
                                    ev = srv.stream("/v1/completions", dict(cases[k], stream=True))
                                    text = "".join(ch["text"] for e in ev for ch in e["choices"])
                                else:
                                    st, j = srv.post("/v1/completions", cases[k])
                                    if st != 200:
                                        raise AssertionError(f"status {st}: {j}")
                                    text = j["choices"][0]["text"]
                                if text != want[k]:
                                    raise AssertionError(f"case {k}: {text!r} != {want[k]!r}")
                                with lock:
                                    done[0] += 1
                            except Exception as e:  # noqa: BLE001 - collected and reported
                                with lock:
                                    errors.append(f"client {c}: {e}")
                    t0 = time.time()
                    ts = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join()
                    rss.append(srv.rss_kb())
                    print(f"  round {rnd}: {done[0]} requests in {time.time() - t0:.1f} s, RSS {rss[-1]} kB")
                    self.assertEqual(errors, [], "\n".join(errors[:10]))
                    self.assertEqual(done[0], CLIENTS * REQUESTS)
                # Rounds 2 and 3 hold no more than round 1 did, within allocator noise.
                self.assertLess(max(rss[1:]), rss[0] * 1.10 + 8 * 1024, f"RSS grows: {rss}")
            finally:
                self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    refcommon.main()
