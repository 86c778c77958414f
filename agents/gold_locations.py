"""Where a reference patch edits, as files and code units at the base commit: what
localisation is scored against (`harness localize --against-gold`) and what the oracle
diagnostic shows. Nothing that ranks reads it."""

from __future__ import annotations

from pathlib import Path

from unidiff import PatchSet

from agents.code_units import Unit, class_at, unit_at, units
from agents.patches import is_test_path


def edited_files(patch: str) -> list[str]:
    """The non-test files a patch changes (modified, never added ones: no ranking can name a
    file that does not exist yet)."""
    return [f.path for f in PatchSet(patch) if not f.is_added_file and not _skipped(f.path)]


def _skipped(path: str) -> bool:
    return is_test_path(path) or not path.endswith(".py")


def edited_units(patch: str, worktree: Path) -> list[Unit]:
    """The units at the base commit that the patch's hunks change. A removed line names the
    unit holding it; an added line the unit holding both its neighbours, or the class it
    goes into; import lines, blank lines and comments name none."""
    found: dict[str, Unit] = {}
    for patched in PatchSet(patch):
        if patched.is_added_file or _skipped(patched.path):
            continue
        source = (worktree / patched.path).read_text(errors="replace")
        file_units = units(patched.path, source)
        base_lines = source.splitlines()
        for before, after, text in _edited_lines(patched):
            unit = _unit_for(file_units, base_lines, before, after, text)
            if unit is not None:
                found[unit.key] = unit
    return sorted(found.values())


def _edited_lines(patched) -> list[tuple[int, int, str]]:
    """(before, after, text) per meaningful change: a removed line is (n, n, line); a run of
    lines added after base line n is (n, n + 1, its least indented line), so a new method's
    body goes where its `def` goes."""
    out = []
    for hunk in patched:
        previous = hunk.source_start - 1
        added: list[str] = []
        for line in [*hunk, None]:
            if line is not None and line.is_added:
                added += [line.value] if _meaningful(line.value) else []
                continue
            if added:
                out.append((previous, previous + 1, min(added, key=_indent)))
                added = []
            if line is None:
                break
            previous = line.source_line_no
            if line.is_removed and _meaningful(line.value):
                out.append((previous, previous, line.value))
    return out


def _meaningful(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith(("#", "import ", "from "))


def _unit_for(
    file_units: list[Unit], base_lines: list[str], before: int, after: int, text: str
) -> Unit | None:
    """A line added at the end of a function body goes on that function (it is indented
    deeper than its `def`); one between two methods goes on their class."""
    inner = unit_at(file_units, before)
    if before == after or (inner is not None and inner.start <= after <= inner.end):
        return inner
    if inner is not None and _indent(text) > _indent(base_lines[inner.start - 1]):
        return inner
    return class_at(file_units, before) or class_at(file_units, after)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
