"""Statistics for judging shard balance (no I/O, no dependencies beyond numpy).

k shards, N requests, c_i requests on shard i. See README "How the gate judges".
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95%


def wilson_interval(count: np.ndarray | int, total: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval for a share count/total (vectorised over counts)."""
    c = np.asarray(count, dtype=float)
    if total <= 0:
        return np.zeros_like(c), np.ones_like(c)
    p = c / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * np.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def simultaneous_z(shards: int, level: float = 0.95) -> float:
    """z for a two-sided interval that holds for all k shards at once (Bonferroni).

    The hottest shard is picked after looking at all k, so its plain 95% interval would be
    too narrow: with 8 shards and a few hundred requests a healthy run would block often.
    """
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - (1 - level) / (2 * max(shards, 1)))


def stddev_ratio(counts: np.ndarray) -> float:
    """Population std of the per-shard counts over their mean (coefficient of variation)."""
    c = np.asarray(counts, dtype=float)
    mean = c.mean() if c.size else 0.0
    return float(c.std() / mean) if mean > 0 else 0.0


def stddev_ratio_floor(shards: int, total: int, key_f2: float) -> float:
    """Expected stddev ratio of a perfect router on this key stream.

    E[ratio²] = (k−1)·Σ_j c_j²/N², where c_j is the request count of key j: distinct keys give
    (k−1)/N, 127 equally used keys give (k−1)/127 — both with no routing fault at all.
    """
    if total <= 0 or shards <= 1:
        return 0.0
    return math.sqrt((shards - 1) * key_f2 / (total * total))  # NaN key_f2 (unknown) stays NaN


def window_floor(shards: int, window_total: int, run_total: int, run_f2: float) -> float:
    """Floor for a window of a run: (k−1)·(1/n + Σp²), key popularity Σp² estimated from the run."""
    if window_total <= 0 or shards <= 1:
        return 0.0
    sum_p2 = (run_f2 - run_total) / (run_total * (run_total - 1)) if run_total > 1 else 0.0
    return math.sqrt((shards - 1) * (1.0 / window_total + max(0.0, sum_p2)))


def stddev_excess(ratio: float, floor: float) -> float:
    """The dispersion the noise floor does not explain: variances add, so sqrt(ratio² − floor²)."""
    if math.isnan(floor):
        return math.nan  # unknown floor: unknown excess, never a silent zero
    return math.sqrt(max(0.0, ratio * ratio - floor * floor))


def expected_max_share(total: int, shards: int) -> float:
    """Blom's approximation of the largest of k uniform shares (what noise alone gives)."""
    if total <= 0 or shards <= 0:
        return 0.0
    if shards == 1:
        return 1.0
    from statistics import NormalDist

    mean = total / shards
    sigma = math.sqrt(total * (1 / shards) * (1 - 1 / shards))
    z = NormalDist().inv_cdf((shards - 0.375) / (shards + 0.25))
    return min(1.0, (mean + sigma * z) / total)
