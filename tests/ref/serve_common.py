"""Shared by the `hippo serve` tests (tests/ref/test_serve_*.py): a random tiny model written
with the PyTorch reference (tests/ref/torch_h3.py), a server on a free port, HTTP helpers, and
the npm packages of tests/serve/ for the Node clients."""
import fcntl
import http.client
import json
import os
import shutil
import signal
import subprocess
import time

import torch

from refcommon import save_safetensors
from torch_h3 import LM, randomize_

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(REPO, "tests", "serve")
EOT = 256  # the byte tokenizer's end-of-text id

HYBRID = {"vocab_size": 257, "d_model": 32, "n_layer": 3, "d_state": 16, "attn_heads": 2,
          "layers": ["h3", "attention", "s4d"]}


def write_model(path, cfg=HYBRID, seed=1, scale=0.3):
    """A random model with the byte tokenizer; returns the PyTorch model (float64)."""
    model = LM(cfg)
    randomize_(model, scale=scale, seed=seed)
    save_safetensors(path, dict(model.named_parameters()),
                     {"format": "hippo", "config": json.dumps(cfg), "tokenizer": "byte"})
    return model


class Server:
    """`hippo serve` on a free port (--port 0; the port is read from its first stderr line)."""

    def __init__(self, hippo_bin, model, *args, env=None):
        self.log_path = model + f".serve{os.getpid()}.{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+b")
        e = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        if env:
            e.update(env)
        self.proc = subprocess.Popen([hippo_bin, "serve", "-m", model, "--port", "0", "-t", "1", *args],
                                     stdout=self.log, stderr=self.log, env=e)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise AssertionError("hippo serve exited: " + self.output())
            for line in self.output().splitlines():
                if " on http://" in line:
                    self.port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
            time.sleep(0.05)
        if self.port is None:
            self.kill()
            raise AssertionError("hippo serve did not start: " + self.output())
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None, raw=None, timeout=120):
        """(status, headers, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = (r.status, dict(r.getheaders()), r.read())
        c.close()
        return out

    def post(self, path, body, **kw):
        """(status, parsed JSON)."""
        status, _, data = self.request("POST", path, body, **kw)
        return status, json.loads(data)

    def stream(self, path, body, **kw):
        """The parsed `data:` events of a streamed reply, up to and without [DONE] (asserted)."""
        status, _, data = self.request("POST", path, body, **kw)
        assert status == 200, data
        events = [e[len("data: "):] for e in data.decode().split("\n\n") if e.startswith("data: ")]
        assert events and events[-1] == "[DONE]", data[-200:]
        return [json.loads(e) for e in events[:-1]]

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server and returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def generate_text(hippo_bin, model, prompt, n):
    """`hippo generate --temp 0` continuation bytes (the prompt and final newline removed)."""
    r = subprocess.run([hippo_bin, "generate", "-t", "1", "-m", model, "-p", prompt, "-n", str(n),
                        "--temp", "0"], capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(prompt.encode()) and out.endswith(b"\n"), out
    return out[len(prompt.encode()):-1]


def as_text(b):
    """Bytes as the server shows them: invalid UTF-8 replaced (one U+FFFD per maximal subpart)."""
    return b.decode("utf-8", errors="replace")


def node_modules():
    """Runs `npm ci` in tests/serve once (locked against parallel tests); returns the folder, or
    None with the reason when node or npm is not installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "node/npm not installed (apt-get install nodejs npm)"
    mods = os.path.join(NODE_DIR, "node_modules")
    stamp = os.path.join(mods, ".hippo-lock-stamp")
    lock = os.path.join(NODE_DIR, "package-lock.json")
    with open(os.path.join(NODE_DIR, ".npm-ci.lock"), "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        with open(lock, "rb") as f:
            want = f.read()
        have = None
        if os.path.exists(stamp):
            with open(stamp, "rb") as f:
                have = f.read()
        if have != want:
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                               text=True, timeout=600)
            if r.returncode != 0:
                raise AssertionError("npm ci in tests/serve failed (is the npm registry reachable?):\n" +
                                     r.stdout[-2000:] + r.stderr[-2000:])
            with open(stamp, "wb") as f:
                f.write(want)
    return mods, None


def torch_logprobs(model, tokens):
    """log-softmax of the reference model's logits after each prefix: (len, vocab) float64."""
    with torch.no_grad():
        logits = model(torch.tensor([tokens]))[0]
        return torch.log_softmax(logits[:, :257], dim=-1)
