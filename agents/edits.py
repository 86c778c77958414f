"""SEARCH/REPLACE edit blocks (the Agentless/Aider format): parse them from a model's answer
and apply them to a repository's files; `Files` is those files as edits see them."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PATH_LINE = re.compile(r"^[#\s`*>]*(?:File:\s*)?`?([\w.\-/]+\.[A-Za-z0-9]+)`?[\s`*:]*$")
PATH_COMMENT = re.compile(r"^\s*#\s*(?:File:\s*)?([\w.\-/]+\.py)\s*$")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$")
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


class Files:
    """A checkout's files as an answer's edits see them: read from the checkout, written to
    memory. The checkout is never written, so the distinct answers of one issue are applied
    side by side (in a process pool) from one checkout, and a path an answer names can never
    reach outside it (`..`, absolute paths and symlinks leaving the checkout are refused)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._real = self.root.resolve()
        self.base: dict[str, str | None] = {}
        """Each path read or written, with its text at the checkout (None: no such file)."""
        self.new: dict[str, str] = {}

    def relative(self, path: str) -> str:
        """The repo-relative form of a path an answer names; EditError if it leaves the repo."""
        rel = PurePosixPath(path.removeprefix("./").removeprefix("a/").removeprefix("b/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise EditError(f"edit path leaves the repository: {path}")
        real = (self._real / rel).resolve()
        if real != self._real and self._real not in real.parents:
            raise EditError(f"edit path leaves the repository: {path}")
        return str(rel)

    def _base(self, rel: str) -> str | None:
        if rel not in self.base:
            target = self.root / rel
            self.base[rel] = target.read_text(errors="replace") if target.is_file() else None
        return self.base[rel]

    def exists(self, rel: str) -> bool:
        return rel in self.new or self._base(rel) is not None

    def read(self, rel: str) -> str:
        text = self.new.get(rel, self._base(rel))
        if text is None:
            raise EditError(f"no such file: {rel}")
        return text

    def write(self, rel: str, text: str) -> None:
        self._base(rel)
        self.new[rel] = text

    def changes(self) -> list[tuple[str, str | None, str]]:
        """(path, text at the checkout or None for a new file, new text) per changed file,
        by path."""
        return [(p, self.base[p], t) for p, t in sorted(self.new.items()) if t != self.base[p]]


def apply_edit(files: Files, edit: Edit) -> str:
    """Apply one edit; returns the file's repo-relative path."""
    rel = files.relative(edit.path)
    if not files.exists(rel):
        if edit.search.strip():
            raise EditError(f"edit targets a file that does not exist: {rel}")
        files.write(rel, edit.replace)
        return rel
    content = files.read(rel)
    if edit.search and edit.search in content:
        files.write(rel, content.replace(edit.search, edit.replace, 1))
        return rel
    replaced = _replace_ignoring_trailing_space(content, edit.search, edit.replace)
    if replaced is None:
        raise EditError(f"SEARCH text not found in {rel}")
    files.write(rel, replaced)
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


def import_insert_line(lines: list[str]) -> int:
    """Where new imports go: after the last import of the module's head (after its
    docstring when it has no import)."""
    tree = ast.parse("\n".join(lines))
    last = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            last = node.end_lineno
        elif last or not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            break
        else:  # the module docstring: imports go after it
            last = node.end_lineno
    return last
