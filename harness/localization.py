"""`harness localize`: each issue's ranked files and code units at its base commit, and with
the gold patch (read only after ranking) the share of issues whose edited files and units
all sit within the top k."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agents.gold_locations import edited_files, edited_units
from agents.localize import localize, rank_files
from harness.types import Instance

RECALL_KS = (1, 3, 5, 10)
LOCALIZERS = ("hierarchical", "bm25")


@dataclass(frozen=True)
class Ranked:
    instance_id: str
    files: tuple[str, ...]
    units: tuple[str, ...]
    """`path::name` keys; empty for the bm25 localizer, which ranks files only."""
    gold_files: tuple[str, ...] = ()
    gold_units: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def rank(instance: Instance, worktree: Path, localizer: str, against_gold: bool) -> Ranked:
    """One issue's ranking at its checkout; the gold locations are read after it."""
    if localizer == "bm25":
        files = tuple(p for p, _ in rank_files(worktree, instance.problem_statement, 10))
        found: tuple[str, ...] = ()
    else:
        result = localize(worktree, instance.problem_statement)
        files, found = result.files, tuple(u.key for u in result.units)
    if not against_gold:
        return Ranked(instance.instance_id, files, found)
    gold_units = tuple(u.key for u in edited_units(instance.gold_patch, worktree))
    return Ranked(
        instance.instance_id, files, found, tuple(edited_files(instance.gold_patch)), gold_units
    )


def rank_all(
    instances: Iterable[Instance],
    checkout: Callable[[Instance, Path], Path],
    localizer: str,
    against_gold: bool,
) -> Iterable[Ranked]:
    for instance in instances:
        with tempfile.TemporaryDirectory(prefix="swem-loc-", ignore_cleanup_errors=True) as tmp:
            worktree = checkout(instance, Path(tmp) / "repo")
            yield rank(instance, worktree, localizer, against_gold)


def recall(results: list[Ranked]) -> dict:
    """file_recall and function_recall, each k (a string) -> the share of issues whose gold
    files (units) are all within the top k (None for a localizer that ranks no units). An
    issue whose gold names no unit (it only adds a file, or edits only imports) is left out
    of function_recall, and counted."""
    with_units = [r for r in results if r.gold_units]
    ranks_units = any(r.units for r in results)  # bm25 ranks files only: no function figure
    return {
        "issues": len(results),
        "file_recall": {str(k): _share(results, k, "files") for k in RECALL_KS},
        "function_recall": {
            str(k): _share(with_units, k, "units") if ranks_units else None for k in RECALL_KS
        },
        "issues_with_gold_units": len(with_units),
    }


def _share(results: list[Ranked], k: int, level: str) -> float | None:
    if not results:
        return None
    hit = sum(
        1
        for r in results
        if getattr(r, f"gold_{level}")
        and set(getattr(r, f"gold_{level}")) <= set(getattr(r, level)[:k])
    )
    return round(hit / len(results), 4)
