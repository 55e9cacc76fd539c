"""`hippo serve` with the official OpenAI Node SDK (npm openai, pinned in tests/serve/
package-lock.json): completions (greedy text equal to `hippo generate --temp 0`), streaming,
seeds, logprobs/echo scoring, chat (whole, streamed, logprobs) and typed errors (400, 401,
404). Skips only when node or npm is not installed."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import refcommon
import serve_common as sc


class ServeNodeSdkTest(unittest.TestCase):
    def test_openai_node_sdk(self):
        mods, why = sc.node_modules()
        if mods is None:
            self.skipTest(why)
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny.safetensors")
            sc.write_model(model, seed=3)
            prompt = "Hello, H3"
            greedy = sc.as_text(sc.generate_text(refcommon.ARGS.hippo_bin, model, prompt, 24))
            exp = os.path.join(tmp, "expected.json")
            with open(exp, "w") as f:
                json.dump({"prompt": prompt, "greedy": greedy}, f)
            srv = sc.Server(refcommon.ARGS.hippo_bin, model, "--api-key", "test-key")
            try:
                r = subprocess.run([shutil.which("node"), os.path.join(sc.NODE_DIR, "openai_client.mjs"),
                                    srv.url + "/v1", "test-key", exp], capture_output=True, text=True, timeout=300)
                print(r.stdout)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\nserver:\n" + srv.output()[-3000:])
            finally:
                self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    refcommon.main()
