"""`harness nightly CONFIG`: one dated eval run per model each night, then a trend report
against earlier nights, failing when coverage drops by more than the noise between nights.

The configuration is TOML:

    name = "lite-nightly"
    dataset = "lite"                  # anything --dataset takes
    instances = ["django__*"]         # optional
    samples = 10
    models = ["vllm:Qwen/Qwen2.5-Coder-32B-Instruct"]
    runs_dir = "runs"
    executor = "ray"                  # optional: local (default) or ray
    ray_address = "auto"
    extra_args = ["--verify-workers", "16"]
    schedule = "0 2 * * *"            # when cron runs it (informational)
    noise_sigmas = 2.0                # how many standard errors a drop must exceed
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from harness.errors import UserError
from harness.metrics import coverage_at_k

NOISE_SIGMAS = 2.0
"""A drop counts when it exceeds this many standard errors of the difference between nights."""


def load_config(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"nightly config not found: {path}")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not TOML ({exc})") from None
    missing = [k for k in ("name", "dataset", "samples", "models") if k not in config]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}")
    return config


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("#", 1)[-1].removeprefix("vllm:"))[-60:]


def night_run(config: dict, model: str, date: str, harness: str) -> Path:
    runs_dir = Path(config.get("runs_dir", "runs"))
    run_id = f"{config['name']}-{slug(model)}-{date}"
    cmd = [
        harness,
        "eval",
        "--dataset",
        config["dataset"],
        "--samples",
        str(config["samples"]),
        "--model",
        model,
        "--runs-dir",
        str(runs_dir),
        "--run-id",
        run_id,
        "--progress",
        "300",
        *config.get("extra_args", []),
    ]
    if config.get("instances"):
        cmd += ["--instances", ",".join(config["instances"])]
    if config.get("executor"):
        cmd += [
            "--executor",
            config["executor"],
            "--ray-address",
            config.get("ray_address", "auto"),
        ]
    if (runs_dir / run_id / "manifest.json").exists():
        cmd.append("--resume")  # a night run again continues, never mixes
    done = subprocess.run(cmd)
    if done.returncode != 0:
        raise UserError(
            f"the eval of {model} for {date} failed (exit {done.returncode}); "
            f"rerun `harness nightly` to resume it"
        )
    return runs_dir / run_id


def night_point(summary: dict, k: int) -> dict:
    per_issue = [
        coverage_at_k(i["n"], i["c"], min(k, i["n"])) if i["n"] else 0.0
        for i in summary["issues"].values()
    ]
    n = len(per_issue)
    mean = sum(per_issue) / n if n else 0.0
    var = sum((x - mean) ** 2 for x in per_issue) / (n - 1) if n > 1 else 0.0
    return {"coverage": mean, "stderr": math.sqrt(var / n) if n else 0.0, "issues": n}


def trend(config: dict, model: str, k: int) -> dict:
    runs_dir = Path(config.get("runs_dir", "runs"))
    prefix = f"{config['name']}-{slug(model)}-"
    nights = []
    for run in sorted(runs_dir.glob(f"{prefix}*")):
        summary_path = run / "summary.json"
        if summary_path.exists():
            point = night_point(json.loads(summary_path.read_text()), k)
            nights.append({"date": run.name.removeprefix(prefix), "run": run.name, **point})
    verdict = {"nights": nights, "regression": False, "message": "first night"}
    if len(nights) >= 2:
        last, prev = nights[-1], nights[-2]
        sigmas = float(config.get("noise_sigmas", NOISE_SIGMAS))
        noise = sigmas * math.sqrt(last["stderr"] ** 2 + prev["stderr"] ** 2)
        drop = prev["coverage"] - last["coverage"]
        verdict["regression"] = drop > noise and drop > 0
        verdict["message"] = (
            f"coverage@{k} {prev['coverage']:.1%} -> {last['coverage']:.1%} "
            f"(drop {drop:+.1%}, noise {noise:.1%})"
            + ("  REGRESSION" if verdict["regression"] else "")
        )
    return verdict


def write_trend(config: dict, trends: dict[str, dict], k: int) -> Path:
    out = Path(config.get("runs_dir", "runs")) / "nightly" / config["name"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "trend.json").write_text(json.dumps(trends, indent=2))
    lines = [f"# {config['name']}: coverage@{k} by night", ""]
    for model, t in trends.items():
        lines += [
            f"## {model}",
            "",
            t["message"],
            "",
            "| night | coverage | ± stderr | issues |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {n['date']} | {n['coverage']:.1%} | {n['stderr']:.1%} | {n['issues']} |"
            for n in t["nights"]
        ]
        lines.append("")
    (out / "trend.md").write_text("\n".join(lines))
    return out


def run_nightly(
    config_path: Path, date: str | None = None, harness: str | None = None
) -> tuple[dict, Path]:
    config = load_config(config_path)
    date = date or time.strftime("%Y-%m-%d")
    harness = harness or str(Path(sys.executable).parent / "harness")
    k = int(config["samples"])
    for model in config["models"]:
        night_run(config, model, date, harness)
    trends = {model: trend(config, model, k) for model in config["models"]}
    return trends, write_trend(config, trends, k)
