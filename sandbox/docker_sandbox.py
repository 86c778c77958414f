"""Docker containers as sandboxes (docker-py): limits applied at start, always removed."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

import docker
import docker.errors

from harness.config import SandboxLimits
from harness.protocols import SandboxError
from harness.types import ExecResult
from sandbox.output import CappedOutput

LABEL = "swe-monkeys"
RUN_LABEL = "swe-monkeys.run"


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
        except docker.errors.APIError as exc:
            raise SandboxError(f"exec failed: {exc.explanation or exc}") from exc
        out = CappedOutput(self.limits.log_cap_bytes)
        reader = threading.Thread(target=_drain, args=(stream, out), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if reader.is_alive():
            # Killing the whole container is the only way to be sure that every process the
            # command started (forks, daemons) stops; the session ends with it.
            self._kill()
            reader.join(10)
            return ExecResult(None, out.text(), True, time.monotonic() - start, out.dropped)
        try:
            code = api.exec_inspect(exec_id)["ExitCode"]
        except docker.errors.APIError as exc:
            raise SandboxError(f"exec inspect failed: {exc}") from exc
        return ExecResult(code, out.text(), False, time.monotonic() - start, out.dropped)

    def write_file(self, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(str(PurePosixPath(path).relative_to("/")))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            self.container.put_archive("/", buf.getvalue())
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot write {path}: {exc.explanation or exc}") from exc

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
        except docker.errors.APIError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


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
                labels={LABEL: "1", RUN_LABEL: run_id},
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
        except docker.errors.APIError as exc:
            _remove_quietly(container)
            raise SandboxError(
                f"cannot start a container from {image}: {exc.explanation or exc}"
            ) from exc
        except BaseException:
            _remove_quietly(container)
            raise
        session = DockerSession(self.client, container, limits)
        try:
            yield session
        finally:
            session.close()

    def cleanup(self, run_id: str | None = None) -> int:
        label = f"{RUN_LABEL}={run_id}" if run_id else LABEL
        containers = self.client.containers.list(all=True, filters={"label": label})
        for container in containers:
            _remove_quietly(container)
        return len(containers)


def _remove_quietly(container) -> None:
    if container is None:
        return
    try:
        container.remove(force=True)
    except docker.errors.APIError:
        pass
