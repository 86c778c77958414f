"""Docker containers as sandboxes (docker-py): limits applied at start, always removed."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import docker
import docker.errors
import requests

from harness.config import SandboxLimits, size_bytes
from harness.protocols import SandboxError
from harness.types import ExecResult
from sandbox.output import CappedOutput

LABEL = "swe-monkeys"
RUN_LABEL = "swe-monkeys.run"
OWNER_LABEL = "swe-monkeys.owner"
"""host:pid:start-time of the process that started the container, so `harness clean` can tell
a live run's containers from those of a process that died (pid reuse is caught by the time)."""
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
DISK_POLL_S = 2.0


def _start_time(pid: int) -> str | None:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[19]  # starttime, in clock ticks since boot


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(label: str | None) -> bool | None:
    """True/False for an owner on this host; None when it cannot be told (another host, or a
    container from before owners were labelled)."""
    if not label or label.count(":") != 2:
        return None
    host, pid, start = label.split(":")
    if host != socket.gethostname():
        return None
    return pid.isdigit() and _start_time(int(pid)) == start


def docker_client() -> docker.DockerClient:
    """The engine from the environment (DOCKER_HOST or the local socket)."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        from harness.errors import UserError

        raise UserError(
            f"cannot reach the Docker engine ({exc}): start it with `make docker`"
        ) from None
    return client


class DockerSession:
    """One running container; every exec is bounded by its timeout."""

    def __init__(self, client: docker.DockerClient, container, limits: SandboxLimits) -> None:
        self.client = client
        self.container = container
        self.limits = limits
        self.closed = False
        self.killed = False

    def exec(self, command: str, timeout_s: float, workdir: str = "/testbed") -> ExecResult:
        if self.closed or self.killed:
            raise SandboxError("the container is gone (closed or killed by an earlier timeout)")
        api = self.client.api
        start = time.monotonic()
        try:
            exec_id = api.exec_create(self.container.id, ["bash", "-c", command], workdir=workdir)[
                "Id"
            ]
            stream = api.exec_start(exec_id, stream=True)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"exec failed: {_explain(exc)}") from exc
        out = CappedOutput(self.limits.log_cap_bytes)
        reader = threading.Thread(target=_drain, args=(stream, out), daemon=True)
        reader.start()
        written = self._watch(reader, start + timeout_s)
        if written is not None:  # past the disk limit: killed like a timeout, said apart
            self._kill()
            reader.join(10)
            return ExecResult(
                None, out.text(), False, time.monotonic() - start, out.dropped, written
            )
        if reader.is_alive():
            # Killing the whole container is the only way to be sure that every process the
            # command started (forks, daemons) stops; the session ends with it.
            self._kill()
            reader.join(10)
            return ExecResult(None, out.text(), True, time.monotonic() - start, out.dropped)
        try:
            code = api.exec_inspect(exec_id)["ExitCode"]
            state = self._state(settle_s=2.0 if code is None or code >= 128 else 0.0)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"the container or the engine went away: {_explain(exc)}") from exc
        if not state.get("Running"):
            # Not our timeout (that returns above): something outside stopped the container
            # (docker kill, an engine restart, the host's OOM killer). Its output says nothing
            # about the patch.
            raise SandboxError(
                f"the container stopped during the command (exit {state.get('ExitCode')}"
                f"{', OOM-killed' if state.get('OOMKilled') else ''}): killed from outside or "
                "the engine restarted"
            )
        return ExecResult(code, out.text(), False, time.monotonic() - start, out.dropped)

    def _watch(self, reader: threading.Thread, deadline: float) -> int | None:
        """Wait for the command until the deadline, measuring the container's writable layer
        every few seconds; the bytes written when that passes the disk limit, else None."""
        limit = size_bytes(self.limits.disk)
        while reader.is_alive() and time.monotonic() < deadline:
            reader.join(min(DISK_POLL_S, max(deadline - time.monotonic(), 0)))
            if limit is not None and (written := self._written()) > limit:
                return written
        # once more at the end: a burst between two polls counts too
        if limit is not None and not reader.is_alive() and (written := self._written()) > limit:
            return written
        return None

    def _written(self) -> int:
        """Bytes in the container's writable layer (0 when the engine cannot say now)."""
        try:
            listed = self.client.api.containers(
                all=True, filters={"id": self.container.id}, size=True
            )
        except ENGINE_ERRORS:
            return 0  # the exec's own error handling reports an engine that went away
        return (listed[0].get("SizeRw") or 0) if listed else 0

    def _state(self, settle_s: float) -> dict:
        """The container's state. A command killed by a signal may have died with its
        container (docker kill, an engine going down), whose state the engine records a moment
        after the exec's stream ends: wait up to settle_s for it to say so."""
        deadline = time.monotonic() + settle_s
        while True:
            state = self.client.api.inspect_container(self.container.id)["State"]
            if not state.get("Running") or time.monotonic() >= deadline:
                return state
            time.sleep(0.1)

    def write_file(self, path: str, content: str | bytes) -> None:
        self.write_files({path: content})

    def write_files(self, files: dict[str, str | bytes]) -> None:
        """One tar, one upload, however many files (each upload is a round trip to the
        engine and a layer of the container's filesystem touched)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, content in files.items():
                # Patches are bytes: a latin-1 file's lines reach us as surrogate escapes.
                data = (
                    content.encode("utf-8", "surrogateescape")
                    if isinstance(content, str)
                    else content
                )
                info = tarfile.TarInfo(str(PurePosixPath(path).relative_to("/")))
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        try:
            self.container.put_archive("/", buf.getvalue())
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot write {', '.join(files)}: {_explain(exc)}") from exc

    def read_file(self, path: str) -> bytes:
        try:
            chunks, _ = self.container.get_archive(path)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member else None
            if extracted is None:
                raise FileNotFoundError(path)
            return extracted.read()

    def _kill(self) -> None:
        self.killed = True
        try:
            self.container.kill()
        except ENGINE_ERRORS:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.container.remove(force=True)
        except ENGINE_ERRORS:
            pass  # gone already, or the engine is: `harness clean` sweeps by label later


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    if isinstance(exc, requests.RequestException | docker.errors.DockerException):
        return f"the Docker engine is unreachable ({type(exc).__name__})"
    return str(exc)


def _drain(stream: Iterator[bytes], out: CappedOutput) -> None:
    try:
        for chunk in stream:
            out.write(chunk)
    except Exception:  # noqa: BLE001 - the stream breaks when the container is killed
        pass


class DockerSandbox:
    """Starts one labelled container per session from an image that must exist locally."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    @contextmanager
    def open(self, image: str, limits: SandboxLimits, run_id: str) -> Iterator[DockerSession]:
        container = None
        try:
            container = self.client.containers.create(
                image,
                command=["sleep", "infinity"],
                labels={LABEL: "1", RUN_LABEL: run_id, OWNER_LABEL: owner_label()},
                network_mode=limits.network,
                mem_limit=limits.memory,
                memswap_limit=limits.memory,
                pids_limit=limits.pids,
                nano_cpus=int(limits.cpus * 1e9),
                working_dir="/",
            )
            container.start()
        except docker.errors.ImageNotFound as exc:
            _remove_quietly(container)
            raise SandboxError(f"image {image} is not available locally") from exc
        except ENGINE_ERRORS as exc:
            _remove_quietly(container)
            raise SandboxError(f"cannot start a container from {image}: {_explain(exc)}") from exc
        except BaseException:
            _remove_quietly(container)
            raise
        session = DockerSession(self.client, container, limits)
        try:
            yield session
        finally:
            session.close()

    def _labelled(self, run_id: str | None) -> list:
        label = f"{RUN_LABEL}={run_id}" if run_id else LABEL
        try:
            return self.client.containers.list(all=True, filters={"label": label})
        except ENGINE_ERRORS:
            return []  # the engine is gone; its containers went with it or `clean` gets them

    def count(self, run_id: str | None = None) -> int:
        return len(self._labelled(run_id))

    def cleanup(self, run_id: str | None = None, orphans_only: bool = False) -> int:
        """Remove the run's containers (every run's when None). With orphans_only, keep those
        whose owning process is alive or cannot be checked from here."""
        containers = self._labelled(run_id)
        if orphans_only:
            containers = [c for c in containers if owner_alive(c.labels.get(OWNER_LABEL)) is False]
        for container in containers:
            _remove_quietly(container)
        return len(containers)


def _remove_quietly(container) -> None:
    if container is None:
        return
    try:
        container.remove(force=True)
    except ENGINE_ERRORS:
        pass
