"""Counts per router × shard, over the whole run and over a sliding window.

`add()` is the per-request hot path: it only remembers the key. The keys of a slot are routed
under every router, bucketed for F2 and fed to the heavy hitters as one vectorised batch when the
slot ends, when PENDING_KEYS are waiting, or when anything is read. Everything derived lives in
`skewcheck.summary`. Memory is routers × shards × window slots + the sketches + at most
PENDING_KEYS held keys, whatever the number of requests or keys.
A Tally drains into a *frame* (the Kafka/worker message) and merges frames by addition.
"""

from __future__ import annotations

import math
import time
from itertools import repeat
from typing import Any, Callable, Sequence

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.hashes import INT64_MAX, INT64_MIN, checked_int, checked_str, murmur3_32_many
from skewcheck.routing import key_array
from skewcheck.sketch import DEFAULT_TOP_CAPACITY, F2_BITS, F2_SEED, HeavyHitters

DEFAULT_WINDOW_S = 10.0
DEFAULT_SLOT_S = 1.0  # window resolution: QPS is averaged over whole slots of this length
PENDING_KEYS = 8192  # keys `add` holds before they are counted as one batch
MAX_MISMATCH_EXAMPLES = 10


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
        self._key_buckets = np.zeros(1 << F2_BITS, dtype=np.int64)
        self.bucketed_requests = 0  # requests whose key is in the F2 buckets (frames may lack them)
        self.top = HeavyHitters(top_capacity)
        # observed shard (X-Shard answered by the target) vs the primary router's prediction
        self._observed = np.zeros(k, dtype=np.int64)
        self._shard_names: dict[Any, int] | None = None  # built when a target first answers X-Shard
        self._pending_keys: list[Any] = []
        self._pending_observed: list[tuple[int, Any]] = []  # (index in _pending_keys, X-Shard)
        self.observed_requests = 0
        self.observed_mismatches = 0
        self.mismatch_examples: list[tuple[int | str, int, int]] = []
        self.unroutable = 0  # keys no router could take (not an int64 / not text), not counted
        self.unroutable_example: str | None = None

    @property
    def requests(self) -> int:
        """Requests counted so far, the pending keys included."""
        return self._counted + len(self._pending_keys)

    # --- hot path -------------------------------------------------------------------------

    def add(self, key: int | str, ts: float | None = None, observed_shard: int | str | None = None) -> None:
        """Count one request's key; `observed_shard` is the shard the target reported (an int or
        the X-Shard header's text; anything but a shard number counts as a mismatch)."""
        now = self.clock() if ts is None else ts
        if now >= self._slot_end:
            self._advance(self._slot_of(now), now)
        if now > self.last_ts:  # a late timestamp never moves the run's end backwards
            self.last_ts = now
        # only remembered here; routing, buckets, top keys and X-Shard run per batch, vectorised
        self._pending_observed.append(observed_shard)
        pending = self._pending_keys
        pending.append(key)
        if len(pending) >= PENDING_KEYS:
            self.flush()

    def has_counts(self) -> bool:
        """Whether a frame drained now would carry anything (requests or unroutable keys)."""
        self.flush()
        return bool(self.requests or self.unroutable)

    def flush(self) -> None:
        """Route and count the keys `add` holds back, as one batch (every read path does this)."""
        keys, observed = self._pending_keys, self._pending_observed
        if not keys:
            return
        self._pending_keys, self._pending_observed = [], []
        try:
            batch = key_array(keys, self.key_type)
            routed = self._route(batch)
        except UsageError:
            batch, observed, routed = self._routable(keys, observed)
        if not len(batch):
            return
        primary = self._count(batch, routed)
        unanswered = observed.count(None)
        if unanswered == 0:  # the target answered X-Shard every time
            self._observe(batch, primary, observed)
        elif unanswered < len(observed):
            at = np.array([o is not None for o in observed], dtype=bool)
            self._observe(batch[at], primary[at], [o for o in observed if o is not None])

    def _routable(self, keys: list[Any], observed: list[Any]) -> tuple[np.ndarray, list[Any], tuple]:
        """The keys every router can take, their observations and routes; the others are counted in
        `unroutable` (one by one: only a batch that failed comes here)."""
        good: list[Any] = []
        seen: list[Any] = []
        check = checked_int if self.key_type == "int" else checked_str
        for key, obs in zip(keys, observed):
            try:
                self._route(key_array([check(key)], self.key_type))  # e.g. text that UTF-8 can't encode
            except UsageError as exc:
                self.unroutable += 1
                if self.unroutable_example is None:
                    self.unroutable_example = str(exc)
            else:
                good.append(key)
                seen.append(obs)
        if not good:
            return np.empty(0, dtype=np.int64), seen, ()
        batch = key_array(good, self.key_type)
        return batch, seen, self._route(batch)

    def _route(self, batch: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Every router's shard and the F2 bucket of each key; raises before anything is counted."""
        shards = [router.shard_many(batch) for router in self.routers]
        buckets = murmur3_32_many(batch, self.key_type, F2_SEED) & np.uint32((1 << F2_BITS) - 1)
        return shards, buckets

    def _count(self, batch: np.ndarray, routed: tuple[list[np.ndarray], np.ndarray]) -> np.ndarray:
        """Add a routed batch to the current slot; the primary router's shard of each key."""
        shards, buckets = routed
        n = len(batch)
        self._counted += n
        self._ring_requests[self._cur_index] += n
        for i, per_key in enumerate(shards):
            self._cur[i] += np.bincount(per_key, minlength=self.shards)
        self._key_buckets += np.bincount(buckets.astype(np.int64), minlength=self._key_buckets.size)
        self.bucketed_requests += n
        self.top.add_many(batch)
        return shards[0]

    def _observe(self, keys: np.ndarray, predicted: np.ndarray, observed: Sequence[Any]) -> None:
        """The shards a target reported for these keys, against the primary router's prediction."""
        if self._shard_names is None:
            self._shard_names = {**{i: i for i in range(self.shards)}, **{str(i): i for i in range(self.shards)}}
        got = _shard_numbers(observed, self._shard_names)
        valid = got[(got >= 0) & (got < self.shards)]
        self._observed += np.bincount(valid, minlength=self.shards)
        self.observed_requests += len(got)
        mismatched = np.flatnonzero(got != predicted)
        self.observed_mismatches += len(mismatched)
        room = MAX_MISMATCH_EXAMPLES - len(self.mismatch_examples)
        for i in mismatched[:max(room, 0)].tolist():
            self.mismatch_examples.append((keys[i].item() if self.key_type == "int" else keys[i],
                                           int(predicted[i]), int(got[i])))

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

    # --- batches ----------------------------------------------------------------------------

    def add_many(self, keys: Any, ts: float | None = None) -> None:
        """Route and count a batch vectorised (planner, Kafka poll batches)."""
        if len(keys) == 0:
            return
        batch = key_array(keys, self.key_type)
        routed = self._route(batch)  # a key no router takes raises here, before anything is counted
        self._at(self.clock() if ts is None else ts)
        self._count(batch, routed)

    def observe_many(self, keys: Any, shards: Sequence[int], ts: float | None = None) -> None:
        """Shards a target reported for these keys (X-Shard, events' shard field), checked against
        the primary router; the keys themselves are counted by `add_many`."""
        if len(keys) == 0:
            return
        self._at(self.clock() if ts is None else ts)
        batch = key_array(keys, self.key_type)
        self._observe(batch, self.routers[0].shard_many(batch), list(shards))

    def add_frame(self, frame: dict[str, Any], ts: float | None = None) -> None:
        """Merge a pre-aggregated frame (a worker's drained tally) by addition.

        The whole frame is checked first: a frame that doesn't fit (other routers or shard
        count, counts that don't add up) raises ValueError and changes nothing.
        """
        parsed = self._parse_frame(frame)
        now = self.clock() if ts is None else ts
        self._at(now)
        requests, counts, buckets, top, top_error, observed, unroutable = parsed
        start = frame.get("window_start")
        if isinstance(start, (int, float)) and self.first_ts is not None and 0 < start < self.first_ts:
            self.first_ts = float(start)  # the run began when the worker's first request did
        self._counted += requests
        self._ring_requests[self._cur_index] += requests
        for i, per_shard in counts.items():
            for shard, count in per_shard:
                self._cur[i, shard] += count
        for bucket, count in buckets:
            self._key_buckets[bucket] += count
        self.bucketed_requests += sum(c for _, c in buckets)
        self.top.merge_items(top, total=requests, error=top_error)
        self.unroutable += unroutable
        if observed:
            shards, obs_requests, mismatches, examples = observed
            for shard, count in shards:
                self._observed[shard] += count
            self.observed_requests += obs_requests
            self.observed_mismatches += mismatches
            room = MAX_MISMATCH_EXAMPLES - len(self.mismatch_examples)
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
        return requests, counts, buckets, top, top_error, observed, count(frame.get("unroutable", 0))

    def _key(self, key: Any) -> int | str:
        if self.key_type == "int":
            try:
                return int(key)
            except (TypeError, ValueError):
                raise ValueError(f"top key {key!r} is not an integer") from None
        return str(key)

    def drain_frame(self, source: str, now: float | None = None) -> dict[str, Any]:
        """Everything counted since the last drain, as a frame; then start afresh."""
        frame = self.frame(source, now)
        self.reset()
        return frame

    def frame(self, source: str, now: float | None = None) -> dict[str, Any]:
        """Everything counted so far, as a frame (the tally keeps counting)."""
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
        if self.unroutable:
            frame["unroutable"] = self.unroutable
        if self.observed_requests:
            frame["observed"] = {
                "shards": _sparse(self.observed),
                "requests": self.observed_requests,
                "mismatches": self.observed_mismatches,
                "examples": [[str(k), p, o] for k, p, o in self.mismatch_examples],
            }
        return frame

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
        self.top.clear()
        self._observed[:] = 0
        self._pending_keys, self._pending_observed = [], []
        self.observed_requests = self.observed_mismatches = 0
        self.mismatch_examples.clear()
        self.unroutable = 0
        self.unroutable_example = None

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


def _sparse(counts: np.ndarray) -> dict[str, int]:
    """Non-zero entries as a JSON object (frames stay small when few shards or buckets are hit)."""
    nz = np.flatnonzero(counts)
    return dict(zip(map(str, nz.tolist()), counts[nz].tolist()))
