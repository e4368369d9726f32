#!/usr/bin/env bash
# The main job, end to end, on a machine with nothing but a Docker engine: makes the local base
# image (nginx, by debootstrap: no registry needed) and a self-signed certificate, starts the
# HubSpot simulator as a container, then with `deployer`:
#   up --dry-run (the plan), up (blue, behind nginx), up --no-switch (green, in preview on
#   https://localhost:9443 while blue serves), promote (green live, no request dropped, then
#   baked), a request to https://localhost/api/hubspot/test answering from the new slot, a contact
#   written through nginx whose HubSpot webhook comes back through nginx's HTTPS server,
#   rollback, and the history with what each switch cost.
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
# A dummy token for the simulator; real secrets go in .env (never committed).
[ -f .env.local ] || printf 'HUBSPOT_ACCESS_TOKEN=pat-local-simulator\nADMIN_TOKEN=%s\n' "$(openssl rand -hex 16)" > .env.local
grep -q '^TOKEN_ENCRYPTION_KEY=' .env.local || printf 'TOKEN_ENCRYPTION_KEY=%s\n' "$(openssl rand -base64 32)" >> .env.local
grep -q '^HUBSPOT_CLIENT_SECRET=' .env.local || printf 'HUBSPOT_CLIENT_SECRET=%s\n' "$(openssl rand -hex 16)" >> .env.local
secret_of() { sed -n "s/^$1=//p" .env.local; }
# HubSpot delivers signed webhooks to nginx's public HTTPS server (by its name on the network),
# checking nginx's certificate against the local CA.
docker rm -f hubspot-sim >/dev/null 2>&1 || true
docker run -d --name hubspot-sim --network hubspot-app-net \
  -v "$root/ssl/ca.pem:/ssl/ca.pem:ro" -e HUBSPOT_SIM_WEBHOOK_SECRET="$(secret_of HUBSPOT_CLIENT_SECRET)" \
  "$sim_image" --listen 0.0.0.0:8090 --webhook-url https://hubspot-nginx/webhooks/hubspot \
  --webhook-ca /ssl/ca.pem >/dev/null

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
step "deployer up --no-switch (the new release in preview; $live keeps serving)"
deployer up --no-switch
echo "preview: $(curl -sS -k --fail-with-body https://localhost:9443/health)"
ask "$live"
step "deployer promote (the preview goes live, then the bake watches it)"
deployer promote
step "curl -k https://localhost/api/hubspot/test"
ask "$other"
step "a contact through nginx; HubSpot's signed webhook back through nginx"
admin="$(secret_of ADMIN_TOKEN)"
email="quickstart-$(date +%s)@example.com"
curl -sS -k --fail-with-body -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d "{\"email\": \"$email\", \"firstname\": \"Quick\", \"phone\": \"+1 415 555 0199\"}" \
  https://localhost/api/contacts
echo
for i in $(seq 100); do
  webhooks="$(curl -sS -k -H "Authorization: Bearer $admin" https://localhost/api/stats | sed -n 's/.*"webhooks":\({[^}]*}\).*/\1/p')"
  case "$webhooks" in *'"processed":0'*|'') sleep 0.2 ;; *) break ;; esac
  [ "$i" = 100 ] && { echo "quickstart: no webhook arrived through nginx: $webhooks" >&2; exit 1; }
done
echo "webhooks (GET https://localhost/api/stats): $webhooks"
echo "phone lookup from the cache the webhook filled:"
curl -sS -k --fail-with-body -H "Authorization: Bearer $admin" 'https://localhost/api/contacts/lookup?phone=%2B14155550199'
echo
echo "the same contact as a synced CRM record, read locally (GET /api/objects/contacts?email=…):"
curl -sS -k --fail-with-body -H "Authorization: Bearer $admin" "https://localhost/api/objects/contacts?email=$email"
echo
step "lifecycle events through nginx: POST /api/events, then GET /api/events/{id}"
user="quickstart-user-$(date +%s)"
curl -sS -k --fail-with-body -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d "{\"events\": [
        {\"event_id\": \"$user-signup\", \"type\": \"user_signup\", \"occurred_at\": \"2026-11-24T10:00:00Z\",
         \"subject\": {\"external_id\": \"$user\"}, \"data\": {\"email\": \"$user@example.com\", \"firstname\": \"Quick\"}},
        {\"event_id\": \"$user-nova\", \"type\": \"nova_earned\", \"occurred_at\": \"2026-11-24T10:01:00Z\",
         \"subject\": {\"external_id\": \"$user\"}, \"data\": {\"amount\": 25}}]}" \
  https://localhost/api/events
echo
for i in $(seq 100); do
  event="$(curl -sS -k --fail-with-body -H "Authorization: Bearer $admin" "https://localhost/api/events/$user-nova")"
  case "$event" in *'"state":"sent"'*) break ;; *) sleep 0.2 ;; esac
  [ "$i" = 100 ] && { echo "quickstart: the event was not delivered to HubSpot: $event" >&2; exit 1; }
done
echo "$event"
step "the API's contract: curl -k https://localhost/openapi.json"
curl -sS -k --fail-with-body https://localhost/openapi.json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
ops = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
version = doc["openapi"]
print(f"OpenAPI {version}: {len(ops)} operations, e.g. " + ", ".join(f"{m} {p}" for m, p in ops[:4]))'
echo "an invalid contact answers the one error shape:"
curl -sS -k -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"contacts": [{"email": "ada@example.com"}, {"email": "bob@example.com", "phone": "12"}]}' \
  https://localhost/api/contacts
echo
step "deployer rollback"
deployer rollback
ask "$live"
step "deployer status"
deployer status
step "deployer history"
deployer history
echo
echo "quickstart: ok"
