#!/usr/bin/env python3
"""Fails when a source folder includes a higher layer (docs/design.md, "Layering").

Layers, lowest first; a folder may include its own folder and strictly lower ranks only:
  0 core
  1 io, kernels        (same rank: must not include each other)
  2 data, ssm
  3 nn
  4 models
  5 generate
  6 train
  7 api
The public headers include/hippo/* may be included by src/api, apps, each other, and by the
internal header of a public type (core/error.h takes hippo::Error from hippo/error.hpp,
data/tokenizer.h the Tokenizer interface from hippo/tokenizer.hpp: one type each).
apps/ may include only the public headers `hippo/...` (and its own files). apps violations that
exist today are listed in scripts/check_layers_apps_allow.txt; the list may only shrink: an
include not on it fails, and so does an entry that is no longer needed (delete the line).

Usage: check_layers.py [--root DIR]   exit 0 when clean, 1 with one line per violation.
"""
import argparse
import os
import re
import sys

RANK = {"core": 0, "io": 1, "kernels": 1, "data": 2, "ssm": 2, "nn": 3, "models": 4,
        "generate": 5, "train": 6, "api": 7}
PUBLIC = "hippo"  # include/hippo/...
PUBLIC_USERS_IN_SRC = {"api"}
# Public types the library's own code is built on: the internal header includes the public one.
PUBLIC_EXCEPTIONS = {("src/core/error.h", "hippo/error.hpp"),
                     ("src/data/tokenizer.h", "hippo/tokenizer.hpp")}
OUTSIDE_LIBRARY = {"apps", "tests", "bench", "fuzz", "examples"}
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".c")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
ALLOW_FILE = "scripts/check_layers_apps_allow.txt"


def sources(root, top):
    base = os.path.join(root, top)
    for dirpath, _, files in os.walk(base):
        for f in sorted(files):
            if f.endswith(SOURCE_EXT):
                path = os.path.join(dirpath, f)
                yield os.path.relpath(path, root).replace(os.sep, "/")


def includes(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                yield n, m.group(1)


def target_layer(inc):
    """The layer an include names: a src folder, PUBLIC, or None (system or same-folder file)."""
    first = inc.split("/", 1)[0]
    if "/" in inc and (first in RANK or first == PUBLIC):
        return first
    return None


def check_src(root):
    bad = []
    for rel in sources(root, "src"):
        folder = rel.split("/")[1]
        if folder not in RANK:
            bad.append(f"{rel}: folder '{folder}' has no layer (add it to RANK in {__file__})")
            continue
        for n, inc in includes(root, rel):
            if inc.split("/", 1)[0] in OUTSIDE_LIBRARY:
                bad.append(f"{rel}:{n}: the library includes {inc} from outside src/")
                continue
            to = target_layer(inc)
            if to is None or to == folder:
                continue
            if to == PUBLIC:
                if folder in PUBLIC_USERS_IN_SRC or (rel, inc) in PUBLIC_EXCEPTIONS:
                    continue
                bad.append(f"{rel}:{n}: includes public header {inc}; only src/api may")
            elif RANK[to] >= RANK[folder]:
                bad.append(f"{rel}:{n}: {folder} (rank {RANK[folder]}) includes {inc} "
                           f"({to}, rank {RANK[to]}); move what is shared to a lower folder")
    for rel in sources(root, "include"):
        for n, inc in includes(root, rel):
            to = target_layer(inc)
            if to is not None and to != PUBLIC:
                bad.append(f"{rel}:{n}: public header includes internal {inc}")
    return bad


def check_apps(root):
    allow = set()
    allow_path = os.path.join(root, ALLOW_FILE)
    if os.path.exists(allow_path):
        with open(allow_path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    allow.add(tuple(line.split()))
    bad, seen = [], set()
    for rel in sources(root, "apps"):
        for n, inc in includes(root, rel):
            to = target_layer(inc)
            if to is None or to == PUBLIC:
                continue
            if (rel, inc) in allow:
                seen.add((rel, inc))
                continue
            bad.append(f"{rel}:{n}: apps may include only hippo/... public headers, not {inc}")
    for entry in sorted(allow - seen):
        bad.append(f"{ALLOW_FILE}: '{' '.join(entry)}' is no longer included; delete the line")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    bad = check_src(root) + check_apps(root)
    for b in bad:
        print(b)
    if bad:
        print(f"check_layers: {len(bad)} violation(s)", file=sys.stderr)
        return 1
    print("check_layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
