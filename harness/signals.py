"""`harness signals`: what a deployer can learn about each distinct candidate without the
hidden tests (issue #16), stored in the run's signals.jsonl for the selectors.

- regression: the repo's own tests near the candidate's edits, with and without it;
- reproduction: tests the model writes from the issue text (sampled k at a time, kept when
  they parse, deduplicated), run at the base commit, and the candidate's score on those
  that fail there;
- judge: the model's votes among each issue's top few patches.

Every step is recorded as it finishes and skipped when already recorded, so an interrupted
`harness signals` continues where it stopped."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from harness.protocols import ModelBackend
from harness.store import RunStore
from harness.types import Candidate, Instance, SamplingConfig, VerdictStatus, blind

CODE_FILES = 2
"""Files shown with the issue when the model writes tests: those the candidates edit most."""


class SharedModel:
    """A model server started on first use and kept for the later steps (the reproduction
    tests and the judge), stopped by close()."""

    def __init__(self, start: Callable[[], AbstractContextManager[ModelBackend]]) -> None:
        self._start, self._stack, self._model = start, ExitStack(), None

    @contextmanager
    def __call__(self) -> Iterator[ModelBackend]:
        if self._model is None:
            self._model = self._stack.enter_context(self._start())
        yield self._model

    def close(self) -> None:
        self._stack.close()


@dataclass
class Tally:
    already: int = 0
    checked: int = 0
    struck: int = 0
    tests_written: int = 0
    reproducing: int = 0
    scored: int = 0
    passing: int = 0
    """Candidates that pass at least one reproducing test."""
    judged: int = 0
    missing: int = 0
    """Signals the sandbox failed to compute (not recorded; the next run retries them)."""
    why: str = ""

    def lines(self, repro_tests: int, judge_samples: int) -> list[str]:
        """What was done, for the console."""
        out = [
            f"signals: {self.checked} candidate(s) checked ({self.already} already), "
            f"{self.struck} broke a test of the repo near their edits"
        ]
        if repro_tests:
            out.append(
                f"reproduction: {self.tests_written} test file(s) written, "
                f"{self.reproducing} distinct reproduce their issue (fail at the base commit); "
                f"{self.scored} candidate(s) scored, {self.passing} pass at least one"
            )
        if judge_samples:
            out.append(f"judge: {self.judged} issue(s) judged ({judge_samples} sample(s) each)")
        if self.missing:
            out.append(
                f"[red]{self.missing} signal(s) not computed: the sandbox failed ({self.why}); "
                "run `harness signals` again to compute them[/]"
            )
        return out


def compute(
    store: RunStore,
    by_id: dict[str, Instance],
    checks: Callable[[], tuple[Any, Any]],
    start_model: Callable[[], AbstractContextManager[ModelBackend]],
    repro_tests: int,
    judge_samples: int,
    sampling: SamplingConfig,
    read: Callable[[Instance, list[str]], dict[str, str]],
) -> Tally:
    """Every signal asked for, recorded as it is made; the model is started once, on first
    use, and the run's containers are gone on return."""
    candidates = distinct(store, by_id)
    tally = Tally()
    regression_check, reproduction_check = checks()  # one sandbox between them
    model = SharedModel(start_model)
    with store.writer():
        try:
            regression(store, by_id, candidates, regression_check, tally)
            if repro_tests:
                reproduction(
                    store, by_id, candidates, reproduction_check, model, repro_tests, sampling,
                    read, tally,
                )  # fmt: skip
            if judge_samples:
                judge(store, by_id, candidates, model, judge_samples, sampling, tally)
        finally:
            model.close()
            regression_check.sandbox.cleanup(store.run_id)
    return tally


def distinct(store: RunStore, by_id: dict[str, Instance]) -> dict[str, dict[str, Candidate]]:
    """Per selected issue, the first candidate of each distinct patch (in sample order)."""
    out: dict[str, dict[str, Candidate]] = {}
    for c in sorted(store.candidates(), key=lambda c: (c.instance_id, c.sample_index)):
        if c.patch_sha and c.instance_id in by_id:
            out.setdefault(c.instance_id, {}).setdefault(c.patch_sha, c)
    return out


def edited(candidate: Candidate) -> list[str]:
    from agents.patches import normalise

    return list(candidate.edited_files) or list(normalise(candidate.patch, drop_tests=False).files)


def regression(store: RunStore, by_id, candidates, check, tally: Tally) -> None:
    done = store.signals()
    for iid, patches in candidates.items():
        for sha, c in patches.items():
            if (iid, sha) in done:
                tally.already += 1
                continue
            signal = check.check(by_id[iid], c.patch, sha, edited(c))
            if _kept(store, signal, tally):
                tally.checked += 1
                tally.struck += bool(signal.strikes)


def reproduction(
    store: RunStore,
    by_id: dict[str, Instance],
    candidates: dict[str, dict[str, Candidate]],
    check,
    model: Callable[[], AbstractContextManager[ModelBackend]],
    k: int,
    sampling: SamplingConfig,
    read: Callable[[Instance, list[str]], dict[str, str]],
    tally: Tally,
) -> None:
    """Top each issue up to k tests (the model is started only when some issue has fewer),
    run them at the base commit, then score each distinct candidate on those that reproduce."""
    written = store.repro_tests()
    wanting = {iid: k - len(written.get(iid, [])) for iid in candidates}
    wanting = {iid: n for iid, n in wanting.items() if n > 0}

    async def write(backend: ModelBackend) -> None:
        from agents import repro

        for iid, n in wanting.items():
            have = k - n  # topped up: samples have ..k-1, seeded on from there
            seed = sampling.seed + have if sampling.seed is not None else None
            code = read(by_id[iid], _most_edited(candidates[iid]))
            samples = await repro.sample(
                backend, blind(by_id[iid]), code, n, replace(sampling, seed=seed)
            )
            store.append_repro_tests([{**s.to_dict(), "sample": have + s.sample} for s in samples])
            tally.tests_written += sum(s.test_sha is not None for s in samples)

    if wanting:
        with model() as backend:
            asyncio.run(_closing(backend, write(backend)))
        written = store.repro_tests()
    signals = store.signal_index()[0]
    bases, scored = signals.get("reproduction-base", {}), signals.get("reproduction", {})
    for iid, patches in candidates.items():
        files = {r["test_sha"]: r["code"] for r in written.get(iid, []) if r["test_sha"]}
        recorded = bases.get((iid, ""))
        if recorded is None or sorted(recorded.get("files", [])) != sorted(files):
            run = check.base(by_id[iid], files)
            if run.infra:  # the sandbox failed: none of the candidates can be scored
                tally.missing += 1 + len(patches)
                tally.why = run.error
                continue
            recorded = {**run.to_dict(), "patch_sha": "", "files": sorted(files)}
            store.append_signal(recorded)
        base = check.recorded(recorded)
        tally.reproducing += len(base.reproducing)
        for sha, c in patches.items():
            if (scored.get((iid, sha)) or {}).get("base") == base.files_id:
                continue  # scored against these tests already
            signal = check.check(by_id[iid], c.patch, sha, base, files)
            if _kept(store, signal, tally):
                tally.scored += not signal.error
                tally.passing += bool(signal.passed)


JUDGE_TOP = 3
"""How many distinct patches the judge compares per issue."""


def judge(
    store: RunStore,
    by_id: dict[str, Instance],
    candidates: dict[str, dict[str, Candidate]],
    model: Callable[[], AbstractContextManager[ModelBackend]],
    k: int,
    sampling: SamplingConfig,
    tally: Tally,
) -> None:
    """For each issue with two or more distinct patches, k samples of the model judging the
    JUDGE_TOP that rank highest on what is known without the hidden tests (reproduction
    score, then no strikes, then votes, then the earliest sample)."""
    from agents.judge import votes
    from harness.summary import screened

    signals = store.signal_index()[0]
    done = signals.get("judge", {})
    order = _ranking(store, signals)
    # What a deployer sees of a verdict: whether the patch applied and what the screen said.
    verdicts = store.final_verdicts()
    out = {
        key for key, v in verdicts.items() if v.status == VerdictStatus.APPLY_FAILED or screened(v)
    }
    wanting = {}
    for iid, patches in candidates.items():
        if (iid, "") in done:
            continue
        shown = sorted((sha for sha in patches if (iid, sha) not in out), key=order(iid))
        if len(shown) > 1:
            wanting[iid] = shown[:JUDGE_TOP]
    if not wanting:
        return

    async def ask(backend: ModelBackend) -> None:
        for iid, shown in wanting.items():
            patches = [candidates[iid][sha].patch for sha in shown]
            counts, completions = await votes(backend, blind(by_id[iid]), patches, k, sampling)
            store.append_signal(
                {
                    "kind": "judge",
                    "instance_id": iid,
                    "patch_sha": "",
                    "votes": dict(zip(shown, counts, strict=True)),
                    "prompt_tokens": sum(c.prompt_tokens for c in completions),
                    "completion_tokens": sum(c.completion_tokens for c in completions),
                    "answers": [c.text[:200] for c in completions],
                }
            )
            tally.judged += 1

    with model() as backend:
        asyncio.run(_closing(backend, ask(backend)))


def _ranking(store: RunStore, signals: dict) -> Callable[[str], Callable[[str], tuple]]:
    """Per issue, the order of its patches by reproduction score, strikes, votes and the
    earliest sample (what the judge is shown first)."""
    from harness.summary import known_count

    scores, strikes = signals.get("reproduction", {}), signals.get("regression", {})
    counts: Counter = Counter()
    first: dict[tuple[str, str], int] = {}
    for c in store.candidates():
        if c.patch_sha:
            counts[(c.instance_id, c.patch_sha)] += 1
            first[(c.instance_id, c.patch_sha)] = min(
                c.sample_index, first.get((c.instance_id, c.patch_sha), c.sample_index)
            )

    def order(iid: str) -> Callable[[str], tuple]:
        def key(sha: str) -> tuple:
            return (
                -(known_count(scores.get((iid, sha)), "passed") or 0),
                known_count(strikes.get((iid, sha)), "strikes") or 0,
                -counts[(iid, sha)],
                first.get((iid, sha), 0),
            )

        return key

    return order


def _kept(store: RunStore, signal, tally: Tally) -> bool:
    """Record a signal, unless the sandbox failed: then it is counted missing and the next
    `harness signals` computes it again (an engine outage is no fact about a patch)."""
    if signal.infra:
        tally.missing += 1
        tally.why = signal.error
        return False
    store.append_signal(signal.to_dict())
    return True


async def _closing(backend: ModelBackend, work: Coroutine) -> None:
    """Run the work in this event loop, then close the model's client of this loop."""
    try:
        await work
    finally:
        if close := getattr(backend, "aclose", None):
            await close()


def _most_edited(patches: dict[str, Candidate]) -> list[str]:
    counts = Counter(p for c in patches.values() for p in edited(c))
    return [p for p, _ in counts.most_common(CODE_FILES)]
