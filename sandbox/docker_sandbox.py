"""Docker containers as sandboxes (docker-py): limits applied at start, always removed."""

from __future__ import annotations

import atexit
import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}
"""The engine's codes in GET /containers/{id}/changes."""
QUIESCE = (
    "n=0; for p in /proc/[0-9]*; do pid=${p#/proc/}; "
    '[ "$pid" = 1 ] || [ "$pid" = $$ ] || { kill -9 "$pid" 2>/dev/null && n=$((n+1)); }; '
    "done; echo $n"
)
DISK_POLL_S = 2.0
MAX_STANDBY = 2
"""Containers started ahead at once (one per image, the most recent images)."""


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

    def __init__(
        self,
        client: docker.DockerClient,
        container,
        limits: SandboxLimits,
        remove: Callable[[object], None] | None = None,
    ) -> None:
        self.client = client
        self.container = container
        self.limits = limits
        self.remove = remove or _remove_quietly
        """How the container goes at close: at once, or handed to the sandbox's background."""
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
            # A command that exited by itself said all it had to say; one killed by a signal
            # may have died with its container (PID 1 cannot be stopped from inside).
            signalled = code is None or code >= 128
            state = self._state(settle_s=2.0) if signalled else {"Running": True}
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

    def quiesce(self) -> int:
        """SIGKILL to every process but PID 1 (the container's `sleep`) and this exec's own
        shell: a daemon an earlier command started cannot wait for files written next."""
        result = self.exec(QUIESCE, 60, workdir="/")
        return int(result.output.strip() or 0) if result.ok else 0

    def changes(self) -> list[tuple[str, str]] | None:
        try:
            listed = self.container.diff() or []
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot list the container's changes: {_explain(exc)}") from exc
        return [(CHANGE_KINDS.get(c.get("Kind"), "?"), c.get("Path", "")) for c in listed]

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
        self.remove(self.container)


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
    """Starts one labelled container per session from an image that must exist locally.

    With `overlap` (eval turns it on), container lifecycle leaves the critical path while every
    session still gets a fresh container: the next container of the same image and limits is
    created and started while a session runs (a standby per image, for the MAX_STANDBY most
    recent images), and a closed
    session's container is removed in the background. `settle` (also run by `cleanup` and at
    exit) waits for the removals and removes the standbys."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client
        self.overlap = False
        self._lock = threading.Lock()
        self._standby: dict[tuple, Future] = {}
        self._pending: set[Future] = set()
        self._retiring: set[Future] = set()
        """Evicted standbys, removed once started."""
        self._background: ThreadPoolExecutor | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client()
        return self._client

    @contextmanager
    def open(self, image: str, limits: SandboxLimits, run_id: str) -> Iterator[DockerSession]:
        key = (image, limits, run_id)
        container = self._take_standby(key) if self.overlap else None
        if container is None:
            container = self._start(image, limits, run_id)
        if self.overlap:
            self._prepare_standby(key)
        session = DockerSession(
            self.client, container, limits, self._remove_later if self.overlap else None
        )
        try:
            yield session
        finally:
            session.close()

    def _start(self, image: str, limits: SandboxLimits, run_id: str):
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
        return container

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(2, thread_name_prefix="swem-containers")
                atexit.register(self.settle)
            return self._background

    def _take_standby(self, key: tuple):
        """The standby container for key, once started; None when there is none or its start
        failed (then the session starts its own, and says why if that fails too)."""
        with self._lock:
            standby = self._standby.pop(key, None)
        if standby is None:
            return None
        try:
            container = standby.result()
        except Exception:  # noqa: BLE001 - a failed standby is only a missed shortcut
            return None
        if not self._running(container):  # an engine restart stops what was started before
            self._remove_later(container)
            return None
        return container

    def _running(self, container) -> bool:
        try:
            return bool(self.client.api.inspect_container(container.id)["State"].get("Running"))
        except ENGINE_ERRORS:
            return False

    def _prepare_standby(self, key: tuple) -> None:
        pool = self._pool()
        with self._lock:
            if key in self._standby:
                return
            self._standby[key] = pool.submit(self._start, *key)
            # The oldest image's standby goes: its issue's verifications are likely done.
            evicted = list(self._standby)[:-MAX_STANDBY]
            evicted = [self._standby.pop(k) for k in evicted]
            self._retiring.update(evicted)
        for standby in evicted:
            standby.add_done_callback(self._discard_standby)

    def _discard_standby(self, standby: Future) -> None:
        if standby.exception() is None:
            self._remove_later(standby.result())
        with self._lock:
            self._retiring.discard(standby)

    def _remove_later(self, container) -> None:
        removal = self._pool().submit(_remove_quietly, container)
        with self._lock:
            self._pending.add(removal)
        removal.add_done_callback(self._forget)

    def _forget(self, removal: Future) -> None:
        with self._lock:
            self._pending.discard(removal)

    def settle(self) -> None:
        """Wait for background removals; remove the standby containers."""
        with self._lock:
            standbys, self._standby = [*self._standby.values(), *self._retiring], {}
            pending = list(self._pending)
        for standby in standbys:
            try:
                _remove_quietly(standby.result())
            except Exception:  # noqa: BLE001 - it never started: nothing to remove
                pass
        for removal in pending:
            removal.result()

    def _labelled(self, run_id: str | None) -> list[dict]:
        """The engine's list entries (id and labels) of the run's containers. The low-level
        list, not `containers.list`: that inspects each container after listing, and one
        removed in between (by the background, or another run) fails the whole call."""
        label = f"{RUN_LABEL}={run_id}" if run_id else LABEL
        try:
            return self.client.api.containers(all=True, filters={"label": label})
        except ENGINE_ERRORS:
            return []  # the engine is gone; its containers went with it or `clean` gets them

    def count(self, run_id: str | None = None) -> int:
        return len(self._labelled(run_id))

    def cleanup(self, run_id: str | None = None, orphans_only: bool = False) -> int:
        """Remove the run's containers (every run's when None). With orphans_only, keep those
        whose owning process is alive or cannot be checked from here."""
        if not orphans_only:
            self.settle()
        containers = self._labelled(run_id)
        if orphans_only:
            containers = [
                c
                for c in containers
                if owner_alive((c.get("Labels") or {}).get(OWNER_LABEL)) is False
            ]
        for container in containers:
            try:
                self.client.api.remove_container(container["Id"], force=True)
            except ENGINE_ERRORS:
                pass
        return len(containers)


def _remove_quietly(container) -> None:
    if container is None:
        return
    try:
        container.remove(force=True)
    except ENGINE_ERRORS:
        pass
