"""The central records shared by every package: Instance, ExecResult, Verdict and friends.

Only the standard library is imported here, so `agents/` and `sandbox/` can depend on it freely.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SWEBENCH_COLUMNS = (
    "instance_id",
    "repo",
    "base_commit",
    "patch",
    "test_patch",
    "problem_statement",
    "version",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)
"""Columns every SWE-bench row must carry for the harness to generate and verify."""


def _as_test_list(value: Any, column: str, instance_id: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{instance_id}: {column} is not JSON ({exc.msg})") from None
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"{instance_id}: {column} must be a list of test names")
    return tuple(value)


@dataclass(frozen=True)
class Instance:
    """One SWE-bench task: an issue on a repo at a commit, with the tests that decide it."""

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    version: str
    gold_patch: str
    test_patch: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    environment_setup_commit: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Instance:
        """Build from a SWE-bench row; FAIL_TO_PASS/PASS_TO_PASS may be JSON text or lists."""
        iid = str(row["instance_id"])
        return cls(
            instance_id=iid,
            repo=str(row["repo"]),
            base_commit=str(row["base_commit"]),
            problem_statement=str(row["problem_statement"]),
            version=str(row["version"]),
            gold_patch=str(row["patch"]),
            test_patch=str(row["test_patch"]),
            fail_to_pass=_as_test_list(row["FAIL_TO_PASS"], "FAIL_TO_PASS", iid),
            pass_to_pass=_as_test_list(row["PASS_TO_PASS"], "PASS_TO_PASS", iid),
            environment_setup_commit=row.get("environment_setup_commit"),
            raw=dict(row),
        )

    def to_row(self) -> dict[str, Any]:
        """The classic SWE-bench row (list columns as JSON text, as the HF dataset has them)."""
        row = dict(self.raw)
        row.update(
            instance_id=self.instance_id,
            repo=self.repo,
            base_commit=self.base_commit,
            problem_statement=self.problem_statement,
            version=self.version,
            patch=self.gold_patch,
            test_patch=self.test_patch,
            FAIL_TO_PASS=json.dumps(list(self.fail_to_pass)),
            PASS_TO_PASS=json.dumps(list(self.pass_to_pass)),
        )
        if self.environment_setup_commit is not None:
            row["environment_setup_commit"] = self.environment_setup_commit
        return row


@dataclass(frozen=True)
class ExecResult:
    """What one command in a sandbox did."""

    returncode: int | None
    """Exit status; None when the command was killed for its timeout."""
    output: str
    """stdout and stderr interleaved, capped (the middle is dropped past the cap)."""
    timed_out: bool = False
    duration_s: float = 0.0
    truncated_bytes: int = 0
    """How many bytes of output were dropped by the cap."""
    over_disk: int | None = None
    """Bytes the sandbox had written when it was killed for passing its disk limit."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.over_disk is None


class VerdictStatus(enum.StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    APPLY_FAILED = "apply_failed"
    TIMEOUT = "timeout"
    ERROR = "error"
    """Infrastructure failed (image missing, container died): not the patch's fault."""
    SUSPICIOUS = "suspicious"
    """The channels that report the tests disagree (a forged or rewritten record, output after
    the runner finished): never resolved, whatever the log says."""


@dataclass(slots=True)  # a report at 300 x 250 holds tens of thousands: no __dict__ each
class Verdict:
    """Whether a patch resolves an instance, and the evidence."""

    instance_id: str
    patch_sha: str
    status: VerdictStatus
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    """Each FAIL_TO_PASS test and its status after the patch (PASSED, FAILED, ERROR, MISSING...)."""
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    """Why the verdict is not RESOLVED, in one line (empty when resolved)."""
    apply_command: str | None = None
    """Which command of the fallback ladder applied the patch."""
    test_exit_code: int | None = None
    image: str = ""
    image_source: str = ""
    """How the image was had: local, pulled, built (offline) or mini."""
    fidelity: str = ""
    """Where an offline-built environment differs from the official one (e.g. Python)."""
    network: str = "none"
    """The network policy the tests ran under ("none" or "bridge")."""
    durations: dict[str, float] = field(default_factory=dict)
    log_path: str | None = None
    """The test log, relative to the run directory."""
    artifacts: str | None = None
    """The folder with patch, eval script, apply log, test log, relative to the run."""
    cached: bool = False
    """Taken from the verdict cache (its artifacts copied into this run), not run here."""
    attempts: int = 1
    """Verifications it took: more than one when the sandbox failed and it was retried."""
    official_resolved: bool | None = None
    """What swebench's own grading says of the same log (XFAIL counts as passing there)."""
    channel: str = ""
    """Where the test outcomes came from: "pytest-plugin" (our signed record) or "log"."""
    flags: list[str] = field(default_factory=list)
    """Integrity screen findings ("rule: path: detail"), and `fuzzy-apply`."""
    not_run: list[str] = field(default_factory=list)
    """Required tests the run never reached: it ended at the first required test that failed
    (no --full-tests), which decides the verdict as the full run would."""
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.status is VerdictStatus.RESOLVED

    @property
    def decided(self) -> bool:
        """A verdict on the patch; `error` means the sandbox never finished, so it is not."""
        return self.status is not VerdictStatus.ERROR

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(**{**data, "status": VerdictStatus(data["status"])})


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample; maps onto the OpenAI/vLLM request fields of the same names."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = None
    """With a seed, sample i of a top-up request gets seed + i so samples differ."""


@dataclass
class Completion:
    """One sampled answer and what it cost. Token counts are this sample's share: a request
    for n samples bills its prompt once, split across them, so sums over samples are exact."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    usage_exact: bool = True
    """False when completion tokens of an n>1 request were apportioned by text length."""
    error: str | None = None
    """Why no answer came (after retries); the text is then empty."""
    tool_calls: list[dict] = field(default_factory=list)
    """Tool calls the model made: {"id", "name", "arguments" (JSON text)}."""


MISSING_REASONS = ("model error", "sandbox error")
"""Reasons a sample is missing rather than failed (see Candidate.missing)."""


@dataclass(slots=True)  # 75,000 in a report at 300 x 250: no __dict__ each
class Candidate:
    """One sample turned into a patch (or the reason it did not become one)."""

    instance_id: str
    sample_index: int
    patch: str
    patch_sha: str | None
    """sha256 of the normalised patch; None when there is no valid patch."""
    reason: str | None
    """Why no valid patch came out (None when valid)."""
    raw_output: str | None
    """The model's answer; None when read back without it (`RunStore.candidates`)."""
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str | None = None
    edited_files: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    """The places its prompt showed: `path::name@start-end` in the span format, the files
    shown whole in the others."""

    @property
    def valid(self) -> bool:
        return self.patch_sha is not None

    @property
    def missing(self) -> bool:
        """The infrastructure, not the model, failed this sample (the server never answered,
        or the agent's sandbox broke): it is asked again, and never counts as a failure."""
        return self.patch_sha is None and (self.reason or "").startswith(MISSING_REASONS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """What an agent produced for one issue: its candidates, plus the model calls made for the
    issue as a whole (e.g. localisation) so that every token is accounted for."""

    instance_id: str
    candidates: list[Candidate]
    overhead: list[Completion] = field(default_factory=list)
    context_files: tuple[str, ...] = ()
    trajectories: list[dict] = field(default_factory=list)
    """Multi-turn agents: one transcript per candidate, in the same order."""

    @property
    def tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens over candidates and overhead."""
        prompt = sum(c.prompt_tokens for c in self.candidates) + sum(
            c.prompt_tokens for c in self.overhead
        )
        completion = sum(c.completion_tokens for c in self.candidates) + sum(
            c.completion_tokens for c in self.overhead
        )
        return prompt, completion


def reproduction_id(reproducing: dict[str, list[str]]) -> str:
    """Names the set of reproducing tests a reproduction score was measured on (a later
    `harness signals --repro-tests N` with more tests makes a new set: older scores lapse)."""
    text = json.dumps(reproducing, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def blind(instance: Instance) -> Instance:
    """The instance as a deployer has it: no test patch, no lists of the tests that judge."""
    return replace(instance, test_patch="", fail_to_pass=(), pass_to_pass=())
