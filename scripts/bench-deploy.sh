#!/usr/bin/env bash
# The zero-downtime benchmark: a steady load through nginx (HTTPS, keep-alive, no retries) while
# `deployer up` and `deployer rollback` alternate. Prints total requests, non-2xx answers and
# connection errors (the goal is zero), the time from the new slot healthy to traffic switched,
# and the wall time of `up` with a prebuilt image and of `rollback`.
# Usage: scripts/bench-deploy.sh [ROUNDS, default 10] [RATE req/s, default 400]
# With BENCH_OVER_SSH=1 the deployer drives this machine as a remote host, through the test
# sshd (scripts/ensure-sshd.sh): every Docker call, file and health check goes over SSH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-10}" rate="${2:-400}"
cd "$root"
"$root/scripts/make-base-images.sh" >/dev/null
"$root/scripts/gen-self-signed.sh" >/dev/null
image="$("$root/scripts/build-app-image.sh" hubspot-app-bench)"
cargo build --release -q -p deployer --bin deployer --example loadgen
work="$(mktemp -d /tmp/bench-deploy.XXXXXX)"
remote=""
if [ "${BENCH_OVER_SSH:-0}" = 1 ]; then
  ssh_dir="$("$root/scripts/ensure-sshd.sh")"
  chown deployer-ci "$work"  # the host's side of the files belongs to the SSH user
  remote="remote: {host: 127.0.0.1, port: 2222, user: deployer-ci, identity: $ssh_dir/id_ed25519, known_hosts: $ssh_dir/known_hosts}"
fi
cat > "$work/deploy.yml" <<YML
service: bench
image: hubspot-app-bench
build: {context: $root, dockerfile: app/Dockerfile}
slots: {blue: {port: 23000}, green: {port: 23001}}
env: {HUBSPOT_ENABLED: "false", RUST_LOG: warn}
nginx:
  template: $root/nginx/site.conf.tera
  base: $root/nginx/nginx.conf.tera
  rendered_dir: $work/nginx
  container: bench-nginx
  http_port: 28080
  https_port: 28443
  preview_port: 28444
  ssl_dir: $root/ssl
state_dir: $work/state
$remote
YML
d() { "$root/target/release/deployer" -c "$work/deploy.yml" "$@"; }
cleanup() {
  docker rm -f bench-blue bench-green bench-nginx >/dev/null 2>&1 || true
  docker volume rm bench-data bench-sockets >/dev/null 2>&1 || true
  docker network rm bench-net >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup_first() { docker rm -f bench-blue bench-green bench-nginx >/dev/null 2>&1 || true; }
cleanup_first
d up --image "$image" > "$work/first-up.txt" 2>&1 || { cat "$work/first-up.txt"; exit 1; }
"$root/target/release/examples/loadgen" --url https://127.0.0.1:28443/health --rate "$rate" \
  --connections 16 --duration 1h --stop-file "$work/stop" > "$work/load.txt" &
load=$!
sleep 2
up_walls=() rb_walls=() switch_ms=()
for i in $(seq "$rounds"); do
  t0=$(date +%s.%N); out="$(d up --image "$image" 2>/dev/null)"; t1=$(date +%s.%N)
  up_walls+=("$(awk "BEGIN{print $t1 - $t0}")"); switch_ms+=("$(echo "$out" | sed -n 's/.*switched \([0-9]*\) ms.*/\1/p')")
  t0=$(date +%s.%N); out="$(d rollback 2>/dev/null)"; t1=$(date +%s.%N)
  rb_walls+=("$(awk "BEGIN{print $t1 - $t0}")"); switch_ms+=("$(echo "$out" | sed -n 's/.*switched \([0-9]*\) ms.*/\1/p')")
done
sleep 2
touch "$work/stop"; wait "$load"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxv() { printf '%s\n' "$@" | sort -g | tail -1; }
[ -n "$remote" ] && echo "deployer: over SSH (deployer-ci@127.0.0.1:2222)"
echo "load: $rate req/s over 16 keep-alive HTTPS connections to /health (proxied to the live slot) through nginx"
echo "switches: $((rounds * 2)) ($rounds up + $rounds rollback)"
cat "$work/load.txt"
echo "healthy -> switched (ms): median $(median "${switch_ms[@]}"), max $(maxv "${switch_ms[@]}")"
echo "up wall time, prebuilt image (s): median $(median "${up_walls[@]}"), max $(maxv "${up_walls[@]}")"
echo "rollback wall time (s): median $(median "${rb_walls[@]}"), max $(maxv "${rb_walls[@]}")"
