"""Verification in real Docker containers: the verdicts the issue promises, and no leftovers."""

from __future__ import annotations

import dataclasses
import difflib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import minibench
from harness.cli import app
from harness.types import VerdictStatus
from harness.validate import validate_instance
from tests.conftest import BACKEND, HARNESS, LITE, TEST_LIMITS, containers_of, spawn_harness

CALC = "swe-monkeys__minicalc-1"
EVALUATOR = "minicalc/evaluator.py"
QUICK = dataclasses.replace(TEST_LIMITS, timeout_s=20)


def edit(path: str, old: str, new: str) -> str:
    """A unified diff replacing `old` with `new` in one of minicalc's files."""
    before = (minibench.DATA / "repos" / "minicalc" / path).read_text()
    assert old in before
    after = before.replace(old, new, 1)
    return "".join(
        difflib.unified_diff(
            before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}"
        )
    )


def binary_patch(tmp_path: Path) -> str:
    repo = tmp_path / "bin"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "blob.dat").write_bytes(bytes(range(256)) * 8)
    subprocess.run(["git", "add", "blob.dat"], cwd=repo, check=True)
    return subprocess.run(
        ["git", "diff", "--cached", "--binary"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


BAD_PATCHES = {
    "not a diff": (
        lambda tmp: "Sure! Here is the fix you asked for.\n",
        {VerdictStatus.APPLY_FAILED},
    ),
    "missing file": (
        lambda tmp: (
            "--- a/minicalc/nonexistent.py\n+++ b/minicalc/nonexistent.py\n@@ -1,2 +1,2 @@\n"
            " import os\n-x = 1\n+x = 2\n"
        ),
        {VerdictStatus.APPLY_FAILED},
    ),
    "binary": (binary_patch, {VerdictStatus.UNRESOLVED}),
    "outside the repo": (
        lambda tmp: "--- a/../etc/evil.py\n+++ b/../etc/evil.py\n@@ -0,0 +1 @@\n+owned = True\n",
        {VerdictStatus.APPLY_FAILED},
    ),
    "loops forever": (
        lambda tmp: edit(
            EVALUATOR,
            "def evaluate(source):\n",
            "def evaluate(source):\n    while True:\n        pass\n",
        ),
        {VerdictStatus.TIMEOUT},
    ),
    "fork bomb": (
        lambda tmp: edit(
            EVALUATOR,
            '"""Evaluate parsed expressions."""\n',
            '"""Evaluate parsed expressions."""\nimport os\n\nwhile True:\n    try:\n'
            "        os.fork()\n    except OSError:\n        pass\n",
        ),
        {VerdictStatus.TIMEOUT},
    ),
    "memory hog": (
        lambda tmp: edit(
            EVALUATOR,
            '"""Evaluate parsed expressions."""\n',
            '"""Evaluate parsed expressions."""\n_HOG = b"x" * (3 * 1024 ** 3)\n',
        ),
        {VerdictStatus.UNRESOLVED},
    ),
    "reaches the network": (
        lambda tmp: edit(
            EVALUATOR,
            "def evaluate(source):\n",
            "def evaluate(source):\n    import socket\n"
            "    socket.create_connection(('192.0.2.1', 80), timeout=3).close()\n",
        ),
        {VerdictStatus.UNRESOLVED},
    ),
}


@pytest.mark.parametrize("name", list(BAD_PATCHES))
def test_bad_patches_get_a_verdict_and_leave_no_container(
    name, make_pipeline, mini_instances, docker_engine, tmp_path
):
    build, expected = BAD_PATCHES[name]
    pipe = make_pipeline(QUICK)
    start = time.monotonic()
    verdict = pipe.verifier.verify(mini_instances[CALC], build(tmp_path))
    elapsed = time.monotonic() - start
    assert verdict.status in expected, f"{verdict.status}: {verdict.reason}"
    assert verdict.reason
    assert elapsed < QUICK.timeout_s + 40
    assert verdict.network == "none"
    assert containers_of(docker_engine, pipe.store.run_id) == []
    assert (
        json.loads(
            Path(pipe.store.artifact_dir(CALC, verdict.patch_sha), "verdict.json").read_text()
        )["status"]
        == verdict.status.value
    )


def test_outside_patch_is_refused_before_it_reaches_a_container(make_pipeline, mini_instances):
    pipe = make_pipeline(QUICK)
    verdict = pipe.verifier.verify(mini_instances[CALC], BAD_PATCHES["outside the repo"][0](None))
    assert "outside the repository: ../etc/evil.py" in verdict.reason
    assert verdict.durations["total_s"] < 5


def test_memory_hog_is_killed_by_the_limit(make_pipeline, mini_instances):
    verdict = make_pipeline(QUICK).verifier.verify(
        mini_instances[CALC], BAD_PATCHES["memory hog"][0](None)
    )
    assert verdict.test_exit_code == 137  # SIGKILL from the kernel's OOM killer


def network_only_instance(instance):
    """The instance plus a test that passes only where the container has a network interface
    besides loopback: it sends no traffic, so it is safe on a closed machine."""
    extra = (
        "diff --git a/tests/test_net.py b/tests/test_net.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_net.py\n@@ -0,0 +1,5 @@\n+import os\n+\n+\n"
        "+def test_network_interface():\n"
        "+    assert set(os.listdir('/sys/class/net')) - {'lo'}\n"
    )
    return dataclasses.replace(
        instance,
        test_patch=instance.test_patch + extra,
        fail_to_pass=(*instance.fail_to_pass, "tests/test_net.py::test_network_interface"),
    )


def test_validate_says_when_gold_passes_only_with_the_network(make_pipeline, mini_instances):
    pipe = make_pipeline(QUICK)
    result = validate_instance(
        pipe.verifier.verify, network_only_instance(mini_instances[CALC]), QUICK
    )
    assert result.gold.status is VerdictStatus.UNRESOLVED and result.gold.network == "none"
    assert result.gold_with_network.resolved and result.gold_with_network.network == "bridge"
    assert result.needs_network and "only with the network" in result.note
    assert not result.ok


def test_cli_validate_mini_benchmark(docker_engine, tmp_path):
    args = f"validate -d mini --runs-dir {tmp_path} --run-id v --workers 2 --no-pull"
    result = CliRunner().invoke(app, args.split())
    assert result.exit_code == 0, result.output
    assert "20/20 instances sound" in result.output
    records = [
        json.loads(line) for line in (tmp_path / "v" / "verdicts.jsonl").read_text().splitlines()
    ]
    assert len(records) == 40
    by_patch = {(r["instance_id"], r["patch_sha"]): r["status"] for r in records}
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert all(by_patch[(i, empty_sha)] == "unresolved" for i, _ in by_patch)
    assert sum(s == "resolved" for s in by_patch.values()) == 20
    assert containers_of(docker_engine, "v") == []


def test_cli_verify_prints_json_verdict(docker_engine, tmp_path):
    args = f"verify -d mini -i swe-monkeys__textkit-1 --patch gold --runs-dir {tmp_path} --json"
    result = CliRunner().invoke(app, args.split())
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["status"] == "resolved" and verdict["apply_command"] == "git apply --verbose"
    assert set(verdict["fail_to_pass"].values()) == {"PASSED"}
    assert not Path(verdict["log_path"]).is_absolute()  # the run can be moved
    log = Path(verdict["run_dir"]) / verdict["log_path"]
    assert log.read_text().count(">>>>> Start Test Output") >= 1


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not LITE.exists(), reason="needs ../shared/data beside the checkout")
def test_missing_official_image_is_a_one_line_error(docker_engine, tmp_path, monkeypatch):
    args = [
        "verify",
        "-d",
        str(LITE),
        "-i",
        "django__django-11099",
        "--patch",
        "gold",
        "--no-pull",
        "--runs-dir",
        str(tmp_path),
    ]
    done = run_cli(*args, "--image-source", "official")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "error: image swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    )
    assert f"{BACKEND} pull" in done.stderr and "Traceback" not in done.stderr
    # auto falls back to an offline build, which needs the repo: one line naming both
    monkeypatch.setenv("SWEM_REPO_SOURCE", str(tmp_path / "no-mirrors"))
    done = run_cli(*args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "is missing and the offline build failed: cannot clone django/django" in done.stderr


def test_user_errors_are_one_line(tmp_path):
    done = run_cli("verify", "-d", "mini", "-i", "swe-monkeys__textkit-9", "--patch", "gold")
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown instance id swe-monkeys__textkit-9 (did you mean")
    assert done.stderr.count("\n") == 1
    done = run_cli("verify", "-d", str(tmp_path / "x.jsonl"), "-i", "a", "--patch", "gold")
    assert done.returncode == 2 and "dataset file not found" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_verification_removes_its_container(
    sig, docker_engine, mini_instances, tmp_path
):
    patch = tmp_path / "loop.diff"
    patch.write_text(BAD_PATCHES["loops forever"][0](None))
    run_id = f"interrupt-{sig.name.lower()}"
    proc = spawn_harness(
        "verify",
        "-d",
        "mini",
        "-i",
        CALC,
        "--patch",
        str(patch),
        "--run-id",
        run_id,
        "--runs-dir",
        str(tmp_path),
        "--timeout",
        "300",
    )
    deadline = time.monotonic() + 120
    while not containers_of(docker_engine, run_id):
        assert time.monotonic() < deadline and proc.poll() is None, "no container ever started"
        time.sleep(0.2)
    time.sleep(2)  # into the test run
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert containers_of(docker_engine, run_id) == []


def test_interrupting_validate_does_not_wait_for_running_verifications(
    docker_engine, mini_instances, tmp_path
):
    """SIGTERM ends `validate` at once and removes its containers, however long the running
    verification would still take (it used to wait for it: ten minutes on a sympy file)."""
    row = mini_instances[CALC].to_row()
    row["patch"] = BAD_PATCHES["loops forever"][0](None)
    dataset = tmp_path / "slow.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    run_id = "interrupt-validate"
    proc = spawn_harness(
        "validate", "-d", str(dataset), "--run-id", run_id, "--runs-dir", str(tmp_path),
        "--timeout", "600", "--no-network-check",
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not containers_of(docker_engine, run_id):
        assert time.monotonic() < deadline and proc.poll() is None, "no container ever started"
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)  # the verification alone would run for 600 s
    assert proc.returncode != 0
    assert containers_of(docker_engine, run_id) == []


def test_a_failing_required_test_ends_the_run(make_pipeline, mini_instances):
    """The empty patch, in the official order: the FAIL_TO_PASS test (fourth of five) fails
    and the run ends there; the verdict names the PASS_TO_PASS test after it."""
    pipe = make_pipeline(QUICK)
    instance = mini_instances[CALC]
    verdict = pipe.verifier.verify(instance, "")
    assert verdict.status is VerdictStatus.UNRESOLVED
    assert verdict.not_run == [
        "tests/test_evaluator.py::test_evaluation_error_is_an_arithmetic_error"
    ]
    assert "FAIL_TO_PASS tests run first" not in verdict.reason and "--full-tests" in verdict.reason
    assert verdict.durations["pytest_s"] < pipe.verifier.first_after_s  # so: none first next
    noop = edit(EVALUATOR, "def evaluate(source):\n", "def evaluate(source):  # reviewed\n")
    again = pipe.verifier.verify(instance, noop)
    assert again.not_run and "FAIL_TO_PASS tests run first" not in again.reason


def test_a_failing_fail_to_pass_test_run_first_ends_the_run(make_pipeline, mini_instances):
    """Where the tests are slow (here: any), the FAIL_TO_PASS test runs first, fails, and the
    run ends there; the verdict names the four PASS_TO_PASS tests it did not run."""
    pipe = make_pipeline(QUICK)
    pipe.verifier.first_after_s = 0.0
    instance = mini_instances[CALC]
    verdict = pipe.verifier.verify(instance, "")
    assert verdict.status is VerdictStatus.UNRESOLVED
    assert verdict.not_run == sorted(instance.pass_to_pass)
    assert verdict.fail_to_pass == {instance.fail_to_pass[0]: "FAILED"}
    assert "FAIL_TO_PASS tests run first" in verdict.reason and "--full-tests" in verdict.reason
    assert "first_s" not in verdict.durations


def test_a_candidate_that_passes_first_is_judged_in_the_official_order(
    make_pipeline, mini_instances
):
    pipe = make_pipeline(QUICK)
    pipe.verifier.first_after_s = 0.0
    instance = mini_instances[CALC]
    verdict = pipe.verifier.verify(instance, instance.gold_patch)
    assert verdict.resolved and not verdict.not_run
    assert set(verdict.pass_to_pass.values()) == {"PASSED"}
    assert verdict.durations["first_s"] > 0  # the run with FAIL_TO_PASS first came before
    folder = pipe.store.run_dir / verdict.artifacts
    first = (folder / "test_output.first.txt").read_text()
    assert "test_arithmetic" not in first.split(">>>>> Start Test Output")[-1]
    assert (
        "PASSED tests/test_evaluator.py::test_arithmetic"
        in (folder / "test_output.txt").read_text()
    )


def test_full_tests_runs_every_test_in_order(docker_engine, tmp_path, mini_instances):
    from harness import wiring
    from harness.config import ImageOptions
    from tests.conftest import BACKEND

    pipe = wiring.build_pipeline(
        "full", tmp_path, QUICK, ImageOptions(pull=False), backend=BACKEND, full_tests=True
    )
    instance = mini_instances[CALC]
    verdict = pipe.verifier.verify(instance, "")
    assert verdict.status is VerdictStatus.UNRESOLVED and not verdict.not_run
    assert set(verdict.pass_to_pass.values()) == {"PASSED"}
    assert "--full-tests" not in verdict.reason
