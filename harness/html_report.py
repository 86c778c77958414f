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
import threading
import time
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
        files, extra = _issue_files(store, summary, out_dir, n)
        runs.append(_run_view(store, summary, files, extra))
    page = (ASSETS / "index.html").read_text()
    page = page.replace("/*STYLE*/", (ASSETS / "report.css").read_text())
    page = page.replace("/*SCRIPT*/", (ASSETS / "report.js").read_text())
    page = page.replace("/*DATA*/", "window.RUNS = " + _js(runs) + ";")
    index = out_dir / "index.html"
    _write_whole(index, page)
    return index


def _write_whole(path: Path, text: str) -> None:
    """Written beside, then renamed: a browser refreshing mid-write reads the old file or the
    new one, never half of one."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def site_of(run_dir: Path) -> Path:
    """Where a run's own HTML report lives (what `report --html` writes by default)."""
    return run_dir / "report" / "html" / "index.html"


class LiveSite:
    """Keeps a running run's HTML report current, so a browser refresh shows progress: written
    every `interval_s` while the block runs (stretched to four times the last write's own time,
    so a 300 x 250 run spends at most a fifth of a core on it), and once more when the block
    ends without an error. A write that fails is said once in `warn` and tried again later."""

    def __init__(self, run_dir: Path, interval_s: float, warn=None) -> None:
        self.run_dir, self.interval_s, self.warn = run_dir, interval_s, warn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False
        self.written: Path | None = None

    def __enter__(self) -> LiveSite:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="live-site")
            self._thread.start()
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if kind is None and self.interval_s > 0:
            self.write()

    def _loop(self) -> None:
        wait = self.interval_s
        while not self._stop.wait(wait):
            started = time.monotonic()
            self.write()
            wait = max(self.interval_s, 4 * (time.monotonic() - started))

    def write(self) -> Path | None:
        from harness.summary import summarize

        try:
            store = RunStore(self.run_dir)
            summary = summarize(store)
            if summary["n_issues"]:
                self.written = write_html([(store, summary)], site_of(self.run_dir).parent)
        except Exception as exc:  # noqa: BLE001  a report must never stop the run it reports
            if not self._warned and self.warn is not None:
                self.warn(f"the HTML report was not written ({type(exc).__name__}: {exc})")
            self._warned = True
        return self.written


def _js(value: Any) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(value, sort_keys=True).replace("</", "<\\/")


def _run_view(store: RunStore, summary: dict, files: dict[str, str], extra: dict) -> dict:
    manifest = store.manifest() or {}
    issues = []
    for iid, issue in summary["issues"].items():
        issues.append(
            {
                "id": iid,
                "file": files.get(iid),
                **extra.get(iid, {}),
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
    samples = sum(i["samples"] for i in summary["issues"].values()) or 1
    tokens = summary.get("tokens") or {}
    return {
        **{k: summary.get(k) for k in keep},
        "per_sample": {  # what one sample costs on average: the cost axes of the curve
            "tokens": (tokens.get("prompt", 0) + tokens.get("completion", 0)) / samples,
            "dollars": (summary.get("cost") or {}).get("dollars", 0.0) / samples,
        },
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


def _issue_files(store: RunStore, summary: dict, out_dir: Path, run: int) -> tuple[dict, dict]:
    """One script per issue with its distinct patches; the issue's file name by id, and what
    the issue table shows beside the summary (container seconds, the location shown first)."""
    signals = _signals(store)
    files, extra = {}, {}
    for n, iid in enumerate(summary["issues"]):  # an issue at a time, as the summary reads them
        name = f"issues/r{run}-{n}.js"
        issue_cands = store.issue_candidates(iid)
        cands = _candidates(store, issue_cands, store.issue_verdicts(iid), signals, out_dir)
        data = {"id": iid, "candidates": cands, "judge": signals.get(("judge", iid, ""))}
        key = _js([run, iid])
        _write_whole(out_dir / name, f"window.issueLoaded({key}, {_js(data)});\n")
        files[iid] = name
        first = issue_cands[0] if issue_cands else None
        extra[iid] = {
            "container_s": round(
                sum((c["verdict"] or {}).get("durations", {}).get("total_s", 0.0) for c in cands),
                1,
            ),
            "location": first.locations[0] if first and first.locations else "",
        }
    return files, extra


def _signals(store: RunStore) -> dict[tuple[str, str, str], dict]:
    """(kind, instance, patch sha) -> the latest signal; the judge's per (judge, instance, '')."""
    latest, _ = store.signal_index()
    return {(kind, iid, sha): r for kind, rs in latest.items() for (iid, sha), r in rs.items()}


def _candidates(
    store, cands: list[Candidate], verdicts: dict, signals: dict, out_dir: Path
) -> list[dict]:
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
                "signals": _candidate_signals(signals, first.instance_id, sha),
                "trajectory": _trajectory(store, first),
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


def _candidate_signals(signals: dict, iid: str, sha: str | None) -> dict[str, Any]:
    if not sha:
        return {}
    out: dict[str, Any] = {}
    if r := signals.get(("regression", iid, sha)):
        out["regression"] = {"tests": r.get("tests", []), "strikes": r.get("strikes", []),
                             "error": r.get("error", "")}  # fmt: skip
    if r := signals.get(("reproduction", iid, sha)):
        out["reproduction"] = {"tests": r.get("tests", []), "passed": r.get("passed", []),
                               "error": r.get("error", "")}  # fmt: skip
    if (r := signals.get(("judge", iid, ""))) and sha in r.get("votes", {}):
        out["judge"] = {"votes": r["votes"][sha], "of": sum(r["votes"].values())}
    return out


STEP_CHARS = 2000


def _trajectory(store: RunStore, first: Candidate) -> dict[str, Any] | None:
    """An agentic sample's steps (the first sample of the patch), each part cut for the page;
    the whole transcript stays in trajectories/ and `harness show`."""
    data = store.trajectory(first.instance_id, first.sample_index)
    if not data:
        return None
    steps = [
        {"action": s.get("action", ""), "argument": s.get("argument", "")[:STEP_CHARS],
         "observation": s.get("observation", "")[:STEP_CHARS]}
        for s in data.get("steps", [])
    ]  # fmt: skip
    return {"sample": first.sample_index, "exit_reason": data.get("exit_reason", ""),
            "steps": steps}  # fmt: skip


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
