"""The estimator against brute force, the fit against known parameters, and selection."""

import itertools
import math
import random

import pytest

from harness.metrics import (
    PowerLaw,
    coverage_at_k,
    dataset_curve,
    first_valid,
    fit_power_law,
    log_spaced_ks,
    majority_vote,
)


def brute_force(n: int, c: int, k: int) -> float:
    """The share of all k-subsets of the n samples that contain a resolving one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_estimator_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert coverage_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_estimator_edges_and_large_n():
    assert coverage_at_k(250, 0, 250) == 0.0
    assert coverage_at_k(250, 1, 250) == 1.0
    assert coverage_at_k(250, 1, 1) == pytest.approx(1 / 250)
    assert 0 < coverage_at_k(10_000, 3, 100) < 1
    with pytest.raises(ValueError):
        coverage_at_k(5, 6, 1)


def test_dataset_curve_is_the_mean_and_monotone():
    outcomes = [(10, 0), (10, 1), (10, 5), (10, 10)]
    curve = dataset_curve(outcomes, range(1, 11))
    assert curve[0] == pytest.approx((0 + 0.1 + 0.5 + 1) / 4)
    assert curve[-1] == pytest.approx(0.75)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(curve))


@pytest.mark.parametrize("a,b", [(-1.2, -0.3), (-3.0, -0.6), (-0.4, -0.15)])
def test_fit_recovers_known_parameters(a, b):
    truth = PowerLaw(a, b)
    ks = log_spaced_ks(250)
    fitted = fit_power_law(ks, [truth.coverage(k) for k in ks])
    assert fitted.a == pytest.approx(a, rel=1e-9) and fitted.b == pytest.approx(b, rel=1e-9)


def test_fit_under_noise_and_extrapolation():
    rng = random.Random(0)
    truth = PowerLaw(-2.0, -0.4)
    ks = list(range(1, 101))
    noisy = [min(0.999, truth.coverage(k) * (1 + rng.uniform(-0.01, 0.01))) for k in ks]
    fitted = fit_power_law(ks, noisy)
    assert fitted.a == pytest.approx(-2.0, rel=0.1) and fitted.b == pytest.approx(-0.4, rel=0.1)
    k90 = truth.samples_for(0.9)
    assert truth.coverage(k90) == pytest.approx(0.9)
    assert math.isinf(PowerLaw(-1.0, 0.2).samples_for(0.9))
    assert fit_power_law([1, 2], [0.0, 1.0]) is None


def test_log_spaced_ks():
    assert log_spaced_ks(250) == [1, 2, 5, 10, 20, 50, 100, 200, 250]
    assert log_spaced_ks(1) == [1]


def test_selection_without_hidden_tests():
    assert majority_vote(["a", None, "b", "b", "a", "b"]) == "b"
    assert majority_vote(["a", "b", "b", "a"]) == "a"  # tie: sampled first
    assert majority_vote([None, None]) is None
    assert first_valid([None, "x", "y"]) == "x"
