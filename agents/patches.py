"""Candidate patches: parse with unidiff, drop test edits, normalise, hash, check they apply.

Normalising makes textually different but equivalent candidates hash alike, so each distinct
fix is verified once: CRLF line endings, file order, `index` lines and hunks that only change
trailing whitespace do not count.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*$|_tests?\.py$|(^|/)conftest\.py$")


def is_test_path(path: str) -> bool:
    return TEST_PATH.search(path) is not None


@dataclass(frozen=True)
class NormalPatch:
    text: str
    sha: str
    files: tuple[str, ...]


class PatchRejected(ValueError):
    """The text is not a usable patch; the message says why, in one line."""


def _whitespace_only(hunk) -> bool:
    removed = [line.value.rstrip() for line in hunk if line.is_removed]
    added = [line.value.rstrip() for line in hunk if line.is_added]
    return removed == added


def normalise(patch: str, drop_tests: bool = True) -> NormalPatch:
    """The canonical form of a patch; raises PatchRejected."""
    text = patch.replace("\r\n", "\n")
    if not text.strip():
        raise PatchRejected("empty patch")
    try:
        files = PatchSet(text)
    except UnidiffParseError as exc:
        raise PatchRejected(f"not a unified diff: {exc}") from None
    kept = []
    for pf in files:
        if pf.is_binary_file:
            raise PatchRejected(f"binary change to {pf.path}")
        if drop_tests and is_test_path(pf.path):
            continue
        for hunk in [h for h in pf if _whitespace_only(h)]:
            pf.remove(hunk)
        if len(pf) or pf.is_added_file or pf.is_removed_file or pf.is_rename:
            if pf.patch_info:  # a list subclass that renders the header; filter it in place
                pf.patch_info[:] = [ln for ln in pf.patch_info if not ln.startswith("index ")]
            kept.append(pf)
    if not kept:
        raise PatchRejected(
            "no change left (only test files or whitespace)"
            if len(files)
            else "not a unified diff: no file headers"
        )
    kept.sort(key=lambda pf: pf.path)
    body = "".join(str(pf) for pf in kept)
    body = body if body.endswith("\n") else body + "\n"
    return NormalPatch(
        body,
        hashlib.sha256(body.encode("utf-8", "surrogateescape")).hexdigest(),
        tuple(pf.path for pf in kept),
    )


def check_applies(worktree: Path, patch: str) -> None:
    """Raises PatchRejected when `git apply --check` refuses the patch at the worktree's HEAD."""
    done = subprocess.run(
        ["git", "apply", "--check", "-"], cwd=worktree, input=patch, capture_output=True, text=True
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["git apply failed"])[0]
        raise PatchRejected(f"does not apply to the base commit: {first}")
