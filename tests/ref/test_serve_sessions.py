"""Saved sessions of `hippo serve` (--state-dir, request field session_id): a conversation saved
by one server and continued by a restarted one gives exactly the tokens of the same two requests
on a server that never restarted; the continuation prefills only the new suffix (cached_tokens);
the state files are where the id says and nowhere else. Also: the live prefix cache (a prompt
that extends an earlier request) reports the reused tokens."""
import os
import tempfile
import unittest

import refcommon
import serve_common as sc


class ServeSessionsTest(unittest.TestCase):
    def conversation(self, srv_first, srv_second):
        """Two turns: the second prompt is the first prompt, the first reply's tokens and more."""
        first = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "logprobs": 0,
                 "session_id": "conv-1"}
        st, j1 = srv_first.post("/v1/completions", first)
        self.assertEqual(st, 200, j1)
        ids = list(b"Once upon a time") + j1["choices"][0]["logprobs"]["token_ids"] + list(b" and then")
        second = {"prompt": ids, "max_tokens": 16, "temperature": 0.7, "seed": 11, "session_id": "conv-1"}
        st, j2 = srv_second.post("/v1/completions", second)
        self.assertEqual(st, 200, j2)
        return j1["choices"][0]["text"], j2["choices"][0]["text"], j2["usage"]["prompt_tokens_details"]["cached_tokens"]

    def test_restore_after_restart_continues_exactly(self):
        hippo = refcommon.ARGS.hippo_bin
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny.safetensors")
            sc.write_model(model, seed=9)
            d1, d2 = os.path.join(tmp, "states1"), os.path.join(tmp, "states2")
            # Uninterrupted (prefix cache off: the saved state is what carries the conversation).
            srv = sc.Server(hippo, model, "--state-dir", d2, "--prefix-cache", "0")
            try:
                t1, t2, cached = self.conversation(srv, srv)
            finally:
                self.assertEqual(srv.stop(), 0)
            # The same with a restart between the turns.
            a = sc.Server(hippo, model, "--state-dir", d1)
            try:
                st, j = a.post("/v1/completions", {"prompt": "x", "max_tokens": 1, "session_id": "../../etc/passwd"})
                self.assertEqual(st, 400)
                first = {"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0, "logprobs": 0,
                         "session_id": "conv-1"}
                st, j1 = a.post("/v1/completions", first)
                self.assertEqual(st, 200, j1)
            finally:
                self.assertEqual(a.stop(), 0)
            self.assertEqual(sorted(os.listdir(d1)), ["conv-1.state", "conv-1.tokens"])
            b = sc.Server(hippo, model, "--state-dir", d1)
            try:
                ids = list(b"Once upon a time") + j1["choices"][0]["logprobs"]["token_ids"] + list(b" and then")
                second = {"prompt": ids, "max_tokens": 16, "temperature": 0.7, "seed": 11, "session_id": "conv-1"}
                st, j2 = b.post("/v1/completions", second)
                self.assertEqual(st, 200, j2)
            finally:
                self.assertEqual(b.stop(), 0)
            self.assertEqual(j1["choices"][0]["text"], t1)
            self.assertEqual(j2["choices"][0]["text"], t2)
            # The whole first turn but its last sampled token came from the saved state.
            want_cached = len(b"Once upon a time") + len(j1["choices"][0]["logprobs"]["token_ids"]) - 1
            self.assertEqual(j2["usage"]["prompt_tokens_details"]["cached_tokens"], want_cached)
            self.assertEqual(cached, want_cached)

    def test_live_prefix_cache(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny.safetensors")
            sc.write_model(model, seed=9)
            srv = sc.Server(refcommon.ARGS.hippo_bin, model)
            try:
                p = "A shared system prompt that many requests begin with. "
                st, j = srv.post("/v1/completions", {"prompt": p, "max_tokens": 4, "temperature": 0})
                self.assertEqual(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
                st, j = srv.post("/v1/completions", {"prompt": p + "Question?", "max_tokens": 4, "temperature": 0})
                self.assertEqual(j["usage"]["prompt_tokens_details"]["cached_tokens"], len(p))
            finally:
                self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    refcommon.main()
