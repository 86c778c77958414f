"""Shared fixtures. Docker tests use the real engine (`make test` starts one); a missing engine
fails them loudly rather than skipping, so a green run always means Docker was exercised."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.config import ImageOptions, SandboxLimits

ROOT = Path(__file__).resolve().parents[1]
LITE = ROOT.parent / "shared" / "data" / "swe-bench-lite-test.jsonl"
_run_ids = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def swem_cache(tmp_path_factory) -> Path:
    """A private cache (git mirrors, the generated mini benchmark) for the whole session. The
    embedded models stay in the user's cache: they are checked, and 1.6 GB each time."""
    from agents.model_store import models_dir

    os.environ.setdefault("SWEM_MODELS", str(models_dir()))
    cache = tmp_path_factory.mktemp("swem-cache")
    os.environ["SWEM_CACHE"] = str(cache)
    os.environ["SWEM_VERDICT_CACHE"] = str(cache / "verdicts")
    return cache


BACKEND = os.environ.get("SWEM_TEST_SANDBOX", "docker")
"""The sandbox backend the container tests run on (`make test-podman` sets podman); the
commands the tests start take it from SWEM_SANDBOX."""
os.environ["SWEM_SANDBOX"] = BACKEND


@pytest.fixture(scope="session")
def docker_engine():
    """The Docker-API client of the backend under test (Docker, or Podman's service)."""
    from harness.errors import UserError
    from sandbox import backends

    try:
        client = backends.get(BACKEND).client
    except UserError as exc:
        pytest.fail(f"{exc} (run the suite with `make test`)")
    started = time.time() - 1
    yield client
    # The suite's promise: nothing it started is left behind, whatever the tests did. (Only
    # the session's own containers: another harness run on the machine is not ours to judge.)
    left = [
        c
        for c in client.containers.list(all=True, filters={"label": "swe-monkeys"})
        if _created(c) >= started and not _another_live_run(c)
    ]
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


def _another_live_run(container) -> bool:
    """Started by a harness process that is still running and is not this one (a
    validation in the background): not the suite's to remove."""
    from sandbox.docker_sandbox import OWNER_LABEL, owner_alive, owner_label

    owner = container.labels.get(OWNER_LABEL)
    return owner != owner_label() and bool(owner_alive(owner))


def _created(container) -> float:
    stamp = container.attrs["Created"]  # e.g. 2026-11-24T20:42:15.123456789Z
    return datetime.fromisoformat(stamp[:19]).replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="session")
def mini_instances():
    from harness import wiring

    wiring.register_minibench_specs()  # their eval scripts, whichever test runs first
    return {i.instance_id: i for i in wiring.load("mini")}


TEST_LIMITS = SandboxLimits(memory="512m", pids=256, cpus=1.0, timeout_s=60, log_cap_bytes=1 << 20)


@pytest.fixture
def make_pipeline(docker_engine, tmp_path):
    """A Docker verifier writing into a fresh run directory under tmp_path."""
    from harness import wiring

    def make(limits: SandboxLimits = TEST_LIMITS):
        run_id = f"test-{os.getpid()}-{next(_run_ids)}"
        return wiring.build_pipeline(
            run_id, tmp_path / "runs", limits, ImageOptions(pull=False), backend=BACKEND
        )

    return make


def containers_of(client, run_id: str) -> list:
    """The run's containers, uninspected: an inspect after the list fails the whole call for
    a container removed in between (eval removes them in the background), as the sandbox's
    own count once did."""
    label = f"swe-monkeys.run={run_id}"
    return client.containers.list(all=True, filters={"label": label}, sparse=True)


HARNESS = str(Path(sys.executable).parent / "harness")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn_harness(*args: str) -> subprocess.Popen:
    """Start the CLI as a terminal would, with SIGINT at its default. A test runner started as a
    background job of a non-interactive shell (as CI may be) inherits SIGINT ignored, and
    Python keeps an inherited ignore, so Ctrl-C would otherwise never arrive."""
    return subprocess.Popen(
        [HARNESS, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )
