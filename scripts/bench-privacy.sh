#!/usr/bin/env bash
# Benchmarks the support desk's flows (release build, SQLite, simulator on loopback with
# HubSpot's real search limit of 5 requests a second per token):
# 1. Contact search: 20 support users typing names (prefixes, repeats, a last-name prefix),
#    each keystroke a POST /api/contacts/search: p50/p99 and the share answered from the app's
#    short-lived search cache (the old product's goals: p99 < 500 ms, > 80 % cached). Twice:
#    typing at 150 ms a keystroke, then as a burst with no typing at all (a stress figure).
# 2. Phone lookups from the encrypted cache: 500 seeded numbers warmed once, then 16 callers
#    for 10 s: lookups/s, p50/p99. APP_BIN=path runs part 2 against another build (the release
#    before the encrypted cache, for the comparison; it has no search, so part 1 is skipped).
# Contacts: 20 first names × 50 (lastname L0…L49), and 1,500 with phones (+1 202 555 1000-1499 looked up).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sim_port=18690 app_port=18691
cd "$root"
cargo build --release -q -p app -p hubspot-sim --bin app --bin hubspot-sim --example privacy_load
app_bin="${APP_BIN:-./target/release/app}"
work="$(mktemp -d /tmp/bench-privacy.XXXXXX)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_up() { for _ in $(seq 200); do curl -sf "$1" >/dev/null && return; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

taskset -c 1 ./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" --search-lag 0s >/dev/null 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$sim_port/_sim/stats"
seed() { curl -sf -X POST "http://127.0.0.1:$sim_port/_sim/seed/contacts" -H 'content-type: application/json' -d "$1" >/dev/null; }
for name in Ada Alan Grace Linus Ken Barbara Dennis Margaret Edsger Donald Frances John Radia Tim Katherine Guido Bjarne Anita Niklaus Hedy; do
  seed "{\"count\": 50, \"properties\": {\"firstname\": \"$name\", \"lastname\": \"L{n}\", \"email\": \"${name,,}{n}@example.com\"}}"
done
# Phones +1202555 followed by n: the load looks up n = 1000…1499 (valid numbers).
seed '{"count": 1500, "properties": {"firstname": "Phone", "lastname": "P{n}", "phone": "+1202555{n}"}}'

env APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  ADMIN_TOKEN=bench TOKEN_ENCRYPTION_KEY="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" \
  USER_RATE_LIMIT=100000/1s DATABASE_URL="sqlite://$work/app.db" SYNC_SCHEDULE=off \
  RUST_LOG=warn taskset -c 0 "$app_bin" >/dev/null 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$app_port/ready"
base="http://127.0.0.1:$app_port"
if [ -z "${APP_BIN:-}" ]; then
  echo "typing (a keystroke every 150 ms, a second between names):"
  taskset -c 1 ./target/release/examples/privacy_load search "$base" bench "${USERS:-20}" "${SESSIONS:-15}" 150
  sleep 31 # the search cache's TTL (SEARCH_CACHE_TTL): the burst starts cold too
  echo "burst (no typing: each user's next query as soon as the last is answered):"
  taskset -c 1 ./target/release/examples/privacy_load search "$base" bench "${USERS:-20}" "${SESSIONS:-15}" 0
fi
taskset -c 1 ./target/release/examples/privacy_load lookup "$base" bench 16 "${SECS:-10}" 500
