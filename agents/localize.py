"""Lexical localisation: rank a repo's source files against an issue's text with BM25."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from functools import lru_cache
from pathlib import Path

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


def source_files(worktree: Path, include_tests: bool = False) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=worktree, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    return [p for p in listed if p.endswith(".py") and (include_tests or not is_test_path(p))]


def rank_files(
    worktree: Path, query: str, limit: int = 20, k1: float = 1.5, b: float = 0.75
) -> list[tuple[str, float]]:
    """BM25 over file contents plus path terms (counted thrice); a file whose path or module
    name the issue mentions outright gets a bonus."""
    wanted = Counter(terms(query))
    docs = {
        path: _document((worktree / path).read_text(errors="replace"), path, wanted)
        for path in source_files(worktree)
    }
    if not docs:
        return []
    avg = sum(length for length, _ in docs.values()) / len(docs)
    df = Counter(t for _, found in docs.values() for t in found)
    scores = {}
    for path, (length, doc) in docs.items():
        length = length or 1
        score = 0.0
        for term, q in wanted.items():
            tf = doc.get(term, 0)
            if tf:
                idf = math.log(1 + (len(docs) - df[term] + 0.5) / (df[term] + 0.5))
                score += q * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        module = path.removesuffix(".py").replace("/", ".")
        if path in query or module in query:
            score *= 2
        scores[path] = score
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
