#!/usr/bin/env bash
# images.sh : build the container images kubeadm needs (control plane, etcd,
# CoreDNS, pause, kube-proxy) from the locally built static binaries, tagged
# exactly as `kubeadm config images list` names them, and `docker save` each
# into a tar for the node image to preload. Prints the directory of tars.
# Cached: rebuilt only when a binary or this script changes.
source "$(dirname "$0")/lib.sh"

[[ -s "$K8S_VERSIONS_ENV" ]] || fail "$K8S_VERSIONS_ENV missing: build the binaries first (make k8s-bins)" "nothing to clean up"
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm etcd coredns pause; do
  [[ -x "$K8S_BIN_DIR/$b" ]] || fail "$K8S_BIN_DIR/$b missing: run make k8s-bins" "nothing to clean up"
done

# kube-proxy programs iptables, so its image carries Debian's iptables.
proxy_rootfs=$("$KIND_DIR/rootfs.sh" kube-proxy "${KUBE_PROXY_PACKAGES[@]}") || exit 1

key=$( {
  sha256sum "$0" "$K8S_VERSIONS_ENV"
  sha256sum "$K8S_BIN_DIR"/{kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,kubeadm,etcd,coredns,pause} | cut -d' ' -f1
  basename "$proxy_rootfs"
} | sha256sum | cut -c1-16)
out="$STATE_DIR/images/$key"
if [[ -f "$out/.done" ]]; then
  info "component images: cached ($out)"
  echo "$out"
  exit 0
fi

log "Building component images from $K8S_BIN_DIR"
t_images=$SECONDS
rm -rf "$STATE_DIR/images"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mapfile -t wanted < <("$K8S_BIN_DIR/kubeadm" config images list --kubernetes-version "$K8S_VERSION")
image_for() { # image_for NAME -> the full tag kubeadm expects for that component
  local i
  for i in "${wanted[@]}"; do
    [[ "$(basename "${i%:*}")" == "$1" ]] && { echo "$i"; return; }
  done
  fail "kubeadm does not list an image named $1 (got: ${wanted[*]})" "nothing to clean up"
}

# A near-empty rootfs: the binary, /tmp, and name-service files. Lookups
# stay local (hosts: files): nothing in the cluster may query DNS outside.
skeleton() {
  local root="$1"
  mkdir -p "$root"/{etc,tmp,usr/local/bin,var/run}
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
}

# build_image NAME ENTRYPOINT-JSON ROOT
build_image() {
  local name="$1" entry="$2" root="$3" tag
  tag=$(image_for "$name")
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENTRYPOINT $entry" - "$tag" >/dev/null || fail "docker import $tag" "docker rmi $tag"
  docker save -o "$out/$name.tar" "$tag" || fail "docker save $tag" "rm -rf $out"
  docker rmi "$tag" >/dev/null # the tar is what the node image uses
  info "$tag ($(du -h "$out/$name.tar" | cut -f1))"
}

for c in kube-apiserver kube-controller-manager kube-scheduler etcd; do
  skeleton "$work/$c"
  cp "$K8S_BIN_DIR/$c" "$work/$c/usr/local/bin/"
  [[ "$c" == etcd ]] && cp "$K8S_BIN_DIR/etcdctl" "$work/$c/usr/local/bin/" 2>/dev/null || true
  build_image "$c" "[\"/usr/local/bin/$c\"]" "$work/$c"
done
skeleton "$work/coredns"
cp "$K8S_BIN_DIR/coredns" "$work/coredns/coredns"
build_image coredns '["/coredns"]' "$work/coredns"
skeleton "$work/pause"
cp "$K8S_BIN_DIR/pause" "$work/pause/pause"
build_image pause '["/pause"]' "$work/pause"

mkdir -p "$work/kube-proxy"
tar -C "$work/kube-proxy" -xf "$proxy_rootfs"
cp "$K8S_BIN_DIR/kube-proxy" "$work/kube-proxy/usr/local/bin/"
sed -i 's/^hosts:.*/hosts: files/' "$work/kube-proxy/etc/nsswitch.conf"
build_image kube-proxy '["/usr/local/bin/kube-proxy"]' "$work/kube-proxy"

touch "$out/.done"
record "  component-images" "$((SECONDS - t_images))"
info "component images: $(du -sh "$out" | cut -f1) in $out"
echo "$out"
