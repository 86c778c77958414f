"""SWE-bench predictions files as candidates, with the official harness's rules: every row
names an instance of the dataset (an unknown id is refused), `model_name_or_path` labels the
run, and a selected instance without a prediction counts as unresolved (see summary.py).

Patches are bytes in real repos (latin-1 files exist): the dataset reader decodes the file
with surrogateescape, so the bytes survive to the sandbox unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.dataset import load_rows
from harness.errors import UserError
from harness.types import Candidate, Instance

GOLD = "gold"


@dataclass
class Imported:
    candidates: list[Candidate]
    k: int
    """Samples per issue: -k when given, else the most predictions any issue has."""
    model: str
    without: list[str] = field(default_factory=list)
    """Selected instances with no prediction: each counts as unresolved."""
    dropped: int = 0
    """Rows past the first k of their instance."""
    clipped_from: int | None = None
    """The -k asked for, when it was more than any issue has predictions (k is then the most
    any issue has: samples that do not exist are no work and no points on a curve)."""


def read_rows(path: Path) -> list[dict]:
    """The rows of a predictions file (.jsonl, .json as a list or keyed by id, .parquet)."""
    if not path.is_file():  # never a dataset name: that would go to the hub
        raise UserError(f"--predictions {path}: no such file (or use gold)")
    return [_row(path, n, row) for n, row in enumerate(load_rows(str(path)), 1)]


def _row(path: Path, n: int, row) -> dict:
    if not isinstance(row, dict) or not isinstance(row.get("instance_id"), str):
        raise UserError(f"{path}: prediction {n} has no instance_id")
    patch = row.get("model_patch")
    if patch is not None and not isinstance(patch, str):
        raise UserError(f"{path}: prediction {n} ({row['instance_id']}): model_patch is not text")
    return row


def load_predictions(
    source: str,
    selected: list[Instance],
    dataset_ids: set[str],
    k: int | None,
    drop_tests: bool = False,
) -> Imported:
    """Candidates from a predictions file, or from the gold patches with source 'gold'."""
    if source == GOLD:
        rows = [
            {"instance_id": i.instance_id, "model_patch": i.gold_patch, "model_name_or_path": GOLD}
            for i in selected
        ]
    else:
        rows = read_rows(Path(source))
    unknown = sorted({r["instance_id"] for r in rows} - dataset_ids)
    if unknown:
        shown = ", ".join(unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise UserError(
            f"{source}: {len(unknown)} prediction id(s) are not in the dataset ({shown}): "
            "pick the matching --dataset/--split or fix the file"
        )
    models = Counter(str(r.get("model_name_or_path") or "unknown") for r in rows)
    if len(models) > 1:
        raise UserError(
            f"{source}: predictions of several models ({', '.join(sorted(models))}): "
            "evaluate one model per run"
        )
    wanted = {i.instance_id for i in selected}
    per_issue = Counter(r["instance_id"] for r in rows if r["instance_id"] in wanted)
    most = max(per_issue.values(), default=0)
    if not most:
        raise UserError(f"{source}: no predictions for the selected instances")
    clipped_from = k if k and k > most else None
    k = min(k or most, most)
    candidates, seen, dropped = [], Counter(), 0
    for row in rows:
        iid = row["instance_id"]
        if iid not in wanted:
            continue
        if seen[iid] >= k:
            dropped += 1
            continue
        candidates.append(_candidate(iid, seen[iid], row.get("model_patch") or "", drop_tests))
        seen[iid] += 1
    without = sorted(wanted - set(per_issue))
    model = next(iter(models)) if models else "unknown"
    return Imported(candidates, k, model, without, dropped, clipped_from)


def _candidate(iid: str, index: int, raw: str, drop_tests: bool) -> Candidate:
    from agents.patches import PatchRejected, normalise

    try:
        normal = normalise(raw, drop_tests)
        patch, sha, reason, files = normal.text, normal.sha, None, normal.files
    except PatchRejected as exc:
        patch, sha, reason, files = "", None, str(exc), ()
        if raw and not raw.strip():  # officially only "" and null are empty: this fails to apply
            reason = "blank patch: whitespace only"
    return Candidate(iid, index, patch, sha, reason, raw, 0, 0, 0.0, None, files)
