#!/usr/bin/env bash
# Recovery after a Redis stall (docs/BENCHMARKS.md): a Redis of its own on
# 16390, ingest on 18201 (no backpressure: no consumer runs), the batch load
# generator for 16 s, and a prober posting single events from 2 threads; Redis is
# frozen (SIGSTOP) at 4 s and thawed (SIGCONT) at 8 s. Prints what the prober saw
# after the thaw. Needs target/release/palisade (scripts/setup).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
redis-server --port 16390 --save '' --appendonly no >/dev/null &
redis_pid=$!
REDIS_URL=redis://127.0.0.1:16390 INGEST_ADDR=127.0.0.1:18201 API_KEYS=k PLUGIN_DIR=var/plugins PLUGIN_WATCH=false \
  BACKPRESSURE_ENABLED=false LOG_FORMAT=text target/release/palisade serve ingest >/dev/null 2>&1 &
ingest_pid=$!
trap 'kill -CONT $redis_pid 2>/dev/null; kill $ingest_pid $redis_pid 2>/dev/null' EXIT
until curl -sf 127.0.0.1:18201/ready >/dev/null; do sleep 0.2; done
REDIS_URL=redis://127.0.0.1:16390 target/release/palisade load --url http://127.0.0.1:18201 --api-key k \
  --duration 16 --no-stream-check >/tmp/redis-stall-load.log 2>&1 &
load_pid=$!
python3 - "$redis_pid" <<'PY'
import http.client, json, os, signal, sys, threading, time
redis_pid = int(sys.argv[1]); results = []; lock = threading.Lock(); start = time.time()
def prober(n):
    conn, i = http.client.HTTPConnection("127.0.0.1", 18201, timeout=5), 0
    while time.time() < start + 16:
        i += 1; sent = time.time() - start
        body = json.dumps({"event_id": f"p-{n}-{i}", "event_type": "message", "platform": "web", "user_id": f"p{n}", "content": f"probe {n} {i}"})
        try:
            conn.request("POST", "/v1/events/ingest", body, {"content-type": "application/json", "api-key": "k"})
            r = conn.getresponse(); r.read(); status = r.status
        except OSError:
            status = 0; conn = http.client.HTTPConnection("127.0.0.1", 18201, timeout=5)
        with lock: results.append((sent, time.time() - start, status))
threads = [threading.Thread(target=prober, args=(n,)) for n in range(2)]
[t.start() for t in threads]
time.sleep(4); os.kill(redis_pid, signal.SIGSTOP); time.sleep(4); os.kill(redis_pid, signal.SIGCONT); thawed = time.time() - start
[t.join() for t in threads]
after = [r for r in results if r[0] >= thawed]
refused = [r for r in after if r[2] != 202]
first = min((r[1] for r in after if r[2] == 202), default=None)
print(f"sent after the thaw and refused: {len(refused)}" + (f", the last sent at +{max(r[0] for r in refused) - thawed:.2f} s" if refused else ""))
print(f"first 202 after the thaw: +{first - thawed:.2f} s" if first else "no 202 after the thaw")
PY
wait $load_pid
grep -E "events/s|statuses" /tmp/redis-stall-load.log
