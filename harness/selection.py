"""Choosing the one patch to ship without the hidden tests (issue #16, its first part).

A selector sees what a deployer has: for each sample, in sample order, the sha of its
normalised patch (None when it made no patch, did not apply, or the integrity screen set it
aside), its semantic key, and how many of the repo's own tests near its edits it broke
(`sandbox/regression.py`). It never sees an instance, a verdict or a test: the scoring
below looks at which patches resolve only after the choice is made, and
`tests/test_selection.py` checks that this module reads nothing hidden.

selection@k is the chance that the patch a selector picks from k samples resolves, estimated
as the mean over random k-subsets of each issue's samples (the same subsets for every
selector), with the spread of that mean over the rounds.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import statistics
import tokenize
from collections import Counter
from collections.abc import Callable, Sequence

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from harness import metrics

Sample = tuple[str | None, str | None, int | None]
"""(patch sha, semantic key, regression strikes) of one sample: sha and key None when it gave
no usable patch; strikes None when unknown (`harness signals` not run, or no test near the
edit)."""
Selector = Callable[[Sequence[Sample]], str | None]

_SPACE = re.compile(r"[ \t]+")


def semantic_key(patch: str) -> str:
    """The patch with comments, blank lines and spacing inside lines left out: two samples
    that make the same change in different words hash alike. Lines keep their indentation
    (it is Python's syntax) and string literals are untouched."""
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError:
        parsed = []
    files = sorted(
        [
            pf.path,
            [c for line in _lines(pf) if line.is_removed and (c := _code(line.value))],
            [c for line in _lines(pf) if line.is_added and (c := _code(line.value))],
        ]
        for pf in parsed
    )
    text = json.dumps(files) if files else patch
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _lines(patched_file):
    return [line for hunk in patched_file for line in hunk]


def _code(line: str) -> str:
    """One line without its comment and with its spacing collapsed; '' when nothing is left."""
    body = line.rstrip("\n").expandtabs(4)
    indent = len(body) - len(body.lstrip(" "))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(body.lstrip(" ") + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = None  # half a statement (an open bracket or string): keep its text
    if tokens is not None:
        kept = [t.string for t in tokens if t.type not in _NOISE]
        return " " * indent + " ".join(kept) if kept else ""
    return " " * indent + _SPACE.sub(" ", body.strip())


_NOISE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def first_valid(samples: Sequence[Sample]) -> str | None:
    return metrics.first_valid([s[0] for s in samples])


def vote(samples: Sequence[Sample]) -> str | None:
    """The most frequent patch; ties go to the one sampled first."""
    return metrics.majority_vote([s[0] for s in samples])


def semantic_vote(samples: Sequence[Sample]) -> str | None:
    """Votes pooled over patches with the same semantic key; the earliest patch of the
    winning key is shipped."""
    winner = metrics.majority_vote([s[1] if s[0] else None for s in samples])
    return next((s[0] for s in samples if s[0] and s[1] == winner), None)


def regression_vote(samples: Sequence[Sample]) -> str | None:
    """The vote among patches that broke none of the repo's tests near their edits; failing
    that, among those not known to break any; failing that, among all."""
    valid = [s for s in samples if s[0]]
    pool = [s for s in valid if s[2] == 0] or [s for s in valid if s[2] is None] or valid
    return vote(pool)


SELECTORS: dict[str, Selector] = {
    "first-valid": first_valid,
    "vote": vote,
    "semantic-vote": semantic_vote,
    "regression-vote": regression_vote,
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
                for name, choose in SELECTORS.items():
                    hits[name] += choose(subset) in resolving
            for name in SELECTORS:
                shares[name].append(hits[name] / max(len(issues), 1))
        for name in SELECTORS:
            out[name]["mean"].append(statistics.fmean(shares[name]))
            out[name]["spread"].append(statistics.pstdev(shares[name]))
    return out
