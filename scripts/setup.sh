#!/usr/bin/env bash
# Installs what the tests and the quick start need on a fresh machine. Idempotent: quick when
# everything is already there. Nothing else has to be installed by hand.
#   - Rust toolchain: must already be on the machine (rustup); checked, not installed.
#   - wrk (Debian package): the load generator of the benchmark scripts.
#   - .venv/ with HubSpot's official Python client, for the simulator's proof test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need Debian packages ${need_apt[*]}: run as root or install them" >&2; exit 1
  fi
  echo "setup: installing ${need_apt[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

"$root/scripts/ensure-python-client.sh" >/dev/null
echo "setup: ok" >&2
