"""A localised unit cut to what a repair prompt can show: a long function becomes the run of
its statements that the issue's terms hit most, whole statements only, so that the lines
the model rewrites can be put back by line range and still parse."""

from __future__ import annotations

import ast

from agents.code_units import Unit
from agents.localize import terms


def fit(unit: Unit, source: str, max_chars: int, query: str) -> Unit:
    """`unit` when its lines fit in `max_chars`, else its best window of sibling statements
    (kind "lines", named `name[start-end]`); the unit's head as a last resort."""
    lines = source.splitlines()
    if _size(lines, unit.start, unit.end) <= max_chars:
        return unit
    wanted = set(terms(query))
    best: tuple[int, int, int, int] | None = None  # (hits, size, start, end)
    for start, end in _sibling_runs(source, unit, lines, max_chars):
        text = "\n".join(lines[start - 1 : end])
        hits = len(wanted & set(terms(text)))
        candidate = (hits, _size(lines, start, end), start, end)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        start, end = unit.start, _head_end(lines, unit.start, max_chars)
    else:
        start, end = best[2], best[3]
    return Unit(unit.path, start, end, f"{unit.name}[{start}-{end}]", "lines")


def _size(lines: list[str], start: int, end: int) -> int:
    return sum(len(ln) + 1 for ln in lines[start - 1 : end])


def _sibling_runs(source: str, unit: Unit, lines: list[str], max_chars: int):
    """(start, end) of every run of consecutive statements of one body inside the unit
    that fits."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            body = getattr(node, field, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.AST):
                continue
            spans = [(_first(s), s.end_lineno or s.lineno) for s in body]
            spans = [(a, b) for a, b in spans if unit.start <= a and b <= unit.end]
            for i, (a, _) in enumerate(spans):
                for _, b in spans[i:]:
                    if _size(lines, a, b) > max_chars:
                        break
                    yield a, b


def _first(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _head_end(lines: list[str], start: int, max_chars: int) -> int:
    end, size = start, 0
    while end <= len(lines) and size + len(lines[end - 1]) + 1 <= max_chars:
        size += len(lines[end - 1]) + 1
        end += 1
    return max(start, end - 1)
