"""Capacity planning: simulate the scenario's keys through each router and shard count, offline.

"With these keys, this router and N shards, which shard saturates first, and at what total QPS?"
The hottest shard reaches its capacity C when the total load reaches C / max_share.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError

from skewcheck.config import Scenario
from skewcheck.errors import UsageError
from skewcheck.gate import GateConfig, judge, row_status
from skewcheck.result import build_result
from skewcheck.summary import summarize
from skewcheck.tally import Tally

CHUNK = 1 << 18  # keys routed per vectorised step: large enough to amortise numpy, small enough for L2-ish memory

ProgressFn = Callable[[int, int], None]


def run_plan(scenario: Scenario, requests: int | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    cfg = scenario.plan
    total = requests or cfg.requests
    primary = scenario.routing.primary
    # the primary goes first: the summary judges the first router of a tally
    names = [primary, *(n for n in (cfg.routers or scenario.routing.router_names) if n != primary)]
    shard_counts = list(dict.fromkeys([scenario.shards, *cfg.shard_sweep]))
    tallies = {
        k: Tally([scenario.routing.router(n, k) for n in names], window_s=scenario.window_s, clock=lambda: 0.0)
        for k in shard_counts
    }
    dist = scenario.build_distribution()
    done = 0
    while done < total:
        n = min(CHUNK, total - done)
        keys = dist.sample(n)  # one key stream, routed under every router and shard count
        for tally in tallies.values():
            tally.add_many(keys, ts=0.0)
        done += n
        if progress:
            progress(done, total)

    rows = []
    for k, tally in tallies.items():
        summary = summarize(tally)
        balance = judge(summary, scenario.gate).routers  # every router judged as if it were the primary
        for name in names:
            rs, rb = summary.routers[name], balance[name]
            saturation = cfg.shard_capacity_qps / rs.max_share if rs.max_share > 0 else float("inf")
            rows.append({
                "router": name,
                "shards": k,
                "hottest_shard": rs.hottest_shard,
                "max_share": rs.max_share,
                "max_share_interval": list(rb.interval),
                "stddev_ratio": rs.stddev_ratio,
                "stddev_ratio_floor": rs.floor,
                "stddev_excess": rb.excess,
                "saturation_qps": saturation,
                "hottest_shard_qps_at_target": rs.max_share * cfg.target_qps,
                "headroom": 1.0 - rs.max_share * cfg.target_qps / cfg.shard_capacity_qps,
                "status": rb.status,
            })
    safest = _safest(rows)

    main_summary = summarize(tallies[scenario.shards])
    main_summary = replace(main_summary, duration_s=0.0)
    judgement = judge(main_summary, scenario.gate)
    plan = {
        "requests": total,
        "shard_counts": shard_counts,
        "routers": names,
        "shard_capacity_qps": cfg.shard_capacity_qps,
        "target_qps": cfg.target_qps,
        "rows": rows,
        "safest": safest,
    }
    return build_result("plan", main_summary, judgement, scenario.model_dump(mode="json"), {"plan": plan})


def _safest(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The passing row (else any) that saturates last; a saved row has null for inf and NaN."""
    passing = [r for r in rows if r["status"] == "pass"] or rows
    best = max(passing, key=lambda r: (_number(r["saturation_qps"], math.inf), -_number(r["stddev_excess"], math.nan)))
    return {k: best[k] for k in ("router", "shards", "saturation_qps", "max_share")}


class _SavedRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    router: str
    shards: int
    max_share: float
    max_share_interval: tuple[float, float]
    stddev_excess: float | None  # null where the JSON could not hold NaN
    stddev_ratio_floor: float | None
    saturation_qps: float | None  # null for infinity (a shard count nothing reached)


def rejudge_plan(plan: Any, cfg: GateConfig) -> dict[str, Any]:
    """A saved plan's rows judged again under other thresholds (`skewcheck gate --config`)."""
    try:
        requests = int(plan["requests"])
        rows = [_SavedRow.model_validate(r) for r in plan["rows"]]
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise UsageError(f"the saved plan section is malformed: {exc}") from None
    if not rows:
        raise UsageError("the saved plan section has no rows")
    judged = [{**row.model_dump(),
               "status": row_status(row.max_share, row.max_share_interval[0], row.stddev_excess, requests, cfg)}
              for row in rows]
    return {**plan, "rows": judged, "safest": _safest(judged)}


def _number(value: float | None, instead: float) -> float:
    return instead if value is None else value
