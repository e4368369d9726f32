#!/usr/bin/env bash
# Makes the base images this machine cannot pull (no registry here): `local/nginx:bookworm`, a
# Debian bookworm minbase with nginx-light and its stream module (the fleet's balancer), built
# with debootstrap from the machine's Debian mirror and loaded with `docker import`.
# Idempotent: an image that exists (with the stream module) is kept.
# In production the same roles are filled by registry images (deploy.yml's nginx.image, the app's
# BASE_IMAGE build argument).
# Usage: scripts/make-base-images.sh          (env: NGINX_IMAGE, default local/nginx:bookworm)
set -euo pipefail
image="${NGINX_IMAGE:-local/nginx:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  # The balancer needs nginx's stream module; an image made before it is made again.
  if docker run --rm --entrypoint test "$image" -f /usr/lib/nginx/modules/ngx_stream_module.so; then
    echo "$image: present"
    exit 0
  fi
  echo "$image: present but without the stream module (the balancer needs it): making it again"
  docker rmi -f "$image" >/dev/null
fi
. "$(dirname "$0")/lib/debian-rootfs.sh"
mirror="$(debian_mirror)"
root="$(mktemp -d /tmp/nginx-rootfs.XXXXXX)"
trap 'sudo_ rm -rf "$root"' EXIT
echo "$image: debootstrap bookworm from $mirror (about a minute)"
sudo_ debootstrap --variant=minbase --include=nginx-light,libnginx-mod-stream,ca-certificates bookworm "$root" "$mirror" >/dev/null
# mktemp made the root 0700, and the tar below keeps it: an engine that applies it as is (vfs,
# as on the test hosts) would leave nginx's workers unable to reach a single file.
sudo_ chmod 755 "$root"
# Debian's default site would answer on :80 beside ours; logs go to the container's output.
sudo_ rm -f "$root/etc/nginx/sites-enabled/default"
sudo_ ln -sf /dev/stdout "$root/var/log/nginx/access.log"
sudo_ ln -sf /dev/stderr "$root/var/log/nginx/error.log"
sudo_ rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
sudo_ tar -C "$root" -c . | docker import \
  -c 'CMD ["nginx", "-g", "daemon off;"]' -c 'EXPOSE 80 443' \
  - "$image" >/dev/null
echo "$image: built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
