#!/usr/bin/env bash
# uninstall.sh (make uninstall): remove everything deploy/meshlet.yaml
# installed except the SMI CRDs (and with them the users' SMI objects),
# which stay on purpose: deleting a CRD deletes every object of its kind in
# every namespace. Order: first what makes the API server call Meshlet (the
# webhook configurations, the metrics APIService), so nothing hangs on a
# webhook that is going away, then the rest; waits until the namespace is
# gone. Idempotent. Pods injected earlier keep their proxy until recreated.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$KUBECONFIG_PATH}"
export PATH="$K8S_BIN_DIR:$PATH"
NS=meshlet-system
SELECTOR=app.kubernetes.io/part-of=meshlet
T0=$(now_s)

log "Removing Meshlet (the SMI CRDs stay)"
kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration,apiservice \
  -l "$SELECTOR" --ignore-not-found --wait=true
# The operator registers the TrafficMetrics APIServices itself.
kubectl delete apiservice v1alpha1.metrics.smi-spec.io v1alpha2.metrics.smi-spec.io --ignore-not-found --wait=true
kubectl delete namespace "$NS" --ignore-not-found --wait=true --timeout=120s ||
  fail "namespace $NS did not go away (kubectl get ns $NS -o yaml)" "kubectl delete ns $NS"
kubectl delete clusterrole,clusterrolebinding -l "$SELECTOR" --ignore-not-found
kubectl -n kube-system delete rolebinding -l "$SELECTOR" --ignore-not-found
rm -f "$STATE_DIR/installed-images"
log "Meshlet removed ($(($(now_s) - T0)) s); CRDs left: $(kubectl get crd -o name | grep -c smi-spec.io || true)"
