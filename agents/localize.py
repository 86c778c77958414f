"""Lexical localisation: rank a repo's source files against an issue's text with BM25."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from pathlib import Path

from agents.patches import is_test_path

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SOURCE_SUFFIXES = (".py", ".pyx", ".pyi", ".cfg", ".toml", ".txt", ".rst", ".md")


def terms(text: str) -> list[str]:
    """Identifiers and their snake/camel parts, lower-cased, of 3+ characters."""
    out = []
    for ident in IDENT.findall(text):
        parts = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", ident)
        out += [t.lower() for t in {ident, *parts} if len(t) >= 3]
    return out


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
    paths = source_files(worktree)
    docs = {}
    for path in paths:
        text = (worktree / path).read_text(errors="replace")
        docs[path] = Counter(terms(text) + terms(path.replace("/", " ")) * 3)
    if not docs:
        return []
    avg = sum(sum(d.values()) for d in docs.values()) / len(docs)
    df = Counter(t for d in docs.values() for t in d)
    wanted = Counter(terms(query))
    scores = {}
    for path, doc in docs.items():
        length = sum(doc.values()) or 1
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
