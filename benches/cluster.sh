#!/usr/bin/env bash
# Ingest and screening rates by Redis layout, on this machine: one Redis with one
# shard, then a local cluster of 3 masters (a replica each) with 1 and 3 shards, and
# 3 shards with REDIS_WAIT_REPLICAS=1. For each: `palisade load` (batch, 500 per
# request, 8 in flight) against `serve ingest`, the Redis CPU per event from INFO
# commandstats summed over the masters, then `serve screen` (rules and classifier,
# SCREENING_MODEL=none) draining what was ingested.
#
# Then a failover under load, without and with REDIS_WAIT_REPLICAS=1: the master of
# shard 0 is killed 2 s into an 8-second load; the load generator compares the
# events answered 202 with the streams' growth (a shortfall is answered events lost).
#
# Everything shares this machine's cores: the figures show what the layout costs,
# not what more machines would add (docs/BENCHMARKS.md projects that).
# Needs scripts/setup (target/release/palisade, var/plugins, var/classifier).
# Usage: benches/cluster.sh [EVENTS]        (default 200000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
events="${1:-200000}"
bin="$root/target/release/palisade"
dir="$(mktemp -d)"
ports=(27101 27102 27103 27104 27105 27106)
single_port=27100
export API_KEYS=bench-key MAX_QUEUE_DEPTH=100000000 PLUGIN_DIR=var/plugins PLUGIN_WATCH=false
export SCREENING_MODEL=none CLASSIFIER_WATCH=false RUST_LOG=warn

cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  for p in "$single_port" "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

node() { # port, extra args
  local p="$1"; shift
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/$p.log" --daemonize yes "$@"
}
node "$single_port"
for p in "${ports[@]}"; do
  node "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 2000
done
sleep 0.5
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes >/dev/null
until redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
nodes="$(printf '127.0.0.1:%s,' "${ports[@]}")"
nodes="${nodes%,}"

masters() { # ports of the masters serving data in this case
  if [[ -n "${REDIS_CLUSTER_NODES:-}" ]]; then
    redis-cli -p "${ports[0]}" cluster nodes | awk '$3 ~ /master/ {split($2, a, "[:@]"); print a[2]}'
  else
    echo "$single_port"
  fi
}

usec_total() { # summed command CPU (µs) over the masters
  local sum=0 p u
  for p in $(masters); do
    u="$(redis-cli -p "$p" info commandstats | awk -F'usec=' '/^cmdstat_/ {split($2, a, ","); s += a[1]} END {print s + 0}')"
    sum=$((sum + ${u%.*}))
  done
  echo "$sum"
}

wait_http() { until curl -sf "$1/health" >/dev/null; do sleep 0.2; done; }

run_case() { # label, env assignments
  local label="$1"; shift
  (
    export "$@"
    for p in $(masters); do redis-cli -p "$p" config resetstat >/dev/null; done
    "$bin" serve ingest >"$dir/ingest.log" 2>&1 &
    local ingest=$!
    wait_http http://127.0.0.1:8001
    local out
    out="$("$bin" load --mode batch --batch-size 500 --concurrency 8 --count "$events" 2>&1)" || { echo "$out"; exit 1; }
    local rate usec
    rate="$(grep -o '= [0-9]* events/s' <<<"$out" | tr -dc 0-9)"
    usec="$(usec_total)"
    kill "$ingest"; wait "$ingest" 2>/dev/null || true
    # Screening: drain what was ingested.
    local started screened=0
    started="$(date +%s.%N)"
    "$bin" serve screen >"$dir/screen.log" 2>&1 &
    local screen=$!
    wait_http http://127.0.0.1:8002
    while ((screened < events)); do
      sleep 0.2
      screened="$(curl -s -H 'api-key: bench-key' http://127.0.0.1:8002/v1/metrics | grep -o '"events_screened":[0-9]*' | tr -dc 0-9)"
    done
    local took
    took="$(echo "$(date +%s.%N) - $started" | bc)"
    kill "$screen"; wait "$screen" 2>/dev/null || true
    printf '%-34s ingest %7s events/s  Redis %5.1f µs/event  screening %6.0f events/s (%s events in %.1f s, start included)\n' \
      "$label" "$rate" "$(echo "$usec / $events" | bc -l)" "$(echo "$events / $took" | bc -l)" "$events" "$took"
  )
}

echo "$(nproc) cores; $events events per case; $(redis-server --version | cut -d' ' -f3)"
run_case "one Redis, 1 shard" REDIS_URL=redis://127.0.0.1:$single_port REDIS_KEY_PREFIX=b1:
run_case "cluster, 1 shard" REDIS_CLUSTER_NODES="$nodes" REDIS_KEY_PREFIX=b2:
run_case "cluster, 3 shards" REDIS_CLUSTER_NODES="$nodes" STREAM_SHARDS=3 REDIS_KEY_PREFIX=b3:
run_case "cluster, 3 shards, WAIT 1 replica" REDIS_CLUSTER_NODES="$nodes" STREAM_SHARDS=3 REDIS_WAIT_REPLICAS=1 REDIS_KEY_PREFIX=b4:

failover_case() { # label, env assignments
  local label="$1"; shift
  (
    export "$@"
    "$bin" serve ingest >"$dir/ingest.log" 2>&1 &
    local ingest=$!
    wait_http http://127.0.0.1:8001
    local victim
    victim="$(redis-cli -p "${ports[0]}" cluster nodes | awk '$3 ~ /master/ && $0 ~ / 0-/ {split($2, a, "[:@]"); print a[2]}')"
    local pid
    pid="$(redis-cli -p "$victim" info server | awk -F: '/^process_id/ {print $2}' | tr -d '\r')"
    (sleep 2; kill -9 "$pid") & # a crash: no shutdown handshake with the replica
    local out
    out="$("$bin" load --mode batch --batch-size 100 --concurrency 8 --duration 8 2>&1 || true)"
    kill "$ingest"; wait "$ingest" 2>/dev/null || true
    echo "$label (killed :$victim):"
    grep -E '^(outcomes|statuses|stream):' <<<"$out" | sed 's/^/  /'
    # The killed node comes back as a replica of the master that replaced it.
    node "$victim" --cluster-enabled yes --cluster-config-file "nodes-$victim.conf" --cluster-node-timeout 2000
    until redis-cli -p "$victim" info replication | grep -q 'master_link_status:up'; do sleep 0.2; done
  )
}

failover_case "failover, 3 shards, no WAIT" REDIS_CLUSTER_NODES="$nodes" STREAM_SHARDS=3 REDIS_KEY_PREFIX=f1:
failover_case "failover, 3 shards, WAIT 1 replica" REDIS_CLUSTER_NODES="$nodes" STREAM_SHARDS=3 REDIS_WAIT_REPLICAS=1 REDIS_KEY_PREFIX=f2:
