#!/usr/bin/env bash
# Does a bigger producer flush help when events spread over shards? Single-event
# ingest (`palisade load --mode single --concurrency 400`: enough requests in
# flight to fill a flush of 300) against `serve ingest` on a local cluster of 3
# masters with STREAM_SHARDS=3: BATCH_SIZE 100 (each flush is three script calls
# of ~33 events) against 300 (~100 each), interleaved, twice.
# Needs scripts/setup (target/release/palisade, var/plugins).
# Usage: benches/cluster-batch-size.sh [EVENTS]        (default 60000 per run)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
events="${1:-60000}"
bin="$root/target/release/palisade"
dir="$(mktemp -d)"
ports=(27201 27202 27203)
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
for p in "${ports[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --logfile "$dir/$p.log" \
    --daemonize yes --cluster-enabled yes --cluster-config-file "nodes-$p.conf"
done
sleep 0.5
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-yes >/dev/null
until redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
export API_KEYS=bench-key MAX_QUEUE_DEPTH=100000000 PLUGIN_DIR=var/plugins PLUGIN_WATCH=false
export SCREENING_MODEL=none CLASSIFIER_WATCH=false RUST_LOG=warn STREAM_SHARDS=3
REDIS_CLUSTER_NODES="$(printf '127.0.0.1:%s,' "${ports[@]}")"
export REDIS_CLUSTER_NODES="${REDIS_CLUSTER_NODES%,}"
echo "$(nproc) cores; $events single events per run; $(redis-server --version | cut -d' ' -f3)"
n=0
for _ in 1 2; do
  for size in 100 300; do
    n=$((n + 1))
    export BATCH_SIZE="$size" REDIS_KEY_PREFIX="bs$n:"
    "$bin" serve ingest >"$dir/ingest.log" 2>&1 &
    pid=$!
    until curl -sf http://127.0.0.1:8001/health >/dev/null; do sleep 0.2; done
    out="$("$bin" load --mode single --concurrency 400 --count "$events" 2>&1)" || { echo "$out"; exit 1; }
    echo "BATCH_SIZE=$size  $(grep -E 'events/s|p99' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
