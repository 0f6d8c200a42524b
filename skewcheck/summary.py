"""Derived numbers, computed on demand from a tally's counts — never per request.

Pure functions of counts: the same code summarises a live Locust run, a sidecar, a plan and a
saved result file. Besides shares, QPS and the stddev ratio, a summary holds the null model —
what a random hash of these same key weights would give (skewcheck.stats.null_model) — which the
gate judges every router against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from skewcheck import stats
from skewcheck.latency import LatencySummary
from skewcheck.sketch import estimate_f2
from skewcheck.timeline import Timeline

REFERENCE_ROUTER = "murmur3"  # the well-mixed hash shown beside the primary for comparison
# a key listed as hot carries at least this share: a key of 1% alone can't push a shard past 15%,
# but a few of them colliding can, and below it a test's keys are its population, not hot keys
NOTABLE_KEY_SHARE = 0.01
# …and at least twice the mean key's share: 127 equally used test accounts are a population, none
# of them hot, even when sampling puts one above 1%
NOTABLE_OVER_MEAN = 2.0


@dataclass(frozen=True)
class RouterSummary:
    router: str
    shards: int
    requests: int
    counts: np.ndarray
    shares: np.ndarray
    share_low: np.ndarray  # 95% Wilson interval per shard
    share_high: np.ndarray
    qps: np.ndarray  # whole-run mean QPS per shard
    window_counts: np.ndarray
    window_qps: np.ndarray
    window_shares: np.ndarray  # shares over the sliding window (what the live gauges show)
    hottest_shard: int
    max_share: float
    expected_max_share: float  # what noise alone gives on distinct keys (Blom)
    stddev_ratio: float
    floor: float  # the mean of the null's stddev ratio (the expected ratio of a perfect hash)
    window_stddev_ratio: float
    window_floor: float
    null: stats.NullModel | None = None  # None when the key weights are unknown
    hottest_keys: list[tuple[Any, int]] = field(default_factory=list)  # heavy keys on the hottest shard

    def hottest(self, n: int = 5) -> list[int]:
        order = np.lexsort((np.arange(self.shards), -self.counts))
        return [int(i) for i in order[:n]]

    @property
    def max_share_p(self) -> float:
        """P(a random hash of these key weights puts at least this share on one shard)."""
        return math.nan if self.null is None else self.null.p_max_share(self.max_share)

    @property
    def stddev_ratio_p(self) -> float:
        return math.nan if self.null is None else self.null.p_stddev_ratio(self.stddev_ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "shards": self.shards,
            "requests": self.requests,
            "hottest_shard": self.hottest_shard,
            "max_share": self.max_share,
            "expected_max_share": self.expected_max_share,
            "max_share_p": self.max_share_p,
            "stddev_ratio": self.stddev_ratio,
            "stddev_ratio_floor": self.floor,
            "stddev_ratio_p": self.stddev_ratio_p,
            "window_stddev_ratio": self.window_stddev_ratio,
            "window_stddev_ratio_floor": self.window_floor,
            "hottest_keys": [{"key": str(k), "requests": c} for k, c in self.hottest_keys],
            "hottest": [
                {"shard": s, "requests": int(self.counts[s]), "share": float(self.shares[s]),
                 "share_interval": [float(self.share_low[s]), float(self.share_high[s])],
                 "qps": float(self.qps[s]), "window_qps": float(self.window_qps[s])}
                for s in self.hottest(10)
            ],
        }


@dataclass(frozen=True)
class Summary:
    requests: int
    duration_s: float
    shards: int
    primary: str
    routers: dict[str, RouterSummary]
    key_f2: float
    top_keys: list[tuple[Any, int]]  # every heavy-hitter counter, hottest first
    top_keys_error: int
    window_s: float
    window_requests: int
    distinct_keys: float | None = None  # exact while few, else HLL; None when unknown
    failures: np.ndarray | None = None  # failed requests per shard
    unreached: np.ndarray | None = None  # requests that never reached the target, per shard meant
    observed: RouterSummary | None = None
    observed_requests: int = 0
    observed_mismatches: int = 0
    mismatch_examples: list[tuple[Any, int, int]] = field(default_factory=list)
    observed_pairs: list[tuple[Any, int]] = field(default_factory=list)  # (key, X-Shard) sample
    latency: LatencySummary | None = None  # per-shard latency quantiles; None when none was timed
    timeline: Timeline | None = None  # per-shard counts over time (the heatmap); None when unknown

    @property
    def primary_summary(self) -> RouterSummary:
        return self.routers[self.primary]

    @property
    def reference(self) -> RouterSummary | None:
        return self.routers.get(REFERENCE_ROUTER)

    @property
    def unreached_total(self) -> int:
        return 0 if self.unreached is None else int(self.unreached.sum())

    @property
    def failed_total(self) -> int:
        return 0 if self.failures is None else int(self.failures.sum())

    def key_share(self, count: int) -> float:
        return count / self.requests if self.requests else 0.0

    def notable_keys(self, limit: int = 10) -> list[tuple[Any, int]]:
        """The keys that carry a notable share, surely (their count beats the sketch's error)."""
        floor = NOTABLE_KEY_SHARE
        if self.distinct_keys:
            floor = max(floor, NOTABLE_OVER_MEAN / self.distinct_keys)
        return [(k, c) for k, c in self.top_keys[:limit]
                if c > 1 and c > self.top_keys_error and self.key_share(c) >= floor]

    def keys_json(self) -> dict[str, Any]:
        """What the reports say about keys: how many, which are hot, and how exact that is."""
        top = self.top_keys[0] if self.top_keys else None
        return {"distinct": None if self.distinct_keys is None else round(self.distinct_keys),
                "exact": self.top_keys_error == 0, "error": self.top_keys_error,
                "notable_share": NOTABLE_KEY_SHARE, "notable_over_mean": NOTABLE_OVER_MEAN,
                "notable": [{"key": str(k), "requests": c, "share": self.key_share(c)} for k, c in self.notable_keys()],
                "busiest_share": self.key_share(top[1]) if top else 0.0}

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "shards": self.shards,
            "primary": self.primary,
            "key_f2": self.key_f2,
            "key_sum_p2": self.key_f2 / self.requests**2 if self.requests else 0.0,
            "distinct_keys": None if self.distinct_keys is None else round(self.distinct_keys),
            "window_s": self.window_s,
            "window_requests": self.window_requests,
            "failed": self.failed_total,
            "unreached": self.unreached_total,
            "routers": {name: rs.to_json() for name, rs in self.routers.items()},
            "top_keys": [{"key": str(k), "requests": c, "share": self.key_share(c)} for k, c in self.top_keys[:10]],
            "top_keys_error": self.top_keys_error,
            "shard_failures": _failure_rows(self),
            "keys": self.keys_json(),
            "observed": None if self.observed is None else {
                **self.observed.to_json(),
                "requests": self.observed_requests,
                "mismatches": self.observed_mismatches,
                "mismatch_examples": [
                    {"key": str(k), "predicted": p, "observed": o} for k, p, o in self.mismatch_examples
                ],
            },
        }


def _failure_rows(summary: Summary) -> list[dict[str, Any]]:
    """The shards with the highest failure rates (a saturated pool fails on its own shard)."""
    failures = summary.failures
    if failures is None or not failures.any():
        return []
    load = summary.primary_summary.counts if summary.observed is None else summary.observed.counts
    tried = load + (summary.unreached if summary.unreached is not None else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(tried > 0, failures / np.maximum(tried, 1), 0.0)
    order = np.lexsort((np.arange(rate.size), -rate))[:5]
    return [{"shard": int(s), "failed": int(failures[s]), "requests": int(tried[s]), "failure_rate": float(rate[s])}
            for s in order if failures[s]]


def summarize_counts(
    router: str,
    counts: np.ndarray,
    *,
    key_f2: float,
    duration_s: float = 0.0,
    window_counts: np.ndarray | None = None,
    window_covered_s: float = 0.0,
    run_requests: int | None = None,
    null: stats.NullModel | None = None,
    hottest_keys: list[tuple[Any, int]] | None = None,
) -> RouterSummary:
    counts = np.asarray(counts, dtype=np.int64)
    k = counts.size
    n = int(counts.sum())
    run_n = n if run_requests is None else run_requests
    shares = counts / n if n else np.zeros(k)
    low, high = stats.wilson_interval(counts, n)
    hottest = int(np.argmax(counts)) if n else 0
    ratio = stats.stddev_ratio(counts)
    floor = stats.stddev_ratio_floor(k, n, key_f2 * (n / run_n) ** 2 if run_n else 0.0)
    wc = np.zeros(k, dtype=np.int64) if window_counts is None else np.asarray(window_counts, dtype=np.int64)
    return RouterSummary(
        router=router,
        shards=k,
        requests=n,
        counts=counts,
        shares=shares,
        share_low=low,
        share_high=high,
        qps=counts / duration_s if duration_s > 0 else np.zeros(k),
        window_counts=wc,
        window_qps=wc / window_covered_s if window_covered_s > 0 else np.zeros(k),
        window_shares=wc / wc.sum() if wc.sum() else np.zeros(k),
        hottest_shard=hottest,
        max_share=float(shares[hottest]) if n else 0.0,
        expected_max_share=stats.expected_max_share(n, k),
        stddev_ratio=ratio,
        floor=floor,
        window_stddev_ratio=stats.stddev_ratio(wc),
        window_floor=stats.window_floor(k, int(wc.sum()), run_n, key_f2),
        null=null,
        hottest_keys=list(hottest_keys or []),
    )


def key_f2_of(tally: Any) -> float:
    """Σ_j c_j² over the run's keys; NaN when no request carried its key (foreign frames)."""
    bucketed = tally.bucketed_requests
    if bucketed <= 0:
        return 0.0 if tally.requests == 0 else float("nan")
    top = tally.top
    if top.error == 0 and sum(top.counts.values()) == tally.requests:
        return float(sum(c * c for c in top.counts.values()))  # every key counted exactly
    # frames without key buckets: assume their keys repeat like the bucketed ones
    return estimate_f2(tally.key_buckets, bucketed) * (tally.requests / bucketed) ** 2


def null_of(shards: int, requests: int, key_f2: float, top_counts: list[int]) -> stats.NullModel | None:
    """The null model of these key weights over `shards` shards (None when they are unknown)."""
    if requests <= 0 or math.isnan(key_f2):
        return None
    weights = stats.KeyWeights.of(top_counts, requests, key_f2, shards)
    key = (shards, *_weights_key(weights, requests))
    null = _NULLS.get(key)
    if null is None:
        null = _NULLS[key] = stats.null_model(shards, weights)
        while len(_NULLS) > NULL_CACHE:
            _NULLS.pop(next(iter(_NULLS)))
    return null


NULL_CACHE = 256  # null models kept: a live run asks every second while its key weights barely move
_NULLS: dict[tuple, stats.NullModel] = {}


def _weights_key(weights: stats.KeyWeights, requests: int) -> tuple:
    """Key weights relative to the requests, to three significant digits: the null is scale-free."""
    def digits(x: float) -> float:
        return float(f"{x:.3g}")

    return (tuple(digits(w / requests) for w in weights.heavy.tolist()),
            digits(weights.tail_requests / requests), digits(weights.tail_f2 / requests**2))


def hottest_keys_of(router: Any, top_keys: list[tuple[Any, int]], hottest: int,
                    limit: int = 5) -> list[tuple[Any, int]]:
    """The heavy keys the router sends to its hottest shard (who collides there)."""
    if router is None or not top_keys:
        return []
    try:
        shards = router.shard_many([k for k, _ in top_keys])
    except Exception:  # keys of a saved result that no longer route: nothing to name
        return []
    on = [(k, c) for (k, c), s in zip(top_keys, shards.tolist()) if s == hottest]
    return on[:limit]


def summarize(tally: Any, now: float | None = None) -> Summary:
    """Summarise a `skewcheck.tally.Tally` (the first router is the primary)."""
    tally.flush()  # the keys it holds back count before anything is read
    counts = tally.counts()
    wcounts, wreq, covered = tally.window_counts(now)
    key_f2 = key_f2_of(tally)
    duration = tally.duration_s
    if now is not None and tally.first_ts is not None:
        duration = max(duration, now - tally.first_ts)
    top = tally.top.top(tally.top.capacity)
    null = null_of(tally.shards, tally.requests, key_f2, [c for _, c in top])
    routers = {}
    for i, (name, router) in enumerate(zip(tally.router_names, tally.routers)):
        hottest = int(np.argmax(counts[i])) if tally.requests else 0
        routers[name] = summarize_counts(name, counts[i], key_f2=key_f2, duration_s=duration,
                                         window_counts=wcounts[i], window_covered_s=covered,
                                         run_requests=tally.requests, null=null,
                                         hottest_keys=hottest_keys_of(router, top, hottest))
    observed = None
    if tally.observed_requests:
        observed = summarize_counts("observed", tally.observed, key_f2=key_f2, duration_s=duration,
                                    run_requests=tally.requests,
                                    null=null if tally.observed_requests == tally.requests else None)
    latency = None
    if tally.latency.counts.any():
        load = tally.observed if tally.observed_requests else counts[0]
        latency = LatencySummary(tally.latency, load, tally.failures, tally.unreached)
    return Summary(
        requests=tally.requests,
        duration_s=duration,
        shards=tally.shards,
        primary=tally.router_names[0],
        routers=routers,
        key_f2=key_f2,
        top_keys=top,
        top_keys_error=tally.top.error,
        window_s=tally.window_s,
        window_requests=wreq,
        distinct_keys=tally.distinct_keys(),
        failures=tally.failures.copy(),
        unreached=tally.unreached.copy(),
        observed=observed,
        observed_requests=tally.observed_requests,
        observed_mismatches=tally.observed_mismatches,
        mismatch_examples=list(tally.mismatch_examples),
        observed_pairs=list(tally.observed_pairs),
        latency=latency,
        timeline=tally.timeline_view(),
    )


def from_counts(
    primary: str,
    counts: dict[str, np.ndarray],
    *,
    key_f2: float,
    requests: int | None = None,
    duration_s: float = 0.0,
    window_s: float = 10.0,
    top_keys: list[tuple[Any, int]] | None = None,
    top_keys_error: int = 0,
    distinct_keys: float | None = None,
    failures: np.ndarray | None = None,
    unreached: np.ndarray | None = None,
    router_of: Callable[[str, int], Any] | None = None,
    latency: LatencySummary | None = None,
    timeline: Timeline | None = None,
) -> Summary:
    """A summary from saved or simulated whole-run counts (no window data). `router_of(name,
    shards)` gives the routers, to name the keys on each hottest shard."""
    n = int(requests if requests is not None else np.asarray(counts[primary]).sum())
    top = list(top_keys or [])
    shards = int(np.asarray(counts[primary]).size)
    null = null_of(shards, n, key_f2, [c for _, c in top])
    routers = {}
    for name, c in counts.items():
        c = np.asarray(c)
        router = router_of(name, shards) if router_of else None
        hottest = int(np.argmax(c)) if n else 0
        routers[name] = summarize_counts(name, c, key_f2=key_f2, duration_s=duration_s, run_requests=n,
                                         null=null, hottest_keys=hottest_keys_of(router, top, hottest))
    return Summary(requests=n, duration_s=duration_s, shards=shards, primary=primary,
                   routers=routers, key_f2=key_f2, top_keys=top, top_keys_error=top_keys_error,
                   window_s=window_s, window_requests=0, distinct_keys=distinct_keys,
                   failures=failures, unreached=unreached, latency=latency, timeline=timeline)
