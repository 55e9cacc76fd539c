"""hippo serve's web page in a real browser: headless Debian chromium driven by npm
puppeteer-core (pinned in tests/serve/package-lock.json) loads /, generates greedily, and the
page's text equals the API's greedy completion; the page requests nothing from elsewhere. The
screenshot goes to $HIPPO_SERVE_SCREENSHOT when set (docs/serving.png was made so). Skips only
when node, npm or chromium is not installed."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import refcommon
import serve_common as sc

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class ServeBrowserTest(unittest.TestCase):
    def test_page_generates_the_api_greedy_text(self):
        if not CHROMIUM:
            self.skipTest("chromium not installed (apt-get install chromium)")
        mods, why = sc.node_modules()
        if mods is None:
            self.skipTest(why)
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny.safetensors")
            sc.write_model(model, seed=5)
            srv = sc.Server(refcommon.ARGS.hippo_bin, model)
            try:
                prompt, n = "The hippo", 48
                st, j = srv.post("/v1/completions", {"prompt": prompt, "max_tokens": n, "temperature": 0, "seed": 0})
                self.assertEqual(st, 200, j)
                exp = os.path.join(tmp, "expected.json")
                with open(exp, "w") as f:
                    json.dump({"prompt": prompt, "max_tokens": n, "greedy": j["choices"][0]["text"]}, f)
                shot = os.environ.get("HIPPO_SERVE_SCREENSHOT") or os.path.join(tmp, "page.png")
                r = subprocess.run([shutil.which("node"), os.path.join(sc.NODE_DIR, "browser.mjs"), srv.url, exp,
                                    shot, os.path.join(tmp, "profile")], capture_output=True, text=True,
                                   timeout=300, env=dict(os.environ, CHROMIUM=CHROMIUM))
                print(r.stdout)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertTrue(os.path.getsize(shot) > 1000)
            finally:
                self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    refcommon.main()
