"""Which image verifies an instance, and building the offline ones.

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
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from harness.errors import UserError
from harness.types import Instance
from sandbox import swebench_adapter

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


@dataclass(frozen=True)
class ImageOptions:
    namespace: str = "swebench"
    """Registry namespace of the official eval images (swebench's default is "swebench")."""
    tag: str = "latest"
    pull: bool = True
    """Try `docker pull` when an official image is not present locally."""
    base_suite: str = "bookworm"
    """Debian release of the offline base image (bookworm has Python 3.11, bullseye 3.9)."""
    source: str = "auto"
    """auto: a local image, else the official one pulled, else an offline build; official:
    never build; build: always build offline."""


def _exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(client: docker.DockerClient, suite: str = "bookworm") -> str:
    """A Debian image with Python, pytest, git and patch, built once with debootstrap."""
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
            ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", name],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.wait()
        if imported.returncode != 0:
            raise UserError(f"docker import of {name} failed: {imported.stderr.strip()}")
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


class ImageResolver:
    """Finds, pulls or builds the image that verifies an instance, and remembers how."""

    def __init__(
        self,
        client: docker.DockerClient,
        options: ImageOptions,
        local_builders: dict[str, Callable[[Instance], str]] | None = None,
        env_builder=None,
    ) -> None:
        self.client = client
        self.options = options
        self.local_builders = local_builders or {}
        """Repo name -> builder, for repos whose images we build ourselves (mini)."""
        self.env_builder = env_builder
        """An EnvBuilder for offline builds of real SWE-bench environments, if configured."""
        self.described: dict[str, tuple[str, str]] = {}
        """image -> (source, fidelity note)."""

    def _official(self, instance: Instance) -> str:
        return swebench_adapter.official_image_name(
            instance, self.options.namespace, self.options.tag
        )

    def name_for(
        self, instance: Instance, local_name: Callable[[Instance], str] | None = None
    ) -> str:
        """The image's name without building or pulling it (a cache key for verdicts)."""
        if instance.repo in self.local_builders and local_name:
            return local_name(instance)
        official = self._official(instance)
        if self.env_builder and (
            self.options.source == "build"
            or (self.options.source == "auto" and not _exists(self.client, official))
        ):
            return self.env_builder.names(instance)[1]
        return official

    def image_for(self, instance: Instance) -> str:
        if builder := self.local_builders.get(instance.repo):
            return self._remember(builder(instance), "mini", "")
        name = self._official(instance)
        if self.options.source != "build":
            if _exists(self.client, name):
                return self._remember(name, "local", "")
            why = "pulling is off"
            if self.options.pull:
                try:
                    self.client.images.pull(name)
                    return self._remember(name, "pulled", "")
                except docker.errors.APIError as exc:
                    why = f"pull failed: {str(exc.explanation or exc).splitlines()[0][:120]}"
            if self.options.source == "official" or self.env_builder is None:
                raise UserError(
                    f"image {name} for {instance.instance_id} is missing ({why}): "
                    f"`docker pull {name}` or `docker load` it where a registry is reachable, "
                    "or build it offline with --image-source build"
                )
        from sandbox.env_build import BuildFailed

        missing = "" if self.options.source == "build" else f"image {name} is missing and "
        try:
            built = self.env_builder.build(instance)
        except (BuildFailed, UserError) as exc:
            raise UserError(
                f"{instance.instance_id}: {missing}the offline build failed: {exc}"
            ) from None
        return self._remember(built.image, "built", built.notes)

    def _remember(self, image: str, source: str, notes: str) -> str:
        self.described[image] = (source, notes)
        return image

    def describe(self, image: str) -> tuple[str, str]:
        return self.described.get(image, ("", ""))
