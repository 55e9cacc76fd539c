#!/usr/bin/env bash
# q8 against bf16 decoding, alternated (bf16, q8, bf16, q8, ...), 1 thread, 125M hybrid, prompt
# 2048: medians of ROUNDS runs each, the q8/bf16 ratio and q8's distance from its memory bound
# (weight bytes per token / the streaming bandwidth each run measures). Prints the load before
# and after. Usage: bench/q8_decode_ab.sh [ROUNDS=5] [HIPPO=build/hippo]
# Extra environment for the q8 runs only: Q8_ENV (e.g. Q8_ENV="HIPPO_ISA=avx2" for AVX-VNNI).
# KV=fp32|bf16|auto: the KV cache of both (default auto: bf16 for bf16 and q8 weights, session
# 10; KV=fp32 runs as session 9 did). bench/decode_variants_ab.sh compares KV caches and pages.
set -euo pipefail
rounds=${1:-5}
hippo=${2:-build/hippo}
[[ -x "$hippo" ]] || { echo "q8_decode_ab.sh: no executable '$hippo' (build hippo_cli first)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= rounds; i++)); do
  for dt in bf16 q8; do
    envs=(OMP_NUM_THREADS=1)
    [[ $dt == q8 && -n "${Q8_ENV:-}" ]] && envs+=($Q8_ENV)
    out=$(env "${envs[@]}" "$hippo" bench generate -t 1 --prompts 2048 --batches 1 --only hybrid \
          -n 128 --$dt --kv-cache "${KV:-auto}" 2>&1)
    # "2048 1 <prompt wall> / <prompt cpu> <decode wall> / <decode cpu>" and the bound line
    row=$(grep -E '^2048 ' <<<"$out")
    bound=$(grep -oE 'bandwidth bound [0-9.]+' <<<"$out" | awk '{print $3}')
    read -r _ _ pw _ pc dw _ dc <<<"$row"
    echo "$dt round $i: prompt $pw / $pc, decode $dw / $dc tok/s (wall / cpu), bound $bound, load $(cut -d' ' -f1 /proc/loadavg)"
    echo "$pw $pc $dw $dc $bound" >>"$tmp/$dt"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$tmp" <<'EOF'
import statistics as st, sys
d = sys.argv[1]
cols = ["prompt wall", "prompt cpu", "decode wall", "decode cpu", "bound"]
v = {dt: [list(map(float, l.split())) for l in open(f"{d}/{dt}")] for dt in ("bf16", "q8")}
med = {dt: [st.median(r[i] for r in v[dt]) for i in range(5)] for dt in v}
print("medians      " + "  ".join(f"{c:>11}" for c in cols))
for dt in ("bf16", "q8"):
    print(f"{dt:<12} " + "  ".join(f"{x:11.1f}" for x in med[dt]))
for i, what in ((2, "wall"), (3, "cpu")):
    ratios = [q[i] / b[i] for b, q in zip(v["bf16"], v["q8"])]
    print(f"q8/bf16 decode ({what}): median of medians {med['q8'][i] / med['bf16'][i]:.2f}, "
          f"per round {' '.join(f'{r:.2f}' for r in ratios)}")
print(f"q8 decode (cpu) from its bound: {med['q8'][4] / med['q8'][3]:.2f}x "
      f"(bound {med['q8'][4]:.1f} tok/s = weight bytes / streaming bandwidth by CPU time)")
print(f"q8/bf16 prompt (cpu): {med['q8'][1] / med['bf16'][1]:.2f}")
EOF
