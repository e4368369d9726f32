#!/usr/bin/env bash
# Makes .venv-schemathesis/ with schemathesis (PyPI), which fuzzes the app's OpenAPI contract
# against a real app process (app/tests/api.rs). Idempotent and quick when it is there. Prints
# the path of its `schemathesis` command.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-schemathesis"
version="4.32.5"
if ! "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('schemathesis') == '$version'" 2>/dev/null; then
  echo "setting up $venv with schemathesis==$version" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
fi
echo "$venv/bin/schemathesis"
