"""FlashConv against a float64 PyTorch torch.fft reference.

The reference convolves with rfft/irfft at n = 2L (zero padding, so the circular convolution
is the causal one) and gets gradients from autograd; the SSM case builds K from (dA, C dB)
and checks hippo's chunked state passing against the unchunked FFT convolution.
"""
import torch

import refcommon
from refcommon import RefTestCase, run_case


def fft_conv(u, K, D):
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]
    return y + D[:, None] * u


def h3_inner(q, k, v, K, D):
    return q * fft_conv(k * v, K, D)


def randn(*shape, g):
    return torch.randn(*shape, generator=g)


def decaying_kernel(H, L, g):
    t = torch.arange(L, dtype=torch.float64)
    return randn(H, L, g=g) * torch.exp(-t / 40.0)


def f32(x):
    """The fp32 values hippo sees, so the reference starts from identical inputs."""
    return x.to(torch.float32).to(torch.float64)


class TestFlashConv(RefTestCase):
    SHAPES = [(1, 1, 1), (2, 3, 5), (2, 17, 64), (1, 20, 100), (2, 40, 1024), (1, 33, 1500)]

    def check(self, op, B, H, L, isa="auto"):
        g = torch.Generator().manual_seed(B * 1000 + H * 10 + L)
        K, D = f32(decaying_kernel(H, L, g)), f32(randn(H, g=g))
        dy = f32(randn(B, H, L, g=g))
        if op == "conv":
            xs = {"u": f32(randn(B, H, L, g=g))}
        else:
            xs = {n: f32(randn(B, H, L, g=g)) for n in ("q", "k", "v")}
        leaves = {**xs, "K": K, "D": D}
        for t in leaves.values():
            t.requires_grad_(True)
        if op == "conv":
            y = fft_conv(leaves["u"], leaves["K"], leaves["D"])
        else:
            y = h3_inner(leaves["q"], leaves["k"], leaves["v"], leaves["K"], leaves["D"])
        y.backward(dy)
        out = run_case("flashconv", {"op": op, "isa": isa},
                       {**{n: t.detach() for n, t in leaves.items()}, "dy": dy})
        print(f"{op} B={B} H={H} L={L} isa={isa}")
        self.assertClose("y", out["y"], y.detach())
        for n, t in leaves.items():
            self.assertClose("d" + n, out["d" + n], t.grad)

    def test_conv(self):
        for s in self.SHAPES:
            self.check("conv", *s)

    def test_h3(self):
        for s in self.SHAPES:
            self.check("h3", *s)

    def test_h3_every_isa(self):
        for isa in ("scalar", "avx2", "avx512"):
            try:
                self.check("h3", 2, 19, 300, isa)
            except AssertionError as e:
                if "does not support" in str(e):
                    print(f"  {isa}: not supported on this CPU, skipped")
                    continue
                raise

    def test_state_passing(self):
        g = torch.Generator().manual_seed(7)
        B, H, M = 2, 3, 16
        for T, L in [(64, 63), (64, 64), (64, 65), (64, 643), (32, 1000)]:
            dt = torch.exp(torch.empty(H, 1).uniform_(-4.6, -1.6, generator=g))
            A = torch.complex(-0.5 * torch.ones(H, M), torch.pi * torch.arange(M).repeat(H, 1).double())
            dA = (1 + dt * A / 2) / (1 - dt * A / 2)
            dB = dt / (1 - dt * A / 2)
            C = torch.complex(randn(H, M, g=g), randn(H, M, g=g))
            CB = C * dB
            dA = torch.complex(f32(dA.real), f32(dA.imag)).detach()
            CB = torch.complex(f32(CB.real), f32(CB.imag)).detach()
            D = f32(randn(H, g=g))
            u = f32(randn(B, H, L, g=g))
            dy = f32(randn(B, H, L, g=g))
            for t in (dA, CB, D, u):
                t.requires_grad_(True)
            powers = dA[:, :, None] ** torch.arange(L, dtype=torch.float64)  # (H, M, L)
            K = 2 * (CB[:, :, None] * powers).sum(1).real
            y = fft_conv(u, K, D)
            y.backward(dy)
            out = run_case("flashconv_ssm", {"T": T},
                           {"u": u.detach(), "dA_re": dA.real.detach(), "dA_im": dA.imag.detach(),
                            "CB_re": CB.real.detach(), "CB_im": CB.imag.detach(), "D": D.detach(),
                            "dy": dy})
            print(f"ssm T={T} L={L}")
            self.assertClose("y", out["y"], y.detach())
            self.assertClose("du", out["du"], u.grad)
            self.assertClose("dD", out["dD"], D.grad)
            # For a real loss, torch's gradient of a complex leaf is dL/dre + i dL/dim.
            self.assertClose("d dA.re", out["grad.dA_re"], dA.grad.real)
            self.assertClose("d dA.im", out["grad.dA_im"], dA.grad.imag)
            self.assertClose("d CB.re", out["grad.CB_re"], CB.grad.real)
            self.assertClose("d CB.im", out["grad.CB_im"], CB.grad.imag)


if __name__ == "__main__":
    refcommon.main()
