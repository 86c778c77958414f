"""Other systems' predictions, graded and reported as the official harness does (issue #27):
the official-format report holds the same id lists as swebench's own `make_run_report` for
the same verdicts, whatever our screen or guard says, and the exported predictions keep every
patch's text."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from tests.test_honest_numbers import edited_patch, predictions_file
from tests.test_hostile_patches import in_package

LISTS = (
    "completed_ids",
    "incomplete_ids",
    "empty_patch_ids",
    "submitted_ids",
    "resolved_ids",
    "unresolved_ids",
    "error_ids",
)
COUNTS = (
    "total_instances",
    "completed_instances",
    "resolved_instances",
    "unresolved_instances",
    "empty_patch_instances",
    "error_instances",
)


def calc(n: int) -> str:
    return f"swe-monkeys__minicalc-{n}"


def swebench_report(tmp_path: Path, monkeypatch, preds: list[dict], verdicts: dict, ids) -> dict:
    """swebench 4.1's make_run_report over report.json files written as its run_instance
    writes them: one for each prediction whose tests ran, none where the patch did not apply
    or timed out (an EvaluationError) and none for an empty patch (never run)."""
    import importlib

    from sandbox import swebench_adapter  # noqa: F401 - first: swebench imported its light way

    reporting = importlib.import_module("swebench.harness.reporting")

    logs = tmp_path / "official-logs"
    monkeypatch.setattr(reporting, "RUN_EVALUATION_LOG_DIR", logs)
    monkeypatch.chdir(tmp_path)
    for pred in preds:
        verdict = verdicts.get(pred["instance_id"])
        if verdict and verdict["status"] in ("resolved", "unresolved", "suspicious"):
            folder = logs / "r" / pred["model_name_or_path"].replace("/", "__")
            (folder / pred["instance_id"]).mkdir(parents=True)
            report = {pred["instance_id"]: {"resolved": verdict["official_resolved"]}}
            (folder / pred["instance_id"] / "report.json").write_text(json.dumps(report))
    path = reporting.make_run_report(
        {p["instance_id"]: p for p in preds}, [{"instance_id": i} for i in ids], "r"
    )
    return json.loads((tmp_path / path).read_text())


def test_the_official_report_is_swebenchs_for_the_same_verdicts(
    docker_engine, tmp_path, mini_instances, monkeypatch
):
    flagged = edited_patch(mini_instances[calc(1)], in_package("\nimport atexit as _a\n"))
    slow = edited_patch(mini_instances[calc(4)], in_package("\nimport time\ntime.sleep(120)\n"))
    no_apply = (
        "diff --git a/minicalc/absent.py b/minicalc/absent.py\n--- a/minicalc/absent.py\n"
        "+++ b/minicalc/absent.py\n@@ -1,2 +1,2 @@\n-a = 1\n+a = 2\n b = 1\n"
    )
    rows = [
        {"instance_id": calc(1), "model_patch": flagged},  # resolved, flagged by the screen
        {"instance_id": calc(2), "model_patch": no_apply},  # apply_failed: officially an error
        {"instance_id": calc(3), "model_patch": ""},  # empty
        {"instance_id": calc(4), "model_patch": slow},  # a timeout: officially an error
        {"instance_id": calc(5), "model_patch": mini_instances[calc(5)].gold_patch},
    ]
    ids = [calc(n) for n in range(1, 7)]  # minicalc-6 has no prediction: incomplete
    preds = predictions_file(tmp_path / "p.jsonl", rows)
    args = ["eval", "-d", "mini", "--instances", ",".join(ids), "--predictions", str(preds)]
    args += ["--runs-dir", str(tmp_path), "--run-id", "r", "--no-pull", "--timeout", "20"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["report", str(tmp_path / "r"), "--out", str(out)])
    assert done.exit_code == 0, done.output

    verdicts = {
        v["instance_id"]: v
        for v in map(json.loads, (tmp_path / "r" / "verdicts.jsonl").read_text().splitlines())
    }
    assert verdicts[calc(1)]["status"] == "resolved" and verdicts[calc(1)]["flags"]
    assert verdicts[calc(2)]["status"] == "apply_failed"
    assert verdicts[calc(4)]["status"] == "timeout"
    ours = json.loads((out / "org__model-x.r.json").read_text())
    exported = [json.loads(x) for x in (out / "r.predictions.jsonl").read_text().splitlines()]
    assert {p["instance_id"]: p["model_patch"] for p in exported} == {
        r["instance_id"]: r["model_patch"] for r in rows
    }
    official = swebench_report(tmp_path, monkeypatch, exported, verdicts, ids)
    for name in (*LISTS, *COUNTS):
        assert ours[name] == official[name], (name, ours[name], official[name])
    assert ours["resolved_ids"] == [calc(1), calc(5)]
    assert ours["error_ids"] == [calc(2), calc(4)]
    assert ours["empty_patch_ids"] == [calc(3)]
    # ours beside the official lists
    assert ours["apply_failed_ids"] == [calc(2)] and ours["timeout_ids"] == [calc(4)]
    assert ours["flagged_ids"] == [calc(1)] and calc(1) in ours["stricter"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["coverage_at"]["1"] == 1 / 6  # the flagged one set aside
    assert summary["coverage_with_flagged_at"]["1"] == 2 / 6
    assert "with flagged" in (out / "report.md").read_text()
