#!/usr/bin/env bash
# Benchmarks the first CRM sync (release build, simulator on loopback, its DEFAULT rate limit:
# 100 requests/10 s per token): DEALS deals, each with a primary company (DEALS/2 companies)
# and two contacts (DEALS contacts), and two line items per deal, all associated. The app syncs
# contacts, companies, deals and line items with their associations (SYNC_OBJECTS); the script
# prints the wall time of the first sync, the calls it used by route, and the records and edges
# it stored. The records and edges are seeded under another token, so only the app's calls count
# against its budget.
# With MODE `deals`, only deals are seeded and synced (no associations to read): the listing's
# records/s against the budget's ceiling (100 calls/10 s × 100 records a page = 1,000 records/s).
# Usage: scripts/bench-crm.sh [DEALS, default 1000] [MODE: full (default) | deals]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deals="${1:-1000}" mode="${2:-full}"
objects=contacts,companies,deals,line_items
[ "$mode" = deals ] && objects=deals
sim_port=18390 app_port=18391
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim
work="$(mktemp -d /tmp/bench-crm.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$sim_port/_sim/stats" >/dev/null && break; sleep 0.05; done
sim="http://127.0.0.1:$sim_port"

# Seed: records without a rate limit (/_sim/seed), edges through the associations API (1,000
# inputs a call) as another private app.
python3 - "$sim" "$deals" "$mode" <<'PY'
import json, sys, urllib.request
sim, deals, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def call(path, body, token=None):
    req = urllib.request.Request(sim + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.load(r)
def seed(object_type, count, properties):
    r = call(f"/_sim/seed/{object_type}", {"count": count, "properties": properties})
    return list(range(r["firstId"], r["lastId"] + 1))
if mode == "deals":
    for start in range(0, deals, 100_000):
        seed("deals", min(100_000, deals - start), {"dealname": "Deal {n}", "amount": "1000", "dealstage": "closedwon"})
    print(f"seeded: {deals} deals")
    sys.exit(0)
companies = seed("companies", max(deals // 2, 1), {"name": "Company {n}", "domain": "c{n}.test"})
contacts = seed("contacts", deals, {"email": "buyer{n}@bench.test", "firstname": "Buyer"})
deal_ids = seed("deals", deals, {"dealname": "Deal {n}", "amount": "1000", "dealstage": "closedwon"})
items = seed("line_items", deals * 2, {"name": "Seat {n}", "quantity": "1", "price": "500"})
def associate(from_type, to_type, pairs):
    for i in range(0, len(pairs), 1000):
        inputs = [{"from": {"id": str(f)}, "to": {"id": str(t)}} for f, t in pairs[i:i + 1000]]
        call(f"/crm/associations/2026-03/{from_type}/{to_type}/batch/associate/default", {"inputs": inputs}, "pat-seed")
associate("deals", "companies", [(d, companies[i // 2 % len(companies)]) for i, d in enumerate(deal_ids)])
associate("deals", "contacts", [(d, contacts[(i + k) % len(contacts)]) for i, d in enumerate(deal_ids) for k in (0, 1)])
associate("contacts", "companies", [(c, companies[i // 2 % len(companies)]) for i, c in enumerate(contacts)])
associate("line_items", "deals", [(li, deal_ids[i // 2]) for i, li in enumerate(items)])
print(f"seeded: {len(deal_ids)} deals, {len(companies)} companies, {len(contacts)} contacts, {len(items)} line items, "
      f"{len(deal_ids) * 3 + len(contacts) + len(items)} associations")
PY
curl -sf "$sim/_sim/stats" > "$work/before.json"

APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="$sim" \
  ADMIN_TOKEN=bench DATABASE_URL="sqlite://$work/app.db" SYNC_SCHEDULE=off \
  SYNC_OBJECTS="$objects" RUST_LOG=warn ./target/release/app >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/ready" >/dev/null && break; sleep 0.05; done
auth=(-H "Authorization: Bearer bench")
t0=$(date +%s.%N)
curl -sf "${auth[@]}" -X POST "http://127.0.0.1:$app_port/api/sync/run" >/dev/null
while :; do
  done_=$(curl -sf "${auth[@]}" "http://127.0.0.1:$app_port/api/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)["syncs"]
print("yes" if s and all(x["last_success"] and x["status"] == "idle" for x in s) else ("failed" if any(x["status"] == "error" for x in s) else "no"))')
  [ "$done_" = yes ] && break
  [ "$done_" = failed ] && { curl -sf "${auth[@]}" "http://127.0.0.1:$app_port/api/stats"; exit 1; }
  sleep 0.05
done
t1=$(date +%s.%N)
curl -sf "$sim/_sim/stats" > "$work/after.json"
python3 - "$work" "$t0" "$t1" "$app_port" <<'PY'
import json, sys, urllib.request
work, t0, t1, port = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def counts(name):
    s = json.load(open(f"{work}/{name}.json"))
    out = {}
    for r in s["byRoute"]:
        out[(r["route"], r["status"])] = out.get((r["route"], r["status"]), 0) + r["count"]
    return out
before, after = counts("before"), counts("after")
used = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > 0}
total = sum(used.values())
wall = t1 - t0
print(f"first sync: {wall:.2f} s wall, {total} HubSpot calls ({total / wall:.1f}/s; the budget: 100 per rolling 10 s)")
for (route, status), n in sorted(used.items()):
    print(f"  {n:5d}  {status}  {route}")
def get(path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer bench"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
stats = get("/api/stats")
records = 0
for s in stats["syncs"]:
    records += s["synced_last_run"]
    print(f"  {s['object_type']:>10}: {s['synced_last_run']} records")
if wall > 10:
    # Past the first window's burst, the budget's ceiling is 1,000 records/s (10 calls/s, 100 a page).
    print(f"  {records / wall:.0f} records/s = {records / wall / 10:.1f} % of the 1,000 records/s ceiling")
deal = get("/api/objects/deals?limit=1")["results"][0]
one = get(f"/api/objects/deals/{deal['id']}")
print("  one deal's associations:", {k: len(v) for k, v in one["associations"].items()})
PY
