"""The Ray executor on a real local cluster (a head and a Docker worker node, on loopback):
results identical to a local run, and a worker killed mid-task costs only a retry."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.scripted_server import Reply, ScriptedServer
from harness.cli import app
from tests.conftest import containers_of, spawn_harness
from tests.test_eval import comparable, eval_args, lines, responder

RAY = str(Path(sys.executable).parent / "ray")
ROOT = Path(__file__).resolve().parents[1]
ISOLATED = os.environ.get("SWEM_RAY_NETNS") == "1"
"""Ray announces the machine's interface address whatever --node-ip-address says, and tests
may send traffic to loopback only. So these tests run inside a network namespace whose only
interface is loopback (Docker is still reached through its unix socket): from outside, one
test re-runs this module there."""
in_namespace = pytest.mark.skipif(not ISOLATED, reason="runs inside the loopback-only netns")


@pytest.mark.skipif(ISOLATED, reason="already inside the namespace")
def test_ray_suite_in_a_loopback_only_network_namespace():
    pytest.importorskip("ray")
    inner = (
        f"ip link set lo up && SWEM_RAY_NETNS=1 exec {sys.executable} -m pytest -q "
        f"-p no:cacheprovider {Path(__file__).relative_to(ROOT)}"
    )
    done = subprocess.run(
        ["unshare", "--net", "bash", "-c", inner],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout, done.stdout[-2000:]


SLOW_FIX = (
    '### inventory/report.py\n<<<<<<< SEARCH\n"""A valued stock report."""\n=======\n'
    '"""A valued stock report."""\nimport time\n\ntime.sleep(4)\n>>>>>>> REPLACE\n'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    subprocess.run([RAY, "stop", "--force"], capture_output=True)
    subprocess.run(
        [
            RAY,
            "start",
            "--head",
            "--port",
            str(port),
            "--num-cpus",
            "0",
            "--include-dashboard=false",
            *common,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            RAY,
            "start",
            "--address",
            f"127.0.0.1:{port}",
            "--num-cpus",
            "2",
            "--resources",
            '{"docker": 2}',
            *common,
        ],
        check=True,
        capture_output=True,
    )
    yield f"127.0.0.1:{port}"
    import ray

    ray.shutdown()
    subprocess.run([RAY, "stop", "--force"], capture_output=True)


def with_slow_patch(base):
    def respond(body):
        text = body["messages"][-1]["content"]
        if "Stock values" in text and "Which of these files" not in text:
            return [Reply(SLOW_FIX) for _ in range(body["n"])]
        return base(body)

    return respond


def fresh_cache(monkeypatch, tmp_path, name):
    monkeypatch.setenv("SWEM_CACHE", str(tmp_path / f"cache-{name}"))
    monkeypatch.setenv("SWEM_VERDICT_CACHE", str(tmp_path / f"verdicts-{name}"))


@in_namespace
def test_eval_on_ray_matches_a_local_run(ray_cluster, docker_engine, tmp_path, monkeypatch):
    with ScriptedServer([], responder=responder()) as server:
        fresh_cache(monkeypatch, tmp_path, "ray")
        on_ray = CliRunner().invoke(
            app,
            eval_args(
                server, tmp_path, "ray", 4, "--executor", "ray", "--ray-address", ray_cluster
            ),
        )
        assert on_ray.exit_code == 0, on_ray.output
        fresh_cache(monkeypatch, tmp_path, "local")
        local = CliRunner().invoke(app, eval_args(server, tmp_path, "local", 4))
        assert local.exit_code == 0, local.output
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    workers = {v["versions"]["worker"] for v in lines(tmp_path / "ray" / "verdicts.jsonl")}
    assert workers and all(not w.endswith(f":{os.getpid()}") for w in workers)
    assert (tmp_path / "ray" / "artifacts").is_dir()
    log = json.loads((tmp_path / "ray" / "verdicts.jsonl").read_text().splitlines()[0])["log_path"]
    assert not Path(log).is_absolute()
    assert (tmp_path / "ray" / log).read_text().count(">>>>> Start Test Output")


@in_namespace
def test_a_killed_worker_costs_only_a_retry(ray_cluster, docker_engine, tmp_path, monkeypatch):
    with ScriptedServer([], responder=with_slow_patch(responder())) as server:
        fresh_cache(monkeypatch, tmp_path, "ref")
        reference = CliRunner().invoke(app, eval_args(server, tmp_path, "ref", 2))
        assert reference.exit_code == 0, reference.output
        fresh_cache(monkeypatch, tmp_path, "kill")
        proc = spawn_harness(
            *eval_args(
                server, tmp_path, "kill", 2, "--executor", "ray", "--ray-address", ray_cluster
            )
        )
        deadline, killed = time.monotonic() + 180, None
        while killed is None:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            found = subprocess.run(
                ["pgrep", "-f", "ray::remote_verify"], capture_output=True, text=True
            ).stdout.split()
            if found and len(lines(tmp_path / "kill" / "candidates.jsonl")) == 6:
                time.sleep(1)  # inside the slow test suite by now
                killed = int(found[0])
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output
    killed_run, reference_run = comparable(tmp_path / "kill"), comparable(tmp_path / "ref")
    assert killed_run == reference_run
    assert killed_run[2] == len(set(killed_run[1]))  # every patch verified once, none twice
    assert containers_of(docker_engine, "kill") == []


@in_namespace
def test_model_servers_as_ray_actors_share_the_requests(ray_cluster):
    """vLLM's path on GPU nodes, with a stand-in server so it runs on this CPU machine."""
    import asyncio

    import ray

    from agents.openai_model import BalancedModel, ClientOptions, OpenAICompatModel
    from agents.ray_servers import start_server_actors, stop_server_actors
    from harness.types import SamplingConfig

    ray.init(
        address=ray_cluster,
        ignore_reinit_error=True,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )

    def command(port: int, host: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "agents.scripted_server",
            "--port",
            str(port),
            "--reply",
            f"served on {port}",
        ]

    urls, actors = start_server_actors(
        command, "scripted", replicas=2, num_gpus=0, ready_path="/v1/models"
    )
    try:
        assert len(set(urls)) == 2 and all(u.startswith("http://127.0.0.1:") for u in urls)
        model = BalancedModel([OpenAICompatModel(ClientOptions(u, "scripted")) for u in urls])
        answers = [
            asyncio.run(model.complete([{"role": "user", "content": "hi"}], SamplingConfig(), 1))[
                0
            ].text
            for _ in range(4)
        ]
        assert len(set(answers)) == 2 and answers[0] == answers[2]
    finally:
        stop_server_actors(actors)
    gone = OpenAICompatModel(ClientOptions(urls[0], "scripted", retries=1))
    (after,) = asyncio.run(gone.complete([{"role": "user", "content": "hi"}], SamplingConfig(), 1))
    assert after.error and "cannot reach the model server" in after.error  # stopped with the actor
