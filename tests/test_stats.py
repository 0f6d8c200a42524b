"""Intervals and noise floors against values from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skewcheck import stats


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


def test_excess_is_zero_at_or_below_the_reference() -> None:
    assert stats.excess_over(0.5, 0.9) == 0.0
    assert stats.excess_over(1.0, 0.6) == pytest.approx(0.8)
