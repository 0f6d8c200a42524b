"""Per-shard latency sketches: DDSketch's error bound, bucket for bucket the reference
implementation (DataDog's `ddsketch`), exact merges through frames, bounded memory, and the
verdict's words about a slow, failing shard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ddsketch import DDSketch

from skewcheck.frame import INCONSISTENT_FRAME, OUT_OF_RANGE, SHARD_OUT_OF_RANGE, Frame, FrameError
from skewcheck.gate import GateConfig, judge
from skewcheck.latency import BUCKETS, QUANTILES, RELATIVE_ERROR, ShardLatency
from skewcheck.result import build_result
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import Tally


def _samples(rng: np.random.Generator, n: int) -> np.ndarray:
    """Latencies as a service shows them: a lognormal body and a Pareto tail, 0.05 ms to minutes."""
    body = rng.lognormal(mean=1.5, sigma=0.8, size=n)
    tail = (rng.pareto(1.5, size=n // 20) + 1) * 50
    return np.concatenate([body, tail, [0.001, 0.0]])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_are_within_the_stated_relative_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = _samples(rng, 20_000)
    sketch = ShardLatency(1)
    sketch.add(np.zeros(len(values), dtype=np.int64), values)
    got = sketch.quantiles(QUANTILES)[:, 0]
    ordered = np.sort(values)
    for q, estimate in zip(QUANTILES, got):
        exact = ordered[int(q * (len(values) - 1))]  # DDSketch's rank: q·(n−1), rounded down
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact + 1e-12, (q, estimate, exact)


def test_answers_are_the_reference_ddsketch_bucket_for_bucket() -> None:
    rng = np.random.default_rng(7)
    values = _samples(rng, 5_000)
    values = values[values > 0.01]  # below ≈0.01 ms skewcheck clamps; the reference keeps going
    reference = DDSketch(relative_accuracy=RELATIVE_ERROR)
    for v in values.tolist():
        reference.add(v)
    sketch = ShardLatency(1)
    sketch.add(np.zeros(len(values), dtype=np.int64), values)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        assert sketch.quantiles([q])[0, 0] == pytest.approx(reference.get_quantile_value(q), rel=1e-9), q


def test_shards_are_kept_apart_and_an_idle_shard_has_no_latency() -> None:
    sketch = ShardLatency(3)
    sketch.add(np.array([0] * 100 + [2] * 100), np.array([400.0] * 100 + [5.0] * 100))
    p50 = sketch.quantiles([0.5])[0]
    assert p50[0] == pytest.approx(400, rel=RELATIVE_ERROR) and p50[2] == pytest.approx(5, rel=RELATIVE_ERROR)
    assert np.isnan(p50[1]) and sketch.requests().tolist() == [100, 0, 100]


def test_memory_is_bounded_by_the_buckets_whatever_the_latencies() -> None:
    rng = np.random.default_rng(3)
    sketch = ShardLatency(10)
    for _ in range(20):  # 10^6 latencies from 1 µs to beyond a day, NaN and negatives among them
        values = 10 ** rng.uniform(-3, 9, size=50_000)
        values[:10] = [np.nan, -1, np.inf, 0, 1e12, 1e-9, 5, 5, 5, 5]
        sketch.add(rng.integers(0, 10, size=len(values)), values)
    assert sketch.counts.shape == (10, BUCKETS) and sketch.nbytes == 10 * BUCKETS * 8
    assert int(sketch.requests().sum()) == 20 * (50_000 - 3)  # NaN, negative and infinite are dropped


def _tally() -> Tally:
    return Tally([make_router("mod", 8, "int"), make_router("murmur3", 8, "int")])


def test_worker_frames_merge_exactly_into_the_master() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(1, 10**6, size=30_000)
    latency = _samples(rng, 30_000)[:30_000]
    whole, master = _tally(), _tally()
    whole.add_many(keys, ts=100.0, latency_ms=latency)
    for part in range(3):  # three workers; their frames travel as JSON
        worker = _tally()
        worker.add_many(keys[part::3], ts=100.0, latency_ms=latency[part::3])
        raw = json.loads(json.dumps(worker.drain_frame(f"w{part}").to_json()))
        master.add_frame(Frame.parse(raw, master.rules), ts=100.0)
    assert np.array_equal(master.latency.quantiles(), whole.latency.quantiles(), equal_nan=True)
    assert master.latency.requests().tolist() == whole.latency.requests().tolist()


def test_requests_without_a_latency_are_counted_but_not_timed() -> None:
    tally = _tally()
    tally.add(8, ts=1.0, latency_ms=12.0)
    tally.add(16, ts=1.0)  # an external access log without latency_ms
    tally.add_many([24, 32], ts=1.0, latency_ms=[None, 30.0])
    assert tally.requests == 4 and tally.latency.requests()[0] == 2


@pytest.mark.parametrize("latency, reason", [
    ({"relative_error": 0.01, "min_key": -116, "shards": {"0": [500, 1]}}, INCONSISTENT_FRAME),
    ({"relative_error": 0.02, "min_key": -116, "shards": {"8": [500, 1]}}, SHARD_OUT_OF_RANGE),
    ({"relative_error": 0.02, "min_key": -116, "shards": {"0": [BUCKETS - 1, 1, 1]}}, OUT_OF_RANGE),
    ({"relative_error": 0.02, "min_key": -116, "shards": {"0": [500, 3]}}, INCONSISTENT_FRAME),
    ({"relative_error": 0.02, "min_key": -116, "shards": {"0": [500]}}, "wrong_type"),
    ({"relative_error": 0.02, "min_key": -116, "shards": {"0": [500, -1, 2]}}, OUT_OF_RANGE),
    ({"relative_error": "two percent", "min_key": -116, "shards": {}}, "wrong_type"),
])
def test_a_frame_with_a_bad_latency_part_is_refused_whole(latency: dict, reason: str) -> None:
    tally = _tally()
    raw = {"v": 1, "kind": "frame", "source": "w", "window_start": 1.0, "window_s": 1.0, "requests": 2,
           "routers": {"mod": {"0": 2}, "murmur3": {"3": 2}}, "latency": latency}
    with pytest.raises(FrameError) as exc:
        Frame.parse(raw, tally.rules)
    assert exc.value.reason == reason
    assert tally.requests == 0


def _incident_summary(others: bool = True):
    """Shard 0 slow and failing, the other shards fast: the founding incident's impact."""
    tally = Tally([make_router("mod", 100, "int"), make_router("murmur3", 100, "int")])
    rng = np.random.default_rng(11)
    hot = rng.integers(0, 127, size=6000) * 100 + 20_200_000  # all ≡ 0 mod 100
    tally.add_many(hot, ts=50.0, failed=rng.random(6000) < 0.38, latency_ms=rng.normal(400, 8, 6000))
    if others:
        cold = rng.integers(1, 10**6, size=20_000) * 100 + rng.integers(1, 100, size=20_000)
        tally.add_many(cold, ts=50.0, latency_ms=rng.normal(6, 0.2, 20_000))
    return summarize(tally)


def test_the_verdict_names_the_slow_shard_against_the_median_shard() -> None:
    summary = _incident_summary()
    checks = {c.rule: c for c in judge(summary).verdict.checks}
    failing = checks["shard_failures"].message
    assert "shard 0: p99 4" in failing and "ms vs 6." in failing and "ms median shard, 3" in failing
    assert "% of its 6,000 requests failed" in failing
    assert checks["shard_latency"].status == "pass" and checks["shard_latency"].shard == 0
    doc = build_result("run", summary, judge(summary))
    rows = {r["shard"]: r for r in doc["latency"]["shards"]}
    assert rows[0]["p99"] == pytest.approx(np.percentile(np.random.default_rng(11).normal(400, 8, 6000), 99),
                                           rel=0.05)
    assert doc["latency"]["median"]["p99"] == pytest.approx(6.5, rel=0.05)
    assert "max_shard_p99_ratio" not in checks  # off by default


def test_max_shard_p99_ratio_blocks_a_slow_shard_only_when_set() -> None:
    summary = _incident_summary()
    blocked = {c.rule: c for c in judge(summary, GateConfig(max_shard_p99_ratio=10)).verdict.checks}
    rule = blocked["max_shard_p99_ratio"]
    assert rule.status == "block" and rule.shard == 0 and rule.value > 50
    relaxed = {c.rule: c for c in judge(summary, GateConfig(max_shard_p99_ratio=100)).verdict.checks}
    assert relaxed["max_shard_p99_ratio"].status == "pass"


def test_with_every_other_shard_idle_the_ratio_is_inconclusive_and_says_why() -> None:
    summary = _incident_summary(others=False)
    checks = {c.rule: c for c in judge(summary, GateConfig(max_shard_p99_ratio=10)).verdict.checks}
    assert checks["max_shard_p99_ratio"].status == "inconclusive"
    assert "no other shard served a request" in checks["shard_failures"].message
    assert "the other 99 shards served none" in checks["shard_failures"].message


def test_the_new_rules_are_validated_and_off_by_default() -> None:
    assert GateConfig().max_shard_p99_ratio is None and GateConfig().sustained_s is None
    for bad in ({"max_shard_p99_ratio": 0.5}, {"max_shard_p99_ratio": float("inf")}, {"sustained_s": 0},
                {"sustained": 5}):
        with pytest.raises(ValueError):
            GateConfig(**bad)
