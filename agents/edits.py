"""SEARCH/REPLACE edit blocks (the Agentless/Aider format): parse them from a model's answer
and apply them to a worktree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PATH_LINE = re.compile(r"^[#\s`*>]*(?:File:\s*)?`?([\w.\-/]+\.[A-Za-z0-9]+)`?[\s`*:]*$")
SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"


@dataclass(frozen=True)
class Edit:
    path: str
    search: str
    replace: str


class EditError(ValueError):
    """An edit could not be parsed or applied; the message says which and why."""


def parse_edits(text: str) -> list[Edit]:
    """Every complete block, in order. Raises EditError for a block cut off before its end
    marker (a truncated answer) or one with no file path before it."""
    edits, path, lines = [], None, text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == SEARCH:
            if path is None:
                raise EditError("an edit block names no file before it")
            search, i = _collect(lines, i + 1, DIVIDER)
            replace, i = _collect(lines, i + 1, REPLACE)
            edits.append(Edit(path, search, replace))
        elif match := PATH_LINE.match(line):
            path = match.group(1)
        i += 1
    return edits


def _collect(lines: list[str], start: int, end_marker: str) -> tuple[str, int]:
    for j in range(start, len(lines)):
        if lines[j].strip() == end_marker:
            body = "\n".join(lines[start:j])
            return (body + "\n" if body else ""), j
    raise EditError(f"an edit block ends before its {end_marker!r} line (truncated answer?)")


def _safe_path(worktree: Path, path: str) -> Path:
    rel = PurePosixPath(path.removeprefix("./").removeprefix("a/").removeprefix("b/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise EditError(f"edit path leaves the repository: {path}")
    return worktree / rel


def apply_edit(worktree: Path, edit: Edit) -> str:
    """Apply one edit; returns the file's repo-relative path."""
    target = _safe_path(worktree, edit.path)
    rel = str(target.relative_to(worktree))
    if not target.exists():
        if edit.search.strip():
            raise EditError(f"edit targets a file that does not exist: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(edit.replace)
        return rel
    content = target.read_text()
    if edit.search and edit.search in content:
        target.write_text(content.replace(edit.search, edit.replace, 1))
        return rel
    replaced = _replace_ignoring_trailing_space(content, edit.search, edit.replace)
    if replaced is None:
        raise EditError(f"SEARCH text not found in {rel}")
    target.write_text(replaced)
    return rel


def _replace_ignoring_trailing_space(content: str, search: str, replace: str) -> str | None:
    """Models often drop trailing spaces or a final newline; match lines with rstrip()."""
    lines = content.split("\n")
    wanted = [ln.rstrip() for ln in search.rstrip("\n").split("\n")]
    if not any(wanted):
        return None
    stripped = [ln.rstrip() for ln in lines]
    for start in range(len(lines) - len(wanted) + 1):
        if stripped[start : start + len(wanted)] == wanted:
            new = replace.rstrip("\n").split("\n") if replace else []
            return "\n".join(lines[:start] + new + lines[start + len(wanted) :])
    return None
