#!/usr/bin/env bash
# Makes `local/testhost:bookworm`, the image of a test host for the many-hosts tests: Debian
# bookworm minbase with its own Docker engine (Debian's docker.io, vfs storage) and sshd, built
# with debootstrap from the machine's Debian mirror and loaded with `docker import` (no
# registry). Idempotent: an image that exists is kept. Start hosts with scripts/test-hosts.sh.
# See ../shared/design/test-hosts.md for what was measured.
set -euo pipefail
image="${TESTHOST_IMAGE:-local/testhost:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image: present"
  exit 0
fi
. "$(dirname "$0")/lib/debian-rootfs.sh"
mirror="$(debian_mirror)"
root="$(mktemp -d /tmp/testhost-rootfs.XXXXXX)"
trap 'sudo_ rm -rf "$root"' EXIT
echo "$image: debootstrap bookworm with docker.io and openssh-server from $mirror (about a minute)"
sudo_ debootstrap --variant=minbase \
  --include=docker.io,openssh-server,iptables,ca-certificates,procps,iproute2 \
  bookworm "$root" "$mirror" >/dev/null
sudo_ chmod 755 "$root" # mktemp's 0700 would be the image's root
# The inner engine's rules through the legacy iptables (nft inside a container is not reliable).
sudo_ chroot "$root" update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
sudo_ chroot "$root" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null
sudo_ rm -f "$root"/etc/ssh/ssh_host_*
sudo_ tee "$root/usr/local/sbin/testhost-init" >/dev/null <<'INIT'
#!/bin/sh
# A test host's PID 1: sshd (root by key only; AUTHORIZED_KEY is the key), then the engine.
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh
printf '%s\n' "${AUTHORIZED_KEY:?set AUTHORIZED_KEY to the public key that may log in}" > /root/.ssh/authorized_keys
chmod 700 /root/.ssh && chmod 600 /root/.ssh/authorized_keys
/usr/sbin/sshd -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
exec dockerd --storage-driver=vfs --host=unix:///var/run/docker.sock
INIT
sudo_ chmod 755 "$root/usr/local/sbin/testhost-init"
sudo_ rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
sudo_ tar -C "$root" -c . | docker import -c 'CMD ["/usr/local/sbin/testhost-init"]' -c 'EXPOSE 22' - "$image" >/dev/null
echo "$image: built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
