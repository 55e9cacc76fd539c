"""hippo.ops outputs are 64-byte aligned (python/src/bind_ops.cpp `like`): the FlashConv kernels
write outputs far larger than the caches with non-temporal stores only when every row is
aligned to the vector, and numpy's own large arrays are only 16-byte aligned, so before this
whether a call streamed its output depended on where malloc put it. Checked for every output
of both ops (forward and backward, float32 and float64) over repeated calls with allocations of
odd sizes in between, and the outputs (views into a slightly larger array) still hold the
right values, are writable and C-contiguous, and survive the deletion of everything else."""
import gc
import unittest

import numpy as np
import torch

import pyhelpers  # noqa: F401  (tests/ref on sys.path)
from pyhelpers import rel_err

import hippo
import hippo.ops


def fft_conv(u, k, D):
    L = u.shape[-1]
    y = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]
    return y + D[:, None] * u


def aligned(t):
    return t.data_ptr() % 64 == 0


class OutputAlignment(unittest.TestCase):
    def test_every_output_is_aligned(self):
        g = torch.Generator().manual_seed(0)
        # 2 MiB activations: numpy's malloc serves them by mmap, 16 bytes past a page start.
        B, H, L = 4, 128, 1024
        for dtype, shape in ((torch.float32, (B, H, L)), (torch.float64, (1, 3, 40))):
            q, k, v, dy = (torch.randn(*shape, generator=g, dtype=dtype) for _ in range(4))
            K = torch.randn(shape[1], shape[2], generator=g, dtype=dtype) * 0.1
            D = torch.randn(shape[1], generator=g, dtype=dtype)
            for rep in range(4):
                junk = np.empty(1000 * rep + 3, np.uint8)  # moves malloc's next block around
                y = hippo.ops.fftconv(k, K, D)
                self.assertTrue(aligned(y), f"fftconv {dtype} call {rep}: {y.data_ptr() % 64}")
                y = hippo.ops.h3_conv(q, k, v, K, D)
                self.assertTrue(aligned(y), f"h3_conv {dtype} call {rep}: {y.data_ptr() % 64}")
                for op, args in ((hippo.ops.fftconv, (k, K, D)), (hippo.ops.h3_conv, (q, k, v, K, D))):
                    xs = [t.clone().requires_grad_() for t in args]
                    op(*xs).backward(dy)
                    for i, x in enumerate(xs):
                        self.assertTrue(aligned(x.grad), f"{op.__name__} grad {i} {dtype} call {rep}")
                del junk

    def test_aligned_outputs_hold_the_result(self):
        g = torch.Generator().manual_seed(1)
        q, k, v = (torch.randn(2, 64, 1024, generator=g) for _ in range(3))
        K = torch.randn(64, 1024, generator=g) * torch.exp(-torch.arange(1024) / 50.0)
        D = torch.randn(64, generator=g)
        y = hippo.ops.h3_conv(q, k, v, K, D)
        self.assertTrue(y.is_contiguous() and aligned(y))
        self.assertEqual(tuple(y.shape), (2, 64, 1024))
        ref = q.double() * fft_conv(k.double() * v.double(), K.double(), D.double())
        del q, k, v, K, D
        gc.collect()
        self.assertLess(rel_err(y.double(), ref), 1e-5)
        y.mul_(2.0)  # writable
        self.assertLess(rel_err(y.double(), 2 * ref), 1e-5)


if __name__ == "__main__":
    unittest.main()
