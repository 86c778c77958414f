"""The mini benchmark: twenty SWE-bench-format tasks over three small Python repos of our own,
of graded difficulty (one-line fixes up to a three-file change, some beside distractors).

The repos' git histories are made at run time from `data/repos/`, deterministically (fixed
author, dates and message), so base commits are the same on every machine. Each task lives in
`data/tasks/<name>/`: problem.md, gold.diff, test.diff and task.toml (FAIL_TO_PASS, PASS_TO_PASS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
OWNER = "swe-monkeys"
VERSION = "0.1"
SWEBENCH_SPECS = {VERSION: {"python": "3.11", "test_cmd": "pytest -rA"}}
"""What swebench's MAP_REPO_VERSION_TO_SPECS holds for each of our repos."""
CREATED_AT = "2026-01-01T00:00:00+00:00"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "swe-monkeys",
    "GIT_AUTHOR_EMAIL": "mini@swe-monkeys.invalid",
    "GIT_COMMITTER_NAME": "swe-monkeys",
    "GIT_COMMITTER_EMAIL": "mini@swe-monkeys.invalid",
    "GIT_AUTHOR_DATE": CREATED_AT,
    "GIT_COMMITTER_DATE": CREATED_AT,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def repo_names() -> list[str]:
    return sorted(p.name for p in (DATA / "repos").iterdir() if p.is_dir())


def repos() -> list[str]:
    """Full repo names, as SWE-bench rows carry them (owner/name)."""
    return [f"{OWNER}/{name}" for name in repo_names()]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    return subprocess.run(
        ["git", "-c", "core.autocrlf=false", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _build_repo(name: str, work: Path) -> str:
    """Commit data/repos/<name> into a new repo at `work`; returns the commit's sha."""
    shutil.copytree(DATA / "repos" / name, work, ignore=shutil.ignore_patterns("__pycache__"))
    for path in work.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", f"{name} {VERSION}")
    return _git(work, "rev-parse", "HEAD")


def build_mirrors(mirror_dir: Path) -> dict[str, str]:
    """Bare repos `mirror_dir/swe-monkeys__<name>.git`, (re)made when their content changed.
    Returns repo -> base commit."""
    mirror_dir.mkdir(parents=True, exist_ok=True)
    commits = {}
    for name in repo_names():
        with tempfile.TemporaryDirectory(dir=mirror_dir) as tmp:
            sha = _build_repo(name, Path(tmp) / "work")
            target = mirror_dir / f"{OWNER}__{name}.git"
            if not target.exists() or _git(target, "rev-parse", "main") != sha:
                _git(Path(tmp), "clone", "-q", "--bare", "work", "bare.git")
                shutil.rmtree(target, ignore_errors=True)
                os.replace(Path(tmp) / "bare.git", target)
        commits[f"{OWNER}/{name}"] = sha
    return commits


def rows(mirror_dir: Path) -> list[dict[str, Any]]:
    """The benchmark as classic SWE-bench rows (list columns as JSON text)."""
    commits = build_mirrors(mirror_dir)
    out = []
    for task_dir in sorted((DATA / "tasks").iterdir()):
        meta = tomllib.loads((task_dir / "task.toml").read_text())
        repo = f"{OWNER}/{meta['repo']}"
        out.append(
            {
                "repo": repo,
                "instance_id": f"{OWNER}__{task_dir.name}",
                "base_commit": commits[repo],
                "patch": (task_dir / "gold.diff").read_text(),
                "test_patch": (task_dir / "test.diff").read_text(),
                "problem_statement": (task_dir / "problem.md").read_text(),
                "hints_text": "",
                "created_at": CREATED_AT,
                "version": meta["version"],
                "FAIL_TO_PASS": json.dumps(meta["FAIL_TO_PASS"]),
                "PASS_TO_PASS": json.dumps(meta["PASS_TO_PASS"]),
                "environment_setup_commit": commits[repo],
            }
        )
    return out
