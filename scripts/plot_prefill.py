#!/usr/bin/python3
"""Prefill time per token and peak RSS against the prompt length, from `hippo bench prefill
--csv` output (one or more CSV files) -> an image (PNG with python3-matplotlib; where matplotlib
is missing, a plain SVG drawn here so that the figure can still be made).

Usage: /usr/bin/python3 scripts/plot_prefill.py OUT.{png,svg} bench1.csv [bench2.csv ...]
"""
import csv
import math
import sys
from collections import defaultdict


def load(paths):
    series = defaultdict(dict)  # model -> length -> (us/token by CPU time, peak over before MB)
    for p in paths:
        with open(p) as f:
            for r in csv.DictReader(f):
                series[r["model"]][int(r["length"])] = (1e6 / float(r["tokens_per_s_cpu"]),
                                                        float(r["peak_over_before_mb"]))
    return {m: sorted((L, *v) for L, v in pts.items()) for m, pts in series.items()}


def plot_matplotlib(series, dst):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for m, pts in sorted(series.items()):
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=m)
        b.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", ms=3, label=m)
    for ax, label in ((a, "µs per token (CPU time, 1 thread)"), (b, "peak RSS over start (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("prompt length (tokens)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=120)


def plot_svg(series, dst):
    W, H, pad = 460, 300, 55
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    xs = [p[0] for pts in series.values() for p in pts]
    lx0, lx1 = math.log2(min(xs)), math.log2(max(xs))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" '
           'font-family="sans-serif" font-size="11">', f'<rect width="{2 * W}" height="{H}" fill="white"/>']
    for panel, (idx, label) in enumerate(((1, "µs per token (CPU time, 1 thread)"),
                                          (2, "peak RSS over start (MB)"))):
        ox = panel * W
        ys = [p[idx] for pts in series.values() for p in pts]
        y1 = max(ys) * 1.1 or 1.0

        def px(L):
            return ox + pad + (math.log2(L) - lx0) / max(lx1 - lx0, 1e-9) * (W - 2 * pad)

        def py(v):
            return H - pad + 15 - v / y1 * (H - 2 * pad)
        out.append(f'<line x1="{ox + pad}" y1="{py(0)}" x2="{ox + W - pad}" y2="{py(0)}" stroke="black"/>')
        out.append(f'<line x1="{ox + pad}" y1="{py(0)}" x2="{ox + pad}" y2="{py(y1)}" stroke="black"/>')
        for k in range(5):
            v = y1 * k / 4
            out.append(f'<text x="{ox + pad - 5}" y="{py(v) + 4}" text-anchor="end">{v:.0f}</text>')
        L = 2 ** math.ceil(lx0)
        while L <= 2 ** lx1:
            t = f"{L // 1024}K" if L >= 1024 else str(L)
            out.append(f'<text x="{px(L)}" y="{py(0) + 15}" text-anchor="middle">{t}</text>')
            L *= 4
        out.append(f'<text x="{ox + W / 2}" y="{H - 8}" text-anchor="middle">prompt length (tokens, log scale)</text>')
        out.append(f'<text x="{ox + W / 2}" y="14" text-anchor="middle">{label}</text>')
        for i, (m, pts) in enumerate(sorted(series.items())):
            c = colors[i % len(colors)]
            path = " ".join(f"{px(p[0]):.1f},{py(p[idx]):.1f}" for p in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
            for p in pts:
                out.append(f'<circle cx="{px(p[0]):.1f}" cy="{py(p[idx]):.1f}" r="3" fill="{c}"/>')
            out.append(f'<text x="{ox + pad + 10}" y="{30 + 14 * i}" fill="{c}">{m}</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


def main(dst, srcs):
    series = load(srcs)
    try:
        if dst.endswith(".svg"):
            raise ImportError
        plot_matplotlib(series, dst)
    except ImportError:
        if not dst.endswith(".svg"):
            sys.exit("python3-matplotlib is needed for a PNG; give an .svg output instead")
        plot_svg(series, dst)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
