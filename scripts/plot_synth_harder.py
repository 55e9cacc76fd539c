#!/usr/bin/python3
"""Collects scripts/synth_harder.sh's studies into one table and plot.

Usage: scripts/plot_synth_harder.py OUT [SECONDS]
Reads OUT/*/lengths.csv (induction head trained at one length, tested at others),
OUT/*/curriculum.csv with its study's summary.csv (trained on at each length in turn) and
OUT/*/summary.csv of the associative-recall studies (one per vocabulary); writes OUT/harder.csv
(task, model, axis, x, accuracy mean and std over the runs that have the point, runs),
OUT/table.md and OUT/harder.png (accuracy against length, both ways, and against vocabulary).
"""
import csv
import glob
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MODELS = ["attention", "h3", "s4d", "h3_noshift", "h3_nodiag"]


def read(pattern):
    rows = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return rows


def points(out):
    """(task, model, axis, x) -> list of accuracies in %, one per seed (or one mean)."""
    pts = {}
    for r in read(os.path.join(out, "*", "lengths.csv")):
        key = (r["task"], r["model"], "test length (trained at %s)" % r["train_len"], int(r["test_len"]))
        pts.setdefault(key, []).append(100.0 * float(r["test_acc"]))
    # A length curriculum: the first length from the study's summary, the later ones from
    # curriculum.csv (a run that did not reach a length has no point there).
    for cur in sorted(glob.glob(os.path.join(out, "*", "curriculum.csv"))):
        axis = "length, trained on at each in turn"
        for r in read(os.path.join(os.path.dirname(cur), "summary.csv")):
            pts.setdefault((r["task"], r["model"], axis, int(r["seq_len"])), []).append(float(r["acc_mean"]))
        for r in read(cur):
            pts.setdefault((r["task"], r["model"], axis, int(r["seq_len"])), []).append(100.0 * float(r["test_acc"]))
    for r in read(os.path.join(out, "*", "summary.csv")):
        if r["task"] == "associative_recall":
            key = (r["task"], r["model"], "vocabulary (length %s, %s pairs)" % (r["seq_len"], r["pairs"]),
                   int(r["vocab"]))
            pts.setdefault(key, []).append(float(r["acc_mean"]))
    return pts


def main(out, seconds=None):
    pts = points(out)
    if not pts:
        sys.exit(f"error: no */lengths.csv, */curriculum.csv or associative-recall */summary.csv under {out}")
    with open(os.path.join(out, "harder.csv"), "w") as f:
        w = csv.writer(f)
        w.writerow(["task", "model", "axis", "x", "acc_mean", "acc_std", "n"])
        for (task, model, axis, x), accs in sorted(pts.items()):
            sd = statistics.pstdev(accs) if len(accs) > 1 else 0.0
            w.writerow([task, model, axis, x, f"{statistics.mean(accs):.2f}", f"{sd:.2f}", len(accs)])
    sweeps = sorted({(k[0], k[2]) for k in pts}, key=lambda s: (s[0] != "induction_head", s[1]))
    md = []
    fig, axes = plt.subplots(1, len(sweeps), figsize=(6 * len(sweeps), 4), squeeze=False)
    for ax, (task, axis) in zip(axes[0], sweeps):
        xs = sorted({k[3] for k in pts if k[0] == task and k[2] == axis})
        md.append(f"\n**{task.replace('_', ' ')}**, test accuracy % by {axis}:\n")
        md.append("| model | " + " | ".join(str(x) for x in xs) + " |")
        md.append("|---|" + "---|" * len(xs))
        for m in MODELS:
            acc = {x: statistics.mean(pts[(task, m, axis, x)]) for x in xs if (task, m, axis, x) in pts}
            if not acc:
                continue
            md.append(f"| {m} | " + " | ".join(f"{acc[x]:.1f}" if x in acc else "" for x in xs) + " |")
            ax.plot(sorted(acc), [acc[x] for x in sorted(acc)], marker="o", label=m)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_title(task.replace("_", " "))
        ax.set_xlabel(axis)
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
