#!/usr/bin/env bash
# Issue 18 "two threads": -t 2 against -t 1 on the 125M shapes, alternated (t1 t2 t1 t2 ...) so
# that both see the same machine, plus the decoding step's two threading paths at -t 2
# (HIPPO_STEP_THREADING=one-region, the default, against per-op, the old one fork/join per
# product). Prints one line per run and a median table of the -t 2 / -t 1 ratios, over all
# rounds and, per round, over the rounds whose -t 2 run had a core per thread: build/bench/
# corun_probe runs just before and after each -t 2 run (on a VM the host sometimes puts both
# vCPUs on one core; a ratio measured then says nothing about the code).
#
#   scripts/bench_threads.sh                 # ROUNDS=3; about 15 minutes on a quiet machine
#   ROUNDS=1 PROMPT=512 scripts/bench_threads.sh
#   ONLY=train ROUNDS=5 scripts/bench_threads.sh   # training only (-t 1, -t 2 alternated)
#
# Decode and prompt: `hippo bench generate --only hybrid --batches 1 --prompts $PROMPT -n 64`
# [--bf16 | --q8] (random 125M hybrid, 12 layers, d 768, GPT-2 vocabulary). Training:
# `hippo train` of a d 768, 12-layer hybrid (byte vocabulary) on $DATA (a Brown text), -b 2 -L 512,
# tokens/s of the last of $STEPS steps. Environment: HIPPO (build/hippo), ROUNDS (3), PROMPT
# (2048), STEPS (4), OUT (a temporary folder), PROBE (build/bench/corun_probe). Needs both
# cores free to mean anything: the load is printed at the start and the end.
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
PROBE=${PROBE:-$(dirname "$HIPPO")/bench/corun_probe}
# Whether both vCPUs have a core each around a -t 2 run (bench/corun_probe.cpp): "sep" when the
# probe says so before and after, else "shared"; "-" without the probe.
probe() { [ -x "$PROBE" ] && "$PROBE" 2 | grep -oE 'cores (separate|shared)' | awk '{print $2}' || echo none; }
verdict() { if [ "$1" = separate ] && [ "$2" = separate ]; then echo sep; elif [ "$1" = none ]; then echo -; else echo shared; fi; }
: > "$RES"; : > "$RES.raw"
for r in $(seq 1 "$ROUNDS"); do
  for dt in fp32 bf16 q8; do
    [ "${ONLY:-}" = train ] && break  # ONLY=train: the training rows alone
    flag=""; [ "$dt" = fp32 ] || flag="--$dt"
    read -r p d < <(gen 1 "$flag" one-region)
    echo "round $r $dt -t 1 one-region: prompt $p tok/s, decode $d tok/s" | tee -a "$RES"
    echo "gen $dt 1 one $p $d - $r" >> "$RES.raw"
    before=$(probe)
    read -r p d < <(gen 2 "$flag" one-region)
    v=$(verdict "$before" "$(probe)")
    echo "round $r $dt -t 2 one-region: prompt $p tok/s, decode $d tok/s (cores: $v)" | tee -a "$RES"
    echo "gen $dt 2 one $p $d $v $r" >> "$RES.raw"
    read -r p d < <(gen 2 "$flag" per-op)
    echo "round $r $dt -t 2 per-op:     prompt $p tok/s, decode $d tok/s" | tee -a "$RES"
    echo "gen $dt 2 perop $p $d - $r" >> "$RES.raw"
  done
  s=$(train 1)
  echo "round $r train -t 1: $s tokens/s" | tee -a "$RES"
  echo "train - 1 one $s $s - $r" >> "$RES.raw"
  before=$(probe)
  s=$(train 2)
  v=$(verdict "$before" "$(probe)")
  echo "round $r train -t 2: $s tokens/s (cores: $v)" | tee -a "$RES"
  echo "train - 2 one $s $s $v $r" >> "$RES.raw"
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"

python3 - "$RES.raw" <<'PY'
import statistics, sys
from collections import defaultdict
v = defaultdict(list)    # (kind, dtype, threads, mode) -> [(prompt, decode)]
rnd = defaultdict(dict)  # (kind, dtype, threads) -> {round: (prompt, decode, verdict)}
for line in open(sys.argv[1]):
    kind, dt, t, mode, p, d, verdict, r = line.split()
    v[(kind, dt, t, mode)].append((float(p), float(d)))
    if mode == "one":
        rnd[(kind, dt, t)][r] = (float(p), float(d), verdict)
med = lambda xs: statistics.median(xs) if xs else float("nan")
def paired(kind, dt, i):
    """Per-round -t 2 / -t 1 ratios of the rounds whose -t 2 run had a core per thread."""
    one, two = rnd[(kind, dt, "1")], rnd[(kind, dt, "2")]
    xs = [two[r][i] / one[r][i] for r in two if r in one and two[r][2] == "sep"]
    n_all = len(two)
    return (f"{med(xs):.2f} ({len(xs)} of {n_all})" if xs else f"- (0 of {n_all})")
print("| what | -t 1 | -t 2 | -t 2 / -t 1 | -t 2 / -t 1, rounds on separate cores | -t 2 per-op |")
print("|---|---:|---:|---:|---:|---:|")
for dt in ("fp32", "bf16", "q8"):
    for i, name in ((1, "decode"), (0, "prompt")):
        a = med([x[i] for x in v[("gen", dt, "1", "one")]])
        b = med([x[i] for x in v[("gen", dt, "2", "one")]])
        c = med([x[i] for x in v[("gen", dt, "2", "perop")]])
        print(f"| {dt} {name} tok/s | {a:.1f} | {b:.1f} | {b / a:.2f} | {paired('gen', dt, i)} | {c:.1f} |")
a = med([x[0] for x in v[("train", "-", "1", "one")]])
b = med([x[0] for x in v[("train", "-", "2", "one")]])
print(f"| train tok/s | {a:.0f} | {b:.0f} | {b / a:.2f} | {paired('train', '-', 0)} | |")
PY
