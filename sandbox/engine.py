"""What Docker and Podman share: both speak the Docker Engine API (Podman through its
compatible service), so one sandbox (docker_sandbox.DockerSandbox) and one image store serve
both. A backend of this kind is a name, a way to reach its engine and its command line
(docker_sandbox.py and podman.py register one each)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

import docker
import docker.errors

from harness.config import ImageOptions
from harness.errors import UserError
from harness.protocols import BuiltImage, ImageInfo, ImageSources
from harness.types import Instance
from sandbox import swebench_adapter
from sandbox.docker_sandbox import DockerSandbox
from sandbox.env_build import BuildFailed, EnvBuilder
from sandbox.images import build_testbed_image, ensure_base_image

PREFIX = "swe-monkeys/"
REGISTRY_PREFIXES = ("localhost/", "docker.io/")
"""Podman lists imported images under localhost/ and those built through its Docker API
under docker.io/; both answer to the short name."""


class EngineBackend:
    """A Docker-API engine registered as a sandbox backend."""

    def __init__(self, name: str, connect: Callable[[], docker.DockerClient], cli: str) -> None:
        self.name = name
        self.resource = name
        self.connect = connect
        self.cli = cli

    @cached_property
    def client(self) -> docker.DockerClient:
        return self.connect()

    def sandbox(self) -> DockerSandbox:
        return DockerSandbox(self.client)

    def images(self, options: ImageOptions, sources: ImageSources) -> EngineImages:
        return EngineImages(self.client, self.cli, options, sources)


class EngineImages:
    """Finds, pulls or builds the image that verifies an instance, and remembers how. One
    build at a time: two verifications of an issue must not build its image twice."""

    def __init__(
        self,
        client: docker.DockerClient,
        cli: str,
        options: ImageOptions,
        sources: ImageSources,
    ) -> None:
        self.client = client
        self.cli = cli
        self.options = options
        self.sources = sources
        self.env_builder = EnvBuilder(
            client, sources.checkout, sources.read, log_dir=sources.log_dir, engine_cli=cli
        )
        self.lock = threading.Lock()
        self.described: dict[str, tuple[str, str]] = {}
        """image -> (source, fidelity note)."""

    def _exists(self, name: str) -> bool:
        return self.image_id(name) is not None

    def image_id(self, name: str) -> str | None:
        try:
            return self.client.images.get(name).id
        except docker.errors.ImageNotFound:
            return None

    def _official(self, instance: Instance) -> str:
        return swebench_adapter.official_image_name(
            instance, self.options.namespace, self.options.tag
        )

    def _local(self, instance: Instance) -> bool:
        return instance.repo in self.sources.local_repos and self.sources.local_name is not None

    def name_for(self, instance: Instance) -> str:
        if self._local(instance):
            return self.sources.local_name(instance)
        official = self._official(instance)
        if self.options.source == "build" or (
            self.options.source == "auto" and not self._exists(official)
        ):
            return self.env_builder.names(instance)[1]
        return official

    def image_for(self, instance: Instance) -> str:
        if self._local(instance):
            return self._remember(self._local_image(instance), "mini", "")
        name = self._official(instance)
        if self.options.source != "build":
            if self._exists(name):
                return self._remember(name, "local", "")
            why = "pulling is off"
            if self.options.pull:
                try:
                    self.client.images.pull(name)
                    return self._remember(name, "pulled", "")
                except docker.errors.APIError as exc:
                    why = f"pull failed: {str(exc.explanation or exc).splitlines()[0][:120]}"
            if self.options.source == "official":
                raise UserError(
                    f"image {name} for {instance.instance_id} is missing ({why}): "
                    f"`{self.cli} pull {name}` or `{self.cli} load` it where a registry is "
                    "reachable, or build it offline with --image-source build"
                )
        missing = "" if self.options.source == "build" else f"image {name} is missing and "
        try:
            built = self.build(instance)
        except (BuildFailed, UserError) as exc:
            raise UserError(
                f"{instance.instance_id}: {missing}the offline build failed: {exc}"
            ) from None
        return self._remember(built.image, "built", built.notes)

    def _local_image(self, instance: Instance) -> str:
        with self.lock:
            base = ensure_base_image(self.client, self.options.base_suite, self.cli)
            checkout = self.sources.local_checkout
            return build_testbed_image(
                self.client,
                self.sources.local_name(instance),
                base,
                lambda dest: checkout(instance, dest),
            )

    def build(self, instance: Instance) -> BuiltImage:
        with self.lock:
            built = self.env_builder.build(instance)
        return BuiltImage(built.image, built.notes, built.seconds, built.reused)

    def _remember(self, image: str, source: str, notes: str) -> str:
        self.described[image] = (source, notes)
        return image

    def describe(self, image: str) -> tuple[str, str]:
        return self.described.get(image, ("", ""))

    def listing(self) -> list[ImageInfo]:
        found = []
        for image in self.client.images.list():
            labels = image.labels or {}
            for tag in image.tags:
                name = _short(tag)
                if name.startswith(PREFIX):
                    found.append(
                        ImageInfo(
                            name,
                            _kind(name, labels),
                            labels.get("swe-monkeys.python", ""),
                            labels.get("swe-monkeys.instance", ""),
                            labels.get("swe-monkeys.fidelity", ""),
                            int(image.attrs.get("Size", 0)),
                        )
                    )
        return found

    def remove(self, name: str) -> str:
        try:
            self.client.images.remove(name, force=True)
            return ""
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)

    def disk_bytes(self, names: list[str]) -> int:
        """Each layer once: an image's layers (RootFS) are sized from its history, whose
        entries that made a layer line up with them; where they do not, the image counts
        whole."""
        layers: dict[str, int] = {}
        whole = 0
        for name in dict.fromkeys(names):
            try:
                image = self.client.images.get(name)
                history = self.client.api.history(name)
            except docker.errors.APIError:
                continue
            diff_ids = image.attrs.get("RootFS", {}).get("Layers", [])
            sizes = [h.get("Size", 0) for h in reversed(history) if h.get("Size", 0) > 0]
            if len(sizes) == len(diff_ids):
                layers.update(zip(diff_ids, sizes, strict=True))
            else:
                whole += int(image.attrs.get("Size", 0))
        return sum(layers.values()) + whole


def _short(tag: str) -> str:
    for prefix in REGISTRY_PREFIXES:
        tag = tag.removeprefix(prefix)
    return tag


def _kind(name: str, labels: dict) -> str:
    if "swe-monkeys.instance" in labels or name.startswith(f"{PREFIX}mini."):
        return "instance"
    for kind in ("base", "toolchain", "env"):
        if name.startswith((f"{PREFIX}{kind}:", f"{PREFIX}{kind}.")):
            return kind
    return "other"
