"""Pure metrics over per-issue sample outcomes: coverage@k, the dataset curve, the exponentiated
power-law fit of the Large Language Monkeys paper, and selection without hidden tests."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


def coverage_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of P(at least one of k samples resolves) from n samples with c
    resolving: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021; Brown et al., 2024)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # The product form avoids huge binomials: prod_{i=n-c+1}^{n} (1 - k/i).
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def dataset_curve(outcomes: Sequence[tuple[int, int]], ks: Sequence[int]) -> list[float]:
    """Mean coverage@k over issues, each given as (n, c); every issue needs n >= max(ks)."""
    return [sum(coverage_at_k(n, c, k) for n, c in outcomes) / len(outcomes) for k in ks]


@dataclass(frozen=True)
class PowerLaw:
    """log(coverage) = a * k**b, with a < 0 and b < 0 on a growing curve."""

    a: float
    b: float

    def coverage(self, k: float) -> float:
        return math.exp(self.a * k**self.b)

    def samples_for(self, target: float) -> float:
        """The k at which the fitted curve reaches `target` (inf when it never does)."""
        if not 0 < target < 1:
            raise ValueError("target coverage must be in (0, 1)")
        if self.a >= 0 or self.b >= 0:
            return math.inf
        return (math.log(target) / self.a) ** (1 / self.b)


def fit_power_law(ks: Sequence[int], coverage: Sequence[float]) -> PowerLaw | None:
    """Least squares on log(-log C) = log(-a) + b log k, which is linear; points at 0 or 1
    carry no information there and are left out. None with fewer than two usable points."""
    points = [
        (math.log(k), math.log(-math.log(c)))
        for k, c in zip(ks, coverage, strict=True)
        if 0 < c < 1
    ]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return PowerLaw(a=-math.exp(my - b * mx), b=b)


DENSE_UP_TO = 300
"""Curves keep every k up to here, then POINTS_PER_DECADE log-spaced ones, and n: their size
follows the samples' orders of magnitude, not the k asked for."""
POINTS_PER_DECADE = 20


def curve_ks(n: int) -> list[int]:
    """The k a curve over n samples per issue is drawn at."""
    ks = set(range(1, min(n, DENSE_UP_TO) + 1)) | set(log_spaced_ks(n))
    k, step = DENSE_UP_TO, 10 ** (1 / POINTS_PER_DECADE)
    while (k := max(k + 1, round(k * step))) < n:
        ks.add(k)
    return sorted(ks)


def log_spaced_ks(n: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to n, and n itself."""
    ks, base = [], 1
    while base <= n:
        ks += [k for k in (base, 2 * base, 5 * base) if k <= n]
        base *= 10
    return sorted(set(ks + [n])) if n >= 1 else []


def majority_vote(shas: Sequence[str | None]) -> str | None:
    """The most frequent valid patch; ties go to the one sampled first."""
    counts = Counter(s for s in shas if s)
    if not counts:
        return None
    best = max(counts.values())
    return next(s for s in shas if s and counts[s] == best)


def first_valid(shas: Sequence[str | None]) -> str | None:
    return next((s for s in shas if s), None)
