"""`harness eval` and `harness report` on the mini benchmark with the scripted server: dedup,
summary, report files, resume after SIGKILL, refusal to mix runs, and predictions import."""

from __future__ import annotations

import json
import signal
import time

import pytest
from typer.testing import CliRunner

from agents.scripted_server import Reply, ScriptedServer
from harness.cli import app
from harness.errors import UserError
from tests.conftest import containers_of, spawn_harness
from tests.test_generation import GOOD_EDIT, GOOD_EDIT_CRLF, PROSE

ISSUES = ["swe-monkeys__minicalc-1", "swe-monkeys__textkit-1", "swe-monkeys__inventory-2"]
SLUG_FIX = (
    "### textkit/slug.py\n<<<<<<< SEARCH\n    return text.lstrip(sep)\n=======\n"
    "    return text.strip(sep)\n>>>>>>> REPLACE\n"
)
SLUG_BROKEN = SLUG_FIX.replace("text.lstrip(sep)\n=", "text.rstrip(sep)\n=")
FILES = {
    "Division by zero": "minicalc/evaluator.py",
    "slugify()": "textkit/slug.py",
    "Stock values": "inventory/report.py",
}


def sample(topic: str, i: int) -> str:
    """Sample i of an issue, a function of (issue, i) alone, so runs are reproducible."""
    if topic == "Division by zero":
        return [GOOD_EDIT, PROSE, GOOD_EDIT_CRLF][i % 3]
    if topic == "slugify()":
        return [SLUG_FIX, SLUG_BROKEN][i % 2]
    return PROSE


def responder(delay_s: float = 0.0):
    def respond(body: dict) -> list[Reply]:
        text = body["messages"][-1]["content"]
        topic = next(t for t in FILES if t in text)
        if "Which of these files" in text:
            return [Reply(FILES[topic])]
        seed, n = body["seed"], body["n"]
        return [Reply(sample(topic, seed + j), delay_s=delay_s) for j in range(n)]

    return respond


def eval_args(server, runs, run_id, k=4, *extra):
    return [
        "eval",
        "-d",
        "mini",
        "--instances",
        ",".join(ISSUES),
        "-k",
        str(k),
        "--model",
        f"{server.base_url}#scripted",
        "--runs-dir",
        str(runs),
        "--run-id",
        run_id,
        "--no-pull",
        "--gen-concurrency",
        "1",
        "--verify-workers",
        "1",
        *extra,
    ]


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_eval_verifies_duplicates_once_and_reports(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder()) as server:
        result = CliRunner().invoke(
            app, eval_args(server, tmp_path, "e", 4, "--price-input", "1", "--price-output", "2")
        )
    assert result.exit_code == 0, result.output
    run = tmp_path / "e"
    verdicts = lines(run / "verdicts.jsonl")
    assert len(verdicts) == 2  # one distinct fix each for two issues; prose is never verified
    assert all(v["status"] == "resolved" for v in verdicts)
    summary = json.loads((run / "summary.json").read_text())
    counts = {iid: (i["n"], i["c"], i["unique"]) for iid, i in summary["issues"].items()}
    assert counts == {ISSUES[0]: (4, 3, 1), ISSUES[1]: (4, 2, 1), ISSUES[2]: (4, 0, 0)}
    assert summary["coverage_at"]["1"] == pytest.approx((3 / 4 + 2 / 4 + 0) / 3)
    assert summary["coverage_at"]["4"] == pytest.approx(2 / 3)
    assert summary["selection"] == {
        "majority_vote": pytest.approx(2 / 3),
        "first_valid": pytest.approx(2 / 3),
        "semantic_vote": pytest.approx(2 / 3),
        "regression_vote": pytest.approx(2 / 3),  # no signals: the plain vote
        "reproduction_vote": pytest.approx(2 / 3),
        "judge": pytest.approx(2 / 3),
    }
    assert summary["cost"]["dollars"] > 0

    report = CliRunner().invoke(app, ["report", str(run), "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    out = tmp_path / "rep"
    for name in ("report.md", "summary.json", "coverage_vs_samples.png", "coverage_vs_cost.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "coverage_vs_samples.png").read_bytes()[:4] == b"\x89PNG"
    preds = {p["instance_id"]: p for p in lines(out / "e.predictions.jsonl")}
    assert set(preds) == set(ISSUES)
    assert "raise EvaluationError" in preds[ISSUES[0]]["model_patch"]
    assert preds[ISSUES[2]]["model_patch"] == ""
    assert "k=1" in report.output and "coverage" in (out / "report.md").read_text()

    bare = tmp_path / "bare"  # the site and the records' files, no PNG drawn
    site = CliRunner().invoke(app, ["report", str(run), "--out", str(bare), "--html", "--no-plots"])
    assert site.exit_code == 0, site.output
    assert not list(bare.glob("*.png")) and ".png" not in (bare / "report.md").read_text()
    assert (bare / "html" / "index.html").is_file() and "plots: none (--no-plots)" in site.output
    assert lines(bare / "e.predictions.jsonl") == lines(out / "e.predictions.jsonl")


def test_a_run_is_never_silently_mixed(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder()) as server:
        first = CliRunner().invoke(app, eval_args(server, tmp_path, "m", 2))
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(app, eval_args(server, tmp_path, "m", 2))
        assert isinstance(again.exception, UserError) and "pass --resume" in str(again.exception)
        other = CliRunner().invoke(app, eval_args(server, tmp_path, "m", 3, "--resume"))
        assert isinstance(other.exception, UserError)
        assert "different configuration or version (samples)" in str(other.exception)
        fresh = CliRunner().invoke(app, eval_args(server, tmp_path, "nothing", 2, "--resume"))
        assert "nothing to resume" in str(fresh.exception)


def comparable(run):
    candidates = sorted(
        (
            c["instance_id"],
            c["sample_index"],
            c["patch_sha"],
            c["reason"],
            c["prompt_tokens"],
            c["completion_tokens"],
        )
        for c in lines(run / "candidates.jsonl")
    )
    verdicts = [
        (v["instance_id"], v["patch_sha"], v["status"]) for v in lines(run / "verdicts.jsonl")
    ]
    summary = json.loads((run / "summary.json").read_text())
    for volatile in ("run_id", "generation_wall_s", "cost"):
        summary.pop(volatile)
    return candidates, sorted(verdicts), len(verdicts), summary


def test_sigkill_then_resume_ends_as_an_uninterrupted_run(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder(delay_s=0.6)) as server:
        proc = spawn_harness(*eval_args(server, tmp_path, "killed", 4))
        deadline = time.monotonic() + 120
        while len(lines(tmp_path / "killed" / "candidates.jsonl")) < 4:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        done = lines(tmp_path / "killed" / "candidates.jsonl")
        assert 4 <= len(done) < 12, "the kill must land mid-run"
        resumed = CliRunner().invoke(app, eval_args(server, tmp_path, "killed", 4, "--resume"))
        assert resumed.exit_code == 0, resumed.output
        whole = CliRunner().invoke(app, eval_args(server, tmp_path, "whole", 4))
        assert whole.exit_code == 0, whole.output
    killed, reference = comparable(tmp_path / "killed"), comparable(tmp_path / "whole")
    assert killed == reference
    assert killed[2] == len(set(killed[1]))  # no verdict recorded twice
    assert containers_of(docker_engine, "killed") == []


def test_imported_predictions_are_verified_and_reported(docker_engine, tmp_path, mini_instances):
    gold = {iid: mini_instances[iid].gold_patch for iid in ISSUES[:2]}
    rows = [
        {"instance_id": ISSUES[0], "model_name_or_path": "m", "model_patch": gold[ISSUES[0]]},
        {"instance_id": ISSUES[0], "model_name_or_path": "m", "model_patch": "not a diff"},
        {"instance_id": ISSUES[1], "model_name_or_path": "m", "model_patch": gold[ISSUES[1]]},
        {"instance_id": ISSUES[1], "model_name_or_path": "m", "model_patch": gold[ISSUES[1]]},
    ]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "-d",
            "mini",
            "--instances",
            ",".join(ISSUES[:2]),
            "-k",
            "2",
            "--predictions",
            str(preds),
            "--runs-dir",
            str(tmp_path),
            "--run-id",
            "p",
            "--no-pull",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert {k: (v["n"], v["c"], v["valid"]) for k, v in summary["issues"].items()} == {
        ISSUES[0]: (2, 1, 1),
        ISSUES[1]: (2, 2, 2),
    }
    assert len(lines(tmp_path / "p" / "verdicts.jsonl")) == 2
