"""`harness run`: k candidates for one issue, each distinct patch verified once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.protocols import PatchAgent
from harness.store import RunStore
from harness.types import Candidate, Generation, Instance, SamplingConfig, Verdict


@dataclass
class IssueRun:
    generation: Generation
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """By normalised patch sha; each distinct patch verified once."""

    @property
    def candidates(self) -> list[Candidate]:
        return self.generation.candidates

    def first_index(self, candidate: Candidate) -> int:
        """The sample that first produced this candidate's patch."""
        return next(c.sample_index for c in self.candidates if c.patch_sha == candidate.patch_sha)

    def verdict(self, candidate: Candidate) -> Verdict | None:
        return self.verdicts.get(candidate.patch_sha) if candidate.patch_sha else None

    @property
    def resolving(self) -> int:
        return sum(1 for c in self.candidates if (v := self.verdict(c)) and v.resolved)

    @property
    def unique(self) -> int:
        return len({c.patch_sha for c in self.candidates if c.patch_sha})


def run_issue(
    instance: Instance,
    agent: PatchAgent,
    worktree: Path,
    k: int,
    sampling: SamplingConfig,
    store: RunStore,
    verify: Callable[[Instance, str], Verdict] | None,
    verify_workers: int = 2,
) -> IssueRun:
    generation = asyncio.run(agent.generate(instance, worktree, k, sampling))
    for completion in generation.overhead:
        store.append_overhead(instance.instance_id, "localize", completion)
    for candidate in generation.candidates:
        store.append_candidate(candidate)
    result = IssueRun(generation)
    if verify is None:
        return result
    distinct = {c.patch_sha: c.patch for c in generation.candidates if c.patch_sha}
    with ThreadPoolExecutor(max_workers=max(1, verify_workers)) as pool:
        futures = {sha: pool.submit(verify, instance, patch) for sha, patch in distinct.items()}
        for sha, future in futures.items():
            verdict = future.result()
            result.verdicts[sha] = verdict
            store.append_verdict(verdict)
    return result
