#!/usr/bin/env bash
# up.sh : bring up the kind cluster `meshlet` (make kind-up). Idempotent.
#  1. a Docker engine (docker-engine.sh);
#  2. kind and crictl from Go modules (tools.sh);
#  3. on a machine that can use the stock kind node image: plain kind;
#     otherwise the locally built node image (node/build.sh), an isolated
#     docker network (network.sh), kind create, and CoreDNS without upstream
#     forwarding.
# Every step prints its time; see e2e/kind/README.md for the why of each.
source "$(dirname "$0")/lib.sh"
T0=$(now_s)
: >"$STATE_DIR/timings.log"

kc() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }

cluster_healthy() {
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || return 1
  kind get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG_PATH.tmp" 2>/dev/null || return 1
  mv "$KUBECONFIG_PATH.tmp" "$KUBECONFIG_PATH"
  kc get --raw /readyz >/dev/null 2>&1 || return 1
  kc wait node --all --for=condition=Ready --timeout=5s >/dev/null 2>&1 || return 1
  kc -n kube-system wait pod --all --for=condition=Ready --timeout=5s >/dev/null 2>&1
}

# The stock path: an ordinary machine whose Docker can pull kind's image.
use_stock() {
  case "${MESHLET_KIND_STOCK:-auto}" in
  1 | true | yes) return 0 ;;
  0 | false | no) return 1 ;;
  esac
  docker image inspect "$KIND_STOCK_IMAGE" >/dev/null 2>&1 && return 0
  # A dockerd we started ourselves means one of the offline VMs: do not even
  # try to reach a registry from there.
  [[ -f "$STATE_DIR/dockerd.pid" ]] && return 1
  timeout 120 docker pull -q "$KIND_STOCK_IMAGE" >/dev/null 2>&1
}

timed docker-engine "$KIND_DIR/docker-engine.sh" || exit 1
timed kind-tools "$KIND_DIR/tools.sh" || exit 1
export PATH="$K8S_BIN_DIR:$PATH"

if cluster_healthy; then
  log "Cluster $CLUSTER_NAME exists and is healthy: nothing to do"
elif use_stock; then
  log "Using the stock kind node image $KIND_STOCK_IMAGE"
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" && kind delete cluster --name "$CLUSTER_NAME"
  timed kind-create kind create cluster --name "$CLUSTER_NAME" --image "$KIND_STOCK_IMAGE" \
    --kubeconfig "$KUBECONFIG_PATH" --wait 180s || fail "kind create cluster (stock image)" "make kind-down"
else
  command -v kubectl >/dev/null || fail "kubectl missing from $K8S_BIN_DIR: run make k8s-bins" "nothing to clean up"
  # kind bind-mounts the host's /lib/modules; these VMs have none (no
  # loadable modules). An empty directory is what the node needs.
  if [[ ! -d /lib/modules ]]; then
    info "creating an empty /lib/modules (kind bind-mounts it; this kernel has no modules)"
    mkdir -p /lib/modules && touch "$STATE_DIR/created-lib-modules"
  fi
  timed node-image "$KIND_DIR/node/build.sh" || exit 1
  timed network "$KIND_DIR/network.sh" up || exit 1

  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "Cluster $CLUSTER_NAME exists but is not healthy: recreating it"
    kind delete cluster --name "$CLUSTER_NAME" || fail "kind delete cluster" "docker rm -f $CLUSTER_NAME-control-plane"
  fi
  export KIND_EXPERIMENTAL_DOCKER_NETWORK="$KIND_NETWORK"
  log "Creating kind cluster $CLUSTER_NAME from $NODE_IMAGE on docker network $KIND_NETWORK"
  timed kind-create \
    kind create cluster --name "$CLUSTER_NAME" --image "$NODE_IMAGE" --config "$KIND_DIR/cluster.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" --wait 180s --retain \
    || fail "kind create cluster (node logs: kind export logs --name $CLUSTER_NAME $STATE_DIR/logs)" \
      "make kind-down"

  # CoreDNS without `forward . /etc/resolv.conf` (no query leaves the
  # machine; external names fail fast) and without `loop` (which needs
  # forwarding to detect anything).
  log "Patching CoreDNS: cluster names only, no upstream forwarding"
  coredns_patch() {
    kc -n kube-system create configmap coredns --from-file=Corefile="$KIND_DIR/coredns-Corefile" \
      --dry-run=client -o yaml | kc replace -f - >/dev/null &&
      # New pods take the new Corefile. Recreate (not rolling: that waits
      # out each old pod's 5 s lameduck in turn) and a 1 s readiness period
      # (CoreDNS is unready until it has synced with the API server; the
      # default 10 s period makes that look like 10 s more).
      kc -n kube-system patch deployment coredns --type strategic -p "$(
        cat <<JSON
{"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null},
  "template": {"metadata": {"annotations": {"meshlet.dev/corefile-sha256": "$(sha256sum "$KIND_DIR/coredns-Corefile" | cut -c1-16)"}},
    "spec": {"containers": [{"name": "coredns", "readinessProbe": {"periodSeconds": 1}}]}}}}
JSON
      )" >/dev/null &&
      kc -n kube-system rollout status deployment coredns --timeout=120s >/dev/null
  }
  timed coredns-patch coredns_patch || fail "patching CoreDNS" "make kind-down"
fi

kube_system_ready() {
  kc -n kube-system wait pod --all --for=condition=Ready --timeout=180s >/dev/null
}
timed kube-system-ready kube_system_ready || {
  kc -n kube-system get pods -o wide >&2 || true
  fail "kube-system pods not Ready within 180 s" "make kind-down"
}
log "Cluster $CLUSTER_NAME is up ($(($(now_s) - T0)) s). Use it with:"
echo "    export KUBECONFIG=$KUBECONFIG_PATH"
