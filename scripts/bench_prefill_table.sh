#!/usr/bin/env bash
# Issue 16's prefill table in one command: `hippo bench prefill` (1 thread) for the 125M
# H3-only, hybrid and Transformer shapes from 512 to 16K tokens, then H3-only at 64K, 256K and
# 1M tokens, each long length in a fresh process (so its peak RSS is not the earlier lengths'),
# and the plot. Writes OUT/prefill_bench.csv and OUT/prefill_bench.{png|svg}.
#
#   scripts/bench_prefill_table.sh [-o OUT] [-l "LONG LENGTHS"] [-s]
# -s: the --small shape (a quick check of the script, seconds). The 1M point takes the whole
# machine for tens of minutes: run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/results long="65536 262144 1048576" small=""
while getopts "o:l:s" opt; do
  case $opt in
    o) out=$OPTARG ;; l) long=$OPTARG ;; s) small=--small ;;
    *) echo "usage: $0 [-o OUT] [-l \"LONG LENGTHS\"] [-s]" >&2; exit 2 ;;
  esac
done
hippo=${HIPPO_BIN:-build/hippo}
[ -x "$hippo" ] || { echo "$hippo not found: build first (or set HIPPO_BIN)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
short="512 1024 2048 4096 8192 16384"
export OMP_NUM_THREADS=1
for m in h3 hybrid transformer; do
  "$hippo" bench prefill -t 1 $small --models "$m" --lengths $short --csv "$tmp/$m.csv"
done
for L in $long; do
  "$hippo" bench prefill -t 1 $small --models h3 --lengths "$L" --csv "$tmp/h3_$L.csv"
done
# One CSV: the first file's header, every file's rows.
first=1
for f in "$tmp"/h3.csv "$tmp"/hybrid.csv "$tmp"/transformer.csv "$tmp"/h3_*.csv; do
  [ -f "$f" ] || continue
  if [ $first = 1 ]; then cat "$f"; first=0; else tail -n +2 "$f"; fi
done > "$tmp/all.csv"
mv "$tmp/all.csv" "$out/prefill_bench.csv"
img=$out/prefill_bench.png
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || img=$out/prefill_bench.svg
/usr/bin/python3 scripts/plot_prefill.py "$img" "$out/prefill_bench.csv"
echo "wrote $out/prefill_bench.csv and $img"
