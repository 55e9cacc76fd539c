#!/usr/bin/python3
"""hippo.ops.h3_conv against the torch.fft path (what the H3 authors' code runs on a CPU) at
one shape, forward and forward+backward, medians over rounds that alternate the two (A B A B).

    PYTHONPATH=build/python /usr/bin/python3 python/bench/h3_conv.py [--shape 8 768 1024]
        [--rounds 7] [--threads 1] [--passes fwd|both] [--order torch|hippo]
        [--processes N [--baseline DIR]]

One process (the default) prints medians of its rounds. Runs of one process differ by more
than the gap to the target (session 9: hippo 9.0-13.2 ms, torch 76-111 ms in runs minutes
apart on an idle machine), so --processes N runs the benchmark in N fresh interpreters one
after another, alternating which op goes first in a round, and prints each process's medians,
where its arrays landed (address mod 4 KiB, whether on a transparent huge page), the median of
the per-process speedups and their range: what a user who starts a process sees. With
--baseline DIR (a directory holding another build's hippo package, e.g. a copy of an older
build/python) the processes alternate between that build and the one on PYTHONPATH
(A B B A ...), and the summary is per build: an A/B of two builds across processes.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
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
    """(wall seconds, process CPU seconds, minor page faults): on a shared machine the process
    CPU time of this single-threaded run is the steadier measure; page faults show a call that
    wrote to memory fresh from the kernel (each costs a fault and a zeroed page)."""
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


def _mappings():
    """[(start, end, AnonHugePages kB, Size kB)] of this process (/proc/self/smaps)."""
    out = []
    try:
        with open("/proc/self/smaps") as f:
            cur = None
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    lo, hi = (int(x, 16) for x in head.split("-"))
                    cur = [lo, hi, 0, 0]
                    out.append(cur)
                elif head == "AnonHugePages:" and cur:
                    cur[2] = int(line.split()[1])
                elif head == "Size:" and cur:
                    cur[3] = int(line.split()[1])
    except OSError:
        pass
    return out


def placement(tensors):
    """{name: "offset mod 4096 / THP kB of its mapping"} for the data of each tensor."""
    maps = _mappings()
    res = {}
    for name, t in tensors.items():
        p = t.data_ptr()
        thp = next((m[2] for m in maps if m[0] <= p < m[1]), -1)
        res[name] = f"{p % 4096}/{thp}"
    return res


def run_one(a):
    """The benchmark in this process: a dict of medians (seconds) and facts about the run."""
    torch.set_num_threads(a.threads)
    hippo.set_num_threads(a.threads)
    B, H, L = a.shape
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, L, generator=g) for _ in range(3))
    K = torch.randn(H, L, generator=g) * torch.exp(-torch.arange(L) / 100.0)
    D = torch.randn(H, generator=g)
    dy = torch.randn(B, H, L, generator=g)
    ops = {"torch.fft": torch_h3_conv, "hippo": hippo.ops.h3_conv}
    if a.order == "hippo":
        ops = dict(reversed(list(ops.items())))
    passes = ("fwd",) if a.passes == "fwd" else ("fwd", "fwd+bwd")

    def fwd(name, op):
        with torch.no_grad():
            op(q, k, v, K, D)

    def fwd_bwd(name, op):
        xs = [t.clone().requires_grad_() for t in (q, k, v, K, D)]
        op(*xs).backward(dy)

    run = {"fwd": fwd, "fwd+bwd": fwd_bwd}
    # Same result first (float32 both; relative max-norm difference).
    yt, yh = torch_h3_conv(q, k, v, K, D), hippo.ops.h3_conv(q, k, v, K, D)
    info = {"rel_diff": ((yt - yh).abs().max() / yt.abs().max()).item(),
            "load_start": os.getloadavg()[0], "order": a.order, "module": hippo.__file__}
    del yt, yh
    times = {(n, m): [] for n in ops for m in passes}
    # Warm up (plans, scratch) with forward and forward+backward whatever is timed: torch's
    # forward allocates ~280 MB of temporaries per call, and until a forward+backward has grown
    # glibc's heap they come from fresh mmaps, page-faulted on every call (67k-77k faults,
    # 165-270 ms against ~105 ms with the heap grown; docs/python.md, session 10). Timing
    # torch in that state would flatter hippo; after this warm-up both run in steady state.
    for name, op in ops.items():
        run["fwd"](name, op)
        run["fwd+bwd"](name, op)
    for _ in range(a.rounds):
        for m in passes:
            for name, op in ops.items():
                times[(name, m)].append(timed(lambda: run[m](name, op)))
    info["load_end"] = os.getloadavg()[0]
    with torch.no_grad():  # one more call, to see where its output lands
        y = hippo.ops.h3_conv(q, k, v, K, D)
    info["placement"] = placement({"q": q, "k": k, "v": v, "y": y})
    info["faults"] = {f"{n}|{m}": [x[2] for x in times[(n, m)]] for (n, m) in times}
    info["med"] = {f"{n}|{m}|{clock}": statistics.median(x[i] for x in times[(n, m)])
                   for (n, m) in times for i, clock in enumerate(("wall", "cpu", "faults"))}
    return info


def print_one(a, info):
    B, H, L = a.shape
    print(f"shape (B, H, L) = ({B}, {H}, {L}), threads {a.threads}; "
          f"max rel diff {info['rel_diff']:.1e}; "
          f"load average {info['load_start']:.2f} at the start")
    print(f"load average {info['load_end']:.2f} at the end")
    pl = info["placement"]
    print("arrays (offset mod 4096 / AnonHugePages kB of the mapping): " +
          ", ".join(f"{n} {s}" for n, s in pl.items()))
    med = info["med"]
    for m in (("fwd",) if a.passes == "fwd" else ("fwd", "fwd+bwd")):
        for clock in ("wall", "cpu"):
            t, h = med[f"torch.fft|{m}|{clock}"], med[f"hippo|{m}|{clock}"]
            print(f"{m:8s} {clock:4s} torch.fft {t * 1e3:8.1f} ms   hippo {h * 1e3:8.1f} ms   "
                  f"speedup {t / h:5.2f}x (medians of {a.rounds})")
    print("minor page faults per call: " + "; ".join(
        f"{k} {v}" for k, v in info["faults"].items()))


def run_processes(a, argv):
    """a.processes fresh interpreters, one after another, alternating the order."""
    child = [sys.executable, os.path.abspath(__file__)] + argv + ["--child-json"]
    print(f"{a.processes} processes, each {a.rounds} rounds of {a.passes}; shape "
          f"{tuple(a.shape)}, threads {a.threads}; load average {os.getloadavg()[0]:.2f} at the start")
    passes = ("fwd",) if a.passes == "fwd" else ("fwd", "fwd+bwd")
    builds = ["current"] + (["baseline"] if a.baseline else [])
    rows = {b: [] for b in builds}
    hdr = "proc build    first  load   " + "  ".join(
        f"{m + ' torch':>13s} {m + ' hippo':>13s} {'ratio':>6s}" for m in passes)
    print(hdr + "   page faults per fwd call: hippo | torch.fft   placement (q k v y: offset mod 4096 / THP kB)")
    for i in range(a.processes):
        build = builds[(0, 1, 1, 0)[i % 4] % len(builds)]
        order = ("torch", "hippo")[(i // len(builds)) % 2]
        env = dict(os.environ)
        if build == "baseline":
            env["PYTHONPATH"] = os.pathsep.join([a.baseline] + [x for x in [env.get("PYTHONPATH")] if x])
        r = subprocess.run(child + ["--order", order], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit(f"process {i} failed ({r.returncode})")
        info = json.loads(r.stdout.strip().splitlines()[-1])
        med = info["med"]
        cells = []
        row = {}
        for m in passes:
            t, h = med[f"torch.fft|{m}|cpu"], med[f"hippo|{m}|cpu"]
            row[m] = (t, h, t / h)
            cells.append(f"{t * 1e3:10.1f} ms {h * 1e3:10.1f} ms {t / h:5.2f}x")
        rows[build].append(row)
        if build == "baseline" and not info["module"].startswith(os.path.abspath(a.baseline)):
            sys.exit(f"the baseline process imported {info['module']}, not from {a.baseline}")
        pl = " ".join(info["placement"].values())
        flt = ",".join(str(f) for f in info["faults"]["hippo|fwd"])
        tflt = ",".join(str(f) for f in info["faults"]["torch.fft|fwd"])
        print(f"{i:4d} {build:8s} {order:5s} {info['load_start']:5.2f}  " + "  ".join(cells) +
              f"   {flt:>20s}   {tflt:>30s}   {pl}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    for b, m in ((b, m) for b in builds for m in passes):
        t = [r[m][0] * 1e3 for r in rows[b]]
        h = [r[m][1] * 1e3 for r in rows[b]]
        s = [r[m][2] for r in rows[b]]
        if not s:
            continue
        print(f"{b + ' ' if a.baseline else ''}{m:8s} process CPU, over {len(s)} processes: speedup median "
              f"{statistics.median(s):.2f}x (min {min(s):.2f}, max {max(s):.2f}); "
              f"torch.fft median {statistics.median(t):.1f} ms ({min(t):.1f}-{max(t):.1f}); "
              f"hippo median {statistics.median(h):.1f} ms ({min(h):.1f}-{max(h):.1f})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", type=int, nargs=3, default=[8, 768, 1024])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--passes", choices=("fwd", "both"), default="both",
                   help="forward only, or forward and forward+backward")
    p.add_argument("--order", choices=("torch", "hippo"), default="torch",
                   help="which op runs first in each round")
    p.add_argument("--processes", type=int, default=0,
                   help="run in this many fresh processes (alternating --order) and summarise")
    p.add_argument("--baseline", metavar="DIR",
                   help="with --processes: alternate with the hippo package in DIR (A/B of builds)")
    p.add_argument("--child-json", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.rounds < 1 or a.threads < 1 or a.processes < 0 or min(a.shape) < 1:
        p.error("--rounds, --threads and every --shape value must be >= 1, --processes >= 0")
    if a.processes > 0:
        argv = ["--shape", *map(str, a.shape), "--rounds", str(a.rounds), "--threads",
                str(a.threads), "--passes", a.passes]
        run_processes(a, argv)
        return
    info = run_one(a)
    if a.child_json:
        print(json.dumps(info))
    else:
        print_one(a, info)


if __name__ == "__main__":
    main()
