"""Tables whose figures are never cut: at any width (a terminal, a log, a pipe at 80 columns) a
table with more columns than fit is printed as several tables, each repeating the leading
columns that name the row, instead of rich squeezing its cells into `66.…`."""

from __future__ import annotations

from rich.table import Table

CELL_EXTRA = 3
"""What rich adds to a column: a space each side and the border after it."""


def fitted(
    title: str,
    columns: list[tuple[str, str]],
    rows: list[list[str]],
    width: int,
    keep: int = 1,
) -> list[Table]:
    """The table (columns as (header, justify)) cut by columns into as many tables as it takes
    for each to fit `width`; the first `keep` columns head each part."""
    sizes = [
        max([len(header)] + [len(line) for row in rows for line in str(row[i]).splitlines()])
        + CELL_EXTRA
        for i, (header, _) in enumerate(columns)
    ]
    lead = 1 + sum(sizes[:keep])
    parts: list[list[int]] = [[]]
    used = lead
    for i in range(keep, len(columns)):
        if parts[-1] and used + sizes[i] > width:
            parts.append([])
            used = lead
        parts[-1].append(i)
        used += sizes[i]
    tables = []
    for n, part in enumerate(parts):
        shown = list(range(keep)) + part
        suffix = f" ({n + 1}/{len(parts)})" if len(parts) > 1 else ""
        table = Table(title=title + suffix)
        for i in shown:
            header, justify = columns[i]
            table.add_column(header, justify=justify, no_wrap=True)
        for row in rows:
            table.add_row(*(str(row[i]) for i in shown))
        tables.append(table)
    return tables
