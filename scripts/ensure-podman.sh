#!/usr/bin/env bash
# Make sure Podman's Docker-compatible API service answers (the harness's podman backend talks
# to it), with debootstrap for the offline bases. Rootful here: installs podman from Debian and
# starts `podman system service` on /run/podman/podman.sock. Rootless (no root, e.g. a Slurm
# node): `podman system service --time=0 &` as the user serves $XDG_RUNTIME_DIR/podman/podman.sock,
# which the harness finds by itself.
set -u

. "$(dirname "$0")/apt-install.sh"
SOCKET=/run/podman/podman.sock
ensure_debootstrap
if ! command -v podman >/dev/null 2>&1; then
  apt_install podman || fail "no Podman: install it (apt-get install podman)."
fi
[ "$(id -u)" = 0 ] || fail "start Podman's service as your user: podman system service --time=0 &"

# Podman gives containers nofile and nproc limits of 1048576 by default. Where the host's own
# hard limits are lower (here: 20000 open files; the service itself keeps 32768 processes),
# runc cannot raise them and no container starts ("error setting rlimit type 7"). Ask for
# what the host allows.
conf=/etc/containers/containers.conf
if ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "$nofile" "$nofile" "$nproc" "$nproc" >> "$conf"
fi

curl_ping() { python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect('$SOCKET'); s.sendall(b'GET /_ping HTTP/1.0\r\n\r\n'); sys.exit(0 if b'200' in s.recv(64) else 1)" 2>/dev/null; }
# A service started from a folder that was removed since (a CI checkout cloned again) still
# answers pings but starts no container: conmon inherits its working directory ("Failed to
# get working directory", the API says "write child: broken pipe"). Restart such a service.
for pid in $(pgrep -f "podman system service.*$SOCKET"); do
  if readlink "/proc/$pid/cwd" | grep -q '(deleted)$'; then
    echo "restarting podman system service (its working directory was removed)" >&2
    kill "$pid" && sleep 1
  fi
done
curl_ping && exit 0

mkdir -p "$(dirname "$SOCKET")"
log=${SWEM_PODMAN_LOG:-/tmp/swe-monkeys-podman.log}
echo "starting podman system service (log: $log)" >&2
(cd / && setsid nohup podman system service --time=0 "unix://$SOCKET" >"$log" 2>&1 < /dev/null &)
for _ in $(seq 1 60); do
  curl_ping && exit 0
  sleep 1
done
fail "Podman's service did not come up within 60 s: see $log."
