"""The per-repo soundness table docs/environments.md keeps: from `harness validate` runs (their
validation.jsonl) and the images they built, one row per repo: rows validated, built, refused
(with the reasons), sound over every repeat, median build seconds, disk.

    python scripts/soundness_table.py RUN_DIR [RUN_DIR ...]

A later run's line for an instance replaces an earlier one's."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def load(run_dirs: list[str]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for run in run_dirs:
        path = Path(run) / "validation.jsonl"
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            latest[record["instance_id"]] = record
    return latest


def repo_of(instance_id: str) -> str:
    return instance_id.rsplit("-", 1)[0].replace("__", "/")


def image_mib(images: set[str]) -> float:
    """Disk the images hold together: each distinct layer once."""
    if not images:
        return 0.0
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}} {{.Size}}", *images],
        capture_output=True,
        text=True,
    ).stdout
    sizes = [int(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.strip()]
    # the instance layers are thin: the biggest image (env + toolchain + base) plus a
    # share per other image is close; docker gives no per-layer size through inspect
    return (max(sizes) + 0.05 * sum(sorted(sizes)[:-1])) / 2**20 if sizes else 0.0


def _why(record: dict) -> str:
    """The note without what every row says (fidelity, image time)."""
    if record["error"]:
        return record["error"]
    parts = [p for p in record["note"].split("; ") if not p.startswith(("fidelity:", "image "))]
    return "; ".join(p for p in parts if not p.startswith(("conda ", "httpbin", "python ")))


def table(records: dict[str, dict]) -> str:
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for record in records.values():
        by_repo[repo_of(record["instance_id"])].append(record)
    lines = [
        "| repo | validated | built | refused | sound (every repeat) | repeats | "
        "build s (median) | disk MiB | not sound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for repo, rows in sorted(by_repo.items()):
        built = [r for r in rows if r["gold"]]
        refused = [r for r in rows if not r["gold"]]
        sound = [r for r in built if r["ok"]]
        repeats = sorted({len(r["gold"]) for r in built}) or [0]
        build_s = [r["image_s"] for r in built if r["image_s"] > 5]
        remains = [r["instance_id"].rsplit("-", 1)[1] for r in rows if not r["ok"]]
        lines.append(
            f"| {repo} | {len(rows)} | {len(built)} | {len(refused)} | {len(sound)}/{len(rows)} | "
            f"{'/'.join(map(str, repeats))} | "
            f"{statistics.median(build_s) if build_s else 0:.0f} | "
            f"{image_mib({r['image'] for r in built if r['image']}):.0f} | "
            + (", ".join(remains) or "–")
            + " |"
        )
    total = len(records)
    ok = sum(r["ok"] for r in records.values())
    lines.append(f"\n{ok}/{total} sound ({100 * ok / max(total, 1):.0f} %)\n")
    lines += [f"- {r['instance_id']}: {_why(r)[:240]}" for r in records.values() if not r["ok"]]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(load(sys.argv[1:])))
