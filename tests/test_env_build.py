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
from sandbox import services, swebench_adapter
from sandbox.docker_sandbox import DockerSandbox
from sandbox.env_build import BuildFailed
from sandbox.verifier import Verifier
from tests.conftest import BACKEND, TEST_LIMITS

CALC = "swe-monkeys__minicalc-1"
SPECS = {
    "env-pytest": {"python": "3.9", "packages": "pytest", "test_cmd": "pytest -rA"},
    "env-reinstall": {  # a flit-built repo, like sphinx 7: its backend is not setuptools
        "python": "3.9",
        "packages": "pytest",
        "test_cmd": "pytest -rA",
        "pre_install": [
            'printf \'[build-system]\\nrequires = ["flit_core>=3.4,<4"]\\n'
            'build-backend = "flit_core.buildapi"\\n\' >> pyproject.toml'
        ],
        "install": "python -m pip install -e .",
    },
    "env-offline-extra": {
        "python": "3.9",
        "packages": "pytest",
        "test_cmd": "pytest -rA",
        "eval_commands": ["python -m pip install swe-monkeys-no-such-package"],
    },
    "env-tox": {  # as swebench's sphinx specs run their tests
        "python": "3.9",
        "packages": "pytest tomli_w",
        "pip_packages": ["tox==4.16.0", "tox-current-env==0.0.11"],
        "pre_install": [
            "printf '[tox]\\nenvlist = py39\\n[testenv]\\ncommands = python -m pytest -rA "
            "{posargs}\\n' > tox.ini",
            "printf 'import tomli_w\\n' > conftest.py",  # only the venv has it
        ],
        "test_cmd": "tox --current-env -epy39 -v --",
    },
    "env-cext": {  # compiles a C extension at install, as astropy and scikit-learn do
        "python": "3.9",
        "packages": "pytest",
        "test_cmd": "pytest -rA",
        "pre_install": [
            "printf '#include <Python.h>\\nstatic PyModuleDef m = {PyModuleDef_HEAD_INIT, "
            '"_speed", NULL, -1, NULL};\\nPyMODINIT_FUNC PyInit__speed(void) '
            "{ return PyModule_Create(&m); }\\n' > minicalc/_speed.c",
            "printf 'from setuptools import Extension, setup\\nsetup(ext_modules=["
            'Extension("minicalc._speed", ["minicalc/_speed.c"])])\\n\' > setup.py',
        ],
        "install": "python -m pip install -e .",
    },
    "env-era": {  # docutils 0.22 (2025) dropped docutils.utils.roman, which sphinx 3 imports
        "python": "3.9",
        "packages": "pytest docutils",
        "pip_packages": ["tomli==2.2.1"],  # a pin newer than the cut-off still installs
        "test_cmd": "pytest -rA",
    },
    "env-bad": {
        "python": "3.9",
        "packages": "pytest",
        "test_cmd": "pytest -rA",
        "pip_packages": ["swe-monkeys-no-such-package==0.0.1"],
    },
}


def artifacts_under(root):
    """The verifier's artifact folder callable, one folder per patch under root."""

    def artifacts(instance_id: str, sha: str):
        path = root / sha[:16]
        path.mkdir(exist_ok=True)
        return path

    return artifacts


@pytest.fixture(scope="module")
def builder(docker_engine):
    wiring.register_minibench_specs()
    swebench_adapter.register_repo("swe-monkeys/minicalc", SPECS)
    return wiring.env_builder(docker_engine, BACKEND)


@pytest.fixture(scope="module")
def instance(mini_instances):
    return dataclasses.replace(mini_instances[CALC], version="env-pytest")


def test_built_environment_verifies_gold_and_empty(builder, instance, docker_engine, tmp_path):
    built = builder.build(instance)
    labels = docker_engine.images.get(built.image).labels
    assert labels["swe-monkeys.python"] == "3.9" and labels["swe-monkeys.suite"] == "bullseye"
    assert labels["swe-monkeys.fidelity"] == "conda packages installed with pip"

    artifacts = artifacts_under(tmp_path)
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


def test_the_eval_reinstall_works_offline_and_a_failed_one_is_said(
    builder, instance, docker_engine, tmp_path
):
    """swebench's eval script reinstalls the repo (`pip install -e .`) before the tests; under
    --network none that used to retry the index five times and fail, silently."""

    artifacts = artifacts_under(tmp_path)
    for version, expect_note in (("env-reinstall", False), ("env-offline-extra", True)):
        inst = dataclasses.replace(instance, version=version)
        built = builder.build(inst)
        verifier = Verifier(
            DockerSandbox(docker_engine),
            lambda i, b=built: b.image,
            TEST_LIMITS,
            "offline",
            artifacts,
        )
        gold = verifier.verify(inst, inst.gold_patch)
        log = (tmp_path / gold.patch_sha[:16] / "test_output.txt").read_text()
        assert gold.status.value == "resolved", gold.reason
        assert "Retrying" not in log  # no index was tried
        if expect_note:
            assert "reinstall failed" in gold.fidelity, gold.fidelity
            assert "swe-monkeys-no-such-package" in gold.fidelity
        else:
            assert "Successfully installed" in log and "reinstall failed" not in gold.fidelity


def test_a_failed_build_keeps_its_log_and_names_the_cause(builder, instance, swem_cache):
    bad = dataclasses.replace(instance, instance_id="swe-monkeys__minicalc-bad", version="env-bad")
    with pytest.raises(BuildFailed) as info:
        builder.build(bad)
    message = str(info.value)
    assert "swe-monkeys-no-such-package==0.0.1 is not on the package index" in message
    log = message.rsplit("(log: ", 1)[1].rstrip(")")
    assert log.startswith(str(swem_cache)) and "No matching distribution" in open(log).read()


def test_eval_can_skip_what_cannot_be_built(docker_engine, tmp_path, mini_instances):
    good = mini_instances[CALC]
    lost = dataclasses.replace(good, instance_id="nobody__nothing-1", repo="nobody/nothing")
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(i.to_row()) + "\n" for i in (good, lost)))
    args = [
        "eval",
        "-d",
        str(data),
        "--predictions",
        "gold",
        "--runs-dir",
        str(tmp_path),
        "--no-pull",
    ]
    stopped = CliRunner().invoke(app, [*args, "--run-id", "stop"])
    assert "nobody__nothing-1" in str(stopped.exception)
    skipped = CliRunner().invoke(app, [*args, "--run-id", "skip", "--skip-unbuildable"])
    assert skipped.exit_code == 0, skipped.output
    assert "1 of 2 instance(s) skipped as unbuildable" in skipped.output
    summary = json.loads((tmp_path / "skip" / "summary.json").read_text())
    assert list(summary["unbuildable"]) == ["nobody__nothing-1"]
    assert summary["n_issues"] == 1 and summary["coverage_at"]["1"] == 1.0


def test_tox_current_env_sees_the_environment(builder, instance, docker_engine, tmp_path):
    """tox --current-env reaches the venv's python through a symlink in .tox/, where Python
    finds no pyvenv.cfg and starts bare: the environment must still be visible to it."""

    artifacts = artifacts_under(tmp_path)
    inst = dataclasses.replace(instance, version="env-tox")
    built = builder.build(inst)
    verifier = Verifier(
        DockerSandbox(docker_engine), lambda i: built.image, TEST_LIMITS, "tox", artifacts
    )
    gold = verifier.verify(inst, inst.gold_patch)
    log = (tmp_path / gold.patch_sha[:16] / "test_output.txt").read_text()
    assert "tox --current-env" in log and "No module named" not in log
    assert gold.status.value == "resolved", gold.reason
    # tox 4 passes PYTEST_ADDOPTS and PYTHONPATH on, so our record is there (not required:
    # tox 3 drops them, and the log is then the record)
    assert gold.channel == "pytest-plugin"
    assert verifier.verify(inst, "").status.value == "unresolved"


def test_a_spec_that_compiles_an_extension_builds(builder, instance, docker_engine, tmp_path):
    """The environments sit on a shared toolchain layer (gcc, Python headers)."""
    inst = dataclasses.replace(instance, version="env-cext")
    built = builder.build(inst)

    artifacts = artifacts_under(tmp_path)
    verifier = Verifier(
        DockerSandbox(docker_engine), lambda i: built.image, TEST_LIMITS, "cext", artifacts
    )
    with DockerSandbox(docker_engine).open(built.image, TEST_LIMITS, "cext") as session:
        probe = session.exec(
            ". /opt/testbed/bin/activate && python -c 'import minicalc._speed'", 60
        )
    assert probe.ok, probe.output
    gold = verifier.verify(inst, inst.gold_patch)
    assert gold.status.value == "resolved", gold.reason
    assert "reinstall failed" not in gold.fidelity  # the offline reinstall compiles too
    # The candidate's setup.py runs at that reinstall, as root, before the tests: a .pth it
    # plants runs in pytest's process before the guard. The key is not there yet, and the
    # engine's record of the container's changes names the file.
    setup_line = 'setup(ext_modules=[Extension("minicalc._speed", ["minicalc/_speed.c"])])'
    planted = inst.gold_patch + (
        "diff --git a/setup.py b/setup.py\n--- a/setup.py\n+++ b/setup.py\n"
        "@@ -1,2 +1,4 @@\n+import site as _s\n"
        "+open(_s.getsitepackages()[0] + '/zz_hook.p' + 'th', 'w').write('import os\\n')\n"
        f" from setuptools import Extension, setup\n {setup_line}\n"
    )
    planted = verifier.verify(inst, planted)
    assert planted.status.value == "suspicious", planted.reason
    assert planted.reason.endswith(
        "runs before the guard: A /opt/testbed/lib/python3.9/site-packages/zz_hook.pth"
    ), planted.reason


def test_packages_resolve_as_of_the_official_era(builder, instance, docker_engine):
    inst = dataclasses.replace(instance, version="env-era")
    built = builder.build(inst)
    assert docker_engine.images.get(built.image).labels["swe-monkeys.resolved-as-of"] == (
        "2024-03-31"
    )
    with DockerSandbox(docker_engine).open(built.image, TEST_LIMITS, "era") as session:
        probe = session.exec(
            ". /opt/testbed/bin/activate && python -c 'import docutils, docutils.utils.roman, "
            "tomli; print(docutils.__version__, tomli.__version__)' && pip --version",
            60,
        )
    assert probe.ok, probe.output
    assert "0.20.1 2.2.1" in probe.output and "pip 24.0" in probe.output


def test_a_local_service_answers_under_no_network(builder, instance, docker_engine, monkeypatch):
    """requests' tests call httpbin.org: a local httpbin on the loopback, over HTTP and HTTPS
    (a CA made at build time), answers them with the network off."""
    monkeypatch.setitem(services.BY_REPO, instance.repo, services.HTTPBIN)
    built = builder.build(instance)
    assert "local httpbin" in docker_engine.images.get(built.image).labels["swe-monkeys.fidelity"]
    fetch = (
        "import os, ssl, urllib.request as u; "
        "ctx = ssl.create_default_context(cafile=os.environ['REQUESTS_CA_BUNDLE']); "
        "print(u.urlopen('http://httpbin.org/get').status, "
        "u.urlopen('https://httpbin.org/get', context=ctx).status)"
    )
    assert TEST_LIMITS.network == "none"
    with DockerSandbox(docker_engine).open(built.image, TEST_LIMITS, "svc") as session:
        # requests' Session.send() checks its own bundle, not REQUESTS_CA_BUNDLE
        session.exec("mkdir -p /testbed/requests && : > /testbed/requests/cacert.pem", 30)
        probe = session.exec(f'{services.START_LINE} && /usr/bin/python3 -c "{fetch}"', 120)
        own = fetch.replace("os.environ['REQUESTS_CA_BUNDLE']", "'/testbed/requests/cacert.pem'")
        trusted = session.exec(f'{services.START_LINE} && /usr/bin/python3 -c "{own}"', 120)
        once = session.exec("grep -c swem-local-ca /testbed/requests/cacert.pem", 30)
        tarpit = session.exec(f"{TESTBED_PY} -c '{TARPIT_PROBE}'", 60)
        elsewhere = session.exec(f"/usr/bin/python3 -c '{TARPIT_PROBE}'", 60)
    assert probe.ok, probe.output
    assert probe.output.strip().endswith("200 200")
    assert trusted.ok and trusted.output.strip().endswith("200 200"), trusted.output
    assert once.output.strip() == "1"  # started twice, appended once
    assert tarpit.output.strip().endswith("timed out after 0.3"), tarpit.output
    assert "unreachable" in elsewhere.output  # only the testbed's Python has the stand-in


TESTBED_PY = "/opt/testbed/bin/python"
TARPIT_PROBE = (
    "import socket, time; s = socket.socket(); s.settimeout(0.3); t = time.time()\n"
    'try:\n    s.connect(("10.255.255.1", 80))\n'
    'except socket.timeout:\n    print("timed out after", round(time.time() - t, 1))\n'
    "except OSError as exc:\n    print(exc)"
)


def test_a_daemon_restart_mid_build_is_waited_out(builder, instance, docker_engine):
    """The engine restarts while a build step runs (issue #27): the step is run again once
    the engine is back, and the image is built, with no traceback and no half-made image."""
    if BACKEND != "docker":
        pytest.skip("restarts the Docker daemon; Podman has no daemon to restart here")
    import threading
    import uuid

    from tests.test_honest_numbers import restart_docker, wait_for

    version = f"env-restart-{uuid.uuid4().hex[:8]}"  # a recipe no earlier build made
    spec = {**SPECS["env-pytest"], "pre_install": [f"sleep 20 # {version}"]}
    swebench_adapter.register_repo("swe-monkeys/minicalc", {version: spec})
    inst = dataclasses.replace(instance, version=version)
    outcome: dict = {}

    def build() -> None:
        try:
            outcome["built"] = builder.build(inst)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            outcome["error"] = exc

    thread = threading.Thread(target=build)
    thread.start()
    sleeping = lambda: any(  # noqa: E731
        "sleep 20" in " ".join(p) for c in docker_engine.containers.list() for p in _procs(c)
    )
    wait_for(sleeping, 300, what="the build step")
    restart_docker()
    thread.join(900)
    assert "error" not in outcome, outcome.get("error")
    image = docker_engine.images.get(outcome["built"].image)
    assert image.labels["swe-monkeys.python"] == "3.9"
    docker_engine.images.remove(image.id, force=True)


def _procs(container) -> list[list[str]]:
    try:
        return container.top().get("Processes") or []
    except Exception:  # noqa: BLE001 - a container that just went
        return []
