"""Localisation recall: the hierarchical localiser against the BM25 file ranking it replaced,
on the same issues in the same run, scored against the gold patches' files and functions
(read after ranking). The mini benchmark by default; any dataset whose repos
SWEM_REPO_SOURCE reaches (e.g. SWE-bench Lite's test rows, NOTES "Localisation").

    .venv/bin/python bench/bench_localize.py [--dataset mini] [--instances 'pytest-dev__*']
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import localization, wiring  # noqa: E402


def measure(instances, localizer: str) -> tuple[dict, float]:
    def checkout(instance, dest):
        return wiring.repo_cache_for(instance).checkout(instance.repo, instance.base_commit, dest)

    start = time.monotonic()
    results = list(localization.rank_all(instances, checkout, localizer, against_gold=True))
    return localization.recall(results), time.monotonic() - start


def cell(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="mini")
    parser.add_argument("--instances", action="append")
    args = parser.parse_args()
    instances = wiring.load(args.dataset, "test", args.instances)
    rows = {name: measure(instances, name) for name in ("bm25", "hierarchical")}
    table = Table(title=f"localisation recall (%), {len(instances)} issues of {args.dataset}")
    table.add_column("localizer")
    for k in localization.RECALL_KS:
        table.add_column(f"file@{k}", justify="right")
    for k in localization.RECALL_KS:
        table.add_column(f"func@{k}", justify="right")
    table.add_column("file@3 vs bm25", justify="right")
    table.add_column("s", justify="right")
    base = rows["bm25"][0]["file_recall"]["3"] or 1e-9
    for name, (scores, seconds) in rows.items():
        files = [cell(scores["file_recall"][str(k)]) for k in localization.RECALL_KS]
        funcs = [
            cell(scores["function_recall"][str(k)]) if name != "bm25" else "-"
            for k in localization.RECALL_KS
        ]
        ratio = f"{(scores['file_recall']['3'] or 0) / base:.2f}x"
        table.add_row(name, *files, *funcs, ratio, f"{seconds:.1f}")
    Console(width=160).print(table)
    print("bm25 ranks files only (the agent before #25 showed them whole): no function recall")


if __name__ == "__main__":
    main()
