#!/usr/bin/env bash
# The release-safety benchmark, against the real engine, nginx and app image:
#   1. canary share accuracy: `up --canary 10`, then `canary 50`; each time 10,000 requests, each
#      from a new client (its own route cookie), counted by the slot that answered;
#   2. automatic rollback: ROLLBACKS releases whose HubSpot (a simulator) starts failing once
#      they are live; the bake switches back; the deployer's own figure (from the answer that
#      crossed the limit, as nginx timed it, to traffic back on the old slot);
#   3. CHANGES canary-share changes and promotions under full-speed keep-alive load: failed
#      requests (the goal is 0).
# Usage: scripts/bench-canary.sh [CHANGES, default 20] [ROLLBACKS, default 5]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
changes="${1:-20}" rollbacks="${2:-5}"
cd "$root"
"$root/scripts/make-base-images.sh" >/dev/null
"$root/scripts/gen-self-signed.sh" >/dev/null
image="$("$root/scripts/build-app-image.sh" hubspot-app-bench)"
sim="$("$root/scripts/build-sim-image.sh" hubspot-sim-bench:latest)"
cargo build --release -q -p deployer --bin deployer --example loadgen
work="$(mktemp -d /tmp/bench-canary.XXXXXX)"
echo "HUBSPOT_ACCESS_TOKEN=pat-bench" > "$work/app.env"
config() { # $1: the simulator the release talks to
  cat > "$work/deploy.yml" <<YML
service: benchc
image: hubspot-app-bench
build: {context: $root, dockerfile: app/Dockerfile}
slots: {blue: {port: 23100}, green: {port: 23101}}
env: {HUBSPOT_BASE_URL: "http://$1:8090", HUBSPOT_TIMEOUT: 2s, HUBSPOT_RATE_LIMIT: 1000000/10s, SYNC_SCHEDULE: "off", RUST_LOG: warn}
env_file: $work/app.env
bake: {duration: 60s, max_error_rate: 5%, window: 5s, min_requests: 10}
nginx:
  template: $root/nginx/site.conf.tera
  base: $root/nginx/nginx.conf.tera
  rendered_dir: $work/nginx
  container: benchc-nginx
  http_port: 28180
  https_port: 28543
  preview_port: 28544
  ssl_dir: $root/ssl
state_dir: $work/state
YML
}
d() { "$root/target/release/deployer" -c "$work/deploy.yml" "$@"; }
load() { "$root/target/release/examples/loadgen" "$@"; }
cleanup() {
  docker rm -f benchc-blue benchc-green benchc-nginx benchc-sim-a benchc-sim-b >/dev/null 2>&1 || true
  docker volume rm benchc-data benchc-sockets >/dev/null 2>&1 || true
  docker network rm benchc-net >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup_first() { docker rm -f benchc-blue benchc-green benchc-nginx benchc-sim-a benchc-sim-b >/dev/null 2>&1 || true; }
cleanup_first
docker network create benchc-net >/dev/null
for s in a b; do
  port=$([ "$s" = b ] && echo "-p 127.0.0.1:28590:8090" || true)
  # shellcheck disable=SC2086
  docker run -d --name "benchc-sim-$s" --network benchc-net $port "$sim" --listen 0.0.0.0:8090 \
    --token pat-bench --rate-limit 1000000/10s >/dev/null
done
config benchc-sim-a
d up --no-bake --image "$image" >/dev/null 2>&1
health=https://127.0.0.1:28543/health

echo "== 1. canary share accuracy (10,000 requests, each a new client) =="
for pct in 10 50; do
  if [ "$pct" = 10 ]; then d up --canary 10 --no-bake --image "$image" >/dev/null 2>&1
  else d canary "$pct" --no-bake >/dev/null 2>&1; fi
  sleep 1.2 # upstream connections opened before the change live at most 1 s
  out="$(load --url "$health" --rate 100000 --connections 16 --requests 10000 --new-clients --slots)"
  green="$(echo "$out" | sed -n 's/^slot green [0-9]* (\(.*\)%)$/\1/p')"
  echo "asked ${pct}%: measured ${green:-0}% on the canary ($(echo "$out" | grep -c '^slot') slots answered; $(echo "$out" | sed -n 's/^non-2xx //p') non-2xx)"
done
d abort >/dev/null 2>&1

echo "== 2. automatic rollback: limit crossed -> traffic back =="
deployer_ms=()
for i in $(seq "$rollbacks"); do
  config benchc-sim-b
  curl -s -X DELETE http://127.0.0.1:28590/_sim/faults >/dev/null
  live="$(d status --json | sed -n 's/^  "live": "\(.*\)",$/\1/p')"
  new=$([ "$live" = blue ] && echo green || echo blue)
  load --url https://127.0.0.1:28543/api/hubspot/test --rate 400 --connections 8 --duration 1h \
    --stop-file "$work/stop" > "$work/rb-load.txt" &
  lg=$!
  d up --image "$image" > "$work/rb-up.txt" 2>&1 &
  up=$!
  until curl -sk "$health" | grep -q "\"slot\":\"$new\""; do sleep 0.02; done
  curl -s -X POST -H 'content-type: application/json' -d '{"path":"/","status":500}' \
    http://127.0.0.1:28590/_sim/faults >/dev/null
  wait "$up" || true
  touch "$work/stop"; wait "$lg"; rm -f "$work/stop"
  ms="$(d history --json -n 1 | sed -n 's/.*"crossed_to_back_ms": \([0-9]*\).*/\1/p')"
  outcome="$(d history --json -n 1 | sed -n 's/.*"outcome": "\(.*\)",/\1/p')"
  deployer_ms+=("${ms:-NaN}")
  echo "round $i: $outcome; crossed -> back ${ms:-?} ms"
  config benchc-sim-a
done

echo "== 3. $changes canary changes and promotions under full-speed load =="
config benchc-sim-a
load --url "$health" --rate 100000 --connections 32 --duration 1h --stop-file "$work/stop" \
  --new-clients --slots > "$work/load.txt" &
lg=$!
sleep 1
done_changes=0
shares=(10 30 60)
while [ "$done_changes" -lt "$changes" ]; do
  d up --canary 5 --no-bake --image "$image" >/dev/null 2>&1; done_changes=$((done_changes + 1))
  for pct in "${shares[@]}"; do
    [ "$done_changes" -ge "$changes" ] && break
    d canary "$pct" --no-bake >/dev/null 2>&1; done_changes=$((done_changes + 1))
  done
  d promote --no-bake >/dev/null 2>&1; done_changes=$((done_changes + 1))
done
sleep 1
touch "$work/stop"; wait "$lg"
echo "changes: $done_changes (up --canary 5, canary 10/30/60, promote; repeated)"
cat "$work/load.txt"

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxv() { printf '%s\n' "$@" | sort -g | tail -1; }
echo "== summary =="
echo "automatic rollback, limit crossed -> traffic back (ms): median $(median "${deployer_ms[@]}"), max $(maxv "${deployer_ms[@]}") over $rollbacks"
