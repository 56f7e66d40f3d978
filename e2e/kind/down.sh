#!/usr/bin/env bash
# down.sh : undo up.sh (make kind-down). Idempotent: deletes the cluster,
# the isolated network and its iptables rule, and stops dockerd if up.sh
# started it. Cached builds ($MESHLET_CACHE) are kept.
source "$(dirname "$0")/lib.sh"

docker_up() { docker info >/dev/null 2>&1; }

if docker_up; then
  if [[ -x "$BIN_DIR/kind" ]] && "$BIN_DIR/kind" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "Deleting kind cluster $CLUSTER_NAME"
    "$BIN_DIR/kind" delete cluster --name "$CLUSTER_NAME" || fail "kind delete cluster" \
      "docker rm -f -v $CLUSTER_NAME-control-plane"
  fi
  "$KIND_DIR/network.sh" down
else
  info "no Docker engine running: no cluster or network to remove"
fi
rm -f "$KUBECONFIG_PATH"

if [[ -f "$STATE_DIR/dockerd.pid" ]]; then
  pid=$(cat "$STATE_DIR/dockerd.pid")
  if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
    log "Stopping the dockerd we started (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && fail "dockerd (pid $pid) did not stop" "kill -9 $pid"
  fi
  rm -f "$STATE_DIR/dockerd.pid"
fi
if [[ -f "$STATE_DIR/created-lib-modules" ]]; then
  rmdir /lib/modules 2>/dev/null || true
  rm -f "$STATE_DIR/created-lib-modules"
fi
log "kind-down done"
