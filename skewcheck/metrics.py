"""Prometheus exposition of a live tally (Locust master and sidecar).

A custom collector: nothing is computed per request; each scrape summarises the tally once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from skewcheck.latency import QUANTILES
from skewcheck.summary import Summary
from skewcheck.verdict import Verdict

GATE_STATUS_VALUE = {"pass": 0, "block": 1, "inconclusive": 3}
DEFAULT_SHARD_SERIES_LIMIT = 1024  # per router; above it only the hottest shards get their own series
DEFAULT_LATENCY_SERIES_LIMIT = 10  # shards with latency series: the busiest, beside the median shard


@dataclass
class Snapshot:
    summary: Summary
    verdict: Verdict
    events_consumed: int | None = None
    events_malformed: dict[str, int] = field(default_factory=dict)
    probe_goroutines: dict[str, float] = field(default_factory=dict)
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    extra: list = field(default_factory=list)  # further metric families from the edge


class SkewCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], shard_series_limit: int = DEFAULT_SHARD_SERIES_LIMIT,
                 latency_series_limit: int = DEFAULT_LATENCY_SERIES_LIMIT):
        self._snapshot = snapshot
        self.shard_series_limit = shard_series_limit
        self.latency_series_limit = latency_series_limit

    def collect(self) -> Iterable:
        snap = self._snapshot()
        s = snap.summary
        requests = CounterMetricFamily("skewcheck_requests", "Requests counted per router and shard.",
                                       labels=["router", "shard"])
        qps = GaugeMetricFamily("skewcheck_shard_qps", "Requests per second per shard over the sliding window.",
                                labels=["router", "shard"])
        share = GaugeMetricFamily("skewcheck_shard_share", "Share of requests per shard over the sliding window.",
                                  labels=["router", "shard"])
        share_max = GaugeMetricFamily("skewcheck_shard_share_max", "Largest shard share over the sliding window.",
                                      labels=["router"])
        ratio = GaugeMetricFamily("skewcheck_shard_qps_stddev_ratio",
                                  "Stddev over mean of per-shard QPS over the sliding window.", labels=["router"])
        floor = GaugeMetricFamily("skewcheck_shard_qps_stddev_ratio_floor",
                                  "Expected stddev ratio of a perfect router for these keys and this window.",
                                  labels=["router"])
        for name, rs in s.routers.items():
            shards = range(rs.shards) if rs.shards <= self.shard_series_limit else rs.hottest(self.shard_series_limit)
            for i in shards:
                label = [name, str(i)]
                requests.add_metric(label, float(rs.counts[i]))
                qps.add_metric(label, float(rs.window_qps[i]))
                share.add_metric(label, float(rs.window_shares[i]))
            share_max.add_metric([name], float(rs.window_shares.max()) if rs.shards else 0.0)
            ratio.add_metric([name], rs.window_stddev_ratio)
            floor.add_metric([name], rs.window_floor)
        gate = GaugeMetricFamily("skewcheck_gate_status", "Gate verdict over the whole run: 0 pass, 1 block, "
                                 "3 inconclusive.")
        gate.add_metric([], GATE_STATUS_VALUE[snap.verdict.status])
        yield from (requests, qps, share, share_max, ratio, floor, gate)
        yield from self._latency(s)
        if snap.events_consumed is not None:
            consumed = CounterMetricFamily("skewcheck_events_consumed", "Kafka messages consumed.")
            consumed.add_metric([], float(snap.events_consumed))
            malformed = CounterMetricFamily("skewcheck_events_malformed", "Kafka messages skipped as malformed.",
                                            labels=["reason"])
            for reason, count in sorted(snap.events_malformed.items()):
                malformed.add_metric([reason], float(count))
            yield consumed
            yield malformed
        if snap.consumer_lag:
            lag = GaugeMetricFamily("skewcheck_consumer_lag", "Messages behind the partition's end offset.",
                                    labels=["topic", "partition"])
            for (topic, partition), value in sorted(snap.consumer_lag.items()):
                lag.add_metric([topic, str(partition)], float(value))
            yield lag
        if snap.probe_goroutines:
            g = GaugeMetricFamily("skewcheck_probe_goroutines", "Goroutines on the Go target at each probe phase.",
                                  labels=["phase"])
            for phase, value in snap.probe_goroutines.items():
                g.add_metric([phase], float(value))
            yield g
        yield from snap.extra


    def _latency(self, s: Summary) -> Iterable:
        """Latency quantiles and failure ratio of the busiest shards (bounded cardinality), and the
        median shard's, in seconds as Prometheus wants them."""
        lat = s.latency
        if lat is None or not lat.any:
            return
        seconds = SummaryMetricFamily("skewcheck_shard_latency_seconds",
                                      "Latency of the busiest shards: DDSketch quantiles, each within 2% "
                                      "(the sum too); the count is exact.", labels=["shard"])
        failed = GaugeMetricFamily("skewcheck_shard_failure_ratio",
                                   "Share of the busiest shards' requests that failed.", labels=["shard"])
        order = np.lexsort((np.arange(lat.load.size), -lat.load))
        busiest = [int(i) for i in order[:self.latency_series_limit] if lat.requests[i]]
        for shard in busiest:
            seconds.add_metric([str(shard)], float(lat.requests[shard]), float(lat.sum_ms[shard]) / 1000)
            for q, values in zip(QUANTILES, (lat.p50, lat.p95, lat.p99)):
                seconds.samples.append(Sample("skewcheck_shard_latency_seconds",
                                              {"shard": str(shard), "quantile": f"{q:g}"}, float(values[shard]) / 1000))
            failed.add_metric([str(shard)], float(lat.failure_rate[shard]))
        median = GaugeMetricFamily("skewcheck_shard_latency_p99_median_seconds",
                                   "p99 latency of the median shard, over the shards but the busiest.")
        middle = lat.median(busiest[0] if busiest else None)
        if middle is not None:
            median.add_metric([], middle["p99"] / 1000)
        yield from (seconds, failed, median)


def exposition(snapshot: Callable[[], Snapshot], shard_series_limit: int = DEFAULT_SHARD_SERIES_LIMIT,
               latency_series_limit: int = DEFAULT_LATENCY_SERIES_LIMIT) -> bytes:
    """The Prometheus text of one scrape (a private registry, so nothing global leaks in)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SkewCollector(snapshot, shard_series_limit, latency_series_limit))
    return generate_latest(registry)
