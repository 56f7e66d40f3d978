#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests and the kind node image need, from
# Go modules fetched through the Go module proxy (no container registry or
# release download is reachable here), plus a static `pause` from the C source
# in the k8s.io/kubernetes module.
#
# Output (other scripts rely on this layout):
#   $MESHLET_CACHE/k8s/<K8S_VERSION>/bin/{kube-apiserver,kube-controller-manager,
#       kube-scheduler,kubelet,kubeadm,kube-proxy,kubectl,etcd,etcdctl,coredns,pause}
#   $MESHLET_CACHE/k8s/<K8S_VERSION>/versions.env   (image tags kubeadm expects)
#
# Versions: Kubernetes is pinned once, in kubernetes/go.mod (`require
# k8s.io/kubernetes`); etcd/go.mod and coredns/go.mod pin the releases that
# kubeadm of that version deploys, and this script fails if they drift.
#
# Idempotent: each binary has a stamp holding a hash of everything that went
# into it (go.mod, go.sum, flags, compiler); a run with all stamps current
# only checks them. Go's module and build caches default to
# $MESHLET_CACHE/go/{mod,build} (override with GOMODCACHE/GOCACHE).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export MESHLET_CACHE="${MESHLET_CACHE:-$repo/.cache}"

step=""
started_at=$SECONDS
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "k8s-bins: FAILED during: ${step:-setup} (exit $rc)." >&2
    echo "k8s-bins: partial output is harmless; fix the cause and re-run \`make k8s-bins\`" \
      "(or delete $MESHLET_CACHE/k8s to start over)." >&2
  fi
}
trap on_exit EXIT

log() { echo "k8s-bins: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- toolchain -------------------------------------------------------------
step="finding the Go toolchain"
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 ||
  die "no \`go\` on PATH (need Go >= 1.24; Kubernetes 1.34 requires it)"
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
[[ "$go_minor" =~ ^[0-9]+$ && "$go_minor" -ge 24 ]] ||
  die "$(go env GOVERSION) is too old: Kubernetes 1.34 needs Go >= 1.24"

export GOMODCACHE="${GOMODCACHE:-$MESHLET_CACHE/go/mod}"
export GOCACHE="${GOCACHE:-$MESHLET_CACHE/go/build}"
# -modcacherw: the module cache stays deletable with plain `rm -rf`.
export GOFLAGS="-modcacherw -buildvcs=false"
# Never switch toolchains behind our back (that would be a download).
export GOTOOLCHAIN=local
# Static binaries: they also run in minimal container images on a kind node.
export CGO_ENABLED=0

# --- versions --------------------------------------------------------------
step="reading pinned versions from the go.mod files"
mod_version() { # <module dir> <module path>
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}
K8S_VERSION="$(mod_version "$here/kubernetes" k8s.io/kubernetes)"
[[ "$K8S_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] ||
  die "unexpected k8s.io/kubernetes version '$K8S_VERSION' in kubernetes/go.mod"
k8s_minor="${BASH_REMATCH[1]}"
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
# Every staging replace must match, or the binaries mix releases.
if stale="$(grep -E '^\s*k8s\.io/[a-z0-9-]+ => k8s\.io/' "$here/kubernetes/go.mod" |
  grep -v " $staging_version\$")"; then
  die "kubernetes/go.mod: these staging replaces are not at $staging_version:"$'\n'"$stale"
fi
ETCD_MODULE_VERSION="$(mod_version "$here/etcd" go.etcd.io/etcd/server/v3)"
COREDNS_MODULE_VERSION="$(mod_version "$here/coredns" github.com/coredns/coredns)"

out="$MESHLET_CACHE/k8s/$K8S_VERSION"
bin="$out/bin"
stamps="$out/stamps"
mkdir -p "$bin" "$stamps"
# One build at a time per output dir (`make test` and `make kind-up` may race).
step="waiting for another k8s-bins run to finish ($out/.lock)"
exec 9>"$out/.lock"
flock 9
log "Kubernetes $K8S_VERSION, etcd $ETCD_MODULE_VERSION, CoreDNS $COREDNS_MODULE_VERSION -> $bin"

# --- build helpers ---------------------------------------------------------
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# up_to_date <name> <input hash>: binary present and built from these inputs.
up_to_date() {
  [[ -x "$bin/$1" && -f "$stamps/$1" && "$(cat "$stamps/$1")" == "$2" ]]
}

# go_build <module dir> <binary name> <package> <ldflags>
go_build() {
  local dir="$1" name="$2" pkg="$3" ldflags="$4" inputs t0
  inputs="$( {
    cat "$dir/go.mod" "$dir/go.sum"
    echo "$pkg|$ldflags|$(go env GOVERSION)|$CGO_ENABLED|$GOFLAGS"
  } | sha256sum | cut -d' ' -f1)"
  if up_to_date "$name" "$inputs"; then
    log "$name: up to date"
    return
  fi
  step="building $name ($pkg)"
  log "$name: building..."
  t0=$SECONDS
  rm -f "$stamps/$name"
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv -f "$bin/$name.tmp" "$bin/$name"
  echo "$inputs" >"$stamps/$name"
  log "$name: built in $((SECONDS - t0)) s"
}

# --- Kubernetes --------------------------------------------------------------
step="resolving the k8s.io/kubernetes module"
k8s_info="$(cd "$here/kubernetes" && go list -m -json k8s.io/kubernetes)"
k8s_src="$(sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' <<<"$k8s_info")"
if [[ -z "$k8s_src" ]]; then
  (cd "$here/kubernetes" && go mod download k8s.io/kubernetes)
  k8s_info="$(cd "$here/kubernetes" && go list -m -json k8s.io/kubernetes)"
  k8s_src="$(sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' <<<"$k8s_info")"
fi
[[ -d "$k8s_src" ]] || die "could not locate the k8s.io/kubernetes $K8S_VERSION source"
# The release date of the module version: reproducible, unlike `date`.
k8s_date="$(sed -n 's/^\s*"Time": "\(.*\)",$/\1/p' <<<"$k8s_info")"
# No git commit reaches us through the proxy; the go.sum hash names the exact source.
k8s_sum="$(awk -v v="$K8S_VERSION" '$1 == "k8s.io/kubernetes" && $2 == v {print $3}' \
  "$here/kubernetes/go.sum")"

# What `--version` reports; kubeadm compares these against its own version.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION"
  k8s_ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitCommit=$k8s_sum -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=$k8s_date"
done

for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kubeadm kube-proxy kubectl; do
  go_build "$here/kubernetes" "$name" "k8s.io/kubernetes/cmd/$name" "$k8s_ldflags"
done

# --- image tags kubeadm expects ----------------------------------------------
step="asking kubeadm which images it expects"
images="$("$bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION")" ||
  die "\`kubeadm config images list --kubernetes-version $K8S_VERSION\` failed"
tag_of() { # <image name without registry>
  sed -n "s#^.*/$1:\(.*\)\$#\1#p" <<<"$images" | head -n1
}
ETCD_VERSION="$(tag_of etcd)"
COREDNS_VERSION="$(tag_of coredns)"
PAUSE_VERSION="$(tag_of pause)"
[[ -n "$ETCD_VERSION" && -n "$COREDNS_VERSION" && -n "$PAUSE_VERSION" ]] ||
  die "could not read etcd/coredns/pause tags from kubeadm's image list:"$'\n'"$images"
# Image tag "3.6.5-0" is etcd v3.6.5; CoreDNS tags are the release itself.
[[ "v${ETCD_VERSION%-*}" == "$ETCD_MODULE_VERSION" ]] ||
  die "kubeadm $K8S_VERSION expects etcd $ETCD_VERSION but etcd/go.mod pins $ETCD_MODULE_VERSION: update etcd/go.mod (go get go.etcd.io/etcd/server/v3@v${ETCD_VERSION%-*} go.etcd.io/etcd/etcdctl/v3@v${ETCD_VERSION%-*} && go mod tidy)"
[[ "$COREDNS_VERSION" == "$COREDNS_MODULE_VERSION" ]] ||
  die "kubeadm $K8S_VERSION expects CoreDNS $COREDNS_VERSION but coredns/go.mod pins $COREDNS_MODULE_VERSION: update coredns/go.mod"

# --- etcd ------------------------------------------------------------------
etcd_ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_MODULE_VERSION"
go_build "$here/etcd" etcd go.etcd.io/etcd/server/v3 "$etcd_ldflags"
go_build "$here/etcd" etcdctl go.etcd.io/etcd/etcdctl/v3 "$etcd_ldflags"

# --- CoreDNS ---------------------------------------------------------------
go_build "$here/coredns" coredns github.com/coredns/coredns \
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_MODULE_VERSION"

# --- pause -------------------------------------------------------------------
pause_src="$k8s_src/build/pause/linux/pause.c"
[[ -f "$pause_src" ]] || die "pause source missing: $pause_src"
step="installing a C compiler for pause"
if ! command -v gcc >/dev/null 2>&1 || [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a && ! -e /usr/lib/libc.a ]]; then
  log "installing gcc and libc6-dev (static libc) with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev >/dev/null; } ||
    die "could not install gcc/libc6-dev with apt-get"
fi
pause_inputs="$( {
  cat "$pause_src"
  echo "$PAUSE_VERSION"
  gcc --version | head -n1
} | sha256sum | cut -d' ' -f1)"
if up_to_date pause "$pause_inputs"; then
  log "pause: up to date"
else
  step="compiling pause ($pause_src)"
  rm -f "$stamps/pause"
  gcc -Os -static -Wall -Werror -DVERSION="v$PAUSE_VERSION-meshlet" -o "$bin/pause.tmp" "$pause_src"
  strip "$bin/pause.tmp"
  mv -f "$bin/pause.tmp" "$bin/pause"
  echo "$pause_inputs" >"$stamps/pause"
  log "pause: built"
fi

# --- check and record --------------------------------------------------------
step="checking the built binaries"
reported="$("$bin/kube-apiserver" --version)"
[[ "$reported" == "Kubernetes $K8S_VERSION" ]] ||
  die "kube-apiserver reports '$reported', expected 'Kubernetes $K8S_VERSION'"
# Not `etcd --version | grep -q`: grep exits early, etcd dies of SIGPIPE and
# pipefail turns a good binary into a failure.
grep -q "etcd Version: ${ETCD_MODULE_VERSION#v}" <<<"$("$bin/etcd" --version)" ||
  die "etcd --version does not report ${ETCD_MODULE_VERSION#v}"

step="writing versions.env"
cat >"$out/versions.env.tmp" <<EOF
# Written by e2e/k8s/build.sh. Image tags kubeadm $K8S_VERSION expects
# (\`kubeadm config images list --kubernetes-version $K8S_VERSION\`).
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
COREDNS_VERSION=$COREDNS_VERSION
PAUSE_VERSION=$PAUSE_VERSION
EOF
mv -f "$out/versions.env.tmp" "$out/versions.env"
log "done in $((SECONDS - started_at)) s: $bin"
