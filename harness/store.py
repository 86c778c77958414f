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
        self._checked: set[str] = set()

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
        with self._lock:
            if name not in self._checked:
                _cut_torn_tail(self.run_dir / name)
                self._checked.add(name)
            self._write_line(name, line)

    def _write_line(self, name: str, line: str) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def append_verdict(self, verdict: Verdict) -> None:
        self._append("verdicts.jsonl", verdict.to_dict())

    def append_candidate(self, candidate: Candidate) -> None:
        self._append("candidates.jsonl", candidate.to_dict())

    def write_trajectory(self, instance_id: str, sample_index: int, data: dict) -> Path:
        path = self.run_dir / "trajectories" / instance_id / f"{sample_index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
        return path

    def trajectory(self, instance_id: str, sample_index: int) -> dict | None:
        path = self.run_dir / "trajectories" / instance_id / f"{sample_index}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def append_timing(self, record: dict[str, Any]) -> None:
        self._append("timing.jsonl", record)

    def append_overhead(self, instance_id: str, purpose: str, completion: Completion) -> None:
        """A model call made for the issue as a whole (localisation), so its tokens count."""
        from dataclasses import asdict

        self._append(
            "overhead.jsonl", {"instance_id": instance_id, "purpose": purpose, **asdict(completion)}
        )

    def records(self, name: str) -> list[dict[str, Any]]:
        """Every complete record of a JSONL file; a last line cut short by a crash is ignored."""
        path = self.run_dir / name
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def verdicts(self) -> list[Verdict]:
        return [Verdict.from_dict(r) for r in self.records("verdicts.jsonl")]

    def candidates(self) -> list[Candidate]:
        return [
            Candidate(**{**r, "edited_files": tuple(r["edited_files"])})
            for r in self.records("candidates.jsonl")
        ]

    def manifest(self) -> dict[str, Any] | None:
        path = self.run_dir / "manifest.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_json(self, name: str, data: Any) -> Path:
        path = self.run_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, path)
        return path


def _cut_torn_tail(path: Path) -> None:
    """A process killed mid-write leaves a last line without its newline; the next record
    must not be glued onto it, so the torn tail is cut before appending."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)
