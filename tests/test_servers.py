"""Managed model servers: the vLLM command line built from user options, and start failures."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from agents.servers import ManagedServer, VllmOptions, free_port, vllm_command
from harness.errors import UserError
from tests.conftest import spawn_harness


def test_vllm_command_line_carries_the_users_gpu_options():
    options = VllmOptions(
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        tensor_parallel_size=4,
        gpu_memory_utilization=0.85,
        max_model_len=32768,
        dtype="bfloat16",
        extra_args=("--max-num-seqs", "512"),
    )
    assert vllm_command(options, 8011) == [
        "vllm",
        "serve",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
        "--enable-prefix-caching",
        "--tensor-parallel-size",
        "4",
        "--gpu-memory-utilization",
        "0.85",
        "--served-model-name",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "--max-model-len",
        "32768",
        "--dtype",
        "bfloat16",
        "--max-num-seqs",
        "512",
    ]


def test_vllm_defaults_keep_prefix_caching_and_one_gpu():
    cmd = vllm_command(
        VllmOptions("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", served_model_name="coder"), 9000
    )
    assert "--enable-prefix-caching" in cmd and "--max-model-len" not in cmd
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "1"
    assert cmd[cmd.index("--served-model-name") + 1] == "coder"


def test_a_server_that_dies_at_start_is_a_one_line_error():
    server = ManagedServer(
        ["python3", "-c", "import sys; print('no GPU found'); sys.exit(3)"],
        free_port(),
        "m",
        startup_timeout_s=30,
    )
    with pytest.raises(UserError, match=r"exited \(3\) while starting: no GPU found"):
        server.start()


def test_a_missing_server_binary_is_a_one_line_error():
    with pytest.raises(UserError, match="cannot start vllm-not-installed"):
        ManagedServer(["vllm-not-installed"], free_port(), "m").start()


def server_children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", "llama-server"], capture_output=True, text=True
    ).stdout.split()
    return [int(p) for p in found]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_stops_the_embedded_server(sig, tmp_path):
    proc = spawn_harness(
        "run",
        "--issue",
        "swe-monkeys__minicalc-1",
        "-k",
        "2",
        "--max-tokens",
        "400",
        "--no-verify",
        "--runs-dir",
        str(tmp_path),
    )
    deadline = time.monotonic() + 120
    while not (children := server_children(proc.pid)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    time.sleep(4)  # started, and most likely generating
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    time.sleep(0.5)
    assert not any(alive(pid) for pid in children)
