#!/usr/bin/env bash
# Benchmarks the HubSpot simulator on one core: contact creates/s, searches/s by email and
# full-scan searches/s (over 10,000 seeded contacts), with latency percentiles. Rate limits are lifted so the server is measured.
# Usage: scripts/bench-sim.sh [seconds per run, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-10}"
port=18090
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p hubspot-sim --manifest-path "$root/Cargo.toml"
sim="$root/target/release/hubspot-sim"

run() { # name, lua script
  taskset -c 0 "$sim" --listen "127.0.0.1:$port" --rate-limit 1000000000/10s --search-rate-limit 1000000000/1s >/dev/null 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/_sim/health" >/dev/null && break; sleep 0.1; done
  if [ "$1" != create ]; then
    curl -sf -X POST "http://127.0.0.1:$port/_sim/seed/contacts" -d '{"count":10000,"properties":{"email":"seed{n}@example.com","firstname":"Seed"}}' >/dev/null
  fi
  local out
  out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$root/bench/sim.lua" "http://127.0.0.1:$port" -- "$1" 2>&1)
  local rps line
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  line=$(echo "$out" | grep '^BENCH')
  printf '%-7s %10s req/s  %s\n' "$1" "$rps" "${line#BENCH }"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
}

echo "hubspot-sim on 1 core (taskset -c 0), wrk -t1 -c32 on core 1, ${secs}s each"
run create
run search   # find by email: EQ on the unique property, served by the index
run scan     # EQ on firstname: a full scan of the 10,000 contacts
