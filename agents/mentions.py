"""What an issue names outright: file paths, dotted module names, traceback frames and code
identifiers. About half of Lite's issues name the file to edit (Agentless v1, §5.1); these
are the strongest evidence a lexical localiser has, stronger than any term's frequency."""

from __future__ import annotations

import re
from dataclasses import dataclass

PY_FRAME = re.compile(r'File "([^"\n]+\.py)", line (\d+), in ([\w<>]+)')
PYTEST_FRAME = re.compile(r"([\w./\\-]+\.py):(\d+)(?::\s*in\s+(\w+))?")
PATH = re.compile(r"(?<![\w.])((?:[\w-]+/)*[\w-]+\.py)\b")
DOTTED = re.compile(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\b")
BACKTICKED = re.compile(r"`{1,3}([^`]+?)`{1,3}", re.S)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
PROSE = frozenset(
    "the and for with this that from not are was but None True False self cls def class "
    "return import print assert raise except lambda yield else elif while".split()
)


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    function: str | None


@dataclass(frozen=True)
class Mentions:
    paths: tuple[str, ...]
    modules: tuple[str, ...]
    frames: tuple[Frame, ...]
    identifiers: frozenset[str]
    """Names written as code: in backticks or code blocks, called, dotted, snake_case or
    CamelCase. Plain words ("format", "error") are left to BM25."""


def mentions(text: str) -> Mentions:
    frames = [Frame(p, int(n), f) for p, n, f in PY_FRAME.findall(text)]
    frames += [Frame(p, int(n), f or None) for p, n, f in PYTEST_FRAME.findall(text)]
    paths = [p for p in PATH.findall(text.replace("\\", "/"))]
    dotted = [d for d in DOTTED.findall(text) if not d.endswith(".py")]
    return Mentions(
        tuple(dict.fromkeys(p.lstrip("./") for p in paths)),
        tuple(dict.fromkeys(d for d in dotted if not _is_filename_or_version(d))),
        tuple(dict.fromkeys(frames)),
        frozenset(_code_identifiers(text, dotted)),
    )


def _is_filename_or_version(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1] in ("py", "txt", "rst", "cfg", "toml", "html", "org")


def _code_identifiers(text: str, dotted: list[str]) -> set[str]:
    code = " ".join(BACKTICKED.findall(text))
    found = set(IDENT.findall(code)) | set(CALLED.findall(text))
    found |= {part for d in dotted for part in d.split(".")}
    for ident in IDENT.findall(text):
        if "_" in ident.strip("_") or _is_camel(ident):
            found.add(ident)
    return {i for i in found if len(i) >= 3 and i not in PROSE}


def _is_camel(ident: str) -> bool:
    return bool(re.search(r"[a-z][A-Z]", ident)) or bool(re.match(r"[A-Z][a-z]+[A-Z]", ident))
