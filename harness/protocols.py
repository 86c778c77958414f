"""The seams a fake or another implementation slots into without touching the pipeline."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from harness.config import SandboxLimits
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
        self, instance: Instance, worktree: Path, k: int, sampling: SamplingConfig
    ) -> Generation:
        """The worktree is the agent's to modify; it is left at the base commit on return."""
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

    def read_file(self, path: str) -> bytes:
        """Raises FileNotFoundError when absent."""
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


class SandboxError(RuntimeError):
    """The sandbox itself failed (engine gone, container vanished): an infrastructure error."""
