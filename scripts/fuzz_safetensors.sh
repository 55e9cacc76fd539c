#!/usr/bin/env bash
# The safetensors fuzz target: kept for its old name, now scripts/fuzz.sh safetensors.
#   scripts/fuzz_safetensors.sh [SECONDS] [extra libFuzzer flags...]
exec "$(dirname "$0")/fuzz.sh" safetensors "$@"
