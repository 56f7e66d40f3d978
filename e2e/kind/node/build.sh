#!/usr/bin/env bash
# node/build.sh : build the kind node image meshlet/kind-node:<k8s version>
# without any registry, the way `kind build node-image` does it:
#   1. base: a debootstrap'ed Debian bookworm rootfs with systemd, Debian's
#      containerd 1.6, runc, CNI plugins, iptables, conntrack, ... (cached);
#   2. docker build: kind's systemd units, kubelet drop-ins and entrypoint
#      (copied from kind's source at $KIND_VERSION), our containerd config,
#      static CNI config, kubeadm/kubelet/kubectl/crictl;
#   3. a build container starts containerd and imports the component images
#      into its k8s.io namespace (--no-unpack, like kind), then docker commit.
# The image carries a label with the hash of all inputs; when it matches,
# nothing is rebuilt.
source "$(dirname "$0")/../lib.sh"
NODE_DIR="$KIND_DIR/node"

[[ -s "$K8S_VERSIONS_ENV" ]] || fail "$K8S_VERSIONS_ENV missing: run make k8s-bins" "nothing to clean up"
# shellcheck disable=SC1090
source "$K8S_VERSIONS_ENV"
for b in kubeadm kubelet kubectl; do
  [[ -x "$K8S_BIN_DIR/$b" ]] || fail "$K8S_BIN_DIR/$b missing: run make k8s-bins" "nothing to clean up"
done
[[ -x "$BIN_DIR/crictl" ]] || fail "$BIN_DIR/crictl missing: run e2e/kind/tools.sh" "nothing to clean up"

kind_src=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir) && [[ -d "$kind_src/images/base/files" ]] \
  || fail "could not fetch kind's source (sigs.k8s.io/kind@$KIND_VERSION) for its node files" "nothing to clean up"
kind_files="$kind_src/images/base/files"

command -v debootstrap >/dev/null 2>&1 || {
  log "Installing debootstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
    || fail "apt-get install debootstrap" "nothing to clean up"
}
# Both rootfs at once: debootstrap mostly waits on downloads and dpkg.
"$KIND_DIR/rootfs.sh" kube-proxy "${KUBE_PROXY_PACKAGES[@]}" >/dev/null &
proxy_pid=$!
rootfs=$("$KIND_DIR/rootfs.sh" node "${NODE_PACKAGES[@]}") || exit 1
wait "$proxy_pid" || fail "debootstrap of the kube-proxy rootfs" "nothing to clean up"
images=$("$KIND_DIR/images.sh") || exit 1

inputs=$( {
  echo "$KIND_VERSION $K8S_VERSION $(basename "$rootfs") $(basename "$images")"
  (cd "$NODE_DIR" && find . -type f | sort | xargs sha256sum)
  sha256sum "$K8S_BIN_DIR"/{kubeadm,kubelet,kubectl} "$BIN_DIR/crictl" | cut -d' ' -f1
} | sha256sum | cut -c1-16)
if [[ "$(docker image inspect "$NODE_IMAGE" --format '{{index .Config.Labels "dev.meshlet.inputs"}}' 2>/dev/null)" == "$inputs" ]]; then
  info "node image $NODE_IMAGE is up to date (inputs $inputs)"
  exit 0
fi

base="meshlet/kind-base:$(basename "$rootfs" .tar | sed 's/^node-//')"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  log "Importing the node rootfs as $base"
  docker import "$rootfs" "$base" >/dev/null || fail "docker import $rootfs" "docker rmi $base"
fi

log "Building node image $NODE_IMAGE (inputs $inputs)"
t_build=$SECONDS
ctx=$(mktemp -d "$STATE_DIR/node-build.XXXX")
build_ctr="meshlet-node-build-$$"
stage="meshlet/kind-node-stage:$inputs"
cleanup() {
  docker rm -f -v "$build_ctr" >/dev/null 2>&1 || true
  docker rmi "$stage" >/dev/null 2>&1 || true
  rm -rf "$ctx"
}
trap cleanup EXIT

# kind's node files, unchanged except where noted.
mkdir -p "$ctx/kind/usr/local/bin" "$ctx/kind/etc"
cp -r "$kind_files/kind" "$ctx/kind/kind"
cp -r "$kind_files/etc/systemd" "$kind_files/etc/default" "$kind_files/etc/sysctl.d" "$kind_files/etc/crictl.yaml" "$ctx/kind/etc/"
# kind's entrypoint logs "detected cgroup v1" before systemd runs, and kind
# reads that line as "node booted" (a shortcut meant for old systemd) and
# would start kubeadm before containerd is up ("dial unix
# /run/containerd/containerd.sock: no such file"). Reword that one message.
sed "s/log_info 'detected cgroup v1'/log_info 'cgroup v1 host (legacy hierarchy)'/" \
  "$kind_files/usr/local/bin/entrypoint" >"$ctx/kind/usr/local/bin/entrypoint"
grep -q "cgroup v1 host (legacy hierarchy)" "$ctx/kind/usr/local/bin/entrypoint" \
  || fail "kind's entrypoint changed: the 'detected cgroup v1' message was not found" "nothing to clean up"
chmod 0755 "$ctx/kind/usr/local/bin/entrypoint" "$ctx/kind/kind/bin/"*
cp -r "$NODE_DIR/files" "$ctx/meshlet"
sed -i "s|@PAUSE_IMAGE@|registry.k8s.io/pause:$PAUSE_VERSION|" "$ctx/meshlet/etc/containerd/config.toml"
echo "$K8S_VERSION" >"$ctx/meshlet/kind/version"
mkdir -p "$ctx/bin"
cp "$K8S_BIN_DIR"/{kubeadm,kubelet,kubectl} "$BIN_DIR/crictl" "$ctx/bin/"

cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY kind/ /
COPY meshlet/ /
COPY bin/ /usr/bin/
RUN set -e; \\
    echo "Trimming systemd units (as kind's base image)"; \\
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete; \\
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \\
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \\
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*; \\
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf; \\
    ln -sf /usr/bin/containerd /usr/local/bin/containerd; \\
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service meshlet-service-route.service; \\
    systemctl mask systemd-binfmt.service; \\
    mkdir -p /etc/kubernetes/manifests; \\
    echo "Host names resolve from /etc/hosts only (no DNS query may leave the machine)"; \\
    sed -i 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf; \\
    ctr oci spec | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/meshlet-node-entrypoint", "/sbin/init"]
DOCKERFILE

DOCKER_BUILDKIT=0 docker build -q -t "$stage" "$ctx" >"$ctx.log" 2>&1 || {
  tail -30 "$ctx.log" >&2
  fail "docker build of the node image (log: $ctx.log)" "docker rmi $stage; rm -f $ctx.log"
}
rm -f "$ctx.log"

record "  node-docker-build" "$((SECONDS - t_build))"
t_build=$SECONDS
log "Preloading $(ls "$images"/*.tar | wc -l) component images into the node's containerd (k8s.io namespace)"
docker run -d --name "$build_ctr" --entrypoint sleep -v "$images:/images:ro" "$stage" infinity >/dev/null \
  || fail "docker run of the build container" "docker rm -f $build_ctr"
docker exec "$build_ctr" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
docker exec "$build_ctr" bash -euc '
  for i in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && break; sleep 0.2; done
  ctr version >/dev/null || { cat /tmp/containerd.log; exit 1; }
  for f in /images/*.tar; do
    ctr --namespace=k8s.io images import --all-platforms --no-unpack "$f" >/dev/null
  done
  # pinned: kubelet image GC must never remove the control-plane images
  for i in $(ctr --namespace=k8s.io images list -q | grep -v "sha256:"); do
    ctr --namespace=k8s.io images label "$i" io.cri-containerd.pinned=pinned >/dev/null
  done
  ctr --namespace=k8s.io images list -q | grep -v "sha256:"
  pkill containerd; for i in $(seq 1 50); do pgrep containerd >/dev/null || break; sleep 0.1; done
' >&2 || fail "importing images into the node's containerd" "docker rm -f $build_ctr"

old_image=$(docker image inspect "$NODE_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
# (STOPSIGNAL SIGRTMIN+3 and ENV container=docker carry over from the stage
# image; commit cannot set STOPSIGNAL, so it is checked below.)
docker commit \
  --change 'ENTRYPOINT ["/usr/local/bin/meshlet-node-entrypoint", "/sbin/init"]' \
  --change 'CMD []' \
  --change "LABEL dev.meshlet.inputs=$inputs" \
  "$build_ctr" "$NODE_IMAGE" >/dev/null || fail "docker commit of the node image" "docker rm -f $build_ctr"
[[ "$(docker image inspect "$NODE_IMAGE" --format '{{.Config.StopSignal}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}')" == 'SIGRTMIN+3 ["/usr/local/bin/meshlet-node-entrypoint","/sbin/init"] []' ]] \
  || fail "node image config wrong: $(docker image inspect "$NODE_IMAGE" --format '{{.Config.StopSignal}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}')" "docker rmi $NODE_IMAGE"
record "  node-preload-commit" "$((SECONDS - t_build))"
[[ -n "$old_image" ]] && docker rmi "$old_image" >/dev/null 2>&1 || true
info "node image $NODE_IMAGE: $(docker image inspect "$NODE_IMAGE" --format '{{.Size}}' | numfmt --to=iec)"
