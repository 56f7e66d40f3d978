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
else
  render "$@" >"$OUT.tmp" || { rm -f "$OUT.tmp"; fail "helm template charts/meshlet" "nothing to clean up"; }
  mv "$OUT.tmp" "$OUT"
  info "wrote $OUT ($(grep -c '^kind:' "$OUT") objects)"
fi
