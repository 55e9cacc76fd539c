#!/usr/bin/env bash
# Issue 18 "two threads": -t 2 against -t 1 on the 125M shapes, alternated (t1 t2 t1 t2 ...) so
# that both see the same machine, plus the decoding step's two threading paths at -t 2
# (HIPPO_STEP_THREADING=one-region, the default, against per-op, the old one fork/join per
# product). Prints one line per run and a median table of the -t 2 / -t 1 ratios.
#
#   scripts/bench_threads.sh                 # ROUNDS=3; about 15 minutes on a quiet machine
#   ROUNDS=1 PROMPT=512 scripts/bench_threads.sh
#   ONLY=train ROUNDS=5 scripts/bench_threads.sh   # training only (-t 1, -t 2 alternated)
#
# Decode and prompt: `hippo bench generate --only hybrid --batches 1 --prompts $PROMPT -n 64`
# [--bf16 | --q8] (random 125M hybrid, 12 layers, d 768, GPT-2 vocabulary). Training:
# `hippo train` of a d 768, 12-layer hybrid (byte vocabulary) on $DATA (a Brown text), -b 2 -L 512,
# tokens/s of the last of $STEPS steps. Environment: HIPPO (build/hippo), ROUNDS (3), PROMPT
# (2048), STEPS (4), OUT (a temporary folder). Needs both cores free to mean anything: the
# load is printed at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
HIPPO=${HIPPO:-build/hippo}
ROUNDS=${ROUNDS:-3}; PROMPT=${PROMPT:-2048}; STEPS=${STEPS:-4}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "# bench_threads: $(nproc) cores; load at start: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"

gen() {  # threads, dtype flag (or ""), mode -> "prompt_wall decode_wall"
  HIPPO_STEP_THREADING=$3 "$HIPPO" bench generate -t "$1" --only hybrid --batches 1 \
    --prompts "$PROMPT" -n 64 $2 2>/dev/null |
    awk -v P="$PROMPT" '$1 == P && $2 == 1 { print $3, $6 }'
}

if [ -z "${DATA:-}" ]; then
  DATA=$OUT/brown400k.txt
  [ -d data/brown ] || { echo "bench_threads: data/brown missing (scripts/get_brown.sh), or set DATA" >&2; exit 1; }
  python3 -c 'import glob, sys; sys.stdout.write("".join(open(f).read() for f in sorted(glob.glob("data/brown/c[a-r][0-9][0-9]")))[:400000])' > "$DATA"
fi
CONFIG=$OUT/hybrid125m.json
echo '{"vocab_size": 257, "d_model": 768, "n_layer": 12, "d_state": 64, "attn_heads": 12, "mixer": "h3", "attn_layer_idx": [1, 8]}' > "$CONFIG"
train_args=(train -c "$CONFIG" -d "$DATA" -b 2 -L 512 --warmup 0 --eval-every 0 --eval-tokens 1024
            --log-every 1 -q --cache-dir "$OUT/cache")
"$HIPPO" "${train_args[@]}" -n 1 -t 1 -o "$OUT/warm" --force >/dev/null  # tokenize once
train() {  # threads -> tokens/s of the last step
  "$HIPPO" "${train_args[@]}" -n "$STEPS" -t "$1" -o "$OUT/train" --force >/dev/null 2>&1
  python3 -c 'import json,sys; print([j for j in map(json.loads, open(sys.argv[1])) if "tokens_per_s" in j][-1]["tokens_per_s"])' "$OUT/train/log.jsonl"
}

RES=$OUT/results.txt
: > "$RES"; : > "$RES.raw"
for r in $(seq 1 "$ROUNDS"); do
  for dt in fp32 bf16 q8; do
    [ "${ONLY:-}" = train ] && break  # ONLY=train: the training rows alone
    flag=""; [ "$dt" = fp32 ] || flag="--$dt"
    for t in 1 2; do
      read -r p d < <(gen "$t" "$flag" one-region)
      echo "round $r $dt -t $t one-region: prompt $p tok/s, decode $d tok/s" | tee -a "$RES"
      echo "gen $dt $t one $p $d" >> "$RES.raw"
    done
    read -r p d < <(gen 2 "$flag" per-op)
    echo "round $r $dt -t 2 per-op:     prompt $p tok/s, decode $d tok/s" | tee -a "$RES"
    echo "gen $dt 2 perop $p $d" >> "$RES.raw"
  done
  for t in 1 2; do
    s=$(train "$t")
    echo "round $r train -t $t: $s tokens/s" | tee -a "$RES"
    echo "train - $t one $s $s" >> "$RES.raw"
  done
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"

python3 - "$RES.raw" <<'PY'
import statistics, sys
from collections import defaultdict
v = defaultdict(list)
for line in open(sys.argv[1]):
    kind, dt, t, mode, p, d = line.split()
    v[(kind, dt, t, mode)].append((float(p), float(d)))
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| what | -t 1 | -t 2 | -t 2 / -t 1 | -t 2 per-op |")
print("|---|---:|---:|---:|---:|")
for dt in ("fp32", "bf16", "q8"):
    for i, name in ((1, "decode"), (0, "prompt")):
        a = med([x[i] for x in v[("gen", dt, "1", "one")]])
        b = med([x[i] for x in v[("gen", dt, "2", "one")]])
        c = med([x[i] for x in v[("gen", dt, "2", "perop")]])
        print(f"| {dt} {name} tok/s | {a:.1f} | {b:.1f} | {b / a:.2f} | {c:.1f} |")
a = med([x[0] for x in v[("train", "-", "1", "one")]])
b = med([x[0] for x in v[("train", "-", "2", "one")]])
print(f"| train tok/s | {a:.0f} | {b:.0f} | {b / a:.2f} | |")
PY
