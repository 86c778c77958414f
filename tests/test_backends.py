"""The backend seam: a backend is one module registered by name, and the pipeline reaches
sandboxes and images only through the registry."""

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
