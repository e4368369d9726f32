#!/usr/bin/env bash
# A real sshd for the deployer's remote-host tests: Debian's openssh-server, run as its own
# instance on 127.0.0.1:2222 (the machine's own sshd, if any, is not touched), accepting one
# key for the user `deployer-ci`, who may use the Docker socket. Idempotent.
#
# Everything lives in /etc/deployer-test-ssh (override with DEPLOYER_TEST_SSH_DIR):
#   sshd_config, ssh_host_ed25519_key   the server
#   id_ed25519                          the client key the tests authenticate with
#   known_hosts                         the server's key, as `[127.0.0.1]:2222 ssh-ed25519 ...`
# Prints that directory.
set -euo pipefail
dir="${DEPLOYER_TEST_SSH_DIR:-/etc/deployer-test-ssh}"
port="${DEPLOYER_TEST_SSH_PORT:-2222}"
user=deployer-ci
[ "$(id -u)" -eq 0 ] || { echo "ensure-sshd: need root (a user, a group, a daemon)" >&2; exit 1; }

if [ ! -x /usr/sbin/sshd ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

# The user, allowed to use the Docker engine (the group that owns its socket).
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
# No password ('*'), but not locked ('!'): sshd refuses locked accounts even for keys.
usermod -p '*' "$user"
sock=/var/run/docker.sock
if [ -S "$sock" ]; then
  group="$(stat -c %G "$sock")"
  id -nG "$user" | tr ' ' '\n' | grep -qx "$group" || usermod -aG "$group" "$user"
fi

mkdir -p "$dir" /run/sshd
chmod 700 "$dir"
[ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C deployer-test-host -f "$dir/ssh_host_ed25519_key"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C deployer-test-client -f "$dir/id_ed25519"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")" > "$dir/known_hosts"

home="$(getent passwd "$user" | cut -d: -f6)"
install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
install -m 600 -o "$user" -g "$user" "$dir/id_ed25519.pub" "$home/.ssh/authorized_keys"

cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile /run/deployer-test-sshd.pid
AllowUsers $user
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
Subsystem sftp internal-sftp
MaxSessions 50
MaxStartups 50:30:100
LogLevel INFO
EOF
/usr/sbin/sshd -t -f "$dir/sshd_config"

running() { [ -f /run/deployer-test-sshd.pid ] && kill -0 "$(cat /run/deployer-test-sshd.pid)" 2>/dev/null; }
if running && ! cmp -s "$dir/sshd_config" "$dir/sshd_config.running"; then
  kill "$(cat /run/deployer-test-sshd.pid)"; sleep 0.5
fi
if ! running; then
  /usr/sbin/sshd -f "$dir/sshd_config" -E /tmp/deployer-test-sshd.log
  cp "$dir/sshd_config" "$dir/sshd_config.running"
fi
for _ in $(seq 50); do
  ssh-keyscan -p "$port" 127.0.0.1 >/dev/null 2>&1 && break
  sleep 0.1
done
echo "$dir"
