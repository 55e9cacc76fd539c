#!/usr/bin/python3
"""PyTorch's torch.fft long convolution on the shapes of bench/bench_conv.cpp, one thread.

Run with Debian's torch: /usr/bin/python3 scripts/bench_conv_torch.py [--reps R] [--quick]
Times (median of R reps, fp32; wall and process CPU time):
  conv: y = irfft(rfft(u, 2L) * rfft(K, 2L))[..., :L] + D u
  h3:   y = q * (irfft(rfft(k v, 2L) * rfft(K, 2L))[..., :L] + D k v)
The kernel spectrum is computed inside every timed call, as in bench_conv.
"""
import argparse
import time

import torch


def conv(u, K, D):
    L = u.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L] + D[:, None] * u


def h3(q, k, v, K, D):
    return q * conv(k * v, K, D)


def median_ms(f, reps):
    """(median wall ms, median process CPU ms)"""
    f()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        f()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    wall.sort()
    cpu.sort()
    return wall[len(wall) // 2], cpu[len(cpu) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    shapes = [(1, 768, 1024), (8, 768, 1024), (1, 768, 8192), (4, 256, 4096), (1, 64, 65536)]
    shapes += [(1, 64, L) for L in (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)]
    if a.quick:
        shapes = shapes[:2]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fp32, median ms of {a.reps}")
    print(f"{'B,H,L':<16} {'conv wall':>10} {'conv cpu':>10} {'h3 wall':>10} {'h3 cpu':>10}")
    g = torch.Generator().manual_seed(1)
    for B, H, L in shapes:
        q, k, v = (torch.randn(B, H, L, generator=g) for _ in range(3))
        K = torch.randn(H, L, generator=g) * torch.exp(-torch.arange(L) / 64.0)
        D = torch.randn(H, generator=g)
        with torch.no_grad():
            tc = median_ms(lambda: conv(k, K, D), a.reps)
            th = median_ms(lambda: h3(q, k, v, K, D), a.reps)
        print(f"{f'{B},{H},{L}':<16} {tc[0]:>10.3f} {tc[1]:>10.3f} {th[0]:>10.3f} {th[1]:>10.3f}",
              flush=True)


if __name__ == "__main__":
    main()
