#!/usr/bin/env bash
# Linker for the static release build (e2e/kind/lib.sh static_build): `cc`
# with lld. For the proxy binary it links twice: once to learn the final
# symbol names, then with those listed in proxy/link/order.txt placed first
# in .text: start-up, then idle, then the request path hottest first (see
# profile.sh). What an idle proxy runs then sits on one contiguous block
# instead of being spread over 6 MB of code, so far fewer pages become
# resident, and the hot path shares cache lines and TLB entries.
#
# order.txt holds the mangled names (without LTO's `.llvm.<n>` suffix) that
# `make link-order` saw run. After a dependency or compiler update changes
# a name's `17h<hash>E`, its path still matches (all instances of it, so
# the placement degrades gently until the list is regenerated). A name
# that matches nothing is ignored; a function missing from the list is
# only placed later, never dropped.
#
# Every static binary gets RELR relocations (`--pack-dyn-relocs=relr`,
# applied by glibc ≥ 2.36's static-pie start-up): a position-independent
# binary keeps ASLR, but its ~20,000 relative relocations take 5 KB instead
# of 460 KB, all of which start-up reads and so keeps resident.
#
# Only static links get any of this. The host is the same triple, so cargo
# also links build scripts and proc-macros with this linker: those are
# dynamic, and glibc refuses a dynamic object with DT_RELR unless it also
# carries the GLIBC_ABI_DT_RELR version dependency ("DT_RELR without
# GLIBC_ABI_DT_RELR dependency"), so they are linked exactly as by default.
set -euo pipefail
lld=(-fuse-ld=lld -Wl,--pack-dyn-relocs=relr)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=""
prev=""
static=0
for a in "$@"; do
  [ "$prev" = "-o" ] && out="$a"
  case "$a" in -static-pie|-static) static=1 ;; esac
  prev="$a"
done
[ "$static" = 1 ] || exec cc "$@"
case "$(basename "$out")" in
  meshlet_proxy-*|meshlet-proxy) ;;
  *) exec cc "${lld[@]}" "$@" ;;
esac
# The first link keeps its symbol table (rustc asks the linker to strip).
args=()
for a in "$@"; do
  case "$a" in -s|-Wl,-s|-Wl,--strip-all|-Wl,-S|-Wl,--strip-debug) ;; *) args+=("$a") ;; esac
done
cc "${lld[@]}" "${args[@]}"
# Kept for `make link-order`, which profiles it (it has the names).
cp "$out" "$out.symbols"
list="$out.order"
# The symbols of the first link that order.txt lists, in its order: by
# exact name, or (for a path the build does not have under its listed hash,
# e.g. after a dependency update) every symbol with that hash-free path.
nm --defined-only "$out" | awk '{print $3}' > "$list.all"
sed -E 's/\.llvm\.[0-9]+$//' "$list.all" > "$list.names"
sed -E 's/17h[0-9a-f]{16}E$//' "$list.names" | paste -d' ' - "$list.names" "$list.all" > "$list.keyed"
grep -v '^#' "$here/order.txt" | sed -E 's/17h[0-9a-f]{16}E$//' | paste -d' ' - <(grep -v '^#' "$here/order.txt") > "$list.want"
# Files: wanted (key name), then the symbols (key name original) twice.
awk '
  FNR == 1 { file++ }
  file == 1 { if (!($2 in exact)) exact[$2] = FNR; if (!($1 in bykey)) bykey[$1] = FNR; next }
  file == 2 { if ($2 in exact) hit[$1] = 1; next }
  ($2 in exact) { print exact[$2], $3; next }
  ($1 in bykey) && !($1 in hit) { print bykey[$1], $3 }
' "$list.want" "$list.keyed" "$list.keyed" | sort -n -s -k1,1 | cut -d' ' -f2 | awk '!seen[$0]++' > "$list"
rm -f "$list.all" "$list.names" "$list.keyed" "$list.want"
cc "${lld[@]}" "$@" -Wl,--symbol-ordering-file="$list" -Wl,--no-warn-symbol-ordering
rm -f "$list"
