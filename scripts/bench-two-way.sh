#!/usr/bin/env bash
# Benchmarks two-way sync (release build, simulator on loopback, its default rate limit): a
# local change of an app-owned deal field (PATCH /api/objects/deals/{id}) until HubSpot holds
# it, CHANGES times, one every 1/RATE s (below the budget of 10 calls/s, so what is measured is
# the path, not the wait for a budget slot): p50, p99 and max. The simulator's records are
# watched through its control plane, so watching costs the app's budget nothing.
# Usage: scripts/bench-two-way.sh [CHANGES, default 300] [RATE per second, default 5]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
changes="${1:-300}" rate="${2:-5}"
sim_port=18490 app_port=18491
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim
work="$(mktemp -d /tmp/bench-two-way.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$sim_port/_sim/stats" >/dev/null && break; sleep 0.05; done
APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  ADMIN_TOKEN=bench DATABASE_URL="sqlite://$work/app.db" SYNC_SCHEDULE=off SYNC_OBJECTS=deals \
  RUST_LOG=warn ./target/release/app >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/ready" >/dev/null && break; sleep 0.05; done
python3 - "$sim_port" "$app_port" "$changes" "$rate" <<'PY'
import json, sys, time, urllib.request
sim, app, changes = f"http://127.0.0.1:{sys.argv[1]}", f"http://127.0.0.1:{sys.argv[2]}", int(sys.argv[3])
rate = float(sys.argv[4])
def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        text = r.read()
        return json.loads(text) if text else None
call("POST", f"{sim}/crm/properties/2026-03/deals",
     {"name": "commission_amount", "label": "Commission", "type": "number", "fieldType": "number"}, "pat-seed")
call("POST", f"{sim}/_sim/seed/deals", {"count": 50, "properties": {"dealname": "Deal {n}"}})
call("PUT", f"{app}/api/mappings/deals", {"mappings": [{"field": "commission", "hubspot": "commission_amount", "owner": "app"}]}, "bench")
call("POST", f"{app}/api/sync/run", None, "bench")
while True:
    page = call("GET", f"{app}/api/objects/deals?limit=200", None, "bench")
    if len(page["results"]) == 50:
        break
    time.sleep(0.05)
ids = [d["id"] for d in page["results"]]
def in_hubspot(deal, value):
    for r in call("GET", f"{sim}/_sim/records/deals")["results"]:
        if r["id"] == deal:
            return r["properties"].get("commission_amount") == value
    return False
latencies = []
time.sleep(10)  # the sync's calls leave the rolling window
start = time.perf_counter()
for i in range(changes):
    deal, value = ids[i % len(ids)], str(i + 1)
    time.sleep(max(0, start + i / rate - time.perf_counter()))
    t0 = time.perf_counter()
    call("PATCH", f"{app}/api/objects/deals/{deal}", {"fields": {"commission": value}}, "bench")
    while not in_hubspot(deal, value):
        time.sleep(0.002)
    latencies.append((time.perf_counter() - t0) * 1000)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
stats = call("GET", f"{app}/api/stats", None, "bench")
print(f"two-way: {changes} changes at {rate:g}/s, accepted → in HubSpot: p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {latencies[-1]:.1f} ms; "
      f"writes {stats['object_writes']}")
PY
