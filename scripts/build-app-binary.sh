#!/usr/bin/env bash
# Builds the app as a static binary (glibc static-PIE: runs on `scratch`), the one input of the
# app's image besides app/image. Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q -p app --target "$target" >&2
echo "$root/target/$target/release/app"
