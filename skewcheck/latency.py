"""Per-shard latency: one DDSketch per shard (Masson, Rim & Lee, VLDB 2019), mergeable by addition.

Logarithmic buckets, DDSketch's own: key j holds the latencies in (γ^(j−1), γ^j] ms, γ = (1+α)/(1−α),
and a quantile is reported as its key's midpoint 2·γ^j/(γ+1), within α of the sample quantile it
stands for: a shard's p99 is its true p99 ± 2%, whatever the distribution. Keys run from MIN_KEY
(≈ 0.01 ms, which also holds everything faster) to MAX_LATENCY_MS, stored as bucket = key − MIN_KEY,
so the answers are bucket for bucket those of the reference implementation (DataDog's `ddsketch`,
checked in the tests). Counts add bucket by bucket, so
workers → master, Kafka frames → sidecar and sidecar instances → gate merge exactly, in any order.

Why DDSketch rather than KLL/REQ or HdrHistogram: a relative *value* error is what a latency
comparison needs (KLL's rank error of ~1.3% puts a p99 anywhere between p97.7 and p100, which at
the tail can be a factor of ten); the merge is plain addition, deterministic, which frames already
are; and the bucket of a whole batch is one vectorised log, so the per-request path stays a list
append. HdrHistogram gives the same kind of guarantee with 3–5× the buckets for 2 significant digits.

Memory: per shard a dense row over the buckets seen so far, at most BUCKETS (574) int64 — 4.6 KB —
whatever the number of requests; a run whose latencies span 1 ms to 1 s uses ~175 of them.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from skewcheck.limits import MAX_LATENCY_MS

RELATIVE_ERROR = 0.02  # α: a shard's p99 of 412 ms is reported within 404–420 ms
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_MULTIPLIER = 1 / math.log(GAMMA)
# ≈ 0.01 ms: faster latencies count as this (a loopback round trip takes ~50 µs)
MIN_KEY = math.floor(math.log(0.01) * _MULTIPLIER)
MIN_MS = GAMMA ** MIN_KEY
BUCKETS = 1 + math.ceil(math.log(MAX_LATENCY_MS) * _MULTIPLIER) - MIN_KEY
QUANTILES = (0.5, 0.95, 0.99)  # what the verdict, the reports and the metrics show per shard
_DENSE_BINCOUNT = 1 << 16  # a batch's (shard, bucket) cells counted with one bincount up to this many


def bucket_of(latency_ms: np.ndarray) -> np.ndarray:
    """The bucket of each latency (finite, ≥ 0; the caller drops the others)."""
    key = np.ceil(np.log(np.maximum(latency_ms, MIN_MS)) * _MULTIPLIER)
    return np.clip(key - MIN_KEY, 0, BUCKETS - 1).astype(np.int64)


def bucket_value(index: np.ndarray | int) -> np.ndarray:
    """What a bucket reports: its midpoint, within RELATIVE_ERROR of every latency in it."""
    key = np.asarray(index, dtype=np.float64) + MIN_KEY
    return 2.0 * np.power(GAMMA, key) / (GAMMA + 1.0)


def latency_array(values: Iterable[float | None] | np.ndarray) -> np.ndarray:
    """Latencies as float64 with NaN where none was given (None becomes NaN)."""
    return np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)


class ShardLatency:
    """A DDSketch per shard: `counts[shard, j]` requests in bucket `lo + j`."""

    __slots__ = ("shards", "counts", "lo")

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.counts = np.zeros((shards, 0), dtype=np.int64)
        self.lo = 0  # the bucket of column 0

    # --- adding -----------------------------------------------------------------------------------

    @staticmethod
    def cells(shards: np.ndarray, latency_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard, bucket) of each request that carried a usable latency: computed once per batch
        and added to a tally and its followers."""
        ok = np.isfinite(latency_ms) & (latency_ms >= 0)
        if not ok.all():
            shards, latency_ms = shards[ok], latency_ms[ok]
        return np.asarray(shards, dtype=np.int64), bucket_of(latency_ms)

    def add_cells(self, shards: np.ndarray, buckets: np.ndarray) -> None:
        if len(buckets) == 0:
            return
        self._cover(int(buckets.min()), int(buckets.max()))
        width = self.counts.shape[1]
        flat = shards * width + (buckets - self.lo)
        if self.shards * width <= _DENSE_BINCOUNT:
            self.counts += np.bincount(flat, minlength=self.shards * width).reshape(self.shards, width)
        else:
            cells, n = np.unique(flat, return_counts=True)
            self.counts.reshape(-1)[cells] += n

    def add(self, shards: np.ndarray, latency_ms: np.ndarray) -> None:
        self.add_cells(*self.cells(np.asarray(shards), latency_array(latency_ms)))

    def _cover(self, low: int, high: int) -> None:
        """Widen the dense window to buckets low..high (never beyond 0..BUCKETS−1)."""
        width = self.counts.shape[1]
        if width and self.lo <= low and high < self.lo + width:
            return
        new_lo = low if not width else min(low, self.lo)
        new_hi = high if not width else max(high, self.lo + width - 1)
        grown = np.zeros((self.shards, new_hi - new_lo + 1), dtype=np.int64)
        if width:
            grown[:, self.lo - new_lo:self.lo - new_lo + width] = self.counts
        self.counts, self.lo = grown, new_lo

    def merge(self, other: ShardLatency) -> None:
        width = other.counts.shape[1]
        if not width or not other.counts.any():
            return
        self._cover(other.lo, other.lo + width - 1)
        at = other.lo - self.lo
        self.counts[:, at:at + width] += other.counts

    # --- frames: {"<shard>": [first bucket, count, count, …]} ----------------------------------------

    def to_part(self) -> dict[str, list[int]]:
        """Each shard's non-empty buckets as one run: [first bucket, counts…] (trimmed both ends)."""
        out: dict[str, list[int]] = {}
        for shard in np.flatnonzero(self.counts.any(axis=1)).tolist():
            row = self.counts[shard]
            nz = np.flatnonzero(row)
            first, last = int(nz[0]), int(nz[-1])
            out[str(shard)] = [self.lo + first, *row[first:last + 1].tolist()]
        return out

    def merge_part(self, part: dict[str, list[int]]) -> None:
        """Add a frame's latency part (validated by `Frame.parse`: shards, buckets and counts fit)."""
        if not part:
            return
        low = min(run[0] for run in part.values())
        high = max(run[0] + len(run) - 2 for run in part.values())
        self._cover(low, high)
        for shard, run in part.items():
            at = run[0] - self.lo
            self.counts[int(shard), at:at + len(run) - 1] += np.asarray(run[1:], dtype=np.int64)

    # --- reading ----------------------------------------------------------------------------------

    def requests(self) -> np.ndarray:
        """Requests with a latency, per shard."""
        if not self.counts.shape[1]:
            return np.zeros(self.shards, dtype=np.int64)
        return self.counts.sum(axis=1)

    def quantiles(self, qs: Iterable[float] = QUANTILES) -> np.ndarray:
        """qs × shards latencies in ms (NaN for a shard without any): the value at rank q·(n−1)."""
        qs = list(qs)
        out = np.full((len(qs), self.shards), np.nan)
        if not self.counts.shape[1]:
            return out
        n = self.counts.sum(axis=1)
        seen = np.flatnonzero(n)
        if not len(seen):
            return out
        cum = np.cumsum(self.counts[seen], axis=1)
        for row, q in enumerate(qs):
            rank = q * (n[seen] - 1)
            column = (cum <= rank[:, None]).sum(axis=1)  # the first bucket whose cumulative count passes the rank
            out[row, seen] = bucket_value(self.lo + column)
        return out

    def copy(self) -> ShardLatency:
        other = ShardLatency(self.shards)
        other.counts, other.lo = self.counts.copy(), self.lo
        return other

    def clear(self) -> None:
        self.counts = np.zeros((self.shards, 0), dtype=np.int64)
        self.lo = 0

    @property
    def nbytes(self) -> int:
        return int(self.counts.nbytes)


# --- the summary side: computed when asked, never per request -------------------------------------

MIN_SHARD_SAMPLES = 100  # a shard's p99 from fewer requests is only one of its slowest few
ROWS = 5  # hottest shards shown with their latency (plus the slowest and the most failing)


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if len(values) else None


class LatencySummary:
    """Per-shard latency quantiles and failure rates, and the median shard they are shown against."""

    def __init__(self, sketch: ShardLatency, load: np.ndarray, failures: np.ndarray | None,
                 unreached: np.ndarray | None) -> None:
        self.requests = sketch.requests()
        self.p50, self.p95, self.p99 = sketch.quantiles(QUANTILES)
        width = sketch.counts.shape[1]
        # each latency counted at its bucket's midpoint: within RELATIVE_ERROR, so the sum is too
        self.sum_ms = sketch.counts @ bucket_value(sketch.lo + np.arange(width)) if width else \
            np.zeros(sketch.shards)
        self.load = np.asarray(load, dtype=np.int64)  # requests per shard (observed, else primary)
        self.failures = np.zeros_like(self.load) if failures is None else np.asarray(failures)
        tried = self.load + (0 if unreached is None else np.asarray(unreached))
        self.tried = tried
        self.failure_rate = np.where(tried > 0, self.failures / np.maximum(tried, 1), 0.0)

    @classmethod
    def from_arrays(cls, requests: list[int], p50: list, p95: list, p99: list, load: np.ndarray,
                    failures: np.ndarray | None, unreached: np.ndarray | None) -> LatencySummary:
        """Rebuilt from a saved result's per-shard figures."""
        self = cls.__new__(cls)
        self.requests = np.asarray(requests, dtype=np.int64)
        self.sum_ms = np.full(len(self.requests), np.nan)
        self.p50, self.p95, self.p99 = (np.array([np.nan if v is None else v for v in xs], dtype=np.float64)
                                        for xs in (p50, p95, p99))
        self.load = np.asarray(load, dtype=np.int64)
        self.failures = np.zeros_like(self.load) if failures is None else np.asarray(failures)
        self.tried = self.load + (0 if unreached is None else np.asarray(unreached))
        self.failure_rate = np.where(self.tried > 0, self.failures / np.maximum(self.tried, 1), 0.0)
        return self

    @property
    def any(self) -> bool:
        return bool(self.requests.any())

    def qualified(self, exclude: int | None = None) -> np.ndarray:
        """Shards with enough requests for their p99 to mean something (optionally but one)."""
        ok = self.requests >= MIN_SHARD_SAMPLES
        if exclude is not None:
            ok = ok.copy()
            ok[exclude] = False
        return np.flatnonzero(ok)

    def median(self, exclude: int | None = None) -> dict | None:
        """The median shard: the median over the other shards that served MIN_SHARD_SAMPLES."""
        others = self.qualified(exclude)
        if not len(others):
            return None
        return {"shards": int(len(others)), "p50": _median(self.p50[others]), "p95": _median(self.p95[others]),
                "p99": _median(self.p99[others]), "failure_rate": _median(self.failure_rate[others])}

    def hottest(self, rows: int = ROWS) -> list[int]:
        """The busiest shards, then the slowest and the most failing if they are not among them."""
        order = np.lexsort((np.arange(self.load.size), -self.load))
        picked = [int(s) for s in order[:rows] if self.load[s] or self.requests[s]]
        slow = self.qualified()
        if len(slow):
            picked.append(int(slow[np.nanargmax(self.p99[slow])]))
        if self.failures.any():
            picked.append(int(np.argmax(self.failure_rate)))
        return list(dict.fromkeys(picked))

    def row(self, shard: int) -> dict:
        total = int(self.load.sum())
        return {"shard": shard, "requests": int(self.load[shard]), "share": float(self.load[shard] / total) if total else 0.0,
                "timed": int(self.requests[shard]), "p50": _num(self.p50[shard]), "p95": _num(self.p95[shard]),
                "p99": _num(self.p99[shard]), "failed": int(self.failures[shard]),
                "failure_rate": float(self.failure_rate[shard])}

    def to_json(self) -> dict:
        shards = self.hottest()
        first = shards[0] if shards else None
        return {
            "relative_error": RELATIVE_ERROR, "unit": "ms", "min_samples": MIN_SHARD_SAMPLES,
            "median": self.median(first), "shards": [self.row(s) for s in shards],
            "requests": self.requests.tolist(), "p50": _nums(self.p50), "p95": _nums(self.p95),
            "p99": _nums(self.p99),
        }


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 3)


def _nums(xs: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(x) else round(x, 3) for x in xs.tolist()]


def ms(x: float | None) -> str:
    """A latency as text: 412 ms, 6.2 ms, 0.35 ms, 1.2 s."""
    if x is None or not math.isfinite(x):
        return "?"
    if x >= 1000:
        return f"{x / 1000:.3g} s"
    return f"{x:.3g} ms" if x < 100 else f"{x:.0f} ms"
