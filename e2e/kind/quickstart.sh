#!/usr/bin/env bash
# quickstart.sh (make quickstart): Meshlet's SMI API and webhooks on a real
# kind cluster. Brings up the cluster, installs the SMI CRDs (every version
# served), runs meshlet-webhook on this machine (the API server in the kind
# node calls it over the kind bridge), then shows conversion, validation and
# injection working. The in-cluster install (images, chart) comes next; until
# then the webhook runs beside the cluster and `make kind-down` stops it.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_PATH"
EXAMPLES="$REPO_ROOT/examples/quickstart"
PIDFILE="$STATE_DIR/quickstart-webhook.pid"
WEBHOOK_LOG="$STATE_DIR/quickstart-webhook.log"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "kind cluster"
"$KIND_DIR/up.sh"
"$KIND_DIR/load-test-images.sh"

say "building meshlet-webhook"
(cd "$REPO_ROOT" && cargo build -q -p meshlet-webhook)

if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  kill "$(cat "$PIDFILE")" && sleep 1
fi
say "SMI CRDs: every published version served, v1alpha4/v1alpha3 stored"
# Replace, not apply: a previous run's webhook pointed the conversion at its
# URL, and a merge would leave both url and service set (invalid).
for crd in "$REPO_ROOT"/crds/yaml/*.yaml; do
  kubectl replace -f "$crd" 2>/dev/null || run kubectl create -f "$crd"
done
kubectl wait --for condition=Established crd --all --timeout=60s >/dev/null

# The node reaches this machine at the kind bridge's gateway address; the
# webhook listens there only (not on every interface).
bridge="$(docker network inspect "$KIND_NETWORK" -f '{{index .Options "com.docker.network.bridge.name"}}')"
gateway="$(ip -4 -o addr show dev "${bridge:-none}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
[[ -n "$gateway" ]] || fail "no gateway on docker network $KIND_NETWORK" "make kind-down"
say "meshlet-webhook on https://$gateway:8443 (log: $WEBHOOK_LOG)"
"$REPO_ROOT/target/debug/meshlet-webhook" --addr "$gateway:8443" --extra-san "$gateway" \
  --register --webhook-url "https://$gateway:8443" --image-pull-policy Never \
  >"$WEBHOOK_LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 60); do
  kubectl get mutatingwebhookconfiguration meshlet-inject >/dev/null 2>&1 &&
    kubectl get validatingwebhookconfiguration meshlet-validate >/dev/null 2>&1 && break
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -20 "$WEBHOOK_LOG"; fail "meshlet-webhook exited" "make kind-down"; }
  sleep 1
done
sleep 2 # the API server picks up new webhook configurations within a second

say "SMI objects in three different versions"
run kubectl apply -f "$EXAMPLES/01-namespace.yaml" -f "$EXAMPLES/02-routes.yaml" \
  -f "$EXAMPLES/03-trafficsplit-v1alpha1.yaml" -f "$EXAMPLES/04-traffictarget-v1alpha2.yaml"

say "the v1alpha1 TrafficSplit read back as v1alpha4, v1alpha2 and v1alpha1 (converted by the webhook)"
run kubectl get trafficsplits.v1alpha4.split.smi-spec.io web -n meshlet-demo -o jsonpath='{.spec}{"\n"}'
run kubectl get trafficsplits.v1alpha2.split.smi-spec.io web -n meshlet-demo -o jsonpath='{.spec}{"\n"}'
run kubectl get trafficsplits.v1alpha1.split.smi-spec.io web -n meshlet-demo -o jsonpath='{.spec}{"\n"}'

say "an invalid TrafficSplit is refused with a message naming the field"
if out=$(kubectl apply -f "$EXAMPLES/bad-trafficsplit.yaml" 2>&1); then
  echo "$out"; fail "the invalid TrafficSplit was accepted" "make kind-down"
fi
echo "$out"

say "a pod in the labelled namespace gets the proxy (native sidecar) and the init step"
run kubectl apply --dry-run=server -f "$EXAMPLES/pod.yaml" \
  -o jsonpath='{range .spec.initContainers[*]}init: {.name} restartPolicy={.restartPolicy}{"\n"}{end}{range .spec.containers[*]}container: {.name}{"\n"}{end}'

cat <<MSG

Meshlet's API is live on the kind cluster "meshlet". Try:
  export KUBECONFIG=$KUBECONFIG_PATH
  kubectl get trafficsplits.v1alpha3.split.smi-spec.io -n meshlet-demo web -o yaml
  kubectl get traffictargets.v1alpha1.access.smi-spec.io -n meshlet-demo -o yaml
  kubectl apply --dry-run=server -f examples/quickstart/pod.yaml -o yaml
Clean up: make kind-down (also stops the webhook started here).
MSG
