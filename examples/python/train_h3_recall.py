#!/usr/bin/python3
"""Trains a small H3 language model in PyTorch whose long convolutions are hippo.ops (hippo's
CPU FlashConv, forward and backward) on associative recall, the way `hippo synth` trains its H3
run, and stops when it reaches that run's accuracy (100% on the held-out test set):

    PYTHONPATH=build/python /usr/bin/python3 examples/python/train_h3_recall.py [--lr 1e-3]

Task (as src/data/synthetic.cpp, vocab 10, length 20): 8 key-value pairs over 4 keys and 4
values (a random key->value map per sequence), then a trigger token, a key, and its value; the
loss is next-token cross-entropy at every position, accuracy is on the last token (the value
of the queried key) over 500 test sequences that never repeat one of the 5,000 training ones.

Everything is `hippo synth`'s setting for H3 (src/api/synth.cpp, the H3 layer of src/nn/h3.cpp,
src/ssm/{shift,s4d}.cpp): d_model 64, 2 layers, d_state 64, MLP 4d, pre-norm, tied embedding
(padded to 16 rows); init std 1/sqrt(d) for the projections and the embedding, divided by
sqrt(2 n_layer) for the output projections, zero biases, shift SSM B = e1 and C ~ U(+-1/sqrt(N)),
S4D-Lin with B = 1 and complex-normal C, D and the shift skip standard normal; AdamW with
weight decay 0.1 on the projections, the embedding and the SSMs' C only, the SSM dynamics
(dt, A, B, the shift SSM's B) at min(lr, 1e-3) without decay; warmup min(100, steps/10) then
cosine to 10% over --steps (3,000, the study's budget), clip 1.0, batch 32 from a shuffled
epoch order, test accuracy every 100 steps, stop at 100%. `hippo synth` reaches 100% for H3 in
every seed, at ~670 steps (lr 1e-3; docs/results.md).

The H3 mixer (spec H3.md §3, head_dim 1): q, k, v projections; k through the shift SSM and v
multiplied in; the diagonal SSM (S4D kernel, bilinear) over k ⊙ v with skip D; times q; an output
projection. Everything between the projections is one hippo.ops.h3_conv call.
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


def recall_splits(n_train, n_test, g):
    """Training and test sequences; the test set never repeats a training sequence."""
    train = recall_batch(n_train, g=g)
    seen = {tuple(r) for r in train.tolist()}
    test = []
    while len(test) < n_test:
        test += [r for r in recall_batch(n_test, g=g).tolist() if tuple(r) not in seen]
    return train, torch.tensor(test[:n_test])


class ShiftSSM(nn.Module):
    """hippo's shift SSM (src/ssm/shift.cpp): kernel K[h, j] = sum_m B[h, m] C[h, m + j]."""

    def __init__(self, d, N):
        super().__init__()
        self.B = nn.Parameter(torch.zeros(d, N))
        self.B.data[:, 0] = 1.0
        self.C = nn.Parameter(torch.empty(d, N).uniform_(-1 / math.sqrt(N), 1 / math.sqrt(N)))

    def kernel(self, L):
        H, N = self.C.shape
        # conv1d is a cross-correlation: out[h, j] = sum_m B[h, m] C[h, m + j].
        K = F.conv1d(F.pad(self.C, (0, N))[None], self.B[:, None, :], groups=H)[0, :, :N]
        return F.pad(K, (0, max(0, L - N)))[:, :L].contiguous()


class S4D(nn.Module):
    """S4D-Lin (src/ssm/s4d.cpp), bilinear: K[h, l] = 2 Re(sum_n C_n dB_n dA_n^l)."""

    def __init__(self, d, N):
        super().__init__()
        M = N // 2
        self.log_dt = nn.Parameter(torch.empty(d).uniform_(math.log(1e-3), math.log(1e-1)))
        self.inv_A_real = nn.Parameter(torch.full((d, M), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(M).repeat(d, 1).float())
        self.B = nn.Parameter(torch.stack([torch.ones(d, M), torch.zeros(d, M)], -1))
        self.C = nn.Parameter(torch.randn(d, M, 2) * math.sqrt(0.5))

    def kernel(self, L):  # in complex128, like the engine's double-precision kernel
        dt = torch.exp(self.log_dt.double())[:, None]
        A = -torch.exp(self.inv_A_real.double()) + 1j * self.A_imag.double()
        B = torch.view_as_complex(self.B.double().contiguous())
        C = torch.view_as_complex(self.C.double().contiguous())
        dA = (1 + dt * A / 2) / (1 - dt * A / 2)
        dB = B * dt / (1 - dt * A / 2)
        x, cols = C * dB, []
        for _ in range(L):  # dA^l by repeated products (L is short here)
            cols.append(x.sum(-1))
            x = x * dA
        return (2 * torch.stack(cols, -1).real).float()


class H3Mixer(nn.Module):
    def __init__(self, d, N=64):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.shift = ShiftSSM(d, N)
        self.shift_D = nn.Parameter(torch.randn(d))
        self.ssm = S4D(d, N)
        self.D = nn.Parameter(torch.randn(d))

    def forward(self, u):  # (B, L, d)
        L = u.shape[1]
        q, k, v = (p(u).transpose(1, 2).contiguous() for p in (self.q_proj, self.k_proj, self.v_proj))
        y = hippo.ops.h3_conv(q, k, v, self.ssm.kernel(L), self.D,
                              shift_kernel=self.shift.kernel(L), shift_D=self.shift_D)
        return self.out(y.transpose(1, 2).contiguous())  # (a strided input would take bmm)


class H3LM(nn.Module):
    def __init__(self, vocab, d=64, n_layer=2):
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding((vocab + 7) // 8 * 8, d)  # padded like the engine's
        self.blocks = nn.ModuleList()
        for _ in range(n_layer):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(d), "mixer": H3Mixer(d), "ln2": nn.LayerNorm(d),
                "mlp": nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))}))
        self.ln_f = nn.LayerNorm(d)
        std = 1 / math.sqrt(d)
        nn.init.normal_(self.emb.weight, std=std)
        for b in self.blocks:
            for lin in (b["mixer"].q_proj, b["mixer"].k_proj, b["mixer"].v_proj, b["mlp"][0]):
                nn.init.normal_(lin.weight, std=std)
            for lin in (b["mixer"].out, b["mlp"][2]):
                nn.init.normal_(lin.weight, std=std / math.sqrt(2 * n_layer))
            for m in b.modules():
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

    def forward(self, tokens):
        r = self.emb(tokens)
        for b in self.blocks:
            r = r + b["mixer"](b["ln1"](r))
            r = r + b["mlp"](b["ln2"](r))
        return self.ln_f(r) @ self.emb.weight.T  # (B, L, padded vocab)

    def param_groups(self, lr, weight_decay=0.1, ssm_lr_cap=1e-3):
        """hippo's AdamW groups (src/core/param.h ParamKind): decay on the projections, the
        embedding and the SSMs' C; none on biases, norms and skips; SSM dynamics at
        min(lr, ssm_lr_cap) without decay."""
        decay, no_decay, dynamics = [], [], []
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if ".ssm." in name and leaf != "C" or name.endswith("shift.B"):
                dynamics.append(p)
            elif leaf == "C" or (leaf == "weight" and p.dim() == 2):
                decay.append(p)
            else:
                no_decay.append(p)
        return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
                {"params": no_decay, "weight_decay": 0.0, "lr": lr},
                {"params": dynamics, "weight_decay": 0.0, "lr": min(lr, ssm_lr_cap)}]


def lr_scale(step, warmup, total, min_ratio=0.1):
    """src/train/schedule.cpp: linear warmup from 0, then cosine to min_ratio (step 0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(steps=3000, lr=1e-3, batch=32, eval_every=100, seed=0, log=print):
    """Trains until 100% test accuracy or `steps`; returns (test accuracy, steps done)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_set, test_set = recall_splits(5000, 500, g)
    model = H3LM(10)
    opt = torch.optim.AdamW(model.param_groups(lr), betas=(0.9, 0.999), eps=1e-8)
    peak = [grp["lr"] for grp in opt.param_groups]
    warmup = min(100, steps // 10)
    order, t0, acc, step = torch.empty(0, dtype=torch.long), time.time(), 0.0, 0
    for step in range(1, steps + 1):
        if len(order) < batch:  # a new epoch: the training set in a fresh random order
            order = torch.cat([order, torch.randperm(len(train_set), generator=g)])
        x, order = train_set[order[:batch]], order[batch:]
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scale = lr_scale(step - 1, warmup, steps)
        for grp, lr_peak in zip(opt.param_groups, peak):
            grp["lr"] = lr_peak * scale
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                pred = model(test_set[:, :-1])[:, -1, :model.vocab].argmax(-1)
            acc = (pred == test_set[:, -1]).float().mean().item()
            log(f"step {step:5d}  loss {loss.item():.4f}  test accuracy {100 * acc:5.1f}%  "
                f"({time.time() - t0:.1f} s)")
            if acc == 1.0:
                break
    return acc, step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3000, help="budget (the schedule's length)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    hippo.set_num_threads(a.threads)
    acc, step = train(a.steps, a.lr, a.batch, a.eval_every, a.seed,
                      log=lambda s: print(s, flush=True))
    print(f"final test accuracy {100 * acc:.1f}% after {step} steps")


if __name__ == "__main__":
    main()
