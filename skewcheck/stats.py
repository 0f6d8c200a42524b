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


# --- special functions (no scipy): regularised incomplete gamma and beta, Numerical Recipes style

_EPS = 1e-15
_TINY = 1e-300


def _nonzero(x: float) -> float:
    """Lentz's continued fractions divide by these terms: keep them off zero."""
    return _TINY if abs(x) < _TINY else x


def _lentz_step(d: float, c: float, a_term: float, b_term: float) -> tuple[float, float, float]:
    """One modified-Lentz step over the term a/(b + …): the new d and c and the factor for h."""
    d = 1 / _nonzero(b_term + a_term * d)
    c = _nonzero(b_term + a_term / c)
    return d, c, d * c


def _gammainc_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(100000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gammaincc_cf(a: float, x: float) -> float:
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2
        d, c, delta = _lentz_step(d, c, an, b)
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, dof: int) -> float:
    """P(χ²_dof ≥ x)."""
    if x <= 0:
        return 1.0
    a, half = dof / 2.0, x / 2.0
    if half < a + 1:
        return max(0.0, 1.0 - _gammainc_series(a, half))
    return _gammaincc_cf(a, half)


def _betacf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1, a - 1
    c = 1.0
    d = 1 - qab * x / qap
    d = _nonzero(d)
    d = 1 / d
    h = d
    for m in range(1, 100000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d, c, even = _lentz_step(d, c, aa, 1.0)
        h *= even
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d, c, delta = _lentz_step(d, c, aa, 1.0)
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1 - x) / b


def binom_sf(x: int, n: int, p: float) -> float:
    """P(Binomial(n, p) ≥ x)."""
    if x <= 0:
        return 1.0
    if x > n:
        return 0.0
    return betainc(x, n - x + 1, p)


def uniformity_pvalue(counts: np.ndarray) -> float:
    """Pearson χ² test of the counts against equal shares (meaningful for distinct keys)."""
    c = np.asarray(counts, dtype=float)
    k, n = c.size, c.sum()
    if k < 2 or n <= 0:
        return 1.0
    expected = n / k
    chi2 = float(((c - expected) ** 2).sum() / expected)
    return chi2_sf(chi2, k - 1)


def max_share_pvalue(max_count: int, total: int, shards: int) -> float:
    """Tail bound P(max ≥ observed) ≤ k·P(Binomial(N, 1/k) ≥ observed) under uniform routing."""
    if total <= 0 or shards <= 0:
        return 1.0
    return min(1.0, shards * binom_sf(int(max_count), int(total), 1.0 / shards))


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
