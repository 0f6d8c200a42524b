"""Plan rows (one router over one shard count: its capacity figures and its verdict), the
recommendation drawn from them, and `skewcheck gate --config` judging a saved plan again.

A row's verdict is the worse of two: the balance gate on its per-shard counts (`judge`, as a run
is judged) and the capacity rule — a row that cannot carry the target with the headroom blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from skewcheck.errors import UsageError, validation_message
from skewcheck.gate import GateConfig, judge
from skewcheck.plan.capacity import CapacityModel, Load
from skewcheck.plan.search import RESAMPLES, busy, neighbours
from skewcheck.summary import from_counts
from skewcheck.verdict import Check, worst


def balance(router: str, counts: np.ndarray, key_f2: float, gate: GateConfig
            ) -> tuple[str, list[dict[str, Any]], float, list[float] | None]:
    """The balance gate on one row's counts: (status, its checks, max share, its interval)."""
    summary = from_counts(router, {router: counts}, key_f2=key_f2, requests=int(counts.sum()))
    verdict = judge(summary, gate).verdict
    checks = [{"rule": c.rule, "status": c.status, "message": c.message} for c in verdict.checks]
    share = next((c for c in verdict.checks if c.rule == "max_shard_share"), None)
    interval = share.details.get("interval") if share is not None else None
    return verdict.status, checks, summary.routers[router].max_share, \
        None if interval is None else [float(x) for x in interval]


def capacity_status(capacity: CapacityModel, load: Load) -> str | None:
    carries = capacity.carries(load)
    return None if carries is None else ("pass" if carries else "block")


def row(router: str, shards: int, counts: np.ndarray, roles: list[str], exact: bool,
        capacity: CapacityModel, gate: GateConfig, key_f2: float) -> dict[str, Any]:
    counts = np.asarray(counts, dtype=np.int64)
    load = capacity.load(counts.astype(np.float64))
    status, checks, max_share, interval = balance(router, counts, key_f2, gate)
    cap = capacity_status(capacity, load)
    return {
        "router": router, "shards": shards, "roles": roles, "exact": exact,
        "requests": int(counts.sum()), "hottest_shard": load.hottest_shard,
        "hottest_share": load.hottest_share, "max_share": max_share,
        "max_share_interval": interval, "saturation_qps": load.saturation_qps,
        "utilisation": load.utilisation,
        "headroom": None if load.utilisation is None else 1.0 - load.utilisation,
        "capacity_status": cap, "balance_status": status,
        "status": worst([status] + ([cap] if cap else [])),
        "balance_checks": checks, "counts": counts.tolist(),
    }


def figures(r: dict[str, Any], target: float | None) -> str:
    """A row's capacity in plain words."""
    if r.get("saturation_qps") is None:
        return (f"hottest shard {r['hottest_shard']} carries {r['max_share']:.1%} of requests "
                "(no per-shard capacity given)")
    where = f"shard {r['hottest_shard']} saturates first, at {r['saturation_qps']:,.0f} total QPS"
    if target is None or r.get("utilisation") is None:
        return where
    return (f"at {target:,.0f} QPS the hottest shard ({r['hottest_shard']}) is at "
            f"{busy(r['utilisation'])}; {where}")


def capacity_check(plan: dict[str, Any]) -> Check | None:
    """The capacity rule on the configured router and shard count (None: nothing to judge)."""
    cap = plan["capacity"]
    if not cap["judged"]:
        return None
    r = configured_row(plan)
    target, limit = cap["target_qps"], 1.0 - cap["headroom"]
    details = {"target_qps": target, "saturation_qps": r["saturation_qps"],
               "shard_capacity_qps": cap["shard_capacity_qps"], "headroom": cap["headroom"],
               "needed_qps": cap["needed_qps"]}
    setup = f"{r['router']} over {r['shards']} shards"
    if r["capacity_status"] == "pass":
        message = (f"{setup} carries {target:,.0f} QPS with {cap['headroom']:.0%} headroom: "
                   f"{figures(r, target)}")
    else:
        message = (f"{setup} cannot carry {target:,.0f} QPS with {cap['headroom']:.0%} headroom: "
                   f"{figures(r, target)}")
    return Check("capacity", r["capacity_status"], message, r["router"], r["hottest_shard"],
                 r["utilisation"], limit, details)


def configured_row(plan: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in plan["rows"]
                if r["router"] == plan["primary"] and r["shards"] == plan["configured_shards"])


def _row_at(plan: dict[str, Any], router: str, shards: int) -> dict[str, Any] | None:
    return next((r for r in plan["rows"] if r["router"] == router and r["shards"] == shards), None)


def recommendation(plan: dict[str, Any]) -> dict[str, Any]:
    """Keep the configured setup if it passes; else the smallest change that passes robustly:
    fewest shards first, then keeping the configured router. Each other router says why not."""
    primary, configured = plan["primary"], plan["configured_shards"]
    target = plan["capacity"]["target_qps"]
    current = configured_row(plan)
    routers = plan["routers"]
    if current["status"] == "pass":
        return {"change": "keep", "router": primary, "shards": configured,
                "message": f"keep {primary} over {configured} shards: {figures(current, target)}",
                "rejected": []}
    if not plan["capacity"]["judged"]:
        return _by_balance(plan, current)
    findings = plan["search"]["findings"]
    ranked = []
    rejected = []
    for order, router in enumerate(routers):
        f = findings[router]
        if f["shards"] is None:
            rejected.append({"router": router, "reason": f["reason"]})
            continue
        r = _row_at(plan, router, f["shards"])
        if r is None or r["status"] != "pass":
            why = "; ".join(c["message"] for c in (r or {}).get("balance_checks", [])
                            if c["status"] != "pass")
            rejected.append({"router": router, "reason": f"its smallest robust count, "
                             f"{f['shards']}, fails the balance gate: {why}"})
            continue
        ranked.append((f["shards"], router != primary, order, router, r, f))
    if not ranked:
        return {"change": None, "router": None, "shards": None, "rejected": rejected,
                "message": "no router carries the target robustly in the searched shard counts"}
    shards, _, _, router, r, f = min(ranked)
    for other_shards, _, _, other, _, _ in sorted(ranked):
        if other == router:
            continue
        if other_shards > shards:
            why = f"needs {other_shards} shards; {router} needs {shards}"
        elif router == primary:
            why = f"also needs {shards} shards, and {router} is the configured router"
        else:
            why = f"also needs {shards} shards; {router} comes first in the planned routers"
        rejected.append({"router": other, "reason": why})
    change = "shards" if router == primary else ("router" if shards == configured
                                                 else "router and shards")
    top = neighbours(shards)[-1]
    how = "exact counts" if f["exact"] else "the sampled key model"
    message = (f"{router} over {shards} shards: {figures(r, target)}; carries the target at every "
               f"count from {shards} to {top} and in {f['resamples']} of {RESAMPLES} resampled "
               f"key sets (judged on {how})")
    order = {name: i for i, name in enumerate(routers)}
    rejected.sort(key=lambda x: order[x["router"]])
    return {"change": change, "router": router, "shards": shards, "exact": f["exact"],
            "saturation_qps": r["saturation_qps"], "utilisation": r["utilisation"],
            "message": message, "rejected": rejected}


def _by_balance(plan: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Without a target and capacity: the first router that passes the balance gate at the
    configured count."""
    configured = plan["configured_shards"]
    rejected = []
    for router in plan["routers"]:
        r = _row_at(plan, router, configured)
        if r is not None and r["status"] == "pass":
            return {"change": "router", "router": router, "shards": configured,
                    "message": f"{router} over {configured} shards passes the balance gate "
                               "(no target_qps and per-shard capacity: judged on balance only)",
                    "rejected": rejected}
        if r is not None:
            rejected.append({"router": router, "reason": "fails the balance gate"})
    return {"change": None, "router": None, "shards": None, "rejected": rejected,
            "message": "no router passes the balance gate at the configured shard count"}


# --------------------------------------------------------------------------- a saved plan


class _SavedRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    router: str
    shards: int
    counts: list[int]
    capacity_status: str | None = None


class _SavedKeyModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    key_f2: float


class _SavedCapacity(BaseModel):
    model_config = ConfigDict(extra="allow")

    judged: bool
    target_qps: float | None = None


class _SavedPlan(BaseModel):
    """What judging a saved plan again needs; everything else is carried through."""

    model_config = ConfigDict(extra="allow")

    primary: str
    configured_shards: int
    routers: list[str]
    rows: list[_SavedRow]
    key_model: _SavedKeyModel
    capacity: _SavedCapacity
    search: dict[str, Any]


def rejudge_plan(plan: Any, cfg: GateConfig) -> dict[str, Any]:
    """A saved plan's rows judged again under other gate thresholds (`skewcheck gate --config`):
    the balance verdict from each row's counts, the capacity verdict as planned."""
    try:
        saved = _SavedPlan.model_validate(plan)
    except ValidationError as exc:
        raise UsageError("the saved plan section is malformed (plan it again with skewcheck "
                         f"plan): {validation_message(exc, root='plan', separator='; ')}") from None
    if not saved.rows:
        raise UsageError("the saved plan section has no rows")
    judged = []
    for row_saved, raw in zip(saved.rows, plan["rows"]):
        counts = np.asarray(row_saved.counts, dtype=np.int64)
        status, checks, max_share, interval = balance(row_saved.router, counts,
                                                      saved.key_model.key_f2, cfg)
        cap = row_saved.capacity_status
        judged.append({**raw, "balance_status": status, "balance_checks": checks,
                       "max_share": max_share, "max_share_interval": interval,
                       "status": worst([status] + ([cap] if cap else []))})
    out = {**plan, "rows": judged}
    out["recommendation"] = recommendation(out)
    return out
