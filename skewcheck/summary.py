"""Derived numbers, computed on demand from a tally's counts — never per request.

Pure functions of counts: the same code summarises a live Locust run, a sidecar, a plan and a
saved result file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skewcheck import stats
from skewcheck.sketch import estimate_f2

REFERENCE_ROUTER = "murmur3"  # the well-mixed hash that separates routing skew from key skew


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
    hottest_shard: int
    max_share: float
    max_share_low: float  # simultaneous 95% interval over the k shards (the hottest is chosen by looking)
    max_share_high: float
    expected_max_share: float  # what noise alone gives (Blom)
    stddev_ratio: float
    floor: float
    excess: float
    window_stddev_ratio: float
    window_floor: float

    def hottest(self, n: int = 5) -> list[int]:
        order = np.lexsort((np.arange(self.shards), -self.counts))
        return [int(i) for i in order[:n]]

    def to_json(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "shards": self.shards,
            "requests": self.requests,
            "hottest_shard": self.hottest_shard,
            "max_share": self.max_share,
            "max_share_interval": [self.max_share_low, self.max_share_high],
            "expected_max_share": self.expected_max_share,
            "stddev_ratio": self.stddev_ratio,
            "stddev_ratio_floor": self.floor,
            "stddev_excess": self.excess,
            "window_stddev_ratio": self.window_stddev_ratio,
            "window_stddev_ratio_floor": self.window_floor,
            "hottest": [
                {"shard": s, "requests": int(self.counts[s]), "share": float(self.shares[s]),
                 "share_interval": [float(self.share_low[s]), float(self.share_high[s])],
                 "qps": float(self.qps[s]), "window_qps": float(self.window_qps[s])}
                for s in self.hottest(10)
            ],
        }


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # balanced | routing_skew | key_skew | no_data
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Summary:
    requests: int
    duration_s: float
    shards: int
    primary: str
    routers: dict[str, RouterSummary]
    key_f2: float
    top_keys: list[tuple[Any, int]]
    top_keys_error: int
    window_s: float
    window_requests: int
    observed: RouterSummary | None = None
    observed_requests: int = 0
    observed_mismatches: int = 0
    mismatch_examples: list[tuple[Any, int, int]] = field(default_factory=list)
    observed_pairs: list[tuple[Any, int]] = field(default_factory=list)  # (key, X-Shard) sample

    @property
    def primary_summary(self) -> RouterSummary:
        return self.routers[self.primary]

    @property
    def reference(self) -> RouterSummary | None:
        return self.routers.get(REFERENCE_ROUTER)

    def key_share(self, count: int) -> float:
        return count / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "shards": self.shards,
            "primary": self.primary,
            "key_f2": self.key_f2,
            "key_sum_p2": self.key_f2 / self.requests**2 if self.requests else 0.0,
            "window_s": self.window_s,
            "window_requests": self.window_requests,
            "routers": {name: rs.to_json() for name, rs in self.routers.items()},
            "top_keys": [{"key": str(k), "requests": c, "share": self.key_share(c)} for k, c in self.top_keys],
            "top_keys_error": self.top_keys_error,
            "observed": None if self.observed is None else {
                **self.observed.to_json(),
                "requests": self.observed_requests,
                "mismatches": self.observed_mismatches,
                "mismatch_examples": [
                    {"key": str(k), "predicted": p, "observed": o} for k, p, o in self.mismatch_examples
                ],
            },
        }


def summarize_counts(
    router: str,
    counts: np.ndarray,
    *,
    key_f2: float,
    duration_s: float = 0.0,
    window_counts: np.ndarray | None = None,
    window_covered_s: float = 0.0,
    run_requests: int | None = None,
) -> RouterSummary:
    counts = np.asarray(counts, dtype=np.int64)
    k = counts.size
    n = int(counts.sum())
    run_n = n if run_requests is None else run_requests
    shares = counts / n if n else np.zeros(k)
    low, high = stats.wilson_interval(counts, n)
    hottest = int(np.argmax(counts)) if n else 0
    max_low, max_high = stats.wilson_interval(counts[hottest], n, stats.simultaneous_z(k))
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
        hottest_shard=hottest,
        max_share=float(shares[hottest]) if n else 0.0,
        max_share_low=float(max_low) if n else 0.0,
        max_share_high=float(max_high) if n else 1.0,
        expected_max_share=stats.expected_max_share(n, k),
        stddev_ratio=ratio,
        floor=floor,
        excess=stats.stddev_excess(ratio, floor),
        window_stddev_ratio=stats.stddev_ratio(wc),
        window_floor=stats.window_floor(k, int(wc.sum()), run_n, key_f2),
    )


def key_f2_of(tally: Any) -> float:
    """Σ_j c_j² over the run's keys; NaN when no request carried its key (foreign frames)."""
    bucketed = tally.bucketed_requests
    if bucketed <= 0:
        return 0.0 if tally.requests == 0 else float("nan")
    # frames without key buckets: assume their keys repeat like the bucketed ones
    return estimate_f2(tally.key_buckets, bucketed) * (tally.requests / bucketed) ** 2


def summarize(tally: Any, now: float | None = None, top_n: int = 10) -> Summary:
    """Summarise a `skewcheck.tally.Tally` (the first router is the primary)."""
    tally.flush()  # the keys it holds back count before anything is read
    counts = tally.counts()
    wcounts, wreq, covered = tally.window_counts(now)
    key_f2 = key_f2_of(tally)
    duration = tally.duration_s
    if now is not None and tally.first_ts is not None:
        duration = max(duration, now - tally.first_ts)
    routers = {
        name: summarize_counts(name, counts[i], key_f2=key_f2, duration_s=duration,
                               window_counts=wcounts[i],
                               window_covered_s=covered, run_requests=tally.requests)
        for i, name in enumerate(tally.router_names)
    }
    observed = None
    if tally.observed_requests:
        observed = summarize_counts("observed", tally.observed, key_f2=key_f2, duration_s=duration,
                                    run_requests=tally.requests)
    return Summary(
        requests=tally.requests,
        duration_s=duration,
        shards=tally.shards,
        primary=tally.router_names[0],
        routers=routers,
        key_f2=key_f2,
        top_keys=tally.top.top(top_n),
        top_keys_error=tally.top.error,
        window_s=tally.window_s,
        window_requests=wreq,
        observed=observed,
        observed_requests=tally.observed_requests,
        observed_mismatches=tally.observed_mismatches,
        mismatch_examples=list(tally.mismatch_examples),
        observed_pairs=list(tally.observed_pairs),
    )


def diagnose(summary: Summary, unhealthy: dict[str, bool]) -> Diagnosis:
    """Routing skew vs key skew, from which routers the gate found unhealthy on the same keys."""
    if summary.requests == 0:
        return Diagnosis("no_data", "no requests were counted")
    primary_bad = unhealthy.get(summary.primary, False)
    ref_bad = unhealthy.get(REFERENCE_ROUTER)
    top = ", ".join(f"{k} ({summary.key_share(c):.1%})" for k, c in summary.top_keys[:3])
    if not primary_bad:
        return Diagnosis("balanced", f"{summary.primary} spreads these keys within the noise floor")
    if summary.primary == REFERENCE_ROUTER or ref_bad:
        return Diagnosis(
            "key_skew",
            f"key skew: a well-mixed hash ({REFERENCE_ROUTER}) is unbalanced on the same keys, so hot or "
            f"few keys are the cause (top keys: {top})",
            "cache or split the hot keys, or use more distinct keys (test accounts); no router fixes this",
        )
    ref = summary.reference
    better = f" ({REFERENCE_ROUTER} gives max share {ref.max_share:.1%})" if ref else ""
    return Diagnosis(
        "routing_skew",
        f"routing skew: {summary.primary} concentrates these keys while {REFERENCE_ROUTER} spreads "
        f"them{better}",
        f"change the routing function (e.g. hash the key with {REFERENCE_ROUTER} before the modulo), "
        "or choose IDs that don't share a factor with the shard count",
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
) -> Summary:
    """A summary from saved or simulated whole-run counts (no window data)."""
    n = int(requests if requests is not None else np.asarray(counts[primary]).sum())
    routers = {name: summarize_counts(name, np.asarray(c), key_f2=key_f2, duration_s=duration_s, run_requests=n)
               for name, c in counts.items()}
    return Summary(requests=n, duration_s=duration_s, shards=routers[primary].shards, primary=primary,
                   routers=routers, key_f2=key_f2, top_keys=list(top_keys or []), top_keys_error=top_keys_error,
                   window_s=window_s, window_requests=0)
