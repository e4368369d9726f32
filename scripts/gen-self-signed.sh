#!/usr/bin/env bash
# Makes a self-signed certificate pair in ssl/ for local HTTPS (never committed: see .gitignore).
# Usage: scripts/gen-self-signed.sh [hostname, default localhost]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
host="${1:-localhost}"
if [ -s "$root/ssl/cert.pem" ] && [ -s "$root/ssl/key.pem" ]; then exit 0; fi
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,IP:127.0.0.1" \
  -keyout "$root/ssl/key.pem" -out "$root/ssl/cert.pem" 2>/dev/null
chmod 600 "$root/ssl/key.pem"
echo "ssl: wrote $root/ssl/cert.pem and key.pem for $host"
