#!/usr/bin/env bash
# install.examples: installs a built hippo into a temporary prefix, builds examples/ out of tree
# against it (find_package(hippo), and the C example once more through pkg-config), trains a tiny
# model with the installed CLI and runs the three examples on it. Writes only under a temporary
# folder (removed at the end); any failure exits non-zero with the step that failed.
#   test_install.sh SOURCE_DIR BUILD_DIR CXX_COMPILER
set -euo pipefail

src=${1:?source dir}
build=${2:?build dir}
cxx=${3:?C++ compiler}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hippo-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
step() { echo "== $*"; }
die() { echo "test_install: $*" >&2; exit 1; }
# The C compiler that goes with the C++ one (g++-12 -> gcc-12, clang++ -> clang), else cc.
cc=$(dirname "$cxx")/$(basename "$cxx" | sed 's/g++/gcc/; s/clang++/clang/; s/c++/cc/')
[[ -x $cc ]] || cc=$(command -v cc)

step "install into $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" || { cat "$tmp/install.log"; die "cmake --install failed"; }
p=$tmp/prefix
libdir=$(dirname "$(find "$p" -name hippoConfig.cmake -path '*/cmake/hippo/*')")/../..
for f in include/hippo/hippo.hpp include/hippo/hippo.h include/hippo/error.hpp bin/hippo; do
  [[ -e $p/$f ]] || die "not installed: $f"
done
for f in cmake/hippo/hippoConfig.cmake cmake/hippo/hippoConfigVersion.cmake \
         cmake/hippo/hippoTargets.cmake pkgconfig/hippo.pc; do
  [[ -e $libdir/$f ]] || die "not installed: lib/$f"
done
ls "$libdir"/libhippo.* > /dev/null 2>&1 || die "no libhippo.a/.so installed"
# Only the public headers: nothing of src/ (core/, nn/, ...) may be installed.
extra=$(cd "$p/include" && find . -type f ! -path './hippo/*')
[[ -z $extra ]] || die "installed headers outside include/hippo: $extra"

step "build examples/ against the prefix (find_package)"
cmake -S "$src/examples" -B "$tmp/examples" -G Ninja -DCMAKE_PREFIX_PATH="$p" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" > "$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log"; die "configuring examples/ failed"; }
cmake --build "$tmp/examples" -- -j2 > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; die "building examples/ failed"; }
grep -i 'warning' "$tmp/build.log" && die "examples/ build has warnings"

step "build the C example through pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
if ls "$libdir"/libhippo.so > /dev/null 2>&1; then
  pc_libs=$(pkg-config --libs hippo)
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  pc_libs=$(pkg-config --static --libs hippo)  # libhippo.a: its dependencies too
fi
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -pedantic -Werror $(pkg-config --cflags hippo) \
  "$src/examples/c_api.c" -o "$tmp/c_api_pc" $pc_libs || die "pkg-config build of c_api.c failed"

step "train a tiny model with the installed CLI"
cd "$tmp"
for i in $(seq 1 200); do echo "the quick brown fox $i jumps over the lazy dog. it was the best of times."; done > text.txt
cat > cfg.json <<'JSON'
{"vocab_size": 257, "d_model": 32, "n_layer": 2, "d_state": 8, "attn_heads": 2, "layers": ["h3", "attention"]}
JSON
"$p/bin/hippo" train -c cfg.json -d text.txt --tokenizer byte -L 32 -b 2 -n 5 --warmup 1 -t 2 \
  --eval-every 0 --cache-dir "$tmp/cache" -o "$tmp/run" -q > train.log 2>&1 || { cat train.log; die "hippo train failed"; }
model=$tmp/run/model.safetensors
[[ -s $model ]] || die "no $model"

export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
step "examples/generate"
out=$("$tmp/examples/generate" "$model" "The quick" 24) || die "generate failed"
echo "$out"
[[ $out == "The quick"* ]] || die "generate: the text does not start with the prompt"
step "examples/batched_decode"
"$tmp/examples/batched_decode" "$model" 12 || die "batched_decode failed"
step "examples/c_api (CMake build)"
"$tmp/examples/c_api" "$model" "it was" 12 || die "c_api failed"
step "c_api (pkg-config build)"
"$tmp/c_api_pc" "$model" "the" 8 || die "c_api built with pkg-config failed"
echo "install.examples: ok"
