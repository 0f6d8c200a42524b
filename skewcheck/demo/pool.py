"""One shard's connection pool: P slots, a service time per query, a bounded wait, and its statistics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# upper bounds (seconds) of the pool-wait histogram; +Inf is implied
WAIT_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PEAK_WINDOW_S = 5  # shard_connection_pool_usage_max looks back this far
SLOW_WINDOW_S = 300  # shard_slow_query_rate_5m looks back this far


class SecondRing:
    """Per-second buckets over a fixed window: constant memory however long the service runs."""

    def __init__(self, seconds: int) -> None:
        self._n = seconds
        self._stamp = [-1] * seconds
        self._value = [0] * seconds

    def _slot(self, now_s: int) -> int:
        i = now_s % self._n
        if self._stamp[i] != now_s:  # the slot holds an older second: start it afresh
            self._stamp[i] = now_s
            self._value[i] = 0
        return i

    def add(self, now_s: int, amount: int = 1) -> None:
        i = self._slot(now_s)
        self._value[i] += amount

    def raise_to(self, now_s: int, value: int) -> None:
        i = self._slot(now_s)
        self._value[i] = max(self._value[i], value)

    def values(self, now_s: int) -> list[int]:
        """The buckets of the last `seconds` seconds, the current one included."""
        oldest = now_s - self._n
        return [v for s, v in zip(self._stamp, self._value) if oldest < s <= now_s]


@dataclass
class PoolSnapshot:
    """One shard's numbers at one instant, as /metrics shows them."""

    size: int
    in_use: int
    usage_max: float  # max in-use fraction over the last PEAK_WINDOW_S seconds
    wait_buckets: list[int]  # cumulative counts for WAIT_BUCKETS, then +Inf
    wait_sum_s: float
    timeouts: int
    slow_per_s: float  # slow queries per second over the last SLOW_WINDOW_S seconds
    requests: dict[int, int] = field(default_factory=dict)  # status code -> count


class ShardPool:
    """A semaphore of `size` slots held for `service_s` per query; waiters give up after `wait_timeout_s`.

    Every counter is updated under the pool's own lock, so shards never contend with each other.
    """

    def __init__(self, size: int, service_s: float, wait_timeout_s: float,
                 slow_after_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.size = size
        self.service_s = max(0.0, service_s)
        self.wait_timeout_s = max(0.0, wait_timeout_s)
        # a query is slow when wait + service exceeds twice the service time (1 ms floor for service 0)
        self.slow_after_s = slow_after_s if slow_after_s is not None else max(2 * self.service_s, 0.001)
        self._clock = clock
        self._started = clock()
        self._cond = threading.Condition(threading.Lock())
        self._in_use = 0
        self._peak = SecondRing(PEAK_WINDOW_S)
        self._slow = SecondRing(SLOW_WINDOW_S)
        self._wait_counts = [0] * (len(WAIT_BUCKETS) + 1)  # per bucket, not cumulative; last is +Inf
        self._wait_sum = 0.0
        self._timeouts = 0
        self._requests: dict[int, int] = {}

    def query(self, ok_code: int) -> int:
        """Run one query: wait for a slot, hold it for the service time. Returns ok_code, or 503 on timeout."""
        start = self._clock()
        if not self._acquire(start):
            return 503
        try:
            if self.service_s:
                time.sleep(self.service_s)
        finally:
            self._release(start, ok_code)
        return ok_code

    def _acquire(self, start: float) -> bool:
        with self._cond:
            if self._in_use >= self.size:
                deadline = start + self.wait_timeout_s
                while self._in_use >= self.size:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        self._timeouts += 1
                        self._requests[503] = self._requests.get(503, 0) + 1
                        self._observe_wait(self._clock() - start)
                        return False
                    self._cond.wait(remaining)
            self._in_use += 1
            now = self._clock()
            self._peak.raise_to(int(now), self._in_use)
            self._observe_wait(now - start)
            return True

    def _release(self, start: float, code: int) -> None:
        with self._cond:
            self._in_use -= 1
            self._cond.notify()
            self._requests[code] = self._requests.get(code, 0) + 1
            now = self._clock()
            if now - start > self.slow_after_s:
                self._slow.add(int(now))

    def _observe_wait(self, waited: float) -> None:  # caller holds the lock
        self._wait_sum += waited
        for i, bound in enumerate(WAIT_BUCKETS):
            if waited <= bound:
                self._wait_counts[i] += 1
                return
        self._wait_counts[-1] += 1

    def snapshot(self) -> PoolSnapshot:
        with self._cond:
            now = self._clock()
            now_s = int(now)
            peak = max([self._in_use, *self._peak.values(now_s)])  # a pool held full all window long counts too
            slow = sum(self._slow.values(now_s))
            cumulative, running = [], 0
            for c in self._wait_counts:
                running += c
                cumulative.append(running)
            # early on, divide by the time actually covered, as a 5m rate would once the window is full
            span = min(float(SLOW_WINDOW_S), max(1.0, now - self._started))
            return PoolSnapshot(size=self.size, in_use=self._in_use, usage_max=peak / self.size,
                                wait_buckets=cumulative, wait_sum_s=self._wait_sum, timeouts=self._timeouts,
                                slow_per_s=slow / span, requests=dict(self._requests))
