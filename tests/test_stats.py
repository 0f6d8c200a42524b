"""Special functions and intervals against values from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skewcheck import stats


def _binom_sf_exact(x: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x, n + 1))


@pytest.mark.parametrize("x,n,p", [(3, 10, 0.5), (0, 5, 0.3), (7, 20, 0.1), (40, 200, 0.15), (201, 200, 0.1)])
def test_binomial_tail_matches_the_sum(x: int, n: int, p: float) -> None:
    assert stats.binom_sf(x, n, p) == pytest.approx(_binom_sf_exact(x, n, p), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("x,dof,expected", [(3.841458820694124, 1, 0.05), (123.22522, 99, 0.05),
                                             (2.0, 2, math.exp(-1.0)), (0.0, 5, 1.0)])
def test_chi2_survival(x: float, dof: int, expected: float) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(expected, rel=1e-4)


def test_wilson_interval_contains_the_share_and_narrows_with_n() -> None:
    lo1, hi1 = stats.wilson_interval(np.array([20]), 100)
    lo2, hi2 = stats.wilson_interval(np.array([2000]), 10_000)
    assert lo1[0] < 0.2 < hi1[0] and lo2[0] < 0.2 < hi2[0]
    assert (hi2 - lo2)[0] < (hi1 - lo1)[0] / 5
    assert stats.wilson_interval(np.array([20]), 100)[0][0] == pytest.approx(0.1334, abs=1e-3)


def test_floor_matches_the_reference_values() -> None:
    # distinct keys: (k−1)/N; 127 equally used keys over 100 shards: sqrt(99/127) ≈ 0.88
    assert stats.stddev_ratio_floor(100, 1000, 1000) == pytest.approx(math.sqrt(99 / 1000))
    n = 127_000
    assert stats.stddev_ratio_floor(100, n, 127 * 1000.0**2) == pytest.approx(0.8829, abs=1e-3)


def test_expected_max_share_is_what_uniform_sampling_gives() -> None:
    rng = np.random.default_rng(1)
    maxima = rng.multinomial(100_000, np.full(100, 0.01), size=400).max(axis=1) / 100_000
    assert stats.expected_max_share(100_000, 100) == pytest.approx(float(np.mean(maxima)), rel=0.02)


def test_excess_is_zero_at_or_below_the_floor() -> None:
    assert stats.stddev_excess(0.5, 0.9) == 0.0
    assert stats.stddev_excess(1.0, 0.6) == pytest.approx(0.8)
