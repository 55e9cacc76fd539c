#!/usr/bin/env bash
# hippo vs llama.cpp, batch-1 decoding at 2048 tokens of context, 1 thread, same machine, same
# hour, alternating (A B A B). Fetches nothing: give it a llama.cpp CPU build folder (cmake
# -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF, target llama-bench).
#
#   bench/llama_cpp_compare.sh LLAMA_BUILD_DIR [ROUNDS=3]
#
# llama.cpp side: GPT-2 124M-shaped GGUF files with random weights (F32, BF16, Q8_0; written
# once into $WORK by bench/make_gpt2_gguf.py with llama.cpp's own gguf-py), measured by
# `llama-bench -t 1 -p 0 -n 128 -d 2048` (tg128 after a 2048-token context; wall-clock mean).
# hippo side: the 125M hybrid (random weights) in `hippo bench generate -t 1 --prompts 2048
# --batches 1 --only hybrid` with fp32, --bf16 and --q8 weights (decode tokens/s by wall time:
# the fastest 16-step window of 128 steps). Pairs: F32-fp32, BF16-bf16, Q8_0-q8.
# Environment: HIPPO (default build/hippo), WORK (default /tmp/hippo_llama_compare),
# LLAMA_SRC (default: the source folder recorded in the build's CMakeCache.txt; gguf-py there).
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,16p "$0"; exit 2; }
BUILD=$(cd "$1" && pwd)
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
HIPPO=${HIPPO:-$HERE/../build/hippo}
WORK=${WORK:-/tmp/hippo_llama_compare}
LB=$BUILD/bin/llama-bench
[ -x "$LB" ] || { echo "error: no $LB (build the llama-bench target)" >&2; exit 1; }
[ -x "$HIPPO" ] || { echo "error: no hippo binary at $HIPPO (set HIPPO)" >&2; exit 1; }
SRC=${LLAMA_SRC:-$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")}
[ -d "$SRC/gguf-py" ] || { echo "error: no gguf-py in '$SRC' (set LLAMA_SRC)" >&2; exit 1; }
VOCAB=${VOCAB:-$HERE/../data/gpt2}
[ -f "$VOCAB/encoder.json" ] || { echo "error: no GPT-2 vocabulary in $VOCAB (set VOCAB)" >&2; exit 1; }
COMMIT=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || cat "$SRC/COMMIT" 2>/dev/null || echo unknown)
mkdir -p "$WORK"
echo "llama.cpp source $SRC, commit $COMMIT; build $BUILD"
echo "hippo $HIPPO ($(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load at start: $(uptime | sed 's/.*load average/load average/')"

# llama.cpp before mid-2025: llama-bench has no -d (depth) and GPT-2 needs an untied output.
OLD_LLAMA=0
"$LB" --help 2>&1 | grep -q -- '-d, --n-depth' || OLD_LLAMA=1
if [ "$OLD_LLAMA" = 1 ]; then
  [ -x "$BUILD/bin/llama-batched-bench" ] ||
    { echo "error: this llama-bench has no -d; build the llama-batched-bench target too" >&2; exit 1; }
  WORK=$WORK/untied; mkdir -p "$WORK"; export UNTIED_OUTPUT=1
  echo "older llama.cpp: tg128 after 2048 tokens from llama-batched-bench (S_TG), untied output"
fi
for t in f32 bf16 q8_0; do
  f=$WORK/gpt2_124m_$t.gguf
  [ -s "$f" ] || /usr/bin/python3 "$HERE/make_gpt2_gguf.py" "$SRC" "$f" "$t" "$VOCAB"
done

llama_ts() {  # mean tokens/s of tg128 at depth 2048
  if [ "$OLD_LLAMA" = 1 ]; then  # no -d: batched-bench's S_TG (128 steps after a 2048 prompt)
    "$BUILD/bin/llama-batched-bench" -m "$WORK/gpt2_124m_$1.gguf" -t 1 -c 2304 -b 2048 \
      -ub 512 -npp 2048 -ntg 128 -npl 1 2>/dev/null |
      awk -F'|' '$2 + 0 == 2048 && $4 + 0 == 1 { gsub(/ /, "", $9); print $9 }'
    return
  fi
  "$LB" -m "$WORK/gpt2_124m_$1.gguf" -t 1 -p 0 -n 128 -d 2048 -r 2 -o csv 2>/dev/null |
    /usr/bin/python3 -c 'import csv,sys; r=list(csv.DictReader(sys.stdin)); print(r[-1]["avg_ts"])'
}
hippo_ts() {  # decode tokens/s (wall) of the hybrid at prompt 2048, batch 1
  OMP_NUM_THREADS=1 "$HIPPO" bench generate -t 1 --prompts 2048 --batches 1 --only hybrid \
    -n 128 $1 2>/dev/null | awk '$1 == 2048 && $2 == 1 { print $6 }'
}

declare -A L H
for r in $(seq 1 "$ROUNDS"); do
  for pair in "f32:" "bf16:--bf16" "q8_0:--q8"; do
    t=${pair%%:*}; flag=${pair#*:}
    a=$(llama_ts "$t"); b=$(hippo_ts "$flag")
    L[$t]="${L[$t]:-} $a"; H[$t]="${H[$t]:-} $b"
    printf 'round %d %-5s llama.cpp %8.2f t/s   hippo %8.2f t/s\n' "$r" "$t" "$a" "$b"
  done
done
echo "load at end: $(uptime | sed 's/.*load average/load average/')"
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
echo "| weights (llama.cpp / hippo) | llama.cpp GPT-2 124M tg128 @2048 t/s | hippo 125M hybrid decode @2048 t/s | hippo / llama.cpp |"
echo "|---|---|---|---|"
for pair in "f32:fp32" "bf16:bf16" "q8_0:q8"; do
  t=${pair%%:*}; h=${pair#*:}
  ml=$(echo "${L[$t]}" | median); mh=$(echo "${H[$t]}" | median)
  awk -v t="$t" -v h="$h" -v a="$ml" -v b="$mh" \
    'BEGIN { printf "| %s / %s | %.1f | %.1f | %.2fx |\n", toupper(t), h, a, b, b / a }'
done
echo "(medians of $ROUNDS rounds, 1 thread; llama.cpp commit $COMMIT)"
