#!/usr/bin/env bash
# Builds one libFuzzer target (clang, -fsanitize=fuzzer,address,undefined) and runs it for
# SECONDS seconds (default 60) on a generated seed corpus.
#   scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags...]
# TARGET (fuzz/fuzz_TARGET.cpp):
#   safetensors  the safetensors parser (parse_safetensors)
#   config       model config files (ModelConfig::load)
#   state        generation state files (load_state into a tiny model)
#   checkpoint   training checkpoints (load_checkpoint into a tiny model + AdamW)
#   tokenizer    byte and GPT-2 encoding of any bytes, `tokenize --decode --jsonl` lines
#                (needs data/gpt2 or $HIPPO_GPT2_DIR)
#   serve_request  hippo serve's request parser/validator and text streaming (apps/serve/)
# Everything lives in build-fuzz/: the instrumented library (build-fuzz/lib, a CMake build of
# src/ with clang), the target binaries, corpus/TARGET (seeds are regenerated each run, found
# inputs kept) and artifacts/TARGET (crashes). A crash reproduces with
#   build-fuzz/fuzz_TARGET build-fuzz/artifacts/TARGET/crash-...
# Needs clang, libclang-rt-14-dev and libomp-dev (apt-get install clang libclang-rt-14-dev
# libomp-dev). Uses ccache when installed (CCACHE_DIR as set).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
src=fuzz/fuzz_$target.cpp
[[ -f $src ]] || { echo "fuzz.sh: no target '$target' (no $src)" >&2; exit 1; }
out=build-fuzz
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null ||
  { echo "fuzz.sh: $CXX not found (apt-get install clang libclang-rt-14-dev libomp-dev)" >&2; exit 1; }
mkdir -p "$out/corpus/$target" "$out/artifacts/$target" "$out/seeds/$target"
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
# -march=native as the project's own build, so that the same (AVX-512) code paths are fuzzed.
flags=(-std=c++20 -g -O1 -march=native -fno-omit-frame-pointer "${san[@]}")

if [[ $target == safetensors ]]; then
  # The parser alone: three files, no library build.
  bin=$out/fuzz_safetensors
  if [[ ! -x $bin || $src -nt $bin || src/io/safetensors.cpp -nt $bin || src/io/safetensors.h -nt $bin ]]; then
    "$CXX" "${flags[@]}" -fsanitize=fuzzer -Iinclude -Isrc -I. "$src" src/io/safetensors.cpp \
      src/core/tensor.cpp -o "$bin"
  fi
elif [[ $target == serve_request ]]; then
  # hippo serve's parser (apps/serve/) alone, no library build (the target has its own byte
  # tokenizer).
  bin=$out/fuzz_serve_request
  extra=(apps/serve/request.cpp apps/serve/chat_template.cpp apps/serve/text_stream.cpp apps/serve/utf8.cpp)
  newer=0
  for f in "$src" "${extra[@]}" apps/serve/*.h; do [[ -x $bin && $f -nt $bin ]] && newer=1; done
  if [[ ! -x $bin || $newer == 1 ]]; then
    "$CXX" "${flags[@]}" -fsanitize=fuzzer -Iinclude -Isrc -I. "$src" "${extra[@]}" -o "$bin"
  fi
else
  # The whole library, instrumented for the fuzzer's coverage (fuzzer-no-link) and sanitizers.
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$out/lib" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Fuzz \
    -DHIPPO_BUILD_TESTS=OFF -DHIPPO_BUILD_BENCH=OFF -DHIPPO_NATIVE=OFF "${launcher[@]}" \
    -DCMAKE_CXX_FLAGS_FUZZ="${flags[*]} -fsanitize=fuzzer-no-link" >/dev/null
  ninja -C "$out/lib" -j"${FUZZ_JOBS:-2}" libhippo.a  # (the name "hippo" is also the CLI)
  bin=$out/fuzz_$target
  if [[ ! -x $bin || $src -nt $bin || fuzz/fuzz_common.h -nt $bin || $out/lib/libhippo.a -nt $bin ]]; then
    "$CXX" "${flags[@]}" -fsanitize=fuzzer -fopenmp -Iinclude -Isrc -I. "$src" "$out/lib/libhippo.a" \
      -ldnnl -lfftw3f -o "$bin"
  fi
fi

# Seeds: well-formed inputs. The safetensors ones are written here; the other targets write
# theirs with the project's own writers (HIPPO_FUZZ_SEEDS, see fuzz/fuzz_common.h).
seeds=$out/seeds/$target
rm -f "$seeds"/seed_*
dict=()
if [[ $target == safetensors ]]; then
  seed() {  # seed NAME HEADER_JSON DATA_BYTES
    local f="$seeds/seed_$1" h="$2" n="$3"
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
else
  HIPPO_FUZZ_SEEDS=$seeds OMP_NUM_THREADS=1 "$bin" >/dev/null 2>&1 ||
    { echo "fuzz.sh: $bin could not write its seeds" >&2; exit 1; }
fi
# Dictionaries: the formats' keywords.
case $target in
  safetensors|state|checkpoint)
    words=('"dtype"' '"shape"' '"data_offsets"' '"__metadata__"' '"F32"' '"F16"' '"BF16"' '"F64"'
           '"I64"' '"format"' '"config"' '"config_hash"' '"weights_fingerprint"' '"position"'
           '"batch"' '"logits"' '"optim.step"' '"hippo-state-v1"' '"18446744073709551615"'
           '"1099511627776"' '"-1"' '"1e30"' '"{"' '"}"' '"["' '"]"' '":"' '","' '"\x22"') ;;
  config)
    words=('"vocab_size"' '"d_model"' '"n_layer"' '"d_state"' '"head_dim"' '"attn_heads"'
           '"rotary_dim"' '"learned_pos"' '"max_position"' '"dropout"' '"init_std"'
           '"discretization"' '"ssm_init"' '"layers"' '"mixer"' '"attn_layer_idx"' '"h3"'
           '"attention"' '"s4d"' '"h3_noshift"' '"h3_nodiag"' '"zoh"' '"bilinear"' '"inv"' '"lin"'
           '"true"' '"1e10"' '"4294967328"' '"-1"' '"0.5"' '"{"' '"}"' '"["' '"]"' '":"' '","') ;;
  serve_request)
    words=('"prompt"' '"messages"' '"max_tokens"' '"temperature"' '"top_p"' '"top_k"' '"seed"'
           '"stop"' '"n"' '"stream"' '"echo"' '"logprobs"' '"top_logprobs"' '"session_id"'
           '"role"' '"content"' '"tokens"' '"user"' '"system"' '"assistant"' '"type"' '"text"'
           '"null"' '"true"' '"1e300"' '"-1"' '"4294967296"' '"18446744073709551615"' '"{"' '"}"'
           '"["' '"]"' '":"' '","' '"\xc3\xa9"' '"\xf0\x9f"') ;;
  tokenizer)
    words=('"<|endoftext|>"' '"\x27s"' '"\x27ll"' '"\x0a"' '"["' '"]"' '","' '"50256"'
           '"4294967296"' '"\xc3\xa9"' '"\xf0\x9f\x98\x80"' '"\xe2\x80\xaf"') ;;
esac
printf '%s\n' "${words[@]}" > "$out/$target.dict"
dict=(-dict="$out/$target.dict")

echo "fuzzing $target for ${secs}s ..."
# One OpenMP thread: the targets are parsers, and libFuzzer wants one thread per process.
OMP_NUM_THREADS=1 "$bin" "$out/corpus/$target" "$seeds" "${dict[@]}" -max_total_time="$secs" \
  -artifact_prefix="$out/artifacts/$target/" -print_final_stats=1 -max_len=16384 \
  -rss_limit_mb=2048 -timeout=30 "$@"
