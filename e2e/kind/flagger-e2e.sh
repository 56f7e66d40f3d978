#!/usr/bin/env bash
# flagger-e2e.sh (make e2e-flagger): Flagger drives a Meshlet canary on the
# kind cluster (make kind-up runs first). Installs Meshlet if it is not
# (install.sh is idempotent: a no-op apart from checks when it is), builds
# and loads the Flagger and Prometheus images and applies Flagger's CRDs
# (flagger.sh), then runs e2e/tests/flagger.rs. Meshlet stays installed.
# Prints each step's time.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$KUBECONFIG_PATH}"
export PATH="$K8S_BIN_DIR:$PATH"
T0=$(now_s)
# The feature set of e2e.sh: after `make e2e` nothing compiles again.
FEATURES=meshlet-e2e/kind-uninstall

timed e2e-flagger-install "$KIND_DIR/install.sh" || exit 1
timed e2e-flagger-images "$KIND_DIR/flagger.sh" || exit 1
set -a
# shellcheck disable=SC1091 # written by flagger.sh
source "$MESHLET_CACHE/flagger/images.env"
set +a

log "Building the flagger scenario"
timed e2e-flagger-build bash -c "cd '$REPO_ROOT' && cargo test --workspace --features $FEATURES --no-run -q --test flagger" ||
  fail "building e2e/tests/flagger.rs" "nothing to clean up"
log "Scenario: flagger"
(cd "$REPO_ROOT" && timed e2e-flagger cargo test --workspace --features "$FEATURES" --test flagger -- --nocapture) ||
  fail "flagger scenario (output above; its namespace is kept)" "kubectl delete ns -l meshlet.dev/e2e=flagger"
log "make e2e-flagger passed ($(($(now_s) - T0)) s)"
