#!/usr/bin/env bash
# rootfs.sh NAME PACKAGE... : print the path of a cached tarball holding a
# Debian bookworm minbase rootfs (debootstrap, deb.debian.org) with PACKAGEs
# installed. Built once per (name, package list); later calls reuse it.
source "$(dirname "$0")/lib.sh"

name="$1"
shift
packages=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
key=$(printf 'bookworm minbase %s %s' "$MIRROR" "$packages" | sha256sum | cut -c1-12)
out="$STATE_DIR/rootfs/$name-$key.tar"
if [[ -s "$out" ]]; then
  info "rootfs $name: cached ($out)"
  echo "$out"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  log "Installing debootstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
    || fail "apt-get install debootstrap" "nothing to clean up"
}
mkdir -p "$STATE_DIR/rootfs"
work=$(mktemp -d "$STATE_DIR/rootfs/$name.XXXX")
trap 'rm -rf "$work"' EXIT
log "debootstrap --variant=minbase bookworm for $name (+ $packages)"
debootstrap --variant=minbase --include="$packages" bookworm "$work/root" "$MIRROR" \
  >"$work.log" 2>&1 || {
  tail -20 "$work.log" >&2
  fail "debootstrap of $name (log: $work.log)" "rm -rf $work*"
}
# Trim what no container needs: package caches, docs, man pages, locales.
rm -rf "$work/root"/var/cache/apt/*.bin "$work/root"/var/cache/apt/archives/*.deb \
  "$work/root"/var/lib/apt/lists/* "$work/root"/usr/share/{doc,man,info,locale}/* \
  "$work/root"/var/log/*.log
tar -C "$work/root" --numeric-owner -cf "$out.tmp" . || fail "tar of $name rootfs" "rm -f $out.tmp"
mv "$out.tmp" "$out"
rm -f "$work.log"
record "  debootstrap-$name" "$SECONDS"
info "rootfs $name: $(du -h "$out" | cut -f1) ($out)"
echo "$out"
