#!/usr/bin/env bash
# Issue 5's language-modelling comparison: Transformer (learned positions), H3, hybrid H3 with
# two attention layers, and S4D, at equal parameter count (~5.2M), trained on the Brown corpus
# (byte tokenizer) with the same token budget and optimizer settings, two seeds each. Writes
# runs/lm_compare/{table.md,results.csv,loss.png} and one run folder per model and seed.
#
#   scripts/lm_compare.sh [-n STEPS] [-j PARALLEL_RUNS] [-s "SEEDS"] [-m "MODELS"] [-o OUT]
# Every run uses one thread; -j 2 runs two at a time (the machine has 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=400 jobs=1 seeds="0 1" out=runs/lm_compare models="transformer h3 hybrid s4d"
while getopts "n:j:s:m:o:" opt; do
  case $opt in
    n) steps=$OPTARG ;; j) jobs=$OPTARG ;; s) seeds=$OPTARG ;; m) models=$OPTARG ;;
    o) out=$OPTARG ;;
    *) echo "usage: $0 [-n STEPS] [-j PARALLEL_RUNS] [-s \"SEEDS\"] [-m \"MODELS\"] [-o OUT]" >&2
       exit 2 ;;
  esac
done
hippo=${HIPPO_BIN:-build/hippo}  # HIPPO_BIN: run a copy while build/ changes
[ -x "$hippo" ] || scripts/setup.sh
scripts/get_brown.sh
mkdir -p "$out"
# The same settings for every model: batch 16 x 256 bytes, AdamW lr 2e-3 (warmup 50, cosine
# to 10%), weight decay 0.1, clip 1.0, validation every 50 steps on 64K bytes.
run_one() {
  local m=$1 s=$2 dir="$out/${1}_s$2"
  if [ -f "$dir/result.txt" ] && grep -q '^test:' "$dir/result.txt"; then
    echo "$m seed $s: done already ($dir/result.txt)"; return
  fi
  rm -rf "$dir"
  echo "$m seed $s: training ($dir)"
  "$hippo" train -c "configs/lm_compare/$m.json" -d brown --tokenizer byte -s "$s" -t 1 \
    -n "$steps" -b 16 -L 256 --lr 2e-3 --warmup 50 --min-lr-ratio 0.1 --wd 0.1 --clip 1.0 \
    --eval-every 50 --eval-tokens 65536 --log-every 10 -q -o "$dir" >"$dir.stdout" 2>"$dir.stderr" \
    || { echo "$m seed $s FAILED: see $dir.stderr" >&2; return 1; }
  mv "$dir.stdout" "$dir/result.txt"; mv "$dir.stderr" "$dir/train.stderr"
  grep '^test:' "$dir/result.txt" | sed "s/^/$m seed $s: /"
}
export -f run_one; export out steps hippo
start=$(date +%s)
for s in $seeds; do for m in $models; do echo "$m $s"; done; done |
  xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"'
echo "all runs: $(( $(date +%s) - start )) s"
/usr/bin/python3 scripts/plot_lm_compare.py "$out"
cat "$out/table.md"
