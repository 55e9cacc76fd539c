#!/usr/bin/python3
"""Time per token against L for the H = 64 sweep of bench_conv (its --csv output -> PNG).

Usage: /usr/bin/python3 scripts/plot_conv_sweep.py sweep.csv docs/results/flashconv_sweep.png
Series: one FFT over the whole sequence (hippo, FFTW, naive) and state passing with chunk
length T (the diagonal SSM from its parameters, kernel generation included).
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    series = defaultdict(list)
    with open(src) as f:
        for row in csv.DictReader(f):
            series[row["series"]].append((int(row["L"]), float(row["ns_per_token"])))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted(series):
        if name.startswith("naive"):
            continue
        pts = sorted(series[name])
        style = "--" if name.startswith("fftw") else "-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", ms=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("CPU ns per token (all 64 channels)")
    ax.set_title("FlashConv, B = 1, H = 64, 1 thread")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
