# Sourced by the scripts that make local images with debootstrap (no registry here):
# `sudo_`, and `debian_mirror`, which installs debootstrap when missing and prints the machine's
# own Debian mirror (the one apt uses here), else Debian's default.
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

debian_mirror() {
  command -v debootstrap >/dev/null || {
    sudo_ apt-get update -qq >/dev/null
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local mirror
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)"
  echo "${mirror:-http://deb.debian.org/debian}"
}
