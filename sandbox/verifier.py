"""Verification: apply a patch in a fresh sandbox, run the official eval script, grade the log."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from harness.config import SandboxLimits
from harness.errors import UserError
from harness.protocols import Sandbox, SandboxError
from harness.types import ExecResult, Instance, Verdict, VerdictStatus
from sandbox import (
    git_binary,
    guard,
    integrity,
    patch_paths,
    runner_env,
    services,
    swebench_adapter,
)

PATCH_PATH = "/tmp/patch.diff"
SETUP_PATH = "/tmp/swem-eval/setup.sh"
TESTS_PATH = "/tmp/swem-eval/tests.sh"
"""The eval script runs in two parts. The setup (the spec's install steps, which run the
candidate's setup.py, and git commands, which run hooks) ends by saving its shell's
environment; then every process it left is stopped, the engine's list of the container's
changes is read, and only then are the guard's plugin, key and plan written, with the tests
part, which restores that environment and runs the tests. Nothing the setup ran can read the
key or rewrite the plugin, and what it changed that runs before the plugin is on record."""
ENV_PATH = "/tmp/swem-eval/env.sh"
SAVE_ENV = f'{{ export -p; printf "cd %q\\n" "$PWD"; }} > {ENV_PATH}'
OFFLINE_PIP = ("export PIP_NO_INDEX=1", "export PIP_NO_BUILD_ISOLATION=0")
"""Under --network none, the spec's `pip install -e .` reinstall builds from what the image
has (no isolated build that would fetch setuptools and retry five times) and fails at once
when something is missing, which the verdict then says."""
TREE_STATE = "/tmp/swem-tree"
RECORD_TREE = (
    f"mkdir -p {TREE_STATE} && git diff HEAD --binary > {TREE_STATE}/base.diff && "
    f"git ls-files --others -z > {TREE_STATE}/untracked"
)
"""The tree as the image left it (its own edits to tracked files, its untracked files)."""
SNAPSHOT_MARK = "swem-tree-recorded:"
RESTORE_TREE = (
    f"git checkout -q -- . && {{ [ ! -s {TREE_STATE}/base.diff ] || "
    f"git apply {TREE_STATE}/base.diff; }} && "
    f"git ls-files --others -z | sort -z > {TREE_STATE}/now && "
    f"sort -z {TREE_STATE}/untracked | comm -z -23 {TREE_STATE}/now - | xargs -0 -r rm -f --"
)
APPLY_TIMEOUT_S = 120.0
FIRST_AFTER_S = 10.0
"""FAIL_TO_PASS tests run first only for an instance whose pytest session (not the eval
script: its reinstall can be most of it, astropy's compiles for a minute) took at least this
long in the official order before (SWEM_FIRST_AFTER_S sets it; 0: always). A candidate that
passes them pays a second container and eval script, which only slow test files repay (the
mini benchmark's 0.3 s runs do not)."""
DRY_RUN_NAMES = "sed -n 's/^checking file //p'"
"""The names `patch --dry-run` says it would write, as it decoded them (quoted when odd)."""
UNDER_GIT = r"""(^|/|')\.git[. ]*(/|'|$)"""


def patch_sha(patch: str) -> str:
    return hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()


def unsafe_path(patch: str) -> str | None:
    """The first path in the patch's headers that leaves the repository or enters .git, if
    any, read as git and `patch` decode paths. Checked before applying: a hook written in
    .git/ runs as root at the eval script's next git command."""
    return patch_paths.first_unsafe(patch)


def refused_change(patch: str) -> str | None:
    """Why the patch is refused before it is applied (None: it may apply)."""
    if bad := unsafe_path(patch):
        return f"patch touches a path outside the repository: {bad}"
    if binary := git_binary.refused(patch):
        return (
            f"binary change to {binary.path}: a file the tests may import must be a text "
            "diff (its content cannot be screened)"
        )
    return None


def apply_line(command: str) -> str:
    """One rung of the ladder on the patch. `patch`, the last rung, decodes git's quoted names
    and writes wherever they point: its dry run names every file it would write, and one
    under .git fails the apply before anything is written."""
    if not command.startswith("patch "):
        return f"{command} {PATCH_PATH}"
    dry = command.replace("patch ", "patch --dry-run ", 1)
    return (
        f'if {dry} {PATCH_PATH} 2>&1 | {DRY_RUN_NAMES} | grep -Eiq "{UNDER_GIT}"; then '
        "echo 'patch: refused: the patch would write under .git'; exit 97; fi; "
        f"{command} {PATCH_PATH}"
    )


class Verifier:
    """Decides whether a patch resolves an instance; every outcome is a Verdict, never a raise
    (except for a missing image, which is the user's to fix)."""

    def __init__(
        self,
        sandbox: Sandbox,
        image_for: Callable[[Instance], str],
        limits: SandboxLimits,
        run_id: str,
        artifact_dir: Callable[[str, str], Path],
        describe_image: Callable[[str], tuple[str, str]] | None = None,
        relative: Callable[[Path], str | None] = str,
        flaky: dict[str, list[str]] | None = None,
        full_tests: bool = False,
    ) -> None:
        self.full_tests = full_tests
        """Run every test even after a required one failed (every log line, as officially)."""
        self.first_after_s = _seconds_from_env("SWEM_FIRST_AFTER_S", FIRST_AFTER_S)
        self._ordered_s: dict[str, float] = {}
        """The longest official-order test run seen per instance."""
        self.flaky = flaky or {}
        """Known-flaky tests per instance (`validate --repeat`), left out of PASS_TO_PASS."""
        self.describe_image = describe_image or (lambda image: ("", ""))
        self.relative = relative
        """Paths recorded in a verdict, relative to the run directory."""
        self.sandbox = sandbox
        self.image_for = image_for
        self.limits = limits
        self.run_id = run_id
        self.artifact_dir = artifact_dir

    def verify(
        self, instance: Instance, patch: str, limits: SandboxLimits | None = None
    ) -> Verdict:
        limits = self.limits_for(instance, limits or self.limits)
        sha = patch_sha(patch)
        excluded = self.excluded(instance)
        if excluded:
            kept = tuple(t for t in instance.pass_to_pass if t not in excluded)
            instance = dataclasses.replace(instance, pass_to_pass=kept)
        # The same patch under another network policy is another run of the tests.
        key = sha if limits.network == "none" else f"{sha[:16]}-{limits.network}"
        out = self.artifact_dir(instance.instance_id, key)
        verdict = Verdict(
            instance.instance_id,
            sha,
            VerdictStatus.ERROR,
            network=limits.network,
            versions={"swebench": swebench_adapter.SWEBENCH_VERSION},
            artifacts=self.relative(out),
        )
        start = time.monotonic()
        (out / "patch.diff").write_text(patch, encoding="utf-8", errors="surrogateescape")
        findings = integrity.screen(patch, instance.repo, instance.test_patch)
        verdict.flags = [str(f) for f in findings]
        try:
            script = self.script(instance, limits)
            (out / "eval.sh").write_text(script)
            t0 = time.monotonic()
            verdict.image = self.image_for(instance)
            verdict.durations["image_s"] = round(time.monotonic() - t0, 3)
            verdict.image_source, verdict.fidelity = self.describe_image(verdict.image)
            self._run(instance, patch, script, verdict, out, limits)
        except SandboxError as exc:
            verdict.status, verdict.reason = VerdictStatus.ERROR, f"sandbox: {exc}"
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - one patch's failure must not stop a run
            verdict.status, verdict.reason = VerdictStatus.ERROR, f"{type(exc).__name__}: {exc}"
        if excluded:
            _note(
                verdict,
                f"excluded {len(excluded)} known-flaky PASS_TO_PASS test(s): "
                + ", ".join(excluded),
            )
        verdict.durations["total_s"] = round(time.monotonic() - start, 3)
        (out / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2, sort_keys=True))
        return verdict

    @staticmethod
    def limits_for(instance: Instance, limits: SandboxLimits) -> SandboxLimits:
        """The spec's own CPU request (`nano_cpus`, e.g. pylint 2.14+, whose tests skip with
        fewer than 2 cores) is a floor under --cpus, up to the host's cores."""
        try:
            wanted = swebench_adapter.env_specs(instance).get("nano_cpus", 0) / 1e9
        except UserError:
            return limits
        cpus = min(max(limits.cpus, wanted), float(os.cpu_count() or 1))
        return dataclasses.replace(limits, cpus=cpus) if cpus != limits.cpus else limits

    def excluded(self, instance: Instance) -> list[str]:
        """The instance's PASS_TO_PASS tests graded as not required (known flaky)."""
        return sorted(set(instance.pass_to_pass) & set(self.flaky.get(instance.instance_id, ())))

    def script(self, instance: Instance, limits: SandboxLimits) -> str:
        """The eval script this verifier runs (its hash is part of the verdict cache key)."""
        offline = OFFLINE_PIP if limits.network == "none" else ()
        tests_env = (services.START_LINE, *guard.env_lines())  # services start with the tests
        return swebench_adapter.eval_script(instance, tests_env, offline)

    def plan(self, instance: Instance) -> dict | None:
        """How the tests may end early, where our plugin runs in pytest and the user did not
        ask for --full-tests: the run stops at the first required test that fails (which
        decides the verdict as the full run would), and the FAIL_TO_PASS tests run first, since
        at high k most candidates fail them. None: every test, in the official order."""
        if self.full_tests or not guard.expects_plugin(swebench_adapter.test_command(instance)):
            return None
        named = lambda tests: sorted({t for t in tests if not guard.log_artifact(t)})  # noqa: E731
        required = named((*instance.fail_to_pass, *instance.pass_to_pass))
        slow = self._ordered_s.get(instance.instance_id, 0.0) >= self.first_after_s
        first = named(instance.fail_to_pass) if slow else []
        return {"required": required, "first": first} if required else None

    def _run(self, instance, patch, script, verdict: Verdict, out: Path, limits) -> None:
        if refusal := refused_change(patch):
            verdict.status, verdict.reason = VerdictStatus.APPLY_FAILED, refusal
            return
        plan = self.plan(instance)
        restore = tuple(integrity.unreset_test_files(patch, instance.test_patch))
        run = self._tests(instance, patch, script, verdict, out, limits, plan, restore)
        if run is not None and plan and run.passed_first():
            # Its FAIL_TO_PASS tests passed out of order: the verdict comes from a run in the
            # official order (a fresh container; a failing required test still ends it).
            run.keep(out, "first")
            verdict.durations["first_s"] = round(run.result.duration_s, 3)
            ordered = {**plan, "first": []}
            run = self._tests(instance, patch, script, verdict, out, limits, ordered, restore)
        if run is None:
            return
        channel = guard.read_channel(run.report, run.key, run.key_left)
        if channel.seconds is not None:
            verdict.durations["pytest_s"] = round(channel.seconds, 3)
            if not channel.reordered:
                iid = instance.instance_id
                self._ordered_s[iid] = max(self._ordered_s.get(iid, 0.0), channel.seconds)
        verdict.durations["tests_s"] = round(run.result.duration_s, 3)
        verdict.log_path = self.relative(run.keep(out))
        self._grade(instance, verdict, run, limits)
        if restore:
            self._official_with_test_edits(instance, patch, script, verdict, out, limits, restore)

    def _official_with_test_edits(self, instance, patch, script, verdict, out, limits, restore):
        """Our verdict ran the tests with the test and test-runner files the candidate edited put
        back; the official harness keeps those edits (it resets only the test patch's files).
        Its verdict comes from a run of the eval script as it is, every test in order."""
        _note(
            verdict,
            f"{len(restore)} test or test-runner file(s) the patch edits were put back for our "
            "verdict "
            f"({', '.join(restore[:3])}{', ...' if len(restore) > 3 else ''}); "
            "official_resolved is from a run with the edits",
        )
        run = self._tests(instance, patch, script, verdict, out, limits, None)
        if run is None or not _finished(run.result):
            verdict.official_resolved = None
            return
        run.keep(out, "official")
        verdict.official_resolved = swebench_adapter.grade(instance, run.result.output).official

    def _tests(
        self,
        instance: Instance,
        patch,
        script,
        verdict: Verdict,
        out: Path,
        limits,
        plan,
        restore: tuple[str, ...] = (),
    ) -> _TestRun | None:
        """Apply the patch in a fresh sandbox and run the eval script; None if it did not
        apply (the verdict then says so)."""
        key = guard.new_key()
        setup, tests = split_script(script, restore, instance.base_commit)
        late = {TESTS_PATH: tests, **guard.files(key)}
        if plan:
            late[guard.STOP_PATH] = json.dumps(plan)
        with self.sandbox.open(verdict.image, limits, self.run_id) as session:
            t0 = time.monotonic()
            session.write_files({PATCH_PATH: patch, SETUP_PATH: setup})
            if patch.strip() and not _apply(session, verdict, out):
                return None
            verdict.durations["apply_s"] = round(time.monotonic() - t0, 3)
            result = session.exec(f"/bin/bash {SETUP_PATH}", limits.timeout_s)
            trace = None
            if _finished(result):
                session.quiesce()
                changes = session.changes() or []
                trace = runner_env.trace(changes, instance.repo, session.read_file)
                session.write_files(late)
                left_s = max(limits.timeout_s - result.duration_s, 1.0)
                result = _joined(result, session.exec(f"/bin/bash {TESTS_PATH}", left_s))
            report, key_left = guard.record(session) if _finished(result) else (b"", False)
        return _TestRun(result, report, key, key_left, trace)

    def _grade(self, instance, verdict: Verdict, run: _TestRun, limits) -> None:
        result, report, key, key_left = run.result, run.report, run.key, run.key_left
        official = swebench_adapter.grade(instance, result.output)
        if failed := swebench_adapter.reinstall_error(result.output):
            _note(
                verdict,
                f"the eval script's reinstall failed ({failed}); tests ran on the image's install",
            )
        cut, end_found = guard.cut_at_end(result.output, key, swebench_adapter.MARKERS)
        log = swebench_adapter.grade(instance, cut) if end_found else official
        channel = guard.named_as_the_log(
            guard.read_channel(report, key, key_left),
            lambda text: swebench_adapter.parse_statuses(instance, text),
        )
        expected = guard.expects_plugin(swebench_adapter.test_command(instance))
        judged = guard.judge(
            log.fail_to_pass,
            log.pass_to_pass,
            official.test_exit_code,
            channel,
            expected,
            end_found,
            guard.start_error(cut, *swebench_adapter.TEST_OUTPUT_MARKERS),
        )
        verdict.official_resolved = official.official
        verdict.channel = judged.channel
        verdict.fail_to_pass, verdict.pass_to_pass = judged.fail_to_pass, judged.pass_to_pass
        verdict.test_exit_code = official.test_exit_code
        if result.over_disk is not None:
            verdict.status = VerdictStatus.UNRESOLVED
            verdict.reason = (
                f"the tests wrote {result.over_disk / 2**20:.0f} MiB, past --disk "
                f"{limits.disk}; the container was killed"
            )
        elif result.timed_out:
            verdict.status = VerdictStatus.TIMEOUT
            verdict.reason = f"tests ran past {limits.timeout_s:g} s; the container was killed"
        elif run.trace:
            verdict.status = VerdictStatus.SUSPICIOUS
            verdict.reason = (
                f"suspicious: the eval script's setup changed what runs before the guard: "
                f"{run.trace}"
            )
        elif judged.suspicious:
            verdict.status, verdict.reason = VerdictStatus.SUSPICIOUS, judged.suspicious
        elif judged.resolved and log.resolved:
            verdict.status, verdict.reason = VerdictStatus.RESOLVED, ""
        else:
            verdict.status = VerdictStatus.UNRESOLVED
            verdict.reason = judged.reason or log.reason or "not resolved"
            if channel.stop_why == "failed" and judged.channel == "pytest-plugin":
                _stopped_early(verdict, channel.stopped_at, channel.reordered)


@dataclasses.dataclass(frozen=True)
class _TestRun:
    result: ExecResult
    report: bytes
    """The plugin's signed record."""
    key: str
    key_left: bool
    trace: str | None = None
    """A change the setup made to what runs before the guard ("C /path"), if any."""

    def passed_first(self) -> bool:
        """The plugin moved the FAIL_TO_PASS tests to the front and none of them failed (or
        the run ended otherwise before its verdict was decided), so this run decides nothing."""
        if self.result.timed_out or self.result.over_disk is not None:
            return False  # killed: that verdict stands
        channel = guard.read_channel(self.report, self.key, self.key_left)
        if not channel.reordered or channel.forged or channel.stop_why == "failed":
            return False
        # Done with the moved tests, or ended otherwise after some ran (a crash); a run that
        # ran no test at all (a collection error) ends the same way in any order.
        return channel.stop_why == "checked" or bool(channel.tests)

    def keep(self, out: Path, phase: str = "") -> Path:
        """The log and the record in the artifacts (`test_output.first.txt` for the run with
        the FAIL_TO_PASS tests first, when another run followed it)."""
        suffix = f".{phase}" if phase else ""
        log_path = out / f"test_output{suffix}.txt"
        log_path.write_text(self.result.output, errors="replace")
        (out / f"runner_record{suffix}.jsonl").write_bytes(self.report)
        return log_path


def split_script(script: str, restore: tuple[str, ...] = (), base: str = "") -> tuple[str, str]:
    """(setup, tests): the eval script cut where the tests' environment starts (the services,
    then the guard's lines); the setup puts the `restore` files back as they are at `base`
    (removes those it lacks), then saves its shell's environment, which the tests restore."""
    lines = script.splitlines()
    cut = lines.index(services.START_LINE)
    put_back = [
        f"git checkout {base} -- {shlex.quote(p)} 2>/dev/null || rm -f -- {shlex.quote(p)}"
        for p in restore
    ]
    setup = [*lines[:cut], *put_back, SAVE_ENV]
    tests = [*lines[:2], f". {ENV_PATH}", *lines[cut:]]  # the shebang and `set -uxo pipefail`
    return "\n".join(setup) + "\n", "\n".join(tests) + "\n"


def _finished(result: ExecResult) -> bool:
    """Not killed (timeout, disk): the sandbox is still there to continue in."""
    return not result.timed_out and result.over_disk is None


def _joined(setup: ExecResult, tests: ExecResult) -> ExecResult:
    """The two parts as one run of the eval script: one log, the tests' exit status."""
    return ExecResult(
        tests.returncode,
        setup.output + tests.output,
        tests.timed_out,
        setup.duration_s + tests.duration_s,
        setup.truncated_bytes + tests.truncated_bytes,
        tests.over_disk,
    )


def _stopped_early(verdict: Verdict, stopped_at: str, reordered: bool) -> None:
    """Name the tests the run did not reach after a required test failed."""
    required = {**verdict.fail_to_pass, **verdict.pass_to_pass}
    verdict.not_run = sorted(t for t, s in required.items() if s == "MISSING")
    order = " with the FAIL_TO_PASS tests run first" if reordered else ""
    verdict.reason = (
        f"required test {stopped_at} failed ({required.get(stopped_at, 'FAILED')}){order}; the "
        f"run stopped there, {len(verdict.not_run)} required test(s) not run (--full-tests runs "
        "every test in the official order)"
    )


def _seconds_from_env(name: str, default: float) -> float:
    """A number of seconds from the environment (0: FAIL_TO_PASS first for every instance)."""
    text = os.environ.get(name)
    try:
        return default if text is None else float(text)
    except ValueError:
        raise UserError(f"{name}={text}: give a number of seconds, e.g. {name}=0") from None


def _note(verdict: Verdict, note: str) -> None:
    """Add to the verdict's fidelity notes (where this run differs from the official one)."""
    verdict.fidelity = f"{verdict.fidelity}; {note}" if verdict.fidelity else note


def _apply(session, verdict: Verdict, out: Path) -> bool:
    """swebench's ladder (git apply, git apply --reject, patch --fuzz) on the patch at
    PATCH_PATH, each attempt on the tree as the image left it: a failed `--reject` leaves half
    a patch and .rej files behind, so the tree is put back (tracked files, and files the
    attempt created) before the next one. The tree is recorded in the first attempt's exec."""
    log = []
    snapshot_ok = False
    for n, command in enumerate(swebench_adapter.GIT_APPLY_CMDS):
        if n == 0:
            result = session.exec(
                f'{{ {RECORD_TREE}; }} >/dev/null 2>&1; echo "{SNAPSHOT_MARK}$?"; '
                f"{apply_line(command)}",
                APPLY_TIMEOUT_S,
            )
            recorded, _, output = result.output.partition("\n")
            snapshot_ok = recorded.strip() == f"{SNAPSHOT_MARK}0"
            result = dataclasses.replace(result, output=output)
        else:
            result = session.exec(apply_line(command), APPLY_TIMEOUT_S)
        log.append(f"$ {command} {PATCH_PATH}\n{result.output}\n[exit {result.returncode}]")
        if result.ok:
            verdict.apply_command = command
            fuzzy = "fuzzy-apply: only `patch --fuzz` applied it"
            if command.startswith("patch ") and fuzzy not in verdict.flags:
                verdict.flags.append(fuzzy)
            break
        if snapshot_ok:
            restored = session.exec(RESTORE_TREE, APPLY_TIMEOUT_S)
            log.append(f"$ (tree restored)\n{restored.output}\n[exit {restored.returncode}]")
    (out / "apply.log").write_text("\n".join(log), errors="replace")
    if verdict.apply_command is None:
        verdict.status = VerdictStatus.APPLY_FAILED
        verdict.reason = apply_error(result.output)
        return False
    return True


def apply_error(output: str) -> str:
    for line in output.splitlines():
        if (
            line.startswith(("error:", "fatal:", "patch:", "patch unexpectedly"))
            or "FAILED" in line
        ):
            return f"patch did not apply: {line.strip()[:200]}"
    return "patch did not apply"
