#!/usr/bin/python3
"""Collects scripts/synth_harder.sh's studies into one table and plot.

Usage: scripts/plot_synth_harder.py OUT [SECONDS]
Reads OUT/*/summary.csv (one hippo synth study per task size), writes OUT/harder.csv,
OUT/table.md (accuracy per model and size) and OUT/harder.png (accuracy against sequence length
for mqar and against vocabulary for associative recall).
"""
import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = ["attention", "h3", "s4d", "h3_noshift", "h3_nodiag"]
SWEEPS = [("mqar", "seq_len", "sequence length (vocab 512, length/8 pairs)"),
          ("associative_recall", "vocab", "vocabulary (length 64)")]


def main(out, seconds=None):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "*", "summary.csv"))):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    if not rows:
        sys.exit(f"error: no */summary.csv under {out}")
    with open(os.path.join(out, "harder.csv"), "w") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    md = []
    fig, axes = plt.subplots(1, len(SWEEPS), figsize=(6 * len(SWEEPS), 4), squeeze=False)
    for ax, (task, axis, label) in zip(axes[0], SWEEPS):
        pts = [r for r in rows if r["task"] == task]
        xs = sorted({int(r[axis]) for r in pts})
        if not xs:
            continue
        md.append(f"\n**{task.replace('_', ' ')}**, test accuracy % by {label}:\n")
        md.append("| model | " + " | ".join(str(x) for x in xs) + " |")
        md.append("|---|" + "---|" * len(xs))
        for m in MODELS:
            acc = {int(r[axis]): float(r["acc_mean"]) for r in pts if r["model"] == m}
            if not acc:
                continue
            md.append(f"| {m} | " + " | ".join(f"{acc[x]:.1f}" if x in acc else "" for x in xs) + " |")
            ax.plot([x for x in xs if x in acc], [acc[x] for x in xs if x in acc], marker="o", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_title(task.replace("_", " "))
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy, %")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
        ax.legend()
    if seconds:
        md.append(f"\nWall time {float(seconds) / 60:.1f} min.")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "harder.png"), dpi=110)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(md).lstrip() + "\n")
    print("\n".join(md))
    print(f"wrote {out}/table.md, {out}/harder.csv, {out}/harder.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
