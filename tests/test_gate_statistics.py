"""The gate's statistics: healthy releases pass, hot shards block, noise is not mistaken for skew.

Seeded simulations of what each rule sees, with exact multinomial sampling of per-shard counts.
"""

from __future__ import annotations

import mmh3
import numpy as np
import pytest

from skewcheck.gate import DEFAULT_MIN_REQUESTS, GateConfig, judge
from skewcheck.summary import from_counts

TRIALS = 500


def _verdicts(probabilities: np.ndarray, n: int, seed: int, key_f2: float | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for counts in rng.multinomial(n, probabilities, size=TRIALS):
        summary = from_counts("murmur3", {"murmur3": counts}, key_f2=n if key_f2 is None else key_f2)
        out.append(judge(summary, GateConfig()).verdict.status)
    return out


@pytest.mark.parametrize("shards", [8, 100, 1024])
@pytest.mark.parametrize("requests", [DEFAULT_MIN_REQUESTS, 20_000, 200_000, 1_000_000])
def test_uniform_routing_of_distinct_keys_rarely_blocks(shards: int, requests: int) -> None:
    statuses = _verdicts(np.full(shards, 1 / shards), requests, seed=shards * 7 + requests)
    blocked = statuses.count("block")
    assert blocked <= TRIALS // 100, f"{blocked}/{TRIALS} healthy runs blocked (k={shards}, N={requests})"


@pytest.mark.parametrize("shards", [7, 8])
@pytest.mark.parametrize("requests", [10, 30, 100, 500, DEFAULT_MIN_REQUESTS])
def test_few_requests_or_few_shards_do_not_block_a_healthy_run(shards: int, requests: int) -> None:
    # 7 shards put 14.3% on each: the hottest of them crosses 15% by chance all the time
    statuses = _verdicts(np.full(shards, 1 / shards), requests, seed=shards + requests)
    assert statuses.count("block") <= TRIALS // 100


def test_a_20_percent_shard_blocks_at_min_requests() -> None:
    shards = 100
    p = np.full(shards, 0.8 / (shards - 1))
    p[17] = 0.2
    statuses = _verdicts(p, DEFAULT_MIN_REQUESTS, seed=20)
    blocked = statuses.count("block")
    assert blocked >= TRIALS * 99 // 100, f"only {blocked}/{TRIALS} runs with a 20% shard blocked"


def test_127_equally_used_test_accounts_under_murmur3_pass_the_stddev_rule() -> None:
    # the floor for 127 equally used keys over 100 shards is sqrt(99/127) ≈ 0.88: a raw 0.8 threshold
    # would block this healthy router; judging the excess over the floor must not
    keys = [20200000 + 100 * j for j in range(127)]
    shard_of_key = np.array([mmh3.hash(str(k), 0, signed=False) % 100 for k in keys])
    rng = np.random.default_rng(127)
    for _ in range(50):
        per_key = rng.multinomial(50_000, np.full(127, 1 / 127))
        counts = np.bincount(shard_of_key, weights=per_key, minlength=100).astype(np.int64)
        summary = from_counts("murmur3", {"murmur3": counts}, key_f2=float((per_key.astype(float) ** 2).sum()))
        rs = summary.routers["murmur3"]
        assert 0.7 < rs.floor < 0.95
        assert rs.stddev_ratio > 0.6  # the raw ratio is high…
        checks = {c.rule: c for c in judge(summary).verdict.checks}
        assert checks["stddev_ratio"].status == "pass", checks["stddev_ratio"].message  # …yet not skew


def test_the_same_accounts_under_hash_mod_block_and_name_shard_zero() -> None:
    counts = np.zeros(100, dtype=np.int64)
    counts[0] = 12_700  # Integer.hashCode(20200000 + 100j) % 100 == 0 for every account
    summary = from_counts("hash-mod", {"hash-mod": counts}, key_f2=127 * 100.0**2)
    verdict = judge(summary).verdict
    assert verdict.status == "block" and verdict.exit_code == 1
    share = next(c for c in verdict.reasons if c.rule == "max_shard_share")
    assert share.shard == 0 and "100.0%" in share.message and "15%" in share.message


def test_too_few_requests_is_inconclusive_never_pass() -> None:
    summary = from_counts("murmur3", {"murmur3": np.full(100, 5)}, key_f2=500)
    verdict = judge(summary).verdict
    assert verdict.status == "inconclusive" and verdict.exit_code == 3
    assert any(c.rule == "min_requests" for c in verdict.reasons)


def test_no_data_is_inconclusive() -> None:
    summary = from_counts("mod", {"mod": np.zeros(16, dtype=np.int64)}, key_f2=0)
    assert judge(summary).verdict.status == "inconclusive"


def test_routing_skew_is_told_from_key_skew() -> None:
    n = 10_000
    balanced = np.full(100, n // 100)
    skewed = np.zeros(100, dtype=np.int64)
    skewed[0] = n
    routing = judge(from_counts("mod", {"mod": skewed, "murmur3": balanced}, key_f2=n))
    assert routing.diagnosis.kind == "routing_skew"
    hot = np.full(100, 50)
    hot[3] += n - hot.sum()
    keys = judge(from_counts("mod", {"mod": hot, "murmur3": hot}, key_f2=float(n) ** 2 * 0.9))
    assert keys.diagnosis.kind == "key_skew"
    fine = judge(from_counts("mod", {"mod": balanced, "murmur3": balanced}, key_f2=n))
    assert fine.diagnosis.kind == "balanced" and fine.verdict.status == "pass"
