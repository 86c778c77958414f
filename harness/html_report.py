"""A run you can look at in a browser: a static site that opens from disk, with no server and
nothing fetched from the network (issue #28).

`index.html` holds the run page (coverage@k and selection@k per selector on a log k axis, the
fit apart from the data, the counts that say what is missing or doubtful, the configuration)
and the issue table, with the summaries inline. Each issue's candidates are a script of their
own (`issues/<n>.js`), loaded when the issue is opened: a script tag loads from file://
where fetch() may not, and the index stays small at 300 issues x 250 samples. The page's
code and style are `html_assets/report.js` and `report.css`, inlined.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.store import RunStore
from harness.types import Candidate, Verdict

LOG_TAIL_LINES = 60
ASSETS = Path(__file__).with_name("html_assets")


def write_html(loaded: list[tuple[RunStore, dict[str, Any]]], out_dir: Path) -> Path:
    """The site for the runs (store and summary each, as `report.load_summary` gives them);
    returns the index's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "issues").mkdir(exist_ok=True)
    runs = []
    for n, (store, summary) in enumerate(loaded):
        files = _issue_files(store, summary, out_dir, n)
        runs.append(_run_view(store, summary, files))
    page = (ASSETS / "index.html").read_text()
    page = page.replace("/*STYLE*/", (ASSETS / "report.css").read_text())
    page = page.replace("/*SCRIPT*/", (ASSETS / "report.js").read_text())
    page = page.replace("/*DATA*/", "window.RUNS = " + _js(runs) + ";")
    index = out_dir / "index.html"
    index.write_text(page)
    return index


def _js(value: Any) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(value, sort_keys=True).replace("</", "<\\/")


def _run_view(store: RunStore, summary: dict, files: dict[str, str]) -> dict[str, Any]:
    manifest = store.manifest() or {}
    issues = []
    for iid, issue in summary["issues"].items():
        issues.append(
            {
                "id": iid,
                "file": files.get(iid),
                "samples": issue["samples"],
                "valid": issue["valid"],
                "distinct": issue["unique"],
                "resolving": issue["c"],
                "statuses": issue["statuses"],
                "flags": sum(issue["flags"].values()),
                "missing": issue["missing"],
                "picks": issue["picks_resolved"],
                "tokens": issue["prompt_tokens"] + issue["completion_tokens"],
            }
        )
    keep = (
        "run_id", "model", "dataset", "mode", "n_issues", "samples_per_issue", "curve",
        "coverage_at", "official_coverage_at", "coverage_with_flagged_at", "selection_at",
        "selection", "fit", "patch_statuses", "flags", "missing", "cost", "tokens",
        "resolved_any", "complete",
    )  # fmt: skip
    return {
        **{k: summary.get(k) for k in keep},
        "issues": issues,
        "config": {
            "command": manifest.get("command"),
            "created_at": manifest.get("created_at"),
            "identity": manifest.get("identity"),
            "versions": {
                "harness": manifest.get("harness_version"),
                "swebench": manifest.get("swebench_version"),
            },
            "sandbox": manifest.get("sandbox"),
            "limits": manifest.get("limits"),
        },
    }


def _issue_files(store: RunStore, summary: dict, out_dir: Path, run: int) -> dict[str, str]:
    """One script per issue with its distinct patches; the issue's file name by id."""
    verdicts = store.final_verdicts()
    by_issue: dict[str, list[Candidate]] = defaultdict(list)
    for c in store.candidates():
        by_issue[c.instance_id].append(c)
    files = {}
    for n, iid in enumerate(summary["issues"]):
        name = f"issues/r{run}-{n}.js"
        data = {
            "id": iid,
            "candidates": _candidates(store, by_issue.get(iid, []), verdicts, out_dir),
        }
        key = _js([run, iid])
        (out_dir / name).write_text(f"window.issueLoaded({key}, {_js(data)});\n")
        files[iid] = name
    return files


def _candidates(store, cands: list[Candidate], verdicts: dict, out_dir: Path) -> list[dict]:
    groups: dict[str | None, list[Candidate]] = defaultdict(list)
    for c in cands:
        groups[c.patch_sha].append(c)
    out = []
    for sha, members in groups.items():
        first = min(members, key=lambda c: c.sample_index)
        verdict = verdicts.get((first.instance_id, sha)) if sha else None
        out.append(
            {
                "sha": sha,
                "patch": first.patch,
                "samples": sorted(c.sample_index for c in members),
                "reason": first.reason,
                "locations": list(first.locations),
                "verdict": _verdict(store, verdict, out_dir) if verdict else None,
            }
        )
    rank = {"resolved": 0, "suspicious": 1, "unresolved": 2}
    return sorted(
        out,
        key=lambda c: (
            rank.get((c["verdict"] or {}).get("status"), 3),
            -len(c["samples"]),
            c["samples"][0],
        ),
    )


def _verdict(store: RunStore, v: Verdict, out_dir: Path) -> dict[str, Any]:
    log = store.run_dir / v.log_path if v.log_path else None
    tail = ""
    if log is not None and log.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
    return {
        "status": v.status.value,
        "reason": v.reason,
        "resolved": v.resolved,
        "official_resolved": v.official_resolved,
        "channel": v.channel,
        "flags": v.flags,
        "fidelity": v.fidelity,
        "fail_to_pass": v.fail_to_pass,
        "pass_to_pass": v.pass_to_pass,
        "apply_command": v.apply_command,
        "durations": v.durations,
        "log_tail": tail,
        "log": os.path.relpath(log, out_dir) if log is not None and log.is_file() else None,
    }
