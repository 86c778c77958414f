"""A sandbox backend that lives in this one module: sessions are folders on the host (the
local test double), commands run with their absolute paths moved below the session's root,
and an "image" is a checkout of the instance's repo. It isolates nothing. Registering it is
all it takes for `harness verify --sandbox fake` to verify through it (test_backends.py)."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from harness.config import ImageOptions
from harness.protocols import BuiltImage, ImageInfo, ImageSources
from harness.types import Instance
from sandbox import backends
from sandbox.local import LocalSandbox, LocalSession

MOVED = re.compile(r"(?<![\w./-])/(testbed|opt|tmp|eval\.sh)(?=[/\s'\";)]|$)")
"""The container paths the verifier and the eval script use."""


class FakeSession(LocalSession):
    def moved(self, text: str) -> str:
        return MOVED.sub(lambda m: f"{self.root}/{m[1]}", text)

    def exec(self, command: str, timeout_s: float, workdir: str = "/testbed"):
        on_path = f'export PATH="{Path(sys.executable).parent}:$PATH"; '
        return super().exec(on_path + self.moved(command), timeout_s, workdir)

    def write_file(self, path: str, content: str | bytes) -> None:
        if path.endswith(".sh") and isinstance(content, str):  # the eval script
            content = self.moved(content)
        super().write_file(path, content)


class FakeSandbox(LocalSandbox):
    session_class = FakeSession


class FakeImages:
    """An image is a folder holding the repo at the base commit."""

    def __init__(self, sources: ImageSources) -> None:
        self.sources = sources
        self.folder = Path(tempfile.mkdtemp(prefix="swem-fake-images-"))

    def name_for(self, instance: Instance) -> str:
        return str(self.folder / instance.instance_id)

    def image_for(self, instance: Instance) -> str:
        dest = Path(self.name_for(instance))
        if not dest.exists():
            self.sources.local_checkout(instance, dest)
        return str(dest)

    def describe(self, image: str) -> tuple[str, str]:
        return ("fake", "")

    def image_id(self, name: str) -> str | None:
        return name if Path(name).exists() else None

    def build(self, instance: Instance) -> BuiltImage:
        return BuiltImage(self.image_for(instance), "", 0.0, False)

    def listing(self) -> list[ImageInfo]:
        return [ImageInfo(str(p), "instance", "", p.name, "", 0) for p in self.folder.iterdir()]

    def remove(self, name: str) -> str:
        shutil.rmtree(name, ignore_errors=True)
        return ""

    def disk_bytes(self, names: list[str]) -> int:
        return 0


class FakeBackend:
    name = "fake"
    resource = "fake"

    def sandbox(self) -> FakeSandbox:
        return FakeSandbox()

    def images(self, options: ImageOptions, sources: ImageSources) -> FakeImages:
        return FakeImages(sources)


def register() -> None:
    backends.register("fake", FakeBackend)
