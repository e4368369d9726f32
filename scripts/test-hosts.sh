#!/usr/bin/env bash
# Starts (or removes) N test hosts: containers of local/testhost:bookworm (scripts/make-test-hosts.sh),
# each with its own Docker engine and sshd, on the private network hubspot-hosts-net with fixed
# addresses 172.31.90.11, .12, …; the deployer reaches them over SSH as root with the key in
# ssh/test-hosts/id_ed25519 (made here once, never committed), their host keys in
# ssh/test-hosts/known_hosts. Stopping, pausing or
# disconnecting a host's container is a real host failure for the deployer.
# `--privileged` is tried first; where the machine refuses it (a capability bounding set without
# CAP_SYS_RESOURCE), every other capability is added instead, with seccomp and AppArmor off and
# the cgroup hierarchy writable, as measured in ../shared/design/test-hosts.md.
# Usage: scripts/test-hosts.sh up [N=3] | down
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${TESTHOST_IMAGE:-local/testhost:bookworm}"
net=hubspot-hosts-net subnet=172.31.90.0/24 prefix=172.31.90
key="$root/ssh/test-hosts/id_ed25519"
caps=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
  NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO
  SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_TIME SYS_TTY_CONFIG MKNOD
  LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND
  AUDIT_READ)

down() {
  docker rm -f $(docker ps -aq --filter name='^hubspot-host-') >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
}

up() {
  local n="${1:-3}"
  "$root/scripts/make-test-hosts.sh"
  if [ ! -f "$key" ]; then
    mkdir -p "$(dirname "$key")"
    ssh-keygen -q -t ed25519 -N '' -C deployer-test-hosts -f "$key"
  fi
  docker network inspect "$net" >/dev/null 2>&1 || docker network create --subnet "$subnet" "$net" >/dev/null
  local i name run_common
  for i in $(seq 1 "$n"); do
    name="hubspot-host-$i"
    docker rm -f "$name" >/dev/null 2>&1 || true
    run_common=(-d --name "$name" --hostname "host$i" --network "$net" --ip "$prefix.$((10 + i))"
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw -e AUTHORIZED_KEY="$(cat "$key.pub")")
    if ! docker run "${run_common[@]}" --privileged "$image" >/dev/null 2>&1 \
      || ! wait_engine "$name" 5; then
      docker rm -f "$name" >/dev/null 2>&1 || true
      docker run "${run_common[@]}" $(printf -- '--cap-add %s ' "${caps[@]}") \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined "$image" >/dev/null
    fi
  done
  # Each host's own key, read from its container (not from the network): the known_hosts file
  # the deployer checks them against.
  : > "$root/ssh/test-hosts/known_hosts"
  for i in $(seq 1 "$n"); do
    wait_engine "hubspot-host-$i" 60 || { docker logs --tail 20 "hubspot-host-$i" >&2; exit 1; }
    echo "$prefix.$((10 + i)) $(docker exec "hubspot-host-$i" cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1,2)" \
      >> "$root/ssh/test-hosts/known_hosts"
    echo "hubspot-host-$i: $prefix.$((10 + i)), engine $(docker exec "hubspot-host-$i" docker version -f '{{.Server.Version}}')"
  done
}

# Whether host $1's engine answers within $2 seconds.
wait_engine() {
  local _
  for _ in $(seq 1 $(($2 * 4))); do
    docker exec "$1" docker info >/dev/null 2>&1 && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || return 1
    sleep 0.25
  done
  return 1
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) down ;;
  *) echo "usage: $0 up [N] | down" >&2; exit 2 ;;
esac
