#!/usr/bin/env bash
# The main job on built-in defaults: set up, get the Brown corpus, train a small hybrid
# H3-attention model for a few minutes (progress on stderr), report its test perplexity and
# bits per byte, and generate a paragraph from a prompt. Extra arguments go to `hippo train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/get_brown.sh
# A fresh run folder each time: hippo train never overwrites a finished run (docs/reliability.md).
out=runs/main
for ((i = 2; ; ++i)); do [[ -e $out ]] || break; out=runs/main.$i; done
echo "run folder: $out"
build/hippo train -o "$out" "$@"
echo
echo "--- generated from the prompt \"The jury said\" ---"
# One thread: per-token work of a model this small is too little to share between threads.
build/hippo generate -m "$out/model.safetensors" -p "The jury said" -n 400 --temp 0.8 --top-k 40 -s 1 -t 1
echo
