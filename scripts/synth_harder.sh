#!/usr/bin/env bash
# Issue 17's harder table: where each model stops solving the recall tasks as they grow.
#   length:     induction head (vocab 20) trained at the default length 32 with the default budget,
#               then (1) tested as it is at lengths 32 ... 1,024 (hippo synth --test-lengths), and
#               (2) trained on at 64, 128, ... 1,024 in turn, each stage with the tokens of the
#               first (--curriculum), as long as it solves each length (>= 99%). Training from
#               scratch at each length says little: at length 64 H3 stays on the plateau for all
#               96k sequences of the default budget (docs/results.md).
#   vocabulary: associative recall at the default length 20 (8 pairs), vocab 10, 16, 24, 32, 64
#               (4 ... 31 keys to bind), each trained with the default budget.
# for attention, H3, S4D and the two ablations, at the study's defaults (hippo synth --help).
# Writes OUT/<point>/ (one hippo synth study each), OUT/table.md, OUT/harder.csv, OUT/harder.png.
#
#   scripts/synth_harder.sh [-o OUT] [-s SEEDS] [-j PARALLEL_RUNS] [--only length|vocab] [--force]
# About 30 minutes with one seed and -j 2 on two cores (docs/results.md has the measured time).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/synth_harder seeds=1 jobs=0 only=all force=()
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift 2 ;; -s) seeds=$2; shift 2 ;; -j) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;; --force) force=(--force); shift ;;
    *) echo "usage: $0 [-o OUT] [-s SEEDS] [-j PARALLEL_RUNS] [--only length|vocab] [--force]" >&2
       exit 2 ;;
  esac
done
case $only in all | length | vocab) ;; *) echo "error: --only takes length or vocab, got '$only'" >&2; exit 2 ;; esac
hippo=${HIPPO_BIN:-build/hippo}  # HIPPO_BIN: run a copy while build/ changes
[ -x "$hippo" ] || scripts/setup.sh
if [ -e "$out/table.md" ] && [ ${#force[@]} -eq 0 ]; then
  echo "error: $out already holds a harder table; discard it with --force or choose another -o" >&2
  exit 1
fi
mkdir -p "$out"
start=$(date +%s)
study() {  # name, then hippo synth options
  local dir="$out/$1"; shift
  echo "== $dir: $*"
  "$hippo" synth --seeds "$seeds" -t "$jobs" -o "$dir" "${force[@]}" "$@" > "$dir.table.md"
}
if [ "$only" != vocab ]; then
  study induction_head_lengths --tasks induction_head --test-lengths 32,64,128,256,512,1024 \
    --curriculum 64,128,256,512,1024
fi
if [ "$only" != length ]; then
  for vocab in 10 16 24 32 64; do
    study "associative_recall_v$vocab" --tasks associative_recall --vocab "$vocab"
  done
fi
/usr/bin/python3 scripts/plot_synth_harder.py "$out" "$(( $(date +%s) - start ))"
