"""Offline environment builds in real Docker: a Debian base from debootstrap, a venv with pytest
from the package index, the repo at /testbed; then verification on the built image. The mini
benchmark's repo stands in for a real one, given a real-style swebench spec."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from typer.testing import CliRunner

from harness import wiring
from harness.cli import app
from sandbox import swebench_adapter
from sandbox.docker_sandbox import DockerSandbox
from sandbox.env_build import BuildFailed
from sandbox.verifier import Verifier
from tests.conftest import TEST_LIMITS

CALC = "swe-monkeys__minicalc-1"
SPECS = {
    "env-pytest": {"python": "3.9", "packages": "pytest", "test_cmd": "pytest -rA"},
    "env-bad": {
        "python": "3.9",
        "packages": "pytest",
        "test_cmd": "pytest -rA",
        "pip_packages": ["swe-monkeys-no-such-package==0.0.1"],
    },
}


@pytest.fixture(scope="module")
def builder(docker_engine):
    wiring.register_minibench_specs()
    swebench_adapter.register_repo("swe-monkeys/minicalc", SPECS)
    return wiring.env_builder(docker_engine)


@pytest.fixture(scope="module")
def instance(mini_instances):
    return dataclasses.replace(mini_instances[CALC], version="env-pytest")


def test_built_environment_verifies_gold_and_empty(builder, instance, docker_engine, tmp_path):
    built = builder.build(instance)
    labels = docker_engine.images.get(built.image).labels
    assert labels["swe-monkeys.python"] == "3.9" and labels["swe-monkeys.suite"] == "bullseye"
    assert labels["swe-monkeys.fidelity"] == "conda packages installed with pip"

    def artifacts(instance_id: str, sha: str):
        path = tmp_path / sha[:16]
        path.mkdir(exist_ok=True)
        return path

    verifier = Verifier(
        DockerSandbox(docker_engine), lambda i: built.image, TEST_LIMITS, "envbuild", artifacts
    )
    gold = verifier.verify(instance, instance.gold_patch)
    empty = verifier.verify(instance, "")
    assert gold.status.value == "resolved", gold.reason
    assert empty.status.value == "unresolved"


def test_a_rebuild_with_nothing_changed_takes_seconds(builder, instance):
    builder.build(instance)
    start = time.monotonic()
    again = builder.build(instance)
    assert again.reused and time.monotonic() - start < 10


def test_a_failed_build_is_one_line_and_the_others_go_on(builder, instance, tmp_path):
    bad = dataclasses.replace(instance, instance_id="swe-monkeys__minicalc-bad", version="env-bad")
    with pytest.raises(BuildFailed) as info:
        builder.build(bad)
    assert "\n" not in str(info.value) and "swe-monkeys-no-such-package" in str(info.value)
    gone = dataclasses.replace(
        instance, instance_id="swe-monkeys__minicalc-gone", base_commit="f" * 40
    )
    rows = [bad.to_row(), gone.to_row(), instance.to_row()]
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["images", "build", "-d", str(data)])
    assert result.exit_code == 1
    assert "failed swe-monkeys__minicalc-bad" in result.output
    assert f"commit {'f' * 40} of swe-monkeys/minicalc is not in" in result.output
    assert f"ok {CALC}" in result.output and "1/3 built" in result.output
