#!/usr/bin/env bash
# Batch-1 decode variants alternated round by round (A B C A B C ...), each run a fresh process:
# 1 thread, 125M hybrid, prompt 2048, 128 steps. Per variant: every round, the median, the spread
# across processes and the distance from the memory bound: bytes per token / the streaming
# bandwidth each run measures, with the weights only ("bound") and with the KV cache and SSM
# states a step also moves ("all bytes"). Prints the load before, per run and after.
# Usage: bench/decode_variants_ab.sh [ROUNDS=5] [HIPPO=build/hippo]
# VARIANTS (optional) overrides the list: "label|ENV=.. ENV=..|hippo bench generate args" per
# line, with an optional fourth field naming another hippo binary for that variant (old against
# new builds: "q8-old||--q8 --kv-cache bf16|/path/to/old/hippo"). The default compares (issue 18, session 11) q8 in the row-major layout (session 10's
# default), q8 in the Rows4 layout (four rows interleaved: the default where AVX512-VNNI runs),
# both with the bf16 KV cache, and bf16 weights for the q8/bf16 ratio.
set -euo pipefail
rounds=${1:-5}
hippo=${2:-build/hippo}
steps=${STEPS:-128}
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$steps" =~ ^[1-9][0-9]*$ ]] ||
  { echo "decode_variants_ab.sh: ROUNDS and STEPS must be positive integers (got '$rounds', '$steps')" >&2; exit 2; }
[[ -x "$hippo" ]] || { echo "decode_variants_ab.sh: no executable '$hippo'" >&2; exit 2; }
default_variants="q8-rows||--q8 --q8-layout rows --kv-cache bf16
q8-rows4||--q8 --q8-layout rows4 --kv-cache bf16
bf16||--bf16 --kv-cache bf16"
variants=${VARIANTS:-$default_variants}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= rounds; i++)); do
  while IFS='|' read -r label envs args bin; do
    [[ -z "$label" ]] && continue
    bin=${bin:-$hippo}
    [[ -x "$bin" ]] || { echo "decode_variants_ab.sh: no executable '$bin' (variant $label)" >&2; exit 2; }
    # shellcheck disable=SC2086
    out=$(env OMP_NUM_THREADS=1 $envs "$bin" bench generate -t 1 --prompts 2048 --batches 1 \
          --only hybrid -n "$steps" $args 2>&1)
    row=$(grep -E '^2048 ' <<<"$out")
    bound=$(grep -oE 'bandwidth bound [0-9.]+' <<<"$out" | awk '{print $3}')
    allb=$(grep -oE 'all-bytes bound [0-9.]+' <<<"$out" | awk '{print $3}')
    read -r _ _ pw _ pc dw _ dc <<<"$row"
    echo "$label round $i: prompt $pw / $pc, decode $dw / $dc tok/s (wall / cpu), bound $bound (all bytes $allb), load $(cut -d' ' -f1 /proc/loadavg)"
    echo "$label $pc $dc $bound $allb" >>"$tmp/all"
  done <<<"$variants"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp/all" <<'PY'
import statistics as st, sys
rows = {}
for line in open(sys.argv[1]):
    label, pc, dc, bound, allb = line.split()
    rows.setdefault(label, []).append((float(pc), float(dc), float(bound), float(allb)))
print(f"{'variant':<16} {'prompt cpu':>10} {'decode cpu':>10} {'min':>7} {'max':>7} {'bound':>7} "
      f"{'x bound':>8} {'all bytes':>9} {'x all':>6}")
for label, r in rows.items():
    d = [x[1] for x in r]
    mp, md = st.median(x[0] for x in r), st.median(d)
    mb, ma = st.median(x[2] for x in r), st.median(x[3] for x in r)
    print(f"{label:<16} {mp:10.1f} {md:10.1f} {min(d):7.1f} {max(d):7.1f} {mb:7.1f} {mb / md:8.2f} "
          f"{ma:9.1f} {ma / md:6.2f}")
PY
