"""How a repair answer says its edit, by format: each format has its instructions for the
prompt and a parser that applies the answer to a checkout's `Files` (in memory; the agent
then diffs them).

- search-replace: Aider/Agentless SEARCH/REPLACE blocks. Compact, but the SEARCH text must
  copy the file exactly, which small models rarely manage.
- whole-file: the whole new file in a fenced block under its path. Long, but nothing has to
  be copied exactly; the harness turns it into a unified diff.
- whole-function: only the changed functions (or classes), written out whole; each replaces
  the definition of that name. Short answers (tokens are what a CPU pays for) and no exact
  copying.
- span: one localised span shown with line numbers, rewritten whole and put back by line
  range (`agents.span_edit`): the default for the embedded models.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from typing import Protocol

from agents.edits import (
    FENCE,
    PATH_COMMENT,
    PATH_LINE,
    EditError,
    Files,
    apply_edit,
    import_insert_line,
    parse_edits,
)
from agents.span_edit import SpanRewrite
from harness.errors import UserError


class EditFormat(Protocol):
    name: str
    instructions: str
    """The prompt file (agents/prompts/) telling the model how to answer."""

    def apply(self, answer: str, files: Files, shown: list) -> list[str]:
        """Apply the answer's edits to the files; the edited paths. `shown` is what the
        prompt showed: paths, or for the span format its one `Unit`. EditError when the
        answer holds no usable edit (the message says why)."""
        ...


@dataclass(frozen=True)
class SearchReplace:
    name: str = "search-replace"
    instructions: str = "format_search_replace"

    def apply(self, answer: str, files: Files, shown: list[str]) -> list[str]:
        edits = parse_edits(answer)
        if not edits:
            raise EditError("no SEARCH/REPLACE edit in the answer")
        return [apply_edit(files, edit) for edit in edits]


ELISION = re.compile(
    r"^\s*(#|\.\.\.|…).*\b(rest of (the )?(code|file|function|class|module)|"
    r"(remains?|stays?|is|are) (unchanged|the same)|existing code|same as before|"
    r"unchanged)\b",
    re.I,
)


class _Rewrite:
    """Answers that write code out whole; subclasses say how it becomes the file's text."""

    what: str

    def new_text(self, path: str, old: str, code: str) -> str:
        raise NotImplementedError

    def apply(self, answer: str, files: Files, shown: list[str]) -> list[str]:
        edited = []
        for rel, code in _rewritten(answer, files, shown, self.what):
            old = files.read(rel) if files.exists(rel) else ""
            new = self.new_text(rel, old, code)
            if new != old:
                files.write(rel, new)
                edited.append(rel)
        return edited


@dataclass(frozen=True)
class WholeFile(_Rewrite):
    name: str = "whole-file"
    instructions: str = "format_whole_file"
    what: str = "file"

    def new_text(self, path: str, old: str, code: str) -> str:
        check_not_elided(path, old, code)
        return code


def _rewritten(answer: str, files: Files, shown: list[str], what: str) -> list[tuple[str, str]]:
    """(repo-relative path, code) per usable block of a rewrite answer."""
    blocks = parse_whole_files(answer, shown)
    if not blocks:
        raise EditError(f"no rewritten {what} in the answer (a path line, then a fenced block)")
    return [(files.relative(path), code) for path, code in _existing(blocks, files, shown)]


def _existing(
    blocks: list[tuple[str, str]], files: Files, shown: list[str] | tuple = ()
) -> list[tuple[str, str]]:
    """The blocks for files that exist (or were shown): small models echo an example of
    the format, or name a file they made up, beside the real fix; that part is left out.
    None left is an EditError naming the first."""
    kept = [(p, c) for p, c in blocks if p in shown or files.exists(files.relative(p))]
    if not kept:
        raise EditError(f"the answer rewrites {blocks[0][0]}, which does not exist")
    return kept


def parse_whole_files(answer: str, shown: list[str]) -> list[tuple[str, str]]:
    """(path, new text) per fenced block. A block's path is the last path line before it, or
    a `# path.py` comment as its first line; with one file shown, a block with no path is that
    file. An unclosed block after complete ones (an answer cut off while rambling on) is
    dropped; an answer with no closed block raises."""
    lines = answer.replace("\r\n", "\n").split("\n")
    out: list[tuple[str, str]] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            if match := PATH_LINE.match(lines[i]):
                path = match.group(1)
            i += 1
            continue
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), None
        )
        if end is None:
            if out:  # a rambling answer cut off after its fix: the closed blocks stand
                break
            raise EditError("a code block ends before its closing fence (truncated answer?)")
        for named, body_lines in _split_at_path_comments(lines[i + 1 : end], shown):
            body = "\n".join(body_lines).strip("\n") + "\n"
            target = named or path or (shown[0] if len(shown) == 1 else None)
            if target is None:
                raise EditError("a rewritten file names no path before its code block")
            out.append((target, body))
        path = None
        i = end + 1
    return out


def _split_at_path_comments(
    body: list[str], shown: list[str]
) -> list[tuple[str | None, list[str]]]:
    """A block as (path, lines) parts: a `# path.py` first line names the block's file, and a
    later one naming a file that was shown starts that file's part (small models put
    several files in one block that way)."""
    parts: list[tuple[str | None, list[str]]] = [(None, [])]
    for n, line in enumerate(body):
        named = PATH_COMMENT.match(line)
        if named and (n == 0 or named.group(1) in shown):
            parts.append((named.group(1), []))
        else:
            parts[-1][1].append(line)
    return [(p, ls) for p, ls in parts if p is not None or any(x.strip() for x in ls)]


def check_not_elided(path: str, old: str, new: str) -> None:
    """A rewrite must be whole: small models write `# rest of the code unchanged` or drop
    most of a file, which would delete it. Raises EditError naming the file."""
    old_lines = set(old.splitlines())
    for line in new.splitlines():
        if line not in old_lines and (ELISION.match(line) or line.strip() in ("...", "…")):
            raise EditError(f"the rewrite of {path} leaves code out ({line.strip()[:60]!r})")
    if len(old.splitlines()) >= 12 and len(new.splitlines()) < len(old.splitlines()) // 2:
        raise EditError(
            f"the rewrite of {path} keeps {len(new.splitlines())} of "
            f"{len(old.splitlines())} lines (part of the file left out?)"
        )


@dataclass(frozen=True)
class WholeFunction(_Rewrite):
    name: str = "whole-function"
    instructions: str = "format_whole_function"
    what: str = "function"

    def new_text(self, path: str, old: str, code: str) -> str:
        check_not_elided(path, "", code)
        return replace_definitions(path, old, code)


def replace_definitions(path: str, source: str, code: str) -> str:
    """`source` with each function or class `code` defines put in place of the one of that
    name (a method when no module-level one has it), new ones appended, new imports added."""
    try:
        new_tree = ast.parse(code)
    except SyntaxError as exc:
        raise EditError(
            f"the rewritten code for {path} does not parse: {exc.msg} (line {exc.lineno})"
        ) from None
    try:
        _parsed("\n".join(source.splitlines()))
    except SyntaxError:
        raise EditError(f"{path} does not parse as Python; rewrite it whole instead") from None
    code_lines = code.splitlines()
    lines = source.splitlines()
    imports, definitions = [], []
    for node in new_tree.body:
        text = code_lines[_first_line(node) - 1 : node.end_lineno]
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports += [ln for ln in text if ln.strip() and ln not in lines]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            definitions.append((node.name, text))
        elif all(ln in lines or not ln.strip() for ln in text):
            continue  # a module-level line the file already has (the whole file rewritten)
        else:
            raise EditError(
                f"the answer for {path} holds code outside a function or class (line "
                f"{node.lineno}); rewrite whole functions only"
            )
    if not definitions and not imports:
        return source  # only lines the file has: nothing to change here
    for name, text in definitions:
        lines = _put_definition(lines, name, text)
    if imports:
        at = import_insert_line(lines)
        lines = lines[:at] + imports + lines[at:]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=4)
def _parsed(source: str) -> ast.Module:
    """A module's syntax tree, kept for the next answer: at k = 250 most distinct answers
    rewrite a function of the same few modules, and parsing a 10,000-line module is a quarter
    of a second. The trees are only read."""
    return ast.parse(source)


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _put_definition(lines: list[str], name: str, text: list[str]) -> list[str]:
    tree = _parsed("\n".join(lines))
    spans = [
        (node, 0)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
    ]
    if not spans:  # a method, if exactly one class has it
        spans = [
            (node, node.col_offset)
            for cls in tree.body
            if isinstance(cls, ast.ClassDef)
            for node in cls.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        ]
        if len(spans) > 1:
            raise EditError(f"several classes define {name}(): rewrite the whole class instead")
    if not spans:
        return lines + (["", ""] if lines and lines[-1].strip() else []) + text
    node, indent = spans[0]
    body_indent = len(text[0]) - len(text[0].lstrip())
    shifted = [(" " * indent + ln[body_indent:]) if ln.strip() else "" for ln in text]
    return lines[: _first_line(node) - 1] + shifted + lines[node.end_lineno :]


FORMATS: dict[str, EditFormat] = {
    f.name: f for f in (SearchReplace(), WholeFile(), WholeFunction(), SpanRewrite())
}


def by_name(name: str) -> EditFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(
            f"--edit-format {name}: use {', '.join(FORMATS)} or auto (the model's own default)"
        ) from None
