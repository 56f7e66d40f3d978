#!/usr/bin/env bash
# flagger.sh : what `make e2e-flagger` needs in the kind cluster besides
# Meshlet, built with no registry and loaded with `kind load`:
#   meshlet-e2e/flagger:$FLAGGER_VERSION   FROM scratch: Flagger built from
#       its Go module (CGO_ENABLED=0, static), USER 10001 as upstream's image
#   meshlet-e2e/prometheus:<upstream ver>  FROM scratch: Debian bookworm's
#       `prometheus` package binary (apt-get download, not installed) plus
#       the glibc it links against, taken from the cached bookworm rootfs
#       (rootfs.sh, the same one the kube-proxy and proxy-init images use)
# then applies Flagger's CRDs and its ClusterRole from the module's
# artifacts/flagger/ (the Deployment and its bindings are the scenario's:
# e2e/tests/flagger.rs). Builds are cached under $MESHLET_CACHE/flagger by
# version; images carry the label dev.meshlet.inputs, so a warm run is a
# few `docker image inspect`s, a `kind load` that skips present images and
# an idempotent `kubectl apply`.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$KUBECONFIG_PATH}"
export PATH="$K8S_BIN_DIR:$PATH"

FLAGGER_VERSION="${FLAGGER_VERSION:-v1.36.1}"
FLAGGER_MODULE=github.com/fluxcd/flagger
FLAGGER_IMAGE="meshlet-e2e/flagger:$FLAGGER_VERSION"
CACHE="$MESHLET_CACHE/flagger"
mkdir -p "$CACHE"

"$KIND_DIR/docker-engine.sh" || exit 1

# --- Flagger from its Go module -------------------------------------------
flagger_dir="$CACHE/$FLAGGER_VERSION"
flagger_bin="$flagger_dir/flagger"
if [[ ! -x "$flagger_bin" ]]; then
  log "Building Flagger $FLAGGER_VERSION from the Go module $FLAGGER_MODULE (static)"
  t0=$SECONDS
  mkdir -p "$flagger_dir"
  # `go install module@version` builds it as its own main module with its
  # own go.sum; an empty GOBIN keeps nothing else around. REVISION is what
  # Flagger's -version prints and logs at start.
  (cd "$flagger_dir" && CGO_ENABLED=0 GOBIN="$flagger_dir" go install -trimpath \
    -ldflags "-s -w -X $FLAGGER_MODULE/pkg/version.REVISION=$FLAGGER_VERSION" \
    "$FLAGGER_MODULE/cmd/flagger@$FLAGGER_VERSION") ||
    fail "go install $FLAGGER_MODULE/cmd/flagger@$FLAGGER_VERSION (a newer Go? export GOTOOLCHAIN=go1.27.3)" \
      "rm -rf $flagger_dir"
  info "[flagger-build] $((SECONDS - t0)) s"
fi
readelf -d "$flagger_bin" | grep -q NEEDED && fail "$flagger_bin is dynamically linked" "rm -rf $flagger_dir"
flagger_src=$(go env GOMODCACHE)/$FLAGGER_MODULE@$FLAGGER_VERSION
if [[ ! -f "$flagger_src/artifacts/flagger/crd.yaml" ]]; then
  (cd "$flagger_dir" && go mod download "$FLAGGER_MODULE@$FLAGGER_VERSION") ||
    fail "go mod download $FLAGGER_MODULE@$FLAGGER_VERSION" "nothing to clean up"
fi

# --- Prometheus from Debian's package -------------------------------------
# The .deb is fetched, never installed: only /usr/bin/prometheus is used.
prom_deb_version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
if [[ -z "$prom_deb_version" || "$prom_deb_version" == "(none)" ]]; then
  apt-get update -qq || fail "apt-get update" "nothing to clean up"
  prom_deb_version=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
fi
[[ -n "$prom_deb_version" && "$prom_deb_version" != "(none)" ]] || fail "no Debian package prometheus" "nothing to clean up"
# 2.42.0+ds-5+deb12u1 -> image tag 2.42.0
PROMETHEUS_IMAGE="meshlet-e2e/prometheus:${prom_deb_version%%+*}"
prom_dir="$CACHE/prometheus-$prom_deb_version"
if [[ ! -x "$prom_dir/usr/bin/prometheus" ]]; then
  log "Fetching Debian's prometheus $prom_deb_version (apt-get download)"
  tmp=$(mktemp -d "$CACHE/prometheus.XXXX")
  (cd "$tmp" && apt-get download -q "prometheus=$prom_deb_version" >/dev/null 2>&1) ||
    fail "apt-get download prometheus=$prom_deb_version" "rm -rf $tmp"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" || fail "dpkg-deb -x prometheus" "rm -rf $tmp"
  rm -rf "$prom_dir" && mv "$tmp/x" "$prom_dir" && rm -rf "$tmp"
fi

# --- images ---------------------------------------------------------------
# The bookworm rootfs supplies glibc for Debian's (dynamically linked)
# prometheus: the same cached tarball images-meshlet.sh takes iptables from.
base_rootfs=$("$KIND_DIR/rootfs.sh" kube-proxy "${KUBE_PROXY_PACKAGES[@]}") || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Users of the UIDs the images run as (image_skeleton): Prometheus runs as
# nobody, Flagger as 10001.
IMAGE_USERS=(nobody:65534 flagger:10001)

flagger_root() {
  mkdir -p "$1/bin"
  cp "$flagger_bin" "$1/bin/flagger"
}

# prometheus_root ROOT: the binary, the libraries its ELF loader resolves
# inside the bookworm rootfs (ld.so --list in a chroot), and a writable
# /prometheus for the TSDB.
prometheus_root() {
  local root="$1" src="$work/debian"
  mkdir -p "$src" "$root"/{bin,prometheus,etc/prometheus}
  tar -C "$src" -xf "$base_rootfs" || fail "extracting $base_rootfs" "nothing to clean up"
  cp "$prom_dir/usr/bin/prometheus" "$src/prometheus"
  cp "$prom_dir/usr/bin/prometheus" "$root/bin/prometheus"
  copy_libs "$src" "$root" /prometheus
  chown 65534:65534 "$root/prometheus"
}

script_sum=$(cat "$KIND_DIR/flagger.sh" "$KIND_DIR/lib.sh" | sha256sum | cut -c1-16)

log "Images $FLAGGER_IMAGE and $PROMETHEUS_IMAGE"
build_image "$FLAGGER_IMAGE" "$( (echo "$script_sum" && sha256sum "$flagger_bin") | sha256sum | cut -c1-16)" \
  flagger_root 10001 '["/bin/flagger"]' '[]'
build_image "$PROMETHEUS_IMAGE" "$( (echo "$script_sum $prom_deb_version $(basename "$base_rootfs")") | sha256sum | cut -c1-16)" \
  prometheus_root 65534 '["/bin/prometheus"]' '[]'

kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || fail "no kind cluster $CLUSTER_NAME: run make kind-up" "nothing to clean up"
log "Loading them into kind cluster $CLUSTER_NAME"
kind load docker-image --name "$CLUSTER_NAME" "$FLAGGER_IMAGE" "$PROMETHEUS_IMAGE" >/dev/null ||
  fail "kind load docker-image" "nothing to clean up"

log "Flagger's CRDs and ClusterRole (artifacts/flagger of $FLAGGER_MODULE@$FLAGGER_VERSION)"
kubectl apply -f "$flagger_src/artifacts/flagger/crd.yaml" >/dev/null || fail "kubectl apply Flagger's CRDs" \
  "kubectl delete -f $flagger_src/artifacts/flagger/crd.yaml"
# Only the ClusterRole of account.yaml: the scenario binds it to its own
# ServiceAccount in its namespace (a RoleBinding; Flagger runs -namespace).
awk 'BEGIN{RS="\n---\n"; ORS="\n---\n"} /\nkind: ClusterRole\n/' "$flagger_src/artifacts/flagger/account.yaml" |
  kubectl apply -f - >/dev/null || fail "kubectl apply Flagger's ClusterRole" "kubectl delete clusterrole flagger"
kubectl wait --for=condition=Established --timeout=60s crd/canaries.flagger.app crd/metrictemplates.flagger.app \
  crd/alertproviders.flagger.app >/dev/null || fail "Flagger's CRDs not Established" "nothing to clean up"
# For the scenario (cargo test reads them; defaults match).
printf 'FLAGGER_IMAGE=%s\nPROMETHEUS_IMAGE=%s\n' "$FLAGGER_IMAGE" "$PROMETHEUS_IMAGE" >"$CACHE/images.env"
log "Flagger $FLAGGER_VERSION and Prometheus $prom_deb_version ready for e2e/tests/flagger.rs"
