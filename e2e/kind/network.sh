#!/usr/bin/env bash
# network.sh up|down|counters : the isolated docker network the kind node
# lives on. Created by us (kind would create one with masquerading on):
#   - masquerading off: no NAT to the outside world;
#   - an iptables DOCKER-USER rule dropping anything forwarded from the
#     bridge to any other interface, so no packet can leave the machine;
#     its counter proves nothing tried (`network.sh counters`).
# Traffic from the host (kubectl to the API server on 127.0.0.1) and
# node-to-node/pod traffic on the bridge are untouched.
source "$(dirname "$0")/lib.sh"

BRIDGE="kind-meshlet"
RULE=(-i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment meshlet-kind-isolation -j DROP)

rule_present() { iptables -C DOCKER-USER "${RULE[@]}" 2>/dev/null; }

case "${1:-}" in
up)
  if docker network inspect "$KIND_NETWORK" >/dev/null 2>&1; then
    got=$(docker network inspect "$KIND_NETWORK" --format '{{index .Options "com.docker.network.bridge.name"}}')
    [[ "$got" == "$BRIDGE" ]] || fail "docker network '$KIND_NETWORK' exists but was not made by us (bridge '$got')" \
      "docker network rm $KIND_NETWORK (after deleting the clusters on it)"
    info "docker network $KIND_NETWORK exists"
  else
    log "Creating docker network $KIND_NETWORK ($KIND_SUBNET, bridge $BRIDGE, masquerade off)"
    docker network create --driver bridge --subnet "$KIND_SUBNET" \
      -o com.docker.network.bridge.name="$BRIDGE" \
      -o com.docker.network.bridge.enable_ip_masquerade=false \
      -o com.docker.network.driver.mtu=1500 \
      "$KIND_NETWORK" >/dev/null || fail "docker network create $KIND_NETWORK" "docker network rm $KIND_NETWORK"
  fi
  iptables -nL DOCKER-USER >/dev/null 2>&1 || fail "iptables chain DOCKER-USER missing (dockerd runs with --iptables=false?)" "make kind-down"
  if rule_present; then
    info "DOCKER-USER isolation rule present"
  else
    log "Adding DOCKER-USER rule: drop everything from $BRIDGE to other interfaces"
    iptables -I DOCKER-USER 1 "${RULE[@]}" || fail "iptables -I DOCKER-USER" "make kind-down"
  fi
  ;;
down)
  while rule_present; do
    log "Removing DOCKER-USER isolation rule"
    iptables -D DOCKER-USER "${RULE[@]}"
  done
  if docker network inspect "$KIND_NETWORK" >/dev/null 2>&1; then
    got=$(docker network inspect "$KIND_NETWORK" --format '{{index .Options "com.docker.network.bridge.name"}}')
    if [[ "$got" == "$BRIDGE" ]]; then
      log "Removing docker network $KIND_NETWORK"
      docker network rm "$KIND_NETWORK" >/dev/null || fail "docker network rm $KIND_NETWORK (containers still attached?)" \
        "docker network inspect $KIND_NETWORK; docker rm -f <containers>; docker network rm $KIND_NETWORK"
    fi
  fi
  ;;
counters)
  # packets/bytes dropped by the isolation rule since it was added
  iptables -nvxL DOCKER-USER | awk '/meshlet-kind-isolation/ {print "dropped packets=" $1 " bytes=" $2}'
  ;;
*)
  echo "usage: $0 up|down|counters" >&2
  exit 2
  ;;
esac
