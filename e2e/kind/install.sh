#!/usr/bin/env bash
# install.sh (make install): Meshlet in the kind cluster `meshlet`, the way a
# user installs it: the images (make images) loaded with `kind load` (no
# registry), then `kubectl apply -f deploy/meshlet.yaml`, then wait until
# every part works: both Deployments Ready, the webhook's CA written into
# its webhook configurations and the CRDs' conversion, the operator's trust
# anchors published. Idempotent; rebuilt images restart the Deployments.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$KUBECONFIG_PATH}"
export PATH="$K8S_BIN_DIR:$PATH"
MANIFEST="${MESHLET_MANIFEST:-$REPO_ROOT/deploy/meshlet.yaml}"
NS=meshlet-system
TAG="${MESHLET_IMAGE_TAG:-dev}"
IMAGES=(operator webhook proxy proxy-init testserver)
T0=$(now_s)
kc() { kubectl "$@"; }

kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || fail "no kind cluster $CLUSTER_NAME: run make kind-up" "nothing to clean up"
[[ -s "$MANIFEST" ]] || fail "$MANIFEST missing: run make deploy" "nothing to clean up"

timed images "$KIND_DIR/images-meshlet.sh" || exit 1

log "Loading images into kind cluster $CLUSTER_NAME"
load_images() {
  local refs=() i
  for i in "${IMAGES[@]}"; do refs+=("meshlet/$i:$TAG"); done
  # kind skips images the node already has with the same ID.
  kind load docker-image --name "$CLUSTER_NAME" "${refs[@]}" >/dev/null
}
timed kind-load load_images || fail "kind load docker-image" "nothing to clean up"

# A cluster where the old `make quickstart` ran the webhook on the host has
# CRDs and webhook configurations pointing at a URL; applying the manifest's
# service reference on top would leave both set (invalid). Replace those.
legacy_cleanup() {
  local crd
  for crd in $(kc get crd -o jsonpath='{range .items[?(@.spec.conversion.webhook.clientConfig.url)]}{.metadata.name}{"\n"}{end}'); do
    info "CRD $crd converts through a URL (old quickstart): replacing it"
    awk -v name="$crd" 'BEGIN{RS="\n---\n"; ORS="\n---\n"} $0 ~ "kind: CustomResourceDefinition" && $0 ~ ("\n  name: " name "\n")' "$MANIFEST" |
      kc replace -f - >/dev/null
  done
  local cfg
  for cfg in mutatingwebhookconfiguration/meshlet-inject validatingwebhookconfiguration/meshlet-validate; do
    if [[ -n "$(kc get "$cfg" -o jsonpath='{.webhooks[*].clientConfig.url}' 2>/dev/null)" ]]; then
      info "$cfg calls a URL (old quickstart): deleting it"
      kc delete "$cfg" >/dev/null
    fi
  done
}
legacy_cleanup

log "kubectl apply -f ${MANIFEST#"$REPO_ROOT"/}"
timed apply kc apply -f "$MANIFEST" >/dev/null || fail "kubectl apply -f $MANIFEST" "make uninstall"

# Same tag, new image: restart what runs an older build.
stamp="$STATE_DIR/installed-images"
ids=$(for i in operator webhook; do docker image inspect "meshlet/$i:$TAG" --format '{{.Id}}'; done)
if [[ -f "$stamp" && "$(cat "$stamp")" != "$ids" ]]; then
  log "Images changed since the last install: restarting the Deployments"
  kc -n "$NS" rollout restart deployment/meshlet-operator deployment/meshlet-webhook >/dev/null
fi

wait_ready() {
  kc -n "$NS" rollout status deployment/meshlet-operator --timeout=180s >/dev/null &&
    kc -n "$NS" rollout status deployment/meshlet-webhook --timeout=180s >/dev/null
}
timed rollout wait_ready || {
  kc -n "$NS" get pods -o wide >&2 || true
  kc -n "$NS" logs deployment/meshlet-operator --tail=30 >&2 || true
  kc -n "$NS" logs deployment/meshlet-webhook --tail=30 >&2 || true
  fail "Meshlet's Deployments did not become Ready" "make uninstall"
}
echo "$ids" >"$stamp"

# Ready pods are not enough: the API server must trust the webhook (caBundle
# written by the webhook at start), and proxies need the trust anchors. The
# probe: a server-side dry run of a v1alpha1 TrafficSplit, which the API
# server converts to the stored version (conversion webhook) and validates
# (validating webhook) without storing anything.
PROBE_SPLIT='{"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
  "metadata": {"name": "install-probe", "namespace": "meshlet-system"},
  "spec": {"service": "probe", "backends": [{"service": "probe-v1", "weight": "1"}]}}'
serving() {
  local _
  for _ in $(seq 120); do
    if [[ -n "$(kc get mutatingwebhookconfiguration meshlet-inject -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" &&
      -n "$(kc get validatingwebhookconfiguration meshlet-validate -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" &&
      -n "$(kc get crd trafficsplits.split.smi-spec.io -o jsonpath='{.spec.conversion.webhook.clientConfig.caBundle}')" ]] &&
      kc create --dry-run=server -f - >/dev/null 2>&1 <<<"$PROBE_SPLIT"; then
      return 0
    fi
    sleep 1
  done
  return 1
}
timed webhook-serving serving || fail "the webhook's caBundle never appeared (kubectl -n $NS logs deploy/meshlet-webhook)" "make uninstall"
# The operator creates the trust anchors on first start; the webhook refuses
# to inject pods until they exist (a proxy without anchors never gets ready).
anchors() {
  local _
  for _ in $(seq 60); do
    [[ -n "$(kc -n "$NS" get configmap meshlet-trust-anchors -o jsonpath='{.data.ca-bundle\.crt}' 2>/dev/null)" ]] && return 0
    sleep 1
  done
  return 1
}
timed trust-anchors anchors || fail "the operator did not publish ConfigMap $NS/meshlet-trust-anchors" "make uninstall"
log "Meshlet is installed ($(($(now_s) - T0)) s)"
kc -n "$NS" get pods -o wide
