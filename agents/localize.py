"""Lexical localisation, hierarchical as Agentless does and cheaper: files (BM25 plus what the
issue names outright: paths, modules, traceback frames, identifiers a file defines), then the
code units (functions, methods, class and module statements) of the top files. No model
call; the gold patch is never read here (`agents.gold_locations` scores the result)."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agents.code_units import Unit, units
from agents.mentions import Frame, Mentions, mentions
from agents.patches import is_test_path

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
SOURCE_SUFFIXES = (".py", ".pyx", ".pyi", ".cfg", ".toml", ".txt", ".rst", ".md")


@lru_cache(maxsize=1 << 17)
def split(ident: str) -> tuple[str, ...]:
    """An identifier's terms: itself and its snake/camel parts, lower-cased, 3+ characters.
    Cached: a repository repeats the same few thousand identifiers millions of times."""
    return tuple(t.lower() for t in {ident, *PARTS.findall(ident)} if len(t) >= 3)


def terms(text: str) -> list[str]:
    """Identifiers and their snake/camel parts, lower-cased, of 3+ characters."""
    return [t for ident in IDENT.findall(text) for t in split(ident)]


def _document(text: str, path: str, wanted: Counter) -> tuple[int, Counter]:
    """A file's length in terms, and the counts of the query's terms in it: all BM25 needs
    (the file's content counted once, its path's terms thrice). Each distinct identifier is
    split once per file, not once per occurrence."""
    counts = Counter(IDENT.findall(text))
    path_terms = terms(path.replace("/", " "))
    length = sum(n * len(split(ident)) for ident, n in counts.items()) + 3 * len(path_terms)
    found: Counter = Counter()
    for ident, n in counts.items():
        for term in split(ident):
            if term in wanted:
                found[term] += n
    for term in path_terms:
        if term in wanted:
            found[term] += 3
    return length, found


NOT_LIBRARY = re.compile(
    r"^(docs?|examples?|benchmarks?|asv_bench|ci|tools|scripts)/|(^|/)(setup|conftest)\.py$"
)
"""Code no issue's fix lives in (Agentless asks its model for such folders; a rule does)."""


def source_files(
    worktree: Path, include_tests: bool = False, library_only: bool = False
) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=worktree, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    return [
        p
        for p in listed
        if p.endswith(".py")
        and (include_tests or not is_test_path(p))
        and not (library_only and NOT_LIBRARY.search(p))
    ]


def rank_files(
    worktree: Path, query: str, limit: int = 20, k1: float = 1.5, b: float = 0.75
) -> list[tuple[str, float]]:
    """BM25 over file contents plus path terms (counted thrice); a file whose path or module
    name the issue mentions outright gets a bonus. The ranking of issue #3 (`--localizer
    bm25`), kept as the baseline the hierarchical one is measured against."""
    texts = {p: (worktree / p).read_text(errors="replace") for p in source_files(worktree)}
    scores = bm25_scores(texts, query, path_terms=True, k1=k1, b=b)
    for path in scores:
        module = path.removesuffix(".py").replace("/", ".")
        if path in query or module in query:
            scores[path] *= 2
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def bm25_scores(
    texts: dict[str, str], query: str, path_terms: bool, k1: float = 1.5, b: float = 0.75
) -> dict[str, float]:
    """Okapi BM25 of each document (name: text) against the query's terms; with
    `path_terms`, a document's name counts thrice as terms of its own."""
    wanted = Counter(terms(query))
    docs = {
        name: _document(text, name if path_terms else "", wanted) for name, text in texts.items()
    }
    if not docs:
        return {}
    avg = (sum(length for length, _ in docs.values()) / len(docs)) or 1
    df = Counter(t for _, found in docs.values() for t in found)
    scores = {}
    for name, (length, doc) in docs.items():
        score = 0.0
        for term, q in wanted.items():
            tf = doc.get(term, 0)
            if tf:
                idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
                score += q * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * (length or 1) / avg))
        scores[name] = score
    return scores


# How much each kind of evidence weighs beside a BM25 score scaled to 1 for the best file
# (tuned on the Lite dev split; NOTES, "Localisation").
WEIGHTS = {"path": 1.0, "frame": 1.0, "module": 0.6, "defines": 0.6}
UNIT_WEIGHTS = {
    "file": 0.5,
    "name": 1.0,
    "class": 0.3,
    "frame": 1.0,
    "class_text": 0.5,
    "class_unit": 0.5,
}
DEFINED = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", re.M)


@dataclass(frozen=True)
class Localisation:
    files: tuple[str, ...]
    """Ranked, best first."""
    units: tuple[Unit, ...]
    """The units of the top files, ranked, best first."""


def localize(
    worktree: Path, query: str, files: int = 10, unit_files: int = 5, limit: int = 20
) -> Localisation:
    """Files ranked by BM25 and what the issue names, then the units of the top
    `unit_files` ranked within them."""
    paths = source_files(worktree, library_only=True)
    texts = {p: (worktree / p).read_text(errors="replace") for p in paths}
    named = mentions(query)
    scores = file_scores(texts, query, named)
    ranked = sorted(scores, key=lambda p: (-scores[p], p))
    best = scores[ranked[0]] if ranked and scores[ranked[0]] > 0 else 1.0
    prior = {p: scores[p] / best for p in ranked[:unit_files]}
    found = rank_units({p: texts[p] for p in prior}, query, named, prior)
    return Localisation(tuple(ranked[:files]), tuple(found[:limit]))


def file_scores(texts: dict[str, str], query: str, named: Mentions) -> dict[str, float]:
    bm25 = bm25_scores(texts, query, path_terms=True)
    top = max(bm25.values(), default=0.0) or 1.0
    paths = list(texts)
    modules = {p: module_name(p) for p in paths}
    evidence = {
        "path": _shared(named.paths, lambda m: _path_matches(paths, m)),
        "frame": _shared([f.path for f in named.frames], lambda m: _path_matches(paths, m)),
        "module": _shared(named.modules, lambda m: _module_matches(modules, m)),
        "defines": _defines(texts, named.identifiers),
    }
    return {
        p: bm25[p] / top + sum(w * min(evidence[k].get(p, 0.0), 2.0) for k, w in WEIGHTS.items())
        for p in paths
    }


def _shared(mentioned, matches) -> dict[str, float]:
    """Each mention's one point, shared by the files `matches(mention)` says it could mean."""
    got: Counter = Counter()
    for mention in mentioned:
        hits = matches(mention)
        for path in hits:
            got[path] += 1.0 / len(hits)
    return dict(got)


def _path_matches(paths: list[str], mentioned: str) -> list[str]:
    mentioned = mentioned.replace("\\", "/").lstrip("./")
    return [
        p
        for p in paths
        if p == mentioned or p.endswith("/" + mentioned) or mentioned.endswith("/" + p)
    ]


def module_name(path: str) -> str:
    dotted = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    for root in ("src.", "lib."):
        dotted = dotted.removeprefix(root)
    return dotted


def _module_matches(names: dict[str, str], dotted: str) -> list[str]:
    """The files a dotted name means (`names`: path -> module name): the module itself, else
    the longest module it is an attribute of (`_pytest.logging.LogCaptureFixture` means
    `_pytest/logging.py`)."""
    exact = [p for p, m in names.items() if m == dotted]
    if exact:
        return exact
    prefixes = [(len(m), p) for p, m in names.items() if dotted.startswith(m + ".")]
    longest = max((n for n, _ in prefixes), default=0)
    return [p for n, p in prefixes if n == longest and "." in names[p]]


def _defines(texts: dict[str, str], identifiers: frozenset[str]) -> dict[str, float]:
    """One point per named identifier, shared by the files that define it."""
    defined = {path: set(DEFINED.findall(text)) & identifiers for path, text in texts.items()}
    return _shared(identifiers, lambda name: [p for p, names in defined.items() if name in names])


def rank_units(
    texts: dict[str, str], query: str, named: Mentions, prior: dict[str, float]
) -> list[Unit]:
    """The units of the given files by BM25 over their own lines, the file's score, and
    whether the issue names the unit (or its class) or a traceback frame lands in it."""
    found = [u for path, text in texts.items() for u in units(path, text) if not _only_dunders(u)]
    lines = {path: text.splitlines() for path, text in texts.items()}
    bodies = {u.key: "\n".join(lines[u.path][u.start - 1 : u.end]) for u in found}
    bm25 = bm25_scores(bodies, query, path_terms=False)
    top = max(bm25.values(), default=0.0) or 1.0
    own = {u.key: bm25[u.key] / top for u in found}
    # a class's own lines (its docstring above all) say what its methods are about: they
    # lift its methods, while the class unit itself is rarely where a fix goes
    lexical = {u.key: own[u.key] + UNIT_WEIGHTS["class_text"] * _class_of(u, own) for u in found}
    for u in found:
        if u.kind == "class":
            lexical[u.key] *= UNIT_WEIGHTS["class_unit"]

    frames = [(f, set(_path_matches(list(texts), f.path))) for f in named.frames]

    def score(unit: Unit) -> float:
        return (
            lexical[unit.key]
            + UNIT_WEIGHTS["file"] * prior.get(unit.path, 0.0)
            + UNIT_WEIGHTS["name"] * _names_unit(unit, named, query)
            + UNIT_WEIGHTS["class"] * _names_class(unit, named)
            + UNIT_WEIGHTS["frame"] * _frame_in(unit, frames)
        )

    scored = {u: score(u) for u in found}
    return sorted(found, key=lambda u: (-scored[u], u.path, u.start))


def _only_dunders(unit: Unit) -> bool:
    """`__all__ = [...]`, `__version__ = ...`: module bookkeeping, never where a fix goes."""
    names = unit.name.replace("..", ",").split(",")
    return unit.kind == "statement" and all(n.startswith("__") and n.endswith("__") for n in names)


def _class_of(unit: Unit, own: dict[str, float]) -> float:
    if unit.kind != "method":
        return 0.0
    return own.get(f"{unit.path}::{unit.name.rsplit('.', 1)[0]}", 0.0)


def _names_unit(unit: Unit, named: Mentions, query: str) -> float:
    last = unit.name.rsplit(".", 1)[-1]
    if last not in named.identifiers:
        return 0.0
    return 1.5 if unit.name in query else 1.0


def _names_class(unit: Unit, named: Mentions) -> float:
    return 1.0 if unit.kind == "method" and unit.name.split(".")[0] in named.identifiers else 0.0


def _frame_in(unit: Unit, frames: list[tuple[Frame, set[str]]]) -> float:
    """1 when a traceback frame's line lies in the unit, 0.5 when a frame names it."""
    best = 0.0
    for frame, files in frames:
        if unit.path not in files:
            continue
        if unit.start <= frame.line <= unit.end:
            best = 1.0
        elif frame.function == unit.name.rsplit(".", 1)[-1]:
            best = max(best, 0.5)
    return best
