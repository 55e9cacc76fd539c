"""Reference tests for the SSM kernels and mixers (spec §1-§3, §6), written from the spec in
float64 PyTorch: S4D kernel by its formula, shift kernel, causal convolution via torch.fft,
H3 (head_dim 1 and 2, both ablations) and the S4D mixer; y, dx and every parameter gradient
at relative max-norm 1e-4, and the recurrent outputs against the whole-sequence reference."""
import math
import os

# The cases are tiny: one thread avoids OpenMP fork/join costs that dominate on a loaded
# machine (hippo_ref inherits this). The threaded paths are covered by tests/ssm_test.cpp.
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

from refcommon import RefTestCase, main, run_case  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(1)


def f32(t):
    """Rounds to float32 values (what hippo receives), kept in float64."""
    return t.to(torch.float32).to(torch.float64)


# ---------------------------------------------------------------- reference maths
def s4d_dynamics(log_dt, inv_A_real, A_imag, B, C, disc):
    dt = torch.exp(log_dt)[:, None]
    A = torch.complex(-torch.exp(inv_A_real), A_imag)
    Bc = torch.complex(B[..., 0], B[..., 1])
    Cc = torch.complex(C[0, ..., 0], C[0, ..., 1])
    x = dt * A
    if disc == "bilinear":
        dA = (1 + x / 2) / (1 - x / 2)
        dB = Bc * dt / (1 - x / 2)
    else:
        dA = torch.exp(x)
        dB = Bc * (torch.exp(x) - 1) / A
    return dA, dB, Cc


def s4d_kernel(p, L, disc="bilinear", prefix="kernel.kernel."):
    """K[h,l] = 2 Re(sum_n C dB dA^l)."""
    dA, dB, Cc = s4d_dynamics(p[prefix + "log_dt"], p[prefix + "inv_A_real"], p[prefix + "A_imag"],
                              p[prefix + "B"], p[prefix + "C"], disc)
    l = torch.arange(L, dtype=torch.float64)
    powers = torch.exp(torch.log(dA)[..., None] * l)  # (H, M, L)
    return 2 * ((Cc * dB)[..., None] * powers).sum(-2).real


def shift_kernel(B, C):
    """K[h,j] = sum_{m=0}^{N-1-j} B[h,m] C[h,m+j]."""
    N = B.shape[-1]
    C = C[0]
    return torch.stack([(B[:, :N - j] * C[:, j:]).sum(-1) for j in range(N)], dim=-1)


def causal_conv(u, K):
    """(K * u)[t] = sum_{s<=t} K[t-s] u[s] along the last axis; K broadcasts against u."""
    L = u.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]


def causal_conv_loop(u, K):
    """Direct definition (for checking causal_conv itself)."""
    L, N = u.shape[-1], K.shape[-1]
    y = torch.zeros_like(u)
    for j in range(min(N, L)):
        y[..., j:] += K[..., j:j + 1] * u[..., :L - j]
    return y


def pad_kernel(K, L):
    out = torch.zeros(K.shape[:-1] + (L,), dtype=K.dtype)
    m = min(K.shape[-1], L)
    return torch.cat([K[..., :m], out[..., m:]], dim=-1)


def linear(x, p, name):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def h3_ref(x, p, d, N, hd, use_shift, use_diag, disc):
    Bs, L, _ = x.shape
    q, k, v = (linear(x, p, n).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
    if use_shift:
        Ks = shift_kernel(p["ssm_k_kernel.kernel.B"], p["ssm_k_kernel.kernel.C"])
        k = causal_conv(k, pad_kernel(Ks, L)) + p["ssm_k_D"][:, None] * k
    H = d // hd
    kr, vr, qr = k.reshape(Bs, H, hd, L), v.reshape(Bs, H, hd, L), q.reshape(Bs, H, hd, L)
    kv = kr[:, :, :, None, :] * vr[:, :, None, :, :]  # (B, H, i, j, L)
    z = kv
    if use_diag:
        Kd = s4d_kernel(p, L, disc)  # (H, L)
        z = causal_conv(kv, Kd[:, None, None, :]) + p["D"][:, None, None, None] * kv
    y = (qr[:, :, :, None, :] * z).sum(2)  # (B, H, j, L): channel h*hd + j
    y = y.reshape(Bs, d, L).transpose(1, 2)
    return linear(y, p, "output_linear")


def s4d_mixer_ref(x, p, disc):
    L = x.shape[1]
    u = x.transpose(1, 2)
    z = causal_conv(u, s4d_kernel(p, L, disc)) + p["D"][:, None] * u
    return linear(gelu_tanh(z).transpose(1, 2), p, "output_linear")


# ---------------------------------------------------------------- random parameters
def diag_params(H, N, prefix="kernel.kernel."):
    M = N // 2
    n = torch.arange(M, dtype=torch.float64)
    return {
        prefix + "log_dt": math.log(0.001) + torch.rand(H) * (math.log(0.1) - math.log(0.001)),
        prefix + "inv_A_real": math.log(0.5) + 0.3 * torch.randn(H, M),
        prefix + "A_imag": math.pi * n + 0.2 * torch.randn(H, M),
        prefix + "B": 1.0 + 0.5 * torch.randn(H, M, 2),
        prefix + "C": torch.randn(1, H, M, 2) * math.sqrt(0.5),
    }


def linear_params(name, d):
    return {name + ".weight": torch.randn(d, d) / math.sqrt(d), name + ".bias": 0.1 * torch.randn(d)}


def h3_params(d, N, hd, use_shift, use_diag):
    p = {}
    for n in ("q_proj", "k_proj", "v_proj", "output_linear"):
        p.update(linear_params(n, d))
    if use_shift:
        p["ssm_k_kernel.kernel.B"] = torch.randn(d, N) / math.sqrt(N)
        p["ssm_k_kernel.kernel.B"][:, 0] += 1.0
        p["ssm_k_kernel.kernel.C"] = (torch.rand(1, d, N) * 2 - 1) / math.sqrt(N)
        p["ssm_k_D"] = torch.randn(d)
    if use_diag:
        p.update(diag_params(d // hd, N))
        p["D"] = torch.randn(d // hd)
    return {k: f32(v) for k, v in p.items()}


# ---------------------------------------------------------------- tests
class TestKernels(RefTestCase):
    def check_s4d_kernel(self, H, N, L, disc, inv=False):
        p = diag_params(H, N)
        if inv:  # S4D-Inv frequencies: large imaginary parts
            n = torch.arange(N // 2, dtype=torch.float64)
            p["kernel.kernel.A_imag"] = (N / math.pi) * (N / (2 * n + 1) - 1) + 0.1 * torch.randn(H, N // 2)
        p = {k: f32(v).requires_grad_() for k, v in p.items()}
        dK = f32(torch.randn(H, L))
        out = run_case("s4d_kernel", {"H": H, "N": N, "L": L, "disc": disc},
                       {**{k: v.detach() for k, v in p.items()}, "dK": dK})
        K = s4d_kernel(p, L, disc)
        K.backward(dK)
        print(f"s4d_kernel H={H} N={N} L={L} {disc} inv={inv}")
        self.assertClose("K", out["K"], K.detach())
        dA, dB, _ = s4d_dynamics(*(p["kernel.kernel." + n].detach() for n in
                                   ("log_dt", "inv_A_real", "A_imag", "B", "C")), disc)
        self.assertClose("dA", out["dA"], torch.view_as_real(dA))
        self.assertClose("dB", out["dB"], torch.view_as_real(dB))
        for k, v in p.items():
            self.assertClose("grad." + k, out["grad." + k], v.grad)

    def test_s4d_kernel_bilinear(self):
        self.check_s4d_kernel(8, 64, 1024, "bilinear")
        self.check_s4d_kernel(4, 16, 100, "bilinear")

    def test_s4d_kernel_zoh(self):
        self.check_s4d_kernel(8, 64, 1024, "zoh")
        self.check_s4d_kernel(4, 16, 100, "zoh")

    def test_s4d_kernel_inv_init(self):
        self.check_s4d_kernel(8, 64, 1024, "bilinear", inv=True)
        self.check_s4d_kernel(8, 64, 1024, "zoh", inv=True)

    def test_shift_kernel(self):
        H, N = 6, 64
        B = f32(torch.randn(H, N)).requires_grad_()
        C = f32(torch.randn(1, H, N)).requires_grad_()
        dK = f32(torch.randn(H, N))
        out = run_case("shift_kernel", {"H": H, "N": N},
                       {"ssm_k_kernel.kernel.B": B.detach(), "ssm_k_kernel.kernel.C": C.detach(), "dK": dK})
        K = shift_kernel(B, C)
        K.backward(dK)
        self.assertClose("K", out["K"], K.detach())
        self.assertClose("grad.B", out["grad.ssm_k_kernel.kernel.B"], B.grad)
        self.assertClose("grad.C", out["grad.ssm_k_kernel.kernel.C"], C.grad)

    def check_conv(self, case, B, H, L, N):
        u = f32(torch.randn(B, H, L)).requires_grad_()
        K = f32(torch.randn(H, N)).requires_grad_()
        dy = f32(torch.randn(B, H, L))
        out = run_case(case, {}, {"u": u.detach(), "K": K.detach(), "dy": dy})
        y = causal_conv_loop(u, K)
        self.assertClose("fft ref vs loop", causal_conv(u, pad_kernel(K, L)).detach(), y.detach(), 1e-12)
        y.backward(dy)
        print(f"{case} B={B} H={H} L={L} N={N}")
        self.assertClose("y", out["y"], y.detach())
        self.assertClose("du", out["du"], u.grad)
        self.assertClose("dK", out["dK"], K.grad)

    def test_fft_conv(self):
        self.check_conv("fft_conv", 2, 5, 100, 100)
        self.check_conv("fft_conv", 1, 3, 1, 1)
        self.check_conv("fft_conv", 3, 4, 257, 257)

    def test_conv_direct(self):
        self.check_conv("conv_direct", 2, 5, 100, 64)
        self.check_conv("conv_direct", 2, 3, 10, 64)  # kernel longer than the sequence


class TestMixers(RefTestCase):
    def run_mixer(self, case, meta, params, ref_fn, B=2, L=100, prefill=37):
        d = meta["d"]
        x = f32(torch.randn(B, L, d)).requires_grad_()
        dy = f32(torch.randn(B, L, d))
        p = {k: v.clone().requires_grad_() for k, v in params.items()}
        meta = {**meta, "recurrent": True, "prefill": prefill}
        out = run_case(case, meta, {**params, "x": x.detach(), "dy": dy})
        y = ref_fn(x, p)
        y.backward(dy)
        print(f"{case} {meta}")
        self.compare_mixer(out, y.detach(), x.grad, {k: v.grad for k, v in p.items()})
        self.assertEqual(set(k for k in out if k.startswith("grad.")), set("grad." + k for k in p))
        self.assertClose("y_step", out["y_step"], y.detach())
        self.assertClose("y_prefill_step", out["y_prefill_step"], y.detach())

    def check_h3(self, d, N, hd, use_shift=True, use_diag=True, disc="bilinear", **kw):
        params = h3_params(d, N, hd, use_shift, use_diag)
        meta = {"d": d, "d_state": N, "head_dim": hd, "use_shift": use_shift, "use_diag": use_diag,
                "disc": disc}
        self.run_mixer("h3", meta, params,
                       lambda x, p: h3_ref(x, p, d, N, hd, use_shift, use_diag, disc), **kw)

    def test_h3(self):
        self.check_h3(32, 64, 1)

    def test_h3_small_state_zoh(self):
        self.check_h3(64, 16, 1, disc="zoh")

    def test_h3_multihead(self):
        self.check_h3(32, 16, 2)
        self.check_h3(32, 64, 4, L=50)

    def test_h3_without_shift(self):
        self.check_h3(32, 64, 1, use_shift=False)
        self.check_h3(32, 16, 2, use_shift=False)

    def test_h3_without_diag(self):
        self.check_h3(32, 64, 1, use_diag=False)
        self.check_h3(32, 16, 2, use_diag=False)

    def test_h3_short_sequence(self):
        # L < N: the shift filter is cut; prefill of 1 token.
        self.check_h3(32, 64, 1, L=7, B=3, prefill=1)

    def test_s4d_mixer(self):
        for d, N, disc in ((32, 64, "bilinear"), (64, 16, "zoh")):
            p = diag_params(d, N)
            p["D"] = torch.randn(d)
            p.update(linear_params("output_linear", d))
            p = {k: f32(v) for k, v in p.items()}
            self.run_mixer("s4d_mixer", {"d": d, "d_state": N, "disc": disc}, p,
                           lambda x, q: s4d_mixer_ref(x, q, disc))


if __name__ == "__main__":
    main()
