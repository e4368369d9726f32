#!/usr/bin/env bash
# Runs every test of the workspace (unit, HTTP, the official-client proof, and the app image and
# deployer tests on the real Docker engine with a real nginx), after making sure what they need is
# installed and built (scripts/setup.sh). This is the README's test command and what CI runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
cargo test --workspace --all-targets "$@"
