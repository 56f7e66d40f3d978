#!/usr/bin/env bash
# quickstart.sh (make quickstart): a kind cluster with Meshlet installed the
# way a user installs it (make install: images, kind load, kubectl apply -f
# deploy/meshlet.yaml) and a demo in namespace meshlet-demo: a client and two
# versions of `web` behind a 90/10 TrafficSplit, with a TrafficTarget letting
# the client in (access is denied by default). Shows the split working and
# prints what to try next. Re-runnable; `make kind-down` removes it all.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="$KUBECONFIG_PATH"
export PATH="$K8S_BIN_DIR:$PATH"
EXAMPLES="$REPO_ROOT/examples/quickstart"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "kind cluster"
"$KIND_DIR/up.sh"

say "Meshlet: images, kind load, kubectl apply -f deploy/meshlet.yaml"
"$KIND_DIR/install.sh"

say "the demo: client, web v1 and v2, access policy, a 90/10 TrafficSplit"
run kubectl apply -f "$EXAMPLES/01-namespace.yaml" -f "$EXAMPLES/02-workloads.yaml" \
  -f "$EXAMPLES/03-access.yaml" -f "$EXAMPLES/04-trafficsplit.yaml"
kubectl -n meshlet-demo rollout status deployment/web-v1 deployment/web-v2 deployment/client --timeout=180s >/dev/null ||
  fail "the demo's Deployments did not become Ready (kubectl -n meshlet-demo get pods)" "kubectl delete ns meshlet-demo"

say "every pod got the proxy (a native sidecar: an init container that keeps running)"
run kubectl -n meshlet-demo get pods \
  -o custom-columns='POD:.metadata.name,READY:.status.containerStatuses[*].ready,SIDECAR:.spec.initContainers[?(@.restartPolicy=="Always")].name'

say "200 calls from the client to http://web: about 90 % v1, 10 % v2"
run kubectl -n meshlet-demo exec deploy/client -c client -- \
  /meshlet-testserver get --wait-proxy 30 --wait-ready 30 --count 200 http://web.meshlet-demo.svc.cluster.local/

say "an invalid TrafficSplit is refused with a message naming the field"
if out=$(kubectl apply -f "$EXAMPLES/bad-trafficsplit.yaml" 2>&1); then
  echo "$out"
  fail "the invalid TrafficSplit was accepted" "make kind-down"
fi
echo "$out"

cat <<MSG

Meshlet is running on the kind cluster "meshlet". Try:
  export KUBECONFIG=$KUBECONFIG_PATH
  # shift all traffic to v2, then call again
  kubectl -n meshlet-demo patch trafficsplits.v1alpha4.split.smi-spec.io web --type merge \\
    -p '{"spec":{"backends":[{"service":"web-v1","weight":0},{"service":"web-v2","weight":100}]}}'
  kubectl -n meshlet-demo exec deploy/client -c client -- /meshlet-testserver get --count 50 http://web/
  # the same split in the oldest SMI version (weights as quantities)
  kubectl -n meshlet-demo get trafficsplits.v1alpha1.split.smi-spec.io web -o yaml
  # a proxy's own view: its config and Prometheus metrics
  kubectl -n meshlet-demo port-forward deploy/client 4191 &  curl -s localhost:4191/metrics | head
  kubectl -n meshlet-system logs deploy/meshlet-operator
Clean up: make uninstall (keeps the SMI CRDs), make kind-down (everything).
MSG
