#!/usr/bin/env bash
# Makes .venv-schemathesis/ with schemathesis (PyPI), which fuzzes the app's OpenAPI contract
# against a real app process (app/tests/it/api.rs). Prints the path of its `schemathesis` command.
exec "$(dirname "$0")/ensure-venv.sh" .venv-schemathesis schemathesis 4.32.5 schemathesis
