#!/usr/bin/env bash
# Benchmarks the deployer on many hosts (the test hosts of scripts/test-hosts.sh):
#   - wall time of `up` (all_at_once) on 1 host and on 3 hosts, fresh hosts (both images
#     shipped) and warm (the image already there under another name: tagged, nothing sent);
#   - image shipping in MB/s (one stream fanned out to the hosts);
#   - the mixed-version window of two_phase releases;
#   - failed requests through the balancer over 10 releases (all_at_once, rolling, two_phase in
#     turn), under wrk's keep-alive HTTPS load (wrk does not retry: every error counts).
# Usage: scripts/bench-fleet.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" >/dev/null 2>&1
cargo build -q -p deployer
deployer="$root/target/debug/deployer"
image=hubspot-app-test
scripts/build-app-image.sh "$image" >/dev/null 2>&1
work="$(mktemp -d /tmp/bench-fleet.XXXXXX)"
trap 'docker rm -f bench-fleet-balancer >/dev/null 2>&1 || true; scripts/test-hosts.sh down; rm -rf "$work"' EXIT
port=21491

hosts_up() {
  scripts/test-hosts.sh up "$1" >/dev/null
  for i in $(seq 1 "$1"); do
    docker exec "hubspot-host-$i" mkdir -p /etc/deployer/ssl
    docker cp ssl/cert.pem "hubspot-host-$i:/etc/deployer/ssl/cert.pem"
    docker cp ssl/key.pem "hubspot-host-$i:/etc/deployer/ssl/key.pem"
  done
}

# config N STRATEGY_LINES: deploy.yml for hosts 1..N behind the balancer.
config() {
  local n="$1" rollout="$2" ssh="$root/ssh/test-hosts"
  {
    cat <<EOF
service: bench-fleet
image: bench-fleet-img
build: {context: $root, dockerfile: app/Dockerfile}
slots: {blue: {port: 3000}, green: {port: 3001}}
env: {HUBSPOT_ENABLED: "false"}
health: {path: /ready, interval: 1s, timeout: 60s, expect_status: 200}
nginx:
  template: $root/nginx/site.conf.tera
  base: $root/nginx/nginx.conf.tera
  rendered_dir: /var/lib/deployer/bench/nginx
  container: bench-fleet-nginx
  http_port: 8080
  https_port: 8443
  preview_port: 9443
  ssl_dir: /etc/deployer/ssl
state_dir: /var/lib/deployer/bench/state
drain_timeout: 10s
hosts:
EOF
    for i in $(seq 1 "$n"); do
      echo "  - {name: web-$i, ssh: {host: 172.31.90.$((10 + i)), user: root, identity: $ssh/id_ed25519, known_hosts: $ssh/known_hosts}}"
    done
    printf 'rollout:\n%s\n' "$rollout"
    cat <<EOF
balancer:
  network: hubspot-hosts-net
  template: $root/nginx/balancer.conf.tera
  rendered_dir: $work/balancer
  ssl_dir: $root/ssl
  https_port: $port
EOF
  } > "$work/deploy.yml"
}

up() { # up IMAGE -> prints the deployer's output; the wall time in $took
  local t0 t1
  t0=$(date +%s.%N)
  "$deployer" -c "$work/deploy.yml" up --image "$1" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  t1=$(date +%s.%N)
  took=$(echo "$t1 - $t0" | bc)
}

tag() { docker tag "$image:latest" "bench-fleet-img:$1"; echo "bench-fleet-img:$1"; }

echo "== wall time of up, all_at_once =="
for n in 1 3; do
  docker rm -f bench-fleet-balancer >/dev/null 2>&1 || true
  hosts_up "$n"
  config "$n" "  strategy: all_at_once"
  up "$(tag "cold$n")"
  cold=$took
  grep '^shipped' "$work/out" | sed 's/^/  /'
  up "$(tag "warm$n")"
  printf '%d host(s): fresh hosts %.1fs (images shipped), warm %.1fs (image tagged, nothing sent)\n' "$n" "$cold" "$took"
  eval "cold_$n=$cold warm_$n=$took"
done
printf 'ratio 3 hosts / 1 host: fresh %.2f, warm %.2f (goal <= 1.5)\n' \
  "$(echo "$cold_3 / $cold_1" | bc -l)" "$(echo "$warm_3 / $warm_1" | bc -l)"

echo "== 10 releases under load through the balancer =="
windows=()
wrk -t2 -c16 -d600s --latency "https://127.0.0.1:$port/health" > "$work/wrk" 2>&1 &
wrk_pid=$!
sleep 1
for r in $(seq 1 10); do
  case $((r % 3)) in
    1) config 3 "  strategy: all_at_once" ;;
    2) config 3 "  strategy: rolling
  batch: 1" ;;
    0) config 3 "  strategy: two_phase
  window: 5s" ;;
  esac
  up "$(tag "r$r")"
  w=$(sed -n 's/^two versions served together for \([0-9]*\) ms$/\1/p' "$work/out")
  [ -n "$w" ] && windows+=("$w")
  printf '  release %2d (%s): %.1fs%s\n' "$r" "$(sed -n 's/.*strategy: //p' "$work/deploy.yml")" "$took" "${w:+, mixed versions for $w ms}"
done
kill -INT "$wrk_pid"; wait "$wrk_pid" || true
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk")
errors=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' "$work/wrk")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$work/wrk")
echo "through the balancer: $requests requests; non-2xx: ${non2xx:-0}; socket errors: ${errors:-none}"
echo "two_phase mixed-version windows (ms): ${windows[*]} (goal <= 1000)"
