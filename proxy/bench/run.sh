#!/usr/bin/env bash
# `make bench`: HTTP/1.1 latency and footprint of the proxy on loopback.
# Scenarios, each at fixed rates (open loop, no coordinated omission) and at
# max throughput: direct to the upstream; through one proxy (outbound); through
# two proxies (client outbound → server inbound) in plaintext and with mesh
# mTLS (static certificates from `meshlet-loadgen certs`, both proxies
# permissive so only TLS differs); through nginx when installed.
# Prints a table and writes target/bench/proxy.json.
# Knobs: BENCH_DURATION (s, default 30), BENCH_RATES (default "1000 5000"),
# BENCH_CONNECTIONS (default 16), BENCH_MAX (1 = add a max-throughput run),
# BENCH_FAIL_ON_ERRORS (set: exit 1 when any run had an error; CI sets it),
# BENCH_PER_CORE_ROUNDS (default 8: alternating 5 s max-rate rounds of one
# proxy and nginx for the throughput-per-core comparison; with BENCH_MAX=1).
# The budgets section at the end compares the figures to the proxy budgets.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${BENCH_DURATION:-30}
RATES=${BENCH_RATES:-"1000 5000"}
CONNS=${BENCH_CONNECTIONS:-16}
MAX=${BENCH_MAX:-1}
OUT=target/bench
mkdir -p "$OUT"
: > "$OUT/runs.jsonl"

# The binary measured is the one the proxy image ships: the static release
# build `make images` makes (same invocation, same target dir).
source e2e/kind/lib.sh
static_build
BIN=$STATIC_BIN_DIR

UPSTREAM=127.0.0.1:18080
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'cleanup; [ -n "${UPSTREAM_PID:-}" ] && kill "$UPSTREAM_PID" 2>/dev/null || true' EXIT

source proxy/bench/harness.sh
bench_config "$UPSTREAM" > "$OUT/one-proxy.json"
bench_config 127.0.0.1:18243 > "$OUT/two-proxies-plaintext.json"
bench_config 127.0.0.1:18243 "$MESHED_SERVER" > "$OUT/two-proxies-mtls.json"
# The server proxy admits every client (no TrafficTargets here), so the two
# two-proxy scenarios differ only by TLS.
echo '{"inbound":{"permissive":true}}' > "$OUT/server.json"
# Mesh certificates as the operator's CA would issue them.
"$BIN/meshlet-loadgen" certs --out "$OUT/certs"

start_proxy() { # name config out in admin [inbound-fallback-port] [more flags...]
  local extra=()
  [ -n "${6:-}" ] && extra=(--inbound-fallback-port "$6")
  extra+=("${@:7}")
  # The default log level, as injected pods run: idle RSS includes what its
  # start-up lines touch.
  "$BIN/meshlet-proxy" run --config "$2" --outbound-addr "$3" --inbound-addr "$4" \
    --admin-addr "$5" "${extra[@]}" > "$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  wait_port "$5"
}

start_nginx() { # sets NGINX_WORKER
  mkdir -p "$OUT/nginx"
  cat > "$OUT/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $PWD/$OUT/nginx/nginx.pid;
error_log $PWD/$OUT/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $PWD/$OUT/nginx; proxy_temp_path $PWD/$OUT/nginx;
  fastcgi_temp_path $PWD/$OUT/nginx; uwsgi_temp_path $PWD/$OUT/nginx; scgi_temp_path $PWD/$OUT/nginx;
  upstream app { server $UPSTREAM; keepalive 32; }
  server { listen 127.0.0.1:18380; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
  nginx -c "$PWD/$OUT/nginx/nginx.conf" &
  PIDS+=($!)
  wait_port 127.0.0.1:18380
  NGINX_WORKER=$(pgrep -P "${PIDS[0]}" | head -n1 || true)
  NGINX_WORKER=${NGINX_WORKER:-${PIDS[0]}}
}

"$BIN/meshlet-loadgen" serve --addr "$UPSTREAM" &
UPSTREAM_PID=$!
wait_port "$UPSTREAM"

run() { # scenario rate target pids...
  local scenario=$1 rate=$2 target=$3; shift 3
  local pids; pids=$(IFS=,; echo "$*")
  "$BIN/meshlet-loadgen" load --scenario "$scenario" --rate "$rate" --duration "$DURATION" \
    --connections "$CONNS" --target "$target" ${pids:+--pids "$pids"} >> "$OUT/runs.jsonl"
  tail -n1 "$OUT/runs.jsonl"
}

rates=($RATES)
[ "$MAX" = 1 ] && rates+=(0)
IDLE_KB=""
IDLE_RSS_KB=""
for rate in "${rates[@]}"; do
  run direct "$rate" "$UPSTREAM"

  # Idle RSS counts the binary's resident pages, and how many neighbours a
  # page fault maps follows how the file sits in the page cache: after CI's
  # image builds the same file measured 3.4-3.6 MB idle against 2.5 MB.
  # Dropping the file's cached pages first makes the figure the code's.
  if [ -z "$IDLE_KB" ]; then
    dd if="$BIN/meshlet-proxy" iflag=nocache count=0 status=none || true
  fi
  # Fresh proxies per run, so peak RSS belongs to this rate.
  start_proxy one "$OUT/one-proxy.json" 127.0.0.1:18140 127.0.0.1:18143 127.0.0.1:18191
  if [ -z "$IDLE_KB" ]; then
    IDLE_KB=$(awk '/VmRSS|RssAnon/{printf "%s %s KB  ", $1, $2}' /proc/${PIDS[0]}/status)
    IDLE_RSS_KB=$(awk '/VmRSS/{print $2}' /proc/${PIDS[0]}/status)
  fi
  run one-proxy "$rate" 127.0.0.1:18140 "${PIDS[@]}"
  cleanup

  start_proxy server "$OUT/server.json" 127.0.0.1:18240 127.0.0.1:18243 127.0.0.1:18291 18080
  start_proxy client "$OUT/two-proxies-plaintext.json" 127.0.0.1:18140 127.0.0.1:18143 127.0.0.1:18191
  run two-proxies-plaintext "$rate" 127.0.0.1:18140 "${PIDS[@]}"
  cleanup

  # shellcheck disable=SC2046 # tls_args yields separate flags
  start_proxy server "$OUT/server.json" 127.0.0.1:18240 127.0.0.1:18243 127.0.0.1:18291 18080 $(tls_args "$OUT/certs" server)
  # shellcheck disable=SC2046
  start_proxy client "$OUT/two-proxies-mtls.json" 127.0.0.1:18140 127.0.0.1:18143 127.0.0.1:18191 "" $(tls_args "$OUT/certs" client)
  run two-proxies-mtls "$rate" 127.0.0.1:18140 "${PIDS[@]}"
  cleanup

  if command -v nginx >/dev/null; then
    start_nginx
    # The worker process does the proxying.
    run nginx "$rate" 127.0.0.1:18380 "$NGINX_WORKER"
    cleanup
  fi
done

# Throughput per core, proxy vs nginx: the machine's speed drifts by tens
# of percent over a minute here, so one run of each, a minute apart, says
# little. Short max-rate rounds alternate between the two instead, and the
# report compares their totals (requests per CPU second).
PER_CORE=()
if [ "$MAX" = 1 ] && command -v nginx >/dev/null; then
  ROUNDS=${BENCH_PER_CORE_ROUNDS:-8}
  : > "$OUT/per-core.jsonl"
  for _ in $(seq 1 "$ROUNDS"); do
    start_proxy one "$OUT/one-proxy.json" 127.0.0.1:18140 127.0.0.1:18143 127.0.0.1:18191
    "$BIN/meshlet-loadgen" load --scenario one-proxy --rate 0 --duration 5 --connections "$CONNS" \
      --target 127.0.0.1:18140 --pids "${PIDS[0]}" >> "$OUT/per-core.jsonl"
    cleanup
    start_nginx
    "$BIN/meshlet-loadgen" load --scenario nginx --rate 0 --duration 5 --connections "$CONNS" \
      --target 127.0.0.1:18380 --pids "$NGINX_WORKER" >> "$OUT/per-core.jsonl"
    cleanup
  done
  PER_CORE=(--per-core "$OUT/per-core.jsonl")
fi
kill "$UPSTREAM_PID" 2>/dev/null || true

echo
echo "proxy idle: ${IDLE_KB}(RSS counts the static binary's resident pages, file-backed and shared by every proxy on a node; RssAnon is private memory)"
"$BIN/meshlet-loadgen" report --input "$OUT/runs.jsonl" --output "$OUT/proxy.json" \
  ${IDLE_RSS_KB:+--idle-rss-kb "$IDLE_RSS_KB"} ${BENCH_FAIL_ON_ERRORS:+--fail-on-errors} "${PER_CORE[@]}"
