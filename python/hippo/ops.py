"""hippo's CPU FlashConv as PyTorch autograd ops.

    y = hippo.ops.fftconv(u, k, D)               # causal long convolution + skip
    y = hippo.ops.h3_conv(q, k, v, ssm_kernel, D)  # the H3 inner op, head_dim 1

Shapes: activations u, q, k, v (B, H, L); kernels k / ssm_kernel (H, L); skip D (H,). CPU
tensors, all float32 or all float64. Causal: (k * u)[t] = sum_{s<=t} k[t-s] u[s].

float32 runs hippo's fused FlashConv kernels, forward and backward (threads:
hippo.set_num_threads). float64 runs a direct O(B H L^2) double-precision path in the same
extension (FlashConv is float32 only); it is exact and meant for gradcheck and checking.
Inputs are made contiguous (no copy when they already are); outputs share memory with the
numpy arrays the kernels write. The GIL is released while a kernel runs.
"""
import torch

from . import _hippo
from ._hippo import Error

__all__ = ["fftconv", "h3_conv", "FftConv", "H3Conv"]

_DTYPES = (torch.float32, torch.float64)


def _prep(op, named):
    """Checks type, device and dtype; returns contiguous detached tensors and their arrays."""
    dtype = None
    out = []
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise Error(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise Error(f"{op}: {name} is on {t.device}; hippo.ops runs on the CPU")
        if t.dtype not in _DTYPES:
            raise Error(f"{op}: {name} must be float32 or float64, got {t.dtype}")
        if dtype is None:
            dtype = t.dtype
        elif t.dtype != dtype:
            raise Error(f"{op}: {name} is {t.dtype} but {named[0][0]} is {dtype} "
                        "(all arguments share a dtype)")
        out.append(t.detach().contiguous())
    return out


def _np(ts):
    return [t.numpy() for t in ts]


class FftConv(torch.autograd.Function):
    """y = k * u + D ⊙ u (causal), forward and backward by hippo's FlashConv."""

    @staticmethod
    def forward(ctx, u, k, D):
        u, k, D = _prep("hippo.ops.fftconv", [("u", u), ("k", k), ("D", D)])
        y = _hippo.fftconv_fwd(*_np([u, k, D]))
        ctx.save_for_backward(u, k, D)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        u, k, D = ctx.saved_tensors
        (dy,) = _prep("hippo.ops.fftconv backward", [("dy", dy.to(u.dtype))])
        du, dk, dD = _hippo.fftconv_bwd(*_np([u, k, D, dy]))
        return torch.from_numpy(du), torch.from_numpy(dk), torch.from_numpy(dD)


class H3Conv(torch.autograd.Function):
    """y = q ⊙ (K * (k ⊙ v) + D ⊙ (k ⊙ v)), forward and backward by hippo's fused kernels."""

    @staticmethod
    def forward(ctx, q, k, v, ssm_kernel, D):
        ts = _prep("hippo.ops.h3_conv", [("q", q), ("k", k), ("v", v), ("ssm_kernel", ssm_kernel),
                                         ("D", D)])
        y = _hippo.h3_conv_fwd(*_np(ts))
        ctx.save_for_backward(*ts)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        ts = ctx.saved_tensors
        (dy,) = _prep("hippo.ops.h3_conv backward", [("dy", dy.to(ts[0].dtype))])
        grads = _hippo.h3_conv_bwd(*_np(list(ts) + [dy]))
        return tuple(torch.from_numpy(g) for g in grads)


def fftconv(u, k, D):
    """Causal long convolution with skip: y[b,h,t] = sum_{s<=t} k[h,t-s] u[b,h,s] + D[h] u[b,h,t].

    u (B, H, L), k (H, L), D (H,); float32 (FlashConv) or float64 (direct path), CPU.
    Differentiable in all three.
    """
    return FftConv.apply(u, k, D)


def h3_conv(q, k, v, ssm_kernel, D, shift_kernel=None, shift_D=None):
    """The fused H3 op with head_dim 1 (spec H3.md §3): y = q ⊙ SSM_diag(SSM_shift(k) ⊙ v).

    q, k, v (B, H, L): the projections; ssm_kernel (H, L): the diagonal SSM's kernel K
    (e.g. S4D's 2 Re(sum_n C_n dB_n dA_n^l)); D (H,): its skip. SSM_diag(x) = K * x + D ⊙ x.
    k is taken as already shifted (the shift SSM's output) unless shift_kernel (H, L) and
    shift_D (H,) are given; then k is first replaced by fftconv(k, shift_kernel, shift_D).
    Differentiable in every tensor argument.
    """
    if (shift_kernel is None) != (shift_D is None):
        raise Error("hippo.ops.h3_conv: give shift_kernel and shift_D together (or neither)")
    if shift_kernel is not None:
        k = fftconv(k, shift_kernel, shift_D)
    return H3Conv.apply(q, k, v, ssm_kernel, D)
