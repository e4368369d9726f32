#!/usr/bin/env bash
# Benchmarks the app: GET /health and GET /api/hubspot/test (which calls the simulator's
# account-info on loopback) for req/s and p50/p99; the app's RSS idle and under load; the
# image size; and the time from `docker run` to a ready answer.
# The app gets one core (taskset -c 0), the simulator and wrk the other. HubSpot budgets are
# lifted on both sides so the app itself is measured, not the 100/10s limit.
# Usage: scripts/bench-app.sh [seconds per run, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-10}"
sim_port=18190 app_port=18191
"$root/scripts/setup.sh"
cd "$root"
cargo build --release -q -p app -p hubspot-sim
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; docker rm -f app-bench >/dev/null 2>&1 || true; }
trap cleanup EXIT

taskset -c 1 ./target/release/hubspot-sim --listen "127.0.0.1:$sim_port" \
  --rate-limit 1000000000/10s --search-rate-limit 1000000000/1s >/dev/null 2>&1 &
pids+=($!)
APP_LISTEN="127.0.0.1:$app_port" HUBSPOT_ACCESS_TOKEN=pat-bench HUBSPOT_BASE_URL="http://127.0.0.1:$sim_port" \
  HUBSPOT_RATE_LIMIT=1000000000/10s RUST_LOG=warn taskset -c 0 ./target/release/app >/dev/null 2>&1 &
app_pid=$!
pids+=($app_pid)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/ready" >/dev/null && break; sleep 0.05; done
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$app_pid/status"; }
echo "app on 1 core (taskset -c 0); simulator and wrk -t1 -c32 on core 1; ${secs}s each"
echo "idle RSS: $(rss)"
peak=0
for path in /health /api/hubspot/test; do
  out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s bench/latency.lua "http://127.0.0.1:$app_port$path" 2>&1 &
        sleep $((secs / 2)); awk '/VmRSS/ {print $2}' "/proc/$app_pid/status" > /tmp/bench-app-rss; wait)
  loaded=$(cat /tmp/bench-app-rss)
  [ "$loaded" -gt "$peak" ] && peak=$loaded
  printf '%-18s %10s req/s  %s\n' "$path" "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "$out" | grep '^BENCH' | sed 's/^BENCH //')"
done
echo "loaded RSS (mid-run, highest): $(awk -v k="$peak" 'BEGIN {printf "%.1f MiB", k/1024}')"

tag=$("$root/scripts/build-app-image.sh" hubspot-app)
echo "image $tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.2f MB", $1/1000000}')"
best=""
for i in 1 2 3 4 5; do
  docker rm -f app-bench >/dev/null 2>&1 || true
  t0=$(date +%s%N)
  docker run -d --name app-bench --network host -e APP_LISTEN=127.0.0.1:18192 -e HUBSPOT_ACCESS_TOKEN=pat-bench \
    -e "HUBSPOT_BASE_URL=http://127.0.0.1:$sim_port" "$tag" >/dev/null
  until curl -sf http://127.0.0.1:18192/ready >/dev/null; do sleep 0.005; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  best="$best $ms"
done
echo "docker run -> /ready answers (5 runs, ms):$best"
