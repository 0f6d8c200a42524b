"""The capacity model: the load a release must carry, what each shard sustains, and the headroom
to keep.

Shard i sustains `shard_capacity_qps × weight_i` (weight 2: twice the hardware). Under a router
that puts share p_i of the requests on shard i, the total load L puts L·p_i on it, so shard i
saturates at L = capacity_i / p_i and the first to saturate is the one with the largest
p_i / weight_i. A setup carries the target when that shard, at the target, is at most
(1 − headroom) busy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skewcheck.config import PlanConfig


@dataclass(frozen=True)
class Load:
    """What one set of per-shard loads means for capacity."""

    shards: int
    requests: float
    hottest_shard: int  # the first to saturate: the largest load per unit of capacity
    hottest_share: float  # its share of the requests
    max_share: float  # the largest share of any shard (the balance gate's figure)
    saturation_qps: float | None  # total load at which the hottest shard saturates (inf: none)
    utilisation: float | None  # the hottest shard's load at the target over its capacity


@dataclass(frozen=True)
class CapacityModel:
    target_qps: float | None
    shard_capacity_qps: float | None
    headroom: float
    weights: tuple[float, ...] = ()

    @classmethod
    def of(cls, cfg: PlanConfig) -> CapacityModel:
        return cls(cfg.target_qps, cfg.capacity_qps, cfg.headroom, tuple(cfg.shard_weights or ()))

    @property
    def judged(self) -> bool:
        """Whether a setup can be judged on capacity (a target and a per-shard capacity)."""
        return self.target_qps is not None and self.shard_capacity_qps is not None

    @property
    def busy_limit(self) -> float:
        """How busy the hottest shard may be at the target."""
        return 1.0 - self.headroom

    @property
    def needed_qps(self) -> float | None:
        """The saturation point a setup needs: the target with the headroom on top."""
        return None if self.target_qps is None else self.target_qps / self.busy_limit

    def shard_weights(self, shards: int) -> np.ndarray:
        w = np.ones(shards, dtype=np.float64)
        given = self.weights[:shards]
        w[:len(given)] = given
        return w

    def min_shards(self, upto: int) -> int | None:
        """The fewest shards whose capacities add up to the target with the headroom, even split
        perfectly (None: not within `upto`)."""
        if not self.judged:
            return None
        assert self.shard_capacity_qps is not None and self.needed_qps is not None
        total = np.cumsum(self.shard_weights(upto)) * self.shard_capacity_qps
        enough = np.flatnonzero(total >= self.needed_qps * (1 - 1e-12))
        return int(enough[0]) + 1 if enough.size else None

    def carries(self, load: Load) -> bool | None:
        if load.utilisation is None:
            return None
        return load.utilisation <= self.busy_limit + 1e-12

    def load(self, loads: np.ndarray) -> Load:
        """The capacity figures of one set of per-shard loads (requests per shard, any scale)."""
        n = int(loads.size)
        total = float(loads.sum())
        if total <= 0:
            return Load(n, 0.0, 0, 0.0, 0.0, None, None)
        per_capacity = loads / self.shard_weights(n) if self.weights else loads
        hottest = int(np.argmax(per_capacity))
        hottest_share = float(loads[hottest]) / total
        max_share = float(loads.max()) / total
        saturation = utilisation = None
        if self.shard_capacity_qps is not None:
            weight = self.weights[hottest] if hottest < len(self.weights) else 1.0
            capacity = self.shard_capacity_qps * weight
            saturation = capacity / hottest_share if hottest_share > 0 else math.inf
            if self.target_qps is not None:
                utilisation = self.target_qps / saturation
        return Load(n, total, hottest, hottest_share, max_share, saturation, utilisation)
