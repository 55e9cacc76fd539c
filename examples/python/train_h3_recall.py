#!/usr/bin/python3
"""Trains a small H3 language model in PyTorch whose long convolutions are hippo.ops (hippo's
CPU FlashConv, forward and backward) on associative recall, the task of `hippo synth`:

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_h3_recall.py [--steps 800]

Task (as src/data/synthetic.cpp, vocab 10, length 20): 8 key-value pairs over 4 keys and 4
values (a random key->value map per sequence), then a trigger token, a key, and its value; the
loss is next-token cross-entropy at every position, accuracy is on the last token (the value
of the queried key) over a held-out test set. `hippo synth` trains the same model size
(d_model 64, 2 H3 layers, d_state 64, batch 32, AdamW lr 1e-3, init std 1/sqrt(d)) to 100%
test accuracy in about 670 steps.

The H3 mixer (spec H3.md §3, head_dim 1): q, k, v projections; k through the shift SSM (a
learned length-N kernel) and v multiplied in; the diagonal SSM (S4D kernel from complex
(A, B, C, dt), bilinear) over k ⊙ v with skip D; times q; an output projection. Everything
between the projections is one hippo.ops.h3_conv call.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import hippo
import hippo.ops


def recall_batch(n, vocab=10, seq_len=20, g=None):
    """n associative-recall sequences (n, seq_len) int64."""
    n_keys = (vocab - 2) // 2
    trigger, noop = vocab - 2, vocab - 1
    n_pairs = (seq_len - 3) // 2
    pad = seq_len - 3 - 2 * n_pairs
    values = torch.argsort(torch.rand(n, n_keys, generator=g), dim=1) + n_keys  # key -> value
    keys = torch.randint(0, n_keys, (n, n_pairs), generator=g)
    vals = torch.gather(values, 1, keys)
    body = torch.stack([keys, vals], 2).reshape(n, 2 * n_pairs)
    q = keys[torch.arange(n), torch.randint(0, n_pairs, (n,), generator=g)]
    tail = torch.stack([torch.full((n,), trigger), q, torch.gather(values, 1, q[:, None])[:, 0]], 1)
    return torch.cat([torch.full((n, pad), noop), body, tail], 1)


class H3Mixer(nn.Module):
    def __init__(self, d, N=64):
        super().__init__()
        M = N // 2
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.shift = nn.Parameter(torch.empty(d, N).uniform_(-1 / math.sqrt(N), 1 / math.sqrt(N)))
        self.shift_D = nn.Parameter(torch.randn(d))
        self.log_dt = nn.Parameter(torch.empty(d).uniform_(math.log(1e-3), math.log(1e-1)))
        self.inv_A_real = nn.Parameter(torch.log(0.5 * torch.ones(d, M)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(M).repeat(d, 1).float())
        self.C = nn.Parameter(torch.randn(d, M, 2) * 0.5)
        self.D = nn.Parameter(torch.randn(d))

    def ssm_kernel(self, L):
        """S4D (bilinear, B = 1): K[h, l] = 2 Re(sum_n C_n dB_n dA_n^l), computed in complex128."""
        dt = torch.exp(self.log_dt.double())[:, None]
        A = -torch.exp(self.inv_A_real.double()) + 1j * self.A_imag.double()
        dA = (1 + dt * A / 2) / (1 - dt * A / 2)
        dB = dt / (1 - dt * A / 2)
        C = torch.view_as_complex(self.C.double().contiguous())
        powers = dA[:, :, None] ** torch.arange(L, dtype=torch.float64)
        return (2 * torch.einsum("hm,hml->hl", C * dB, powers).real).float()

    def forward(self, u):  # (B, L, d)
        L = u.shape[1]
        q, k, v = (p(u).transpose(1, 2).contiguous() for p in (self.q_proj, self.k_proj, self.v_proj))
        N = self.shift.shape[1]
        shift = F.pad(self.shift, (0, max(0, L - N)))[:, :L].contiguous()
        y = hippo.ops.h3_conv(q, k, v, self.ssm_kernel(L), self.D,
                              shift_kernel=shift, shift_D=self.shift_D)
        return self.out(y.transpose(1, 2))


class H3LM(nn.Module):
    def __init__(self, vocab, d=64, n_layer=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList()
        for _ in range(n_layer):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(d), "mixer": H3Mixer(d), "ln2": nn.LayerNorm(d),
                "mlp": nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))}))
        self.ln_f = nn.LayerNorm(d)
        std = 1 / math.sqrt(d)
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                nn.init.normal_(p, std=std)

    def forward(self, tokens):
        r = self.emb(tokens)
        for b in self.blocks:
            r = r + b["mixer"](b["ln1"](r))
            r = r + b["mlp"](b["ln2"](r))
        return self.ln_f(r) @ self.emb.weight.T


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    hippo.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    train, test = recall_batch(5000, g=g), recall_batch(500, g=g)
    model = H3LM(10)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.1)
    t0 = time.time()
    acc = 0.0
    for step in range(1, a.steps + 1):
        x = train[torch.randint(0, len(train), (a.batch,), generator=g)]
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 10), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % a.eval_every == 0 or step == a.steps:
            with torch.no_grad():
                pred = model(test[:, :-1])[:, -1].argmax(-1)
            acc = (pred == test[:, -1]).float().mean().item()
            print(f"step {step:5d}  loss {loss.item():.4f}  test accuracy {100 * acc:5.1f}%  "
                  f"({time.time() - t0:.1f} s)", flush=True)
            if acc == 1.0:
                break
    print(f"final test accuracy {100 * acc:.1f}% after {step} steps")


if __name__ == "__main__":
    main()
