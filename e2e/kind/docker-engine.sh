#!/usr/bin/env bash
# Step 1: make sure a Docker engine answers. Uses a running one as is;
# otherwise installs Debian's docker.io and starts dockerd by hand (these
# VMs have no systemd), remembering in a pidfile that we started it.
source "$(dirname "$0")/lib.sh"

DOCKERD_PIDFILE="$STATE_DIR/dockerd.pid"
DOCKERD_LOG="$STATE_DIR/dockerd.log"

if docker info >/dev/null 2>&1; then
  info "Docker engine is running; using it as is"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "Installing Debian's docker.io (dockerd, containerd, runc)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update" "nothing to clean up"
  apt-get install -y -qq --no-install-recommends docker.io iptables python3-minimal >/dev/null \
    || fail "apt-get install docker.io" "apt-get remove docker.io"
fi

# The bounding set of this process vs every capability the kernel knows.
cap_last=$(cat /proc/sys/kernel/cap_last_cap)
full=$(( (1 << (cap_last + 1)) - 1 ))
bnd=$(( 16#$(awk '/^CapBnd:/ {print $2}' /proc/self/status) ))
runtime_args=()
if (( bnd != full )); then
  # docker --privileged asks for all capabilities; runc fails with "unable
  # to apply caps: operation not permitted" when one is outside the bounding
  # set (CAP_SYS_RESOURCE on our VMs). kind cannot pick a runtime, so the
  # capability-dropping wrapper must be the default one.
  info "capability bounding set $(printf '%x' "$bnd") is not full ($(printf '%x' "$full")):" \
    "registering runc-capfix as the default runtime"
  command -v /usr/bin/python3 >/dev/null || fail "runc-capfix needs /usr/bin/python3" "apt-get install python3-minimal"
  runtime_args=(--add-runtime "capfix=$KIND_DIR/runc-capfix" --default-runtime capfix)
fi

log "Starting dockerd (log: $DOCKERD_LOG)"
# setsid: dockerd must outlive this script and make's process group.
setsid dockerd --host unix:///var/run/docker.sock "${runtime_args[@]}" \
  >>"$DOCKERD_LOG" 2>&1 </dev/null &
echo $! >"$DOCKERD_PIDFILE"
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null || break
  sleep 0.5
done
docker info >/dev/null 2>&1 || {
  tail -20 "$DOCKERD_LOG" >&2
  fail "dockerd did not come up (log above, full log in $DOCKERD_LOG)" "make kind-down (stops the dockerd we started)"
}
info "dockerd $(docker version --format '{{.Server.Version}}') up, pid $(cat "$DOCKERD_PIDFILE")," \
  "runtime $(docker info --format '{{.DefaultRuntime}}'), cgroup v$(docker info --format '{{.CgroupVersion}}')"
