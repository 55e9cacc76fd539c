#!/usr/bin/env bash
# The main job on built-in defaults: build, then train a small hybrid H3-attention model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/hippo train "$@"
