#!/usr/bin/env bash
# Makes local HTTPS material in ssl/ (never committed: see .gitignore): a local CA (ca.pem,
# ca.key) and, issued by it, nginx's certificate (cert.pem, key.pem) for localhost, 127.0.0.1 and
# the quick start's nginx container name (hubspot-nginx), so the HubSpot simulator on the service
# network can deliver webhooks to nginx's HTTPS server and verify it against ca.pem (rustls, like
# browsers, refuses a self-signed certificate that is its own CA as a server's).
# Usage: scripts/gen-self-signed.sh [hostname, default localhost]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
host="${1:-localhost}"
ssl="$root/ssl"
if [ -s "$ssl/cert.pem" ] && [ -s "$ssl/key.pem" ] && [ -s "$ssl/ca.pem" ]; then exit 0; fi
mkdir -p "$ssl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=local deployer CA" \
  -keyout "$ssl/ca.key" -out "$ssl/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" -keyout "$ssl/key.pem" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:hubspot-nginx,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$host" > "$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$ssl/ca.pem" -CAkey "$ssl/ca.key" -CAcreateserial \
  -CAserial "$work/ca.srl" -days 825 -extfile "$work/leaf.ext" -out "$ssl/cert.pem" 2>/dev/null
chmod 600 "$ssl/key.pem" "$ssl/ca.key"
chmod 644 "$ssl/cert.pem" "$ssl/ca.pem"
echo "ssl: wrote $ssl/cert.pem and key.pem for $host (issued by the local CA $ssl/ca.pem)"
