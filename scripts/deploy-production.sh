#!/usr/bin/env bash
# Production deploy: a thin wrapper over `deployer up` with the repository's deploy.yml.
# Every argument passes through (`--dry-run`, `--skip-build`, `--image REF`).
# Exit codes are deployer's (README.md). Rollback: `deployer rollback`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deployer="${DEPLOYER:-$root/target/release/deployer}"
[ -x "$deployer" ] || (cd "$root" && cargo build --release -q -p deployer)
exec "$deployer" -c "$root/deploy.yml" up "$@"
