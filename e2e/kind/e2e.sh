#!/usr/bin/env bash
# e2e.sh (make e2e): the end-to-end suite on the kind cluster (make kind-up
# runs first): install Meshlet as a user would (install.sh), run the
# scenarios (each in a namespace of its own, deleted when it passes), then
# the uninstall scenario, alone and last. Prints each step's time.
source "$(dirname "$0")/lib.sh"
export KUBECONFIG="${KUBECONFIG:-$KUBECONFIG_PATH}"
export PATH="$K8S_BIN_DIR:$PATH"
T0=$(now_s)
# Both cargo invocations use the same feature set: nothing compiles twice.
FEATURES=meshlet-e2e/kind-uninstall
SCENARIOS=(${MESHLET_E2E_SCENARIOS:-install injection canary mtls_access traffic_metrics bad_input})
# Run alone after those: they take Meshlet's parts down on purpose.
SERIAL=(${MESHLET_E2E_SERIAL:-resilience})

timed e2e-install "$KIND_DIR/install.sh" || exit 1

log "Building the e2e tests"
timed e2e-build bash -c "cd '$REPO_ROOT' && cargo test --workspace --features $FEATURES --no-run -q $(printf -- '--test %s ' "${SCENARIOS[@]}" "${SERIAL[@]}" uninstall)" ||
  fail "building the e2e tests" "nothing to clean up"

log "Scenarios: ${SCENARIOS[*]}"
args=()
for s in "${SCENARIOS[@]}"; do args+=(--test "$s"); done
(cd "$REPO_ROOT" && timed e2e-scenarios cargo test --workspace --features "$FEATURES" "${args[@]}" -- --nocapture) ||
  fail "e2e scenarios (output above; failed scenarios keep their namespace)" "make uninstall"

for s in "${SERIAL[@]}"; do
  log "Scenario: $s (alone)"
  (cd "$REPO_ROOT" && timed "e2e-$s" cargo test --workspace --features "$FEATURES" --test "$s" -- --nocapture) ||
    fail "e2e scenario $s (output above)" "make uninstall"
done

if [[ "${MESHLET_E2E_KEEP_INSTALLED:-0}" != 1 ]]; then
  log "Scenario: uninstall"
  (cd "$REPO_ROOT" && timed e2e-uninstall cargo test --workspace --features "$FEATURES" --test uninstall -- --nocapture) ||
    fail "uninstall scenario" "make uninstall"
fi
log "make e2e passed ($(($(now_s) - T0)) s)"
