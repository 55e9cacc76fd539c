#!/usr/bin/python3
"""hippo.ops.h3_conv against the torch.fft path (what the H3 authors' code runs on a CPU) at
one shape, forward and forward+backward, medians over rounds that alternate the two (A B A B).

    PYTHONPATH=build/python /usr/bin/python3 python/bench/h3_conv.py [--shape 8 768 1024]
        [--rounds 7] [--threads 1]
"""
import argparse
import os
import statistics
import time

import torch

import hippo
import hippo.ops


def torch_h3_conv(q, k, v, K, D):
    L = q.shape[-1]
    n = 2 * L
    kv = k * v
    y = torch.fft.irfft(torch.fft.rfft(kv, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]
    return q * (y + D[:, None] * kv)


def timed(f):
    """(wall seconds, process CPU seconds): on a shared machine the process CPU time of this
    single-threaded run is the steadier measure."""
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - t0, time.process_time() - c0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", type=int, nargs=3, default=[8, 768, 1024])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    hippo.set_num_threads(a.threads)
    B, H, L = a.shape
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, generator=g) for _ in range(3))
    K = torch.randn(H, L, generator=g) * torch.exp(-torch.arange(L) / 100.0)
    D = torch.randn(H, generator=g)
    dy = torch.randn(B, H, L, generator=g)
    ops = {"torch.fft": torch_h3_conv, "hippo": hippo.ops.h3_conv}

    def fwd(op):
        with torch.no_grad():
            op(q, k, v, K, D)

    def fwd_bwd(op):
        xs = [t.clone().requires_grad_() for t in (q, k, v, K, D)]
        op(*xs).backward(dy)

    # Same result first (float32 both; relative max-norm difference).
    yt, yh = torch_h3_conv(q, k, v, K, D), hippo.ops.h3_conv(q, k, v, K, D)
    print(f"shape (B, H, L) = ({B}, {H}, {L}), threads {a.threads}; "
          f"max rel diff {((yt - yh).abs().max() / yt.abs().max()).item():.1e}; "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    times = {(n, m): [] for n in ops for m in ("fwd", "fwd+bwd")}
    for name, op in ops.items():  # warm up (plans, scratch)
        fwd(op)
        fwd_bwd(op)
    for _ in range(a.rounds):
        for name, op in ops.items():
            times[(name, "fwd")].append(timed(lambda: fwd(op)))
        for name, op in ops.items():
            times[(name, "fwd+bwd")].append(timed(lambda: fwd_bwd(op)))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    for m in ("fwd", "fwd+bwd"):
        for i, clock in enumerate(("wall", "cpu")):
            t, h = (statistics.median(x[i] for x in times[(n, m)]) for n in ops)
            print(f"{m:8s} {clock:4s} torch.fft {t * 1e3:8.1f} ms   hippo {h * 1e3:8.1f} ms   "
                  f"speedup {t / h:5.2f}x (medians of {a.rounds})")


if __name__ == "__main__":
    main()
