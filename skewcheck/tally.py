"""Counts per router × shard, over the whole run and over a sliding window.

`add()` is the per-request hot path: it only remembers the key. The keys of a slot are normalised
into one `KeyBatch`, routed under every router, bucketed for F2 and fed to the heavy hitters as
one vectorised batch when the slot ends, when PENDING_KEYS are waiting, or when anything is read.
Everything derived lives in `skewcheck.summary`. Memory is routers × shards × window slots + the
sketches + at most PENDING_KEYS held keys, whatever the number of requests or keys.

A tally writes its counts as a `Frame` and adds frames by addition (workers → master, sidecar
instances → gate). A tally may have followers (`follow`): every batch it routes is also counted
there, so a second view of the same requests (the Kafka producer's per-second frames) costs no
second routing.
"""

from __future__ import annotations

import copy
import math
import time
from itertools import repeat
from typing import Any, Callable, Sequence

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.frame import Frame, FrameRules, LatencyPart, ObservedPart, dense, sparse
from skewcheck.hashes import murmur3_32_text
from skewcheck.keytext import INT64_MAX, INT64_MIN, KeyBatch, KeyChunk, checked_int, checked_str
from skewcheck.latency import ShardLatency, latency_array
from skewcheck.limits import (
    MAX_FRAME_PAIRS,
    MAX_FRAME_WINDOW_S,
    MAX_KEY_CHARS,
    MAX_MISMATCH_EXAMPLES,
    MAX_OBSERVED_PAIRS,
)
from skewcheck.sketch import (
    DEFAULT_TOP_CAPACITY,
    F2_BUCKETS,
    F2_SEED,
    DistinctKeys,
    HeavyHitters,
    batch_counts,
    register_maxima,
)
from skewcheck.timeline import Timeline

DEFAULT_WINDOW_S = 10.0
DEFAULT_SLOT_S = 1.0  # window resolution: QPS is averaged over whole slots of this length
PENDING_KEYS = 8192  # keys `add` holds before they are counted as one batch
_BUCKET_MASK = np.uint32(F2_BUCKETS - 1)


def _counted_keys(keys: Any, key_type: str) -> KeyBatch:
    """A batch a tally may count: routable, and no str key longer than MAX_KEY_CHARS (an ID, not a
    document; a frame could not carry it to the master or the sidecar)."""
    batch = KeyBatch.of(keys, key_type)
    if key_type == "str" and len(batch) and max(map(len, batch.keys)) > MAX_KEY_CHARS:
        long = next(k for k in batch.keys if len(k) > MAX_KEY_CHARS)
        raise UsageError(f"key {long[:40]!r}… is longer than {MAX_KEY_CHARS} characters")
    return batch


def _key_hash(chunk: KeyChunk) -> np.ndarray:
    """Each key's sketch hash: murmur3 under a seed no router uses, from the shared text. Its low
    bits are the F2 bucket and the HLL register, the rest the HLL rank."""
    return murmur3_32_text(chunk.text(), F2_SEED)


class _Increment:
    """What one routed batch adds: computed once, added to a tally and to its followers."""

    __slots__ = ("requests", "per_router", "buckets", "registers", "top", "failures", "unreached",
                 "observed", "observed_requests", "mismatches", "examples", "pairs",
                 "latency")

    def __init__(self, requests: int, per_router: list[np.ndarray], buckets: np.ndarray,
                 registers: np.ndarray, top: tuple[list, int, int]) -> None:
        self.requests = requests
        self.per_router = per_router
        self.buckets = buckets
        self.registers = registers
        self.top = top
        self.failures: np.ndarray | None = None  # failed requests per shard (observed, else primary)
        self.unreached: np.ndarray | None = None  # requests that never reached a shard, by prediction
        self.observed: np.ndarray | None = None
        self.observed_requests = 0
        self.mismatches = 0
        self.examples: list[tuple[int | str, int, int]] = []
        self.pairs: list[tuple[int | str, int]] = []
        self.latency: tuple[np.ndarray, np.ndarray] | None = None  # (shard, latency bucket) per request


class Tally:
    def __init__(
        self,
        routers: Sequence[Any],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        slot_s: float = DEFAULT_SLOT_S,
        timeline_s: float | None = None,
        top_capacity: int = DEFAULT_TOP_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not routers:
            raise ValueError("a tally needs at least one router")
        shards = {r.shards for r in routers}
        if len(shards) != 1:
            raise ValueError("all routers of a tally share one shard count")
        self.routers = tuple(routers)
        self.router_names = tuple(r.name for r in routers)
        self.shards = shards.pop()
        self.key_type = routers[0].key_type
        self.rules = FrameRules(self.router_names, self.shards, self.key_type)
        self.window_s = float(window_s)
        self.slot_s = float(slot_s)
        self.clock = clock
        self._nslots = max(1, math.ceil(self.window_s / self.slot_s))
        r, k = len(self.routers), self.shards
        self._ring = np.zeros((self._nslots, r, k), dtype=np.int64)  # live window slots
        self._ring_requests = np.zeros(self._nslots, dtype=np.int64)
        self._retired = np.zeros((r, k), dtype=np.int64)  # slots that left the window
        self._slot: int | None = None  # absolute slot number of the current slot
        self._slot_end = -math.inf  # when the current slot ends
        self._cur = self._ring[0]
        self._counted = 0  # requests in the counts (the pending keys are not yet)
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._key_buckets = np.zeros(F2_BUCKETS, dtype=np.int64)
        self.bucketed_requests = 0  # requests whose key is in the F2 buckets (frames may lack them)
        self.distinct = DistinctKeys()
        self.registered_requests = 0  # requests whose key is in the HLL (frames may lack it)
        self.top = HeavyHitters(top_capacity)
        self._failures = np.zeros(k, dtype=np.int64)  # reached the target, and failed (5xx, timeout)
        self._unreached = np.zeros(k, dtype=np.int64)  # never reached it (refused, reset)
        # observed shard (X-Shard answered by the target) vs the primary router's prediction
        self._observed = np.zeros(k, dtype=np.int64)
        self._shard_names: dict[Any, int] | None = None  # built when a target first answers X-Shard
        self._pending_keys: list[Any] = []
        self._pending_observed: list[Any] = []  # X-Shard answers, None where there was none
        self._pending_failed: list[int] = []  # positions in _pending_keys of failed requests
        self._pending_unreached: list[Any] = []  # keys of requests that got no answer at all
        self._pending_latency: list[Any] = []  # aligned with _pending_keys: ms, or None
        self._latency = ShardLatency(k)  # per shard the request went to (observed, else primary)
        # the heatmap's columns: at least a slot wide (a master's frames arrive every few seconds)
        self.timeline = Timeline(k, max(self.slot_s, timeline_s or self.slot_s))
        self.observed_requests = 0
        self.observed_mismatches = 0
        self.mismatch_examples: list[tuple[int | str, int, int]] = []
        self.observed_pairs: list[tuple[int | str, int]] = []  # (key, X-Shard), for infer
        self.unroutable = 0  # keys no router could take (not an int64 / not text), not counted
        self.unroutable_example: str | None = None
        self.followers: list[Tally] = []

    @property
    def requests(self) -> int:
        """Requests counted so far, the pending keys included."""
        return self._counted + len(self._pending_keys)

    def follow(self, other: Tally) -> None:
        """Count every batch this tally routes in `other` too (same routers and shards)."""
        if other.rules != self.rules:
            raise ValueError("a follower counts the same routers over the same shards")
        self.flush()
        self.followers.append(other)

    # --- hot path -------------------------------------------------------------------------

    def add(self, key: int | str, ts: float | None = None, observed_shard: int | str | None = None,
            failed: bool = False, latency_ms: float | None = None) -> None:
        """Count one request's key; `observed_shard` is the shard the target reported (an int or
        the X-Shard header's text; anything but a shard number counts as a mismatch); `failed`
        marks a request the target answered with a failure; `latency_ms` its response time."""
        now = self.clock() if ts is None else ts
        if now >= self._slot_end:
            self._advance(self._slot_of(now), now)
        if now > self.last_ts:  # a late timestamp never moves the run's end backwards
            self.last_ts = now
        # only remembered here; routing, buckets, top keys and X-Shard run per batch, vectorised
        if failed:
            self._pending_failed.append(len(self._pending_keys))
        self._pending_observed.append(observed_shard)
        self._pending_latency.append(latency_ms)
        pending = self._pending_keys
        pending.append(key)
        if len(pending) >= PENDING_KEYS:
            self.flush()

    def add_unreached(self, key: int | str, ts: float | None = None) -> None:
        """A request that never reached the target (connection refused, reset): no shard carried
        it, so it is not one of the requests; counted apart by the shard it was meant for."""
        now = self.clock() if ts is None else ts
        if now >= self._slot_end:
            self._advance(self._slot_of(now), now)
        self._pending_unreached.append(key)
        if len(self._pending_unreached) >= PENDING_KEYS:
            self.flush()

    def has_counts(self) -> bool:
        """Whether a frame drained now would carry anything (requests or unroutable keys)."""
        self.flush()
        return bool(self.requests or self.unroutable or self._unreached.any())

    def flush(self) -> None:
        """Route and count the keys `add` holds back, as one batch (every read path does this)."""
        keys, observed, failed = self._pending_keys, self._pending_observed, self._pending_failed
        unreached, latency = self._pending_unreached, self._pending_latency
        if not keys and not unreached:
            return
        self._pending_keys, self._pending_observed, self._pending_failed = [], [], []
        self._pending_unreached, self._pending_latency = [], []
        if keys:
            flags = None
            if failed:
                flags = np.zeros(len(keys), dtype=bool)
                flags[failed] = True
            times = latency_array(latency)  # None (no latency given) becomes NaN
            try:
                batch = _counted_keys(keys, self.key_type)
            except UsageError:
                batch, observed, flags, times = self._routable(keys, observed, flags, times)
            if len(batch):
                self._count(batch, observed, flags, times)
        if unreached:
            self._count_unreached(unreached)

    def _routable(self, keys: list[Any], observed: list[Any], failed: np.ndarray | None,
                  latency: np.ndarray) -> tuple[KeyBatch, list[Any], np.ndarray | None, np.ndarray]:
        """The keys every router can take, their observations, failure flags and latencies; the
        others are counted in `unroutable` (one by one: only a batch that failed comes here)."""
        good = [i for i, key in enumerate(keys) if self._routable_key(key)]
        kept = None if failed is None else failed[good]
        return (KeyBatch.of([keys[i] for i in good], self.key_type), [observed[i] for i in good], kept,
                latency[good])

    def _routable_key(self, key: Any) -> bool:
        check = checked_int if self.key_type == "int" else checked_str
        try:
            _counted_keys([check(key)], self.key_type)  # e.g. text that UTF-8 can't encode
        except UsageError as exc:
            self.unroutable += 1
            if self.unroutable_example is None:
                self.unroutable_example = str(exc)
            return False
        return True

    def _count_unreached(self, keys: list[Any]) -> None:
        good = [key for key in keys if self._routable_key(key)] if keys else []
        if not good:
            return
        shards = self.routers[0].shard_many(KeyBatch.of(good, self.key_type))
        counts = np.bincount(shards, minlength=self.shards)
        self._unreached += counts
        for follower in self.followers:
            follower._unreached += counts

    # --- batches ----------------------------------------------------------------------------

    def add_many(self, keys: Any, ts: float | None = None, observed: Sequence[Any] | None = None,
                 failed: np.ndarray | None = None, latency_ms: Sequence[float | None] | None = None) -> None:
        """Route and count a batch vectorised (planner, Kafka poll batches). `observed` holds the
        shard the target reported for each key (None where it reported none), `failed` flags the
        requests that failed, `latency_ms` their response times (None where unknown). A key no
        router takes raises UsageError before anything is counted."""
        if len(keys) == 0:
            return
        batch = _counted_keys(keys, self.key_type)
        times = None if latency_ms is None else latency_array(latency_ms)
        if times is not None and len(times) != len(batch):
            raise ValueError("one latency per key")
        self._at(self.clock() if ts is None else ts)
        flags = None if failed is None or not np.any(failed) else np.asarray(failed, dtype=bool)
        self._count(batch, None if observed is None else list(observed), flags, times)

    def _count(self, batch: KeyBatch, observed: list[Any] | None, failed: np.ndarray | None = None,
               latency: np.ndarray | None = None) -> None:
        """Route a normalised batch once and add it here and to every follower."""
        steps = [router.shard_chunk for router in self.routers]
        *per_key, hashes = batch.map_all([*steps, _key_hash], np.int64)
        register, rank = DistinctKeys.ranks(hashes)
        inc = _Increment(len(batch), [np.bincount(s, minlength=self.shards) for s in per_key],
                         np.bincount(hashes & (F2_BUCKETS - 1), minlength=F2_BUCKETS),
                         register_maxima(register, rank),
                         batch_counts(batch.values(), self.top.capacity))
        where = per_key[0]  # the shard a request went to: the target's word for it, else the primary's
        if observed is not None:
            answered = [i for i, o in enumerate(observed) if o is not None]
            if len(answered) == len(observed):
                where = self._observe(inc, batch, per_key[0], observed)
            elif answered:
                at = np.array(answered, dtype=np.int64)
                got = self._observe(inc, batch.take(at), per_key[0][at], [observed[i] for i in answered])
                where = per_key[0].copy()
                where[at] = got
        if failed is not None:
            inc.failures = np.bincount(where[failed], minlength=self.shards)
        if latency is not None and not np.isnan(latency).all():
            inc.latency = ShardLatency.cells(where, latency)
        self._add(inc)
        when = self.last_ts if self.last_ts is not None else self.clock()
        for follower in self.followers:
            follower._at(when)  # the slot the batch's requests arrived in
            follower._add(inc)

    def _observe(self, inc: _Increment, keys: KeyBatch, predicted: np.ndarray,
                 observed: Sequence[Any]) -> np.ndarray:
        """The shards a target reported for these keys, against the primary router's prediction;
        the shard each request went to (the reported one where it is a shard, else the prediction)."""
        if self._shard_names is None:
            self._shard_names = {**{i: i for i in range(self.shards)}, **{str(i): i for i in range(self.shards)}}
        got = _shard_numbers(observed, self._shard_names)
        valid = got[(got >= 0) & (got < self.shards)]
        inc.observed = np.bincount(valid, minlength=self.shards)
        inc.observed_requests = len(got)
        mismatched = np.flatnonzero(got != predicted)
        inc.mismatches = len(mismatched)
        inc.examples = [(keys.key(i), int(predicted[i]), int(got[i]))
                        for i in mismatched[:MAX_MISMATCH_EXAMPLES].tolist()]
        room = MAX_OBSERVED_PAIRS - len(self.observed_pairs)
        if room > 0:
            answered = np.flatnonzero(got >= 0)[:room].tolist()
            inc.pairs = [(keys.key(i), int(got[i])) for i in answered]
        return np.where((got >= 0) & (got < self.shards), got, predicted)

    def _add(self, inc: _Increment) -> None:
        self._counted += inc.requests
        self._ring_requests[self._cur_index] += inc.requests
        for i, counts in enumerate(inc.per_router):
            self._cur[i] += counts
        self._key_buckets += inc.buckets
        self.bucketed_requests += inc.requests
        self.distinct.add_ranks(inc.registers)
        self.registered_requests += inc.requests
        self.top.merge_items(*inc.top)
        if inc.failures is not None:
            self._failures += inc.failures
        if inc.latency is not None:
            self._latency.add_cells(*inc.latency)
        if inc.observed is not None:
            self._observed += inc.observed
            self.observed_requests += inc.observed_requests
            self.observed_mismatches += inc.mismatches
            room = MAX_MISMATCH_EXAMPLES - len(self.mismatch_examples)
            self.mismatch_examples.extend(inc.examples[:max(room, 0)])
            self._keep_pairs(inc.pairs)

    def _keep_pairs(self, pairs: list[tuple[int | str, int]]) -> None:
        room = MAX_OBSERVED_PAIRS - len(self.observed_pairs)
        if room > 0 and pairs:
            self.observed_pairs.extend(pairs[:room])

    # --- frames -----------------------------------------------------------------------------

    def add_frame(self, frame: Frame, ts: float | None = None) -> None:
        """Add a frame (a worker's drained tally, a sidecar's counts) by addition. The frame was
        parsed against this tally's rules (`Frame.parse(raw, tally.rules)`), so nothing here can
        fail: a frame is added whole or, when it was meant for another tally, not at all."""
        if frame.rules != self.rules:
            raise ValueError("the frame was not parsed for this tally's routers and shards")
        now = self.clock() if ts is None else ts
        self._at(now)
        start = frame.window_start
        if self.first_ts is not None and 0 < start < self.first_ts:
            self.first_ts = float(start)  # the run began when the worker's first request did
        self._counted += frame.requests
        self._ring_requests[self._cur_index] += frame.requests
        for i, name in enumerate(self.router_names):
            counts = frame.shard_counts(name, self.shards)
            if counts is not None:
                self._cur[i] += counts
        if frame.key_buckets is not None:
            self._key_buckets += frame.bucket_counts()
            self.bucketed_requests += frame.requests
        if frame.distinct is not None:
            self.distinct.add_ranks(frame.registers())
            self.registered_requests += frame.requests
        if frame.failures:
            self._failures += dense(frame.failures, self.shards)
        if frame.unreached:
            self._unreached += dense(frame.unreached, self.shards)
        if frame.latency is not None:
            self._latency.merge_part(frame.latency.shards)
        self.top.merge_items(frame.typed_top_keys(), total=frame.requests, error=frame.top_error)
        self.unroutable += frame.unroutable
        obs = frame.observed
        if obs is not None:
            self._observed += dense(obs.shards, self.shards)
            self.observed_requests += obs.requests
            self.observed_mismatches += obs.mismatches
            room = MAX_MISMATCH_EXAMPLES - len(self.mismatch_examples)
            self.mismatch_examples.extend(frame.typed_examples()[:max(room, 0)])
            self._keep_pairs(frame.typed_pairs())

    def drain_frame(self, source: str, now: float | None = None) -> Frame:
        """Everything counted since the last drain, as a frame; then start afresh."""
        frame = self.frame(source, now)
        self.reset()
        return frame

    def frame(self, source: str, now: float | None = None) -> Frame:
        """Everything counted so far, as a frame (the tally keeps counting)."""
        now = self.clock() if now is None else now
        counts = self.counts()
        self.top.compact()  # every counter goes into the frame, its pruning into top_error
        start = self.first_ts if self.first_ts is not None else now
        observed = None
        if self.observed_requests:
            observed = ObservedPart(shards=sparse(self.observed), requests=self.observed_requests,
                                    mismatches=self.observed_mismatches,
                                    examples=[(str(k), p, o) for k, p, o in self.mismatch_examples],
                                    pairs=[(str(k), s) for k, s in
                                           self.observed_pairs[:MAX_FRAME_PAIRS]] or None)
        return Frame.of_counts(
            self.rules,
            source=source,
            window_start=start,
            window_s=min(max(0.0, now - start), MAX_FRAME_WINDOW_S),  # a longer span is history
            requests=self.requests,
            routers={name: sparse(counts[i]) for i, name in enumerate(self.router_names)},
            top_keys=[(str(k), c) for k, c in self.top.top(self.top.capacity)],
            top_error=self.top.error,
            key_buckets=sparse(self.key_buckets),
            distinct=sparse(self.distinct.registers) if self.registered_requests == self.requests else None,
            failures=sparse(self.failures),
            unreached=sparse(self.unreached),
            observed=observed,
            unroutable=self.unroutable,
            latency=LatencyPart.of(self._latency.to_part()) if self._latency.counts.any() else None,
        )

    def copy(self) -> Tally:
        """An independent copy of the counts (the held-back keys counted first): what a reader
        takes under a lock, to summarise outside it."""
        self.flush()
        other = copy.copy(self)
        for name in ("_ring", "_ring_requests", "_retired", "_key_buckets", "_observed", "_failures",
                     "_unreached"):
            setattr(other, name, getattr(self, name).copy())
        other.distinct = DistinctKeys()
        other.distinct.add_ranks(self.distinct.registers)
        other._cur = other._ring[other._cur_index]
        other.top = HeavyHitters(self.top.capacity)
        other.top.merge(self.top)
        other.mismatch_examples = list(self.mismatch_examples)
        other.observed_pairs = list(self.observed_pairs)
        other._pending_keys, other._pending_observed = [], []
        other._pending_failed, other._pending_unreached, other._pending_latency = [], [], []
        other._latency = self._latency.copy()
        other.timeline = self.timeline.copy()
        other.followers = []
        return other

    def reset(self) -> None:
        self._ring[:] = 0
        self._ring_requests[:] = 0
        self._retired[:] = 0
        self._slot = None
        self._slot_end = -math.inf
        self._counted = 0
        self.first_ts = self.last_ts = None
        self._key_buckets[:] = 0
        self.bucketed_requests = 0
        self.distinct.clear()
        self.registered_requests = 0
        self.top.clear()
        self._observed[:] = 0
        self._failures[:] = 0
        self._unreached[:] = 0
        self._pending_keys, self._pending_observed, self._pending_failed = [], [], []
        self._pending_unreached, self._pending_latency = [], []
        self._latency.clear()
        self.timeline.clear()
        self.observed_requests = self.observed_mismatches = 0
        self.mismatch_examples.clear()
        self.observed_pairs = []
        self.unroutable = 0
        self.unroutable_example = None

    @property
    def key_buckets(self) -> np.ndarray:
        """Request counts per hashed key bucket (the F2 sketch)."""
        self.flush()
        return self._key_buckets

    @property
    def observed(self) -> np.ndarray:
        """Requests per shard as the target reported them (X-Shard)."""
        self.flush()
        return self._observed

    @property
    def failures(self) -> np.ndarray:
        """Failed requests per shard (the reported shard where there is one, else the primary's)."""
        self.flush()
        return self._failures

    @property
    def latency(self) -> ShardLatency:
        """Per-shard latency sketches (where each request went: observed, else the primary's)."""
        self.flush()
        return self._latency

    @property
    def unreached(self) -> np.ndarray:
        """Requests that never reached the target, per the shard the primary router meant."""
        self.flush()
        return self._unreached

    def timeline_view(self) -> Timeline:
        """The heatmap's columns with the slot still being counted added."""
        self.flush()
        if self._slot is None:
            return self.timeline.copy()
        return self.timeline.view(self._slot * self.slot_s, self._ring[self._slot % self._nslots][0])

    def distinct_keys(self) -> float | None:
        """How many distinct keys were counted: exact while the heavy hitters hold every key,
        else the HLL estimate; None when some counts came without either (foreign frames)."""
        self.flush()
        top = self.top
        if top.error == 0 and len(top.counts) < top.capacity and sum(top.counts.values()) == self.requests:
            return float(len(top.counts))
        if self.registered_requests < self.requests:
            return None
        return self.distinct.estimate()

    # --- window bookkeeping -------------------------------------------------------------------

    @property
    def _cur_index(self) -> int:
        return (self._slot or 0) % self._nslots

    def _slot_of(self, now: float) -> int:
        """The slot `now` opens: past the current one even where float division rounds down."""
        slot = int(now // self.slot_s)
        return slot if self._slot is None or slot > self._slot else self._slot + 1

    def _at(self, now: float) -> None:
        if now >= self._slot_end:
            self._advance(self._slot_of(now), now)
        self.last_ts = now if self.last_ts is None else max(self.last_ts, now)

    def _advance(self, slot: int, now: float) -> None:
        if self.first_ts is None:
            self.first_ts = self.last_ts = now
        self.flush()
        if self._slot is None:
            self._slot = slot
        elif slot > self._slot:
            # the current slot is complete: it becomes part of the heatmap's history
            self.timeline.add(self._slot * self.slot_s, self._ring[self._slot % self._nslots][0])
            # slots between the old and the new one leave the window: fold them into the run total
            steps = min(slot - self._slot, self._nslots)
            for j in range(1, steps + 1):
                idx = (self._slot + j) % self._nslots
                self._retired += self._ring[idx]
                self._ring[idx] = 0
                self._ring_requests[idx] = 0
            self._slot = slot
        # a late timestamp (slot < current) is counted in the current slot: windows follow arrival
        self._cur = self._ring[self._slot % self._nslots]
        self._slot_end = (self._slot + 1) * self.slot_s

    def extend_to(self, ts: float) -> None:
        """The run went on until `ts` (a restored or merged span), with nothing more counted."""
        self._at(ts)

    def advance_to(self, now: float | None = None) -> None:
        """Let the window slide to `now` even without traffic (so idle shards decay to 0 QPS)."""
        now = self.clock() if now is None else now
        if self._slot is not None and int(now // self.slot_s) > self._slot:
            self._advance(int(now // self.slot_s), now)

    # --- read side (used by summary) ----------------------------------------------------------

    def counts(self) -> np.ndarray:
        """Whole-run counts, routers × shards."""
        self.flush()
        return self._retired + self._ring.sum(axis=0)

    def window_counts(self, now: float | None = None) -> tuple[np.ndarray, int, float]:
        """(counts routers × shards, requests, seconds covered) over the sliding window."""
        self.flush()
        if self._slot is None or self.first_ts is None:
            return np.zeros_like(self._retired), 0, 0.0
        end = self.last_ts if now is None else max(now, self.last_ts or now)
        start = max((self._slot - self._nslots + 1) * self.slot_s, self.first_ts)
        covered = max(end - start, self.slot_s)  # at least one slot, so a burst isn't read as huge QPS
        return self._ring.sum(axis=0), int(self._ring_requests.sum()), covered

    @property
    def duration_s(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts


def _shard_numbers(observed: Sequence[Any], names: dict[Any, int]) -> np.ndarray:
    """Reported shards (ints or header text) as int64; -1 for anything that isn't a number.

    `names` maps every valid shard, as int and as text, to its number: one dict lookup per
    answer; only answers outside it (other shards, garbage) are parsed one by one.
    """
    try:
        got = np.fromiter(map(names.get, observed, repeat(-1)), dtype=np.int64, count=len(observed))
    except TypeError:  # something unhashable, e.g. a list from a repeated header
        got = np.full(len(observed), -1, dtype=np.int64)
    for i in np.flatnonzero(got < 0).tolist():
        got[i] = shard_number(observed[i])
    return got


def shard_number(value: Any) -> int:
    """A reported shard (an int or the X-Shard header's text) as a number; -1 for anything else."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, str)):
        return -1
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if INT64_MIN <= number <= INT64_MAX else -1
