#!/usr/bin/env bash
# helm.sh : Helm v3 from its Go module (go install, the Go module proxy is
# the only source these machines have), cached in $MESHLET_CACHE/bin/helm.
# Prints the binary's path.
source "$(dirname "$0")/lib.sh"

HELM_VERSION="${HELM_VERSION:-v3.19.0}"
stamp="$BIN_DIR/.helm-version"
if [[ -x "$BIN_DIR/helm" && "$(cat "$stamp" 2>/dev/null)" == "$HELM_VERSION" ]]; then
  info "helm $HELM_VERSION: cached"
else
  log "Building helm $HELM_VERSION (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION)"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath -ldflags="-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
    || fail "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "nothing to clean up"
  echo "$HELM_VERSION" >"$stamp"
fi
echo "$BIN_DIR/helm"
