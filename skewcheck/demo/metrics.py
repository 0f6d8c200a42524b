"""/metrics of the demo target: a private registry whose collector reads every shard pool at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from skewcheck.demo.pool import WAIT_BUCKETS, ShardPool

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ShardPoolCollector(Collector):
    """Turns pool snapshots into metric families; nothing is computed on the request path."""

    def __init__(self, pools: Sequence[ShardPool]) -> None:
        self._pools = pools

    def collect(self) -> Iterable[Metric]:
        size = GaugeMetricFamily("shard_connection_pool_size", "Connection slots in the shard's pool.",
                                 labels=["shard"])
        in_use = GaugeMetricFamily("shard_connection_pool_in_use", "Connection slots in use now.",
                                   labels=["shard"])
        usage_max = GaugeMetricFamily(
            "shard_connection_pool_usage_max",
            "Highest fraction of the shard's pool in use over the last 5 seconds (1 = saturated).",
            labels=["shard"])
        wait = HistogramMetricFamily(
            "shard_pool_wait_seconds",
            "Time a query waited for a connection slot, timed-out waits included.", labels=["shard"])
        requests = CounterMetricFamily("shard_requests", "Keyed requests answered, by shard and status code.",
                                       labels=["shard", "code"])
        timeouts = CounterMetricFamily("shard_pool_timeouts",
                                       "Queries that gave up waiting for a slot (answered 503).", labels=["shard"])
        slow = GaugeMetricFamily(
            "shard_slow_query_rate_5m",
            "Queries per second over the last 5 minutes whose wait plus service time exceeded twice the "
            "service time.", labels=["shard"])
        bounds = [repr(b) for b in WAIT_BUCKETS] + ["+Inf"]
        for i, pool in enumerate(self._pools):
            shard = str(i)
            snap = pool.snapshot()
            size.add_metric([shard], snap.size)
            in_use.add_metric([shard], snap.in_use)
            usage_max.add_metric([shard], snap.usage_max)
            wait.add_metric([shard], buckets=list(zip(bounds, snap.wait_buckets)), sum_value=snap.wait_sum_s)
            for code, count in sorted(snap.requests.items()):
                requests.add_metric([shard, str(code)], count)
            timeouts.add_metric([shard], snap.timeouts)
            slow.add_metric([shard], snap.slow_per_s)
        yield from (size, in_use, usage_max, wait, requests, timeouts, slow)


def build_registry(pools: Sequence[ShardPool]) -> CollectorRegistry:
    """A registry of our own, so the process-wide default registry (and Locust's) is never touched."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShardPoolCollector(pools))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
