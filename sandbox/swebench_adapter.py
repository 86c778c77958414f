"""The only module that imports `swebench` (pinned at 4.1.0; see NOTES.md for why 4.1).

It turns a classic SWE-bench row into the official eval script and image name, and grades a
test log with the official parser and grading functions. Everything here is pure: no Docker.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from importlib.util import find_spec


def _skip_package_inits() -> None:
    """Import swebench's harness modules without `swebench/__init__.py` and
    `swebench/harness/__init__.py`, which pull in its dataset collection, Docker builder, Modal
    and `datasets` (pandas, pyarrow, huggingface_hub): 3 s and 215 MiB on every `verify`, for
    none of what this module uses (0.3 s without). Only the package objects are stand-ins: every
    module imported through them is swebench's own file."""
    if "swebench" in sys.modules:
        return  # already imported for real: use it as it is
    root = find_spec("swebench").submodule_search_locations[0]
    for name, path in (("swebench", root), ("swebench.harness", f"{root}/harness")):
        package = types.ModuleType(name)
        package.__path__ = [path]
        sys.modules[name] = package


class _DatasetsNotHere(types.ModuleType):
    """swebench.harness.utils imports `datasets` for `load_swebench_dataset`, which the harness
    never calls (harness/dataset.py loads rows itself); this stands in while it imports."""

    Dataset = load_dataset = load_from_disk = None


# Importing swebench 4.1 calls logging.basicConfig(level=INFO) (swebench.collect), which would
# print every HTTP request our model client makes; the root logger is put back as it was.
_root_before = (list(logging.root.handlers), logging.root.level)
_skip_package_inits()
_real_datasets = sys.modules.get("datasets")
if _real_datasets is None:
    sys.modules["datasets"] = _DatasetsNotHere("datasets")

from swebench.harness.constants import (  # noqa: E402
    END_TEST_OUTPUT,
    MAP_REPO_TO_ENV_YML_PATHS,
    MAP_REPO_TO_EXT,
    MAP_REPO_TO_INSTALL,
    MAP_REPO_TO_REQS_PATHS,
    MAP_REPO_VERSION_TO_SPECS,
    START_TEST_OUTPUT,
    TestStatus,
)
from swebench.harness.grading import get_eval_report, get_logs_eval  # noqa: E402
from swebench.harness.log_parsers import MAP_REPO_TO_PARSER  # noqa: E402
from swebench.harness.test_spec.create_scripts import make_eval_script_list  # noqa: E402
from swebench.harness.test_spec.python import clean_requirements  # noqa: E402
from swebench.harness.test_spec.test_spec import TestSpec  # noqa: E402

if _real_datasets is None:
    del sys.modules["datasets"]  # a later `import datasets` gets the real one

GIT_APPLY_CMDS = [
    "git apply --verbose",
    "git apply --verbose --reject",
    "patch --batch --fuzz=5 -p1 -i",
]
"""swebench.harness.run_evaluation's list (importing that module costs Docker and Modal);
tests/test_verifier.py checks the copy against it."""

from harness.errors import UserError  # noqa: E402
from harness.types import Instance, blind  # noqa: E402

logging.root.handlers[:] = _root_before[0]
logging.root.setLevel(_root_before[1])

__all__ = [
    "env_specs",
    "repo_install",
    "requirements_text",
    "environment_yml",
    "GIT_APPLY_CMDS",
    "SWEBENCH_VERSION",
    "Grade",
    "eval_script",
    "test_command",
    "reinstall_error",
    "parse_statuses",
    "grade",
    "official_image_name",
    "register_repo",
]

SWEBENCH_VERSION = _dist_version("swebench")
ENV_NAME = "testbed"
REPO_DIR = "/testbed"
EXIT_CODE_MARKER = ">>>>> swe-monkeys test exit code:"
"""Printed right after the test command. swebench 5 added the same idea: a patch can print its
own PASSED lines, so a log with no failures but a non-zero exit code is not trusted."""
_EXIT_CODE_RE = re.compile(re.escape(EXIT_CODE_MARKER) + r" (\d+)")
_FAILING = {TestStatus.FAILED.value, TestStatus.ERROR.value}


def register_repo(repo: str, specs_by_version: dict[str, dict], parser: str = "pytest-dev/pytest"):
    """Teach swebench a repo of our own (the mini benchmark) so that its eval scripts and grading
    run through exactly the same official functions as real SWE-bench rows. `parser` names the
    SWE-bench repo whose log parser to reuse. swebench keeps these tables as module globals and
    offers no other extension point; registering is idempotent."""
    MAP_REPO_VERSION_TO_SPECS.setdefault(repo, {}).update(specs_by_version)
    MAP_REPO_TO_PARSER[repo] = MAP_REPO_TO_PARSER[parser]
    MAP_REPO_TO_EXT[repo] = "py"


def _specs(instance: Instance) -> dict:
    try:
        return MAP_REPO_VERSION_TO_SPECS[instance.repo][instance.version]
    except KeyError:
        raise UserError(
            f"{instance.instance_id}: swebench {SWEBENCH_VERSION} has no spec for "
            f"{instance.repo} version {instance.version}: use a dataset swebench knows"
        ) from None


def env_specs(instance: Instance) -> dict:
    """swebench's install recipe for the instance's (repo, version)."""
    return dict(_specs(instance))


def environment_yml(repo: str, read: Callable[[str], str | None]) -> str:
    """The conda environment.yml swebench would use, read through `read(path)` ('' if none)."""
    for path in MAP_REPO_TO_ENV_YML_PATHS.get(repo, []):
        if (text := read(path)) is not None:
            return text
    return ""


def requirements_paths(repo: str) -> list[str]:
    """Where swebench looks for a repo's requirements file, first found wins."""
    return list(MAP_REPO_TO_REQS_PATHS.get(repo, []))


def repo_install(repo: str) -> str | None:
    return MAP_REPO_TO_INSTALL.get(repo)


def requirements_text(repo: str, read: Callable[[str], str | None]) -> str:
    """The requirements swebench would install, read through `read(path)` (the repo at its
    environment setup commit) instead of GitHub: the first file found, its `-r` includes
    inlined, `-e .` and comments dropped, then swebench's own clean-up."""
    for path in requirements_paths(repo):
        text = read(path)
        if text is None:
            continue
        folder = path.rpartition("/")[0]
        keep, extra = [], []
        for line in text.split("\n"):
            if line.strip().startswith("-r"):
                name = line.strip()[2:].strip()
                included = read(f"{folder}/{name}" if folder else name) or ""
                extra += [x for x in included.split("\n") if not _excluded(x)]
            elif not _excluded(line):
                keep.append(line)
        return clean_requirements("\n".join(extra + ["\n".join(keep)]))
    return ""


def _excluded(line: str) -> bool:
    return any(line.strip().startswith(x) for x in ("-e .", "#", ".[test"))


def _test_spec(instance: Instance, namespace: str | None = None, tag: str = "latest") -> TestSpec:
    """A TestSpec without its environment scripts: swebench 4.1's make_test_spec downloads
    requirements files from GitHub to build those, and verification never needs them."""
    specs = _specs(instance)
    return TestSpec(
        instance_id=instance.instance_id,
        repo=instance.repo,
        version=instance.version,
        repo_script_list=[],
        eval_script_list=[],
        env_script_list=[],
        arch="x86_64",
        FAIL_TO_PASS=list(instance.fail_to_pass),
        PASS_TO_PASS=list(instance.pass_to_pass),
        language=MAP_REPO_TO_EXT.get(instance.repo, "py"),
        docker_specs=specs.get("docker_specs", {}),
        namespace=namespace,
        instance_image_tag=tag,
    )


def official_image_name(
    instance: Instance, namespace: str = "swebench", tag: str = "latest"
) -> str:
    """The prebuilt eval image the official harness would use (swebench's own naming)."""
    return _test_spec(instance, namespace or None, tag).instance_image_key


def test_command(instance: Instance) -> str:
    """The spec's test command (some specs give a list of commands)."""
    cmd = _specs(instance).get("test_cmd", "")
    return " && ".join(cmd) if isinstance(cmd, list) else str(cmd)


def eval_script(
    instance: Instance,
    prelude: list[str] | tuple[str, ...] = (),
    environment: list[str] | tuple[str, ...] = (),
) -> str:
    """swebench's eval script for the instance, with the test command's exit code recorded,
    `environment` (shell lines) run first and `prelude` just before the tests start."""
    lines = make_eval_script_list(
        instance.to_row(),
        _specs(instance),
        ENV_NAME,
        REPO_DIR,
        instance.base_commit,
        instance.test_patch,
    )
    # A test patch that only adds files leaves swebench 4.1 with a bare `git checkout <base>`,
    # which moves HEAD off the image's setup commit and undoes its edits (sphinx-8595 lost
    # tox.ini's -rA, so no test outcome was printed). Nothing needs resetting then.
    bare = f"git checkout {instance.base_commit}"
    lines = [": no test files to reset" if line.strip() == bare else line for line in lines]
    start = lines.index(f": '{START_TEST_OUTPUT}'")
    lines.insert(start + 2, f'echo "{EXIT_CODE_MARKER} $?"')
    lines[start:start] = list(prelude)
    return "\n".join(["#!/bin/bash", "set -uxo pipefail", *environment, *lines]) + "\n"


def regression_script(
    instance: Instance,
    test_files: list[str],
    prelude: list[str] | tuple[str, ...] = (),
    environment: list[str] | tuple[str, ...] = (),
    options: str = "",
) -> str:
    """The environment part of the eval script (activation, the spec's reinstall), then the
    spec's test command (with `options`) on the repo's own `test_files` as they are at the
    base commit. Built
    from the instance with its hidden tests removed: no test patch is applied, and none is
    even read."""
    seen = blind(instance)
    lines = eval_script(seen, (), environment).splitlines()
    cut = lines.index(": no test files to reset")
    files = " ".join(shlex.quote(f) for f in test_files)
    command = " ".join(filter(None, (test_command(seen), options, files)))
    tests = [f": '{START_TEST_OUTPUT}'", command]
    tests += [f'echo "{EXIT_CODE_MARKER} $?"', f": '{END_TEST_OUTPUT}'"]
    return "\n".join([*lines[:cut], *prelude, *tests]) + "\n"


def parse_statuses(instance: Instance, text: str) -> dict[str, str]:
    """Test statuses from `-rA`-style lines, with the repo's own swebench parser (its naming)."""
    return MAP_REPO_TO_PARSER[instance.repo](text, _test_spec(instance))


MARKERS = (START_TEST_OUTPUT, END_TEST_OUTPUT, EXIT_CODE_MARKER)
TEST_OUTPUT_MARKERS = (START_TEST_OUTPUT, END_TEST_OUTPUT)
"""The lines the eval script itself prints around the tests."""


REINSTALL_FAILED = re.compile(r"^ERROR: .*$", re.M)


def reinstall_error(log_text: str) -> str | None:
    """pip's first error before the tests start (the spec's reinstall of the repo), if any."""
    head = log_text.split(START_TEST_OUTPUT, 1)[0]
    match = REINSTALL_FAILED.search(head)
    return match.group(0)[:200] if match else None


@dataclass(frozen=True)
class Grade:
    resolved: bool
    """The official rules, then our spoof check on the exit code."""
    official: bool
    """swebench's get_eval_report alone."""
    fail_to_pass: dict[str, str]
    pass_to_pass: dict[str, str]
    test_exit_code: int | None
    reason: str


def grade(instance: Instance, log_text: str) -> Grade:
    """Grade a test log exactly as swebench's get_eval_report does, then distrust a clean-looking
    log whose test command exited non-zero."""
    spec = _test_spec(instance)
    with tempfile.NamedTemporaryFile("w", suffix=".log", encoding="utf-8") as f:
        f.write(log_text)
        f.flush()
        status_map, found = get_logs_eval(spec, f.name)
        report = get_eval_report(
            spec,
            {
                "instance_id": instance.instance_id,
                "model_patch": "x",
                "model_name_or_path": "swe-monkeys",
            },
            f.name,
            include_tests_status=False,
        )[instance.instance_id]
    codes = _EXIT_CODE_RE.findall(log_text.split(START_TEST_OUTPUT, 1)[-1])
    exit_code = int(codes[-1]) if codes else None
    f2p = {t: status_map.get(t, "MISSING") for t in instance.fail_to_pass}
    p2p = {t: status_map.get(t, "MISSING") for t in instance.pass_to_pass}
    resolved, reason = bool(report["resolved"]), ""
    if not found:
        reason = "test output markers missing or a failure marker present"
    elif resolved and exit_code and not (set(status_map.values()) & _FAILING):
        resolved = False
        reason = f"tests reported no failure but the test command exited {exit_code}"
    elif not resolved:
        failing = [t for t, s in {**f2p, **p2p}.items() if s not in ("PASSED", "XFAIL")]
        reason = (
            f"{len(failing)} required test(s) not passing, e.g. {failing[0]}"
            if failing
            else ("not resolved")
        )
    if END_TEST_OUTPUT not in log_text and not reason:
        reason = "test output end marker missing"
    return Grade(resolved, bool(report["resolved"]), f2p, p2p, exit_code, reason)
