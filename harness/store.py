"""A run directory: its manifest, append-only verdict records and per-patch artifacts."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from harness.types import Candidate, Completion, Verdict


class RunStore:
    """runs/<run_id>/: manifest.json, verdicts.jsonl, artifacts/<instance>/<patch_sha[:16]>/."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def artifact_dir(self, instance_id: str, patch_sha: str) -> Path:
        path = self.run_dir / "artifacts" / instance_id / patch_sha[:16]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        (self.run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))

    def _append(self, name: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock, open(self.run_dir / name, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def append_verdict(self, verdict: Verdict) -> None:
        self._append("verdicts.jsonl", verdict.to_dict())

    def append_candidate(self, candidate: Candidate) -> None:
        self._append("candidates.jsonl", candidate.to_dict())

    def append_overhead(self, instance_id: str, purpose: str, completion: Completion) -> None:
        """A model call made for the issue as a whole (localisation), so its tokens count."""
        from dataclasses import asdict

        self._append(
            "overhead.jsonl", {"instance_id": instance_id, "purpose": purpose, **asdict(completion)}
        )

    def verdicts(self) -> list[Verdict]:
        """Every complete record; a last line cut short by a crash is ignored."""
        path = self.run_dir / "verdicts.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(Verdict.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError):
                continue
        return out
