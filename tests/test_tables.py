"""No table cuts a figure (issue #28): rendered at 80 columns without a terminal, as in a log
or a pipe, every number a table holds prints whole."""

from __future__ import annotations

import io

from rich.console import Console

from harness.types import Verdict, VerdictStatus

KS = [1, 2, 5, 10, 20, 50, 100, 200, 250]


def plain(width: int = 80) -> Console:
    return Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)


def summary(run_id: str, base: float) -> dict:
    coverage = {str(k): base + k / 1000 for k in KS}
    return {
        "run_id": run_id,
        "n_issues": 300,
        "issues": {f"i{n}": {"samples": 250} for n in range(300)},
        "cost": {"dollars": 1234.5},
        "coverage_at": coverage,
        "official_coverage_at": {"250": 0.6667},
        "selection": {"majority_vote": 0.1234, "semantic_vote": 0.2345, "first_valid": 0.3456},
        "patch_statuses": {"suspicious": 12345, "apply_failed": 23456, "timeout": 345, "error": 7},
        "flags": {"runner-reach": 4321},
        "missing": {"samples": 98765},
    }


def test_the_coverage_table_keeps_every_figure_at_80_columns():
    from harness.report import coverage_tables, dollars_per_sample

    runs = [summary("qwen-32b-lite-250-samples", 0.5), summary("qwen-1.5b-lite", 0.1)]
    console = plain()
    tables = coverage_tables(runs, console.width)
    assert len(tables) > 1  # too wide for one
    for table in tables:
        console.print(table)
    text = console.file.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for s in runs:
        assert s["run_id"] in text
        for k in KS:
            assert f"{s['coverage_at'][str(k)]:.1%}" in text
            assert f"${dollars_per_sample(s) * k * 300:,.2f}" in text
        for figure in ("66.7%", "12.3%", "23.4%", "34.6%", "12345", "23456", "4321", "98765"):
            assert figure in text, figure


def test_the_validation_table_keeps_ids_and_times_whole(monkeypatch):
    from harness.cli import verification
    from harness.validate import Validation

    console = plain()
    monkeypatch.setattr(verification, "console", console)
    ids = ["sphinx-doc__sphinx-10325", "scikit-learn__scikit-learn-13439"]
    gold = Verdict(ids[0], "a" * 64, VerdictStatus.RESOLVED, durations={"total_s": 1234.0})
    empty = Verdict(ids[0], "b" * 64, VerdictStatus.UNRESOLVED, durations={"total_s": 5.0})
    results = [
        Validation(iid, gold, empty, error="a long reason " * 12 + "that wraps") for iid in ids
    ]
    verification._print_validation(results)
    text = console.file.getvalue()
    assert "…" not in text
    for iid in ids:
        assert iid in text
    assert "1239s" in text and "wraps" in text  # the note wraps, whole words
