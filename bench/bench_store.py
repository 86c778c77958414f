"""The run store and the commands that read it, at the paper's scale: 300 issues x 250 samples.

Writes a synthetic run (candidates with raw answers and patches of realistic size, a verdict
per distinct patch) through the store, then runs `harness report`, `status` and `ls` on it
as a user would, each in its own process, and reports wall time and peak memory against the
size of candidates.jsonl. The append rate is measured against the pre-#15 way (open, write
and fsync the file for every record) in the same run.

    .venv/bin/python bench/bench_store.py [--issues 300] [-k 250]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.store import RunStore  # noqa: E402
from harness.types import Candidate, Verdict, VerdictStatus  # noqa: E402

HARNESS = str(Path(sys.executable).parent / "harness")


def candidate(rng: random.Random, issue: int, index: int) -> Candidate:
    """One sample: a third distinct, most repeats, one in ten prose (no patch)."""
    variant = rng.randrange(max(1, index // 3 + 1))
    if index % 10 == 9:
        return Candidate(f"bench__r-{issue}", index, "", None, "no edit in the answer",
                         "prose " * 200, 3000, 200, 1.0, "stop")  # fmt: skip
    patch = (
        f"diff --git a/pkg/m{issue}.py b/pkg/m{issue}.py\n--- a/pkg/m{issue}.py\n"
        f"+++ b/pkg/m{issue}.py\n@@ -1,3 +1,3 @@\n"
        + " context line\n" * 20
        + f"-old {variant}\n+new {variant}\n"
    )
    sha = hashlib.sha256(patch.encode()).hexdigest()
    raw = f"pkg/m{issue}.py\n```python\n" + "    code = compute(value)\n" * 50 + "```\n"
    return Candidate(f"bench__r-{issue}", index, patch, sha, None, raw, 3000, 400, 2.0, "stop",
                     (f"pkg/m{issue}.py",))  # fmt: skip


def write_run(run_dir: Path, issues: int, k: int) -> float:
    """The synthetic run through the store; seconds spent appending."""
    store = RunStore(run_dir)
    rng = random.Random(0)
    identity = {"dataset": "bench", "samples": k, "model": "bench", "instances": []}
    store.write_manifest({"command": "eval", "run_id": run_dir.name, "identity": identity})
    spent = 0.0
    with store.writer():
        for issue in range(issues):
            batch = [candidate(rng, issue, i) for i in range(k)]
            start = time.monotonic()
            store.append_candidates(batch)
            shas = {c.patch_sha for c in batch if c.patch_sha}
            for n, sha in enumerate(sorted(shas)):
                status = (
                    VerdictStatus.RESOLVED if n == 0 and issue % 2 else VerdictStatus.UNRESOLVED
                )
                store.append_verdict(Verdict(f"bench__r-{issue}", sha, status))
            spent += time.monotonic() - start
    return spent


def per_record_fsync(path: Path, records: list[dict]) -> float:
    """The pre-#15 append: the file opened, written and fsynced for every record."""
    start = time.monotonic()
    for record in records:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return time.monotonic() - start


def grouped(path: Path, records: list[dict]) -> float:
    start = time.monotonic()
    store = RunStore(path.parent)
    for record in records:
        store._append(path.name, record)
    store.close()
    return time.monotonic() - start


def measured(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak resident MiB) of one harness command in its own process."""
    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-500:]}")
    return time.monotonic() - start, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=300)
    parser.add_argument("-k", type=int, default=250)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="swem-bench-store-") as tmp:
        runs = Path(tmp) / "runs"
        rng = random.Random(1)
        sample = [candidate(rng, 0, i).to_dict() for i in range(3000)]
        old = per_record_fsync(Path(tmp) / "old.jsonl", sample)
        new = grouped(runs / "appends" / "candidates.jsonl", sample)
        run = runs / "big"
        write_run(run, args.issues, args.k)
        tiny = runs / "tiny"  # what a report costs whatever the run's size: the imports
        write_run(tiny, 3, 10)

        def report(source: Path, out: str, *more: str) -> list[str]:
            return [HARNESS, "report", str(source), "--out", str(Path(tmp) / out), *more]

        size = (run / "candidates.jsonl").stat().st_size / 2**20
        rows = [
            ("report", report(run, "out")),
            ("report --html", report(run, "web", "--html")),
            (
                "report --html --no-plots (the site alone)",
                report(run, "site", "--html", "--no-plots"),
            ),
            ("report --html of a 3 x 10 run (the fixed cost)", report(tiny, "tiny", "--html")),
            ("status", [HARNESS, "status", str(run)]),
            ("ls (first: summarises)", [HARNESS, "ls", "--runs-dir", str(runs)]),
            ("ls (again: unchanged runs)", [HARNESS, "ls", "--runs-dir", str(runs)]),
        ]
        timed = [(name, *measured(cmd)) for name, cmd in rows]
        interactive = browser_seconds(Path(tmp) / "web" / "html" / "index.html")
    table = Table(title=f"appending {len(sample)} candidate records")
    for col in ("how", "s", "records/s", "vs per-record fsync"):
        table.add_column(col)
    table.add_row("open + write + fsync per record (before #15)", f"{old:.2f}",
                  f"{len(sample) / old:.0f}", "1.0x")  # fmt: skip
    table.add_row("group commit (fsync at most once a second)", f"{new:.2f}",
                  f"{len(sample) / new:.0f}", f"{old / new:.0f}x")  # fmt: skip
    console.print(table)
    table = Table(title=f"reading a {args.issues} x {args.k} run (candidates.jsonl {size:.0f} MiB)")
    for col in ("command", "wall s", "peak MiB", "peak / candidates.jsonl"):
        table.add_column(col)
    for name, wall, peak in timed:
        table.add_row(name, f"{wall:.1f}", str(peak), f"{peak / size:.2f}x")
    console.print(table)
    plain, html = timed[0][1], timed[1][1]
    console.print(
        f"report --html: {html / plain:.2f}x the plain report's wall time; its index is "
        + (f"interactive in Chromium {interactive:.2f} s after navigation" if interactive else
           "not timed (no Chromium or Playwright here)")
    )  # fmt: skip


def browser_seconds(index: Path) -> float | None:
    """Seconds from navigating to the site's index until its issue table has rows."""
    import shutil

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        start = time.monotonic()
        page.goto(index.as_uri())
        page.locator("#issue-table tbody tr").first.wait_for()
        seconds = time.monotonic() - start
        browser.close()
    return seconds


if __name__ == "__main__":
    main()
