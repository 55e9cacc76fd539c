"""hippo.ops as PyTorch autograd ops: gradcheck in float64 (the direct double path), float32
FlashConv forward and backward against a float64 torch.fft reference computed from the same
float32 inputs, the ops as a drop-in inside the reference H3 layer (tests/ref/torch_h3.py),
and refused input."""
import unittest

import torch

import pyhelpers  # noqa: F401  (tests/ref on sys.path)
from pyhelpers import rel_err
import torch_h3

import hippo
import hippo.ops


def fft_conv(u, k, D):
    """The torch.fft path: causal convolution by rfft at n = 2L, plus the skip."""
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]
    return y + D[:, None] * u


def h3_ref(q, k, v, K, D):
    return q * fft_conv(k * v, K, D)


def decaying(H, L, g, dtype):
    t = torch.arange(L, dtype=torch.float64)
    return (torch.randn(H, L, generator=g, dtype=torch.float64) * torch.exp(-t / 40.0)).to(dtype)


def inputs(B, H, L, n_act, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    acts = [torch.randn(B, H, L, generator=g, dtype=torch.float64).to(dtype) for _ in range(n_act)]
    return acts + [decaying(H, L, g, dtype), torch.randn(H, generator=g, dtype=torch.float64).to(dtype)]


class HippoH3(torch_h3.H3):
    """The reference H3 layer with its long convolutions replaced by hippo.ops (head_dim 1).
    The convolutions run in op_dtype (the SSM kernels are computed as the reference computes
    them, in float64, then cast)."""

    op_dtype = torch.float64

    def forward(self, u):
        Bsz, L, d = u.shape
        dt = self.op_dtype
        q = self.q_proj(u).transpose(1, 2).to(dt)
        k = self.k_proj(u).transpose(1, 2).to(dt)
        v = self.v_proj(u).transpose(1, 2).to(dt)
        K = self.kernel.kernel(L).to(dt)
        shift = self.ssm_k_kernel.kernel(L).to(dt)
        y = hippo.ops.h3_conv(q, k, v, K, self.D.to(dt), shift_kernel=shift,
                              shift_D=self.ssm_k_D.to(dt))
        return self.output_linear(y.to(u.dtype).transpose(1, 2))


class OpsTest(unittest.TestCase):
    def test_gradcheck_float64(self):
        for B, H, L in [(2, 3, 9), (1, 2, 1), (1, 1, 17)]:
            u, k, D = (t.requires_grad_() for t in inputs(B, H, L, 1, torch.float64, seed=L))
            self.assertTrue(torch.autograd.gradcheck(hippo.ops.fftconv, (u, k, D)))
            q, kk, v, K, D2 = (t.requires_grad_() for t in inputs(B, H, L, 3, torch.float64, seed=L))
            self.assertTrue(torch.autograd.gradcheck(hippo.ops.h3_conv, (q, kk, v, K, D2)))
            S, SD = (t.requires_grad_() for t in inputs(B, H, L, 0, torch.float64, seed=L + 1))
            self.assertTrue(torch.autograd.gradcheck(
                lambda *a: hippo.ops.h3_conv(*a[:5], shift_kernel=a[5], shift_D=a[6]),
                (q, kk, v, K, D2, S, SD)))

    def test_float64_equals_reference(self):
        u, k, D = inputs(2, 3, 50, 1, torch.float64)
        self.assertLess(rel_err(hippo.ops.fftconv(u, k, D), fft_conv(u, k, D)), 1e-12)

    def check_f32(self, op, ref, n_act, B, H, L):
        xs = inputs(B, H, L, n_act, torch.float32, seed=B * H + L)
        ours = [x.clone().requires_grad_() for x in xs]
        theirs = [x.to(torch.float64).requires_grad_() for x in xs]
        y = op(*ours)
        self.assertEqual(y.dtype, torch.float32)
        want = ref(*theirs)
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        y.backward(dy.to(torch.float32))
        want.backward(dy)
        errs = [rel_err(y.detach(), want.detach())] + [rel_err(a.grad, b.grad) for a, b in zip(ours, theirs)]
        print(f"  {op.__name__} ({B}, {H}, {L}) float32: y and grads rel err max {max(errs):.1e}")
        self.assertLess(errs[0], 1e-5)
        for e in errs[1:]:
            self.assertLess(e, 1e-5)

    def test_float32_flashconv_equals_torch_fft(self):
        for B, H, L in [(2, 3, 5), (2, 17, 64), (1, 8, 1000), (2, 4, 1024)]:
            self.check_f32(hippo.ops.fftconv, fft_conv, 1, B, H, L)
            self.check_f32(hippo.ops.h3_conv, h3_ref, 3, B, H, L)

    def test_drop_in_reference_h3_layer(self):
        torch.manual_seed(0)
        ref = torch_h3.H3(16, N=8).to(torch.float64)
        torch_h3.randomize_(ref, scale=0.3, seed=4)
        u = torch.randn(2, 96, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-4)]:
            ours = HippoH3(16, N=8).to(torch.float64)
            ours.load_state_dict(ref.state_dict())
            ours.op_dtype = dtype
            ref.zero_grad()
            ur, uo = u.clone().requires_grad_(), u.clone().requires_grad_()
            yr, yo = ref(ur), ours(uo)
            yr.square().sum().backward()
            yo.square().sum().backward()
            errs = {"y": rel_err(yo.detach(), yr.detach()), "du": rel_err(uo.grad, ur.grad)}
            for (n, p), (_, pr) in zip(ours.named_parameters(), ref.named_parameters()):
                errs[n] = rel_err(p.grad, pr.grad)
            worst = max(errs, key=errs.get)
            print(f"  drop-in H3 {dtype}: worst rel err {errs[worst]:.1e} ({worst})")
            for n, e in errs.items():
                self.assertLess(e, tol, n)

    def test_noncontiguous_and_no_grad_inputs(self):
        u, k, D = inputs(3, 4, 20, 1, torch.float32)
        ut = u.transpose(0, 1).contiguous().transpose(0, 1)  # not contiguous
        self.assertFalse(ut.is_contiguous())
        y = hippo.ops.fftconv(ut, k, D)
        self.assertLess(rel_err(y, fft_conv(u.double(), k.double(), D.double())), 1e-5)
        y.sum()  # no grad wanted: still a tensor

    def test_bad_input_is_refused(self):
        u, k, D = inputs(2, 3, 8, 1, torch.float32)
        cases = [
            ((u.double(), k, D), "share a dtype"),
            ((u.int(), k.int(), D.int()), "float32 or float64"),
            ((u[0], k, D), r"\(B, H, L\)"),
            ((u, k[:, :4], D), r"\(H, L\)"),
            ((u, k, D[:2]), r"\(H,\)"),
            ((u.numpy(), k, D), "torch.Tensor"),
            ((u[:, :, :0], k[:, :0], D), "empty"),
        ]
        for args, msg in cases:
            with self.assertRaisesRegex(hippo.Error, msg):
                hippo.ops.fftconv(*args)
        with self.assertRaisesRegex(hippo.Error, "ssm_kernel"):
            hippo.ops.h3_conv(u, u, u, k[:, :3], D)
        with self.assertRaisesRegex(hippo.Error, "shift_D"):
            hippo.ops.h3_conv(u, u, u, k, D, shift_kernel=k)


if __name__ == "__main__":
    unittest.main(verbosity=2)
