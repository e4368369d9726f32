#!/usr/bin/env bash
# The main job, end to end, as far as the workspace goes today: build, start the HubSpot
# simulator, and exercise it with real HTTP requests the way the app will (account check,
# contact upsert by email, find by email), then stop it.
# (Later issues extend this to a blue-green deploy of the app behind nginx.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
port="${SIM_PORT:-8090}"
cargo build --release -q -p hubspot-sim
./target/release/hubspot-sim --listen "127.0.0.1:$port" >/tmp/hubspot-sim.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_sim/health" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer pat-na1-quickstart" -H "Content-Type: application/json")
step() { printf '\n== %s\n' "$1"; }

step "GET /account-info/v3/details (token check)"
curl -sS -f "${auth[@]}" "$base/account-info/v3/details"; echo
step "POST /crm/v3/objects/contacts/batch/upsert (idProperty=email)"
curl -sS -f "${auth[@]}" -X POST "$base/crm/v3/objects/contacts/batch/upsert" \
  -d '{"inputs":[{"id":"ada@example.com","idProperty":"email","properties":{"firstname":"Ada","lastname":"Lovelace"}}]}'; echo
step "GET /crm/v3/objects/contacts/ada@example.com?idProperty=email"
curl -sS -f "${auth[@]}" "$base/crm/v3/objects/contacts/ada%40example.com?idProperty=email"; echo
step "POST /crm/v3/objects/contacts (same email again: HubSpot answers 409)"
curl -sS "${auth[@]}" -X POST "$base/crm/v3/objects/contacts" -w '\nHTTP %{http_code}\n' \
  -d '{"properties":{"email":"ada@example.com"}}'
step "request counts seen by the simulator"
curl -sS -f "$base/_sim/stats"; echo
echo
echo "quickstart: ok"
