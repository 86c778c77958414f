"""A Python file's code units, the places a fix lives: functions, methods, a class's own
statements, module-level statements. Localisation ranks them, repair prompts show them, and
the gold patch is scored against them, so all three agree on what "a function" is."""

from __future__ import annotations

import ast
from dataclasses import dataclass

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True, order=True)
class Unit:
    """Lines `start`..`end` (1-based, inclusive, decorators included) of `path`. `name` is
    `func`, `Class.method`, `Class` (a class's statements outside its methods) or the
    targets of a module-level statement (`DEFAULT_LOG_FORMAT`; `<module>` when it has none)."""

    path: str
    start: int
    end: int
    name: str
    kind: str  # function, method, class, statement

    @property
    def key(self) -> str:
        """How the unit is named in records and in `harness localize`: `path::name`."""
        return f"{self.path}::{self.name}"


def units(path: str, source: str) -> list[Unit]:
    """Every unit of a module in line order; [] for a file that does not parse. Imports are
    no unit: where a fix adds one, the place of the fix is elsewhere."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    found: list[Unit] = []
    for node in tree.body[1:] if _is_docstring(tree.body[:1]) else tree.body:
        found += _units_of(path, node, prefix="")
    return _merge_statements(sorted(found, key=lambda u: (u.start, u.end)))


def _is_docstring(first: list[ast.stmt]) -> bool:
    return (
        bool(first) and isinstance(first[0], ast.Expr) and isinstance(first[0].value, ast.Constant)
    )


def _merge_statements(found: list[Unit]) -> list[Unit]:
    """Consecutive module-level statements are one unit (`A..B`): a block of settings is one
    place to edit, as a function is."""
    out: list[Unit] = []
    for unit in found:
        last = out[-1] if out else None
        if unit.kind == "statement" and last is not None and last.kind == "statement":
            first = last.name.split("..")[0]
            out[-1] = Unit(unit.path, last.start, unit.end, f"{first}..{unit.name}", "statement")
        else:
            out.append(unit)
    return out


def _units_of(path: str, node: ast.stmt, prefix: str) -> list[Unit]:
    start = _first_line(node)
    end = node.end_lineno or start
    if isinstance(node, FUNCTIONS):
        kind = "method" if prefix else "function"
        return [Unit(path, start, end, prefix + node.name, kind)]
    if isinstance(node, ast.ClassDef):
        name = prefix + node.name
        inner = [u for child in node.body for u in _units_of(path, child, name + ".")]
        own = [u for u in inner if u.kind == "statement"]
        # the class's own statements (header, attributes, docstring) are one unit: its span
        # runs from the header to the last of them
        last = max((u.end for u in own), default=start)
        header_end = node.body[0].lineno - 1 if node.body else end
        methods = [u for u in inner if u.kind != "statement"]
        return [Unit(path, start, max(last, header_end), name, "class"), *methods]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return []
    return [Unit(path, start, end, prefix + _targets(node), "statement")]


def _targets(node: ast.stmt) -> str:
    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        return ",".join(names) or "<module>"
    if isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return "<module>"


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def unit_at(found: list[Unit], line: int) -> Unit | None:
    """The innermost unit holding `line` (a method before its class)."""
    holding = [u for u in found if u.start <= line <= u.end]
    return min(holding, key=lambda u: u.end - u.start, default=None)


def class_at(found: list[Unit], line: int) -> Unit | None:
    """The class whose body holds `line` (where a new method goes in)."""
    classes = [u for u in found if u.kind == "class"]
    holding = [c for c in classes if c.start <= line <= _class_end(found, c)]
    return max(holding, key=lambda u: u.start, default=None)


def _class_end(found: list[Unit], cls: Unit) -> int:
    prefix = cls.name + "."
    return max([cls.end, *(u.end for u in found if u.name.startswith(prefix))])
