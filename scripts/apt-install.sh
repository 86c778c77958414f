# Sourced by ensure-docker.sh and ensure-podman.sh: `fail MESSAGE` and `apt_install PKG...`
# (root with apt only; one `apt-get update` per script).

fail() { echo "error: $1" >&2; exit 1; }

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  can_install || return 1
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

ensure_debootstrap() {
  if ! command -v debootstrap >/dev/null 2>&1 && ! [ -x /usr/sbin/debootstrap ]; then
    apt_install debootstrap || fail "debootstrap is missing: install it (apt-get install debootstrap)."
  fi
}
