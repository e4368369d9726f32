#!/usr/bin/env bash
# Builds the HubSpot simulator's image (a static binary on scratch). Prints the tag.
# Usage: scripts/build-sim-image.sh [IMAGE, default hubspot-sim:latest]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-hubspot-sim:latest}"
target=x86_64-unknown-linux-gnu
cd "$root"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q -p hubspot-sim --target "$target" >&2
ctx="$root/target/docker-context/sim"
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$root/target/$target/release/hubspot-sim" "$root/hubspot-sim/Dockerfile" "$ctx/"
docker build -q -t "$image" "$ctx" >/dev/null
echo "$image"
