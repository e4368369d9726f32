#!/usr/bin/env bash
# Builds the app's image: a static binary (glibc static-PIE) copied onto BASE_IMAGE (default
# scratch, so no registry is needed). Tags IMAGE:VERSION and IMAGE:latest, where VERSION is the
# git commit with -dirty when the tree has changes. Prints the tag.
# Usage: scripts/build-app-image.sh [IMAGE, default hubspot-app]   (env: BASE_IMAGE)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-hubspot-app}"
base="${BASE_IMAGE:-scratch}"
cd "$root"
version="$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || version="$version-dirty"
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -q -p app --target "$target" >&2
ctx="$root/target/docker-context/app"
rm -rf "$ctx" && mkdir -p "$ctx"
cp "$root/target/$target/release/app" "$ctx/app"
cp "$root/app/Dockerfile" "$ctx/Dockerfile"
docker build -q --build-arg "BASE_IMAGE=$base" --build-arg "APP_VERSION=$version" \
  -t "$image:$version" -t "$image:latest" "$ctx" >&2
echo "$image:$version"
