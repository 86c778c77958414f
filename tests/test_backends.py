"""The backend seam (a backend is one module registered by name; the pipeline reaches
sandboxes and images only through the registry) and the command line around it (help at 80
columns, --version, run ids)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import UserError
from sandbox import backends
from tests import fake_backend

CALC = "swe-monkeys__minicalc-1"


def verify(tmp_path, patch: str):
    args = ["verify", "-d", "mini", "-i", CALC, "--patch", patch, "--sandbox", "fake"]
    args += ["--runs-dir", str(tmp_path / "runs"), "--json", "--timeout", "120"]
    return CliRunner().invoke(app, args)


def test_a_backend_in_one_module_verifies_through_the_registry(tmp_path):
    """The fake is tests/fake_backend.py and nothing else: registering it is enough for
    `verify` to open its sessions and take its images (gold resolves, empty does not)."""
    fake_backend.register()
    gold = verify(tmp_path, "gold")
    assert gold.exit_code == 0, gold.output
    verdict = json.loads(gold.output)
    assert verdict["status"] == "resolved" and verdict["channel"] == "pytest-plugin"
    assert verdict["image"].endswith(CALC) and verdict["image_source"] == "fake"
    manifest = json.loads(
        (tmp_path / "runs" / verdict["run_dir"].split("/")[-1] / "manifest.json").read_text()
    )
    assert manifest["sandbox"] == "fake"
    empty = verify(tmp_path, "empty")
    assert empty.exit_code == 1 and json.loads(empty.output)["status"] == "unresolved"


def test_an_unknown_backend_is_one_line_naming_the_known_ones():
    with pytest.raises(UserError, match="use one of docker, .*podman"):
        backends.get("apptainer")


def test_help_at_80_columns_shows_every_option_name_in_full():
    """Every option of every command, whole, in `--help` at 80 columns (rich's table cut them:
    `--gen-concurren…`); choices are listed."""
    import typer.main

    group = typer.main.get_command(app)
    commands = [(name, cmd) for name, cmd in group.commands.items() if name != "images"]
    commands += [(f"images {n}", c) for n, c in group.commands["images"].commands.items()]
    for name, cmd in commands:
        shown = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "80"}).output
        assert all(len(line) <= 80 for line in shown.splitlines()), name
        for param in cmd.params:
            for opt in param.opts + param.secondary_opts:
                if opt.startswith("-"):
                    assert opt in shown, f"{name}: {opt}"
    eval_help = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "80"}).output
    assert "<none|bridge>" in eval_help and "<agentless|agentic>" in eval_help


def test_version_and_run_ids(tmp_path):
    from harness import __version__

    shown = CliRunner().invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"swe-monkeys {__version__}"
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run_id": "r1", "command": "verify"}))
    by_id = CliRunner().invoke(app, ["status", "r1", "--runs-dir", str(tmp_path / "runs")])
    by_path = CliRunner().invoke(app, ["status", str(run)])
    assert by_id.exit_code == 0 and by_path.exit_code == 0, by_id.output + by_path.output
    assert by_id.output == by_path.output
