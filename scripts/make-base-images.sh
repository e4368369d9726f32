#!/usr/bin/env bash
# Makes the base images this machine cannot pull (no registry here): `local/nginx:bookworm`, a
# Debian bookworm minbase with nginx-light, built with debootstrap from the machine's Debian
# mirror and loaded with `docker import`. Idempotent: an image that exists is kept.
# In production the same roles are filled by registry images (deploy.yml's nginx.image, the app's
# BASE_IMAGE build argument).
# Usage: scripts/make-base-images.sh          (env: NGINX_IMAGE, default local/nginx:bookworm)
set -euo pipefail
image="${NGINX_IMAGE:-local/nginx:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image: present"
  exit 0
fi
. "$(dirname "$0")/lib/debian-rootfs.sh"
mirror="$(debian_mirror)"
root="$(mktemp -d /tmp/nginx-rootfs.XXXXXX)"
trap 'sudo_ rm -rf "$root"' EXIT
echo "$image: debootstrap bookworm from $mirror (about a minute)"
sudo_ debootstrap --variant=minbase --include=nginx-light,ca-certificates bookworm "$root" "$mirror" >/dev/null
# Debian's default site would answer on :80 beside ours; logs go to the container's output.
sudo_ rm -f "$root/etc/nginx/sites-enabled/default"
sudo_ ln -sf /dev/stdout "$root/var/log/nginx/access.log"
sudo_ ln -sf /dev/stderr "$root/var/log/nginx/error.log"
sudo_ rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
sudo_ tar -C "$root" -c . | docker import \
  -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80 443' \
  - "$image" >/dev/null
echo "$image: built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
