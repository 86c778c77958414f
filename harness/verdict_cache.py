"""Verdicts shared by all runs, keyed by everything that can change a verdict.

The key (see `key`) holds the instance, the normalised patch, the image's content id (not its
name: a re-tagged `latest` is another environment), every isolation limit (network, memory,
pids, cpus, timeout, log cap), the eval script's hash and the grading version. Only verdicts on
the patch itself are kept: `resolved`, `unresolved` and `apply_failed`. `error` (the sandbox
never finished) and `timeout` (which depends on what else loaded the host) are never served to
another run. An entry holds the verdict and its artifacts, which a hit copies into the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.types import Verdict, VerdictStatus

GRADING_VERSION = "3"
"""Bumped whenever the harness grades differently, so older verdicts stop matching."""

CACHEABLE = {
    VerdictStatus.RESOLVED,
    VerdictStatus.UNRESOLVED,
    VerdictStatus.APPLY_FAILED,
    VerdictStatus.SUSPICIOUS,
}


def default_root() -> Path:
    """$SWEM_VERDICT_CACHE, else ~/.cache/swe-monkeys-verdicts (apart from the mirrors)."""
    env = os.environ.get("SWEM_VERDICT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "swe-monkeys-verdicts"


def key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass
class VerdictCache:
    root: Path
    read: bool = True
    """False for --refresh-cache: verify again and overwrite."""
    write: bool = True

    def _entry(self, parts: dict) -> Path:
        k = key(parts)
        return self.root / k[:2] / k

    def get(self, parts: dict | None) -> tuple[Verdict, Path] | None:
        """The verdict and its artifact folder, or None."""
        if parts is None or not self.read:
            return None
        entry = self._entry(parts)
        try:
            verdict = Verdict.from_dict(json.loads((entry / "verdict.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return (verdict, entry / "artifacts") if verdict.status in CACHEABLE else None

    def put(self, parts: dict | None, verdict: Verdict, artifacts: Path | None) -> None:
        if parts is None or not self.write or verdict.status not in CACHEABLE:
            return
        entry = self._entry(parts)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        try:
            if artifacts and artifacts.is_dir():
                shutil.copytree(artifacts, tmp / "artifacts")
            (tmp / "key.json").write_text(json.dumps(parts, indent=1, sort_keys=True))
            (tmp / "verdict.json").write_text(json.dumps(verdict.to_dict(), sort_keys=True))
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a cache that cannot write is no cache


def copy_artifacts(source: Path, dest: Path) -> None:
    """A cached verdict's evidence into this run: hard links where the file system allows."""
    if not source.is_dir():
        return
    for item in source.iterdir():
        target = dest / item.name
        if target.exists() or not item.is_file() or item.name == "verdict.json":
            continue
        try:
            os.link(item, target)
        except OSError:
            shutil.copy2(item, target)
