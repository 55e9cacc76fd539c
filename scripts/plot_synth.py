#!/usr/bin/python3
"""Plots test accuracy against training step for `hippo synth` (curves.csv -> PNG).

Usage: scripts/plot_synth.py runs/synth/curves.csv docs/synth.png
Each line is the mean over seeds; the band spans min..max. A run that stopped early at 100%
is held at its last value.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    runs = defaultdict(list)  # (task, model, seed) -> [(step, acc)]
    with open(src) as f:
        for row in csv.DictReader(f):
            runs[(row["task"], row["model"], int(row["seed"]))].append(
                (int(row["step"]), 100 * float(row["test_acc"])))
    tasks = sorted({k[0] for k in runs})
    models = sorted({k[1] for k in runs})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model in models:
            curves = [sorted(v) for k, v in runs.items() if k[0] == task and k[1] == model]
            if not curves:
                continue
            steps = sorted({s for c in curves for s, _ in c})

            def at(c, s):
                val = c[0][1]
                for cs, a in c:
                    if cs <= s:
                        val = a
                return val

            vals = [[at(c, s) for c in curves] for s in steps]
            mean = [sum(v) / len(v) for v in vals]
            ax.plot(steps, mean, label=model)
            ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], alpha=0.2)
        ax.set_title(task.replace("_", " "))
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (last token), %")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
