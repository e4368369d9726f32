#!/usr/bin/env bash
# The main job, end to end, on a machine with nothing but a Docker engine: makes the local base
# image (nginx, by debootstrap: no registry needed) and a self-signed certificate, starts the
# HubSpot simulator as a container, then with `deployer`:
#   up --dry-run (the plan), up (blue, behind nginx), up again (green, no request dropped),
#   a request to https://localhost/api/hubspot/test answering from the new slot, rollback.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
step() { printf '\n== %s\n' "$1"; }

step "setup: tools, the local nginx image, a self-signed certificate"
"$root/scripts/setup.sh"
"$root/scripts/make-base-images.sh"
"$root/scripts/gen-self-signed.sh"
cargo build --release -q -p deployer
deployer() { "$root/target/release/deployer" -c "$root/deploy.local.yml" "$@"; }

step "the HubSpot simulator, on the service's network"
sim_image="$("$root/scripts/build-sim-image.sh")"
docker network inspect hubspot-app-net >/dev/null 2>&1 || docker network create hubspot-app-net >/dev/null
docker rm -f hubspot-sim >/dev/null 2>&1 || true
docker run -d --name hubspot-sim --network hubspot-app-net "$sim_image" >/dev/null
# A dummy token for the simulator; real secrets go in .env (never committed).
[ -f .env.local ] || printf 'HUBSPOT_ACCESS_TOKEN=pat-local-simulator\nADMIN_TOKEN=%s\n' "$(openssl rand -hex 16)" > .env.local

# GET /api/hubspot/test through nginx; fails unless it answers 200 from slot $1.
ask() {
  local body
  body="$(curl -sS -k --fail-with-body https://localhost/api/hubspot/test)"
  echo "$body"
  grep -q "\"slot\":\"$1\"" <<<"$body" || { echo "quickstart: expected slot $1" >&2; exit 1; }
}

step "deployer up --dry-run"
deployer up --dry-run
step "deployer up"
deployer up
live="$(deployer status --json | sed -n 's/^  "live": "\(.*\)",$/\1/p')"
ask "$live"
other=green; [ "$live" = green ] && other=blue
step "deployer up (again: to the other slot)"
deployer up
step "curl -k https://localhost/api/hubspot/test"
ask "$other"
step "deployer rollback"
deployer rollback
ask "$live"
step "deployer status"
deployer status
echo
echo "quickstart: ok"
