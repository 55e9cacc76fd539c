#!/usr/bin/env bash
# The main job on built-in defaults: set up, get the Brown corpus, train a small hybrid
# H3-attention model for a few minutes (progress on stderr), report its test perplexity and
# bits per byte, and generate a paragraph from a prompt. Extra arguments go to `hippo train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/get_brown.sh
build/hippo train -o runs/main "$@"
echo
echo "--- generated from the prompt \"The jury said\" ---"
# One thread: per-token work of a model this small is too little to share between threads.
build/hippo generate -m runs/main/model.safetensors -p "The jury said" -n 400 --temp 0.8 --top-k 40 -s 1 -t 1
echo
