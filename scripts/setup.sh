#!/usr/bin/env bash
# Installs what the tests and the quick start need on a fresh machine. Idempotent: quick when
# everything is already there. Nothing else has to be installed by hand.
#   - Rust toolchain: must already be on the machine (rustup); checked, not installed.
#   - wrk (Debian package): the load generator of the benchmark scripts.
#   - .venv/ with HubSpot's official Python client, for the simulator's proof test.
#   - openssl (Debian package) and a self-signed pair in ssl/ for nginx's HTTPS.
#   - chromium (Debian package): the dashboard's browser test, headless.
#   - docker-compose (Debian package, Compose v1): the compose file's validity test.
#   - PostgreSQL (Debian package), started, with role and database for the tests
#     (scripts/ensure-postgres.sh).
#   - openssh-server (Debian package): a test sshd on 127.0.0.1:2222 for the deployer's remote-host
#     tests, with a user allowed to use Docker (scripts/ensure-sshd.sh).
#   - local/nginx:bookworm, made with debootstrap (scripts/make-base-images.sh): no registry here.
#   - local/testhost:bookworm (scripts/make-test-hosts.sh): the fleet tests' hosts, each with its
#     own Docker engine and sshd; the tests start them (scripts/test-hosts.sh up 3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need Debian packages ${need_apt[*]}: run as root or install them" >&2; exit 1
  fi
  echo "setup: installing ${need_apt[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The Docker engine: started by the machine; start it here if it is not (tests need it).
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting the Docker engine" >&2
  (service docker start || (nohup dockerd >/tmp/dockerd.log 2>&1 &)) >/dev/null 2>&1 || true
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: no Docker engine reachable (see /tmp/dockerd.log)" >&2; exit 1; }
fi

"$root/scripts/ensure-python-client.sh" >/dev/null
"$root/scripts/ensure-schemathesis.sh" >/dev/null
"$root/scripts/gen-self-signed.sh" >&2
"$root/scripts/ensure-postgres.sh" >/dev/null
"$root/scripts/ensure-sshd.sh" >/dev/null
"$root/scripts/make-base-images.sh" >&2
"$root/scripts/make-test-hosts.sh" >&2
echo "setup: ok" >&2
