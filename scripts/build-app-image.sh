#!/usr/bin/env bash
# Builds the app's image from the repository root (see app/Dockerfile and .dockerignore): a static
# binary on BASE_IMAGE (default scratch, so no registry is needed). Tags IMAGE:VERSION and
# IMAGE:latest, where VERSION is the git commit with -dirty when the tree has changes. Prints the
# tag. `deployer up` builds the same way through the Docker API.
# Usage: scripts/build-app-image.sh [IMAGE, default hubspot-app]   (env: BASE_IMAGE)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${1:-hubspot-app}"
base="${BASE_IMAGE:-scratch}"
cd "$root"
version="$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || version="$version-dirty"
"$root/scripts/build-app-binary.sh" >/dev/null
docker build -q -f app/Dockerfile --build-arg "BASE_IMAGE=$base" --build-arg "APP_VERSION=$version" \
  -t "$image:$version" -t "$image:latest" "$root" >&2
echo "$image:$version"
