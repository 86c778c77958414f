"""Runs stay in their folder and their size follows the work (issue #26): a run id is one path
component, and a k far beyond the predictions neither costs memory nor writes a curve of
that many points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HARNESS

MINICALC = "swe-monkeys__minicalc-1"
BAD_IDS = ["../x", "..", ".", "a/b", "/tmp/swem-abs-run", "a\\b", ""]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("run_id", BAD_IDS)
@pytest.mark.parametrize("command", ["eval", "verify", "run"])
def test_a_run_id_is_one_folder_name(tmp_path, run_id, command):
    work = tmp_path / "work"
    runs = work / "runs"
    runs.mkdir(parents=True)
    args = {
        "eval": ["eval", "-d", "mini", "--predictions", "gold"],
        "verify": ["verify", "-d", "mini", "-i", MINICALC, "--patch", "gold"],
        "run": ["run", "-d", "mini", "--issue", MINICALC, "--model", "fake"],
    }[command]
    done = subprocess.run(
        [HARNESS, *args, "--run-id", run_id, "--runs-dir", str(runs)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a run id" in lines[0], done.stderr
    assert files_under(tmp_path) == set()  # nothing written, inside or outside the runs folder
    assert not Path("/tmp/swem-abs-run").exists()


def test_k_far_beyond_the_predictions_is_clipped(docker_engine, tmp_path):
    """`eval --predictions gold -k 10000000` on one issue: one line says k is clipped to the
    predictions there are; memory and summary stay the size of one sample."""
    runs = tmp_path / "runs"
    measure = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:]); "
        "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(done.returncode)"
    )
    command = [HARNESS, "eval", "-d", "mini", "--instances", MINICALC, "--predictions", "gold"]
    command += ["-k", "10000000", "--runs-dir", str(runs), "--run-id", "big", "--no-pull"]
    done = subprocess.run(
        [sys.executable, "-c", measure, *command], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-k 10000000 is more than any issue has predictions: k = 1" in done.stdout
    rss_mb = int(done.stdout.rsplit("maxrss_kb", 1)[1].split()[0]) / 1024
    assert rss_mb < 200, rss_mb
    summary_path = runs / "big" / "summary.json"
    assert summary_path.stat().st_size < 1_000_000
    summary = json.loads(summary_path.read_text())
    assert summary["samples_per_issue"] == 1 and summary["coverage_at"] == {"1": 1.0}


def test_curves_keep_a_bounded_number_of_points():
    from harness.metrics import curve_ks, log_spaced_ks

    assert curve_ks(250) == list(range(1, 251))  # the paper's scale: every k
    big = curve_ks(10_000_000)
    assert len(big) < 500 and big[-1] == 10_000_000
    assert set(log_spaced_ks(10_000_000)) <= set(big)
    assert big == sorted(set(big))


def test_a_patch_that_is_not_a_file_is_one_line(tmp_path):
    done = subprocess.run(
        [HARNESS, "verify", "-d", "mini", "-i", MINICALC, "--patch", "/dev/urandom"]
        + ["--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    expected = "error: --patch /dev/urandom: not a regular file; give a patch file"
    assert done.stderr.strip() == expected


def test_status_and_ls_name_containers_a_dead_run_left(
    docker_engine, tmp_path, mini_instances, make_pipeline
):
    """A kill -9 leaves the run's containers up until `--resume` or `clean`; `status` and `ls`
    say so, with the command that removes them."""
    from harness.store import RunStore
    from sandbox.docker_sandbox import LABEL, OWNER_LABEL, RUN_LABEL

    runs = tmp_path / "runs"
    RunStore(runs / "dead").write_manifest({"run_id": "dead", "sandbox": "docker"})
    # the mini image the verifier uses (built here when missing): no other test's image
    image = make_pipeline().verifier.image_for(mini_instances["swe-monkeys__minicalc-1"])
    labels = {LABEL: "1", RUN_LABEL: "dead", OWNER_LABEL: "nohost:1:1"}
    container = docker_engine.containers.run(
        image, ["sleep", "infinity"], labels=labels, detach=True, network_mode="none"
    )
    try:
        for args in (["status", "dead"], ["ls"]):
            done = subprocess.run(
                [HARNESS, *args, "--runs-dir", str(runs)],
                capture_output=True,
                text=True,
                timeout=120,
                env={**__import__("os").environ, "COLUMNS": "200"},
            )
            assert done.returncode == 0, done.stderr
            text = " ".join(done.stdout.split())
            assert "1 container(s) of dead still up, its process gone" in text, done.stdout
            assert "harness clean --run-id dead" in text
    finally:
        container.remove(force=True)


def test_make_eval_lite_reports_the_run_where_it_wrote_it():
    """`make eval-lite RUNS_DIR=...` evaluates into that folder and its report step reads the
    run from there (it used to look under runs/ and fail)."""
    from tests.conftest import ROOT

    # Under `make test` the parent make's variables would make this one print its
    # "Entering directory" lines; the test reads only the recipe.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            "-o",
            "setup",
            "-o",
            "docker",
            "eval-lite",
            "RUNS_DIR=/data/x",
            "RUN_ID=r1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    eval_cmd, report_cmd = done.stdout.replace("\\\n", " ").strip().splitlines()
    assert "harness eval" in eval_cmd and "--run-id r1 --runs-dir /data/x" in eval_cmd
    assert report_cmd.endswith("harness report r1 --runs-dir /data/x --html")
