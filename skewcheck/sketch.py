"""Bounded-memory key statistics: heavy hitters and the key-frequency second moment.

Both are mergeable by addition, so workers, partitions and sidecar instances combine exactly.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

# top-key counters kept: exact while a test's distinct keys are at most this many; beyond, each
# estimate undercounts by at most N/(capacity+1) — 0.1% of the requests
DEFAULT_TOP_CAPACITY = 1024
F2_BITS = 12  # 4096 buckets: absolute error of floor² ≈ 2(k−1)/(4096·√N), far below the 0.8 limit
F2_BUCKETS = 1 << F2_BITS
F2_SEED = 0x5EED  # independent of every router's hash, so collisions don't track shard placement


class HeavyHitters:
    """Misra–Gries summary (mergeable form of Agarwal et al. 2012).

    Every key with true count > N/(capacity+1) is present; each estimate is ≤ the true count and
    ≥ true count − `error`. Per-key cost is O(1) amortised: counters grow to 2·capacity, then
    one prune subtracts the (capacity+1)-th largest count.
    """

    __slots__ = ("capacity", "counts", "error", "total")

    def __init__(self, capacity: int = DEFAULT_TOP_CAPACITY) -> None:
        self.capacity = capacity
        self.counts: dict[int | str, int] = {}
        self.error = 0  # upper bound on how much any estimate undercounts
        self.total = 0

    def add(self, key: int | str, count: int = 1) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + count
        self.total += count
        if len(counts) > 2 * self.capacity:
            self._prune()

    def add_many(self, keys: np.ndarray) -> None:
        """Batch form: count the batch exactly, prune it Misra–Gries style, then merge."""
        self.merge_items(*batch_counts(keys, self.capacity))

    def merge(self, other: "HeavyHitters") -> None:
        self.total += other.total
        self.error += other.error
        self._merge_counts(other.counts.items())

    def merge_items(self, items: Iterable[tuple[int | str, int]], total: int, error: int = 0) -> None:
        """Merge a serialised summary (a frame's top_keys)."""
        self.total += total
        self.error += error
        self._merge_counts((k, int(c)) for k, c in items)

    def _merge_counts(self, items: Iterable[tuple[int | str, int]]) -> None:
        counts = self.counts
        for key, count in items:
            counts[key] = counts.get(key, 0) + count
        if len(counts) > self.capacity:
            self._prune()

    def _prune(self) -> None:
        ordered = sorted(self.counts.values(), reverse=True)
        if len(ordered) <= self.capacity:
            return
        cut = ordered[self.capacity]
        self.error += cut
        self.counts = {k: c - cut for k, c in self.counts.items() if c > cut}

    def compact(self) -> None:
        """Prune to `capacity` counters now, so a serialised summary carries every counter."""
        if len(self.counts) > self.capacity:
            self._prune()

    def top(self, n: int = 10) -> list[tuple[int | str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]

    def clear(self) -> None:
        self.counts.clear()
        self.error = 0
        self.total = 0


def batch_counts(keys: np.ndarray, capacity: int) -> tuple[list[tuple[int | str, int]], int, int]:
    """One batch's heavy-hitter counts, pruned Misra–Gries style to `capacity` counters: (items,
    total, error) for `HeavyHitters.merge_items`, so one batch can feed several summaries."""
    if len(keys) == 0:
        return [], 0, 0
    values, counts = np.unique(np.asarray(keys), return_counts=True)
    total, error = int(counts.sum()), 0
    if len(values) > capacity:
        error = kth_largest(counts, capacity + 1)
        keep = counts > error
        values, counts = values[keep], counts[keep] - error
    return list(zip(values.tolist(), counts.tolist())), total, error


def kth_largest(counts: np.ndarray, k: int) -> int:
    """The k-th largest of positive counts (1 ≤ k ≤ len), via their histogram.

    Counts of one batch sum to the batch size, so the histogram is never longer than the batch;
    np.partition degrades badly on the near-constant counts of a uniform batch (all ones).
    """
    if counts.max() > 4 * len(counts):  # not one batch's counts: a sort is cheaper than the histogram
        return int(np.sort(counts)[-k])
    hist = np.bincount(counts)
    at_least = np.cumsum(hist[::-1])  # how many counts are >= max, max-1, …
    return len(hist) - 1 - int(np.searchsorted(at_least, k))


def estimate_f2(buckets: np.ndarray, total: int) -> float:
    """Σ_j c_j² of the key counts from hashed bucket counts.

    E[Σ_b C_b²] = F2 + (N² − F2)/w for a random hash into w buckets, so this is unbiased;
    it never goes below N (every key counted at least once contributes c_j² ≥ c_j).
    """
    if total <= 0:
        return 0.0
    w = buckets.size
    s = float(np.dot(buckets.astype(np.float64), buckets.astype(np.float64)))
    est = (w * s - float(total) ** 2) / (w - 1)
    return min(max(est, float(total)), float(total) ** 2)


class DistinctKeys:
    """HyperLogLog over the same 32-bit key hash as the F2 buckets (Flajolet et al. 2007).

    4096 registers, standard error 1.04/√4096 ≈ 1.6%, mergeable by taking the maximum register by
    register. The hash is computed once per key for the F2 sketch anyway: its low 12 bits pick the
    register, the other 20 give the rank.
    """

    __slots__ = ("registers",)

    BITS = F2_BITS
    RANK_BITS = 32 - F2_BITS
    MAX_RANK = RANK_BITS + 1

    def __init__(self) -> None:
        self.registers = np.zeros(1 << self.BITS, dtype=np.uint8)

    @classmethod
    def ranks(cls, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(register, rank) of each uint32 key hash."""
        h = hashes.astype(np.uint32, copy=False)
        rest = (h >> np.uint32(cls.BITS)).astype(np.float64)
        exponent = np.frexp(rest)[1]  # the bit length of the remaining bits (0 for 0)
        return (h & np.uint32((1 << cls.BITS) - 1)).astype(np.int64), (cls.MAX_RANK - exponent).astype(np.uint8)

    def add_ranks(self, registers: np.ndarray) -> None:
        np.maximum(self.registers, registers, out=self.registers)

    def estimate(self) -> float:
        m = self.registers.size
        if not self.registers.any():
            return 0.0
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return m * math.log(m / zeros)  # linear counting for the small range
        two32 = float(1 << 32)
        if raw > two32 / 30:
            return -two32 * math.log1p(-raw / two32)
        return raw

    def clear(self) -> None:
        self.registers[:] = 0


def register_maxima(registers: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """One batch's HLL registers: the largest rank seen in each."""
    out = np.zeros(1 << DistinctKeys.BITS, dtype=np.uint8)
    np.maximum.at(out, registers, ranks)
    return out
