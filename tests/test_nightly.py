"""`harness nightly` over several nights of the mini benchmark with the scripted server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agents.scripted_server import Reply, ScriptedServer
from harness.cli import app
from tests.test_eval import ISSUES, responder
from tests.test_generation import PROSE


def config(tmp_path, url: str) -> str:
    path = tmp_path / "nightly.toml"
    path.write_text(f"""
name = "mini-nightly"
dataset = "mini"
instances = {json.dumps(ISSUES)}
samples = 4
models = ["{url}#scripted"]
runs_dir = "{tmp_path / "runs"}"
extra_args = ["--no-pull", "--gen-concurrency", "1"]
noise_sigmas = 1.0
""")
    return str(path)


def test_two_nights_then_a_regression(docker_engine, tmp_path):
    with ScriptedServer([], responder=responder()) as server:
        cfg = config(tmp_path, server.base_url)
        first = CliRunner().invoke(app, ["nightly", cfg, "--date", "2026-11-23"])
        assert first.exit_code == 0, first.output
        assert "first night" in first.output
        second = CliRunner().invoke(app, ["nightly", cfg, "--date", "2026-11-24"])
    assert second.exit_code == 0, second.output
    assert "coverage@4 66.7% -> 66.7%" in second.output
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.name != "nightly")
    assert runs == ["mini-nightly-scripted-2026-11-23", "mini-nightly-scripted-2026-11-24"]
    trend = (tmp_path / "runs" / "nightly" / "mini-nightly" / "trend.md").read_text()
    assert "| 2026-11-23 | 66.7% |" in trend and "| 2026-11-24 | 66.7% |" in trend

    with ScriptedServer([], responder=lambda body: [Reply(PROSE)] * body["n"]) as broken:
        third = CliRunner().invoke(
            app, ["nightly", config(tmp_path, broken.base_url), "--date", "2026-11-25"]
        )
    assert third.exit_code == 1, third.output
    assert "66.7% -> 0.0%" in third.output and "REGRESSION" in third.output
