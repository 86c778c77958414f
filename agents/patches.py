"""Candidate patches: parse with unidiff, drop test edits, normalise, hash, check they apply.

Normalising makes textually different but equivalent candidates hash alike, so each distinct
fix is verified once: CRLF line endings, file order, `index` lines, the text after a hunk's
`@@` (the enclosing function as the diff tool guessed it) and hunks that only change trailing
whitespace do not count.
"""

from __future__ import annotations

import difflib
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
    dropped: bool = False
    """Normalising left out a file or a hunk (so the patch must be checked again)."""


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
    kept, dropped = [], False
    for pf in files:
        if pf.is_binary_file:
            raise PatchRejected(f"binary change to {pf.path}")
        if drop_tests and is_test_path(pf.path):
            dropped = True
            continue
        for hunk in [h for h in pf if _whitespace_only(h)]:
            pf.remove(hunk)
            dropped = True
        for hunk in pf:  # a tool's guess at the enclosing function (git's, difflib's none)
            hunk.section_header = ""
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
        dropped or len(kept) < len(files),
    )


def check_applies(worktree: Path, patch: str) -> None:
    """Raises PatchRejected when `git apply --check` refuses the patch at the worktree's HEAD."""
    done = subprocess.run(
        ["git", "apply", "--check", "-"], cwd=worktree, input=patch, capture_output=True, text=True
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["git apply failed"])[0]
        raise PatchRejected(f"does not apply to the base commit: {first}")


NO_NEWLINE = "\\ No newline at end of file\n"


def diff_texts(changes: list[tuple[str, str | None, str]]) -> str:
    """A git-style unified diff (3 lines of context) of (path, old text or None for a new
    file, new text) changes. Made in memory from the exact old text, so it applies to it by
    construction; the common head and tail are cut before matching, so a local edit of a
    large file costs about a read of it."""
    out = []
    for path, old, new in changes:
        a, b = (old or "").splitlines(keepends=True), new.splitlines(keepends=True)
        out.append(f"diff --git a/{path} b/{path}\n")
        if old is None:
            out.append("new file mode 100644\n")
        out.append(f"--- {'/dev/null' if old is None else 'a/' + path}\n+++ b/{path}\n")
        for group in _grouped_opcodes(a, b):
            out += _hunk(a, b, group)
    return "".join(out)


def _grouped_opcodes(a: list[str], b: list[str]):
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(
        None, a[head : len(a) - tail], b[head : len(b) - tail], autojunk=False
    )
    ops = [("equal", 0, head, 0, head)] if head else []
    ops += [
        (t, i1 + head, i2 + head, j1 + head, j2 + head)
        for t, i1, i2, j1, j2 in middle.get_opcodes()
    ]
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    grouper = difflib.SequenceMatcher(None, [], [])
    grouper.opcodes = [op for op in ops if op[1] != op[2] or op[3] != op[4]]  # reuse its grouping
    return grouper.get_grouped_opcodes(3) if grouper.opcodes else []


def _hunk(a: list[str], b: list[str], group) -> list[str]:
    first, last = group[0], group[-1]
    i1, i2, j1, j2 = first[1], last[2], first[3], last[4]
    lines = [f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n"]
    for tag, a1, a2, b1, b2 in group:
        if tag == "equal":
            lines += [_line(" ", x) for x in a[a1:a2]]
            continue
        lines += [_line("-", x) for x in a[a1:a2]]
        lines += [_line("+", x) for x in b[b1:b2]]
    return lines


def _range(start: int, stop: int) -> str:
    count = stop - start
    return f"{start + 1 if count else start},{count}"


def _line(mark: str, text: str) -> str:
    return mark + text if text.endswith("\n") else mark + text + "\n" + NO_NEWLINE
