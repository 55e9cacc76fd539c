#!/usr/bin/env bash
# Builds the libFuzzer target fuzz/fuzz_safetensors.cpp (clang, ASan + UBSan) and runs it for
# SECONDS seconds (default 60) on a small generated seed corpus.
#   scripts/fuzz_safetensors.sh [SECONDS] [extra libFuzzer flags...]
# Needs clang and libclang-rt-*-dev (apt-get install clang libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
out=build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz_safetensors.sh: $CXX not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

if [[ ! -x $out/fuzz_safetensors || fuzz/fuzz_safetensors.cpp -nt $out/fuzz_safetensors ||
      src/io/safetensors.cpp -nt $out/fuzz_safetensors || src/io/safetensors.h -nt $out/fuzz_safetensors ]]; then
  "$CXX" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Isrc fuzz/fuzz_safetensors.cpp src/io/safetensors.cpp src/core/tensor.cpp \
    -o "$out/fuzz_safetensors"
fi

# Seeds: well-formed files in every dtype, metadata, zero-sized and scalar tensors.
seed() {  # seed NAME HEADER_JSON DATA_BYTES
  local f="$out/corpus/seed_$1" h="$2" n="$3"
  printf '%016x' "${#h}" | sed 's/../& /g' | awk '{for(i=8;i>=1;i--) printf "\\x%s",$i}' |
    xargs -0 printf > "$f"
  printf '%s' "$h" >> "$f"
  head -c "$n" /dev/urandom >> "$f"
}
seed f32 '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}' 24
seed bf16 '{"__metadata__":{"format":"hippo","config":"{\"d_model\":8}"},"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}' 12
seed f16 '{"x":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"y":{"dtype":"F64","shape":[1,1],"data_offsets":[8,16]}}' 16
seed empty '{"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}}' 0
seed none '{}' 0

cat > "$out/safetensors.dict" <<'DICT'
"dtype"
"shape"
"data_offsets"
"__metadata__"
"F32"
"F16"
"BF16"
"F64"
"I64"
"{"
"}"
"["
"]"
":"
","
"\x22"
"18446744073709551615"
"1099511627776"
"-1"
"1e30"
DICT

echo "fuzzing parse_safetensors for ${secs}s ..."
"$out/fuzz_safetensors" "$out/corpus" -dict="$out/safetensors.dict" -max_total_time="$secs" \
  -artifact_prefix="$out/artifacts/" -print_final_stats=1 -max_len=4096 -rss_limit_mb=2048 "$@"
