"""Counts per router × shard, over the whole run and over a sliding window.

`add()` is the per-request hot path: one routing call and one increment per router, one F2
bucket, one heavy-hitter update. Everything derived lives in `skewcheck.summary`.
Memory is routers × shards × window slots + the sketches, whatever the number of requests or keys.
A Tally drains into a *frame* (the Kafka/worker message) and merges frames by addition.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from skewcheck.sketch import DEFAULT_TOP_CAPACITY, F2_BITS, F2_SEED, HeavyHitters, key_bucket

DEFAULT_WINDOW_S = 10.0
DEFAULT_SLOT_S = 1.0  # window resolution: QPS is averaged over whole slots of this length


class Tally:
    def __init__(
        self,
        routers: Sequence[Any],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        slot_s: float = DEFAULT_SLOT_S,
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
        self.window_s = float(window_s)
        self.slot_s = float(slot_s)
        self.clock = clock
        self._nslots = max(1, math.ceil(self.window_s / self.slot_s))
        self._shard_fns = tuple(r.shard for r in routers)
        self._text = str if self.key_type == "int" else (lambda k: k)
        r, k = len(self.routers), self.shards
        self._ring = np.zeros((self._nslots, r, k), dtype=np.int64)  # live window slots
        self._ring_requests = np.zeros(self._nslots, dtype=np.int64)
        self._retired = np.zeros((r, k), dtype=np.int64)  # slots that left the window
        self._slot = None  # absolute slot number of the current slot
        self._cur = self._ring[0]
        self.requests = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._key_buckets = np.zeros(1 << F2_BITS, dtype=np.int64)
        self.bucketed_requests = 0  # requests whose key is in the F2 buckets (frames may lack them)
        self.top = HeavyHitters(top_capacity)
        # observed shard (X-Shard answered by the target) vs the primary router's prediction
        self._observed = np.zeros(k, dtype=np.int64)
        self._new_pending()
        self.observed_requests = 0
        self.observed_mismatches = 0
        self.mismatch_examples: list[tuple[int | str, int, int]] = []

    # --- hot path -------------------------------------------------------------------------

    def add(self, key: int | str, ts: float | None = None, observed_shard: int | None = None) -> None:
        now = self.clock() if ts is None else ts
        slot = int(now // self.slot_s)
        if self._slot is None or slot > self._slot:
            self._advance(slot, now)
        if now > self.last_ts:  # a late timestamp never moves the run's end backwards
            self.last_ts = now
        self.requests += 1
        self._pending_requests += 1
        # plain lists: a Python int increment costs a fraction of a numpy scalar update
        pending = self._pending
        predicted = -1
        for i, shard_of in enumerate(self._shard_fns):
            s = shard_of(key)
            pending[i][s] += 1
            if i == 0:
                predicted = s
        self._pending_buckets[key_bucket(self._text(key))] += 1
        self.top.add(key)
        if observed_shard is not None:
            self._observe(key, predicted, observed_shard)

    def _new_pending(self) -> None:
        self._pending = [[0] * self.shards for _ in self.routers]
        self._pending_requests = 0
        self._pending_buckets = [0] * (1 << F2_BITS)
        self._pending_observed = [0] * self.shards

    def _flush(self) -> None:
        """Move per-key counts from the plain lists into the current numpy slot."""
        if not self._pending_requests:
            return
        self._cur += np.array(self._pending, dtype=np.int64)
        self._ring_requests[self._cur_index] += self._pending_requests
        self._key_buckets += np.array(self._pending_buckets, dtype=np.int64)
        self.bucketed_requests += self._pending_requests
        self._observed += np.array(self._pending_observed, dtype=np.int64)
        self._new_pending()

    @property
    def key_buckets(self) -> np.ndarray:
        """Request counts per hashed key bucket (the F2 sketch)."""
        self._flush()
        return self._key_buckets

    @property
    def observed(self) -> np.ndarray:
        """Requests per shard as the target reported them (X-Shard)."""
        self._flush()
        return self._observed

    def _observe(self, key: int | str, predicted: int, observed: int) -> None:
        if 0 <= observed < self.shards:
            self._pending_observed[observed] += 1
        self.observed_requests += 1
        if observed != predicted:
            self.observed_mismatches += 1
            if len(self.mismatch_examples) < 10:
                self.mismatch_examples.append((key, predicted, observed))

    # --- batches ----------------------------------------------------------------------------

    def add_many(self, keys: np.ndarray, ts: float | None = None) -> None:
        """Route and count a batch vectorised (planner, Kafka poll batches)."""
        n = len(keys)
        if n == 0:
            return
        now = self.clock() if ts is None else ts
        self._at(now)
        self.requests += n
        self._ring_requests[self._cur_index] += n
        for i, router in enumerate(self.routers):
            self._cur[i] += np.bincount(router.shard_many(keys), minlength=self.shards)
        from skewcheck.hashes import murmur3_32_many

        buckets = murmur3_32_many(keys, self.key_type, F2_SEED) & np.uint32((1 << F2_BITS) - 1)
        self._key_buckets += np.bincount(buckets.astype(np.int64), minlength=self._key_buckets.size)
        self.bucketed_requests += n
        self.top.add_many(keys)

    def add_frame(self, frame: dict[str, Any], ts: float | None = None) -> None:
        """Merge a pre-aggregated frame (a worker's drained tally) by addition.

        The whole frame is checked first: a frame that doesn't fit (other routers or shard
        count, counts that don't add up) raises ValueError and changes nothing.
        """
        parsed = self._parse_frame(frame)
        now = self.clock() if ts is None else ts
        self._at(now)
        requests, counts, buckets, top, top_error, observed = parsed
        start = frame.get("window_start")
        if isinstance(start, (int, float)) and self.first_ts is not None and 0 < start < self.first_ts:
            self.first_ts = float(start)  # the run began when the worker's first request did
        self.requests += requests
        self._ring_requests[self._cur_index] += requests
        for i, per_shard in counts.items():
            for shard, count in per_shard:
                self._cur[i, shard] += count
        for bucket, count in buckets:
            self._key_buckets[bucket] += count
        self.bucketed_requests += sum(c for _, c in buckets)
        self.top.merge_items(top, total=requests, error=top_error)
        if observed:
            shards, obs_requests, mismatches, examples = observed
            for shard, count in shards:
                self._observed[shard] += count
            self.observed_requests += obs_requests
            self.observed_mismatches += mismatches
            room = 10 - len(self.mismatch_examples)
            self.mismatch_examples.extend(examples[:max(room, 0)])

    def _parse_frame(self, frame: dict[str, Any]) -> tuple:
        def count(value: Any) -> int:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"count {value!r} is not a non-negative integer")
            return value

        def index(value: Any, size: int, what: str) -> int:
            try:
                i = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{what} {value!r} is not an integer") from None
            if not 0 <= i < size:
                raise ValueError(f"{what} {i} is outside 0..{size - 1}")
            return i

        if not isinstance(frame, dict):
            raise ValueError("a frame is a JSON object")
        requests = count(frame.get("requests"))
        routers = frame.get("routers") or {}
        if not isinstance(routers, dict):
            raise ValueError("routers is not an object")
        counts: dict[int, list[tuple[int, int]]] = {}
        for i, name in enumerate(self.router_names):
            per_shard = routers.get(name)
            if per_shard is None:
                if requests:
                    raise ValueError(f"frame has no counts for router {name}")
                continue
            pairs = [(index(sh, self.shards, "shard"), count(c)) for sh, c in dict(per_shard).items()]
            if sum(c for _, c in pairs) != requests:
                raise ValueError(f"router {name}: shard counts don't add up to {requests} requests")
            counts[i] = pairs
        buckets = [(index(b, self._key_buckets.size, "key bucket"), count(c))
                   for b, c in dict(frame.get("key_buckets") or {}).items()]
        top = [(self._key(k), count(c)) for k, c in frame.get("top_keys") or []]
        top_error = count(frame.get("top_error", 0))
        observed = None
        obs = frame.get("observed")
        if obs:
            shards = [(index(sh, self.shards, "observed shard"), count(c))
                      for sh, c in dict(obs.get("shards") or {}).items()]
            examples = [(self._key(k), int(p), int(o)) for k, p, o in obs.get("examples") or []]
            observed = (shards, count(obs.get("requests", 0)), count(obs.get("mismatches", 0)), examples)
        return requests, counts, buckets, top, top_error, observed

    def _key(self, key: Any) -> int | str:
        if self.key_type == "int":
            try:
                return int(key)
            except (TypeError, ValueError):
                raise ValueError(f"top key {key!r} is not an integer") from None
        return str(key)

    def drain_frame(self, source: str, now: float | None = None) -> dict[str, Any]:
        """Everything counted since the last drain, as a frame; then start afresh."""
        now = self.clock() if now is None else now
        counts = self.counts()
        self.top.compact()  # every counter goes into the frame, its pruning into top_error
        frame: dict[str, Any] = {
            "v": 1,
            "kind": "frame",
            "source": source,
            "window_start": self.first_ts if self.first_ts is not None else now,
            "window_s": max(0.0, now - (self.first_ts if self.first_ts is not None else now)),
            "requests": self.requests,
            "routers": {
                name: _sparse(counts[i])
                for i, name in enumerate(self.router_names)
            },
            "top_keys": [[str(k), c] for k, c in self.top.top(self.top.capacity)],
            "top_error": self.top.error,
            "key_buckets": _sparse(self.key_buckets),
        }
        if self.observed_requests:
            frame["observed"] = {
                "shards": _sparse(self.observed),
                "requests": self.observed_requests,
                "mismatches": self.observed_mismatches,
                "examples": [[str(k), p, o] for k, p, o in self.mismatch_examples],
            }
        self.reset()
        return frame

    def merge(self, other: "Tally") -> None:
        """Add another tally's whole-run counts (same routers and shard count)."""
        if other.router_names != self.router_names or other.shards != self.shards:
            raise ValueError("can only merge tallies with the same routers and shard count")
        self._at(self.clock())
        self._cur += other.counts()
        self.requests += other.requests
        self._ring_requests[self._cur_index] += other.requests
        self._key_buckets += other.key_buckets
        self.bucketed_requests += other.bucketed_requests
        self.top.merge(other.top)
        self._observed += other.observed
        self.observed_requests += other.observed_requests
        self.observed_mismatches += other.observed_mismatches

    def reset(self) -> None:
        self._ring[:] = 0
        self._ring_requests[:] = 0
        self._retired[:] = 0
        self._slot = None
        self.requests = 0
        self.first_ts = self.last_ts = None
        self._key_buckets[:] = 0
        self.bucketed_requests = 0
        self.top.clear()
        self._observed[:] = 0
        self._new_pending()
        self.observed_requests = self.observed_mismatches = 0
        self.mismatch_examples.clear()

    # --- window bookkeeping -------------------------------------------------------------------

    @property
    def _cur_index(self) -> int:
        return (self._slot or 0) % self._nslots

    def _at(self, now: float) -> None:
        slot = int(now // self.slot_s)
        if self._slot is None or slot > self._slot:
            self._advance(slot, now)
        self.last_ts = now if self.last_ts is None else max(self.last_ts, now)

    def _advance(self, slot: int, now: float) -> None:
        if self.first_ts is None:
            self.first_ts = self.last_ts = now
        self._flush()
        if self._slot is None:
            self._slot = slot
        elif slot > self._slot:
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

    def advance_to(self, now: float | None = None) -> None:
        """Let the window slide to `now` even without traffic (so idle shards decay to 0 QPS)."""
        now = self.clock() if now is None else now
        if self._slot is not None and int(now // self.slot_s) > self._slot:
            self._advance(int(now // self.slot_s), now)

    # --- read side (used by summary) ----------------------------------------------------------

    def counts(self) -> np.ndarray:
        """Whole-run counts, routers × shards."""
        self._flush()
        return self._retired + self._ring.sum(axis=0)

    def window_counts(self, now: float | None = None) -> tuple[np.ndarray, int, float]:
        """(counts routers × shards, requests, seconds covered) over the sliding window."""
        self._flush()
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


def _sparse(counts: np.ndarray) -> dict[str, int]:
    """Non-zero entries as a JSON object (frames stay small when few shards or buckets are hit)."""
    nz = np.flatnonzero(counts)
    return dict(zip(map(str, nz.tolist()), counts[nz].tolist()))
