"""The swebench adapter: official eval scripts, image names and grading, on fixed logs."""

import pytest

from harness import wiring
from harness.dataset import load_instances
from harness.errors import UserError
from sandbox import swebench_adapter as adapter
from tests.conftest import LITE


@pytest.fixture(scope="module")
def calc():
    wiring.register_minibench_specs()
    return next(i for i in wiring.load("mini") if i.instance_id == "swe-monkeys__minicalc-1")


def log(*results: str, exit_code: int | None = 0, end: bool = True) -> str:
    lines = [
        "+ git apply -v -",
        "+ : '>>>>> Start Test Output'",
        "+ pytest -rA tests/test_evaluator.py",
        "=== short test summary info ===",
        *results,
    ]
    if exit_code is not None:
        lines.append(f"{adapter.EXIT_CODE_MARKER} {exit_code}")
    if end:
        lines.append("+ : '>>>>> End Test Output'")
    return "\n".join(lines) + "\n"


def passing(instance, exclude=()):
    return [
        f"PASSED {t}" for t in (*instance.fail_to_pass, *instance.pass_to_pass) if t not in exclude
    ]


def test_all_required_tests_passing_resolves(calc):
    graded = adapter.grade(calc, log(*passing(calc)))
    assert graded.resolved and graded.reason == "" and graded.test_exit_code == 0
    assert set(graded.fail_to_pass.values()) == {"PASSED"}


def test_a_failing_fail_to_pass_test_does_not_resolve(calc):
    f2p = calc.fail_to_pass[0]
    graded = adapter.grade(
        calc, log(*passing(calc, {f2p}), f"FAILED {f2p} - AssertionError", exit_code=1)
    )
    assert not graded.resolved
    assert graded.fail_to_pass[f2p] == "FAILED"
    assert f2p in graded.reason


def test_a_missing_pass_to_pass_test_does_not_resolve(calc):
    p2p = calc.pass_to_pass[0]
    graded = adapter.grade(calc, log(*passing(calc, {p2p})))
    assert not graded.resolved and graded.pass_to_pass[p2p] == "MISSING"


def test_spoofed_passes_with_a_failing_exit_code_are_not_trusted(calc):
    """A patch can print its own PASSED lines; the test command's exit code gives it away."""
    graded = adapter.grade(calc, log(*passing(calc), exit_code=2))
    assert not graded.resolved
    assert "exited 2" in graded.reason


def test_output_without_markers_is_not_graded_as_passing(calc):
    graded = adapter.grade(calc, "\n".join(passing(calc)))
    assert not graded.resolved and "markers" in graded.reason
    assert not adapter.grade(calc, log(*passing(calc), end=False)).resolved


def test_eval_script_is_swebenchs_with_the_exit_code_recorded(calc):
    script = adapter.eval_script(calc)
    lines = script.splitlines()
    start = lines.index(": '>>>>> Start Test Output'")
    assert lines[start + 1] == "pytest -rA tests/test_evaluator.py"
    assert lines[start + 2].startswith(f'echo "{adapter.EXIT_CODE_MARKER}')
    assert lines[start + 3] == ": '>>>>> End Test Output'"
    assert f"git checkout {calc.base_commit} tests/test_evaluator.py" in lines
    assert lines[:2] == ["#!/bin/bash", "set -uxo pipefail"]


@pytest.mark.skipif(not LITE.exists(), reason="needs ../shared/data beside the checkout")
def test_real_lite_rows_get_official_scripts_and_image_names():
    (django,) = load_instances(str(LITE), patterns=["django__django-11099"])
    assert adapter.official_image_name(django) == (
        "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
    )
    assert "./tests/runtests.py" in adapter.eval_script(django)
    (requests,) = load_instances(str(LITE), patterns=["psf__requests-2317"])
    assert "pytest -rA test_requests.py" in adapter.eval_script(requests)


def test_unknown_repo_version_is_a_one_line_error(calc):
    import dataclasses

    with pytest.raises(UserError, match="no spec for swe-monkeys/minicalc version 9.9"):
        adapter.eval_script(dataclasses.replace(calc, version="9.9"))


def test_a_test_patch_that_only_adds_files_does_not_move_head(mini_instances):
    """swebench 4.1 resets test files with `git checkout <base> <files>`; with no existing file
    in the test patch that is a bare `git checkout <base>`, which leaves the image's setup
    commit (sphinx-8595 lost its tox.ini edit)."""
    import dataclasses

    from harness import wiring
    from sandbox import swebench_adapter

    wiring.register_minibench_specs()
    inst = mini_instances["swe-monkeys__minicalc-1"]
    adding = (
        "diff --git a/tests/test_new.py b/tests/test_new.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_new.py\n@@ -0,0 +1,2 @@\n+def test_new():\n+    pass\n"
    )
    script = swebench_adapter.eval_script(dataclasses.replace(inst, test_patch=adding))
    lines = script.splitlines()
    assert f"git checkout {inst.base_commit}" not in lines
    assert ": no test files to reset" in lines
    normal = swebench_adapter.eval_script(inst).splitlines()
    assert f"git checkout {inst.base_commit} tests/test_evaluator.py" in normal


def test_the_adapter_imports_only_the_swebench_modules_it_uses():
    """swebench's package inits pull in datasets, pandas, Docker and Modal (3 s per verify);
    the adapter's stand-in packages skip them, and its copy of the apply commands is the
    official list."""
    import subprocess
    import sys

    probe = (
        "import sys; import sandbox.swebench_adapter as a; "
        "print(sorted(m for m in ('datasets', 'pandas', 'docker', 'modal') if m in sys.modules)); "
        "from swebench.harness.run_evaluation import GIT_APPLY_CMDS; "
        "print(GIT_APPLY_CMDS == a.GIT_APPLY_CMDS); import datasets; print(datasets.__name__, "
        "hasattr(datasets, 'Features'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:3] == ["[]", "True", "datasets True"]  # the real datasets once the user asks
