"""localize: each issue's ranked files and code units, and their recall against gold."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from harness.cli.app import command, console
from harness.cli.common import select
from harness.cli.options import Dataset, Instances, Split
from harness.errors import UserError

Localizer = Annotated[
    str,
    typer.Option(
        help="hierarchical (files by BM25 and what the issue names, then their functions) "
        "or bm25 (files only: the ranking before issue #25)."
    ),
]
AgainstGold = Annotated[
    bool,
    typer.Option(
        help="Score the ranking against the files and functions the gold patch edits (read "
        "after ranking): file_recall and function_recall at k = 1, 3, 5, 10."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]
Top = Annotated[int, typer.Option(min=1, help="How many files and functions to print.")]


@command()
def localize(
    dataset: Dataset,
    instances: Instances = None,
    split: Split = "test",
    localizer: Localizer = "hierarchical",
    against_gold: AgainstGold = False,
    as_json: AsJson = False,
    top: Top = 5,
) -> None:
    """Rank each issue's files and functions at its base commit (SWEM_REPO_SOURCE), as the
    agentless agent does before it samples. No model is called."""
    from harness import localization, wiring

    if localizer not in localization.LOCALIZERS:
        raise UserError(f"--localizer {localizer}: use {' or '.join(localization.LOCALIZERS)}")
    chosen = select(dataset, split, instances)

    def checkout(instance, dest):
        return wiring.repo_cache_for(instance).checkout(instance.repo, instance.base_commit, dest)

    results = []
    for ranked in localization.rank_all(chosen, checkout, localizer, against_gold):
        results.append(ranked)
        if not as_json:
            _print_ranked(ranked, top)
    scores = localization.recall(results) if against_gold else None
    if as_json:
        out = {"localizer": localizer, "instances": [r.to_dict() for r in results]}
        print(json.dumps({**out, **(scores or {})}, indent=1))
    elif scores:
        _print_recall(scores)


def _print_ranked(ranked, top: int) -> None:
    console.print(f"[bold]{ranked.instance_id}[/]")
    for i, path in enumerate(ranked.files[:top], 1):
        mark = " [green]gold[/]" if path in ranked.gold_files else ""
        console.print(f"  file {i}. {path}{mark}")
    for i, key in enumerate(ranked.units[:top], 1):
        mark = " [green]gold[/]" if key in ranked.gold_units else ""
        console.print(f"  function {i}. {key}{mark}")


def _print_recall(scores: dict) -> None:
    for level in ("file_recall", "function_recall"):
        cells = ", ".join(
            f"@{k} {'-' if v is None else f'{100 * v:.1f} %'}" for k, v in scores[level].items()
        )
        console.print(f"{level}: {cells}")
    console.print(
        f"over {scores['issues']} issues ({scores['issues_with_gold_units']} whose gold patch "
        "edits a function or statement)"
    )
