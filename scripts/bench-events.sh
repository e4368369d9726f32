#!/usr/bin/env bash
# Benchmarks lifecycle events (release build, SQLite, simulator on loopback):
# 1. Accepting: POST /api/events with BATCH events per request (validation, durable storage;
#    APP_CPUS, default 0, the cores the app may use;
#    the outbox worker delivering to the simulator meanwhile, at LIMIT), app on core 0, wrk -t1
#    -c$CONNS (default 8) and the simulator on core 1: events/s, p50 and p99 per request.
# 2. Delivering a backlog: USERS subjects' events stored with the worker off, then a process
#    with the worker on at HubSpot's private-app limit (100 calls / 10 s, 100 contacts a call):
#    contacts upserted per second against that ceiling of 1,000/s.
# Usage: scripts/bench-events.sh [seconds, default 10] [BATCH, default 100] [USERS, default 20000]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-10}" batch="${2:-100}" users="${3:-20000}" conns="${CONNS:-8}"
sim_port=18590 app_port=18591
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim
work="$(mktemp -d /tmp/bench-events.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_up() { for _ in $(seq 200); do curl -sf "$1" >/dev/null && return; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# HubSpot's limit for the worker meanwhile: its real one (100 calls / 10 s) by default;
# LIMIT=1000000000/10s lets it deliver flat out, a harsher case than HubSpot allows.
limit="${LIMIT:-100/10s}"
taskset -c 1 ./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" \
  --rate-limit "$limit" >/dev/null 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$sim_port/_sim/stats"
env APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  HUBSPOT_RATE_LIMIT="$limit" ADMIN_TOKEN=bench DATABASE_URL="sqlite://$work/accept.db" SYNC_SCHEDULE=off \
  OUTBOX_WORKER="${ACCEPT_WORKER:-true}" \
  RUST_LOG=warn taskset -c "${APP_CPUS:-0}" ./target/release/app >/dev/null 2>&1 &
app=$!
pids+=($app)
wait_up "http://127.0.0.1:$app_port/ready"
out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -s bench/events.lua "http://127.0.0.1:$app_port/api/events" -- "$batch" 10000 bench 2>&1)
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
echo "accept: $(awk -v r="$rps" -v b="$batch" 'BEGIN {printf "%.0f events/s", r*b}') ($batch per request, $rps req/s); $(echo "$out" | grep '^BENCH' | sed 's/^BENCH //')"
kill "$app"; wait "$app" 2>/dev/null || true

# 2. The backlog: USERS subjects, 3 events each, stored with no worker.
env APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  ADMIN_TOKEN=bench DATABASE_URL="sqlite://$work/backlog.db" SYNC_SCHEDULE=off OUTBOX_WORKER=false \
  RUST_LOG=warn ./target/release/app >/dev/null 2>&1 &
app=$!
pids+=($app)
wait_up "http://127.0.0.1:$app_port/ready"
python3 - "$app_port" "$users" <<'PY'
import json, sys, urllib.request
port, users = sys.argv[1], int(sys.argv[2])
events, n = [], 0
def flush():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/events", method="POST",
        data=json.dumps({"events": events}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer bench"})
    urllib.request.urlopen(req).read()
    events.clear()
for u in range(users):
    for kind, data in (("nova_earned", {"amount": 10}), ("nova_redeemed", {"amount": 3}), ("otp_verified", {})):
        n += 1
        events.append({"event_id": f"b{n}", "type": kind, "occurred_at": 1790000000000 + n,
                       "subject": {"external_id": f"user-{u}"}, "data": data})
        if len(events) == 500:
            flush()
if events:
    flush()
PY
kill "$app"; wait "$app" 2>/dev/null || true
# The simulator at HubSpot's private-app limit, as the app's own budget.
kill "${pids[0]}"
./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" >/dev/null 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$sim_port/_sim/stats"
curl -sf -X POST "http://127.0.0.1:$sim_port/crm/properties/2026-03/contacts" -H 'Authorization: Bearer pat-bench' \
  -H 'Content-Type: application/json' \
  -d '{"name":"product_user_id","label":"User id","type":"string","fieldType":"text","hasUniqueValue":true}' >/dev/null
t0=$(date +%s%N)
env APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  ADMIN_TOKEN=bench DATABASE_URL="sqlite://$work/backlog.db" SYNC_SCHEDULE=off \
  RUST_LOG=warn ./target/release/app >/dev/null 2>&1 &
app=$!
pids+=($app)
wait_up "http://127.0.0.1:$app_port/ready"
until [ "$(curl -sf -H 'Authorization: Bearer bench' "http://127.0.0.1:$app_port/api/stats" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["lifecycle"]["subjects_pending"])')" = 0 ]; do
  sleep 0.2
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
calls=$(curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s.get("requests", s))')
awk -v u="$users" -v ms="$ms" 'BEGIN {
  rate = u / (ms / 1000); ceiling = 1000
  printf "backlog: %d contacts in %.1f s = %.0f contacts/s, %.1f %% of the ceiling (100 calls/10 s x 100 contacts)\n", u, ms/1000, rate, 100*rate/ceiling }'
echo "simulator calls: $calls"
