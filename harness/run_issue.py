"""The single-issue view behind `harness run`'s table, read back from a run directory."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from harness.store import RunStore
from harness.types import Candidate, Completion, Generation, Verdict


@dataclass
class IssueRun:
    generation: Generation
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """By normalised patch sha; each distinct patch verified once."""

    @classmethod
    def from_store(cls, store: RunStore, instance_id: str) -> IssueRun:
        candidates = sorted(
            (c for c in store.candidates() if c.instance_id == instance_id),
            key=lambda c: c.sample_index,
        )
        names = {f.name for f in fields(Completion)}
        overhead = [
            Completion(**{k: v for k, v in r.items() if k in names})
            for r in store.records("overhead.jsonl")
            if r["instance_id"] == instance_id
        ]
        verdicts = {v.patch_sha: v for v in store.verdicts() if v.instance_id == instance_id}
        return cls(Generation(instance_id, candidates, overhead), verdicts)

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
