#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/scaling.md, issue 15): tokens/s of the same
# training run (same global batch, same steps) as `mpirun -np 2 -t 1`, `-np 1 -t 1` and
# `-np 1 -t 2`, run in alternation (A B C A B C ...), plus rank 0's per-step split into compute
# (its micro-batches), wait (for the slower rank) and the gradient all-reduce, from log.jsonl.
#
#   scripts/bench_scaling.sh                      # defaults below; prints a markdown table
#   ROUNDS=5 STEPS=32 scripts/bench_scaling.sh
#
# Environment: HIPPO (build/hippo), CONFIG (configs/lm_compare/hybrid.json: d 256, 6 layers,
# byte vocabulary), DATA (a 400 kB text file made from the Brown corpus, tags removed: its
# test split, evaluated at the end of each run, stays small), B (4), L (256), ACCUM (2: micro-batches per step over all
# ranks), STEPS (16), ROUNDS (3), OUT (a temporary folder), MPI_ARGS (extra mpirun options,
# e.g. "--bind-to none": Open MPI binds each of 2 ranks to a core by default). Every run uses
# OMP_WAIT_POLICY=PASSIVE (spinning OpenMP waits make -t 2 collapse whenever anything else runs;
# on an otherwise idle machine set OMP_WAIT_POLICY=ACTIVE to compare). Needs mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
HIPPO=${HIPPO:-build/hippo}
CONFIG=${CONFIG:-configs/lm_compare/hybrid.json}
B=${B:-4}; L=${L:-256}; ACCUM=${ACCUM:-2}; STEPS=${STEPS:-16}; ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -z "${DATA:-}" ]; then
  DATA=$OUT/brown400k.txt
  [ -d data/brown ] || { echo "bench_scaling: data/brown missing (scripts/get_brown.sh), or set DATA" >&2; exit 1; }
  cat data/brown/c[a-r][0-9][0-9] | python3 -c '
import re, sys
text = re.sub(r"/\S+", "", sys.stdin.read())
sys.stdout.write(re.sub(r"[ \t]+", " ", text)[:400000])' > "$DATA"
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
command -v mpirun >/dev/null || { echo "bench_scaling: mpirun not found (Debian: openmpi-bin)" >&2; exit 1; }
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
# shellcheck disable=SC2206
MPIRUN+=(${MPI_ARGS:-})

common=(train -c "$CONFIG" -d "$DATA" -b "$B" -L "$L" --grad-accum "$ACCUM" --warmup 0
        --eval-every 0 --eval-tokens 1024 --log-every 1 -q --cache-dir "$OUT/cache")
# Tokenize once, outside the timed runs.
"$HIPPO" "${common[@]}" -n 1 -t 1 -o "$OUT/warm" --force >/dev/null
common+=(-n "$STEPS")

echo "# bench_scaling: $CONFIG, -b $B -L $L --grad-accum $ACCUM, $STEPS steps, $ROUNDS rounds, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, mpirun ${MPIRUN[*]:1}"
echo "# $(nproc) cores; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$HIPPO" "${common[@]}" -t 1 -o "$OUT/np2t1.$r" --force >/dev/null 2>&1
  OMP_NUM_THREADS=1 "$HIPPO" "${common[@]}" -t 1 -o "$OUT/np1t1.$r" --force >/dev/null 2>&1
  OMP_NUM_THREADS=2 "$HIPPO" "${common[@]}" -t 2 -o "$OUT/np1t2.$r" --force >/dev/null 2>&1
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

/usr/bin/env python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def steps(run):
    with open(f"{out}/{run}/log.jsonl") as f:
        return [j for j in map(json.loads, f) if "tokens_per_s" in j]
print("| run | tokens/s per round | median | compute s/step | wait s/step | all-reduce s/step |")
print("|---|---|---|---|---|---|")
for name, label in (("np2t1", "`-np 2 -t 1`"), ("np1t1", "`-np 1 -t 1`"), ("np1t2", "`-np 1 -t 2`")):
    tps, comp, wait, red = [], [], [], []
    for r in range(1, rounds + 1):
        s = steps(f"{name}.{r}")
        tps.append(s[-1]["tokens_per_s"])
        for j in s[1:]:  # the first step's allocations left out
            comp.append(j["compute_s"]); wait.append(j["wait_s"]); red.append(j["allreduce_s"])
    med = lambda v: f"{statistics.median(v):.3f}" if v else "-"
    print(f"| {label} | {' / '.join(f'{t:.0f}' for t in tps)} | {statistics.median(tps):.0f} | "
          f"{med(comp)} | {med(wait)} | {med(red)} |")
PY
