"""The capacity planner's parts against exact computations: placements against the routers,
saturation points and smallest shard counts against brute force over small key sets, resharding
fractions against their closed forms, heterogeneous shards, the key model's exactness and bounds,
and recommendations that survive fresh key sets."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from skewcheck.config import PlanConfig, parse_scenario
from skewcheck.keytext import KeyBatch
from skewcheck.plan import run_plan
from skewcheck.plan.capacity import CapacityModel
from skewcheck.plan.curve import Evaluator
from skewcheck.plan.keymodel import SAMPLE_KEYS, KeyModelBuilder
from skewcheck.plan.placement import placement_for, prepare
from skewcheck.plan.reshard import expected_moved, moved_keys
from skewcheck.plan.search import Search, neighbours
from skewcheck.routing import make_router

ROUTERS = ("mod", "hash-mod", "murmur3", "kafka", "jump", "redis")


def brute_loads(router: str, keys, key_type: str, n: int, weights=None) -> np.ndarray:
    """Per-shard load by routing every key with the router itself."""
    return np.bincount(make_router(router, n, key_type).shard_many(keys), weights=weights,
                       minlength=n)


def exact_model(keys, key_type: str = "int"):
    builder = KeyModelBuilder(key_type)
    builder.add(keys)
    return builder.model()


@pytest.mark.parametrize("key_type", ["int", "str"])
def test_every_placement_agrees_with_its_router_at_every_count(key_type: str) -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(-10**12, 10**12, size=20_000)
    keys = raw if key_type == "int" else [f"u-{k}" for k in raw.tolist()]
    batch = KeyBatch.of(keys, key_type)
    weights = rng.integers(1, 5, size=len(raw)).astype(np.float64)
    for name in ROUTERS:
        if name == "mod" and key_type == "str":
            continue
        placement = placement_for(name, key_type, KeyBatch.of(keys[:2000], key_type))
        assert type(placement).__name__ != "_Generic", name  # the fast form was verified
        prepared = prepare(placement, batch)
        counts = [1, 2, 3, 17, 64, 100, 255, 1000, 4093]
        together = placement.loads(prepared, batch, None, counts)
        in_order = dict(placement.each_load(prepared, batch, weights, counts))
        for n in counts:
            assert np.array_equal(together[n], brute_loads(name, batch, key_type, n)), (name, n)
            assert np.array_equal(in_order[n], brute_loads(name, batch, key_type, n, weights))


def test_saturation_and_smallest_count_match_brute_force_on_small_key_sets() -> None:
    rng = np.random.default_rng(7)
    robust_found = 0
    for trial in range(6):
        keys = rng.integers(1, 10**9, size=int(rng.integers(20, 200)))
        requests = np.repeat(keys, rng.integers(1, 40, size=keys.size))
        model = exact_model(requests)
        total = requests.size
        heaviest = np.bincount(np.searchsorted(np.unique(requests), requests)).max() / total
        # a target the heaviest key leaves room for: a shard holds a few of the keys
        target = 300.0 * 0.75 * float(rng.uniform(0.2, 0.4)) / heaviest
        capacity = CapacityModel(target_qps=target, shard_capacity_qps=300.0, headroom=0.25)
        counts = list(range(2, 301))
        for router in ("mod", "murmur3", "jump", "redis"):
            placement = placement_for(router, "int", model.batch("listed"))
            ev = Evaluator(placement, model, capacity)
            figures = ev.figures(counts)
            carries = {}
            for n in counts:
                loads = brute_loads(router, requests, "int", n)
                share = loads.max() / total
                assert figures[n].saturation_qps == pytest.approx(300.0 / share, rel=1e-12)
                assert loads[figures[n].hottest_shard] == loads.max()
                carries[n] = share * capacity.target_qps <= 300.0 * 0.75 + 1e-9
            search = Search({router: ev}, capacity, share_limit=1.0, counts=counts, seed=trial)
            found = search.run(None)[router]
            first = next((n for n in counts if carries[n]), None)
            assert found.first_pass == first
            robust_by_neighbours = next(
                (n for n in counts if all(carries.get(m, False) for m in neighbours(n))
                 and max(neighbours(n)) <= counts[-1]), None)
            if found.shards is not None:
                robust_found += 1
                assert robust_by_neighbours is not None and found.shards >= robust_by_neighbours
                assert all(carries[m] for m in neighbours(found.shards) if m in carries)
    assert robust_found >= 12  # most of the 24 (trial, router) searches found a robust count


def test_the_fewest_shards_even_a_perfect_split_needs() -> None:
    capacity = CapacityModel(target_qps=20_000, shard_capacity_qps=500, headroom=0.3)
    assert capacity.min_shards(4096) == math.ceil(20_000 / (500 * 0.7))
    # two big shards (weight 4) carry what 8 standard ones do
    big = CapacityModel(target_qps=20_000, shard_capacity_qps=500, headroom=0.3,
                        weights=(4.0, 4.0))
    assert big.min_shards(4096) == math.ceil(20_000 / (500 * 0.7)) - 6


def test_heterogeneous_shards_saturate_by_load_per_unit_of_capacity() -> None:
    weights = (2.0, 1.0, 0.5, 1.0)
    capacity = CapacityModel(target_qps=1_000, shard_capacity_qps=100, headroom=0.0,
                             weights=weights)
    loads = np.array([400.0, 150.0, 120.0, 200.0])
    load = capacity.load(loads)
    per_capacity = loads / np.array(weights)
    assert load.hottest_shard == int(np.argmax(per_capacity)) == 2  # the half-size shard
    expected = min(100 * w * loads.sum() / l for w, l in zip(weights, loads))
    assert load.saturation_qps == pytest.approx(expected)
    assert load.utilisation == pytest.approx(1_000 / expected)
    # the same loads on equal shards: the busiest shard saturates first
    plain = CapacityModel(target_qps=1_000, shard_capacity_qps=100, headroom=0.0).load(loads)
    assert plain.hottest_shard == 0 and plain.saturation_qps == pytest.approx(100 * 870 / 400)


def test_a_shard_with_twice_the_hardware_carries_twice_the_share_in_a_plan() -> None:
    text = """
shards: 4
gate: {max_shard_share: 1.0}
routing: {primary: mod, compare: [], key_type: int}
keys: [{kind: strided, start: 0, step: 4, count: 50, order: cycle}]
plan:
  requests: 10000
  routers: [mod]
  target_qps: 1000
  shard_capacity_qps: 600
  headroom: 0.1
  search: {counts: [4]}
"""
    equal = run_plan(parse_scenario(text))["plan"]["rows"][0]
    assert equal["saturation_qps"] == pytest.approx(600) and equal["capacity_status"] == "block"
    double = run_plan(parse_scenario(text + "  shard_weights: [2]\n"))["plan"]["rows"][0]
    assert double["saturation_qps"] == pytest.approx(1200)
    assert double["capacity_status"] == "pass"
    assert double["utilisation"] == pytest.approx(1000 / 1200)


@pytest.mark.parametrize("before,after", [(100, 101), (100, 128), (64, 48), (7, 12)])
def test_resharding_fractions_follow_their_closed_forms(before: int, after: int) -> None:
    span = math.lcm(before, after)
    every_residue = np.arange(span * (20_000 // span + 1), dtype=np.int64)  # evenly spread keys
    model = exact_model(every_residue)
    capacity = CapacityModel(None, None, 0.0)
    mod = Evaluator(placement_for("mod", "int", model.batch("listed")), model, capacity)
    keys_moved, traffic_moved = moved_keys(mod, before, after)
    assert keys_moved == traffic_moved == pytest.approx(expected_moved("mod", before, after))
    assert expected_moved("mod", before, after) == 1 - min(before, after) / span
    rng = np.random.default_rng(before * after)
    random_keys = exact_model(rng.integers(0, 2**62, size=30_000))
    for router in ("jump", "murmur3", "redis"):
        ev = Evaluator(placement_for(router, "int", random_keys.batch("listed")), random_keys,
                       capacity)
        share, _ = moved_keys(ev, before, after)
        expected = expected_moved(router, before, after)
        sd = math.sqrt(expected * (1 - expected) / 30_000)
        assert abs(share - expected) <= 4.5 * sd + 1e-9, (router, share, expected)
    assert expected_moved("jump", before, after) == 1 - min(before, after) / max(before, after)


def test_the_key_model_is_exact_for_few_keys_and_bounded_for_many() -> None:
    rng = np.random.default_rng(11)
    few = rng.integers(0, 2 * SAMPLE_KEYS - 10, size=300_000)
    builder = KeyModelBuilder("int")
    for lo in range(0, few.size, 70_000):
        builder.add(few[lo:lo + 70_000])
    model = builder.model()
    assert model.exact and dict(zip(model.listed.keys.tolist(),
                                    model.listed.counts.tolist())) == Counter(few.tolist())
    many = np.concatenate([rng.integers(0, 10**12, size=600_000), np.full(40_000, 42)])
    rng.shuffle(many)
    builder = KeyModelBuilder("int")
    for lo in range(0, many.size, 1 << 16):
        builder.add(many[lo:lo + (1 << 16)])
    model = builder.model()
    assert not model.exact
    assert len(model.sampled) <= 2 * SAMPLE_KEYS and len(model.listed) <= 1024
    truth = Counter(many.tolist())
    assert model.top(1)[0][0] == 42 and truth[42] - model.heavy_error <= model.top(1)[0][1]
    sampled = dict(zip(model.sampled.keys.tolist(), model.sampled.counts.tolist()))
    assert all(truth[k] == c for k, c in sampled.items())  # sampled counts are exact
    assert model.distinct == pytest.approx(len(truth), rel=0.05)
    assert model.f2 == pytest.approx(sum(c * c for c in truth.values()), rel=0.05)
    assert model.listed.total + model.sampled.total == pytest.approx(many.size)


UNIFORM = """
seed: {seed}
shards: 40
routing: {{primary: murmur3, compare: [jump], key_type: int}}
keys: [{{kind: uniform, low: 1, high: 3000}}]
plan:
  requests: 30000
  routers: [murmur3, jump]
  target_qps: 10000
  shard_capacity_qps: 200
  headroom: 0.2
  search: {{min_shards: 2, max_shards: 400}}
"""


def _carries_on_fresh_keys(router: str, shards: int, seed: int) -> bool:
    keys = parse_scenario(UNIFORM.format(seed=seed)).build_distribution().sample(30_000)
    loads = np.bincount(make_router(router, shards, "int").shard_many(keys), minlength=shards)
    return loads.max() / loads.sum() * 10_000 <= 200 * 0.8


def test_a_robust_recommendation_survives_fresh_key_sets_where_a_lucky_count_does_not() -> None:
    plan = run_plan(parse_scenario(UNIFORM.format(seed=1)))["plan"]
    rec = plan["recommendation"]
    assert rec["change"] and rec["shards"] > plan["capacity"]["min_shards"]
    fresh = range(2, 12)  # other key sets from the same distribution
    assert all(_carries_on_fresh_keys(rec["router"], rec["shards"], s) for s in fresh)
    for router, finding in plan["search"]["findings"].items():
        assert finding["first_pass"] < finding["shards"]
        lucky = [_carries_on_fresh_keys(router, finding["first_pass"], s) for s in fresh]
        assert not all(lucky), router  # the first count that passed was luck


def test_a_sampled_key_model_is_confirmed_on_exact_counts() -> None:
    text = """
seed: 5
shards: 100
routing: {primary: mod, compare: [murmur3], key_type: int}
keys: [{kind: snowflake, rate: 300, workers: 2}]
plan:
  requests: 200000
  routers: [mod, murmur3]
  target_qps: 20000
  shard_capacity_qps: 500
  headroom: 0.3
  search: {min_shards: 2, max_shards: 1024}
"""
    scenario = parse_scenario(text)
    plan = run_plan(scenario)["plan"]
    assert not plan["key_model"]["exact"] and plan["passes"] >= 2
    found = plan["search"]["findings"]["murmur3"]
    assert found["exact"] and found["shards"] is not None
    keys = scenario.build_distribution().sample(200_000)
    for n in neighbours(found["shards"]):
        loads = brute_loads("murmur3", keys, "int", n)
        assert loads.max() / loads.sum() * 20_000 <= 500 * 0.7
    row = next(r for r in plan["rows"]
               if r["router"] == "murmur3" and r["shards"] == found["shards"])
    assert row["counts"] == brute_loads("murmur3", keys, "int", found["shards"]).tolist()
    assert plan["search"]["findings"]["mod"]["shards"] is None  # never robust on Snowflake IDs
    assert PlanConfig.model_validate({}).headroom == pytest.approx(0.2)
