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
import re

from harness.protocols import SandboxError
from harness.types import Instance, blind, reproduction_id
from sandbox import integrity
from sandbox.regression import NO_RUNNER, NoOutcome, SandboxTests, channel
from sandbox.verifier import unsafe_path

REPRODUCES = {"FAILED", "ERROR"}
"""Statuses at the base commit that reproduce the issue (skips and xfails do not)."""


REPRO_DIRS = {"sympy/sympy": "sympy/swem_repro"}
"""Where a repo's runner finds a test file given by path (sympy's only under sympy/)."""
_TEST_DEF = re.compile(r"^(async\s+def|def)\s+(test\w*)\s*\(", re.M)


def test_path(instance: Instance, test_sha: str) -> str:
    """Where a model-written test file goes in the repo: a directory of its own, so no
    package's conftest or __init__ of the repo's test tree takes it in, and no patch edits it
    (a patch that tries does not apply: the file is there already)."""
    return f"{_folder(instance)}/test_repro_{test_sha[:16]}.py"


def _folder(instance: Instance) -> str:
    return REPRO_DIRS.get(instance.repo, ".swem_repro")


def tagged(code: str, test_sha: str) -> str:
    """The file with each top-level test function named after the file too, so a runner that
    reports bare function names (sympy's) still says which file a test came from."""
    return _TEST_DEF.sub(lambda m: f"{m.group(1)} {m.group(2)}{_tag(test_sha)}(", code)


def _tag(test_sha: str) -> str:
    return f"__swem_{test_sha[:12]}"


def _file_of(test: str, shas: list[str]) -> str | None:
    """The sha of the file a reported test id came from (pytest's node id names the file;
    sympy's bare name carries the tag)."""
    path, _, name = test.rpartition("::") if "::" in test else ("", "", test)
    for sha in shas:
        if path.split("::")[0].endswith(f"test_repro_{sha[:16]}.py"):
            return sha
        if not path and name.split("[", 1)[0].endswith(_tag(sha)):
            return sha
    return None


@dataclasses.dataclass(frozen=True)
class BaseRun:
    """The distinct test files of an issue, run at the base commit."""

    instance_id: str
    reproducing: dict[str, list[str]]
    """test sha -> its tests that fail at the base commit (only files with some)."""
    ran: int
    seconds: float
    error: str = ""
    infra: bool = False
    """The sandbox failed: not recorded, run again by the next `harness signals`."""

    @property
    def files_id(self) -> str:
        """Which reproducing tests a score was measured on."""
        return reproduction_id(self.reproducing)

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
    infra: bool = False
    """The sandbox failed: not recorded, computed again by the next `harness signals`."""

    base: str = ""
    """The base run's files_id: the reproducing tests the score is on."""

    def to_dict(self) -> dict:
        return {"kind": "reproduction", **dataclasses.asdict(self)}


class ReproductionCheck(SandboxTests):
    """Runs model-written tests at the base commit, then with each candidate."""

    @staticmethod
    def recorded(record: dict) -> BaseRun:
        """A base run as `harness signals` recorded it."""
        return BaseRun(
            record["instance_id"], record["reproducing"], record["ran"], record["seconds"],
            record["error"],
        )  # fmt: skip

    @staticmethod
    def _written(instance: Instance, shas, files: dict[str, str]) -> dict[str, str]:
        return {f"/testbed/{test_path(instance, sha)}": tagged(files[sha], sha) for sha in shas}

    def base(self, instance: Instance, files: dict[str, str]) -> BaseRun:
        """Run every distinct test file (sha -> text) at the base commit."""
        instance = blind(instance)
        iid = instance.instance_id
        if channel(instance) is None:
            return BaseRun(iid, {}, 0, 0.0, NO_RUNNER)
        if not files:
            return BaseRun(iid, {}, 0, 0.0, "no usable test file was written")
        try:
            outcomes, seconds = self._outcomes(
                instance,
                self.image_for(instance),
                "",
                sorted(test_path(instance, sha) for sha in files),
                self._written(instance, files, files),
            )
        except NoOutcome as exc:
            return BaseRun(iid, {}, 0, 0.0, str(exc))
        except SandboxError as exc:
            return BaseRun(iid, {}, 0, 0.0, f"sandbox: {exc}", infra=True)
        reproducing: dict[str, list[str]] = {}
        for test, status in sorted(outcomes.items()):
            sha = _file_of(test, list(files))
            # sympy's parser also names each failure "path:test" (its traceback header)
            if sha and status in REPRODUCES and not (":" in test and "::" not in test):
                reproducing.setdefault(sha, []).append(test)
        return BaseRun(iid, reproducing, len(outcomes), round(seconds, 3))

    def check(
        self, instance: Instance, patch: str, patch_sha: str, base: BaseRun, files: dict[str, str]
    ) -> ReproSignal:
        """The candidate's score on the reproducing tests of `base` (files: sha -> text)."""
        instance = blind(instance)
        iid = instance.instance_id
        wanted = [t for tests in base.reproducing.values() for t in tests]
        if not wanted:
            error = base.error or "no test reproduces"
            return ReproSignal(iid, patch_sha, [], [], 0.0, error, base=base.files_id)
        mine = sorted(p for p in integrity.paths(patch) if p.startswith(f"{_folder(instance)}/"))
        if bad := unsafe_path(patch) or (mine[0] if mine else None):
            # a conftest.py beside our tests could rewrite their outcomes
            why = f"patch touches {bad}: not run"
            return ReproSignal(iid, patch_sha, [], [], 0.0, why, base=base.files_id)
        paths = sorted(test_path(instance, sha) for sha in base.reproducing)
        try:
            after, seconds = self._outcomes(
                instance,
                self.image_for(instance),
                patch,
                paths,
                self._written(instance, base.reproducing, files),
            )
        except NoOutcome as exc:
            return ReproSignal(iid, patch_sha, wanted, [], 0.0, str(exc), base=base.files_id)
        except SandboxError as exc:
            return ReproSignal(iid, patch_sha, wanted, [], 0.0, f"sandbox: {exc}", infra=True)
        passed = [t for t in wanted if after.get(t) == "PASSED"]
        return ReproSignal(iid, patch_sha, wanted, passed, round(seconds, 3), base=base.files_id)
