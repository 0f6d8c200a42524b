"""What the planner knows of the keys: their weights, in memory bounded whatever the stream.

Up to 2 × SAMPLE_KEYS distinct keys are held with their exact counts, and then every figure the
plan gives is exact. Past that, the model is the heaviest keys (a Misra–Gries summary of
HEAVY_KEYS counters, each count low by at most `heavy_error`) plus a uniform sample of the other
distinct keys: the SAMPLE_KEYS keys of smallest hash, a bottom-k sample whose counts are exact (a
key below the final threshold was below every earlier one, so it was counted from its first
request). The sample stands for the rest of the requests, weighted to their total.

A saved run result gives a model too: its top keys as recorded, and a tail of synthetic
distinct keys that matches the remaining requests and Σ c² (the tail's structure is unknown).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from skewcheck.hashes import murmur3_x64_64_text
from skewcheck.keytext import KeyBatch
from skewcheck.sketch import HeavyHitters, kth_largest

SAMPLE_KEYS = 16_384  # distinct keys sampled (bottom-k by hash, exact counts); 2× this: all kept
HEAVY_KEYS = 1_024  # Misra–Gries counters for the heaviest keys past that
SYNTHETIC_KEYS = 16_384  # a saved result's unknown tail, as at most this many synthetic keys
_FULL = (1 << 64) - 1  # a threshold above every hash: the sample takes every key
_MIX_SEED = 0x5A17_C0DE  # the sample's hash, independent of every router's


@dataclass(frozen=True)
class KeyPart:
    """Distinct keys with their counts; each stands for `scale` requests per count."""

    keys: Any  # int64 array or list of str
    counts: np.ndarray  # int64
    scale: float = 1.0

    def __len__(self) -> int:
        return int(self.counts.size)

    @property
    def weights(self) -> np.ndarray:
        return self.counts if self.scale == 1.0 else self.counts * self.scale

    @property
    def total(self) -> float:
        return float(self.counts.sum()) * self.scale


@dataclass(frozen=True)
class KeyModel:
    key_type: str
    requests: int
    exact: bool  # every distinct key with its exact count
    listed: KeyPart  # keys known with their counts: every key when exact, else the heaviest
    sampled: KeyPart  # a uniform sample of the other distinct keys, scaled to their requests
    inclusion: float = 1.0  # chance a non-listed key is in the sample (1: no sampling noise)
    even: float = 0.0  # requests of keys neither listed nor sampled, spread evenly
    distinct: float = 0.0  # distinct keys (estimated when not exact)
    f2: float = 0.0  # Σ c² over the keys' counts (estimated when not exact)
    heavy_error: int = 0  # a listed count is low by at most this
    source: str = "keys"
    _batches: dict[str, KeyBatch] = field(default_factory=dict, compare=False, repr=False)

    def batch(self, part: str) -> KeyBatch:
        """The listed or sampled keys as one normalised batch (built once)."""
        if part not in self._batches:
            keys = self.listed.keys if part == "listed" else self.sampled.keys
            self._batches[part] = KeyBatch.of(keys, self.key_type)
        return self._batches[part]

    def top(self, n: int = 10) -> list[tuple[int | str, int]]:
        order = np.argsort(-self.listed.counts, kind="stable")[:n]
        keys = self.listed.keys
        return [(keys[i].item() if isinstance(keys, np.ndarray) else keys[i],
                 int(self.listed.counts[i])) for i in order.tolist()]

    def resampled(self, rng: np.random.Generator) -> KeyModel:
        """Another key set like this one: each key's count drawn Poisson around it (a key seen
        once is absent a third of the time), the keys themselves unchanged."""
        listed = replace(self.listed, counts=rng.poisson(self.listed.counts).astype(np.int64))
        sampled = replace(self.sampled, counts=rng.poisson(self.sampled.counts).astype(np.int64))
        return replace(self, listed=listed, sampled=sampled, exact=False,
                       requests=int(round(listed.total + sampled.total + self.even)),
                       _batches=self._batches)

    def describe(self) -> dict[str, Any]:
        return {"exact": self.exact, "source": self.source, "requests": self.requests,
                "distinct_keys": self.distinct, "listed_keys": len(self.listed),
                "sampled_keys": len(self.sampled), "sample_inclusion": self.inclusion,
                "evenly_spread_requests": self.even, "key_f2": self.f2,
                "listed_error": self.heavy_error}


# --------------------------------------------------------------------------- from a key stream


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-mixed 64-bit hash of each int64 key."""
    z = values.view(np.uint64) + np.uint64(0x9E3779B97F4A7C15 ^ _MIX_SEED)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _key_hashes(values: Any, key_type: str) -> np.ndarray:
    if key_type == "int":
        return _mix64(values)
    return KeyBatch.of(values, "str").map(lambda c: murmur3_x64_64_text(c.text()),
                                          np.uint64)


def _counted(keys: Any, key_type: str) -> tuple[Any, np.ndarray]:
    """The distinct keys of a batch with how often each occurs."""
    if key_type == "int":
        ordered = np.sort(np.asarray(keys, dtype=np.int64))
        if ordered.size == 0:
            return ordered, np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        counts = np.diff(np.append(starts, ordered.size))
        return ordered[starts], counts.astype(np.int64)
    tally = Counter(keys.tolist() if isinstance(keys, np.ndarray) else keys)
    return list(tally.keys()), np.fromiter(tally.values(), dtype=np.int64, count=len(tally))


def _merge(a: tuple[Any, np.ndarray], b: tuple[Any, np.ndarray], key_type: str
           ) -> tuple[Any, np.ndarray]:
    """Two (keys, counts) tables as one, counts of a shared key added."""
    if key_type == "int":
        keys = np.concatenate((a[0], b[0]))
        counts = np.concatenate((a[1], b[1]))
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) \
            if keys.size else np.zeros(0, dtype=np.int64)
        return keys[starts], np.add.reduceat(counts, starts) if keys.size else counts
    table: dict[str, int] = dict(zip(a[0], a[1].tolist()))
    for k, c in zip(b[0], b[1].tolist()):
        table[k] = table.get(k, 0) + c
    return list(table.keys()), np.fromiter(table.values(), dtype=np.int64, count=len(table))


def _take(table: tuple[Any, np.ndarray], keep: np.ndarray, key_type: str) -> tuple[Any, np.ndarray]:
    keys, counts = table
    if key_type == "int":
        return keys[keep], counts[keep]
    return [keys[i] for i in np.flatnonzero(keep).tolist()], counts[keep]


class KeyModelBuilder:
    """Builds a KeyModel from batches of keys (one pass), in bounded memory."""

    def __init__(self, key_type: str, sample_keys: int = SAMPLE_KEYS,
                 heavy_keys: int = HEAVY_KEYS) -> None:
        self.key_type = key_type
        self.sample_keys, self.heavy_keys = sample_keys, heavy_keys
        self.requests = 0
        empty: Any = np.zeros(0, dtype=np.int64) if key_type == "int" else []
        self._table: tuple[Any, np.ndarray] = (empty, np.zeros(0, dtype=np.int64))
        self._threshold = _FULL  # keys hashing below it are in the table (all, until pruned)
        self._heavy: HeavyHitters | None = None  # once the table outgrows the sample size

    def add(self, keys: Any) -> None:
        if len(keys) == 0:
            return
        self.requests += len(keys)
        chunk = _counted(keys, self.key_type)
        if self._heavy is not None:
            self._count_heavy(chunk)
        self._sample(chunk)

    def _count_heavy(self, chunk: tuple[Any, np.ndarray]) -> None:
        assert self._heavy is not None
        keys, counts = chunk
        total, error = int(counts.sum()), 0
        if counts.size > self.heavy_keys:  # prune the batch Misra–Gries style before merging
            error = kth_largest(counts, self.heavy_keys + 1)
            keys, counts = _take((keys, counts), counts > error, self.key_type)
            counts = counts - error
        items = keys.tolist() if isinstance(keys, np.ndarray) else keys
        self._heavy.merge_items(zip(items, counts.tolist()), total, error)

    def _sample(self, chunk: tuple[Any, np.ndarray]) -> None:
        if self._threshold < _FULL:
            chunk = _take(chunk, _key_hashes(chunk[0], self.key_type) < np.uint64(
                self._threshold), self.key_type)
        self._table = _merge(self._table, chunk, self.key_type)
        if self._heavy is None and len(self._table[1]) > self.sample_keys:
            self._heavy = HeavyHitters(self.heavy_keys)
            self._count_heavy(self._table)  # every key so far, with its exact count
        if len(self._table[1]) > 2 * self.sample_keys:
            hashes = _key_hashes(self._table[0], self.key_type)
            cut = np.partition(hashes, self.sample_keys)[self.sample_keys]
            self._threshold = int(cut)
            self._table = _take(self._table, hashes < cut, self.key_type)

    def model(self, source: str = "keys") -> KeyModel:
        keys, counts = self._table
        if self._threshold == _FULL:  # never pruned: the table holds every key, counted exactly
            return KeyModel(self.key_type, self.requests, True, KeyPart(keys, counts),
                            _empty_part(self.key_type), distinct=float(counts.size),
                            f2=float(np.dot(counts, counts)), source=source)
        heavy = self._heavy
        assert heavy is not None
        if len(counts) > self.sample_keys:  # the sample_keys smallest hashes: a bottom-k sample
            hashes = _key_hashes(keys, self.key_type)
            cut = np.partition(hashes, self.sample_keys)[self.sample_keys]
            self._threshold = int(cut)
            self._table = _take(self._table, hashes < cut, self.key_type)
            keys, counts = self._table
        exact = dict(zip(keys.tolist() if isinstance(keys, np.ndarray) else keys,
                         counts.tolist()))
        listed_keys = list(heavy.counts)
        listed_counts = np.array([exact.get(k, c) for k, c in heavy.counts.items()],
                                 dtype=np.int64)
        in_listed = set(listed_keys)
        tail = np.array([k not in in_listed for k in exact], dtype=bool)
        tail_keys, tail_counts = _take(self._table, tail, self.key_type)
        tail_requests = max(self.requests - float(listed_counts.sum()), 0.0)
        tail_seen = float(tail_counts.sum())
        inclusion = self._threshold / _FULL
        listed = KeyPart(np.array(listed_keys, dtype=np.int64) if self.key_type == "int"
                         else listed_keys, listed_counts)
        scale = tail_requests / tail_seen if tail_seen > 0 else 0.0
        sampled = KeyPart(tail_keys, tail_counts, scale)
        f2 = float(np.dot(listed_counts, listed_counts)) + scale * float(
            np.dot(tail_counts, tail_counts))
        return KeyModel(self.key_type, self.requests, False, listed, sampled, inclusion,
                        even=0.0 if tail_seen > 0 else tail_requests,
                        distinct=len(listed) + len(tail_counts) / max(inclusion, 1e-300),
                        f2=f2, heavy_error=heavy.error, source=source)


def _empty_part(key_type: str) -> KeyPart:
    return KeyPart(np.zeros(0, dtype=np.int64) if key_type == "int" else [],
                   np.zeros(0, dtype=np.int64))


# --------------------------------------------------------------------------- from a run result


def from_top_keys(key_type: str, requests: int, top: list[tuple[int | str, int]],
                  top_error: int, key_f2: float, seed: int) -> KeyModel:
    """A model from a run's recorded key weights: its top keys as given, and for the rest of the
    requests a tail of distinct synthetic keys with equal counts c and D keys such that D·c is
    the rest and D·c² the rest of Σ c² (more than SYNTHETIC_KEYS of them: spread evenly)."""
    listed_keys: Any = np.array([k for k, _ in top], dtype=np.int64) if key_type == "int" \
        else [str(k) for k, _ in top]
    listed_counts = np.array([c for _, c in top], dtype=np.int64)
    listed = KeyPart(listed_keys, listed_counts)
    rest = float(requests - listed_counts.sum())
    rest_f2 = max(key_f2 - float(np.dot(listed_counts, listed_counts)), rest)
    exact = top_error == 0 and rest <= 0
    if rest <= 0:
        return KeyModel(key_type, requests, exact, listed, _empty_part(key_type),
                        distinct=float(len(listed)), f2=key_f2, heavy_error=top_error,
                        source="result")
    per_key = rest_f2 / rest  # c
    tail_keys = max(1, int(round(rest / per_key)))  # D
    distinct = float(len(listed) + tail_keys)
    if tail_keys > SYNTHETIC_KEYS:
        return KeyModel(key_type, requests, False, listed, _empty_part(key_type), even=rest,
                        distinct=distinct, f2=key_f2, heavy_error=top_error, source="result")
    rng = np.random.default_rng(seed)
    taken = set(listed_keys.tolist() if key_type == "int" else listed_keys)
    synthetic: list[Any] = []
    while len(synthetic) < tail_keys:
        for value in rng.integers(-(1 << 62), 1 << 62, size=tail_keys).tolist():
            key = value if key_type == "int" else f"~tail-{value:x}"
            if key not in taken:
                taken.add(key)
                synthetic.append(key)
    synthetic = synthetic[:tail_keys]
    counts = np.full(tail_keys, max(1, int(round(per_key))), dtype=np.int64)
    sampled = KeyPart(np.array(synthetic, dtype=np.int64) if key_type == "int" else synthetic,
                      counts, rest / float(counts.sum()))
    return KeyModel(key_type, requests, False, listed, sampled, 1.0, distinct=distinct,
                    f2=key_f2, heavy_error=top_error, source="result")
