"""The seams a fake or another implementation slots into without touching the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.config import ImageOptions, SandboxLimits
from harness.types import Completion, ExecResult, Generation, Instance, SamplingConfig


class ModelBackend(Protocol):
    """A chat model that returns many samples of one prompt."""

    model_name: str

    async def complete(
        self,
        messages: list[dict],
        sampling: SamplingConfig,
        k: int,
        tools: list[dict] | None = None,
    ) -> list[Completion]:
        """Exactly k completions. A sample that failed after retries is a Completion with its
        `error` set, never an exception, so one bad request costs one sample, not the run."""
        ...


class PatchAgent(Protocol):
    """Turns an issue into k candidate patches against a checkout of its base commit."""

    name: str

    async def generate(
        self,
        instance: Instance,
        worktree: Path,
        k: int,
        sampling: SamplingConfig,
        indices: list[int] | None = None,
    ) -> Generation:
        """k candidates, for the samples numbered `indices` in the run (default 0..k-1):
        sample i is asked for with `sampling.seed` + i, so a resumed issue asks for the
        samples an uninterrupted run would have. The worktree is the agent's to modify; it
        is left at the base commit on return."""
        ...


class SandboxSession(Protocol):
    """One isolated machine (a container) with the instance's repo at /testbed."""

    def exec(self, command: str, timeout_s: float, workdir: str = "/testbed") -> ExecResult:
        """Run `command` with bash. Never raises for the command's own failure or timeout:
        those come back in the ExecResult (a timeout kills every process of the session).
        Raises SandboxError when the sandbox itself is gone."""
        ...

    def write_file(self, path: str, content: str | bytes) -> None:
        """Create or replace an absolute path inside the sandbox."""
        ...

    def write_files(self, files: dict[str, str | bytes]) -> None:
        """write_file for several paths at once (a container engine takes them in one upload)."""
        ...

    def read_file(self, path: str) -> bytes:
        """Raises FileNotFoundError when absent."""
        ...

    def quiesce(self) -> int:
        """Stop every process a command left running in the sandbox (its init excepted);
        how many. A sandbox that cannot tell its own processes from the host's stops none."""
        ...

    def changes(self) -> list[tuple[str, str]] | None:
        """The sandbox's file changes since it started, as the engine recorded them from
        outside ("A" added, "C" changed, "D" deleted; absolute paths); None when the sandbox
        cannot tell."""
        ...

    def close(self) -> None:
        """Remove the sandbox and everything in it; idempotent."""
        ...


class Sandbox(Protocol):
    """Starts sessions from images. Every session it starts is labelled with its run id."""

    def open(
        self, image: str, limits: SandboxLimits, run_id: str
    ) -> AbstractContextManager[SandboxSession]:
        """A session that is closed on leaving the block, also on errors and Ctrl-C."""
        ...

    def cleanup(self, run_id: str | None = None, orphans_only: bool = False) -> int:
        """Remove sessions left behind by `run_id` (all runs when None); returns how many.
        With orphans_only, only sessions whose owning process is known to be dead."""
        ...

    def count(self, run_id: str | None = None) -> int:
        """Sessions of `run_id` (of every run when None) still there."""
        ...


class SandboxError(RuntimeError):
    """The sandbox itself failed (engine gone, container vanished): an infrastructure error."""


@dataclass(frozen=True)
class ImageSources:
    """Where a backend's image builds get their repositories; how they build is the backend's."""

    checkout: Callable[[Instance, Path], Path]
    """A SWE-bench repo at the instance's base commit, into the given folder."""
    read: Callable[[Instance, str], str | None]
    """A file of the repo at the environment setup commit (None when absent)."""
    local_repos: frozenset[str] = frozenset()
    """Repos whose images are a base plus the repo and nothing else (the mini benchmark)."""
    local_checkout: Callable[[Instance, Path], object] | None = None
    local_name: Callable[[Instance], str] | None = None
    log_dir: Path | None = None
    """Where each image build's whole output is kept."""


@dataclass(frozen=True)
class BuiltImage:
    image: str
    notes: str
    """Fidelity notes: where the environment differs from the official one."""
    seconds: float
    reused: bool


@dataclass(frozen=True)
class ImageInfo:
    name: str
    kind: str
    """base, toolchain, env or instance."""
    python: str
    instance: str
    fidelity: str
    size_bytes: int


class ImageStore(Protocol):
    """A backend's images: the one that verifies an instance, found, pulled or built."""

    def image_for(self, instance: Instance) -> str:
        """Ready to open (found, pulled or built); UserError with the fix when it cannot be."""
        ...

    def name_for(self, instance: Instance) -> str:
        """The name image_for would give, without building or pulling anything."""
        ...

    def describe(self, image: str) -> tuple[str, str]:
        """(source, fidelity notes) of an image image_for gave: local, pulled, built, mini."""
        ...

    def image_id(self, name: str) -> str | None:
        """The content id of a present image (verdict cache keys); None when absent."""
        ...

    def build(self, instance: Instance) -> BuiltImage:
        """Build the instance's environment offline (BuildFailed or UserError naming why)."""
        ...

    def listing(self) -> list[ImageInfo]:
        """The harness's images."""
        ...

    def remove(self, name: str) -> str:
        """Remove an image; '' when removed, else why it was kept."""
        ...

    def disk_bytes(self, names: list[str]) -> int:
        """What the named images hold on disk together, shared layers counted once."""
        ...


class Backend(Protocol):
    """A place verification runs: containers (Docker, Podman) or anything that can open a
    SandboxSession with an instance's repo at /testbed. Registered by name in
    sandbox/backends.py; `--sandbox NAME` chooses one."""

    name: str
    resource: str
    """The Ray custom resource of the nodes that can run it."""

    def sandbox(self) -> Sandbox: ...

    def images(self, options: ImageOptions, sources: ImageSources) -> ImageStore: ...
