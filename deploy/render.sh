#!/usr/bin/env bash
# deploy/render.sh [--check] : render charts/meshlet with its default values
# into deploy/meshlet.yaml (CRDs included), for `kubectl apply -f`.
# --check: fail when the checked-in file differs from a fresh render
# (make deploy-check; CI runs it).
source "$(dirname "$0")/../e2e/kind/lib.sh"
OUT="$REPO_ROOT/deploy/meshlet.yaml"
helm=$("$KIND_DIR/helm.sh") || exit 1

render() {
  printf '%s\n' "# Meshlet $(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' "$REPO_ROOT/charts/meshlet/Chart.yaml"): rendered from charts/meshlet with default values by deploy/render.sh." \
    "# Do not edit: change the chart and run \`make deploy\`. Install: kubectl apply -f deploy/meshlet.yaml" \
    "# Uninstall (CRDs and SMI objects stay): make uninstall, or see docs/install.md."
  # helm prints a warning when it follows the crds symlink; not an error.
  "$helm" template meshlet "$REPO_ROOT/charts/meshlet" --namespace meshlet-system --include-crds "$@" 2> >(grep -v 'found symbolic link' >&2)
}

if [[ "${1:-}" == --check ]]; then
  shift
  fresh=$(mktemp)
  trap 'rm -f "$fresh"' EXIT
  render "$@" >"$fresh" || fail "helm template charts/meshlet" "nothing to clean up"
  if ! diff -u "$OUT" "$fresh" >&2; then
    fail "deploy/meshlet.yaml is stale (diff above): run make deploy and commit it" "nothing to clean up"
  fi
  info "deploy/meshlet.yaml is up to date"
  # The chart's guard rails and switches, so a broken template fails here.
  expect_error() { # expect_error TEXT HELM-ARGS...
    local text="$1" out
    shift
    if out=$("$helm" template meshlet "$REPO_ROOT/charts/meshlet" "$@" 2>&1); then
      fail "helm template $* rendered, but should refuse ($text)" "nothing to clean up"
    fi
    grep -q "$text" <<<"$out" || fail "helm template $*: expected an error naming $text, got: $out" "nothing to clean up"
  }
  expect_error "namespace:" --set namespace=other
  expect_error "webhook.tlsSecretName" --set webhook.replicas=2
  variant=$("$helm" template meshlet "$REPO_ROOT/charts/meshlet" --set webhook.replicas=2,webhook.tlsSecretName=tls \
    --set operator.replicas=2,permissive=true,image.pullPolicy=Never 2>/dev/null) ||
    fail "helm template with every switch on" "nothing to clean up"
  for want in "minAvailable: 1" "--register-apiservices" "--permissive" "--tls-cert-file=" "imagePullPolicy: Never" "--image-pull-policy=Never"; do
    grep -qF -- "$want" <<<"$variant" || fail "helm template with every switch on lacks: $want" "nothing to clean up"
  done
  "$helm" template meshlet "$REPO_ROOT/charts/meshlet" --set metricsApi.enabled=false 2>/dev/null | grep -q -- --no-metrics-api ||
    fail "metricsApi.enabled=false does not render --no-metrics-api" "nothing to clean up"
  info "chart guard rails and switches render as expected"
else
  render "$@" >"$OUT.tmp" || { rm -f "$OUT.tmp"; fail "helm template charts/meshlet" "nothing to clean up"; }
  mv "$OUT.tmp" "$OUT"
  info "wrote $OUT ($(grep -c '^kind:' "$OUT") objects)"
fi
