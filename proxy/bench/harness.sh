# shellcheck shell=bash
# Shared by proxy/bench/run.sh (`make bench`) and proxy/link/profile.sh
# (`make link-order`), which drive the proxy binary the same way: one mesh
# service on loopback, static mesh certificates from `meshlet-loadgen certs`.

# wait_port ADDR [SECONDS]: until something listens on ADDR (default 5 s;
# a proxy under valgrind needs longer).
wait_port() {
  local tries=$(( ${2:-5} * 20 ))
  for _ in $(seq 1 "$tries"); do
    (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}

# bench_config ENDPOINT [ENDPOINT-FIELDS]: a proxy config with the service
# `web.bench` (cluster IP 10.96.0.1, authority web.bench.svc.cluster.local)
# at ENDPOINT, and an inbound side that admits every client.
bench_config() {
  echo '{"inbound":{"permissive":true},"outbound":{"services":[{"name":"web","namespace":"bench",'\
'"clusterIps":["10.96.0.1"],"authorities":["web.bench.svc.cluster.local:80"],'\
'"ports":[{"port":80,"endpoints":[{"addr":"'"$1"'"'"${2:+,$2}"'}]}]}]}}'
}

# The endpoint fields of a meshed server with the bench's server identity.
MESHED_SERVER='"meshed":true,"identity":"spiffe://cluster.local/ns/bench/sa/server"'

# tls_args CERT_DIR client|server: the proxy flags for that static identity.
tls_args() {
  echo --identity-cert "$1/$2.pem" --identity-key "$1/$2.key" --trust-anchors "$1/ca.pem"
}
