"""The live view: rendered into a recording console, driven through a real terminal (tmux),
its plain-line and quiet forms, `harness status` and `harness ls`, and Ctrl-C mid-eval."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import time

import pytest
from rich.console import Console
from typer.testing import CliRunner

from agents.scripted_server import ScriptedServer
from harness.cli import app
from harness.progress import Reporter, RunState, apply_event, plain_line, render
from harness.types import Candidate, Verdict, VerdictStatus
from tests.conftest import HARNESS, containers_of, spawn_harness
from tests.test_eval import ISSUES, eval_args, lines, responder


def cand(iid, i, sha, reason=None):
    return Candidate(iid, i, "p" if sha else "", sha, reason, "", 100, 20, 1.0)


def busy_state() -> RunState:
    state = RunState("r1", [f"o__r-{i}" for i in range(300)], 250, "vllm:coder")
    apply_event(state, "generating", {"instance_id": "o__r-0"})
    apply_event(
        state,
        "generated",
        {
            "candidates": [
                cand("o__r-1", 0, "a"),
                cand("o__r-1", 1, "a"),
                cand("o__r-1", 2, "b"),
                cand("o__r-1", 3, None, "model error: HTTP 500: overloaded"),
            ]
        },
    )
    for sha in ("a", "b"):
        apply_event(state, "queued", {"instance_id": "o__r-1", "sha": sha})
    apply_event(state, "verify_start", {"instance_id": "o__r-1"})
    apply_event(state, "verify_start", {"instance_id": "o__r-1"})
    apply_event(
        state,
        "verdict",
        {"verdict": Verdict("o__r-1", "a", VerdictStatus.RESOLVED), "cached": False},
    )
    return state


def text_of(renderable, width=120) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_live_view_shows_progress_coverage_in_flight_and_warnings():
    screen = text_of(render(busy_state()))
    # the unanswered sample is missing, not done
    assert "3/75000 samples" in screen and "server errors 1" in screen and "missing 1" in screen
    assert "1/2 unique so far" in screen and "running 1" in screen and "queue 0" in screen
    assert "coverage@1 66.7%" in screen and "solved 1/1 issues so far" in screen  # n = 3
    assert "o__r-0" in screen and "generating" in screen  # in flight
    assert "o__r-1" in screen  # still verifying its second patch
    assert "model error: HTTP 500: overloaded" in screen
    assert "ETA" in screen


def test_totals_count_patches_known_before_they_are_queued_and_eta_weighs_both_stages():
    state = RunState("r", ["a", "b"], 10)
    state.session_started -= 100  # 100 s into this session
    apply_event(state, "generated", {"candidates": [cand("a", i, f"s{i % 4}") for i in range(10)]})
    apply_event(state, "queued", {"instance_id": "a", "sha": "s0"})
    for i in range(2):
        apply_event(state, "verify_start", {"instance_id": "a"})
        verdict = Verdict("a", f"s{i}", VerdictStatus.UNRESOLVED)
        apply_event(state, "verdict", {"verdict": verdict, "cached": False})
    snap = state.snapshot()
    assert (snap["unique"], snap["queued"], snap["verified"]) == (4, 1, 2)
    # generation: 10 samples in 100 s, 10 left -> 100 s; verification: 2 in 100 s, with 2
    # known and 4 expected from issue b -> 6 left -> 300 s. The slower stage decides.
    assert snap["eta_s"] == pytest.approx(300, rel=0.05)
    screen = text_of(render(state))
    assert "2/4 unique so far" in screen and "elapsed" in screen and "ETA 5m00s" in screen


def test_a_retried_sample_is_counted_once():
    state = RunState("r", ["a"], 2)
    apply_event(state, "generated", {"candidates": [cand("a", 0, None, "model error: down")]})
    apply_event(state, "generated", {"candidates": [cand("a", 0, "x")]})
    snap = state.snapshot()
    assert (snap["done"], snap["missing"]) == (1, 0)


def test_view_height_is_bounded_at_full_scale():
    state = RunState("big", [f"o__r-{i}" for i in range(300)], 250)
    for i in range(300):
        apply_event(state, "generating", {"instance_id": f"o__r-{i}"})
        state.warn(f"warning {i}")
    screen = text_of(render(state))
    assert len(screen.splitlines()) < 30
    assert "warning 299" in screen and "warning 200" not in screen


def test_plain_lines_when_not_a_terminal_and_nothing_when_quiet():
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert not console.is_terminal
    with Reporter(busy_state(), console, "auto", interval_s=0.05):
        time.sleep(0.3)
    printed = out.getvalue().splitlines()
    assert len(printed) >= 3
    assert all(line[:4].isdigit() and "r1: samples 3/75000" in line for line in printed)
    quiet = io.StringIO()
    with Reporter(busy_state(), Console(file=quiet), "quiet"):
        pass
    assert quiet.getvalue() == ""
    assert ", ETA " in plain_line(busy_state())


@pytest.fixture
def finished_run(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder()) as server:
        result = CliRunner().invoke(
            app, eval_args(server, tmp_path, "done", 4, "--progress", "0.2")
        )
    assert result.exit_code == 0, result.output
    return tmp_path / "done"


def test_status_and_ls_read_a_run_directory(finished_run):
    status = CliRunner().invoke(app, ["status", str(finished_run)])
    assert status.exit_code == 0, status.output
    assert "12/12 samples" in status.output and "solved 2/3" in status.output
    listing = CliRunner().invoke(app, ["ls", "--runs-dir", str(finished_run.parent)])
    assert listing.exit_code == 0
    assert "done" in listing.output and "mini" in listing.output and "3 x 4" in listing.output
    missing = CliRunner().invoke(app, ["status", str(finished_run.parent / "nope")])
    assert "not a run directory" in str(missing.exception)


def test_ls_reuses_a_runs_summary_only_while_its_records_are_unchanged(finished_run):
    def listing() -> str:
        out = CliRunner().invoke(app, ["ls", "--runs-dir", str(finished_run.parent)])
        assert out.exit_code == 0, out.output
        return out.output

    assert "3 x 4" in listing()
    cache = finished_run / "summary.cache.json"
    assert cache.exists()
    # a stale cache is never trusted: records change, and the row is summarised again
    # (one sample's record gone: that issue has 3, the curve runs to k = 3)
    records = finished_run / "candidates.jsonl"
    records.write_text("".join(records.read_text().splitlines(keepends=True)[1:]))
    assert "3 x 3" in listing()


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_a_real_terminal_shows_the_final_screen(docker_engine, tmp_path):
    session = f"swem-{time.monotonic_ns()}"
    with ScriptedServer([], responder=responder(delay_s=0.3)) as server:
        command = " ".join([HARNESS, *eval_args(server, tmp_path, "tty", 4)]).replace("#", "\\#")
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "45",
                f"{command}; sleep 60",
            ],
            check=True,
        )
        try:
            deadline, screen = time.monotonic() + 120, ""
            while "solved by any sample" not in screen:
                assert time.monotonic() < deadline, screen
                time.sleep(0.5)
                screen = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
                ).stdout
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert "(finished)" in screen and "12/12 samples" in screen
    assert "2/2 unique" in screen and "coverage@1" in screen
    assert screen.count("generation ") == 1  # redrawn in place, never scrolled


def test_ctrl_c_mid_eval_leaves_nothing_behind_and_resume_completes(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder(delay_s=0.8)) as server:
        proc = spawn_harness(*eval_args(server, tmp_path, "intr", 4, "--progress", "0.5"))
        deadline = time.monotonic() + 120
        while len(lines(tmp_path / "intr" / "candidates.jsonl")) < 4:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "interrupted: containers removed and records flushed" in output
        assert "--run-id intr" in output and "--resume" in output
        assert containers_of(docker_engine, "intr") == []
        resumed = CliRunner().invoke(app, eval_args(server, tmp_path, "intr", 4, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((tmp_path / "intr" / "summary.json").read_text())
    assert summary["complete"] and set(summary["issues"]) == set(ISSUES)
    assert {iid: i["n"] for iid, i in summary["issues"].items()} == dict.fromkeys(ISSUES, 4)


def test_the_model_servers_step_is_read_from_its_slots_and_shown():
    from agents.servers import SlotWatch
    from harness.progress import RunState, plain_line

    watch = SlotWatch("http://127.0.0.1:9/v1")
    prompt = {"is_processing": True, "n_prompt_tokens": 1463, "n_prompt_tokens_processed": 512,
              "next_token": [{"n_decoded": 0}]}  # fmt: skip
    idle = {"is_processing": False, "next_token": [{"n_decoded": 0}]}
    assert watch.read([idle, idle], 0.0) is None
    assert watch.read([prompt, idle], 1.0) == "model: evaluating the prompt (512 of 1,463 tokens)"
    busy = [{"is_processing": True, "next_token": [{"n_decoded": 40}]}] * 3
    assert watch.read(busy, 2.0) == "model: decoding 3 sequence(s), 120 tokens so far"
    later = [{"is_processing": True, "next_token": {"n_decoded": 50}}] * 3  # the older shape
    said = watch.read(later, 4.0)
    assert said == "model: decoding 3 sequence(s), 150 tokens so far, 15.0 tok/s"
    one_left = [{"is_processing": True, "next_token": [{"n_decoded": 60}]}]  # two finished
    assert watch.read(one_left, 5.0) == "model: decoding 1 sequence(s), 60 tokens so far"
    assert watch.read([{**one_left[0], "next_token": [{"n_decoded": 80}]}], 15.0).endswith(
        ", 2.0 tok/s"
    )
    assert watch.read(later, 40.0).endswith("150 tokens so far")  # the window forgets 5 and 15
    assert watch.describe() is None  # nothing answers on port 9
    state = RunState("r", ["a"], 4)
    state.step = said
    assert plain_line(state).endswith("; " + said)
    from rich.console import Console

    from harness.progress import render

    console = Console(width=120, record=True)
    console.print(render(state))
    assert said in console.export_text()
