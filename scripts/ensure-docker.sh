#!/usr/bin/env bash
# Make sure a Docker engine answers and debootstrap is present (the mini benchmark's base image
# is built offline with it). Installs and starts what it can; otherwise one line saying what to do.
set -u

. "$(dirname "$0")/apt-install.sh"
ensure_debootstrap

docker info >/dev/null 2>&1 && exit 0

if ! command -v dockerd >/dev/null 2>&1; then
  apt_install docker.io || fail "no Docker engine: install one (apt-get install docker.io) and start it."
fi

if [ "$(id -u)" != 0 ]; then
  fail "Docker is installed but not running: start it (sudo systemctl start docker)."
fi

log=${SWEM_DOCKERD_LOG:-/tmp/swe-monkeys-dockerd.log}
echo "starting dockerd (log: $log)" >&2
setsid nohup dockerd >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
fail "dockerd did not come up within 60 s: see $log."
