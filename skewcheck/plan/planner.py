"""`run_plan`: the capacity plan of a scenario, offline, as one result document.

Passes over the keys: one builds the key model (bounded: exact up to 2 × SAMPLE_KEYS distinct
keys, else the heaviest keys and a sample); over an exact model everything else is computed from
it. Over a sampled model, one more pass counts every key exactly for the table's rows, the
resharding moves and the counts the search needs confirmed (a second search pass only when the
exact counts refute the model's candidate). A horizon adds one pass over the later keys.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from skewcheck.config import DEFAULT_PLAN_REQUESTS, Scenario
from skewcheck.errors import UsageError
from skewcheck.gate import judge
from skewcheck.keys import HotSpec, KeySpec, MixtureSpec, PrefixedSpec, ReplaySpec
from skewcheck.keys.replay import count_keys
from skewcheck.keytext import KeyBatch, parse_key
from skewcheck.plan import growth
from skewcheck.plan import reshard as resharding
from skewcheck.plan.capacity import CapacityModel, Load
from skewcheck.plan.curve import Evaluator, thinned
from skewcheck.plan.keymodel import KeyModel, from_top_keys
from skewcheck.plan.placement import placement_for
from skewcheck.plan.rows import capacity_check, recommendation, row
from skewcheck.plan.search import (
    RESAMPLES,
    ROBUST_MIN_SPAN,
    ROBUST_SPAN,
    Finding,
    Search,
    shown_key,
)
from skewcheck.plan.stream import ExactCounts, KeyStream, Progress
from skewcheck.result import build_result
from skewcheck.summary import from_counts

PROBE_KEYS = 4096  # keys a fast placement is checked against the router on
HOT_SPOT = 1.25  # a shard 25% above an even split is a hot shard (growth compares them)


def run_plan(scenario: Scenario, requests: int | None = None, progress: Progress | None = None,
             reshard: tuple[int, int] | None = None,
             result: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Plan the scenario's keys (or a saved run's key weights, `result` = (path, document))."""
    cfg = scenario.plan
    primary = scenario.routing.primary
    names = [primary, *(n for n in (cfg.routers or scenario.routing.router_names) if n != primary)]
    key_type = scenario.routing.key_type
    capacity = CapacityModel.of(cfg)
    if reshard is None and cfg.reshard is not None:
        reshard = (cfg.reshard.before, cfg.reshard.after)
    stream: KeyStream | None = None
    if result is not None:
        if cfg.horizon is not None:
            raise UsageError("plan.horizon needs the scenario's own keys: a saved result's key "
                             "weights carry no time")
        model = model_of_result(*result, key_type=key_type, seed=scenario.seed)
    else:
        total = planned_requests(scenario, requests, progress)
        stream = KeyStream(scenario.build_distribution, total, key_type, progress)
        model = stream.model()
    probe = _probe(model)
    placements = {name: placement_for(name, key_type, probe, lambda n, name=name: scenario.routing.router(name, n))
                  for name in names}
    evaluators = {name: Evaluator(placements[name], model, capacity) for name in names}
    exact = ExactCounts(stream, placements) if stream is not None and not model.exact else None
    table = list(dict.fromkeys([scenario.shards, *cfg.shard_sweep, *(reshard or ())]))
    moves = [reshard] if reshard else []

    findings: dict[str, Finding] | None = None
    search = None
    if capacity.judged:
        search = Search(evaluators, capacity, scenario.gate.max_shard_share,
                        cfg.search.shard_counts(), scenario.seed)

        def exact_pass(wanted: dict[str, list[int]]) -> dict[str, dict[int, Load]]:
            assert exact is not None
            exact.count({n: [*wanted.get(n, []), *table] for n in names}, moves)
            return {n: {m: capacity.load(exact.loads[n][m].astype(np.float64))
                        for m in wanted.get(n, [])} for n in names}

        findings = search.run(exact_pass if exact is not None else None)

    wanted = {n: [*table, *([findings[n].shards] if findings and findings[n].shards else [])]
              for n in names}
    counts = _row_counts(wanted, model, evaluators, exact, moves)
    rows = _rows(names, scenario, table, reshard, findings, counts, model, capacity)
    by_key = {(r["router"], r["shards"]): r for r in rows}

    plan: dict[str, Any] = {
        "requests": model.requests,
        "primary": primary,
        "configured_shards": scenario.shards,
        "routers": names,
        "shard_counts": table,
        "key_model": model.describe(),
        "capacity": {"judged": capacity.judged, "target_qps": capacity.target_qps,
                     "shard_capacity_qps": capacity.shard_capacity_qps,
                     "headroom": capacity.headroom, "shard_weights": list(capacity.weights),
                     "needed_qps": capacity.needed_qps,
                     "min_shards": capacity.min_shards(max(cfg.search.shard_counts()))},
        "search": _search_section(cfg, search, findings, model, capacity),
        "rows": rows,
        "curves": _curves(names, evaluators, search, exact, cfg.search.shard_counts(), capacity),
        "reshard": None,
        "growth": None,
        "passes": stream.passes if stream is not None else 0,
    }
    if reshard:
        keys = {n: resharding.moved_keys(evaluators[n], *reshard) for n in names}
        traffic = ({n: exact.moved[(n, *reshard)] / model.requests for n in names}
                   if exact is not None else {})
        plan["reshard"] = resharding.section(names, *reshard, keys, traffic, by_key, model.exact)
    if cfg.horizon is not None:
        plan["growth"] = _growth(scenario, names, placements, capacity, findings, by_key, progress,
                                 model.requests)
    plan["recommendation"] = recommendation(plan)
    plan["passes"] = stream.passes if stream is not None else 0

    configured = {n: np.asarray(by_key[(n, scenario.shards)]["counts"], dtype=np.int64)
                  for n in names}
    summary = from_counts(primary, configured, key_f2=model.f2,
                          requests=int(configured[primary].sum()),
                          top_keys=model.top(10), top_keys_error=model.heavy_error)
    extra = [c for c in [capacity_check(plan)] if c is not None]
    judgement = judge(summary, scenario.gate, extra)
    return build_result("plan", summary, judgement, scenario.model_dump(mode="json"),
                        {"plan": plan})


# --------------------------------------------------------------------------- the keys


def _replays(specs: Iterable[KeySpec]) -> Iterable[ReplaySpec]:
    for spec in specs:
        if isinstance(spec, ReplaySpec):
            yield spec
        elif isinstance(spec, MixtureSpec):
            yield from _replays(spec.components)
        elif isinstance(spec, HotSpec):
            yield from _replays([spec.base])
        elif isinstance(spec, PrefixedSpec):
            yield from _replays([spec.inner])


def planned_requests(scenario: Scenario, requests: int | None, progress: Progress | None) -> int:
    """How many requests to plan: as asked, else plan.requests, else a replay's keys once."""
    key_type = scenario.routing.key_type
    counted = {}
    for spec in _replays(scenario.keys):  # validated now, with progress, then read at will
        report = progress(f"validating {spec.path.name}") if progress else None
        counted[spec.path] = count_keys(spec, (spec.key_type or key_type) == "int", report)
    single = scenario.keys[0] if len(scenario.keys) == 1 else None
    total = requests or scenario.plan.requests
    if total is None:
        total = counted[single.path] if isinstance(single, ReplaySpec) else DEFAULT_PLAN_REQUESTS
    if isinstance(single, ReplaySpec) and not single.loop and total > counted[single.path]:
        raise UsageError(f"{single.path} holds {counted[single.path]:,} keys but the plan asks "
                         f"for {total:,} requests and the replay does not loop (loop: false)")
    return total


def model_of_result(path: str, doc: dict[str, Any], key_type: str, seed: int) -> KeyModel:
    """A saved run result's key weights as a key model."""
    top = doc.get("top_keys")
    f2 = doc.get("key_f2")
    requests = doc.get("requests")
    if not top or f2 is None or not requests:
        raise UsageError(f"{path} holds no key weights to plan from (it needs requests, top_keys "
                         "and key_f2, as a run records them)")
    try:
        weights = [(parse_key(str(t["key"]), key_type), int(t["requests"])) for t in top]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: top_keys are malformed: {exc}") from None
    seen = sum(c for _, c in weights)
    if seen > requests or any(c <= 0 for _, c in weights):
        raise UsageError(f"{path}: top_keys count {seen:,} requests of {requests:,}")
    return from_top_keys(key_type, int(requests), weights, int(doc.get("top_keys_error") or 0),
                         float(f2), seed)


def _probe(model: KeyModel) -> KeyBatch:
    keys: Any = []
    for part in (model.listed, model.sampled):
        room = PROBE_KEYS - len(keys)
        taken = part.keys[:room]
        keys = (list(keys) + (taken.tolist() if isinstance(taken, np.ndarray) else list(taken)))
    if model.key_type == "int":
        return KeyBatch.of(np.array(keys, dtype=np.int64), "int")
    return KeyBatch.of(keys, "str")


# --------------------------------------------------------------------------- rows


def integer_counts(loads: np.ndarray, total: int) -> np.ndarray:
    """Per-shard loads of a sampled model as whole requests adding up to `total`."""
    scaled = loads * (total / loads.sum()) if loads.sum() > 0 else loads
    floor = np.floor(scaled).astype(np.int64)
    short = total - int(floor.sum())
    if short > 0:
        floor[np.argsort(floor - scaled, kind="stable")[:short]] += 1
    return floor


def _row_counts(wanted: dict[str, list[int]], model: KeyModel, evaluators: dict[str, Evaluator],
                exact: ExactCounts | None, moves: list[tuple[int, int]]
                ) -> dict[str, dict[int, tuple[np.ndarray, bool]]]:
    out: dict[str, dict[int, tuple[np.ndarray, bool]]] = {}
    if exact is not None:
        exact.count(wanted, moves, label="exact counts")
        return {n: {m: (exact.loads[n][m], True) for m in counts} for n, counts in wanted.items()}
    for name, counts in wanted.items():
        out[name] = {}
        for n, load in evaluators[name].loads(counts):
            values = np.rint(load).astype(np.int64) if model.exact else \
                integer_counts(load, model.requests)
            out[name][n] = (values, model.exact)
    return out


def _rows(names: list[str], scenario: Scenario, table: list[int],
          reshard: tuple[int, int] | None, findings: dict[str, Finding] | None,
          counts: dict[str, dict[int, tuple[np.ndarray, bool]]], model: KeyModel,
          capacity: CapacityModel) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        shards = list(dict.fromkeys([*table, *([findings[name].shards]
                                               if findings and findings[name].shards else [])]))
        for n in shards:
            roles = []
            if n == scenario.shards:
                roles.append("configured")
            if n in scenario.plan.shard_sweep:
                roles.append("sweep")
            if reshard and n in reshard:
                roles.append("reshard")
            if findings and findings[name].shards == n:
                roles.append("smallest")
            values, exact = counts[name][n]
            rows.append(row(name, n, values, roles, exact, capacity, scenario.gate, model.f2))
    return rows


def _search_section(cfg: Any, search: Search | None, findings: dict[str, Finding] | None,
                    model: KeyModel, capacity: CapacityModel) -> dict[str, Any]:
    counts = cfg.search.shard_counts()
    out: dict[str, Any] = {"min_shards": counts[0], "max_shards": counts[-1],
                           "counts": cfg.search.counts, "robust_span": ROBUST_SPAN,
                           "robust_min_span": ROBUST_MIN_SPAN, "resamples": RESAMPLES,
                           "findings": {r: f.to_json() for r, f in (findings or {}).items()},
                           "key_limit": None}
    top = model.top(1)
    if search is not None and top and capacity.judged and model.requests:
        key, count = top[0]
        assert capacity.target_qps is not None and capacity.shard_capacity_qps is not None
        key_qps = count / model.requests * capacity.target_qps
        strongest = max([1.0, *capacity.weights]) * capacity.shard_capacity_qps
        usable = strongest * capacity.busy_limit
        if key_qps > usable:
            out["key_limit"] = (f"key {shown_key(key)} alone carries {count / model.requests:.1%} "
                                f"of requests, {key_qps:,.0f} QPS at the target: more than one "
                                f"shard carries with the headroom ({usable:,.0f} QPS), so no "
                                "router and shard count can; cache or split that key")
            for f in out["findings"].values():
                f["reason"] = out["key_limit"]
    return out


def _curves(names: list[str], evaluators: dict[str, Evaluator], search: Search | None,
            exact: ExactCounts | None, counts: list[int], capacity: CapacityModel
            ) -> dict[str, Any]:
    out = {}
    for name in names:
        ev = evaluators[name]
        # without a target nothing is searched: the curve is drawn at thinned counts only
        shown = search.curve_counts(name) if search is not None else thinned(counts)
        figures = ev.figures(shown)
        points = {}
        if exact is not None:
            points = {n: capacity.load(load.astype(np.float64))
                      for n, load in sorted(exact.loads[name].items())}
        out[name] = {
            "exact": ev.exact,
            "shards": shown,
            "saturation_qps": [figures[n].saturation_qps for n in shown],
            "max_share": [figures[n].max_share for n in shown],
            "hottest_shard": [figures[n].hottest_shard for n in shown],
            "exact_points": {"shards": list(points),
                             "saturation_qps": [p.saturation_qps for p in points.values()],
                             "max_share": [p.max_share for p in points.values()]},
        }
    return out


# --------------------------------------------------------------------------- growth


def _growth(scenario: Scenario, names: list[str], placements: dict[str, Any],
            capacity: CapacityModel, findings: dict[str, Finding] | None,
            rows: dict[tuple[str, int], dict[str, Any]], progress: Progress | None,
            requests: int) -> dict[str, Any]:
    seconds = scenario.plan.horizon_s
    assert seconds is not None
    keys, moved = growth.at_horizon(list(scenario.keys), seconds)
    later = scenario.model_copy(update={"keys": keys})
    stream = KeyStream(later.build_distribution, requests, scenario.routing.key_type, progress)
    counts = ExactCounts(stream, placements)
    wanted = {n: list(dict.fromkeys([scenario.shards, *([findings[n].shards]
                                                        if findings and findings[n].shards
                                                        else [])])) for n in names}
    counts.count(wanted, label="keys at the horizon")
    out = []
    for name in names:
        for n in wanted[name]:
            now = rows[(name, n)]
            then = capacity.load(counts.loads[name][n].astype(np.float64))
            then_counts = counts.loads[name][n]
            then_share = float(then_counts.max()) / max(int(then_counts.sum()), 1)
            out.append({
                "router": name, "shards": n,
                "now": {"hottest_shard": now["hottest_shard"], "max_share": now["max_share"],
                        "saturation_qps": now["saturation_qps"],
                        "utilisation": now["utilisation"], "status": now["status"]},
                "then": {"hottest_shard": then.hottest_shard, "max_share": then_share,
                         "saturation_qps": then.saturation_qps, "utilisation": then.utilisation,
                         "carries": capacity.carries(then)},
                "hot_shard_moves": then.hottest_shard != now["hottest_shard"],
                "change": _change(now["max_share"], then_share, n,
                                  then.hottest_shard != now["hottest_shard"]),
            })
    return {"horizon": scenario.plan.horizon, "seconds": seconds, "moved": moved, "rows": out}


def _change(before: float, after: float, shards: int, moves: bool) -> str:
    """Whether the hottest shard moves or grows; a shard barely above an even split (the noise of
    a well-mixed router) is no hot shard."""
    hot = HOT_SPOT / shards
    if before <= hot and after <= hot:
        return "no hot shard, now or then"
    size = "grows" if after > before * 1.05 else ("shrinks" if after < before * 0.95
                                                  else "keeps its share")
    if before <= hot:
        return "a hot shard appears"
    return f"the hot shard moves and {size}" if moves else f"the hot shard stays and {size}"

