#!/usr/bin/env bash
# Benchmarks the durable sync paths of the app (release build) against the simulator on loopback:
#   1. outbox: N contacts posted to /api/contacts, sent through batch upsert under the
#      simulator's DEFAULT limit (100 requests/10 s: the ceiling is 1,000 contacts/s): contacts/s,
#      its share of the ceiling, and the 429s HubSpot answered;
#   2. webhooks: signed v3 deliveries (10 events each, 10 % repeated event ids) to
#      /webhooks/hubspot: events/s accepted and latency p50/p99;
#   3. phone lookups answered from the cache: requests/s and latency (wrk).
# Usage: scripts/bench-sync.sh [CONTACTS, default 30000] [seconds per load run, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
contacts="${1:-30000}" secs="${2:-10}"
sim_port=18290 app_port=18291
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim --example webhook_load
work="$(mktemp -d /tmp/bench-sync.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" >/dev/null 2>&1 &
pids+=($!)
APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  ADMIN_TOKEN=bench HUBSPOT_CLIENT_SECRET=bench-secret DATABASE_URL="sqlite://$work/app.db" \
  SYNC_SCHEDULE=off RUST_LOG=warn ./target/release/app >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/ready" >/dev/null && break; sleep 0.05; done
auth=(-H "Authorization: Bearer bench" -H "Content-Type: application/json")

# 1. Outbox.
python3 - "$contacts" "$work" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
for b in range(0, n, 1000):
    with open(f"{work}/batch-{b // 1000:04d}.json", "w") as f:
        json.dump({"contacts": [{"email": f"bench{i}@example.com", "firstname": "Bench"} for i in range(b, min(b + 1000, n))]}, f)
PY
t0=$(date +%s.%N)
for f in "$work"/batch-*.json; do
  curl -sf "${auth[@]}" -X POST "http://127.0.0.1:$app_port/api/contacts" --data-binary "@$f" >/dev/null
done
t_enqueued=$(date +%s.%N)
# The first rolling window lets 100 calls (10,000 contacts) through at once; the steady rate is
# what follows, measured from the moment 10,000 were sent.
t_burst="" sent_burst=0
while :; do
  sent=$(curl -sf "${auth[@]}" "http://127.0.0.1:$app_port/api/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox"]["sent"])')
  if [ -z "$t_burst" ] && [ "$sent" -ge 10000 ]; then t_burst=$(date +%s.%N) sent_burst=$sent; fi
  [ "$sent" -ge "$contacts" ] && break
  sleep 0.05
done
t1=$(date +%s.%N)
s429=$(curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c '
import json,sys
s=json.load(sys.stdin)
print(sum(r["count"] for r in s["byRoute"] if r["status"]==429))')
calls=$(curl -sf "http://127.0.0.1:$sim_port/_sim/stats" | python3 -c '
import json,sys
s=json.load(sys.stdin)
print(sum(r["count"] for r in s["byRoute"] if r["route"].endswith("/batch/{action}") and r["status"]==200))')
awk -v n="$contacts" -v t0="$t0" -v te="$t_enqueued" -v t1="$t1" -v c="$calls" -v r="$s429" 'BEGIN {
  d = t1 - t0; rate = n / d;
  printf "outbox: %d contacts enqueued in %.2fs, all sent after %.2fs: %.0f contacts/s = %.1f %% of the 1,000/s ceiling; %d batch calls; 429s from HubSpot: %d\n", n, te - t0, d, rate, rate / 10, c, r }'
if [ -n "$t_burst" ] && [ "$contacts" -gt "$sent_burst" ]; then
  awk -v n="$contacts" -v sb="$sent_burst" -v tb="$t_burst" -v t1="$t1" 'BEGIN {
    rate = (n - sb) / (t1 - tb);
    printf "outbox steady state (after the first window'"'"'s 10,000): %d contacts in %.2fs = %.0f contacts/s = %.1f %% of the ceiling\n", n - sb, t1 - tb, rate, rate / 10 }'
fi

# 2. Webhooks.
./target/release/examples/webhook_load "http://127.0.0.1:$app_port/webhooks/hubspot" bench-secret 16 "$secs" 10 0.1

# 3. Phone lookups from the cache.
curl -sf -X POST "http://127.0.0.1:$sim_port/_sim/seed/contacts" -H 'Content-Type: application/json' \
  -d '{"count": 1, "properties": {"email": "lookup@example.com", "phone": "+14155550100"}}' >/dev/null
curl -sf "${auth[@]}" "http://127.0.0.1:$app_port/api/contacts/lookup?phone=%2B14155550100" >/dev/null   # fills the cache
cat > "$work/lat.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("lookups: %.0f req/s, errors %d, non-2xx %d, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests / (summary.duration / 1e6), summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
wrk -t2 -c32 -d"${secs}s" -H "Authorization: Bearer bench" -s "$work/lat.lua" \
  "http://127.0.0.1:$app_port/api/contacts/lookup?phone=%2B14155550100" | tail -1
curl -sf "${auth[@]}" "http://127.0.0.1:$app_port/api/stats" | python3 -c '
import json,sys; s=json.load(sys.stdin); print("cache:", s["cache"])'
