"""A router's per-shard loads over a key model, at any shard count: the saturation curve.

Over an exact model every figure is exact. Over a sampled one the listed (heaviest) keys are
placed exactly and the sampled keys stand for the rest; sampling adds noise to each shard's load
that the real keys do not have, which would make the hottest shard look hotter the more shards
there are. So the sampled part is shrunk toward an even spread by the share of its spread across
shards that sampling noise cannot explain (an empirical-Bayes estimate): a router that really
concentrates the keys (a modulo over IDs sharing a factor) keeps its structure, a well-mixed hash
spreads evenly. Figures over a sampled model are approximate; the planner checks the counts it
recommends against exact counts of every key.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from skewcheck.plan.capacity import CapacityModel, Load
from skewcheck.plan.keymodel import KeyModel
from skewcheck.plan.placement import Placement, prepare

CURVE_DENSE_UPTO = 128  # a router routed once per count is curved at every count up to this
CURVE_STEP = 1.02  # and past it at counts 2% apart


def thinned(counts: Sequence[int]) -> list[int]:
    """Counts for a router that costs a full routing per count: all up to CURVE_DENSE_UPTO, then
    2% apart (the searched range's ends always included)."""
    kept: list[int] = []
    for n in sorted(counts):
        if n <= CURVE_DENSE_UPTO or not kept or n >= kept[-1] * CURVE_STEP or n == counts[-1]:
            kept.append(n)
    return kept


def shrink(sampled: np.ndarray, noise_per_shard: float) -> np.ndarray:
    """The sampled part's loads with the spread sampling noise explains taken out."""
    n = sampled.size
    mean = float(sampled.sum()) / n
    deviation = sampled - mean
    spread = float(np.dot(deviation, deviation)) / n
    if spread <= 0:
        return sampled
    kept = max(spread - noise_per_shard, 0.0) / spread
    return mean + kept * deviation


class Evaluator:
    """One router's loads of one key model; figures at a count are computed once and kept."""

    def __init__(self, placement: Placement, model: KeyModel, capacity: CapacityModel) -> None:
        self.placement = placement
        self.router = placement.name
        self.model = model
        self.capacity = capacity
        self._prepared = {part: prepare(placement, model.batch(part))
                          for part in ("listed", "sampled")
                          if len(getattr(model, part))}
        self._figures: dict[int, Load] = {}
        self._weights = {part: getattr(model, part).weights.astype(np.float64)
                         for part in self._prepared}
        self._resampled_seed: tuple[int, int] | None = None
        self._resampled_models: list[KeyModel] = []
        self._reweighted: dict[int, tuple[KeyModel, dict[str, np.ndarray]]] = {}
        self._resampled_figures: dict[int, dict[int, Load]] = {}

    @property
    def exact(self) -> bool:
        return self.model.exact

    def prepared(self, part: str) -> np.ndarray:
        """The router's per-key values (hash, slot, seed) of the model's listed or sampled keys."""
        return self._prepared[part]

    def loads(self, counts: Sequence[int], model: KeyModel | None = None
              ) -> Iterator[tuple[int, np.ndarray]]:
        """(n, per-shard load) at every count, ascending; `model` reweights the same keys (a
        resampled key set)."""
        ordered = sorted(set(counts))
        if not ordered:
            return
        if model is None:
            model, weights = self.model, self._weights
        else:
            weights = self._reweighted[id(model)][1]
        iterators = [(part, iter(self.placement.each_load(self._prepared[part],
                                                          self.model.batch(part),
                                                          weights[part], ordered)))
                     for part in self._prepared]
        shrunk = model.inclusion < 1.0 and "sampled" in weights
        noise = (1.0 - model.inclusion) * float(np.dot(weights["sampled"], weights["sampled"])) \
            if shrunk else 0.0
        for n in ordered:
            total = np.full(n, model.even / n) if model.even else None
            for part, it in iterators:
                got, load = next(it)
                assert got == n
                if shrunk and part == "sampled":
                    load = shrink(load, noise / n)
                total = load if total is None else total + load
            yield n, total if total is not None else np.zeros(n)

    def figures(self, counts: Sequence[int]) -> dict[int, Load]:
        """Capacity figures at each count (kept for the next ask)."""
        todo = [n for n in counts if n not in self._figures]
        if todo:
            for n, load in self.loads(todo):
                self._figures[n] = self.capacity.load(load)
        return {n: self._figures[n] for n in counts}

    def resampled(self, seed: int, sets: int) -> list[KeyModel]:
        """`sets` resampled key sets of the model (the same ones at every call)."""
        if self._resampled_seed != (seed, sets):
            rng = np.random.default_rng(seed)
            models = [self.model.resampled(rng) for _ in range(sets)]
            self._reweighted = {id(m): (m, {part: getattr(m, part).weights.astype(np.float64)
                                            for part in self._prepared}) for m in models}
            self._resampled_figures = {id(m): {} for m in models}
            self._resampled_seed = (seed, sets)
            self._resampled_models = models
        return self._resampled_models

    def resampled_figures(self, counts: Sequence[int], model: KeyModel) -> dict[int, Load]:
        """Figures of one of `resampled`'s key sets (kept for the next ask)."""
        known = self._resampled_figures[id(model)]
        todo = [n for n in counts if n not in known]
        if todo:
            for n, load in self.loads(todo, model):
                known[n] = self.capacity.load(load)
        return {n: known[n] for n in counts}
