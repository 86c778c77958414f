"""The offline bases and thin testbed images every Docker-API engine builds.

Real SWE-bench rows use the official prebuilt eval images. The mini benchmark's images are built
here, offline: a Debian base made with debootstrap from the host's own Debian mirror, then one
thin image per instance with its repo at /testbed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from harness.errors import UserError

BASE_PACKAGES = ("python3", "python3-pytest", "python3-venv", "git", "patch", "ca-certificates")
# swebench's eval scripts start with `source /opt/miniconda3/bin/activate; conda activate
# testbed`. The base image has no conda, so both are harmless no-ops and the official script
# runs unchanged against the system Python.
_SHIM_NOTE = "# swe-monkeys: no conda here; the system Python is the env\n"
CONDA_SHIMS = {
    "opt/miniconda3/bin/activate": _SHIM_NOTE,
    "usr/local/bin/conda": "#!/bin/sh\n" + _SHIM_NOTE + "exit 0\n",
}


def host_debian_mirror() -> str:
    """The Debian mirror this host's apt uses, so image builds follow the site's configuration.
    SWEM_DEBIAN_MIRROR overrides it."""
    if mirror := os.environ.get("SWEM_DEBIAN_MIRROR"):
        return mirror
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M
        ):
            if "security" not in uri and "debian" in uri:
                return uri
    raise UserError("no Debian mirror found in /etc/apt: set SWEM_DEBIAN_MIRROR to one")


def _exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(
    client: docker.DockerClient, suite: str = "bookworm", engine_cli: str = "docker"
) -> str:
    """A Debian image with Python, pytest, git and patch, built once with debootstrap and
    imported with the engine's command line (`docker import`, `podman import`)."""
    # The tag carries a hash of what goes in, so a changed package list builds a new base.
    digest = hashlib.sha256(repr((BASE_PACKAGES, CONDA_SHIMS)).encode()).hexdigest()[:8]
    name = f"swe-monkeys/base:{suite}-{digest}"
    if _exists(client, name):
        return name
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise UserError("debootstrap is missing: install it (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="swem-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            suite,
            str(rootfs),
            host_debian_mirror(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
            raise UserError(f"debootstrap of {suite} failed ({last[0]}): check the Debian mirror")
        for rel, text in CONDA_SHIMS.items():
            (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
            (rootfs / rel).write_text(text)
            (rootfs / rel).chmod(0o755)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [engine_cli, "import", "--change", 'CMD ["/bin/bash"]', "-", name],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.wait()
        if imported.returncode != 0:
            raise UserError(f"{engine_cli} import of {name} failed: {imported.stderr.strip()}")
    return name


def build_testbed_image(
    client: docker.DockerClient, name: str, base: str, checkout: Callable[[Path], None]
) -> str:
    """A thin image over `base` with the repo at /testbed; `checkout(dest)` fills the repo."""
    if _exists(client, name):
        return name
    with tempfile.TemporaryDirectory(prefix="swem-ctx-") as ctx:
        checkout(Path(ctx) / "testbed")
        (Path(ctx) / "Dockerfile").write_text(
            f"FROM {base}\nCOPY testbed /testbed\n"
            "RUN git config --global user.email harness@swe-monkeys && "
            "git config --global user.name swe-monkeys\nWORKDIR /testbed\n"
        )
        try:
            client.images.build(path=ctx, tag=name, rm=True, pull=False)
        except docker.errors.BuildError as exc:
            raise UserError(f"building {name} failed: {exc.msg}") from None
    return name
