"""Honest numbers: every sample and every verdict accounted for (issue #11).

Infrastructure failures (a model server down or answering garbage, a container killed from
outside, a Docker daemon restart) are missing, never failures, and a resume repairs them; one
writer per run; damaged records are reported with file and line and repaired on resume;
predictions mode follows the official harness's conventions; selection never exports a patch
that does not apply; Ctrl-C at any moment leaves no container; options are validated."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.scripted_server import Reply, ScriptedServer
from harness import wiring
from harness.cli import app
from harness.config import ImageOptions
from harness.errors import UserError
from harness.store import RunStore
from tests.conftest import HARNESS, ROOT, containers_of, spawn_harness
from tests.test_eval import ISSUES, eval_args, lines, responder

MINICALC = "swe-monkeys__minicalc-1"


def final(run: Path) -> tuple:
    """What a run concluded, through the store's own reading (latest records win)."""
    store = RunStore(run)
    candidates = sorted(
        (c.instance_id, c.sample_index, c.patch_sha, c.reason) for c in store.candidates()
    )
    verdicts = sorted((k, v.status.value) for k, v in store.final_verdicts().items())
    summary = json.loads((run / "summary.json").read_text())
    for volatile in ("run_id", "generation_wall_s", "cost", "tokens"):
        summary.pop(volatile)
    for issue in summary["issues"].values():
        issue.pop("prompt_tokens"), issue.pop("completion_tokens")
    return candidates, verdicts, summary


def edited_patch(instance, edit, binary: bool = False) -> str:
    """The gold patch plus `edit(worktree)`, as one diff made by git (with `binary`, every file
    diffed as a `GIT binary patch`)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = wiring.repo_cache_for(instance).checkout(
            instance.repo, instance.base_commit, Path(tmp) / "r"
        )
        subprocess.run(["git", "apply"], input=instance.gold_patch, text=True, cwd=tree, check=True)
        edit(tree)
        if binary:
            (tree / ".git" / "info").mkdir(exist_ok=True)
            (tree / ".git" / "info" / "attributes").write_text("* binary\n")
        subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
        return subprocess.run(
            ["git", "diff", "--cached", *(["--binary"] if binary else [])],
            cwd=tree,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8", "surrogateescape")


def slow_gold(instance, seconds: float) -> str:
    def edit(tree: Path) -> None:
        init = tree / "minicalc" / "__init__.py"
        init.write_text(f"import time\ntime.sleep({seconds})\n" + init.read_text())

    return edited_patch(instance, edit)


def predictions_file(path: Path, rows: list[dict], model: str = "org/model-x") -> Path:
    data = b"".join(json.dumps({"model_name_or_path": model, **r}).encode() + b"\n" for r in rows)
    path.write_bytes(data)
    return path


def pred_args(runs: Path, run_id: str, preds: str, *extra: str, instances=(MINICALC,)):
    return [
        "eval",
        "-d",
        "mini",
        "--instances",
        ",".join(instances),
        "--predictions",
        preds,
        "--runs-dir",
        str(runs),
        "--run-id",
        run_id,
        "--no-pull",
        "--verify-workers",
        "1",
        *extra,
    ]


def verify_cli(runs: Path, patch: Path, *extra: str) -> subprocess.CompletedProcess:
    """`harness verify` of a patch file on minicalc-1, as a user runs it."""
    command = [HARNESS, "verify", "-d", "mini", "-i", MINICALC, "--patch", str(patch)]
    command += ["--runs-dir", str(runs), "--no-pull", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def wait_for(condition, timeout_s: float, proc=None, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended while waiting for {what}: {proc.stdout.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# -- model server outages ---------------------------------------------------------------------


def outage_responder(state: dict):
    healthy = responder()

    def respond(body):
        if state["down"]:
            return [Reply("overloaded", status=500)]
        if state.get("fail_next", 0) > 0:
            state["fail_next"] -= 1
            return [Reply("overloaded", status=503)]
        return healthy(body)

    return respond


def test_model_outage_is_missing_not_failed_and_resume_asks_again(docker_engine, tmp_path):
    state = {"down": True}
    quick = ("--retries", "1", "--infra-backoff", "0.1")
    with ScriptedServer([], responder=outage_responder(state)) as server:
        down = CliRunner().invoke(
            app, eval_args(server, tmp_path, "out", 2, *quick, "--infra-retries", "0")
        )
        assert down.exit_code == 3, down.output
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert not summary["complete"]
        assert summary["missing"]["unanswered"] == 6
        assert all(i["n"] == 0 and i["c"] == 0 for i in summary["issues"].values())
        assert summary["curve"]["k"] == []  # nothing decided: no curve, not a 0 % curve
        state["down"] = False
        resumed = CliRunner().invoke(app, eval_args(server, tmp_path, "out", 2, *quick, "--resume"))
        assert resumed.exit_code == 0, resumed.output
        whole = CliRunner().invoke(app, eval_args(server, tmp_path, "whole", 2, *quick))
        assert whole.exit_code == 0, whole.output
        # a short outage inside one run: retried with backoff, the run completes by itself
        state["fail_next"] = 2
        flaky = CliRunner().invoke(
            app, eval_args(server, tmp_path, "flaky", 2, *quick, "--infra-retries", "3")
        )
        assert flaky.exit_code == 0, flaky.output
    assert final(tmp_path / "out") == final(tmp_path / "whole") == final(tmp_path / "flaky")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["complete"]


def test_a_malformed_answer_is_a_missing_sample_not_a_traceback(docker_engine, tmp_path):
    broken = ScriptedServer([], responder=lambda body: [Reply(raw_body={"choices": "oops"})])
    with broken as server:
        result = CliRunner().invoke(
            app, eval_args(server, tmp_path, "bad", 1, "--infra-retries", "0", "--retries", "1")
        )
    assert result.exit_code == 3, result.output
    reasons = {c["reason"] for c in lines(tmp_path / "bad" / "candidates.jsonl")}
    assert all(r.startswith("model error: malformed response") for r in reasons), reasons


# -- the sandbox failing ----------------------------------------------------------------------


def test_a_container_killed_from_outside_is_retried_never_cached(
    docker_engine, tmp_path, mini_instances
):
    patch = slow_gold(mini_instances[MINICALC], 8)
    preds = predictions_file(
        tmp_path / "p.jsonl", [{"instance_id": MINICALC, "model_patch": patch}]
    )
    args = pred_args(tmp_path, "killed", str(preds), "--infra-retries", "0")
    proc = spawn_harness(*args)
    wait_for(lambda: containers_of(docker_engine, "killed"), 120, proc, "the container")
    time.sleep(3)  # inside the slow test run
    for container in containers_of(docker_engine, "killed"):
        container.kill()
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, output
    assert "1 sample(s) missing (1 with unfinished verifications)" in output
    assert "--resume" in output
    (row,) = lines(tmp_path / "killed" / "verdicts.jsonl")
    assert row["status"] == "error" and "stopped during the command" in row["reason"]
    cache = Path(os.environ["SWEM_VERDICT_CACHE"])
    entries = [json.loads(p.read_text()) for p in cache.glob("*/*/verdict.json")]
    assert all(e["patch_sha"] != row["patch_sha"] for e in entries)  # never cached
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["complete"] and summary["issues"][MINICALC]["c"] == 1
    assert containers_of(docker_engine, "killed") == []


def restart_docker() -> None:
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
    wait_for(lambda: subprocess.run(["pgrep", "-x", "dockerd"]).returncode != 0, 60, what="stop")
    time.sleep(2)
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-docker.sh")], check=True, timeout=120)


def test_a_docker_daemon_restart_mid_run_ends_as_an_undisturbed_run(docker_engine, tmp_path):
    every = [i.instance_id for i in wiring.load("mini")]
    base = ("--no-cache", "-k", "1")
    reference = CliRunner().invoke(app, pred_args(tmp_path, "ref", "gold", *base, instances=every))
    assert reference.exit_code == 0, reference.output
    outcomes = {}
    for name, retries in (("resumed", "0"), ("retried", "4")):
        args = pred_args(
            tmp_path,
            name,
            "gold",
            *base,
            "--infra-retries",
            retries,
            "--infra-backoff",
            "2",
            instances=every,
        )
        proc = spawn_harness(*args)
        wait_for(lambda n=name: containers_of(docker_engine, n), 120, proc, "the first container")
        restart_docker()
        output, _ = proc.communicate(timeout=300)
        outcomes[name] = (proc.returncode, output)
        assert "Traceback" not in output, output
    code, output = outcomes["resumed"]
    assert code == 3 and "with unfinished verifications" in output, output
    resumed = CliRunner().invoke(
        app,
        pred_args(
            tmp_path, "resumed", "gold", *base, "--infra-retries", "0", "--resume", instances=every
        ),
    )
    assert resumed.exit_code == 0, resumed.output
    assert outcomes["retried"][0] == 0, outcomes["retried"][1]  # the backoff outlasted it
    expected = final(tmp_path / "ref")
    assert final(tmp_path / "resumed") == expected
    assert final(tmp_path / "retried") == expected
    for name in ("resumed", "retried"):
        assert containers_of(docker_engine, name) == []


def test_a_docker_daemon_restart_mid_validate_or_verify_is_waited_out(docker_engine, tmp_path):
    """Issue #27: `validate` met a restart with `error` verdicts that it called unsound, and
    `verify` called one "not resolved"; now both retry as `eval` does."""
    every = [i.instance_id for i in wiring.load("mini")][:6]
    args = ["validate", "-d", "mini", "--runs-dir", str(tmp_path), "--run-id", "v", "--workers",
            "1", "--no-network-check", "--no-pull", "--instances", ",".join(every)]  # fmt: skip
    proc = spawn_harness(*args)
    wait_for(lambda: containers_of(docker_engine, "v"), 120, proc, "the first container")
    restart_docker()
    output, _ = proc.communicate(timeout=600)
    assert "Traceback" not in output, output
    assert proc.returncode == 0, output
    records = lines(tmp_path / "v" / "validation.jsonl")
    assert len(records) == len(every) and all(r["ok"] for r in records), records
    assert containers_of(docker_engine, "v") == []
    proc = spawn_harness("verify", "-d", "mini", "-i", MINICALC, "--patch", "gold", "--runs-dir",
                         str(tmp_path), "--run-id", "one", "--no-pull")  # fmt: skip
    wait_for(lambda: containers_of(docker_engine, "one"), 120, proc, "the container")
    restart_docker()
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in output, output
    assert containers_of(docker_engine, "one") == []


def test_validate_retries_a_sandbox_failure_and_never_calls_it_unsound():
    from harness.config import RetryPolicy, SandboxLimits
    from harness.types import Instance, Verdict, VerdictStatus
    from harness.validate import exit_status, validate

    def instance(iid: str) -> Instance:
        return Instance(iid, "o/r", "c", "", "1", "gold", "", ("t",), ())

    calls: dict[tuple[str, str], int] = {}

    def verify(inst, patch, limits):
        key = (inst.instance_id, patch)
        calls[key] = calls.get(key, 0) + 1
        if inst.instance_id == "down" or calls[key] < 3:
            return Verdict(inst.instance_id, "x", VerdictStatus.ERROR, reason="engine restarted")
        resolved = bool(patch) or inst.instance_id == "unsound"
        return Verdict(
            inst.instance_id, "x", VerdictStatus.RESOLVED if resolved else VerdictStatus.UNRESOLVED
        )

    quick = RetryPolicy(attempts=4, backoff_s=0.0)
    (flaky,) = validate(
        verify, [instance("flaky")], SandboxLimits(), network_check=False, retry=quick
    )
    assert flaky.ok and calls[("flaky", "gold")] == 3 and flaky.gold.attempts == 3
    (down,) = validate(
        verify, [instance("down")], SandboxLimits(), network_check=False, retry=quick
    )
    assert not down.ok and down.infra and "not validated, the sandbox failed" in down.note
    assert calls[("down", "gold")] == 4 and down.record()["infra"]
    (unsound,) = validate(
        verify, [instance("unsound")], SandboxLimits(), network_check=False, retry=quick
    )
    assert not unsound.ok and not unsound.infra
    assert exit_status([flaky]) == 0
    assert exit_status([flaky, down]) == 3  # only the sandbox is to blame: run it again
    assert exit_status([flaky, down, unsound]) == 1


# -- the run directory ------------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_pid(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder(delay_s=3.0)) as server:
        proc = spawn_harness(*eval_args(server, tmp_path, "busy", 2))
        wait_for(lambda: (tmp_path / "busy" / "candidates.jsonl").exists(), 60, proc, "a record")
        assert RunStore(tmp_path / "busy").holder() == f"pid {proc.pid} on {os.uname()[1]}"
        second = CliRunner().invoke(app, eval_args(server, tmp_path, "busy", 2, "--resume"))
        assert isinstance(second.exception, UserError), second.output
        assert f"pid {proc.pid}" in str(second.exception)
        listing = subprocess.run(
            [HARNESS, "ls", "--runs-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert "running" in listing.stdout, listing.stdout
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    counts = [
        (v["instance_id"], v["patch_sha"]) for v in lines(tmp_path / "busy" / "verdicts.jsonl")
    ]
    assert len(counts) == len(set(counts))  # nobody verified twice


def test_damage_is_named_by_file_and_line_and_resume_repairs_it(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder()) as server:
        first = CliRunner().invoke(app, eval_args(server, tmp_path, "dmg", 2))
        assert first.exit_code == 0, first.output
        before = final(tmp_path / "dmg")
        run = tmp_path / "dmg"
        verdicts = (run / "verdicts.jsonl").read_bytes().splitlines(keepends=True)
        verdicts[0] = verdicts[0][:40] + b"\n"  # torn in the middle of the file
        (run / "verdicts.jsonl").write_bytes(b"".join(verdicts))
        candidates = (run / "candidates.jsonl").read_bytes().splitlines(keepends=True)
        candidates[1] = b'{"instance_id": 5}\n'  # valid JSON, wrong shape
        candidates[3] = candidates[3].replace(b'"raw_output": "', b'"raw_output": "\xff')
        (run / "candidates.jsonl").write_bytes(b"".join(candidates))
        for command, where in (
            (["report", str(run)], "verdicts.jsonl:1: not JSON"),
            (["status", str(run)], "candidates.jsonl:2: instance_id has the wrong type"),
        ):
            result = subprocess.run([HARNESS, *command], capture_output=True, text=True)
            assert result.returncode == 2, result.stderr
            err = result.stderr.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            assert where in err and "--resume" in err, err
        resumed = CliRunner().invoke(app, eval_args(server, tmp_path, "dmg", 2, "--resume"))
        assert resumed.exit_code == 0, resumed.output
    for where in (
        "verdicts.jsonl:1 (not JSON",
        "candidates.jsonl:2",
        "candidates.jsonl:4 (not UTF-8",
    ):
        assert where in resumed.output, resumed.output
    assert final(run) == before
    quarantined = (run / "quarantine" / "candidates.jsonl").read_bytes()
    assert b'{"instance_id": 5}' in quarantined and b"\xff" in quarantined


def test_a_full_disk_is_one_line(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    store = RunStore(mount / "run")
    try:
        with pytest.raises(UserError, match=r"No space left on device: free space .* --resume"):
            for i in range(10_000):
                store.append_timing({"generation_wall_s": i, "pad": "x" * 200})
    finally:
        with contextlib.suppress(UserError):  # still full: one line, as any write
            store.close()  # the store keeps its files open (group commit): umount needs them shut
        assert subprocess.run(["umount", str(mount)]).returncode == 0


def test_a_failed_start_does_not_block_its_run_id(docker_engine, tmp_path):
    failed = CliRunner().invoke(app, pred_args(tmp_path, "again", str(tmp_path / "absent.jsonl")))
    assert isinstance(failed.exception, UserError)
    bogus = CliRunner().invoke(
        app,
        [
            "eval",
            "-d",
            "mini",
            "--instances",
            MINICALC,
            "--model",
            "bogus:x",
            "--runs-dir",
            str(tmp_path),
            "--run-id",
            "again",
            "--no-pull",
        ],
    )
    assert "--model bogus:x" in str(bogus.exception)
    ok = CliRunner().invoke(app, pred_args(tmp_path, "again", "gold"))
    assert ok.exit_code == 0, ok.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text("{}")
    report = CliRunner().invoke(app, ["report", str(empty)])
    assert "holds no samples yet" in str(report.exception)


# -- predictions mode and selection -----------------------------------------------------------

NO_APPLY = (
    "diff --git a/minicalc/evaluator.py b/minicalc/evaluator.py\n"
    "--- a/minicalc/evaluator.py\n+++ b/minicalc/evaluator.py\n"
    "@@ -1,3 +1,3 @@\n-this line is not there\n+nor is this one\n context\n context\n"
)


def test_predictions_follow_the_official_conventions(docker_engine, tmp_path, mini_instances):
    three = ISSUES  # minicalc-1, textkit-1, inventory-2
    gold = {iid: mini_instances[iid].gold_patch for iid in three}
    rows = [
        {"instance_id": three[0], "model_patch": NO_APPLY},
        {"instance_id": three[0], "model_patch": NO_APPLY},
        {"instance_id": three[0], "model_patch": gold[three[0]]},
        {"instance_id": three[1], "model_patch": gold[three[1]]},
    ]  # three[2] has no prediction: it counts as unresolved
    preds = predictions_file(tmp_path / "p.jsonl", rows)
    result = CliRunner().invoke(app, pred_args(tmp_path, "p", str(preds), instances=three))
    assert result.exit_code == 0, result.output
    assert "1 selected issue(s) have no prediction" in result.output
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["model"] == "org/model-x" and summary["samples_per_issue"] == 3
    assert {i: (s["n"], s["c"]) for i, s in summary["issues"].items()} == {
        three[0]: (3, 1),
        three[1]: (3, 1),
        three[2]: (3, 0),
    }
    assert summary["coverage_at"]["3"] == pytest.approx(2 / 3)
    assert summary["coverage_at"]["1"] == pytest.approx(2 / 9)
    # the majority patch does not apply: the vote goes to the one that does
    assert summary["selection"]["majority_vote"] == pytest.approx(2 / 3)
    assert summary["patch_statuses"] == {"apply_failed": 1, "resolved": 2}

    out = tmp_path / "rep"
    report = CliRunner().invoke(app, ["report", str(tmp_path / "p"), "--out", str(out)])
    assert report.exit_code == 0, report.output
    exported = {p["instance_id"]: p for p in lines(out / "p.predictions.jsonl")}
    assert "raise EvaluationError" in exported[three[0]]["model_patch"]
    assert {p["model_name_or_path"] for p in exported.values()} == {"org/model-x"}
    official = json.loads((out / "org__model-x.p.json").read_text())
    assert official["resolved_ids"] == sorted(three[:2])
    assert official["incomplete_ids"] == [three[2]]
    assert official["any_sample_resolved_ids"] == sorted(three[:2])
    assert official["total_instances"] == 3 and official["schema_version"] == 2
    md = (out / "report.md").read_text()
    assert "1 apply_failed" in md and "0 timeout" in md and "0 error" in md

    first_only = CliRunner().invoke(
        app, pred_args(tmp_path, "k1", str(preds), "-k", "1", instances=three)
    )
    assert first_only.exit_code == 0, first_only.output
    assert "2 prediction(s) past the first 1 per issue left out" in first_only.output
    k1 = json.loads((tmp_path / "k1" / "summary.json").read_text())
    assert {i: (s["n"], s["c"]) for i, s in k1["issues"].items()} == {
        three[0]: (1, 0),
        three[1]: (1, 1),
        three[2]: (1, 0),
    }

    unknown = predictions_file(tmp_path / "u.jsonl", [*rows, {"instance_id": "nope__nope-1"}])
    refused = CliRunner().invoke(app, pred_args(tmp_path, "u", str(unknown), instances=three))
    assert isinstance(refused.exception, UserError)
    assert "1 prediction id(s) are not in the dataset (nope__nope-1)" in str(refused.exception)

    gold_run = CliRunner().invoke(app, pred_args(tmp_path, "g", "gold", instances=three))
    assert gold_run.exit_code == 0, gold_run.output
    g = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert g["model"] == "gold" and g["coverage_at"]["1"] == 1.0


def test_patches_are_bytes(docker_engine, tmp_path, mini_instances):
    def add_latin1(tree: Path) -> None:
        (tree / "NOTES.latin1").write_bytes(b"caf\xe9 cr\xe8me\n")

    patch = edited_patch(mini_instances[MINICALC], add_latin1)
    assert "\udce9" in patch  # the byte survives as a surrogate escape
    preds = tmp_path / "p.jsonl"
    row = json.dumps({"instance_id": MINICALC, "model_name_or_path": "m", "model_patch": "PATCH"})
    preds.write_bytes(row.encode().replace(b"PATCH", json.dumps(patch)[1:-1].encode()))
    raw = preds.read_bytes().replace(b"\\udce9", b"\xe9").replace(b"\\udce8", b"\xe8")
    preds.write_bytes(raw)  # a predictions file with raw latin-1 bytes in it
    result = CliRunner().invoke(app, pred_args(tmp_path, "bytes", str(preds)))
    assert result.exit_code == 0, result.output
    (verdict,) = lines(tmp_path / "bytes" / "verdicts.jsonl")
    assert verdict["status"] == "resolved", verdict
    patch_file = tmp_path / "latin1.diff"
    patch_file.write_bytes(patch.encode("utf-8", "surrogateescape"))
    verify = verify_cli(tmp_path, patch_file)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "resolved" in verify.stdout


def test_patch_text_never_reaches_markup(capsys):
    from harness.cli.verification import print_verdict
    from harness.types import Verdict, VerdictStatus

    verdict = Verdict(
        MINICALC,
        "ab" * 32,
        VerdictStatus.UNRESOLVED,
        fail_to_pass={"tests/test_x.py::test_[/]bold[red]": "FAILED"},
        reason="patch did not apply: error: [/]x.py: No such file",
        image="img[/]",
    )
    print_verdict(verdict)  # raised MarkupError before
    out = capsys.readouterr().out
    assert "[/]x.py" in out and "test_[/]bold[red]" in out


# -- Ctrl-C, clean, options -------------------------------------------------------------------


def test_ctrl_c_while_waiting_on_verifications_leaves_no_container(
    docker_engine, tmp_path, mini_instances
):
    patch = slow_gold(mini_instances[MINICALC], 60)
    preds = predictions_file(
        tmp_path / "p.jsonl", [{"instance_id": MINICALC, "model_patch": patch}]
    )
    proc = spawn_harness(*pred_args(tmp_path, "wait", str(preds)))
    wait_for(lambda: containers_of(docker_engine, "wait"), 120, proc, "the container")
    time.sleep(3)  # every prediction is recorded; the command waits on the verification
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert containers_of(docker_engine, "wait") == []
    assert "Continue with:" in output and "--resume" in output
    assert lines(tmp_path / "wait" / "verdicts.jsonl") == []  # a cut-short run is no verdict


def test_clean_spares_live_runs(docker_engine, tmp_path):
    from sandbox.docker_sandbox import LABEL, OWNER_LABEL, RUN_LABEL, DockerSandbox, owner_label
    from tests.conftest import TEST_LIMITS

    dead = subprocess.Popen(["true"])
    dead.wait()
    host, _, _ = owner_label().split(":")
    image = wiring.mini_image_name(wiring.load("mini", patterns=[MINICALC])[0])
    pipe_image = wiring.build_pipeline(
        "clean-prep", tmp_path, TEST_LIMITS, ImageOptions(pull=False)
    )
    pipe_image.verifier.image_for(wiring.load("mini", patterns=[MINICALC])[0])
    pipe_image.store.unlock()
    orphan = docker_engine.containers.create(
        image,
        command=["sleep", "infinity"],
        labels={LABEL: "1", RUN_LABEL: "orphan-run", OWNER_LABEL: f"{host}:{dead.pid}:1"},
    )
    try:
        with DockerSandbox(docker_engine).open(image, TEST_LIMITS, "live-run"):
            result = CliRunner().invoke(app, ["clean"])
            assert result.exit_code == 0, result.output
            assert containers_of(docker_engine, "orphan-run") == []
            assert len(containers_of(docker_engine, "live-run")) == 1
            assert "kept" in result.output
    finally:
        try:
            orphan.remove(force=True)
        except Exception:  # noqa: BLE001 - removed by the test, as it should be
            pass


@pytest.mark.parametrize(
    "option",
    [
        ["--timeout", "0"],
        ["--timeout", "-5"],
        ["--log-cap", "0"],
        ["--memory", "lots"],
        ["--memory", "1k"],
        ["--pids", "0"],
        ["--cpus", "0"],
        ["-k", "0"],
        ["--verify-workers", "0"],
        ["--network", "host"],
    ],
)
def test_every_option_is_validated_in_one_line(tmp_path, option):
    result = subprocess.run(
        [
            HARNESS,
            "eval",
            "-d",
            "mini",
            "--predictions",
            "gold",
            "--runs-dir",
            str(tmp_path),
            *option,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert option[0] in err or option[0] == "-k" and "--samples" in err
    assert not list(tmp_path.iterdir())  # nothing was started


def test_run_prints_a_resume_command_that_works(docker_engine, tmp_path):
    import shlex

    with ScriptedServer([], responder=responder(delay_s=2.0)) as server:
        args = [
            "run",
            "--issue",
            MINICALC,
            "-k",
            "3",
            "--seed",
            "0",
            "--no-pull",
            "--model",
            f"{server.base_url}#scripted",
            "--runs-dir",
            str(tmp_path),
        ]
        proc = spawn_harness(*args)
        wait_for(lambda: len(server.requests) >= 2, 60, proc, "the repair request")
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, output
        hint = output.split("Continue with:", 1)[1].strip().splitlines()[0]
        command = shlex.split(hint)
        assert command[0] == "harness" and "--resume" in command and "--run-id" in command
        resumed = subprocess.run([HARNESS, *command[1:]], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "3 samples, 2 valid, 1 unique patches, 2 resolving" in resumed.stdout


def test_flaky_tests_are_measured_and_can_be_left_out(docker_engine, tmp_path, mini_instances):
    from harness.types import Verdict, VerdictStatus
    from harness.validate import Validation

    def v(status, p2p):
        return Verdict(MINICALC, "s", VerdictStatus(status), pass_to_pass=p2p)

    steady, coin = {"t::a": "PASSED"}, {"t::a": "PASSED", "t::b": "PASSED"}
    flipped = {"t::a": "PASSED", "t::b": "FAILED"}
    result = Validation(
        MINICALC,
        None,
        None,
        repeats=[
            (v("resolved", coin), v("unresolved", steady)),
            (v("unresolved", flipped), v("unresolved", steady)),
        ],
    )
    assert result.flaky == ["t::b"] and not result.ok

    validated = subprocess.run(
        [
            HARNESS,
            "validate",
            "-d",
            "mini",
            "--instances",
            MINICALC,
            "--repeat",
            "2",
            "--runs-dir",
            str(tmp_path),
            "--no-pull",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    flaky_file = Path(os.environ["SWEM_CACHE"]) / "flaky.json"
    assert json.loads(flaky_file.read_text())[MINICALC] == []  # measured: nothing varied

    # Known-flaky PASS_TO_PASS tests are left out of grading only when asked, and named.
    inst = mini_instances[MINICALC]

    def wrong_plus(tree: Path) -> None:  # breaks the two PASS_TO_PASS tests that add
        ev = tree / "minicalc" / "evaluator.py"
        ev.write_text(ev.read_text().replace("return left + right", "return left + right + 0.5"))

    patch = tmp_path / "p.diff"
    patch.write_text(edited_patch(inst, wrong_plus))
    adding = [
        "tests/test_evaluator.py::test_arithmetic",
        "tests/test_evaluator.py::test_nested_parentheses",
    ]
    flaky_file.write_text(json.dumps({MINICALC: adding}))
    strict = json.loads(verify_cli(tmp_path, patch, "--json").stdout)
    lenient = json.loads(verify_cli(tmp_path, patch, "--json", "--exclude-flaky").stdout)
    assert strict["status"] == "unresolved"
    assert lenient["status"] == "resolved", lenient["reason"]
    assert (
        f"excluded 2 known-flaky PASS_TO_PASS test(s): {', '.join(adding)}" in lenient["fidelity"]
    )
