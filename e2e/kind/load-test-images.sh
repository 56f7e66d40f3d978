#!/usr/bin/env bash
# load-test-images.sh : build the project's test images and `kind load` them
# into the `meshlet` cluster (no registry anywhere):
#   meshlet/testserver:dev  FROM scratch, one static binary (glibc static;
#   the musl target is not installed on these machines).
source "$(dirname "$0")/lib.sh"

IMAGE="meshlet/testserver:dev"
TARGET_DIR="$REPO_ROOT/target/static"

log "Building meshlet-testserver (static)"
(cd "$REPO_ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -q \
  --target x86_64-unknown-linux-gnu -p meshlet-testserver --target-dir "$TARGET_DIR") \
  || fail "cargo build of meshlet-testserver" "nothing to clean up"
bin="$TARGET_DIR/x86_64-unknown-linux-gnu/release/meshlet-testserver"
if readelf -d "$bin" | grep -q NEEDED; then
  fail "$bin is dynamically linked; it cannot run FROM scratch" "nothing to clean up"
fi

# FROM scratch: the binary and a name-service config (hosts from files, then
# DNS: cluster DNS is how tests reach Services by name).
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/etc"
cp "$bin" "$ctx/root/meshlet-testserver"
printf 'hosts: files dns\n' >"$ctx/root/etc/nsswitch.conf"
key=$(sha256sum "$bin" | cut -c1-16)
if [[ "$(docker image inspect "$IMAGE" --format '{{index .Config.Labels "dev.meshlet.inputs"}}' 2>/dev/null)" != "$key" ]]; then
  log "Building image $IMAGE"
  old_image=$(docker image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
  tar -C "$ctx/root" --numeric-owner -c . | docker import \
    --change 'ENTRYPOINT ["/meshlet-testserver"]' --change 'CMD ["serve"]' \
    --change "LABEL dev.meshlet.inputs=$key" - "$IMAGE" >/dev/null \
    || fail "docker import $IMAGE" "docker rmi $IMAGE"
  [[ -n "$old_image" ]] && docker rmi "$old_image" >/dev/null 2>&1 || true
fi
info "$IMAGE: $(docker image inspect "$IMAGE" --format '{{.Size}}' | numfmt --to=iec)B"

kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || fail "no kind cluster $CLUSTER_NAME: run make kind-up" "nothing to clean up"
log "Loading $IMAGE into kind cluster $CLUSTER_NAME"
kind load docker-image --name "$CLUSTER_NAME" "$IMAGE" || fail "kind load docker-image $IMAGE" "nothing to clean up"
