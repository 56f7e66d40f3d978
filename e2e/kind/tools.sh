#!/usr/bin/env bash
# tools.sh : kind (from its Go module, go install) and crictl (from
# e2e/kind/tools/go.mod), cached in $MESHLET_CACHE/bin.
source "$(dirname "$0")/lib.sh"

stamp="$BIN_DIR/.kind-version"
if [[ -x "$BIN_DIR/kind" && "$(cat "$stamp" 2>/dev/null)" == "$KIND_VERSION" ]]; then
  info "kind $KIND_VERSION: cached"
else
  log "Building kind $KIND_VERSION (go install sigs.k8s.io/kind@$KIND_VERSION)"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install "sigs.k8s.io/kind@$KIND_VERSION" \
    || fail "go install sigs.k8s.io/kind@$KIND_VERSION" "nothing to clean up"
  echo "$KIND_VERSION" >"$stamp"
fi

stamp="$BIN_DIR/.crictl-version"
want=$(sha256sum "$KIND_DIR/tools/go.mod" "$KIND_DIR/tools/go.sum" | sha256sum | cut -c1-16)
if [[ -x "$BIN_DIR/crictl" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
  info "crictl: cached"
else
  log "Building crictl (sigs.k8s.io/cri-tools, pinned in e2e/kind/tools/go.mod)"
  (cd "$KIND_DIR/tools" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$BIN_DIR/crictl" \
    sigs.k8s.io/cri-tools/cmd/crictl) || fail "go build crictl" "nothing to clean up"
  echo "$want" >"$stamp"
fi
