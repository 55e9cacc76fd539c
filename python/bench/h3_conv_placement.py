#!/usr/bin/python3
"""Does where the arrays land change hippo.ops.h3_conv's time? (docs/python.md, session 10)

Runs the forward at one shape on the same values held in differently placed buffers,
alternating the placements call by call in one process (A B C A B C ...), and prints the
median and minimum process-CPU time of each:

  torch      q, k, v from torch.randn (what python/bench/h3_conv.py times)
  page       each of q, k, v in its own page-aligned anonymous mapping, 4 KiB pages
  page+stag  the same, q, k, v started 0, 1344, 2688 bytes into their pages (rows of the three
             at different L1 sets)
  thp        each in a 2 MiB-aligned mapping advised MADV_HUGEPAGE before it is touched

    PYTHONPATH=build/python /usr/bin/python3 python/bench/h3_conv_placement.py [--calls 15]
"""
import argparse
import mmap
import os
import statistics
import time

import numpy as np
import torch

import hippo
import hippo.ops
from h3_conv import _mappings  # same folder: python puts it on sys.path

_keep = []  # the mappings stay alive for the process


def placed(src, offset=0, huge=False):
    """A tensor equal to src whose data starts `offset` bytes into a fresh anonymous mapping
    (2 MiB aligned and advised MADV_HUGEPAGE when huge)."""
    nbytes = src.numel() * src.element_size()
    align = (2 << 20) if huge else 4096
    m = mmap.mmap(-1, nbytes + offset + align, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = np.frombuffer(m, dtype=np.uint8)
    start = (-base.ctypes.data) % align
    if huge:
        m.madvise(mmap.MADV_HUGEPAGE, start, nbytes + offset)
    _keep.append(m)
    view = base[start + offset:start + offset + nbytes].view(np.float32).reshape(src.shape)
    t = torch.from_numpy(view)
    t.copy_(src)
    return t


def thp_kb(t):
    p = t.data_ptr()
    for lo, hi, thp, _ in _mappings():
        if lo <= p < hi:
            return thp
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=3, default=[8, 768, 1024])
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(1)
    hippo.set_num_threads(1)
    B, H, L = a.shape
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, generator=g) for _ in range(3))
    K = torch.randn(H, L, generator=g) * torch.exp(-torch.arange(L) / 100.0)
    D = torch.randn(H, generator=g)
    variants = {
        "torch": (q, k, v),
        "page": tuple(placed(t) for t in (q, k, v)),
        "page+stag": tuple(placed(t, off) for t, off in zip((q, k, v), (0, 1344, 2688))),
        "thp": tuple(placed(t, huge=True) for t in (q, k, v)),
    }
    ref = hippo.ops.h3_conv(q, k, v, K, D)
    for name, (qq, kk, vv) in variants.items():
        y = hippo.ops.h3_conv(qq, kk, vv, K, D)
        assert torch.equal(y, ref), name
        print(f"{name:10s} offsets mod 4096 q {qq.data_ptr() % 4096} k {kk.data_ptr() % 4096} "
              f"v {vv.data_ptr() % 4096}; AnonHugePages kB q {thp_kb(qq)} k {thp_kb(kk)} "
              f"v {thp_kb(vv)}")
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    times = {n: [] for n in variants}
    with torch.no_grad():
        for _ in range(a.calls):
            for name, (qq, kk, vv) in variants.items():
                c0 = time.process_time()
                hippo.ops.h3_conv(qq, kk, vv, K, D)
                times[name].append(time.process_time() - c0)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    for name, t in times.items():
        print(f"{name:10s} median {statistics.median(t) * 1e3:6.2f} ms  min {min(t) * 1e3:6.2f} ms "
              f"({a.calls} calls, process CPU)")


if __name__ == "__main__":
    main()
