"""A sandbox on the host: a temporary root directory and subprocesses. A test double for the
sandbox seam (fast, no Docker); it isolates nothing, so it is never used to verify patches."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.config import SandboxLimits
from harness.protocols import SandboxError
from harness.types import ExecResult
from sandbox.output import CappedOutput


class LocalSession:
    """Absolute paths inside the session map below a private root directory."""

    def __init__(self, root: Path, limits: SandboxLimits) -> None:
        self.root = root
        self.limits = limits
        self.closed = False

    def host_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def exec(self, command: str, timeout_s: float, workdir: str = "/testbed") -> ExecResult:
        if self.closed:
            raise SandboxError("the session is closed")
        cwd = self.host_path(workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out = CappedOutput(self.limits.log_cap_bytes)
        reader = threading.Thread(
            target=lambda: [out.write(c) for c in iter(lambda: proc.stdout.read1(65536), b"")],
            daemon=True,
        )
        reader.start()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            # The whole process group, so children the command forked stop too.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(5)
            return ExecResult(None, out.text(), True, time.monotonic() - start, out.dropped)
        reader.join(5)
        return ExecResult(proc.returncode, out.text(), False, time.monotonic() - start, out.dropped)

    def write_file(self, path: str, content: str | bytes) -> None:
        target = self.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(
            content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content
        )

    def write_files(self, files: dict[str, str | bytes]) -> None:
        for path, content in files.items():
            self.write_file(path, content)

    def read_file(self, path: str) -> bytes:
        return self.host_path(path).read_bytes()

    def quiesce(self) -> int:
        return 0  # its processes are the host's: none can be told apart safely

    def changes(self) -> list[tuple[str, str]] | None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            shutil.rmtree(self.root, ignore_errors=True)


class LocalSandbox:
    """`image` names a host directory copied to /testbed, or is empty for an empty root."""

    session_class = LocalSession
    """What a session is (a subclass may change how commands run)."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[LocalSession]] = {}

    @contextmanager
    def open(self, image: str, limits: SandboxLimits, run_id: str) -> Iterator[LocalSession]:
        root = Path(tempfile.mkdtemp(prefix="swem-local-"))
        if image:
            shutil.copytree(image, root / "testbed", symlinks=True)
        session = self.session_class(root, limits)
        self.sessions.setdefault(run_id, []).append(session)
        try:
            yield session
        finally:
            session.close()

    def count(self, run_id: str | None = None) -> int:
        runs = [run_id] if run_id else list(self.sessions)
        return sum(not s.closed for r in runs for s in self.sessions.get(r, []))

    def cleanup(self, run_id: str | None = None, orphans_only: bool = False) -> int:
        runs = [run_id] if run_id else list(self.sessions)
        left = [s for r in runs for s in self.sessions.pop(r, []) if not s.closed]
        for session in left:
            session.close()
        return len(left)
