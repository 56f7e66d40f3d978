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

# skeleton ROOT: what every image has besides its binary: /tmp, name-service
# files (hosts from files then cluster DNS), users for the UIDs we run as.
skeleton() {
  local root="$1"
  mkdir -p "$root"/{etc,tmp}
  chmod 1777 "$root/tmp"
  printf '%s\n' 'root:x:0:0:root:/:/sbin/nologin' 'meshlet-proxy:x:2102:2102::/:/sbin/nologin' \
    'nonroot:x:65532:65532::/:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'meshlet-proxy:x:2102:' 'nonroot:x:65532:' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# iptables_payload ROOT: xtables-nft-multi as /usr/sbin/iptables, its
# libraries (from ldd inside the rootfs) and the extensions the redirect
# rules load (tcp, multiport, owner, REDIRECT, standard targets).
iptables_payload() {
  local root="$1" src="$work/debian" lib
  mkdir -p "$src"
  tar -C "$src" -xf "$iptables_rootfs" || fail "extracting $iptables_rootfs" "nothing to clean up"
  [[ -x "$src/usr/sbin/xtables-nft-multi" ]] || fail "no xtables-nft-multi in $iptables_rootfs" "rm -rf $MESHLET_CACHE/kind/rootfs"
  mkdir -p "$root"/usr/{sbin,lib/x86_64-linux-gnu/xtables,lib64} "$root/etc"
  # merged /usr, as in Debian: the ELF interpreter is /lib64/ld-linux-x86-64.so.2
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
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
  # Every library the binary and those extensions need, resolved by the
  # rootfs's own loader (LD_TRACE_LOADED_OBJECTS, i.e. ldd, in a chroot).
  mkdir -p "$src/dev" && : >"$src/dev/null"
  local needed
  needed=$(for f in /usr/sbin/xtables-nft-multi "${exts[@]}"; do
    chroot "$src" /usr/lib64/ld-linux-x86-64.so.2 --list "$f"
  done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u) \
    || fail "ldd of iptables in the rootfs" "nothing to clean up"
  for lib in $needed "${exts[@]}"; do
    local real
    real=$(chroot "$src" readlink -f "$lib")
    mkdir -p "$root$(dirname "$real")"
    cp "$src$real" "$root$real"
    # the name the loader asks for, pointing at the real file
    [[ "$real" == "$(chroot "$src" readlink -f "$(dirname "$lib")")/$(basename "$lib")" ]] ||
      ln -sf "$real" "$root$(chroot "$src" readlink -f "$(dirname "$lib")")/$(basename "$lib")"
  done
  cp "$src/etc/protocols" "$root/etc/" 2>/dev/null || true
}

# image NAME KEY ROOT-BUILDER USER ENTRYPOINT CMD: build (or keep) NAME:TAG.
image() {
  local name="meshlet/$1:$TAG" key="$2" builder="$3" user="$4" entry="$5" cmd="$6" old
  if [[ "$(docker image inspect "$name" --format '{{index .Config.Labels "dev.meshlet.inputs"}}' 2>/dev/null)" == "$key" ]]; then
    info "$name: up to date ($(docker image inspect "$name" --format '{{.Size}}' | numfmt --to=iec)B)"
    return
  fi
  local root="$work/$1"
  skeleton "$root"
  "$builder" "$root"
  old=$(docker image inspect "$name" --format '{{.Id}}' 2>/dev/null || true)
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . | docker import \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "USER $user" --change "ENTRYPOINT $entry" --change "CMD $cmd" \
    --change "LABEL dev.meshlet.inputs=$key" --change "LABEL org.opencontainers.image.source=meshlet" \
    - "$name" >/dev/null || fail "docker import $name" "docker rmi $name"
  [[ -n "$old" && "$old" != "$(docker image inspect "$name" --format '{{.Id}}')" ]] && docker rmi "$old" >/dev/null 2>&1 || true
  info "$name: built ($(docker image inspect "$name" --format '{{.Size}}' | numfmt --to=iec)B)"
}

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
