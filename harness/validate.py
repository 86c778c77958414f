"""Dataset validation: each instance's gold patch must resolve it and the empty patch must not."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.config import RetryPolicy, SandboxLimits
from harness.errors import UserError
from harness.types import Instance, Verdict, VerdictStatus


@dataclass
class Validation:
    instance_id: str
    gold: Verdict | None
    empty: Verdict | None
    gold_with_network: Verdict | None = None
    """Set when the gold patch failed offline and was tried again with the network."""
    error: str = ""
    """A one-line reason the instance could not be validated at all (e.g. a missing image)."""
    repeats: list[tuple[Verdict, Verdict]] = dataclasses.field(default_factory=list)
    """Every (gold, empty) pair when validated more than once (--repeat)."""
    infra: bool = False
    """The sandbox never finished a verification, after retries: not validated, not unsound."""

    @property
    def flaky(self) -> list[str]:
        """Tests whose outcome varied between repeats of the same patch."""
        varied = set()
        for pick in (0, 1):
            seen: dict[str, set[str]] = {}
            for pair in self.repeats:
                for test, status in {**pair[pick].fail_to_pass, **pair[pick].pass_to_pass}.items():
                    seen.setdefault(test, set()).add(status)
            varied |= {t for t, statuses in seen.items() if len(statuses) > 1}
        return sorted(varied)

    @property
    def needs_network(self) -> bool:
        return self.gold_with_network is not None and self.gold_with_network.resolved

    @property
    def ok(self) -> bool:
        pairs = self.repeats or [(self.gold, self.empty)]
        return not self.error and all(
            gold is not None
            and gold.resolved
            and empty is not None
            and empty.status is not VerdictStatus.RESOLVED
            for gold, empty in pairs
        )

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        notes = []
        if self.gold and self.gold.fidelity:
            notes.append(f"fidelity: {self.gold.fidelity}")
        if self.gold and self.gold.durations.get("image_s", 0) > 5:
            notes.append(f"image ready in {self.gold.durations['image_s']:.0f} s")
        if self.needs_network:
            notes.append("gold passes only with the network")
        if self.gold and not self.gold.resolved:
            notes.append(f"gold {self.gold.status.value}: {self.gold.reason}")
        if self.empty and self.empty.resolved:
            notes.append("empty patch resolves: the tests do not decide this issue")
        if len(self.repeats) > 1:
            golds = sum(g.resolved for g, _ in self.repeats)
            notes.append(f"gold resolved {golds}/{len(self.repeats)}")
            if self.flaky:
                notes.append(
                    f"flaky: {', '.join(self.flaky[:3])}" + (" ..." if len(self.flaky) > 3 else "")
                )
        return "; ".join(notes)

    def record(self) -> dict:
        """One line of the run's validation.jsonl (scripts/soundness_table.py reads them)."""
        pairs = self.repeats or ([(self.gold, self.empty)] if self.gold and self.empty else [])
        return {
            "instance_id": self.instance_id,
            "ok": self.ok,
            "error": self.error,
            "infra": self.infra,
            "gold": [g.status.value for g, _ in pairs],
            "empty": [e.status.value for _, e in pairs],
            "flaky": self.flaky,
            "needs_network": self.needs_network,
            "note": self.note,
            "image": self.gold.image if self.gold else "",
            "image_s": self.gold.durations.get("image_s", 0.0) if self.gold else 0.0,
            "tests_s": [g.durations.get("tests_s", 0.0) for g, _ in pairs],
        }


def until_decided(
    verify: Callable[..., Verdict], retry: RetryPolicy, stop: threading.Event
) -> Callable[..., Verdict]:
    """`verify`, tried again with backoff while the sandbox fails (an `error` verdict: the
    engine restarted, a container was killed from outside), as `eval` does; never once `stop`
    is set (Ctrl-C removed the containers: that error is the interruption's)."""

    def again(*args) -> Verdict:
        for attempt in retry.tries:
            verdict = verify(*args)
            verdict.attempts = attempt  # as eval records it
            if verdict.decided or attempt == retry.tries[-1] or stop.wait(retry.delay(attempt)):
                return verdict
        raise AssertionError("unreachable: a retry policy has at least one attempt")

    return again


def validate_instance(
    verify: Callable[..., Verdict],
    instance: Instance,
    limits: SandboxLimits,
    network_check: bool = True,
    repeat: int = 1,
) -> Validation:
    try:
        pairs = [
            (verify(instance, instance.gold_patch, limits), verify(instance, "", limits))
            for _ in range(max(repeat, 1))
        ]
        if failed := next((v for pair in pairs for v in pair if not v.decided), None):
            why = f"not validated, the sandbox failed: {failed.reason} (run validate again)"
            return Validation(instance.instance_id, None, None, error=why, infra=True)
        gold, empty = pairs[0]
        result = Validation(instance.instance_id, gold, empty, repeats=pairs if repeat > 1 else [])
        if network_check and not gold.resolved and limits.network == "none":
            online = dataclasses.replace(limits, network="bridge")
            result.gold_with_network = verify(instance, instance.gold_patch, online)
    except UserError as exc:
        return Validation(instance.instance_id, None, None, error=str(exc))
    return result


def validate(
    verify: Callable[..., Verdict],
    instances: list[Instance],
    limits: SandboxLimits,
    workers: int = 1,
    network_check: bool = True,
    on_result: Callable[[Validation], None] | None = None,
    repeat: int = 1,
    retry: RetryPolicy = RetryPolicy(),
) -> list[Validation]:
    """Validate every instance; one instance's failure never stops the others, and a sandbox
    failure is retried (`retry`) before it leaves an instance not validated."""
    stop = threading.Event()
    verify = until_decided(verify, retry, stop)

    def one(instance: Instance) -> Validation:
        result = validate_instance(verify, instance, limits, network_check, repeat)
        if on_result:
            on_result(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        return list(pool.map(one, instances))
    except BaseException:
        stop.set()
        raise
    finally:
        # On Ctrl-C or SIGTERM, return at once: waiting for the running verifications (a
        # sympy test file can take ten minutes) would keep the command alive; the caller
        # removes their containers, which ends them.
        pool.shutdown(wait=False, cancel_futures=True)


def exit_status(results: list[Validation]) -> int:
    """0 every instance sound; 1 any unsound (or not validatable: a missing image); 3 only
    sandbox failures left, which a rerun may settle (as `eval` exits 3 with work missing)."""
    if all(r.ok for r in results):
        return 0
    return 3 if all(r.ok or r.infra for r in results) else 1


def record_flaky(path, results: list[Validation]) -> dict[str, list[str]]:
    """Merge the flaky tests measured now into the file `--exclude-flaky` reads; an instance
    validated again replaces what was known of it."""
    import json
    from pathlib import Path

    path = Path(path)
    known = json.loads(path.read_text()) if path.exists() else {}
    for r in results:
        if r.repeats:
            known[r.instance_id] = r.flaky
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=1, sort_keys=True))
    return known
