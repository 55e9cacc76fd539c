#!/usr/bin/python3
"""Summarises scripts/lm_compare.sh: table.md, results.csv and loss.png in the output folder.

Usage: scripts/plot_lm_compare.py runs/lm_compare
Reads each run folder NAME_sSEED/: log.jsonl (train loss every 10 steps, validation every 50),
result.txt (the `final:` and `test:` lines of hippo train) and train.stderr (parameter count).
"""
import json
import os
import re
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["transformer", "h3", "hybrid", "s4d"]
LABEL = {"transformer": "Transformer (learned pos.)", "h3": "H3",
         "hybrid": "Hybrid H3 + 2 attention", "s4d": "S4D"}


def read_run(path):
    train, val = [], []
    with open(os.path.join(path, "log.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "eval" in r:
                val.append((r["step"], r["eval"]["loss"]))
            elif "loss" in r:
                train.append((r["step"], r["loss"]))
    res = open(os.path.join(path, "result.txt")).read()
    test = re.search(r"^test: (\d+) tokens\s+loss ([\d.]+)\s+perplexity ([\d.]+)\s+bits/byte ([\d.]+)", res, re.M)
    final = re.search(r"^final: step (\d+)\s+train loss ([\d.]+)\s+(\d+) tokens/s", res, re.M)
    err = open(os.path.join(path, "train.stderr")).read()
    params = re.search(r"model: (.*), (\d+) parameters", err)
    if not (test and final and params):
        raise SystemExit(f"{path}: result.txt or train.stderr lacks the test/final/model lines")
    return {"train": train, "val": val, "test_loss": float(test[2]), "ppl": float(test[3]),
            "bpb": float(test[4]), "steps": int(final[1]), "tok_s": float(final[3]),
            "params": int(params[2]), "arch": params[1]}


def main(out):
    runs = defaultdict(dict)  # model -> seed -> run
    for name in sorted(os.listdir(out)):
        m = re.fullmatch(r"(\w+)_s(\d+)", name)
        if m and os.path.isfile(os.path.join(out, name, "result.txt")):
            runs[m[1]][int(m[2])] = read_run(os.path.join(out, name))
    models = [m for m in ORDER if m in runs] + sorted(set(runs) - set(ORDER))
    if not models:
        raise SystemExit(f"{out}: no finished runs")

    with open(os.path.join(out, "results.csv"), "w") as f:
        f.write("model,seed,params,steps,test_loss,test_ppl,test_bpb,train_tokens_per_s\n")
        for m in models:
            for s, r in sorted(runs[m].items()):
                f.write(f"{m},{s},{r['params']},{r['steps']},{r['test_loss']:.5f},{r['ppl']:.4f},"
                        f"{r['bpb']:.5f},{r['tok_s']:.0f}\n")

    lines = ["| model | parameters | test perplexity (per byte) | bits/byte | per seed (ppl) | train tokens/s (1 thread) |",
             "|---|---:|---:|---:|---|---:|"]
    for m in sorted(models, key=lambda m: statistics.mean(r["ppl"] for r in runs[m].values())):
        rs = [runs[m][s] for s in sorted(runs[m])]
        ppl = [r["ppl"] for r in rs]
        spread = f" ± {statistics.stdev(ppl):.3f}" if len(ppl) > 1 else ""
        lines.append(f"| {LABEL.get(m, m)} | {rs[0]['params'] / 1e6:.2f}M | {statistics.mean(ppl):.3f}{spread} | "
                     f"{statistics.mean(r['bpb'] for r in rs):.4f} | "
                     f"{', '.join(f'{p:.3f}' for p in ppl)} | {statistics.mean(r['tok_s'] for r in rs):.0f} |")
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, m in enumerate(models):
        color = f"C{i}"
        for j, (s, r) in enumerate(sorted(runs[m].items())):
            lab = LABEL.get(m, m) if j == 0 else None
            xs, ys = zip(*r["train"])
            axes[0].plot(xs, ys, color=color, alpha=0.8, lw=1, ls="-" if j == 0 else "--", label=lab)
            xs, ys = zip(*r["val"])
            axes[1].plot(xs, ys, color=color, marker="o", ms=3, ls="-" if j == 0 else "--", label=lab)
    for ax, title in zip(axes, ["training loss (nats/byte)", "validation loss (nats/byte)"]):
        ax.set_title(title + "; dashed: second seed")
        ax.set_xlabel("step (16 x 256 bytes)")
        ax.set_ylim(top=2.6)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=110)
    print(f"wrote {out}/table.md, results.csv, loss.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/lm_compare")
