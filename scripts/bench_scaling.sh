#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/scaling.md, issue 15), one command:
#
#   scripts/bench_scaling.sh                 # ~5-6 min on an idle 2-core machine (estimated); markdown tables
#   ROUNDS=5 STEPS=32 scripts/bench_scaling.sh
#   SHAPE=125m STEPS=6 ROUNDS=2 scripts/bench_scaling.sh     # the 125M shape (~500 MB of gradients)
#
# The same training run (same global batch, same steps) in these ways, in alternation
# (A B C D E A B C D E ...), so that a change in the machine's load hits all of them alike:
#   np2      mpirun -np 2, -t 1 each, one all-reduce after the backward (--allreduce-bucket-mb 0)
#   np2b     the same, gradients all-reduced in buckets of BUCKET_MB during the backward
#   np2nb    np2b with mpirun --bind-to none (Open MPI binds each of 2 ranks to a core by default)
#   np1t1    one process, 1 thread
#   np1t2    one process, 2 threads
# and prints each one's tokens/s per round and median, and rank 0's median seconds per step of
# compute (its micro-batches, the launching and progressing of buckets included), wait (a
# barrier: for the slower rank) and all-reduce (what is left of it after the backward), from
# log.jsonl (the first step left out); "exposed" is wait + all-reduce, the time a step spends
# after its own compute. The load average is printed before and after.
#
# Environment: HIPPO (build/hippo), SHAPE (hybrid: configs/lm_compare/hybrid.json, d 256,
# 6 layers, byte vocabulary, 19 MB of gradients, -b 4 -L 256; 125m: d 768, 12 layers, vocabulary
# 50264, attention at layer 6, -b 1 -L 128), CONFIG/B/L (override the shape's), DATA (a text of
# DATA_BYTES, 400 kB (hybrid) or 40 kB (125m), made from the Brown corpus, tags removed), ACCUM (2: micro-batches per step over all
# ranks), STEPS (16), ROUNDS (3), RUNS (the list above), BUCKET_MB (4), OUT (a temporary
# folder), MPI_ARGS (extra mpirun options for every -np 2 run). Every run uses
# OMP_WAIT_POLICY=PASSIVE (spinning OpenMP waits make -t 2 collapse whenever anything else
# runs; on an idle machine OMP_WAIT_POLICY=ACTIVE compares the default). Needs mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
HIPPO=${HIPPO:-build/hippo}
SHAPE=${SHAPE:-hybrid}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
case "$SHAPE" in
  hybrid) CONFIG=${CONFIG:-configs/lm_compare/hybrid.json}; B=${B:-4}; L=${L:-256}; DATA_BYTES=${DATA_BYTES:-400000} ;;
  125m)
    if [ -z "${CONFIG:-}" ]; then
      CONFIG=$OUT/125m.json
      echo '{"vocab_size": 50264, "d_model": 768, "n_layer": 12, "d_state": 64, "attn_heads": 12, "mixer": "h3", "attn_layer_idx": [6]}' > "$CONFIG"
    fi
    B=${B:-1}; L=${L:-128}; DATA_BYTES=${DATA_BYTES:-40000} ;;  # a small test split: its evaluation ends each run
  *) echo "bench_scaling: SHAPE must be hybrid or 125m" >&2; exit 1 ;;
esac
ACCUM=${ACCUM:-2}; STEPS=${STEPS:-16}; ROUNDS=${ROUNDS:-3}; BUCKET_MB=${BUCKET_MB:-4}
RUNS=${RUNS:-np2 np2b np2nb np1t1 np1t2}
if [ -z "${DATA:-}" ]; then
  DATA=$OUT/brown$DATA_BYTES.txt
  [ -d data/brown ] || { echo "bench_scaling: data/brown missing (scripts/get_brown.sh), or set DATA" >&2; exit 1; }
  cat data/brown/c[a-r][0-9][0-9] | python3 -c '
import re, sys
text = re.sub(r"/\S+", "", sys.stdin.read())
sys.stdout.write(re.sub(r"[ \t]+", " ", text)[:int(sys.argv[1])])' "$DATA_BYTES" > "$DATA"
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

run() {  # name round
  local o=(-o "$OUT/$1.$2" --force)
  case "$1" in
    np2) OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$HIPPO" "${common[@]}" -t 1 --allreduce-bucket-mb 0 "${o[@]}" ;;
    np2b) OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$HIPPO" "${common[@]}" -t 1 --allreduce-bucket-mb "$BUCKET_MB" "${o[@]}" ;;
    np2nb) OMP_NUM_THREADS=1 "${MPIRUN[@]}" --bind-to none -np 2 "$HIPPO" "${common[@]}" -t 1 --allreduce-bucket-mb "$BUCKET_MB" "${o[@]}" ;;
    np1t1) OMP_NUM_THREADS=1 "$HIPPO" "${common[@]}" -t 1 "${o[@]}" ;;
    np1t2) OMP_NUM_THREADS=2 "$HIPPO" "${common[@]}" -t 2 "${o[@]}" ;;
    *) echo "bench_scaling: unknown run '$1' in RUNS" >&2; exit 1 ;;
  esac >/dev/null 2>"$OUT/$1.$2.err" || { echo "bench_scaling: run $1 (round $2) failed:" >&2; cat "$OUT/$1.$2.err" >&2; exit 1; }
}

t0=$(date +%s)
echo "# bench_scaling: SHAPE=$SHAPE $CONFIG, -b $B -L $L --grad-accum $ACCUM, $STEPS steps, $ROUNDS rounds, BUCKET_MB=$BUCKET_MB, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, mpirun ${MPIRUN[*]:1}"
echo "# $(nproc) cores; $(date -u +%H:%M) UTC; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for name in $RUNS; do run "$name" "$r"; done
  echo "# round $r done, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "# $(date -u +%H:%M) UTC; load at end: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - t0 )) s"

/usr/bin/env python3 - "$OUT" "$ROUNDS" "$RUNS" "$BUCKET_MB" <<'PY'
import json, statistics, sys
out, rounds, runs, mb = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
labels = {"np2": "`-np 2 -t 1`, one all-reduce after the backward",
          "np2b": f"`-np 2 -t 1`, buckets of {mb} MB during the backward",
          "np2nb": f"`-np 2 -t 1 --bind-to none`, buckets of {mb} MB",
          "np1t1": "`-np 1 -t 1`", "np1t2": "`-np 1 -t 2`"}
def steps(run):
    with open(f"{out}/{run}/log.jsonl") as f:
        return [j for j in map(json.loads, f) if "tokens_per_s" in j]
print("| run | tokens/s per round | median | compute s/step | wait s/step | all-reduce s/step | exposed s/step |")
print("|---|---|---|---|---|---|---|")
for name in runs:
    tps, comp, wait, red, exp = [], [], [], [], []
    for r in range(1, rounds + 1):
        s = steps(f"{name}.{r}")
        tps.append(s[-1]["tokens_per_s"])
        for j in s[1:]:  # the first step's allocations left out
            comp.append(j["compute_s"]); wait.append(j["wait_s"]); red.append(j["allreduce_s"])
            exp.append(j["wait_s"] + j["allreduce_s"])
    two = name.startswith("np2")
    med = lambda v: f"{statistics.median(v):.3f}" if v and two else "-"
    print(f"| {labels[name]} | {' / '.join(f'{t:.0f}' for t in tps)} | {statistics.median(tps):.0f} | "
          f"{statistics.median(comp):.3f} | {med(wait)} | {med(red)} | {med(exp)} |")
PY
