#!/usr/bin/env bash
# `make link-order`: regenerates proxy/link/order.txt, the functions the
# proxy runs, for ordered-link.sh to place first. Builds the static proxy
# and runs its symbol-carrying copy under valgrind's callgrind in three
# phases:
#   start   start-up and shutdown, plaintext and with an mTLS identity;
#   pod     start-up as in a pod: key and CSR, certified by and configured
#           from a stand-in operator (proxy/examples/fake_operator.rs);
#   idle    what a pod's proxy does between requests: /ready and /live
#           probes, /metrics scrapes, /config;
#   traffic HTTP/1 and HTTP/2 outbound, HTTP/1 inbound, mesh mTLS both ways.
# order.txt lists start's functions, then pod's, then idle's, then the rest of
# traffic's by instructions spent (hottest first); the functions start
# shares with traffic come last in its group, hottest first. An idle proxy
# then touches one contiguous block of code, and the request path is packed
# behind it, the hottest functions sharing pages and cache lines.
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/kind/lib.sh
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
static_build
full=$(ls -t "$STATIC_BIN_DIR"/deps/meshlet_proxy-*.symbols 2>/dev/null | head -n1)
[ -n "$full" ] || fail "no symbol-carrying proxy build (is ordered-link.sh the linker?)" "nothing to clean up"
BIN=$STATIC_BIN_DIR
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
source proxy/bench/harness.sh
"$BIN/meshlet-loadgen" serve --addr 127.0.0.1:18080 & PIDS+=($!)
"$BIN/meshlet-loadgen" certs --out "$W/certs" >/dev/null
load() { "$BIN/meshlet-loadgen" load --scenario profile --rate 100 --duration 3 --connections 4 --target "$1" >/dev/null; }
# proxy NAME CONFIG OUT IN ADMIN [flags]: (CONFIG "": from an operator) the symbol-carrying copy under
# callgrind, or with NAME=plain the shipped binary. A profiled proxy's
# costs land in three files: NAME.cg.1 start-up (dumped once it serves),
# NAME.cg.2 the phase's work (dumped by `stop`), NAME.cg shutdown.
PROFILED=()
proxy() {
  local name=$1 cfg=$2 o=$3 i=$4 a=$5; shift 5
  local cmd=("$BIN/meshlet-proxy") profiled=""
  [ "$name" != plain ] && profiled=1 && cmd=(valgrind --tool=callgrind --callgrind-out-file="$W/$name.cg" --demangle=no --compress-strings=no --compress-pos=no "$full")
  # The default log level (pods run with it): its start-up lines are part of
  # what an idle proxy has touched.
  "${cmd[@]}" run ${cfg:+--config "$cfg"} --outbound-addr "$o" --inbound-addr "$i" --admin-addr "$a" \
    --inbound-fallback-port 18080 "$@" >"$W/$name.log" 2>&1 & PIDS+=($!)
  PROFILED+=("$profiled")
  wait_port "$a" 20 # valgrind starts slowly
  if [ -n "${PROFILED[-1]}" ]; then callgrind_control -d "${PIDS[-1]}" >/dev/null 2>&1; fi
}
stop() {
  if [ -n "${PROFILED[-1]}" ]; then callgrind_control -d "${PIDS[-1]}" >/dev/null 2>&1; fi
  kill -INT "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  unset 'PIDS[-1]' 'PROFILED[-1]'
}

admin() { for path in /ready /live /metrics /config; do curl -s -o /dev/null "$1$path"; done; }
ready() { # ADMIN: waits until the proxy is ready (certified and configured)
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/ready")" = 200 ] && return 0
    sleep 0.2
  done
  fail "the proxy at $1 did not become ready" "see $W/*.log"
}

log "start: plaintext, then with an mTLS identity"
bench_config 127.0.0.1:18080 > "$W/plain.json"
proxy start-plain "$W/plain.json" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191
stop
echo '{"inbound":{"permissive":true}}' > "$W/server.json"
# shellcheck disable=SC2046 # tls_args yields separate flags
proxy start-tls "$W/server.json" 127.0.0.1:19240 127.0.0.1:19243 127.0.0.1:19291 $(tls_args "$W/certs" server)
stop

log "start as in a pod: certified by, and configured from, a stand-in operator"
# Its files go to their own directory: this start-up is a phase of its own
# (see the grouping below).
cargo build --release -q -p meshlet-proxy --example fake_operator
mkdir -p "$W/pod"
# pod-config.json: what the quickstart's web-v1 pod was streamed (kind,
# 2026-12-06: deny by default with a TrafficTarget, a readiness probe, the
# demo's services), endpoints moved to the bench upstream on loopback.
target/release/examples/fake_operator 127.0.0.1:19300 proxy/link/pod-config.json "$W/pod/anchors.pem" & PIDS+=($!)
wait_port 127.0.0.1:19300
echo bench-token > "$W/pod/token"
# By name, as pods address the operator: resolving it is start-up work too.
proxy pod/pod "" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191 --operator localhost:19300 \
  --token-file "$W/pod/token" --trust-anchors "$W/pod/anchors.pem" --namespace bench --service-account client --pod client-0
ready 127.0.0.1:19191
admin 127.0.0.1:19191
# The kubelet's probe of the app, plaintext through the inbound side; the
# app calling a mesh service.
for _ in 1 2 3; do curl -s -o /dev/null 127.0.0.1:19143/ready || true; done
curl -s -o /dev/null -H "host: web.meshlet-demo.svc.cluster.local" 127.0.0.1:19140/ || true
stop
kill "${PIDS[-1]}"; unset 'PIDS[-1]'

log "idle: probes, scrapes and /config"
proxy idle "$W/plain.json" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191
for _ in 1 2 3; do admin 127.0.0.1:19191; done
stop

log "traffic: plaintext HTTP/1 and HTTP/2 outbound, HTTP/1 inbound"
proxy traffic-plain "$W/plain.json" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191
load 127.0.0.1:19140; load 127.0.0.1:19143
admin 127.0.0.1:19191
curl -s -o /dev/null --http2-prior-knowledge -H "host: web.bench.svc.cluster.local" 127.0.0.1:19140/ || true
stop

log "traffic: mTLS, the profiled proxy as the server side, then as the client side"
bench_config 127.0.0.1:19243 "$MESHED_SERVER" > "$W/client.json"
# shellcheck disable=SC2046
proxy traffic-server "$W/server.json" 127.0.0.1:19240 127.0.0.1:19243 127.0.0.1:19291 $(tls_args "$W/certs" server)
# shellcheck disable=SC2046
proxy plain "$W/client.json" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191 $(tls_args "$W/certs" client)
load 127.0.0.1:19140
stop; stop
# shellcheck disable=SC2046
proxy plain "$W/server.json" 127.0.0.1:19240 127.0.0.1:19243 127.0.0.1:19291 $(tls_args "$W/certs" server)
# shellcheck disable=SC2046
proxy traffic-client "$W/client.json" 127.0.0.1:19140 127.0.0.1:19143 127.0.0.1:19191 $(tls_args "$W/certs" client)
load 127.0.0.1:19140
stop; stop

# Self cost (instructions) per function and phase: cost lines follow
# `fn=`; the line after `calls=` is a callee's inclusive cost, skipped.
costs() { # phase files...
  local phase=$1; shift
  # Callgrind marks recursion levels with a `'N` suffix: one function.
  sed -E "s/^(fn=.*)'[0-9]+\$/\\1/" "$@" | awk -v phase="$phase" '
    /^fn=/ { fn = substr($0, 4); sub(/\.llvm\.[0-9]+$/, "", fn); next }
    /^calls=/ { skip = 1; next }
    /^[0-9]/ { if (skip) { skip = 0; next } if (fn != "" && fn !~ /^0x/ && fn !~ /[ (]/) cost[fn] += $2; next }
    END { for (f in cost) print phase, cost[f], f }
  '
}
{
  costs start "$W"/*.cg "$W"/*.cg.1 "$W"/start-*.cg.2
  costs pod "$W"/pod/*.cg*
  costs idle "$W"/idle.cg.2
  costs traffic "$W"/traffic-*.cg.2
} > "$W/costs"
mkdir -p target/link-order && cp "$W/costs" target/link-order/costs # for a look at the profile
# Group 1: start only; 2: start and traffic, hottest first; 3: what only a
# pod's start-up (certify, config stream) runs; 4: idle; 5: traffic only,
# hottest first. A pod's proxy touches groups 1-4, one block; a proxy with a
# static config (the bench) skips group 3.
awk '
  { c[$1 SUBSEP $3] += $2; seen[$3] = 1 }
  END {
    for (f in seen) {
      s = ((("start" SUBSEP f) in c)); p = ((("pod" SUBSEP f) in c)); i = ((("idle" SUBSEP f) in c)); t = c["traffic" SUBSEP f] + 0
      g = s ? (t > 0 ? 2 : 1) : (p ? 3 : (i ? 4 : 5))
      print g, -t, f
    }
  }
' "$W/costs" | sort -k1,1n -k2,2n -k3,3 | cut -d' ' -f3 > "$W/order"
# libc picks its string functions' variants at start (ifunc) by CPU, and
# valgrind's emulated CPU lacks what real ones have (AVX-512: the `evex`
# variants): every variant of a family seen goes where the seen one is.
variant='^__[a-z0-9]+_(sse2|ssse3|sse4|avx|evex|erms)'
nm --defined-only "$full" | awk '{print $3}' | grep -E "$variant" > "$W/variants" || true
awk -v re="$variant" '
  function family(n) { sub(/^__/, "", n); sub(/_.*/, "", n); return n }
  FNR == NR { all[family($0)] = all[family($0)] " " $0; next }
  { print }
  $0 ~ re && !(family($0) in done) { done[family($0)] = 1; n = split(all[family($0)], v, " "); for (i = 1; i <= n; i++) print v[i] }
' "$W/variants" "$W/order" | awk '!seen[$0]++' > "$W/order.variants"
mv "$W/order.variants" "$W/order"
{
  echo "# Functions the proxy runs (mangled names), placed first in .text by"
  echo "# proxy/link/ordered-link.sh: start-up, idle, then the request path by"
  echo "# instructions spent. Generated by \`make link-order\`; do not edit."
  cat "$W/order"
} > proxy/link/order.txt
log "proxy/link/order.txt: $(grep -vc '^#' proxy/link/order.txt) functions"
