"""Podman, for machines without a Docker daemon (HPC and university clusters): daemonless, and
rootless where the site allows. The harness talks to Podman's Docker-compatible API service
(`podman system service`), so the sandbox, the limits, the labels and the offline builds are
the Docker backend's own code, run against Podman.

The socket: $SWEM_PODMAN_SOCKET, else $CONTAINER_HOST, else rootful /run/podman/podman.sock,
else the rootless $XDG_RUNTIME_DIR/podman/podman.sock. `scripts/ensure-podman.sh` installs
Podman and starts the service (rootful here)."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import docker.errors

from harness.errors import UserError
from sandbox import backends
from sandbox.engine import EngineBackend

ROOTFUL_SOCKET = "/run/podman/podman.sock"


def sockets() -> list[str]:
    found = [os.environ.get("SWEM_PODMAN_SOCKET", ""), os.environ.get("CONTAINER_HOST", "")]
    found.append(f"unix://{ROOTFUL_SOCKET}")
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{Path(runtime) / 'podman' / 'podman.sock'}")
    return [s if "://" in s else f"unix://{s}" for s in found if s]


def podman_client() -> docker.DockerClient:
    tried = []
    for url in sockets():
        try:
            client = docker.DockerClient(base_url=url, timeout=120)
            client.ping()
            return client
        except docker.errors.DockerException:
            tried.append(url)
    raise UserError(
        f"cannot reach Podman's API service (tried {', '.join(tried)}): start it with "
        "`bash scripts/ensure-podman.sh`, or `podman system service --time=0 &` rootless"
    )


backends.register("podman", lambda: EngineBackend("podman", podman_client, "podman"))
