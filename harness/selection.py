"""Choosing the one patch to ship without the hidden tests (issue #16, its first part).

A selector sees what a deployer has: for each sample, in sample order, the sha of its
normalised patch (None when it made no patch, did not apply, or the integrity screen set it
aside), its semantic key, how many of the repo's own tests near its edits it broke
(`sandbox/regression.py`), and how many of the model-written tests that reproduce the issue
it passes (`sandbox/reproduction.py`). It never sees an instance, a verdict or a test: the scoring
below looks at which patches resolve only after the choice is made, and
`tests/test_selection.py` checks that this module reads nothing hidden.

selection@k is the chance that the patch a selector picks from k samples resolves, estimated
as the mean over random k-subsets of each issue's samples (the same subsets for every
selector), with the spread of that mean over the rounds.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import random
import re
import statistics
import textwrap
import tokenize
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from harness import metrics


class Sample(NamedTuple):
    """One sample as a selector sees it."""

    sha: str | None
    """Its normalised patch; None when it gave no usable patch."""
    key: str | None = None
    """The semantic key of that patch."""
    strikes: int | None = None
    """Tests of the repo near its edits that it broke; None: unknown (`harness signals` not
    run, or no test near the edit)."""
    score: int | None = None
    """Model-written reproducing tests it passes; None: unknown (none reproduces, not run)."""
    judged: int | None = None
    """The model judge's votes for it; None: not among the patches the judge compared."""


Selector = Callable[[Sequence[Sample]], str | None]

_SPACE = re.compile(r"[ \t]+")


def semantic_key(patch: str) -> str:
    """The patch as Python sees it: each run of removed or added lines is compared by its
    syntax tree when it parses on its own (comments, blank lines, line breaks, brackets and
    quote styles then do not matter), else line by line without comments and spacing. Two
    samples that make the same change in different words hash alike. A run keeps its
    indentation (it places the code in its block) and string literals their text."""
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError:
        parsed = []
    files = sorted(
        [pf.path, [_block(run) for run in _runs(pf, "-")], [_block(run) for run in _runs(pf, "+")]]
        for pf in parsed
    )
    text = json.dumps(files) if files else patch
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _runs(patched_file, sign: str) -> list[list[str]]:
    """The file's consecutive removed (or added) lines, run by run."""
    runs: list[list[str]] = []
    for hunk in patched_file:
        last = None
        for line in hunk:
            if line.line_type != sign:
                last = None
                continue
            if last is None:
                runs.append([])
            runs[-1].append(line.value)
            last = line
    return runs


def _block(lines: list[str]) -> list[str]:
    """One run: its indentation and syntax tree when it parses alone, else each line's code
    ('' lines left out)."""
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    body = textwrap.dedent(text.expandtabs(4))
    if body.strip():
        try:
            tree = ast.parse(body)
            dumped = ast.dump(tree) if tree.body else None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            dumped = None  # a sample is adversarial input: `a+a+...` 100,000 deep too
        if dumped is not None:
            first = next(line for line in text.expandtabs(4).splitlines() if line.strip())
            return [f"{len(first) - len(first.lstrip(' '))}:{dumped}"]
    return [c for line in lines if (c := _code(line))]


def _code(line: str) -> str:
    """One line without its comment and with its spacing collapsed; '' when nothing is left.
    Half a statement (an open bracket) keeps the tokens read before the line ran out; an
    unclosed string keeps its text."""
    body = line.rstrip("\n").expandtabs(4)
    indent = len(body) - len(body.lstrip(" "))
    tokens = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(body.lstrip(" ") + "\n").readline):
            tokens.append(token)
    except tokenize.TokenError as exc:
        if "string" in str(exc):  # an unclosed (triple-quoted) string: its text counts
            return " " * indent + _SPACE.sub(" ", body.strip())
        # else an open bracket at the end of the line: what came before it stands
    except (IndentationError, SyntaxError):
        return " " * indent + _SPACE.sub(" ", body.strip())
    kept = [t.string for t in tokens if t.type not in _NOISE]
    if any(t.type == tokenize.ERRORTOKEN for t in tokens):
        return " " * indent + _SPACE.sub(" ", body.strip())  # an unclosed string
    return " " * indent + " ".join(kept) if kept else ""


_NOISE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def first_valid(samples: Sequence[Sample]) -> str | None:
    return metrics.first_valid([s.sha for s in samples])


def vote(samples: Sequence[Sample]) -> str | None:
    """The most frequent patch; ties go to the one sampled first."""
    return metrics.majority_vote([s.sha for s in samples])


def semantic_vote(samples: Sequence[Sample]) -> str | None:
    """Votes pooled over patches with the same semantic key; the earliest patch of the
    winning key is shipped."""
    winner = metrics.majority_vote([s.key if s.sha else None for s in samples])
    return next((s.sha for s in samples if s.sha and s.key == winner), None)


def regression_vote(samples: Sequence[Sample]) -> str | None:
    """The vote among patches that broke none of the repo's tests near their edits; failing
    that, among those not known to break any; failing that, among all."""
    valid = [s for s in samples if s.sha]
    pool = [s for s in valid if s.strikes == 0] or [s for s in valid if s.strikes is None] or valid
    return vote(pool)


def reproduction_vote(samples: Sequence[Sample]) -> str | None:
    """Among patches whose reproduction score is known, those that pass the most reproducing
    tests (at least one), by regression vote; when none passes any, the regression vote over
    all (as CodeMonkeys and Agentless use model-written tests before their vote)."""
    scored = [s for s in samples if s.sha and s.score is not None]
    best = max((s.score for s in scored), default=0)
    return regression_vote([s for s in scored if s.score == best] if best else samples)


def judge_vote(samples: Sequence[Sample]) -> str | None:
    """The patch the model judge voted for most among those it compared (`harness signals
    --judge`: the top few of all the issue's samples by reproduction score, strikes and
    votes), ties by reproduction vote; the reproduction vote when none of them is here."""
    judged = [s for s in samples if s.sha and s.judged is not None]
    best = max((s.judged for s in judged), default=0)
    return reproduction_vote([s for s in judged if s.judged == best] if best else samples)


SELECTORS: dict[str, Selector] = {
    "first-valid": first_valid,
    "vote": vote,
    "semantic-vote": semantic_vote,
    "regression-vote": regression_vote,
    "reproduction-vote": reproduction_vote,
    "judge": judge_vote,
}


def selector(name: str) -> Selector:
    from harness.errors import UserError

    if name not in SELECTORS:
        raise UserError(f"--selector {name}: use one of {', '.join(SELECTORS)}")
    return SELECTORS[name]


def selection_curves(
    issues: Sequence[tuple[Sequence[Sample], frozenset[str]]],
    ks: Sequence[int],
    rounds: int = 32,
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Per selector: for each k, the mean over `rounds` random k-subsets (sample order kept)
    of the share of issues whose chosen patch is in that issue's resolving set, and the
    standard deviation of that share over the rounds. An issue with fewer than k samples uses
    all it has; at k = all samples one round is exact."""
    rng = random.Random(seed)
    out = {name: {"k": list(ks), "mean": [], "spread": []} for name in SELECTORS}
    absent = {id(samples): _absent(samples) for samples, _ in issues}
    for k in ks:
        full = all(len(samples) <= k for samples, _ in issues)
        shares: dict[str, list[float]] = {name: [] for name in SELECTORS}
        for _ in range(1 if full else rounds):
            hits = Counter()
            for samples, resolving in issues:
                if not resolving:
                    continue  # nothing to pick right: every selector scores 0 there
                subset = samples
                if len(samples) > k:
                    subset = [samples[i] for i in sorted(rng.sample(range(len(samples)), k))]
                for name, pick in every_pick(subset, absent[id(samples)]).items():
                    hits[name] += pick in resolving
            for name in SELECTORS:
                shares[name].append(hits[name] / max(len(issues), 1))
        for name in SELECTORS:
            out[name]["mean"].append(statistics.fmean(shares[name]))
            out[name]["spread"].append(statistics.pstdev(shares[name]))
    return out


FALLS_BACK = {
    "reproduction-vote": ("score", "regression-vote"),
    "judge": ("judged", "reproduction-vote"),
}
"""A selector that, when no sample of the issue has its signal, picks what another does."""


def _absent(samples: Sequence[Sample]) -> frozenset[str]:
    """The selectors whose signal no sample of the issue has."""
    return frozenset(
        name
        for name, (field, _) in FALLS_BACK.items()
        if all(getattr(s, field) is None for s in samples)
    )


def every_pick(
    subset: Sequence[Sample], absent: frozenset[str] | None = None
) -> dict[str, str | None]:
    """Every selector's pick; one without its signal (`absent`: of the whole issue, found
    here when not given) is its fallback's, not computed again (the same patch, as the
    selector's own code would find: a test checks it)."""
    absent = _absent(subset) if absent is None else absent
    picks: dict[str, str | None] = {}
    for name, choose in SELECTORS.items():
        picks[name] = picks[FALLS_BACK[name][1]] if name in absent else choose(subset)
    return picks
