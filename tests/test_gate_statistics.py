"""The gate's statistics: healthy releases pass, hot shards block, noise is not mistaken for skew.

Seeded simulations of what each rule sees, with exact multinomial sampling of per-shard counts.
"""

from __future__ import annotations

import gate_trials
import mmh3
import numpy as np
import pytest

from skewcheck.gate import DEFAULT_MIN_REQUESTS, GateConfig, decision, judge
from skewcheck.routing import make_router
from skewcheck.summary import from_counts

TRIALS = 500


def _assert_at_most(rate: gate_trials.Rate, limit: float, what: str) -> None:
    assert rate.trials >= TRIALS * 0.9 or rate.skipped, rate
    assert rate.hits <= limit * rate.trials, f"{what}: {rate.hits} of {rate.trials} ({rate.rate:.1%})"


@pytest.mark.parametrize("accounts", [20, 30, 50, 127])
@pytest.mark.parametrize("router", gate_trials.HEALTHY_HASHES)
def test_few_equally_used_accounts_under_a_healthy_hash_rarely_block(accounts: int, router: str) -> None:
    # 20 accounts over 100 shards put 10% or more on a shard by design; nothing a router can fix
    rate = gate_trials.healthy_blocks(gate_trials.equal_accounts(accounts), router, 100, seed=accounts)
    _assert_at_most(rate, 0.01, f"{accounts} accounts under {router}")


@pytest.mark.parametrize("exponent", [0.8, 1.0])
@pytest.mark.parametrize("router", gate_trials.HEALTHY_HASHES)
def test_zipf_keys_under_a_healthy_hash_rarely_block(exponent: float, router: str) -> None:
    rate = gate_trials.healthy_blocks(gate_trials.zipf_weights(exponent, seed=7), router, 100,
                                      seed=int(exponent * 10))
    _assert_at_most(rate, 0.01, f"Zipf {exponent} under {router}")


@pytest.mark.parametrize("shards", [1024, 4096, 16384])
@pytest.mark.parametrize("requests", [DEFAULT_MIN_REQUESTS, 10_000])
def test_one_key_at_12_percent_over_many_shards_rarely_blocks(shards: int, requests: int) -> None:
    rate = gate_trials.healthy_blocks(gate_trials.one_hot_key(0.12, requests), "murmur3", shards,
                                      seed=shards + requests)
    _assert_at_most(rate, 0.01, f"a 12% key over {shards} shards at N={requests}")


@pytest.mark.parametrize("shards", [7, 8, 100, 1024, 16384])
@pytest.mark.parametrize("requests", [DEFAULT_MIN_REQUESTS, 20_000, 200_000, 1_000_000])
def test_uniform_routing_of_distinct_keys_rarely_blocks(shards: int, requests: int) -> None:
    # 7 shards put 14.3% on each: the hottest of them crosses 15% by chance all the time
    rate = gate_trials.distinct_uniform_blocks(shards, requests, seed=shards * 7 + requests)
    _assert_at_most(rate, 0.01, f"k={shards}, N={requests}")


@pytest.mark.parametrize("shards", [7, 8])
@pytest.mark.parametrize("requests", [10, 30, 100, 500])
def test_few_requests_or_few_shards_do_not_block_a_healthy_run(shards: int, requests: int) -> None:
    rate = gate_trials.distinct_uniform_blocks(shards, requests, seed=shards + requests)
    _assert_at_most(rate, 0.01, f"k={shards}, N={requests}")


@pytest.mark.parametrize("shards", [8, 100, 1024])
def test_a_20_percent_shard_blocks_at_min_requests(shards: int) -> None:
    rate = gate_trials.hot_shard_detection(shards, 0.2, seed=shards)
    assert rate.hits >= 0.99 * rate.trials, f"only {rate.hits}/{rate.trials} runs with a 20% shard blocked"


@pytest.mark.parametrize("step", [2, 10])
def test_ids_sharing_a_factor_with_the_shard_count_block_under_mod(step: int) -> None:
    # step 2: half the shards empty; step 10: ten shards at 10% — neither crosses 15%, the stddev
    # rule catches both
    rate = gate_trials.strided_mod_detection(step, seed=step)
    assert rate.hits >= 0.99 * rate.trials, f"only {rate.hits}/{rate.trials} blocked (step {step})"


def test_a_uniform_run_watched_all_along_is_rarely_stopped_as_a_block() -> None:
    rate = gate_trials.peeking_blocks(100, seed=100)
    _assert_at_most(rate, 0.01, "uniform runs peeked every 2,000 requests")


def test_the_incident_blocks_from_its_first_requests() -> None:
    keys = np.array([20200000 + 100 * j for j in range(127)])
    router = make_router("hash-mod", 100, "int")
    for n in (10, 50, 300):
        sent = np.resize(keys, n)
        counts = np.bincount(router.shard_many(sent), minlength=100)
        values, per_key = np.unique(sent, return_counts=True)
        summary = from_counts("hash-mod", {"hash-mod": counts}, key_f2=float((per_key.astype(float) ** 2).sum()),
                              top_keys=list(zip(values.tolist(), per_key.tolist())))
        judgement = judge(summary)
        assert judgement.verdict.status == "block", (n, judgement.verdict.checks)
        assert decision(summary, judgement, GateConfig()) == "block"
        assert judgement.diagnosis.kind == "routing_skew"


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


def _collision_under(router_name: str, shards: int) -> tuple[int, int]:
    router = make_router(router_name, shards, "int")
    first = 4242
    target = router.shard(first)
    return first, next(k for k in range(10_000, 10**6) if router.shard(k) == target)


def test_two_hot_keys_colliding_under_kafka_are_key_skew_and_both_are_named() -> None:
    a, b = _collision_under("kafka", 100)
    rng = np.random.default_rng(5)
    ids = np.concatenate([[a, b], rng.choice(10**9, 7_800, replace=False) + 10**7])
    weights = np.concatenate([[1_200, 1_000], np.ones(7_800, dtype=np.int64)])
    summary = gate_trials._summary("kafka", 100, ids, weights)
    judgement = judge(summary)
    assert judgement.verdict.status == "block"  # 22% on one shard is over the limit all the same
    assert judgement.diagnosis.kind == "key_skew", judgement.diagnosis
    assert str(a) in judgement.diagnosis.message and str(b) in judgement.diagnosis.message
    assert "choose IDs" not in judgement.diagnosis.fix


@pytest.mark.parametrize("seed", range(40))
def test_balanced_is_never_said_of_a_share_above_the_limit_or_an_improbable_spread(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shards = int(rng.choice([8, 16, 100]))
    n = int(rng.choice([200, 2_000, 20_000]))
    p = rng.dirichlet(np.full(shards, float(rng.choice([0.3, 3.0, 300.0]))))
    counts = rng.multinomial(n, p)
    summary = from_counts("mod", {"mod": counts}, key_f2=float(n))
    judgement = judge(summary)
    if judgement.diagnosis.kind == "balanced":
        rs = summary.primary_summary
        assert rs.max_share <= GateConfig().max_shard_share
        assert rs.stddev_ratio_p > GateConfig().null_alpha
        assert judgement.verdict.status == "pass"


def test_few_distinct_keys_are_a_finding_not_a_block() -> None:
    summary = gate_trials._summary("murmur3", 100, np.arange(20) * 7919 + 11, gate_trials.equal_accounts(20))
    checks = {c.rule: c for c in judge(summary).verdict.checks}
    assert checks["distinct_keys"].status == "pass"
    assert "only 20 distinct keys" in checks["distinct_keys"].message


def test_requests_that_never_reached_the_target_make_the_run_inconclusive() -> None:
    counts = np.full(100, 6)  # 600 got through...
    unreached = np.full(100, 9)  # ...900 were refused
    summary = from_counts("murmur3", {"murmur3": counts * 5}, key_f2=3000.0, unreached=unreached)
    checks = {c.rule: c for c in judge(summary).verdict.checks}
    assert checks["unreached_requests"].status == "inconclusive"
    assert "900 of 3,900 requests" in checks["unreached_requests"].message
    assert judge(summary).verdict.status == "inconclusive"
