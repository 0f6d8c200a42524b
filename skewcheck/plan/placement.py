"""Where a router puts keys, for many shard counts at once.

A search over thousands of shard counts cannot route every key once per count, so each router
is taken apart where its definition allows:

- modular routers (`mod`, `hash-mod`, `murmur3`, `kafka`) are h(key) mod N for a hash h that does
  not depend on N: h is computed once per key, then every N costs one remainder and one bincount;
- `redis` is slot(key) · N // 16384: one histogram of the 16384 slots gives every N exactly;
- `jump` moves a key only to the newest shard as N grows: one walk of each key's jump sequence
  gives its bucket for every N (per-shard loads for a set of counts from one walk, or every count
  from 1 to N by applying the moves in order);
- any other router (and any router whose definition the checks below do not reproduce) is
  routed by the scenario's own router (with its parameters) for each N.

A fast form is used only after it agreed key for key with that router on a probe of the
planned keys at several shard counts, so it can never silently differ from the router.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.hashes import (
    crc16_text,
    java_int_hash_many,
    java_string_hashes,
    murmur2_text,
    murmur3_32_text,
    murmur3_x64_64_text,
    remainder,
)
from skewcheck.keytext import KeyBatch, KeyChunk
from skewcheck.routing import Router, make_router

REDIS_SLOTS = 16384
PROBE_COUNTS = (1, 2, 7, 100, 1021, 4096)  # shard counts a fast form must agree with the router at
LEVEL_CELLS = 1 << 21  # (counts + 1) × shards cells of one jump walk's difference table
_WALKS_KEPT = 18  # jump walks kept: a key model's two parts and their resampled sets
_JUMP_MULT = np.uint64(2862933555777941757)
_POSITIVE31 = np.int64(0x7FFF_FFFF)

Weights = np.ndarray | None  # per-key request counts; None: one request per key


def _bincount(shards: np.ndarray, weights: Weights, n: int) -> np.ndarray:
    return np.bincount(shards, weights=weights, minlength=n)


Build = Callable[[int], Router]  # the router over n shards


class Placement:
    """One router's placement of a batch of keys over many shard counts."""

    name: str
    build: Build
    exact_every_count = True  # `each_load` is as cheap as routing once (else: counts are sampled)

    def prepare(self, chunk: KeyChunk) -> np.ndarray:
        """What the router needs of a chunk of keys before it knows N (its hash, slot, seed),
        as int64."""
        raise NotImplementedError

    def ready(self, prepared: np.ndarray) -> np.ndarray:
        """The prepared values in the form `shards` reads fastest (converted once per batch)."""
        return prepared

    def shards(self, prepared: np.ndarray, batch: KeyBatch, n: int) -> np.ndarray:
        """The shard of every key at n shards."""
        raise NotImplementedError

    def loads(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
              counts: Sequence[int]) -> dict[int, np.ndarray]:
        """Per-shard load at each of `counts` (a stream adds these chunk by chunk)."""
        return {n: _bincount(self.shards(prepared, batch, n), weights, n) for n in counts}

    def each_load(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
                  counts: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(n, per-shard load) for every count, ascending."""
        for n in counts:
            yield n, _bincount(self.shards(prepared, batch, n), weights, n)


class _Modular(Placement):
    def __init__(self, name: str, step: Callable[[KeyChunk], np.ndarray], signed: bool) -> None:
        self.name = name
        self.prepare = step  # type: ignore[method-assign]
        self.signed = signed  # `mod` of signed keys: Python's remainder; hashes: unsigned 32 bits

    def ready(self, prepared: np.ndarray) -> np.ndarray:
        # unsigned 32-bit remainders are twice as fast as int64 ones, and every hash fits
        return prepared if self.signed else prepared.astype(np.uint32)

    def shards(self, prepared: np.ndarray, batch: KeyBatch, n: int) -> np.ndarray:
        if self.signed:
            return remainder(prepared, n)
        if prepared.dtype != np.uint32:
            prepared = prepared.astype(np.uint32)
        return prepared % np.uint32(n) if n < 2**32 else prepared


class _Slots(Placement):
    """Redis Cluster: 16384 slots split into N contiguous ranges."""

    name = "redis"

    def prepare(self, chunk: KeyChunk) -> np.ndarray:
        return crc16_text(chunk.redis_text()).astype(np.int64) & (REDIS_SLOTS - 1)

    def shards(self, prepared: np.ndarray, batch: KeyBatch, n: int) -> np.ndarray:
        return prepared * n // REDIS_SLOTS

    def _histogram(self, prepared: np.ndarray, weights: Weights) -> np.ndarray:
        return _bincount(prepared, weights, REDIS_SLOTS)

    def loads(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
              counts: Sequence[int]) -> dict[int, np.ndarray]:
        return dict(self.each_load(prepared, batch, weights, counts))

    def each_load(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
                  counts: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        hist = self._histogram(prepared, weights)
        slots = np.arange(REDIS_SLOTS, dtype=np.int64)
        for n in counts:
            load = np.bincount(slots * n // REDIS_SLOTS, weights=hist, minlength=n)
            yield n, load.astype(hist.dtype, copy=False) if weights is None else load


def _jump_next(key: np.ndarray, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step of Lamping–Veach: the next key state and the next jump point, with the same
    IEEE double steps as skewcheck.hashes.jump_hash, so the buckets agree bit for bit."""
    key = key * _JUMP_MULT + np.uint64(1)
    jump = ((bucket + 1).astype(np.float64)
            * (float(1 << 31) / ((key >> np.uint64(33)) + np.uint64(1)).astype(np.float64)))
    return key, jump.astype(np.int64)


class _Jump(Placement):
    """Jump consistent hash: a key sits at its last jump point below N."""

    name = "jump"

    def __init__(self, key_type: str) -> None:
        self.key_type = key_type
        self._walked: dict[tuple[int, int], tuple[int, Any, Any, Any]] = {}

    def prepare(self, chunk: KeyChunk) -> np.ndarray:
        if self.key_type == "int":
            return chunk.keys  # the int64 key as its two's complement
        return murmur3_x64_64_text(chunk.text()).view(np.int64)

    def shards(self, prepared: np.ndarray, batch: KeyBatch, n: int) -> np.ndarray:
        from skewcheck.hashes import jump_hash_many

        return jump_hash_many(prepared, n)

    def loads(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
              counts: Sequence[int]) -> dict[int, np.ndarray]:
        """Every count from one walk of the jump sequences: a key at bucket b until its next
        jump j serves every count in (b, j], added to a difference table over the counts."""
        ordered = sorted(set(counts))
        out: dict[int, np.ndarray] = {}
        top = ordered[-1]
        group = max(1, LEVEL_CELLS // top - 1)
        for lo in range(0, len(ordered), group):
            out.update(self._walk(prepared, weights, np.array(ordered[lo:lo + group])))
        return out

    def _walk(self, seeds: np.ndarray, weights: Weights, counts: np.ndarray
              ) -> dict[int, np.ndarray]:
        m, top = counts.size, int(counts[-1])
        dtype = np.int64 if weights is None else np.float64
        table = np.zeros((m + 1) * top, dtype=dtype)
        # row of the difference table for a bucket or jump point b: how many counts are <= b
        row = np.searchsorted(counts, np.arange(top + 1), side="right").astype(np.int64) * top
        key = seeds.view(np.uint64)
        bucket = np.zeros(key.size, dtype=np.int64)
        w = weights
        while key.size:
            key, jump = _jump_next(key, bucket)
            first = row[bucket] + bucket
            past = row[np.minimum(jump, top)] + bucket
            table += np.bincount(first, weights=w, minlength=table.size).astype(dtype, copy=False)
            table -= np.bincount(past, weights=w, minlength=table.size).astype(dtype, copy=False)
            more = jump < top
            key, bucket = key[more], jump[more]
            w = None if w is None else w[more]
        per_count = np.cumsum(table.reshape(m + 1, top)[:m], axis=0)
        return {int(n): per_count[i, :n].copy() for i, n in enumerate(counts.tolist())}

    def each_load(self, prepared: np.ndarray, batch: KeyBatch, weights: Weights,
                  counts: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Every count in order: from N to N+1 only keys with a jump at N move, to shard N."""
        ordered = sorted(set(counts))
        if not ordered:
            return
        top = ordered[-1]
        point, source, weight, total = self._moves(prepared, weights, top)
        load = np.zeros(top, dtype=weight.dtype)
        load[0] = total
        applied = 0
        for n in ordered:
            upto = int(np.searchsorted(point, n, side="left"))  # jumps to shards below n
            if upto > applied:
                np.subtract.at(load, source[applied:upto], weight[applied:upto])
                np.add.at(load, point[applied:upto], weight[applied:upto])
                applied = upto
            yield n, load[:n].copy()

    def _moves(self, prepared: np.ndarray, weights: Weights, top: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Every jump below `top` of these keys, in order: (to, from, weight), and the total.
        The walk of a set of keys and weights is kept, for the next counts asked of it."""
        cache_key = (id(prepared), id(weights))
        known = self._walked.get(cache_key)
        if known is not None and known[0] >= top:
            return known[1]
        key = prepared.view(np.uint64)
        bucket = np.zeros(key.size, dtype=np.int64)
        w = np.ones(key.size, dtype=np.int64) if weights is None else weights
        total = w.sum()
        points, sources, moved = [], [], []
        while key.size:
            key, jump = _jump_next(key, bucket)
            more = jump < top
            points.append(jump[more])
            sources.append(bucket[more])
            moved.append(w[more])
            key, bucket, w = key[more], jump[more], w[more]
        point = np.concatenate(points).astype(np.int32)  # shard numbers below 2**31
        order = np.argsort(point, kind="stable")
        walked = (point[order], np.concatenate(sources).astype(np.int32)[order],
                  np.concatenate(moved)[order], total)
        if len(self._walked) >= _WALKS_KEPT:
            self._walked.clear()
        self._walked[cache_key] = (top, walked, prepared, weights)  # the arrays stay alive
        return walked


class _Generic(Placement):
    """Any router, built over each shard count and routing the batch once per count."""

    exact_every_count = False

    def __init__(self, name: str, key_type: str, build: Build) -> None:
        self.name = name
        self.key_type = key_type
        self.build = build

    def prepare(self, chunk: KeyChunk) -> np.ndarray:
        return np.zeros(len(chunk), dtype=np.int64)  # nothing to prepare: routed per count

    def shards(self, prepared: np.ndarray, batch: KeyBatch, n: int) -> np.ndarray:
        return self.build(n).shard_many(batch)


def _modular(name: str, key_type: str) -> Placement | None:
    if name == "mod":
        return _Modular(name, lambda chunk: chunk.keys, signed=True)
    if name == "hash-mod":
        java = java_int_hash_many if key_type == "int" else java_string_hashes
        return _Modular(name, lambda chunk: np.abs(java(chunk.keys)), signed=False)
    if name == "murmur3":
        return _Modular(name, lambda chunk: murmur3_32_text(chunk.text()).astype(np.int64),
                        signed=False)
    if name == "kafka":
        return _Modular(name, lambda chunk: murmur2_text(chunk.text()).astype(np.int64)
                        & _POSITIVE31, signed=False)
    return None


def _fast(name: str, key_type: str) -> Placement | None:
    if name == "jump":
        return _Jump(key_type)
    if name == "redis":
        return _Slots()
    return _modular(name, key_type)


def placement_for(name: str, key_type: str, probe: KeyBatch, build: Build | None = None) -> Placement:
    """The fastest placement that agrees with the router `build(N)` (default: `make_router(name,
    N, key_type)`, no parameters) on `probe`."""
    build = build or (lambda n: make_router(name, n, key_type))
    fast = _fast(name, key_type)
    if fast is not None and len(probe):
        prepared = prepare(fast, probe)
        try:
            agrees = all(np.array_equal(fast.shards(prepared, probe, n), build(n).shard_many(probe))
                         for n in PROBE_COUNTS)
        except UsageError:
            agrees = False
        if agrees:
            fast.build = build
            return fast
    return _Generic(name, key_type, build)


def prepare(placement: Placement, batch: KeyBatch) -> np.ndarray:
    return placement.ready(batch.map(placement.prepare, np.int64))


def prepare_all(placements: Sequence[Placement], batch: KeyBatch) -> list[np.ndarray]:
    """Every placement's per-key values of a batch, its key text built once per chunk."""
    values = batch.map_all([p.prepare for p in placements], np.int64)
    return [p.ready(v) for p, v in zip(placements, values)]


def routable(placement: Placement, n: int) -> bool:
    """Whether the router can be built over n shards at all (some fix their count)."""
    try:
        placement.build(n)
    except UsageError:
        return False
    return True
