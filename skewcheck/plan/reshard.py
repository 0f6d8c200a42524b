"""Resharding what-if: going from N to M shards under each router, which keys and how much traffic
change shard, and where the hottest shard is afterwards.

For keys spread evenly, a modulo (and a hash then modulo) keeps a key in place only when
k mod N = k mod M, a fraction min(N, M)/lcm(N, M): nearly everything moves. Jump consistent hash
moves only what the new shards take, 1 − N/M growing (1 − M/N shrinking). Redis Cluster's even
slot ranges move the slots whose range changes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skewcheck.plan.curve import Evaluator
from skewcheck.plan.placement import REDIS_SLOTS, Placement

_MODULAR = {"mod", "hash-mod", "murmur3", "kafka"}


def expected_moved(router: str, before: int, after: int) -> float | None:
    """The fraction of evenly spread keys that change shard (None: no closed form)."""
    if router in _MODULAR:
        return 1.0 - min(before, after) / math.lcm(before, after)
    if router == "jump":
        return 1.0 - min(before, after) / max(before, after)
    if router == "redis":
        slots = np.arange(REDIS_SLOTS, dtype=np.int64)
        return float(np.mean(slots * before // REDIS_SLOTS != slots * after // REDIS_SLOTS))
    return None


def moved_keys(evaluator: Evaluator, before: int, after: int) -> tuple[float, float]:
    """(fraction of distinct keys, fraction of requests) that change shard, over the key model:
    exact when the model is; else the sample stands for the keys not listed."""
    model = evaluator.model
    placement: Placement = evaluator.placement
    keys_moved = traffic_moved = 0.0
    keys_seen = 0.0
    for part in ("listed", "sampled"):
        keys = getattr(model, part)
        if not len(keys):
            continue
        batch = model.batch(part)
        prepared = evaluator.prepared(part)
        moves = (placement.shards(prepared, batch, before)
                 != placement.shards(prepared, batch, after))
        stands_for = 1.0
        if part == "sampled" and not model.exact:
            stands_for = max(model.distinct - len(model.listed), 0.0) / len(keys)
        keys_moved += float(np.count_nonzero(moves)) * stands_for
        keys_seen += len(keys) * stands_for
        traffic_moved += float(keys.weights[moves].sum())
    requests = model.requests or 1
    return keys_moved / max(keys_seen, 1.0), traffic_moved / requests


def section(routers: list[str], before: int, after: int, keys: dict[str, tuple[float, float]],
            traffic: dict[str, float], rows: dict[tuple[str, int], dict[str, Any]],
            exact: bool) -> dict[str, Any]:
    out = []
    for router in routers:
        key_share, model_traffic = keys[router]
        after_row = rows[(router, after)]
        out.append({
            "router": router, "keys_moved": key_share,
            "traffic_moved": traffic.get(router, model_traffic),
            "expected_moved": expected_moved(router, before, after),
            "hottest_shard": after_row["hottest_shard"], "max_share": after_row["max_share"],
            "saturation_qps": after_row["saturation_qps"], "utilisation": after_row["utilisation"],
            "status": after_row["status"],
        })
    return {"from": before, "to": after, "keys_exact": exact, "routers": out}
