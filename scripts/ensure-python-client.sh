#!/usr/bin/env bash
# Makes .venv/ with HubSpot's official Python client, used to prove the simulator against it.
# Idempotent and quick when the venv is already there. Prints the venv's python path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
version="12.0.0"
if ! "$venv/bin/python" -c "import hubspot, importlib.metadata as m; assert m.version('hubspot-api-client') == '$version'" 2>/dev/null; then
  echo "setting up $venv with hubspot-api-client==$version" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hubspot-api-client==$version" >&2
fi
echo "$venv/bin/python"
