"""The design's Prometheus metrics, from a tally and from a real Locust master, pass promtool."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import numpy as np
import pytest
from conftest import REPO
from locust_runs import free_port, kill_group, locust_cmd, wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_prometheus_rules import promtool_check_metrics

from skewcheck.gate import judge
from skewcheck.metrics import Snapshot, exposition
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import Tally

pytestmark = pytest.mark.promtool

DESIGN_NAMES = {"skewcheck_requests", "skewcheck_shard_qps", "skewcheck_shard_share", "skewcheck_shard_share_max",
                "skewcheck_shard_qps_stddev_ratio", "skewcheck_shard_qps_stddev_ratio_floor",
                "skewcheck_gate_status"}


def _snapshot(shards: int = 16) -> Snapshot:
    tally = Tally([make_router("mod", shards, "int"), make_router("murmur3", shards, "int")])
    tally.add_many(np.arange(1, 5001) * 16, ts=time.time())  # every key ≡ 0 mod 16: mod puts all on shard 0
    summary = summarize(tally)
    return Snapshot(summary, judge(summary).verdict, events_consumed=10, events_malformed={"not_json": 2},
                    probe_goroutines={"baseline": 4, "after_hold": 24})


def test_exposition_has_the_design_metrics_and_passes_promtool() -> None:
    text = exposition(_snapshot).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert DESIGN_NAMES <= set(families)
    gate = families["skewcheck_gate_status"].samples[0].value
    assert gate == 1  # blocked: mod sends every key to shard 0
    share_max = {s.labels["router"]: s.value for s in families["skewcheck_shard_share_max"].samples}
    assert share_max["mod"] == 1.0 and share_max["murmur3"] < 0.15
    assert promtool_check_metrics(text) == []


def test_shard_series_are_capped_per_router() -> None:
    text = exposition(lambda: _snapshot(2048), shard_series_limit=100).decode()
    qps = [line for line in text.splitlines() if line.startswith("skewcheck_shard_qps{")]
    assert len(qps) == 200  # 100 hottest shards for each of the two routers


@pytest.mark.slow
def test_locust_master_metrics_pass_promtool() -> None:
    port = free_port()
    proc = subprocess.Popen(
        locust_cmd("--skew-config", "configs/incident-2020.yaml", "--web-host", "127.0.0.1", "--web-port",
                   str(port), "--autostart", "-u", "10", "-r", "10", "-t", "30s"),
        cwd=REPO, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/skew/metrics"
        text = wait_for(lambda: _fetch_with_data(url), 30)
        assert text, "no metrics with traffic from the Locust master"
    finally:
        kill_group(proc)
    assert promtool_check_metrics(text) == []
    assert 'skewcheck_shard_share_max{router="hash-mod"} 1.0' in text


def _fetch_with_data(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return text if 'skewcheck_shard_share_max{router="hash-mod"} 1.0' in text else None


def test_latency_series_are_for_the_busiest_shards_only_and_pass_promtool() -> None:
    tally = Tally([make_router("murmur3", 2048, "int")])
    rng = np.random.default_rng(2)
    tally.add_many(rng.integers(1, 10**9, size=200_000), ts=time.time(), latency_ms=rng.lognormal(2, 0.5, 200_000))
    summary = summarize(tally)
    text = exposition(lambda: Snapshot(summary, judge(summary).verdict), latency_series_limit=10).decode()
    quantiles = [ln for ln in text.splitlines() if ln.startswith("skewcheck_shard_latency_seconds{")]
    assert len(quantiles) == 30  # 10 shards × p50/p95/p99, of 2048 shards
    families = {f.name: f for f in text_string_to_metric_families(text)}
    p99 = [s.value for s in families["skewcheck_shard_latency_seconds"].samples if s.labels.get("quantile") == "0.99"]
    assert all(0.005 < v < 0.05 for v in p99)
    assert 0.005 < families["skewcheck_shard_latency_p99_median_seconds"].samples[0].value < 0.05
    assert promtool_check_metrics(text) == []
