"""The regression signal for choosing a patch without the hidden tests (issue #16).

A deployer has the repository's own tests as they are at the base commit. For a candidate,
the test files named after the modules it edits (`test_<module>.py`, `<module>_test.py`) run
with and without it in fresh containers; a test that passed without the candidate and does
not pass with it is a strike. The instance reaches this module with its test patch and its
FAIL_TO_PASS and PASS_TO_PASS lists removed (`blind`), so nothing hidden can steer it.
Outcomes come from the guard plugin's signed record, as in verification.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import PurePosixPath

from harness.config import SandboxLimits
from harness.protocols import Sandbox, SandboxError
from harness.types import Instance, blind
from sandbox import guard, swebench_adapter
from sandbox.verifier import apply_error, unsafe_path

PATCH_PATH = "/tmp/patch.diff"
SCRIPT_PATH = "/regression.sh"
MAX_TEST_FILES = 5
NO_RUNNER = "the repo's test runner takes no test files (only pytest and sympy's bin/test do)"
TIMEOUT_S = 600.0


LOG_RUNNERS = ("bin/test",)
"""Runners other than pytest that take test files as arguments (sympy's); their outcomes
come from the log, read with the repo's own swebench parser, as verification reads them.
django's runtests.py takes module labels, not files: no signal there."""


def channel(instance: Instance) -> str | None:
    """Where a test run's outcomes come from: "pytest-plugin" (the guard's signed record),
    "log" (a runner that takes files, its log unsigned) or None (no signal can be had)."""
    command = swebench_adapter.test_command(instance)
    if guard.expects_plugin(command):
        return "pytest-plugin"
    return "log" if any(runner in command.split() for runner in LOG_RUNNERS) else None


def near_tests(listed: list[str], edited: list[str]) -> list[str]:
    """The repo's test files named after the edited modules, nearest to them first (the most
    leading directories shared with an edited file), at most MAX_TEST_FILES."""
    stems = {PurePosixPath(p).stem for p in edited if p.endswith(".py")}
    names = {f"test_{s}.py" for s in stems} | {f"{s}_test.py" for s in stems}
    found = [p for p in listed if PurePosixPath(p).name in names]
    return sorted(found, key=lambda p: (-max(_shared(p, e) for e in edited), p))[:MAX_TEST_FILES]


def _shared(a: str, b: str) -> int:
    """How many leading directories two paths share."""
    n = 0
    for x, y in zip(PurePosixPath(a).parts[:-1], PurePosixPath(b).parts[:-1], strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclasses.dataclass(frozen=True)
class Signal:
    instance_id: str
    patch_sha: str
    tests: list[str]
    """The test files run; empty when none is named after an edited module."""
    strikes: list[str]
    """Tests that passed at the base commit and do not pass with the candidate."""
    ran: int
    seconds: float
    """Container time of the candidate's run (the base run is shared per test set)."""
    error: str = ""
    channel: str = ""
    """Where the outcomes came from: pytest-plugin (signed) or log (sympy's runner)."""
    infra: bool = False
    """The sandbox failed: not recorded, computed again by the next `harness signals`."""
    """Why there is no signal (the runner is not pytest, the patch did not apply, ...)."""

    def to_dict(self) -> dict:
        return {"kind": "regression", **dataclasses.asdict(self)}


class SandboxTests:
    """Runs test files of a blinded instance in fresh sandboxes, a patch applied or not, and
    reads their outcomes (the regression and reproduction signals' shared part)."""

    def __init__(
        self,
        sandbox: Sandbox,
        image_for: Callable[[Instance], str],
        limits: SandboxLimits,
        run_id: str,
    ) -> None:
        self.sandbox = sandbox
        self.image_for = image_for
        self.limits = limits
        self.run_id = run_id

    def _outcomes(
        self, instance, image, patch: str, tests: list[str], written: dict[str, str] | None = None
    ) -> tuple[dict, float]:
        """Each test's outcome with the patch applied (none when empty), from the guard's
        signed record (the log, under sympy's runner), and the container time; `written`:
        more files put in place first."""
        key = guard.new_key()
        via = channel(instance)
        # One file that does not import must not stop the others (pytest ends the whole
        # session at a collection error by default): it just reports no outcomes.
        options = "--continue-on-collection-errors" if via == "pytest-plugin" else ""
        script = swebench_adapter.regression_script(
            instance, tests, guard.env_lines(), options=options
        )
        files = {**(written or {}), SCRIPT_PATH: script, PATCH_PATH: patch, **guard.files(key)}
        start = time.monotonic()
        with self.sandbox.open(image, self.limits, self.run_id) as session:
            session.write_files(files)
            if patch.strip():
                applied = session.exec(f"git apply --verbose {PATCH_PATH}", 120)
                if not applied.ok:
                    raise PatchDidNotApply(apply_error(applied.output))
            result = session.exec(f"/bin/bash {SCRIPT_PATH}", min(self.limits.timeout_s, TIMEOUT_S))
            if result.timed_out or result.over_disk is not None:  # killed: no record to read
                raise NoOutcome(f"the tests ran past {TIMEOUT_S:g} s or past --disk")
            report, key_left = guard.record(session)
        seconds = time.monotonic() - start
        if via == "log":
            log, _ = guard.cut_at_end(result.output, key, swebench_adapter.MARKERS)
            return swebench_adapter.parse_statuses(instance, log), seconds
        record = guard.read_channel(report, key, key_left)
        if record.forged or record.tampered or not record.loaded:
            raise NoOutcome("the test run's record is not trustworthy")
        return dict(record.tests), seconds


class RegressionCheck(SandboxTests):
    """The repo's own tests near a candidate's edits, with and without it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._base: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        """Outcomes at the base commit, per (instance, test files)."""
        self._files: dict[str, list[str]] = {}

    def check(self, instance: Instance, patch: str, patch_sha: str, edited: list[str]) -> Signal:
        instance = blind(instance)
        iid = instance.instance_id
        if channel(instance) is None:
            return Signal(iid, patch_sha, [], [], 0, 0.0, NO_RUNNER)
        if bad := unsafe_path(patch):  # a hook in .git/ would run before pytest, key in reach
            return Signal(iid, patch_sha, [], [], 0, 0.0, f"patch touches {bad}: not run")
        try:
            image = self.image_for(instance)
            tests = near_tests(self._listed(image), edited)
            if not tests:
                return Signal(iid, patch_sha, [], [], 0, 0.0)
            key = (iid, tuple(tests))
            if key not in self._base:
                self._base[key], _ = self._outcomes(instance, image, "", tests)
            after, seconds = self._outcomes(instance, image, patch, tests)
        except NoOutcome as exc:
            return Signal(iid, patch_sha, [], [], 0, 0.0, str(exc))
        except SandboxError as exc:
            return Signal(iid, patch_sha, [], [], 0, 0.0, f"sandbox: {exc}", infra=True)
        base = self._base[key]
        strikes = sorted(t for t, s in base.items() if s == "PASSED" and after.get(t) != "PASSED")
        return Signal(
            iid, patch_sha, tests, strikes, len(after), round(seconds, 3), "", channel(instance)
        )

    def _listed(self, image: str) -> list[str]:
        """The repo's files at the base commit, listed once per image (not per candidate)."""
        if image not in self._files:
            with self.sandbox.open(image, self.limits, self.run_id) as session:
                self._files[image] = session.exec("git ls-files", 120).output.splitlines()
        return self._files[image]


class NoOutcome(Exception):
    """The run says nothing about the tests, because of the candidate or the tests
    themselves (did not apply, ran past the limits, a record that cannot be trusted): kept
    as an unknown signal. A SandboxError instead (the engine failed) is retried."""


class PatchDidNotApply(NoOutcome):
    pass
