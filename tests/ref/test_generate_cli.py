"""`hippo generate` end to end against the PyTorch reference model: greedy tokens from hippo's
recurrent decoding (prefill, then steps) equal the argmax of torch_h3.LM's whole-sequence
forward, recomputed for every prefix; a batch of ragged prompts, a saved-and-loaded prompt
state and forked samples give the same text as single uninterrupted runs."""
import os
import subprocess
import tempfile

import torch

import refcommon
from refcommon import RefTestCase, save_safetensors
from torch_h3 import LM, randomize_

EOT = 256  # the byte tokenizer's end-of-text id


def write_model(path, cfg, seed):
    model = LM(cfg)
    randomize_(model, scale=0.3, seed=seed)
    import json
    save_safetensors(path, dict(model.named_parameters()), {"format": "hippo", "config": json.dumps(cfg)})
    return model


def torch_greedy(model, cfg, prompt, n):
    """Greedy continuation by full recomputation; stops early where the top two logits are too
    close for fp32 to be sure of the order (returns the tokens and whether it was cut)."""
    toks = list(prompt)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([toks]))[0, -1, : cfg["vocab_size"]]
            top2 = torch.topk(logits, 2)
            if (top2.values[0] - top2.values[1]).item() < 1e-4 * logits.abs().max().item():
                return out, True
            t = int(top2.indices[0])
            out.append(t)
            if t == EOT:
                break
            toks.append(t)
    return out, False


def expected_text(prompt_bytes, tokens):
    body = bytes(t for t in tokens if t != EOT)
    return prompt_bytes + body


class GenerateCliTest(RefTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def hippo(self, *args, ok=True):
        r = subprocess.run([refcommon.ARGS.hippo_bin, "generate", "-t", "1", "--tokenizer", "byte", *args],
                           capture_output=True)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r

    def check_greedy_matches_torch(self, cfg, seed):
        path = os.path.join(self.dir, f"m{seed}.safetensors")
        model = write_model(path, cfg, seed)
        for prompt in [b"Hello, H3", b"x"]:
            n = 24
            ref, cut = torch_greedy(model, cfg, list(prompt), n)
            print(f"  {cfg['layers']} {prompt!r}: {len(ref)} greedy tokens compared{' (cut at a near tie)' if cut else ''}")
            r = self.hippo("-m", path, "-p", prompt.decode(), "-n", str(n), "--temp", "0")
            out = r.stdout[:-1]  # the final newline
            want = expected_text(prompt, ref)
            if cut:  # compare only the part fp32 decides for sure
                out = out[: len(want)]
            self.assertEqual(out, want, f"{cfg['layers']} prompt {prompt!r}")
            self.assertGreater(len(ref), 3, "too few tokens compared")

    def test_greedy_equals_torch_hybrid(self):
        cfg = {"vocab_size": 257, "d_model": 32, "n_layer": 3, "d_state": 16, "attn_heads": 2,
               "layers": ["h3", "attention", "s4d"]}
        self.check_greedy_matches_torch(cfg, 1)

    def test_greedy_equals_torch_transformer(self):
        cfg = {"vocab_size": 257, "d_model": 32, "n_layer": 2, "attn_heads": 4, "rotary_dim": 4,
               "learned_pos": True, "max_position": 64, "layers": ["attention", "attention"]}
        self.check_greedy_matches_torch(cfg, 2)

    def test_batch_state_and_forks_match_single_runs(self):
        cfg = {"vocab_size": 257, "d_model": 32, "n_layer": 3, "d_state": 16, "attn_heads": 2,
               "layers": ["h3", "attention", "h3"]}
        path = os.path.join(self.dir, "m.safetensors")
        write_model(path, cfg, 3)
        samp = ["--temp", "0.9", "--top-k", "40", "-s", "5"]
        singles = [self.hippo("-m", path, "-p", p, "-n", "12", "--temp", "0").stdout[:-1]
                   for p in ["Hi", "Once upon"]]
        batch = self.hippo("-m", path, "-p", "Hi", "-p", "Once upon", "-n", "12", "--temp", "0").stdout
        for s in singles:
            self.assertIn(s + b"\n", batch)
        # Save after the prompt, continue from the file: same text as without the detour.
        state = os.path.join(self.dir, "prompt.state")
        whole = self.hippo("-m", path, "-p", "The H3 layer", "-n", "16", *samp, "--save-state", state).stdout
        resumed = self.hippo("-m", path, "--load-state", state, "-n", "16", *samp).stdout
        self.assertEqual(b"The H3 layer" + resumed, whole)
        # Text after a loaded state continues it like one longer prompt.
        longer = self.hippo("-m", path, "-p", "The H3 layer is", "-n", "8", "--temp", "0").stdout
        appended = self.hippo("-m", path, "--load-state", state, "-p", " is", "-n", "8", "--temp", "0").stdout
        self.assertEqual(b"The H3 layer" + appended, longer)
        # Forks of one state with the same seed reproduce a forked run from the prompt.
        forks = self.hippo("-m", path, "-p", "The H3 layer", "-n", "10", *samp, "--samples", "3").stdout
        forks2 = self.hippo("-m", path, "--load-state", state, "-n", "10", *samp, "--samples", "3").stdout
        self.assertEqual(forks.replace(b"The H3 layer", b""), forks2)
        # A state of another model is refused with a message naming the difference.
        other = os.path.join(self.dir, "other.safetensors")
        write_model(other, dict(cfg, d_model=16), 4)
        r = self.hippo("-m", other, "--load-state", state, "-n", "4", ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"different model config", r.stderr)
        self.assertIn(b"d_model", r.stderr)


if __name__ == "__main__":
    refcommon.main()
