#!/usr/bin/env bash
# Issue 18, training with two threads: where a training step of the 125M shape (the model and
# batch of scripts/bench_threads.sh: d 768, 12-layer hybrid, byte vocabulary, -b 2 -L 512) spends
# its time at -t 1 and -t 2, by CPU time per phase (HIPPO_PROFILE, src/core/phase_profile.h),
# which holds on a loaded machine where wall-clock ratios do not. Threads waiting for work
# sleep (OMP_WAIT_POLICY=passive), so the other thread's CPU time is its share of the work and
# main - other is the serial time (outside parallel regions, plus imbalance inside them).
# Prints each step's table for -t 2, then a summary per thread count of the steps after the
# first (the first also pays first-touch page faults): work, serial time, serial fraction s,
# and the projected -t 2 speedup work(-t 1) / busy(-t 2) (Amdahl with the measured s and the
# measured extra work of two threads).
#
#   scripts/profile_train_threads.sh            # STEPS=3; ~2 min of CPU
# Environment: HIPPO (build/hippo), STEPS (3), DATA (a text; default: 100 kB of Brown, whose small test split keeps the final evaluation short), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
HIPPO=${HIPPO:-build/hippo}
STEPS=${STEPS:-3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if [ -z "${DATA:-}" ]; then
  DATA=$OUT/brown100k.txt
  [ -d data/brown ] || { echo "profile_train_threads: data/brown missing, or set DATA" >&2; exit 1; }
  python3 -c 'import glob, sys; sys.stdout.write("".join(open(f).read() for f in sorted(glob.glob("data/brown/c[a-r][0-9][0-9]")))[:100000])' > "$DATA"  # small: the final test evaluation is of its 5%
fi
CONFIG=$OUT/hybrid125m.json
echo '{"vocab_size": 257, "d_model": 768, "n_layer": 12, "d_state": 64, "attn_heads": 12, "mixer": "h3", "attn_layer_idx": [1, 8]}' > "$CONFIG"
echo "# profile_train_threads: load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%H:%M) UTC"
for t in ${TS:-1 2}; do  # TS="2": only -t 2 (reusing $OUT/prof1.txt)
  HIPPO_PROFILE=1 OMP_WAIT_POLICY=passive "$HIPPO" train -c "$CONFIG" -d "$DATA" -b 2 -L 512 \
    --warmup 0 --eval-every 0 --eval-tokens 1024 --log-every 1 -q --cache-dir "$OUT/cache" \
    -n "$STEPS" -t "$t" -o "$OUT/run$t" --force > /dev/null 2> "$OUT/prof$t.txt" || true  # tables so far
done
[ "${QUIET_TABLES:-0}" = 1 ] || cat "$OUT/prof2.txt"
python3 - "$OUT/prof1.txt" "$OUT/prof2.txt" <<'PY'
import statistics, sys
def steps(path):  # [{phase: (wall, main, other, serial, busy)}] per step
    out, cur = [], None
    for line in open(path):
        if line.startswith("# training step"):
            cur = {}; out.append(cur)
        elif cur is not None and line.strip() and not line.startswith("#") and not line.startswith("phase"):
            f = line.split()
            if f[0] == "total" or len(f) != 7: continue
            try:
                cur[f[0]] = tuple(map(float, f[2:7]))
            except ValueError:  # another line on stderr (the test evaluation's progress)
                pass
    return out
s1, s2 = steps(sys.argv[1]), steps(sys.argv[2])
def med(ss, key):  # median over the steps after the first of the summed column
    return statistics.median(sum(v[key] for v in s.values()) for s in ss[1:])
work = lambda ss: statistics.median(sum(v[1] + v[2] for v in s.values()) for s in ss[1:])
w1, w2 = work(s1), work(s2)
ser2, busy2 = med(s2, 3), med(s2, 4)
print(f"-t 1: work {w1:.0f} ms/step (CPU)")
print(f"-t 2: work {w2:.0f} ms/step (CPU, {w2 / w1:.3f}x of -t 1), serial {ser2:.0f} ms, "
      f"s = {ser2 / w2:.3f}, busy {busy2:.0f} ms")
print(f"projected -t 2 / -t 1 (steps after the first, quiet machine) = work1 / busy2 = {w1 / busy2:.2f}; "
      f"from the -t 2 run alone (its own work, no run-to-run load change) work2 / busy2 = {w2 / busy2:.2f}")
phases = sorted(s2[1].keys(), key=lambda k: -statistics.median(s[k][3] for s in s2[1:] if k in s))
print("largest serial phases at -t 2 (median ms/step): " + ", ".join(
    f"{k} {statistics.median(s[k][3] for s in s2[1:] if k in s):.0f}" for k in phases[:8]))
first1 = sum(v[1] + v[2] for v in s1[0].values()); first2 = sum(v[4] for v in s2[0].values())
fw2 = sum(v[1] + v[2] for v in s2[0].values())
print(f"first step: work -t 1 {first1:.0f} ms, busy -t 2 {first2:.0f} ms; projected -t 2 / -t 1 over "
      f"{len(s1)} steps = {(first1 + (len(s1) - 1) * w1) / (first2 + (len(s2) - 1) * busy2):.2f}, over "
      f"4 steps (bench_threads.sh's tokens/s) = {(first1 + 3 * w1) / (first2 + 3 * busy2):.2f}; from the "
      f"-t 2 run alone {(fw2 + 3 * w2) / (first2 + 3 * busy2):.2f}")
PY
