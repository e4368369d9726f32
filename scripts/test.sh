#!/usr/bin/env bash
# Runs every test of the workspace (unit, HTTP, and the official-client proof), after making
# sure what they need is installed. This is the README's test command and what CI runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
cargo test --workspace --all-targets "$@"
