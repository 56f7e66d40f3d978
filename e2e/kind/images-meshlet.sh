#!/usr/bin/env bash
# images-meshlet.sh (make images): Meshlet's container images, built with no
# registry and no Dockerfile base image, tagged $MESHLET_IMAGE_TAG (dev):
#   meshlet/operator     FROM scratch: static meshlet-operator, USER 65532
#   meshlet/webhook      FROM scratch: static meshlet-webhook,  USER 65532
#   meshlet/proxy        FROM scratch: static meshlet-proxy,    USER 2102
#                        (contract::ports::PROXY_UID: the redirect skips it)
#   meshlet/proxy-init   static meshlet-proxy (`init`) + Debian bookworm's
#                        iptables (nft backend): the binary, the shared libs
#                        ldd names and the few match/target extensions the
#                        rules use. Runs as root (the webhook's init
#                        container asks for uid 0 with NET_ADMIN/NET_RAW only).
#   meshlet/testserver   FROM scratch: the e2e test server/client
# Each image carries the label dev.meshlet.inputs (hash of what went in);
# unchanged inputs leave the image alone, so a warm run is the cargo no-op
# plus a few `docker image inspect`s.
source "$(dirname "$0")/lib.sh"
TAG="${MESHLET_IMAGE_TAG:-dev}"

"$KIND_DIR/docker-engine.sh" || exit 1

log "Static release build: ${STATIC_BINS[*]}"
t0=$SECONDS
static_build
info "[cargo] $((SECONDS - t0)) s"

# Debian's iptables comes from the same cached bookworm rootfs kube-proxy's
# image uses (debootstrap once, then cached by package list).
iptables_rootfs=$("$KIND_DIR/rootfs.sh" kube-proxy "${KUBE_PROXY_PACKAGES[@]}") || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Users of the UIDs the images run as (image_skeleton).
IMAGE_USERS=(meshlet-proxy:2102 nonroot:65532)

# iptables_payload ROOT: xtables-nft-multi as /usr/sbin/iptables, its
# libraries (from ldd inside the rootfs) and the extensions the redirect
# rules load (tcp, multiport, owner, REDIRECT, standard targets).
iptables_payload() {
  local root="$1" src="$work/debian" lib
  mkdir -p "$src"
  tar -C "$src" -xf "$iptables_rootfs" || fail "extracting $iptables_rootfs" "nothing to clean up"
  [[ -x "$src/usr/sbin/xtables-nft-multi" ]] || fail "no xtables-nft-multi in $iptables_rootfs" "rm -rf $MESHLET_CACHE/kind/rootfs"
  mkdir -p "$root"/usr/{sbin,lib/x86_64-linux-gnu/xtables} "$root/etc"
  ln -s usr/sbin "$root/sbin"
  cp "$src/usr/sbin/xtables-nft-multi" "$root/usr/sbin/"
  local link
  for link in iptables iptables-nft; do ln -s xtables-nft-multi "$root/usr/sbin/$link"; done
  local exts=()
  for lib in libxt_standard libxt_tcp libxt_udp libxt_multiport libxt_owner libxt_REDIRECT \
    libxt_RETURN libipt_REDIRECT; do
    [[ -f "$src/usr/lib/x86_64-linux-gnu/xtables/$lib.so" ]] && exts+=("/usr/lib/x86_64-linux-gnu/xtables/$lib.so")
  done
  ((${#exts[@]} >= 4)) || fail "iptables extensions missing in $iptables_rootfs (found: ${exts[*]})" "nothing to clean up"
  copy_libs "$src" "$root" /usr/sbin/xtables-nft-multi "${exts[@]}"
  for lib in "${exts[@]}"; do copy_real "$src" "$root" "$lib"; done
  cp "$src/etc/protocols" "$root/etc/" 2>/dev/null || true
}

# image NAME KEY ROOT-BUILDER USER ENTRYPOINT CMD: build (or keep) meshlet/NAME:TAG.
image() { build_image "meshlet/$1:$TAG" "${@:2}"; }

put_bin() { cp "$STATIC_BIN_DIR/$2" "$1/$2"; }
operator_root() { put_bin "$1" meshlet-operator; }
webhook_root() { put_bin "$1" meshlet-webhook; }
proxy_root() { put_bin "$1" meshlet-proxy; }
testserver_root() { put_bin "$1" meshlet-testserver; }
proxy_init_root() {
  put_bin "$1" meshlet-proxy
  iptables_payload "$1"
}

script_sum=$(cat "$KIND_DIR/images-meshlet.sh" "$KIND_DIR/lib.sh" | sha256sum | cut -c1-16)
key_of() { # key_of BINARY [EXTRA...]
  { echo "$script_sum"; sha256sum "$STATIC_BIN_DIR/$1" | cut -d' ' -f1; shift; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

log "Images (tag $TAG)"
image operator "$(key_of meshlet-operator)" operator_root 65532 '["/meshlet-operator"]' '[]'
image webhook "$(key_of meshlet-webhook)" webhook_root 65532 '["/meshlet-webhook"]' '[]'
image proxy "$(key_of meshlet-proxy)" proxy_root 2102 '["/meshlet-proxy"]' '["run"]'
image proxy-init "$(key_of meshlet-proxy "$(basename "$iptables_rootfs")")" proxy_init_root 0 \
  '["/meshlet-proxy"]' '["init"]'
image testserver "$(key_of meshlet-testserver)" testserver_root 65532 '["/meshlet-testserver"]' '["serve"]'
