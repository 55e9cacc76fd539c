#!/usr/bin/env bash
# Issue 17's harder table: where each model stops solving the recall tasks as they grow.
#   length sweep:     mqar (multi-query associative recall), vocab 512, sequence length 64, 128,
#                     256, 512, 1024 with length/8 key-value pairs (8 ... 128), so every length
#                     has the same share of answers (one per 8 tokens) and the same number of
#                     answers within the token budget, while the facts to hold grow with length
#   vocabulary sweep: associative_recall, length 64 (30 pairs), vocab 10, 20, 40, 64
# for attention, H3, S4D and the two ablations. Every run has the same token budget (3000 steps
# of 1024 tokens: batch 1024 / length) and the default study settings (hippo synth --help).
# Writes OUT/<point>/ (one hippo synth study each), OUT/table.md, OUT/harder.csv, OUT/harder.png.
#
#   scripts/synth_harder.sh [-o OUT] [-s SEEDS] [-j PARALLEL_RUNS] [-n STEPS] [--only length|vocab] [--force]
# About 30 minutes with -j 2 on two cores (docs/results.md has the measured time).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/synth_harder seeds=1 jobs=0 steps=3000 only=all force=()
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift 2 ;; -s) seeds=$2; shift 2 ;; -j) jobs=$2; shift 2 ;; -n) steps=$2; shift 2 ;;
    --only) only=$2; shift 2 ;; --force) force=(--force); shift ;;
    *) echo "usage: $0 [-o OUT] [-s SEEDS] [-j PARALLEL_RUNS] [-n STEPS] [--only length|vocab] [--force]" >&2
       exit 2 ;;
  esac
done
hippo=${HIPPO_BIN:-build/hippo}  # HIPPO_BIN: run a copy while build/ changes
[ -x "$hippo" ] || scripts/setup.sh
if [ -e "$out/table.md" ] && [ ${#force[@]} -eq 0 ]; then
  echo "error: $out already holds a harder table; discard it with --force or choose another -o" >&2
  exit 1
fi
mkdir -p "$out"
models=(attention h3 s4d h3_noshift h3_nodiag)
start=$(date +%s)
point() {  # task vocab length pairs-or-0
  local task=$1 vocab=$2 len=$3 pairs=$4 dir="$out/${1}_v${2}_L${3}"
  local batch=$((1024 / len)); [ "$batch" -ge 1 ] || batch=1
  local n_test=$((500 * 32 / len)); [ "$n_test" -ge 100 ] || n_test=100
  local extra=(); [ "$pairs" -gt 0 ] && extra=(--pairs "$pairs")
  echo "== $task vocab $vocab length $len: batch $batch, $steps steps, $n_test test sequences"
  "$hippo" synth --tasks "$task" --models "${models[@]}" --seeds "$seeds" --vocab "$vocab" \
    --seq-len "$len" "${extra[@]}" -b "$batch" -n "$steps" --eval-every 200 --n-test "$n_test" \
    -t "$jobs" -o "$dir" "${force[@]}" > "$dir.table.md"
}
case $only in all | length | vocab) ;; *) echo "error: --only takes length or vocab, got '$only'" >&2; exit 2 ;; esac
if [ "$only" != vocab ]; then
  for len in 64 128 256 512 1024; do point mqar 512 "$len" $((len / 8)); done
fi
if [ "$only" != length ]; then
  for vocab in 10 20 40 64; do point associative_recall "$vocab" 64 0; done
fi
/usr/bin/python3 scripts/plot_synth_harder.py "$out" "$(( $(date +%s) - start ))"
