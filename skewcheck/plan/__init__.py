"""Capacity planning: which router and shard count carry the target load, offline.

"With these keys, this router and N shards, which shard saturates first, and at what total
QPS?" — and the smallest setup that carries the target with the headroom, robustly.

    capacity   the target, each shard's capacity (and weight), the headroom
    keymodel   the keys' weights in bounded memory: exact, or the heaviest keys and a sample
    placement  where each router puts keys over many shard counts at once
    curve      per-shard loads of a key model at any shard count: the saturation curve
    search     the smallest robust shard count per router
    stream     passes over the keys: the key model, exact per-shard counts
    rows       plan rows, their verdicts, the recommendation; a saved plan judged again
    reshard    what moves going from N to M shards
    growth     the keys at a later point in time
    planner    run_plan: all of it as one result document
"""

from skewcheck.plan.planner import run_plan
from skewcheck.plan.rows import rejudge_plan

__all__ = ["rejudge_plan", "run_plan"]
