"""Replay a span run's stored answers through today's span extraction: how many samples would
be valid now, and the patches that are new, as a predictions file to verify. Tuning the
extraction on answers already paid for costs no model time (tune on mini and the Lite dev split
only: cpu-lite stays blind).

    python scripts/replay_answers.py RUN_DIR --dataset mini --out new.jsonl
    harness eval -d mini --predictions new.jsonl --run-id replay     # verify what is new
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

from agents.code_units import units
from agents.extract import Answer, extract_all
from harness import wiring


def shown_unit(location: str, tree: Path):
    """The unit a sample was shown, from its recorded `path::name@start-end`."""
    path, rest = location.split("::", 1)
    name, lines = rest.rsplit("@", 1)
    start, end = map(int, lines.split("-"))
    for unit in units(path, (tree / path).read_text()):
        if unit.name == name and unit.start <= start and unit.end >= end:
            return replace(unit, start=start, end=end)
    return None


def replay(run: Path, dataset: str) -> tuple[Counter, Counter, dict]:
    latest = {}
    for line in (run / "candidates.jsonl").read_text().splitlines():
        c = json.loads(line)
        latest[(c["instance_id"], c["sample_index"])] = c
    instances = {
        i.instance_id: i for i in wiring.load(dataset, "test", sorted({k[0] for k in latest}))
    }
    before, after, new = Counter(), Counter(), {}
    trees: dict[str, Path] = {}
    scratch = Path(tempfile.mkdtemp(prefix="swem-replay-"))
    for (iid, _), c in sorted(latest.items()):
        before["valid" if c["patch_sha"] else "invalid"] += 1
        made = None
        if not c["patch_sha"] and c["locations"] and c["raw_output"] and "::" in c["locations"][0]:
            if iid not in trees:
                trees[iid] = wiring.image_sources().checkout(instances[iid], scratch / iid)
            unit = shown_unit(c["locations"][0], trees[iid])
            if unit is not None:
                answer = Answer(c["raw_output"], c["finish_reason"] == "length")
                got = asyncio.run(extract_all("span", [answer], trees[iid], (unit,), False))
                made = next(iter(got.values()))
        sha = c["patch_sha"] or (made.sha if made else None)
        after["valid" if sha else "invalid"] += 1
        if made is not None and made.sha:
            new.setdefault((iid, made.sha), made.patch)
    return before, after, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--dataset", default="mini")
    parser.add_argument("--out", type=Path, default=Path("replayed.jsonl"))
    args = parser.parse_args()
    before, after, new = replay(args.run, args.dataset)
    with args.out.open("w") as f:
        for (iid, _), patch in new.items():
            row = {"instance_id": iid, "model_patch": patch, "model_name_or_path": "replay"}
            f.write(json.dumps(row) + "\n")
    print(f"valid samples: {before['valid']} then, {after['valid']} now, of {sum(before.values())}")
    print(f"new distinct patches: {len(new)} (written to {args.out})")


if __name__ == "__main__":
    main()
