# shellcheck shell=bash disable=SC2034 # settings used by the scripts that source this
# Shared settings and helpers for the kind scripts (sourced, not run).
# Every step logs what it does; `fail` says what failed and how to clean up.

set -euo pipefail

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KIND_DIR/../.." && pwd)"
export MESHLET_CACHE="${MESHLET_CACHE:-$REPO_ROOT/.cache}"

# Pinned versions. kind v0.30.0 is the last release whose CI still covers
# cgroup v1 hosts (v0.31 moved to Kubernetes 1.35, which refuses cgroup v1
# by default) and it knows Kubernetes 1.34 node images.
KIND_VERSION="${KIND_VERSION:-v0.30.0}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
# The stock node image used on machines that can pull it (kind v0.30.0's
# default image, pinned by digest).
KIND_STOCK_IMAGE="${KIND_STOCK_IMAGE:-kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a}"

CLUSTER_NAME="${CLUSTER_NAME:-meshlet}"
NODE_IMAGE="meshlet/kind-node:${K8S_VERSION}"
KIND_NETWORK="kind"
# Fixed subnet so the isolation rule and docs can name it.
KIND_SUBNET="${KIND_SUBNET:-172.30.0.0/16}"

# Debian packages of the two debootstrap'ed rootfs (rootfs.sh).
NODE_PACKAGES=(systemd systemd-sysv dbus containerd runc containernetworking-plugins iptables nftables
  conntrack ethtool socat mount util-linux iproute2 kmod procps ca-certificates jq bash libseccomp2 ebtables)
KUBE_PROXY_PACKAGES=(iptables nftables conntrack)

STATE_DIR="$MESHLET_CACHE/kind"
BIN_DIR="$MESHLET_CACHE/bin"
K8S_BIN_DIR="$MESHLET_CACHE/k8s/$K8S_VERSION/bin"
K8S_VERSIONS_ENV="$MESHLET_CACHE/k8s/$K8S_VERSION/versions.env"
export KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
mkdir -p "$STATE_DIR" "$BIN_DIR"

# Go builds share the cache the Kubernetes build uses.
export GOMODCACHE="${GOMODCACHE:-$MESHLET_CACHE/go/mod}"
export GOCACHE="${GOCACHE:-$MESHLET_CACHE/go/build}"
export GOFLAGS="${GOFLAGS:--modcacherw -buildvcs=false}"
export PATH="$BIN_DIR:/usr/local/go/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
# fail MESSAGE [CLEANUP-HINT]
fail() {
  printf '\033[31mFAILED: %s\033[0m\n' "$1" >&2
  printf '    to clean up: %s\n' "${2:-make kind-down}" >&2
  exit 1
}
# now_s: seconds since the epoch, for step timings.
now_s() { date +%s; }
# record NAME SECONDS: append a step time to timings.log (the README's table).
record() { printf '%s %s\n' "$1" "$2" >>"$STATE_DIR/timings.log"; }
# timed NAME CMD...: run a step and print how long it took.
timed() {
  local name="$1" t0 rc
  shift
  t0=$(now_s)
  "$@" && rc=0 || rc=$?
  info "[$name] $(($(now_s) - t0)) s"
  record "$name" "$(($(now_s) - t0))"
  return "$rc"
}

# Static release builds for FROM-scratch images (glibc static; the musl
# target is not installed on these machines). One cargo invocation for
# every image's binary, always with the same package selection
# (`--workspace`), so feature resolution never differs between callers and
# nothing in target/static is compiled twice.
STATIC_TARGET_DIR="$REPO_ROOT/target/static"
STATIC_BIN_DIR="$STATIC_TARGET_DIR/x86_64-unknown-linux-gnu/release"
# meshlet-loadgen is not in an image: `make bench` drives the shipped proxy
# binary with it, built by the same invocation.
STATIC_BINS=(meshlet-operator meshlet-webhook meshlet-proxy meshlet-testserver meshlet-loadgen)
static_build() {
  local args=() b
  for b in "${STATIC_BINS[@]}"; do args+=(--bin "$b"); done
  # MESHLET_SRC: build another checkout of the workspace (e.g. a snapshot of
  # a commit) into the same target dir.
  # lld places the proxy's running functions together (proxy/link).
  command -v ld.lld >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lld; } ||
    fail "installing lld (the static build's linker)" "nothing to clean up"
  (cd "${MESHLET_SRC:-$REPO_ROOT}" && RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$REPO_ROOT/proxy/link/ordered-link.sh" cargo build --release -q --workspace \
    "${args[@]}" --target x86_64-unknown-linux-gnu --target-dir "$STATIC_TARGET_DIR") \
    || fail "static cargo build of ${STATIC_BINS[*]}" "nothing to clean up"
  for b in "${STATIC_BINS[@]}"; do
    if readelf -d "$STATIC_BIN_DIR/$b" | grep -q NEEDED; then
      fail "$STATIC_BIN_DIR/$b is dynamically linked; it cannot run FROM scratch" "nothing to clean up"
    fi
  done
}

# --- FROM-scratch images (images-meshlet.sh, flagger.sh) -------------------
# Callers set `work` (a scratch directory) and IMAGE_USERS (NAME:UID...).

# image_skeleton ROOT: what every image has besides its payload: /tmp,
# name-service files (hosts from files then cluster DNS), the users of
# IMAGE_USERS.
image_skeleton() {
  local root="$1" u
  mkdir -p "$root"/{etc,tmp}
  chmod 1777 "$root/tmp"
  { echo 'root:x:0:0:root:/:/sbin/nologin'
    for u in "${IMAGE_USERS[@]}"; do echo "${u%%:*}:x:${u#*:}:${u#*:}::/:/sbin/nologin"; done; } >"$root/etc/passwd"
  { echo 'root:x:0:'
    for u in "${IMAGE_USERS[@]}"; do echo "${u%%:*}:x:${u#*:}:"; done; } >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# copy_real SRC ROOT PATH: PATH of the unpacked Debian rootfs SRC copied into
# ROOT at its real (symlink-resolved) path, plus PATH's own name pointing at
# it when that differs.
copy_real() {
  local src="$1" root="$2" path="$3" real dir
  real=$(chroot "$src" readlink -f "$path")
  dir=$(chroot "$src" readlink -f "$(dirname "$path")")
  mkdir -p "$root$(dirname "$real")"
  cp "$src$real" "$root$real"
  [[ "$real" == "$dir/$(basename "$path")" ]] || ln -sf "$real" "$root$dir/$(basename "$path")"
}

# copy_libs SRC ROOT FILE...: every library the FILEs (paths inside SRC)
# need, resolved by SRC's own loader in a chroot (ld.so --list, i.e. ldd),
# copied into ROOT with copy_real. ROOT gets Debian's merged /usr links.
copy_libs() {
  local src="$1" root="$2" needed lib f
  shift 2
  mkdir -p "$src/dev" "$root"/usr/{lib,lib64} && : >"$src/dev/null"
  [[ -e "$root/lib" ]] || ln -s usr/lib "$root/lib"
  [[ -e "$root/lib64" ]] || ln -s usr/lib64 "$root/lib64"
  needed=$(for f in "$@"; do chroot "$src" /usr/lib64/ld-linux-x86-64.so.2 --list "$f"; done |
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u) && [[ -n "$needed" ]] ||
    fail "resolving the libraries of $* in $src" "nothing to clean up"
  for lib in $needed; do copy_real "$src" "$root" "$lib"; done
}

# build_image NAME KEY BUILDER USER ENTRYPOINT CMD: NAME (with its tag) from
# a skeleton that BUILDER ROOT fills, kept as is while its input hash KEY
# (label dev.meshlet.inputs) is unchanged; the image it replaces is removed.
build_image() {
  local name="$1" key="$2" builder="$3" user="$4" entry="$5" cmd="$6" old root
  if [[ "$(docker image inspect "$name" --format '{{index .Config.Labels "dev.meshlet.inputs"}}' 2>/dev/null)" == "$key" ]]; then
    info "$name: up to date ($(docker image inspect "$name" --format '{{.Size}}' | numfmt --to=iec)B)"
    return
  fi
  root="$work/$(basename "${name%%:*}")"
  image_skeleton "$root"
  "$builder" "$root"
  old=$(docker image inspect "$name" --format '{{.Id}}' 2>/dev/null || true)
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "USER $user" --change "ENTRYPOINT $entry" --change "CMD $cmd" \
    --change "LABEL dev.meshlet.inputs=$key" --change "LABEL org.opencontainers.image.source=meshlet" \
    - "$name" >/dev/null || fail "docker import $name" "docker rmi $name"
  [[ -n "$old" && "$old" != "$(docker image inspect "$name" --format '{{.Id}}')" ]] && docker rmi "$old" >/dev/null 2>&1 || true
  info "$name: built ($(docker image inspect "$name" --format '{{.Size}}' | numfmt --to=iec)B)"
}
