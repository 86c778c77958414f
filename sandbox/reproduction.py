"""The reproduction signal for choosing a patch without the hidden tests (issue #16).

The model wrote pytest files from the issue text (`agents/repro.py`). Each distinct file runs
once at the base commit: its tests that fail there reproduce the issue (a test that passes,
or a file that does not even collect, reproduces nothing). Every distinct candidate then runs
the reproducing files with its patch applied, in a fresh container, and its score is how
many reproducing tests now pass. The instance is blinded as for the regression signal, and
outcomes come from the guard plugin's signed record; a record that cannot be trusted gives
no score (unknown), never a good one.
"""

from __future__ import annotations

import dataclasses

from harness.protocols import SandboxError
from harness.types import Instance
from sandbox import guard, swebench_adapter
from sandbox.regression import PatchDidNotApply, RegressionCheck
from sandbox.swebench_adapter import blind
from sandbox.verifier import unsafe_path

REPRODUCES = {"FAILED", "ERROR"}
"""Statuses at the base commit that reproduce the issue (skips and xfails do not)."""


def test_path(test_sha: str) -> str:
    """Where a model-written test file goes in the repo: a directory of its own, so no
    package's conftest or __init__ of the repo's test tree takes it in, and no patch edits it
    (a patch that tries does not apply: the file is there already)."""
    return f".swem_repro/test_repro_{test_sha[:16]}.py"


@dataclasses.dataclass(frozen=True)
class BaseRun:
    """The distinct test files of an issue, run at the base commit."""

    instance_id: str
    reproducing: dict[str, list[str]]
    """test sha -> its tests that fail at the base commit (only files with some)."""
    ran: int
    seconds: float
    error: str = ""

    def to_dict(self) -> dict:
        return {"kind": "reproduction-base", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class ReproSignal:
    instance_id: str
    patch_sha: str
    tests: list[str]
    """The reproducing tests run with the candidate."""
    passed: list[str]
    """Those that pass with it: its score is how many."""
    seconds: float
    error: str = ""
    """Why there is no score (no reproducing test, the patch did not apply, ...)."""

    def to_dict(self) -> dict:
        return {"kind": "reproduction", **dataclasses.asdict(self)}


class ReproductionCheck(RegressionCheck):
    """Runs model-written tests; the sandbox, images and signed-record reading are the
    regression check's."""

    def base(self, instance: Instance, files: dict[str, str]) -> BaseRun:
        """Run every distinct test file (sha -> text) at the base commit."""
        instance = blind(instance)
        iid = instance.instance_id
        if not guard.expects_plugin(swebench_adapter.test_command(instance)):
            return BaseRun(iid, {}, 0, 0.0, "the repo's tests do not run in pytest")
        if not files:
            return BaseRun(iid, {}, 0, 0.0, "no usable test file was written")
        paths = {test_path(sha): sha for sha in files}
        by_name = {path.rsplit("/", 1)[1]: sha for path, sha in paths.items()}
        written = {f"/testbed/{path}": files[sha] for path, sha in paths.items()}
        try:
            outcomes, seconds = self._outcomes(
                instance, self.image_for(instance), "", sorted(paths), written
            )
        except SandboxError as exc:
            return BaseRun(iid, {}, 0, 0.0, str(exc))
        reproducing: dict[str, list[str]] = {}
        for test, status in sorted(outcomes.items()):
            # by file name: the node id is relative to pytest's rootdir, wherever that is
            sha = by_name.get(test.split("::", 1)[0].rsplit("/", 1)[-1])
            if sha and status in REPRODUCES:
                reproducing.setdefault(sha, []).append(test)
        return BaseRun(iid, reproducing, len(outcomes), round(seconds, 3))

    def check(  # type: ignore[override]
        self, instance: Instance, patch: str, patch_sha: str, base: BaseRun, files: dict[str, str]
    ) -> ReproSignal:
        """The candidate's score on the reproducing tests of `base` (files: sha -> text)."""
        instance = blind(instance)
        iid = instance.instance_id
        wanted = [t for tests in base.reproducing.values() for t in tests]
        if not wanted:
            return ReproSignal(iid, patch_sha, [], [], 0.0, base.error or "no test reproduces")
        if bad := unsafe_path(patch):
            return ReproSignal(iid, patch_sha, [], [], 0.0, f"patch touches {bad}: not run")
        written = {f"/testbed/{test_path(sha)}": files[sha] for sha in base.reproducing}
        paths = sorted(test_path(sha) for sha in base.reproducing)
        try:
            after, seconds = self._outcomes(
                instance, self.image_for(instance), patch, paths, written
            )
        except (SandboxError, PatchDidNotApply) as exc:
            return ReproSignal(iid, patch_sha, wanted, [], 0.0, str(exc))
        passed = [t for t in wanted if after.get(t) == "PASSED"]
        return ReproSignal(iid, patch_sha, wanted, passed, round(seconds, 3))
