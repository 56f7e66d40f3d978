#!/usr/bin/env bash
# load-test-images.sh : build the project's images (images-meshlet.sh: one
# static cargo build for all of them, so nothing is compiled twice) and
# `kind load` the test server image into the `meshlet` cluster (no registry
# anywhere): meshlet/testserver:dev, FROM scratch, one static binary.
source "$(dirname "$0")/lib.sh"
IMAGE="meshlet/testserver:${MESHLET_IMAGE_TAG:-dev}"

"$KIND_DIR/images-meshlet.sh" || exit 1
kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || fail "no kind cluster $CLUSTER_NAME: run make kind-up" "nothing to clean up"
log "Loading $IMAGE into kind cluster $CLUSTER_NAME"
kind load docker-image --name "$CLUSTER_NAME" "$IMAGE" >/dev/null || fail "kind load docker-image $IMAGE" "nothing to clean up"
