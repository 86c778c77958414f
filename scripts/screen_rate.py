"""How often the integrity screen flags other systems' patches: for each predictions file, the
share of non-empty patches with a finding, the findings by rule, and each flagged patch's
findings (issue #27). No Docker: the screen reads only the patch and the instance's test patch.

    python scripts/screen_rate.py --dataset <shared>/data/swe-bench-lite-test.jsonl PREDS...
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from sandbox.integrity import screen


def rate(preds: Path, rows: dict[str, dict], show: bool) -> tuple[int, int, Counter]:
    flagged, total, rules = 0, 0, Counter()
    for line in preds.read_text().splitlines():
        pred = json.loads(line)
        row = rows.get(pred["instance_id"])
        patch = pred.get("model_patch") or ""
        if row is None or not patch.strip():
            continue
        total += 1
        findings = screen(patch, row["repo"], row["test_patch"])
        if findings:
            flagged += 1
            rules.update({f.rule for f in findings})
            if show:
                print(f"  {pred['instance_id']}: " + "; ".join(map(str, findings)))
    return flagged, total, rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--show", action="store_true", help="print each flagged patch")
    parser.add_argument("preds", type=Path, nargs="+")
    args = parser.parse_args()
    rows = {r["instance_id"]: r for r in map(json.loads, args.dataset.read_text().splitlines())}
    gold = sum(bool(screen(r["patch"], r["repo"], r["test_patch"])) for r in rows.values())
    print(f"gold patches flagged: {gold} of {len(rows)}")
    for preds in args.preds:
        flagged, total, rules = rate(preds, rows, args.show)
        share = flagged / total if total else 0.0
        print(f"{preds.name}: {flagged} of {total} patches flagged ({share:.1%}) {dict(rules)}")


if __name__ == "__main__":
    main()
