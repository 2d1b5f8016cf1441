#!/usr/bin/env bash
# The fuel a rule plugin spends per 32 KiB of worst-case input (docs/BENCHMARKS.md,
# "Fuel"): starts `palisade serve screen` over a plugin folder (default var/plugins,
# every shipped rule) on a spare port, screens batches of 10,000-character messages
# of five kinds (keywords and URLs, capitals, URLs, look-alike Unicode, random
# bytes) and 300 short ones, then prints each heuristic's `fuel_peak` from
# GET /v1/admin/plugins. Needs scripts/setup run first; uses the local Redis
# (key prefix fuelpeak:).
#   benches/fuel-peak.sh [PLUGIN_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="${1:-var/plugins}"
port=18093
export REDIS_KEY_PREFIX=fuelpeak: PLUGIN_DIR="$dir" SCREENING_MODEL=none SCORING=weighted API_KEYS=k \
  ADMIN_API_KEYS=a SCREENING_ADDR="127.0.0.1:$port" PLUGIN_WATCH=false
target/release/palisade serve screen > /tmp/fuel-peak.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 300); do curl -sf "localhost:$port/ready" >/dev/null && break; sleep 1; done
python3 - "$port" <<'PY'
import json, random, string, sys, urllib.request
port = sys.argv[1]
def call(path, body=None, key="k"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"api-key": key, "content-type": "application/json"},
                                 data=None if body is None else json.dumps(body).encode())
    return json.load(urllib.request.urlopen(req))
words = "you idiot stupid kill die free money click http://x.co/a buy now hate trash !!! WHAT ARE YOU DOING $$$ @user #tag".split()
rnd = random.Random(1)
kinds = {
    "words": lambda: " ".join(rnd.choice(words) for _ in range(2000))[:10000],
    "caps": lambda: ("AAAA BBBB!!! " * 1000)[:10000],
    "urls": lambda: ("http://a.b/c?d=e " * 700)[:10000],
    "unicode": lambda: ("ｙｏｕ ｉｄｉｏｔ ☠️ 𝓴𝓲𝓵𝓵 " * 400)[:10000],
    "random": lambda: "".join(rnd.choice(string.printable) for _ in range(10000)),
    "short": lambda: "you idiot",
}
for kind, text in kinds.items():
    n = 300 if kind == "short" else 3
    events = [{"event_id": f"{kind}-{i}", "event_type": "message", "platform": "web", "user_id": "u", "content": text()} for i in range(n)]
    call("/v1/risk/screen-batch", {"events": events})
plugins = call("/v1/admin/plugins", key="a")["plugins"]
for p in sorted(plugins, key=lambda p: -(p.get("fuel_peak") or 0)):
    if p["kind"] == "heuristic":
        print(f'{p["name"]:<22} {p["language"]:<10} fuel_peak per 32 KiB {p["fuel_peak"]:>13,}  errors {p["errors"]}')
PY
