#!/usr/bin/env bash
# Makes a Python venv at DIR (under the repository) with PACKAGE==VERSION from PyPI, unless it is
# there already. Idempotent and quick then. Prints DIR/bin/COMMAND.
# Usage: scripts/ensure-venv.sh DIR PACKAGE VERSION COMMAND
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/$1" package="$2" version="$3" command="$4"
if ! "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('$package') == '$version'" 2>/dev/null; then
  echo "setting up $venv with $package==$version" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" >&2
fi
echo "$venv/bin/$command"
