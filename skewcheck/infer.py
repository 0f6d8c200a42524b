"""Which router does a system use? Rank candidate routers × shard counts × key types by how many
observed (key, shard) pairs each one routes to the shard the system reported.

Candidates are every router that needs no parameters, each variant of the ones whose parameter
is a choice (hash-mod's java_type, pg-hash's and citus' column_type), and the routers a scenario
gives parameters for (a Cassandra ring, a Redis slot map, ketama servers, split points). Shard
counts are the highest observed shard + 1 and a few common larger counts; the observed shard
numbers must be the system's own (partition remainder, shard index, node in the ring's order).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from skewcheck.errors import InconclusiveError, UsageError
from skewcheck.keytext import KeyBatch, parse_key
from skewcheck.router_params import RoutingParams, label
from skewcheck.routing import MAX_SHARDS, ROUTER_NAMES, make_router

DEFAULT_MIN_AGREEMENT = 0.99  # a few pairs may be mis-recorded (a retry, a key moved mid-run)
MIN_PAIRS = 20  # below this even a random router could look right
MAX_PAIRS = 20_000  # a larger input is sampled down to this many pairs (memory stays bounded)
COMMON_SHARD_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 50, 64, 100, 128, 256, 512, 1000,
                       1024)
_NEEDS_PARAMS = {"cassandra", "redis-cluster", "ketama", "range"}  # real systems differ per cluster
_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "hash-mod": [{"java_type": "int"}, {"java_type": "long"}],
    "pg-hash": [{"column_type": "int8"}, {"column_type": "int4"}, {"column_type": "text"}],
    "citus": [{"column_type": "int8"}, {"column_type": "int4"}, {"column_type": "text"}],
}


@dataclass(frozen=True)
class Candidate:
    router: str
    params: tuple[tuple[str, Any], ...]
    shards: int
    key_type: str
    agreeing: int
    pairs: int

    @property
    def agreement(self) -> float:
        return self.agreeing / self.pairs if self.pairs else 0.0

    def describe(self) -> str:
        return (f"{label(self.router, self.params)} over {self.shards} shards, {self.key_type} "
                f"keys: {self.agreement:.1%} of {self.pairs:,} pairs")

    def to_json(self) -> dict[str, Any]:
        return {"router": self.router, "params": dict(self.params), "shards": self.shards,
                "key_type": self.key_type, "agreeing": self.agreeing, "pairs": self.pairs,
                "agreement": round(self.agreement, 6)}


@dataclass(frozen=True)
class Inference:
    pairs: int
    ranked: tuple[Candidate, ...]
    min_agreement: float

    @property
    def match(self) -> Candidate | None:
        best = self.ranked[0] if self.ranked else None
        return best if best is not None and best.agreement >= self.min_agreement else None

    @property
    def runner_up(self) -> Candidate | None:
        """The best candidate with another definition (router or parameters): the same router
        over a multiple of the shards, or over int keys' decimal text, tells nothing new."""
        if not self.ranked:
            return None
        best = self.ranked[0]
        other = (c for c in self.ranked[1:] if (c.router, c.params) != (best.router, best.params))
        return next(other, None)

    def message(self) -> str:
        """What the command prints: the match and the runner-up, or that no router fits."""
        if not self.ranked:
            return "no router fits: no candidate could route these keys"
        best = self.ranked[0]
        runner = self.runner_up
        if self.match is None:
            chance = 1 / max(best.shards, 1)
            return (f"no router fits: the best candidate, {best.describe()}, is below "
                    f"{self.min_agreement:.0%} (chance alone gives about {chance:.1%})")
        lines = [best.describe()]
        if runner is not None:
            tied = runner.agreeing == best.agreeing
            tie = " (tied: the two route these keys alike)" if tied else ""
            lines.append(f"runner-up: {runner.describe()}{tie}")
        return "\n".join(lines)

    def to_json(self, top: int = 10) -> dict[str, Any]:
        return {"pairs": self.pairs, "min_agreement": self.min_agreement,
                "match": None if self.match is None else self.match.to_json(),
                "ranked": [c.to_json() for c in self.ranked[:top]]}


def sample_pairs(pairs: Iterable[tuple[str, int]], limit: int = MAX_PAIRS,
                 seed: int = 0) -> tuple[list[tuple[str, int]], int]:
    """A uniform sample (reservoir) of at most `limit` pairs, and how many there were."""
    rng = random.Random(seed)
    kept: list[tuple[str, int]] = []
    seen = 0
    for pair in pairs:
        seen += 1
        if len(kept) < limit:
            kept.append(pair)
        else:
            j = rng.randrange(seen)
            if j < limit:
                kept[j] = pair
    return kept, seen


def shard_counts(observed_max: int, extra: Sequence[int] = ()) -> list[int]:
    """The observed max + 1 (and the next two), the next power of two and common counts above it."""
    low = observed_max + 1
    counts = {low, low + 1, low + 2, 1 << (low - 1).bit_length(), *extra}
    counts.update(c for c in COMMON_SHARD_COUNTS if c >= low)
    return sorted(c for c in counts if low <= c <= MAX_SHARDS)


def candidate_routers(key_type: str, params: RoutingParams | None,
                      only: Sequence[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name in only or ROUTER_NAMES:
        given = params.of(name) if params is not None else None
        if given is not None:
            out.append((name, given.model_dump(exclude_none=True)))
        elif name in _NEEDS_PARAMS:
            continue
        elif name in ("mod", "vitess-hash") and key_type != "int":
            continue
        else:
            variants = _VARIANTS.get(name, [{}])
            if key_type == "str" and name in _VARIANTS:
                variants = [{"column_type": "text"}] if name != "hash-mod" else [{}]
            out.extend((name, v) for v in variants)
    return out


def _key_batch(keys: list[str], key_type: str) -> KeyBatch | None:
    if key_type == "str":
        return KeyBatch.of(keys, "str")
    try:
        return KeyBatch.of(np.array([parse_key(k, "int") for k in keys], dtype=np.int64), "int")
    except UsageError:
        return None  # not every key is an integer: int routers are no candidates


def infer(pairs: Sequence[tuple[str, int]], *, params: RoutingParams | None = None,
          shards: Sequence[int] = (), key_types: Sequence[str] = ("int", "str"),
          routers: Sequence[str] | None = None,
          min_agreement: float = DEFAULT_MIN_AGREEMENT) -> Inference:
    """Rank the candidates on these pairs; InconclusiveError when the pairs cannot tell them apart
    (too few, or all on one shard)."""
    if len(pairs) < MIN_PAIRS:
        raise InconclusiveError(f"{len(pairs)} (key, shard) pairs are too few to tell routers "
                                f"apart; need at least {MIN_PAIRS}")
    observed = np.array([s for _, s in pairs], dtype=np.int64)
    if np.unique(observed).size < 2:
        raise InconclusiveError(f"every pair is on shard {int(observed[0])}: any router over one "
                                "shard fits; give pairs from more than one shard")
    keys = [k for k, _ in pairs]
    counts = shard_counts(int(observed.max()), shards)
    ranked: list[Candidate] = []
    order = {name: i for i, name in enumerate(ROUTER_NAMES)}
    for key_type in key_types:
        batch = _key_batch(keys, key_type)
        if batch is None:
            continue
        for name, options in candidate_routers(key_type, params, routers):
            for n in counts:
                try:
                    router = make_router(name, n, key_type, options)
                    routed = router.shard_many(batch)
                except UsageError:
                    continue  # e.g. a ring of another size, int4 keys out of range
                agreeing = int(np.count_nonzero(routed == observed))
                ranked.append(Candidate(name, router.params, n, key_type, agreeing, len(pairs)))
    # ties go to the routers the scenario configured, then to the simpler definition
    configured = {name for name in ROUTER_NAMES if params is not None and params.of(name)}
    ranked.sort(key=lambda c: (-c.agreeing, c.router not in configured, order.get(c.router, 99),
                               c.shards, c.key_type != "int"))
    return Inference(len(pairs), tuple(ranked), min_agreement)
