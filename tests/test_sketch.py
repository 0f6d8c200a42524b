"""Heavy hitters and the F2 estimate: bounded memory with known error."""

from __future__ import annotations

import numpy as np

from skewcheck.sketch import HeavyHitters, estimate_f2, kth_largest


def test_heavy_hitters_find_hot_keys_within_the_error_bound() -> None:
    rng = np.random.default_rng(3)
    keys = np.concatenate([np.full(5000, 42), np.full(3000, 7), rng.integers(1000, 10**9, 92_000)])
    rng.shuffle(keys)
    hh = HeavyHitters(capacity=32)
    for k in keys.tolist():
        hh.add(k)
    top = dict(hh.top(2))
    assert set(top) == {42, 7}
    assert hh.error <= len(keys) / 33
    assert 5000 - hh.error <= top[42] <= 5000 and 3000 - hh.error <= top[7] <= 3000
    assert len(hh.counts) <= 2 * 32  # memory bounded by capacity, not by 92,000 distinct keys


def test_batch_and_merge_agree_with_the_per_key_path() -> None:
    rng = np.random.default_rng(4)
    keys = np.concatenate([np.full(4000, 9), rng.integers(0, 10**6, 20_000)])
    rng.shuffle(keys)
    a, b, whole = HeavyHitters(16), HeavyHitters(16), HeavyHitters(16)
    a.add_many(keys[:12_000])
    b.add_many(keys[12_000:])
    a.merge(b)
    whole.add_many(keys)
    assert a.total == whole.total == len(keys)
    assert a.top(1)[0][0] == whole.top(1)[0][0] == 9
    assert 4000 - a.error <= a.top(1)[0][1] <= 4000


def _buckets(key_counts: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.bincount(rng.integers(0, 4096, key_counts.size), weights=key_counts, minlength=4096).astype(np.int64)


def test_f2_estimate_for_distinct_keys_and_for_few_keys() -> None:
    distinct = np.ones(200_000)
    assert estimate_f2(_buckets(distinct, 1), 200_000) == pytest_approx(200_000, 0.1)
    few = np.full(127, 1000.0)
    assert estimate_f2(_buckets(few, 2), 127_000) == pytest_approx(127 * 1000.0**2, 0.1)


def pytest_approx(value: float, rel: float):
    import pytest

    return pytest.approx(value, rel=rel)


def test_kth_largest_matches_a_sort_on_flat_and_skewed_counts() -> None:
    rng = np.random.default_rng(11)
    cases = [np.ones(5000, dtype=np.int64), np.minimum(rng.zipf(1.3, 3000), 3000), rng.zipf(1.3, 3000), rng.integers(1, 4, 700)]
    cases += [rng.integers(1, int(rng.integers(2, 60)), int(rng.integers(1, 400))) for _ in range(300)]
    for counts in cases:
        for k in {1, 65, len(counts)} | {int(rng.integers(1, len(counts) + 1))}:
            if k <= len(counts):
                assert kth_largest(counts, k) == int(np.sort(counts)[-k])
