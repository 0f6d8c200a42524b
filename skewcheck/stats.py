"""Statistics for judging shard balance (no I/O): intervals, the noise floor, the null model of a
random hash of the observed key weights, and the anytime-valid test behind early decisions.

k shards, N requests, c_i requests on shard i. See README "How the gate judges".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# scipy is imported where it is used: it costs ~0.7 s, and most commands (usage errors, --help,
# route, a config check) never reach a distribution function.

Z95 = 1.959963984540054  # two-sided 95%
NULL_TRIALS = 2000  # random hashes drawn per null model: p-values resolve down to 1/2001
NULL_SEED = 0x5CE  # fixed: the same counts always get the same verdict
DENSE_NULL_CELLS = 600_000  # trials × shards (or × tail keys) drawn densely below this; above,
# shards not hit by a heavy key are summarised in closed form (the 200 ms budget at 10^4 shards)
HEAVY_KEYS = 256  # keys modelled one by one in the null; lighter ones form the moment-matched tail
HEAVY_FRACTION = 0.1  # a key is heavy when it carries at least a tenth of a fair shard's load


def wilson_interval(count: np.ndarray | int, total: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a share count/total (vectorised over counts)."""
    c = np.asarray(count, dtype=float)
    if total <= 0:
        return np.zeros_like(c), np.ones_like(c)
    p = c / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * np.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def contenders(shards: int, limit: float) -> int:
    """How many shards can sit at the limit at once: the multiplicity of the max-share test.

    The hottest shard is picked by looking at all k, but under the null (every share ≤ limit) a
    shard far below the limit almost never crosses it: the chance of crossing is convex in the
    share, so the sum over all shards is at most that of 1/limit shards at the limit. For 15%
    that is 7, not k (Bonferroni over 1024 shards would miss a real 20% shard at N = 2000).
    """
    return max(1, min(shards, math.ceil(1.0 / limit - 1e-12)))


def one_sided_z(alpha: float, multiplicity: int) -> float:
    from scipy import stats

    return float(stats.norm.isf(alpha / max(multiplicity, 1)))


def share_log_evidence(count: int | np.ndarray, total: int, limit: float) -> np.ndarray:
    """log of the e-value against "share ≤ limit" after `total` requests with `count` on a shard.

    A uniform mixture over shares above the limit of the binomial likelihood ratio: a
    nonnegative supermartingale under any share ≤ limit, so by Ville's inequality it ever
    reaches 1/α with probability at most α, however often it is looked at (a confidence sequence:
    Howard, Ramdas et al., Ann. Statist. 2021). The live verdict, peeked at every second, may stop
    a run on it at any N.
    """
    from scipy import special

    s = np.asarray(count, dtype=float)
    if limit >= 1.0:
        return np.full_like(s, -np.inf)  # no share exceeds 100%: nothing to prove
    f = total - s
    with np.errstate(divide="ignore"):
        tail = np.log(special.betaincc(s + 1, f + 1, limit))
    return (special.betaln(s + 1, f + 1) + tail - math.log1p(-limit)
            - s * math.log(limit) - f * math.log1p(-limit))


def stddev_ratio(counts: np.ndarray) -> float:
    """Population std of the per-shard counts over their mean (coefficient of variation)."""
    c = np.asarray(counts, dtype=float)
    mean = c.mean() if c.size else 0.0
    return float(c.std() / mean) if mean > 0 else 0.0


def stddev_ratio_floor(shards: int, total: int, key_f2: float) -> float:
    """Expected stddev ratio of a perfect router on this key stream (the mean of the null).

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


def excess_over(ratio: float, reference: float) -> float:
    """The dispersion a reference does not explain: variances add, so sqrt(ratio² − reference²)."""
    if math.isnan(reference):
        return math.nan  # unknown reference: unknown excess, never a silent zero
    return math.sqrt(max(0.0, ratio * ratio - reference * reference))


def expected_max_share(total: int, shards: int) -> float:
    """Blom's approximation of the largest of k uniform shares of distinct keys."""
    if total <= 0 or shards <= 0:
        return 0.0
    if shards == 1:
        return 1.0
    mean = total / shards
    sigma = math.sqrt(total * (1 / shards) * (1 - 1 / shards))
    from scipy import stats

    z = float(stats.norm.ppf((shards - 0.375) / (shards + 0.25)))
    return min(1.0, (mean + sigma * z) / total)


# --- the null model: a random hash of these key weights -------------------------------------------


@dataclass(frozen=True)
class KeyWeights:
    """The key popularity a tally knows in bounded memory: the heavy keys' request counts one by
    one, and the rest as a total with its Σ c_j² (from the F2 sketch)."""

    heavy: np.ndarray  # request counts of the heavy keys
    tail_requests: float
    tail_f2: float

    @classmethod
    def of(cls, counts: list[int], requests: int, key_f2: float, shards: int) -> KeyWeights:
        """Split the heavy-hitter counts into heavy keys and a tail that matches the rest."""
        ordered = np.sort(np.asarray(counts, dtype=float))[::-1]
        cut = max(1.0, HEAVY_FRACTION * requests / max(shards, 1))
        heavy = ordered[ordered >= cut][:HEAVY_KEYS]
        tail = max(0.0, requests - float(heavy.sum()))
        if tail <= 0:
            return cls(heavy, 0.0, 0.0)
        tail_f2 = key_f2 - float((heavy ** 2).sum())
        return cls(heavy, tail, min(max(tail_f2, tail), tail * tail))  # c_j ≥ 1 and Σ c_j² ≤ (Σ c_j)²


@dataclass(frozen=True)
class NullModel:
    """Max share and stddev ratio of NULL_TRIALS random hashes of the same key weights."""

    shards: int
    max_share: np.ndarray  # per trial, sorted
    stddev_ratio: np.ndarray  # per trial, sorted

    def p_max_share(self, observed: float) -> float:
        """P(a random hash puts at least this share on one shard), Monte Carlo with the +1 rule."""
        return _upper_p(self.max_share, observed)

    def p_stddev_ratio(self, observed: float) -> float:
        return _upper_p(self.stddev_ratio, observed)

    def ratio_quantile(self, level: float) -> float:
        return float(np.quantile(self.stddev_ratio, level))

    def max_share_quantile(self, level: float) -> float:
        return float(np.quantile(self.max_share, level))


def _upper_p(sorted_sample: np.ndarray, observed: float) -> float:
    # a hair of tolerance: the observed statistic of an exact null draw must count as reached
    beyond = sorted_sample.size - np.searchsorted(sorted_sample, observed * (1 - 1e-9), side="left")
    return float((1 + beyond) / (1 + sorted_sample.size))


def null_model(shards: int, weights: KeyWeights, trials: int = NULL_TRIALS,
               seed: int = NULL_SEED) -> NullModel:
    """Hash the keys at random, `trials` times: each heavy key to a uniform shard, the tail as
    moment-matched equal keys, each to a uniform shard, and read off each draw's max share and
    stddev ratio. The total is the observed one in every draw (a random total would widen the null
    wherever a heavy key dominates)."""
    rng = np.random.default_rng(seed)
    k = shards
    heavy = weights.heavy
    keys, unit = 0, 0.0
    if weights.tail_requests > 0:
        keys = max(1, round(weights.tail_requests ** 2 / weights.tail_f2))  # equal keys: same total, F2
        unit = weights.tail_requests / keys
    if k == 1:
        return NullModel(k, np.ones(trials), np.zeros(trials))
    if trials * k <= DENSE_NULL_CELLS:
        loads = np.zeros((trials, k))
        rows = (np.arange(trials) * k)[:, None]
        if heavy.size:
            where = rng.integers(0, k, size=(trials, heavy.size)) + rows
            loads += np.bincount(where.ravel(), weights=np.tile(heavy, trials),
                                 minlength=trials * k).reshape(trials, k)
        if keys and trials * keys <= DENSE_NULL_CELLS:  # every tail key hashed: exact
            where = rng.integers(0, k, size=(trials, keys)) + rows
            loads += unit * np.bincount(where.ravel(), minlength=trials * k).reshape(trials, k)
        elif keys:  # very many keys: Poisson counts scaled to the exact total (relative error 1/√keys)
            counts = rng.poisson(keys / k, size=(trials, k)).astype(float)
            loads += counts * (weights.tail_requests / np.maximum(counts.sum(axis=1), 1.0))[:, None]
        total = loads.sum(axis=1)
        top = loads.max(axis=1)
        std = loads.std(axis=1)
    else:
        top, total, squares = _sparse_draws(rng, k, heavy, keys, unit, trials)
        std = np.sqrt(np.maximum(squares / k - (total / k) ** 2, 0.0))
    mean = total / k
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, top / total, 0.0)
        ratio = np.where(mean > 0, std / mean, 0.0)
    return NullModel(k, np.sort(share), np.sort(ratio))


def _sparse_draws(rng: np.random.Generator, k: int, heavy: np.ndarray, keys: int, unit: float,
                  trials: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trial: the top load, the total and Σ load² over k shards, drawing only the shards a heavy
    key lands on. The tail keys on the other shards (thousands of them) are summarised: their max
    from the distribution of the largest of that many Poisson counts, and their Σ count² from its
    normal approximation given their total (the CLT over thousands of shards)."""
    h = heavy.size
    top = np.zeros(trials)
    squares = np.zeros(trials)
    touched = np.zeros(trials)
    on_touched = np.zeros(trials)  # tail keys that landed on a heavy key's shard
    lam = keys / k
    if h:
        where = rng.integers(0, k, size=(trials, h))
        order = np.argsort(where, axis=1, kind="stable")
        shard = np.take_along_axis(where, order, axis=1)
        first = np.ones((trials, h), dtype=bool)
        first[:, 1:] = shard[:, 1:] != shard[:, :-1]
        group = np.cumsum(first, axis=1) - 1 + (np.arange(trials) * h)[:, None]
        load = np.bincount(group.ravel(), weights=heavy[order].ravel(), minlength=trials * h)
        load = load.reshape(trials, h)
        touched = first.sum(axis=1).astype(float)
        if keys:
            live = np.arange(h)[None, :] < touched[:, None]
            extra = np.where(live, rng.poisson(lam, size=(trials, h)), 0)
            on_touched = extra.sum(axis=1).astype(float)
            load = load + unit * extra
        top = load.max(axis=1)
        squares = (load * load).sum(axis=1)
    if keys:
        others = k - touched
        rest = np.maximum(keys - on_touched, 0.0)  # the tail's total is fixed: the rest is elsewhere
        rate = rest / np.maximum(others, 1.0)
        from scipy import stats

        u = rng.random(trials)
        quantile = np.exp(np.log(np.maximum(u, 1e-300)) / np.maximum(others, 1.0))
        top = np.maximum(top, unit * stats.poisson.ppf(quantile, np.maximum(rate, 1e-12)))
        # Σ X² of `others` Poisson(rate) counts given Σ X = rest: E = rest·(1 + rate) for the
        # multinomial, Var ≈ 2·others·rate² (the conditional normal of the pair)
        mean_sq = rest * (1.0 + rate) - rest / np.maximum(others, 1.0)
        sd_sq = np.sqrt(np.maximum(2.0 * others * rate * rate * (1 - 1 / np.maximum(others, 1.0)), 0.0))
        squares = squares + unit * unit * np.maximum(mean_sq + sd_sq * rng.standard_normal(trials), rest)
    total = heavy.sum() + unit * keys
    return top, np.full(trials, total), squares
