"""A plain PyTorch implementation of the H3 language model, written from ../shared/spec/H3.md.

Module and parameter names follow the official checkpoints (spec §5), so `state_dict()` keys
are the ones hippo uses. Everything is float64 and unoptimised on purpose: it is the reference.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_conv(u, K):
    """u: (B, H, L), K: (H, L') -> (B, H, L); y[t] = sum_{s<=t} K[t-s] u[s]."""
    L = u.shape[-1]
    n = 2 * L
    Kf = torch.fft.rfft(K[..., :L], n=n)
    uf = torch.fft.rfft(u, n=n)
    return torch.fft.irfft(uf * Kf, n=n)[..., :L]


class S4DKernel(nn.Module):
    """Diagonal SSM kernel (spec §1). Parameters as in the checkpoints."""

    def __init__(self, H, N, disc="bilinear"):
        super().__init__()
        M = N // 2
        self.disc = disc
        self.log_dt = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))
        self.inv_A_real = nn.Parameter(torch.log(0.5 * torch.ones(H, M)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(M).repeat(H, 1).double())
        self.B = nn.Parameter(torch.stack([torch.ones(H, M), torch.zeros(H, M)], -1))
        self.C = nn.Parameter(torch.randn(1, H, M, 2) * 0.5)

    def discretize(self):
        dt = torch.exp(self.log_dt)[:, None]
        A = -torch.exp(self.inv_A_real) + 1j * self.A_imag
        B = torch.view_as_complex(self.B.contiguous())
        if self.disc == "bilinear":
            dA = (1 + dt * A / 2) / (1 - dt * A / 2)
            dB = B * dt / (1 - dt * A / 2)
        else:
            dA = torch.exp(dt * A)
            dB = B * (torch.exp(dt * A) - 1) / A
        return dA, dB

    def forward(self, L):
        dA, dB = self.discretize()
        C = torch.view_as_complex(self.C[0].contiguous())
        powers = dA[:, :, None] ** torch.arange(L, dtype=torch.float64)  # (H, M, L)
        return 2 * torch.einsum("hm,hml->hl", C * dB, powers).real


class ShiftKernel(nn.Module):
    """Shift SSM (spec §2): K[h, j] = sum_m B[h, m] C[h, m + j]."""

    def __init__(self, H, N):
        super().__init__()
        B = torch.zeros(H, N)
        B[:, 0] = 1
        self.B = nn.Parameter(B)
        self.C = nn.Parameter(torch.empty(1, H, N).uniform_(-1 / math.sqrt(N), 1 / math.sqrt(N)))

    def forward(self, L):
        H, N = self.B.shape
        C = self.C[0]
        K = torch.stack([(self.B[:, : N - j] * C[:, j:]).sum(-1) for j in range(N)], -1)
        if L > N:
            K = F.pad(K, (0, L - N))
        return K[:, :L]


class H3(nn.Module):
    def __init__(self, d, N=64, head_dim=1, use_shift=True, use_diag=True, disc="bilinear"):
        super().__init__()
        self.d, self.p = d, head_dim
        self.H = d // head_dim
        self.use_shift, self.use_diag = use_shift, use_diag
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        if use_shift:
            self.ssm_k_kernel = nn.Module()
            self.ssm_k_kernel.kernel = ShiftKernel(d, N)
            self.ssm_k_D = nn.Parameter(torch.randn(d))
        if use_diag:
            self.kernel = nn.Module()
            self.kernel.kernel = S4DKernel(self.H, N, disc)
            self.D = nn.Parameter(torch.randn(self.H))
        self.output_linear = nn.Linear(d, d)

    def forward(self, u):  # (B, L, d)
        Bsz, L, d = u.shape
        q = self.q_proj(u).transpose(1, 2)
        k = self.k_proj(u).transpose(1, 2)
        v = self.v_proj(u).transpose(1, 2)  # (B, d, L)
        if self.use_shift:
            k = causal_conv(k, self.ssm_k_kernel.kernel(L)) + self.ssm_k_D[:, None] * k
        p, H = self.p, self.H
        if p == 1:
            kv = k * v
            if self.use_diag:
                kv = causal_conv(kv, self.kernel.kernel(L)) + self.D[:, None] * kv
            y = q * kv
        else:
            kh = k.reshape(Bsz, H, p, 1, L)
            vh = v.reshape(Bsz, H, 1, p, L)
            kv = (kh * vh).reshape(Bsz, H, p * p, L)  # pair (i, j)
            if self.use_diag:
                K = self.kernel.kernel(L)  # (H, L): one kernel per head, shared by its pairs
                conv = torch.stack([causal_conv(kv[:, :, c], K) for c in range(p * p)], 2)
                kv = conv + self.D[None, :, None, None] * kv
            kv = kv.reshape(Bsz, H, p, p, L)
            qh = q.reshape(Bsz, H, p, 1, L)
            y = (qh * kv).sum(2).reshape(Bsz, d, L)  # y[h*p + j]
        return self.output_linear(y.transpose(1, 2))


class S4DMixer(nn.Module):
    def __init__(self, d, N=64, disc="bilinear"):
        super().__init__()
        self.kernel = nn.Module()
        self.kernel.kernel = S4DKernel(d, N, disc)
        self.D = nn.Parameter(torch.randn(d))
        self.output_linear = nn.Linear(d, d)

    def forward(self, u):
        L = u.shape[1]
        x = u.transpose(1, 2)
        y = causal_conv(x, self.kernel.kernel(L)) + self.D[:, None] * x
        y = F.gelu(y, approximate="tanh")
        return self.output_linear(y.transpose(1, 2))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], -1)


class Attention(nn.Module):
    def __init__(self, d, heads, rotary_dim=0):
        super().__init__()
        self.d, self.heads, self.rotary_dim = d, heads, rotary_dim
        self.Wqkv = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)

    def rotary(self, x):  # (B, heads, L, dh)
        r = self.rotary_dim
        L = x.shape[2]
        inv_freq = 1.0 / (10000 ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
        freqs = torch.outer(torch.arange(L, dtype=torch.float64), inv_freq)
        emb = torch.cat([freqs, freqs], -1)
        xr, xp = x[..., :r], x[..., r:]
        xr = xr * emb.cos() + rotate_half(xr) * emb.sin()
        return torch.cat([xr, xp], -1)

    def forward(self, u):
        B, L, d = u.shape
        h, dh = self.heads, d // self.heads
        q, k, v = self.Wqkv(u).split(d, -1)
        q = q.reshape(B, L, h, dh).transpose(1, 2)
        k = k.reshape(B, L, h, dh).transpose(1, 2)
        v = v.reshape(B, L, h, dh).transpose(1, 2)
        if self.rotary_dim:
            q, k = self.rotary(q), self.rotary(k)
        s = q @ k.transpose(-1, -2) / math.sqrt(dh)
        mask = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
        s = s.masked_fill(mask, float("-inf"))
        o = torch.softmax(s, -1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(B, L, d))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def make_mixer(kind, cfg):
    d, N = cfg["d_model"], cfg.get("d_state", 64)
    disc = cfg.get("discretization", "bilinear")
    if kind == "attention":
        return Attention(d, cfg.get("attn_heads", 4), cfg.get("rotary_dim", 0))
    if kind == "s4d":
        return S4DMixer(d, N, disc)
    return H3(d, N, cfg.get("head_dim", 1), use_shift=kind != "h3_noshift",
              use_diag=kind != "h3_nodiag", disc=disc)


class Block(nn.Module):
    def __init__(self, kind, cfg):
        super().__init__()
        d = cfg["d_model"]
        self.norm1 = nn.LayerNorm(d, eps=1e-5)
        self.mixer = make_mixer(kind, cfg)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = Mlp(d)

    def forward(self, r):
        r = r + self.mixer(self.norm1(r))
        return r + self.mlp(self.norm2(r))


class LM(nn.Module):
    """cfg: the hippo model config as a dict, with "layers" listing every mixer."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg["d_model"]
        V = (cfg["vocab_size"] + 7) // 8 * 8
        self.backbone = nn.Module()
        self.backbone.embeddings = nn.Module()
        self.backbone.embeddings.word_embeddings = nn.Embedding(V, d)
        self.learned_pos = cfg.get("learned_pos", False)
        if self.learned_pos:
            self.backbone.embeddings.position_embeddings = nn.Embedding(cfg.get("max_position", 2048), d)
        self.backbone.layers = nn.ModuleList([Block(k, cfg) for k in cfg["layers"]])
        self.backbone.ln_f = nn.LayerNorm(d, eps=1e-5)

    def forward(self, tokens):
        E = self.backbone.embeddings.word_embeddings
        r = E(tokens)
        if self.learned_pos:
            pos = torch.arange(tokens.shape[1])
            r = r + self.backbone.embeddings.position_embeddings(pos)[None]
        for blk in self.backbone.layers:
            r = blk(r)
        return self.backbone.ln_f(r) @ E.weight.t()


def randomize_(module, scale=0.3, seed=0):
    """Replace every parameter with random values, so no path hides behind a zero or a one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("log_dt"):
                p.copy_(torch.empty(p.shape).uniform_(math.log(1e-3), math.log(1e-1), generator=g))
            elif name.endswith("inv_A_real"):
                p.copy_(torch.log(0.5 + 0.1 * torch.rand(p.shape, generator=g)))
            elif name.endswith("A_imag"):
                M = p.shape[-1]
                p.copy_(math.pi * torch.arange(M).double() + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g) + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
