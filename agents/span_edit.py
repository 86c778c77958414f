"""The span format: the prompt shows one localised span (a function, or a window of lines)
with its line numbers, and the answer is one code block holding those lines after the fix,
put back by line range (Moatless's pre-filled span; no text has to be copied exactly).

What the harness keeps of an answer is bounded by what it showed. Small models wrap a
method in its class header, re-declare imports, copy the line numbers or the context lines
around the span, shift the indentation, or add functions nobody asked for; each is undone
here, and an answer that cannot be brought back to the span is refused with the reason.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from agents.code_units import Unit
from agents.edits import FENCE, PATH_COMMENT, PATH_LINE, EditError, Files, import_insert_line

CONTEXT_LINES = 3
"""Lines shown above and below a window cut out of a function, numbered, for orientation;
never rewritten. A whole function, class or statement block is shown alone: small models
rewrote the neighbouring function whose tail the context showed (5 of 16 answers on
inventory-1 with the 0.5B)."""
NUMBERED = re.compile(r"^\s*\d+\s*\|( ?)")
IMPORT = re.compile(r"^\s*(import\s+\w|from\s+[\w.]+\s+import\s)")


def numbered(lines: list[str], first: int) -> str:
    """Lines as the prompt shows them: `  12 | code`."""
    width = len(str(first + len(lines) - 1))
    return "\n".join(f"{first + i:>{width}} | {line}".rstrip() for i, line in enumerate(lines))


def context_lines(span: Unit) -> int:
    return CONTEXT_LINES if span.kind == "lines" else 0


def window(source_lines: list[str], span: Unit) -> tuple[list[str], list[str], list[str]]:
    """(context above, the span's lines, context below) as the prompt shows them."""
    context = context_lines(span)
    above = source_lines[max(0, span.start - 1 - context) : span.start - 1]
    below = source_lines[span.end : span.end + context]
    return above, source_lines[span.start - 1 : span.end], below


@dataclass(frozen=True)
class SpanRewrite:
    name: str = "span"
    instructions: str = "repair_span"

    def apply(self, answer: str, files: Files, shown: list) -> list[str]:
        spans = [s for s in shown if isinstance(s, Unit)]
        if len(spans) != 1:
            raise EditError("the span format needs exactly one shown span")
        span = spans[0]
        rel = files.relative(span.path)
        source = files.read(rel)
        lines = source.splitlines()
        above, old, below = window(lines, span)
        code = _strip_context(_numbered_span(answer, span) or [], above, below)
        imports, code = _split_imports(code, old, lines)
        if span.kind in ("function", "method"):
            code = _only_the_unit(code, span, old)
        else:
            _check_definitions(code, old, span)
        new_lines = lines[: span.start - 1] + _reindent(code, old) + lines[span.end :]
        if imports:
            at = _import_insert_line_or_top(new_lines)
            new_lines = new_lines[:at] + imports + new_lines[at:]
        new = "\n".join(new_lines) + ("\n" if source.endswith("\n") or not source else "")
        try:
            ast.parse(new)
        except SyntaxError as exc:
            raise EditError(
                f"{rel} does not parse with the rewritten lines: {exc.msg} (line {exc.lineno})"
            ) from None
        files.write(rel, new)
        return [rel]


def _numbered_span(answer: str, span: Unit) -> list[str]:
    """The answer's code for the span. Where the model copied the line numbers, they say
    which lines it meant: lines numbered outside the shown window go (a model that runs on
    past the span, even until max_tokens cuts it, has still written the span whole)."""
    try:
        code = answer_block(answer)
    except EditError:
        code = _unclosed_block(answer)
        if not code or _last_number(code) <= span.end:
            raise
    if not _is_numbered(code):
        return code
    first, last = span.start - context_lines(span), span.end + context_lines(span)
    kept, number = [], None
    for line in code:
        match = NUMBERED.match(line)
        number = int(line.split("|", 1)[0]) if match else number
        if number is None or first <= number <= last:
            kept.append(NUMBERED.sub("", line, count=1) if match else line)
    return kept


def _unclosed_block(answer: str) -> list[str]:
    lines = answer.replace("\r\n", "\n").split("\n")
    opened = next((i for i, ln in enumerate(lines) if FENCE.match(ln)), None)
    return [] if opened is None else lines[opened + 1 :]


def _is_numbered(code: list[str]) -> bool:
    text = [ln for ln in code if ln.strip()]
    return bool(text) and sum(bool(NUMBERED.match(ln)) for ln in text) >= 0.8 * len(text)


def _last_number(code: list[str]) -> int:
    numbers = [int(ln.split("|", 1)[0]) for ln in code if NUMBERED.match(ln)]
    return max(numbers, default=0)


def answer_block(answer: str) -> list[str]:
    """The first fenced block that holds code, without a path line at its top (small models
    put the path inside the fence)."""
    lines = answer.replace("\r\n", "\n").split("\n")
    opened = False
    for i, line in enumerate(lines):
        fence = FENCE.match(line)
        if fence is None:
            continue
        opened = True
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), None
        )
        if end is None:
            break
        body = lines[i + 1 : end]
        while body and (not body[0].strip() or _is_path(body[0])):
            body = body[1:]
        if any(ln.strip() for ln in body):
            return body
    if opened:
        raise EditError("the code block ends before its closing fence (truncated answer?)")
    raise EditError("no code block in the answer")


def _is_path(line: str) -> bool:
    return bool(PATH_COMMENT.match(line) or PATH_LINE.match(line)) and ".py" in line


def _strip_context(code: list[str], above: list[str], below: list[str]) -> list[str]:
    """The shown context lines, copied into the answer around the rewritten span, go: the
    longest tail of the context above that the answer starts with, and the longest head of
    the context below that it ends with."""

    def same(a: list[str], b: list[str]) -> bool:
        return [x.strip() for x in a] == [x.strip() for x in b]

    head = next((n for n in range(len(above), 0, -1) if same(above[-n:], code[:n])), 0)
    code = code[head:]
    tail = next((n for n in range(len(below), 0, -1) if same(below[:n], code[-n:])), 0)
    return code[: len(code) - tail]


def _split_imports(code: list[str], old: list[str], file_lines: list[str]) -> tuple[list, list]:
    """Import lines at the top of an answer whose span does not start with one: those the file
    has go, new ones move to the file's imports (returned first)."""
    if any(IMPORT.match(ln) for ln in old[:1]):
        return [], code
    at = 0
    while at < len(code) and (IMPORT.match(code[at]) or not code[at].strip()):
        at += 1
    had = {ln.strip() for ln in file_lines}
    new = [ln.strip() for ln in code[:at] if ln.strip() and ln.strip() not in had]
    return list(dict.fromkeys(new)), code[at:]


def _only_the_unit(code: list[str], span: Unit, old: list[str]) -> list[str]:
    """Of an answer for a function, only that function: a class header around a method, and
    functions the answer adds beside it, are left out. An answer of statements alone is the
    function's new body, put under its own header."""
    name = span.name.rsplit(".", 1)[-1]
    text = textwrap.dedent("\n".join(code))
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return code  # the whole file's parse says what is wrong
    defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    body_only = (
        tree.body and not defs and not any(isinstance(n, ast.ClassDef) for n in ast.walk(tree))
    )
    if body_only and (whole := _under_own_header(text, tree, old)):
        return whole
    mine = [n for n in defs if n.name == name]
    if not mine:
        named = ", ".join(f"{n.name}()" for n in defs) or "no function"
        raise EditError(f"the answer rewrites {named}, not the {name}() it was shown")
    node = mine[0]
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return text.split("\n")[first - 1 : node.end_lineno]


def _under_own_header(body: str, parsed: ast.Module, old: list[str]) -> list[str] | None:
    """The shown function's header (decorators, the `def` lines up to its first statement)
    with `body` indented as its old body was; None where the header cannot be told apart."""
    try:
        node = ast.parse(textwrap.dedent("\n".join(old))).body[0]
    except (SyntaxError, IndexError):
        return None
    if (
        not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        or node.body[0].lineno <= node.lineno
    ):
        return None
    indent = " " * _indent(old[node.body[0].lineno - 1])
    first = node.body[0]
    if _is_docstring(first) and not _is_docstring(parsed.body[0]) and len(node.body) > 1:
        first = node.body[1]  # the answer left the docstring out: it stays
    return old[: first.lineno - 1] + [indent + ln if ln.strip() else "" for ln in body.split("\n")]


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _check_definitions(code: list[str], old: list[str], span: Unit) -> None:
    """An answer for lines that are no function may not define one they do not hold (a fix
    for a function shown beside them as context is not an edit of these lines)."""
    new, had = _defined(code), _defined(old)
    if new is not None and had is not None and not new <= had:
        extra = ", ".join(sorted(new - had))
        raise EditError(
            f"the answer defines {extra}, which lines {span.start}-{span.end} do not hold"
        )


def _defined(lines: list[str]) -> set[str] | None:
    try:
        tree = ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return None
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {n.name for n in ast.walk(tree) if isinstance(n, kinds)}


def _reindent(code: list[str], old: list[str]) -> list[str]:
    """The answer's lines shifted so its first line sits where the span's first line did."""
    want = _indent(next((ln for ln in old if ln.strip()), ""))
    have = _indent(next((ln for ln in code if ln.strip()), ""))
    shift = want - have
    out = []
    for line in code:
        if not line.strip():
            out.append("")
        elif shift >= 0:
            out.append(" " * shift + line)
        else:
            out.append(line[min(-shift, _indent(line)) :])
    while out and not out[-1]:
        out.pop()
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _import_insert_line_or_top(lines: list[str]) -> int:
    try:
        return import_insert_line(lines)
    except SyntaxError:
        return 0
