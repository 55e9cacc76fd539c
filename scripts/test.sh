#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (C++ and PyTorch reference).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
