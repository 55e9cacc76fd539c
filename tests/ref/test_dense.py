"""Dense layers against a float64 PyTorch implementation written from spec/H3.md §4.

Each test builds random parameters and inputs, runs the hippo case, and compares outputs,
input gradients and every parameter gradient (relative max-norm error, tol 1e-4).
"""
import math
import unittest

import torch

import refcommon
from refcommon import RefTestCase, run_case

EPS = 1e-5


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, as PyTorch's LayerNorm
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def linear(x, w, b):
    return x @ w.T + b


def mlp(x, p):
    return linear(gelu_tanh(linear(x, p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"])


def rotary(x, rot):
    """GPT-NeoX rotary (rotate_half, non-interleaved) on the first `rot` dims of the last axis.
    x: (B, L, H, dh); positions 0..L-1, base 10000."""
    if rot == 0:
        return x
    L = x.shape[1]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))
    ang = torch.outer(torch.arange(L, dtype=torch.float64), inv_freq)  # (L, rot/2)
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    x1, x2 = xr[..., : rot // 2], xr[..., rot // 2:]
    rotated = torch.cat([-x2, x1], -1)
    return torch.cat([xr * cos + rotated * sin, xp], -1)


def attention(x, p, heads, rot):
    B, L, d = x.shape
    dh = d // heads
    qkv = linear(x, p["Wqkv.weight"], p["Wqkv.bias"]).view(B, L, 3, heads, dh)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, L, H, dh)
    q, k = rotary(q, rot), rotary(k, rot)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dh)
    mask = torch.triu(torch.full((L, L), -10000.0), 1)  # the reference adds -10000 when masked
    probs = torch.softmax(scores + mask, -1)
    ctx = torch.einsum("bhts,bshd->bthd", probs, v).reshape(B, L, d)
    return linear(ctx, p["out_proj.weight"], p["out_proj.bias"])


def grads(fn, inputs, params, dy):
    """Output, d(input)s and d(param)s of sum(fn(...) * dy)."""
    for t in list(inputs) + list(params.values()):
        t.requires_grad_(True)
    y = fn()
    y.backward(dy)
    return y.detach(), [t.grad for t in inputs], {k: v.grad for k, v in params.items()}


class DenseTest(RefTestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_layernorm(self):
        d = 64
        x = torch.randn(2, 33, d) * 3 + 5
        p = {"weight": 1 + 0.5 * torch.randn(d), "bias": torch.randn(d)}
        dy = torch.randn(2, 33, d)
        out = run_case("layernorm", {}, {"x": x, "dy": dy, **p})
        y, (dx,), g = grads(lambda: layer_norm(x, p["weight"], p["bias"]), [x], p, dy)
        self.compare_mixer(out, y, dx, g)

    def test_linear(self):
        x = torch.randn(2, 33, 64)
        p = {"weight": torch.randn(48, 64) * 0.1, "bias": torch.randn(48)}
        dy = torch.randn(2, 33, 48)
        out = run_case("linear", {}, {"x": x, "dy": dy, **p})
        y, (dx,), g = grads(lambda: linear(x, p["weight"], p["bias"]), [x], p, dy)
        self.compare_mixer(out, y, dx, g)

    def test_gelu(self):
        x = torch.randn(5, 100) * 3
        dy = torch.randn(5, 100)
        out = run_case("gelu", {}, {"x": x, "dy": dy})
        y, (dx,), _ = grads(lambda: gelu_tanh(x), [x], {}, dy)
        # The spec's formula is what PyTorch calls approximate='tanh'.
        self.assertClose("y vs F.gelu", y, torch.nn.functional.gelu(x.detach(), approximate="tanh"), 1e-12)
        self.assertClose("y", out["y"], y)
        self.assertClose("dx", out["dx"], dx)

    def test_softmax(self):
        x = torch.randn(7, 50) * 4
        x[0, 3] = 200.0  # exp overflows in fp32 without the max shift
        dy = torch.randn(7, 50)
        out = run_case("softmax", {}, {"x": x, "dy": dy})
        y, (dx,), _ = grads(lambda: torch.softmax(x, -1), [x], {}, dy)
        self.assertClose("y", out["y"], y)
        self.assertClose("dx", out["dx"], dx)

    def test_mlp(self):
        d = 64
        x = torch.randn(2, 33, d)
        p = {"fc1.weight": torch.randn(4 * d, d) * 0.1, "fc1.bias": torch.randn(4 * d) * 0.5,
             "fc2.weight": torch.randn(d, 4 * d) * 0.1, "fc2.bias": torch.randn(d)}
        dy = torch.randn(2, 33, d)
        out = run_case("mlp", {}, {"x": x, "dy": dy, **p})
        y, (dx,), g = grads(lambda: mlp(x, p), [x], p, dy)
        self.compare_mixer(out, y, dx, g)

    def check_attention(self, rot):
        B, L, d, heads = 2, 33, 64, 4
        x = torch.randn(B, L, d)
        # Weights big enough that the attention pattern is far from uniform.
        p = {"Wqkv.weight": torch.randn(3 * d, d) * 0.15, "Wqkv.bias": torch.randn(3 * d) * 0.3,
             "out_proj.weight": torch.randn(d, d) * 0.1, "out_proj.bias": torch.randn(d)}
        dy = torch.randn(B, L, d)
        meta = {"d": d, "heads": heads, "rotary_dim": rot, "recurrent": True, "prefill": 20}
        out = run_case("attention", meta, {"x": x, "dy": dy, **p})
        y, (dx,), g = grads(lambda: attention(x, p, heads, rot), [x], p, dy)
        self.compare_mixer(out, y, dx, g)
        self.assertClose("y_reference", out["y_reference"], y)
        self.assertClose("y_step", out["y_step"], y)
        self.assertClose("y_prefill_step", out["y_prefill_step"], y)

    def test_attention(self):
        self.check_attention(0)

    def test_attention_rotary_half(self):
        self.check_attention(8)  # d_head / 2

    def test_attention_rotary_full(self):
        self.check_attention(16)

    def test_cross_entropy(self):
        rows, V = 40, 24
        logits = torch.randn(rows, V) * 3
        targets = torch.randint(0, V, (rows,))
        targets[[3, 17, 30]] = -1  # ignored rows
        targets[5] = -100
        out = run_case("cross_entropy", {}, {"logits": logits, "targets": targets.double()})
        keep = targets >= 0
        logits.requires_grad_(True)
        lse = torch.logsumexp(logits, -1)
        picked = logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]
        loss = (lse - picked)[keep].mean()
        loss.backward()
        self.assertClose("loss", out["loss"], loss.detach().reshape(1))
        self.assertClose("dlogits", out["dlogits"], logits.grad)
        correct = (logits.detach().argmax(-1) == targets)[keep].sum().item()
        self.assertEqual(out["valid"].item(), keep.sum().item())
        self.assertEqual(out["correct"].item(), correct)

    def test_cross_entropy_bad_target(self):
        with self.assertRaisesRegex(AssertionError, "target id 24"):
            run_case("cross_entropy", {}, {"logits": torch.randn(3, 24),
                                           "targets": torch.tensor([0.0, 24.0, 1.0])})

    def test_embedding(self):
        V, d = 50, 64
        E = torch.randn(V, d)
        ids = torch.randint(0, V, (70,))
        ids[:5] = 7  # repeated ids must add up
        dy = torch.randn(70, d)
        out = run_case("embedding", {}, {"weight": E, "ids": ids.double(), "dy": dy})
        E.requires_grad_(True)
        y = E[ids]
        y.backward(dy)
        self.assertClose("y", out["y"], y.detach())
        self.assertClose("grad.weight", out["grad.weight"], E.grad)

    def test_embedding_bad_id(self):
        with self.assertRaisesRegex(AssertionError, "token id 50 .*vocabulary size 50"):
            run_case("embedding", {}, {"weight": torch.randn(50, 8), "ids": torch.tensor([1.0, 50.0]),
                                       "dy": torch.randn(2, 8)})


if __name__ == "__main__":
    refcommon.main()
