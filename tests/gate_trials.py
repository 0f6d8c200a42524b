"""Seeded trials of the gate's error rates: what tests/test_gate_statistics.py asserts and the
README quotes. `.venv/bin/python tests/gate_trials.py` prints the table.

Each trial routes keys with a real router (new random key IDs every trial, so the router acts as
one random hash of the trial's key weights) and judges the counts exactly as a run would: from the
per-shard counts, the heavy-hitter counts and Σ c_j².
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skewcheck.gate import DEFAULT_MIN_REQUESTS, GateConfig, decision, judge  # noqa: E402
from skewcheck.routing import make_router  # noqa: E402
from skewcheck.sketch import DEFAULT_TOP_CAPACITY  # noqa: E402
from skewcheck.summary import Summary, from_counts  # noqa: E402

TRIALS = 500
HEALTHY_HASHES = ("murmur3", "kafka", "jump")
LIMIT = GateConfig().max_shard_share


@dataclass
class Rate:
    """How many of `trials` judged runs got `hits` (blocks, or the expected diagnosis)."""

    hits: int
    trials: int
    skipped: int = 0  # trials outside the case (a hottest shard truly above the limit)

    @property
    def rate(self) -> float:
        return self.hits / self.trials if self.trials else 0.0


def _summary(router: str, shards: int, ids: np.ndarray, weights: np.ndarray) -> Summary:
    """The summary a run would have: `weights[i]` requests for key `ids[i]` under `router`."""
    shard = make_router(router, shards, "int").shard_many(ids)
    counts = np.bincount(shard, weights=weights, minlength=shards).astype(np.int64)
    order = np.argsort(-weights, kind="stable")[:DEFAULT_TOP_CAPACITY]
    top = [(int(ids[i]), int(weights[i])) for i in order]
    exact = len(ids) <= DEFAULT_TOP_CAPACITY
    error = 0 if exact else int(weights[order[-1]])
    return from_counts(router, {router: counts}, key_f2=float((weights.astype(float) ** 2).sum()),
                       requests=int(weights.sum()), top_keys=top, top_keys_error=error,
                       distinct_keys=float(len(ids)),
                       router_of=lambda name, k: make_router(name, k, "int"))


def _random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(10**12, n, replace=False).astype(np.int64) + 10**9


def healthy_blocks(weights: np.ndarray, router: str, shards: int, seed: int, trials: int = TRIALS) -> Rate:
    """Blocks of a healthy hash over these key weights, among key sets whose hottest shard is
    within the limit (the others are right to block)."""
    rng = np.random.default_rng(seed)
    blocked = within = 0
    for _ in range(trials):
        summary = _summary(router, shards, _random_ids(rng, weights.size), weights)
        if summary.primary_summary.max_share > LIMIT:
            continue
        within += 1
        blocked += judge(summary).verdict.status == "block"
    return Rate(blocked, within, trials - within)


def equal_accounts(accounts: int, requests: int = DEFAULT_MIN_REQUESTS) -> np.ndarray:
    per = -(-requests // accounts)  # every account used equally, at least `requests` in all
    return np.full(accounts, per, dtype=np.int64)


def zipf_weights(exponent: float, seed: int, n: int = 10_000, requests: int = 20_000) -> np.ndarray:
    p = np.arange(1, n + 1, dtype=float) ** -exponent
    counts = np.random.default_rng(seed).multinomial(requests, p / p.sum())
    return counts[counts > 0]


def one_hot_key(share: float, requests: int) -> np.ndarray:
    hot = round(share * requests)
    return np.concatenate([[hot], np.ones(requests - hot, dtype=np.int64)])


def distinct_uniform_blocks(shards: int, requests: int, seed: int, trials: int = TRIALS) -> Rate:
    rng = np.random.default_rng(seed)
    blocked = 0
    for counts in rng.multinomial(requests, np.full(shards, 1 / shards), size=trials):
        summary = from_counts("murmur3", {"murmur3": counts}, key_f2=float(requests))
        blocked += judge(summary).verdict.status == "block"
    return Rate(blocked, trials)


def hot_shard_detection(shards: int, share: float, seed: int, trials: int = TRIALS) -> Rate:
    rng = np.random.default_rng(seed)
    p = np.full(shards, (1 - share) / (shards - 1))
    p[shards // 3] = share
    blocked = 0
    for counts in rng.multinomial(DEFAULT_MIN_REQUESTS, p, size=trials):
        summary = from_counts("murmur3", {"murmur3": counts}, key_f2=float(DEFAULT_MIN_REQUESTS))
        blocked += judge(summary).verdict.status == "block"
    return Rate(blocked, trials)


def strided_mod_detection(step: int, seed: int, shards: int = 100, trials: int = TRIALS) -> Rate:
    """IDs that all share a factor with the shard count, under `mod`: half the shards empty
    (step 2) or ten shards at 10% (step 10)."""
    rng = np.random.default_rng(seed)
    blocked = 0
    router = make_router("mod", shards, "int")
    for _ in range(trials):
        ids = rng.integers(1, 10**9, DEFAULT_MIN_REQUESTS) * step
        counts = np.bincount(router.shard_many(ids), minlength=shards)
        blocked += judge(from_counts("mod", {"mod": counts}, key_f2=float(DEFAULT_MIN_REQUESTS))).verdict.status == "block"
    return Rate(blocked, trials)


def peeking_blocks(shards: int, seed: int, runs: int = TRIALS, every: int = 2_000, until: int = 40_000) -> Rate:
    """Uniform runs watched every `every` requests (the live verdict, `gate.stop_on`): runs that
    were ever stopped as a block."""
    rng = np.random.default_rng(seed)
    cfg = GateConfig()
    router = make_router("murmur3", shards, "int")
    stopped = 0
    for _ in range(runs):
        shard = router.shard_many(rng.integers(0, 10**12, until))
        for n in range(every, until + 1, every):
            summary = from_counts("murmur3", {"murmur3": np.bincount(shard[:n], minlength=shards)},
                                  key_f2=float(n))
            if decision(summary, judge(summary, cfg), cfg) == "block":
                stopped += 1
                break
    return Rate(stopped, runs)


def table() -> list[tuple[str, Rate]]:
    rows: list[tuple[str, Rate]] = []
    for accounts in (20, 30, 50, 127):
        for router in HEALTHY_HASHES:
            rows.append((f"false blocks: {accounts} equal accounts, {router}, 100 shards",
                         healthy_blocks(equal_accounts(accounts), router, 100, seed=accounts)))
    for exponent in (0.8, 1.0, 1.1):
        for router in HEALTHY_HASHES:
            rows.append((f"false blocks: Zipf(10^4, {exponent}) keys, {router}, 100 shards",
                         healthy_blocks(zipf_weights(exponent, seed=7), router, 100, seed=int(exponent * 10))))
    for shards in (1024, 4096, 16384):
        for requests in (DEFAULT_MIN_REQUESTS, 10_000):
            rows.append((f"false blocks: one key at 12%, murmur3, {shards} shards, N={requests}",
                         healthy_blocks(one_hot_key(0.12, requests), "murmur3", shards, seed=shards + requests)))
    for shards in (7, 8, 100, 1024, 16384):
        for requests in (DEFAULT_MIN_REQUESTS, 20_000, 200_000, 1_000_000):
            rows.append((f"false blocks: distinct uniform keys, {shards} shards, N={requests}",
                         distinct_uniform_blocks(shards, requests, seed=shards * 7 + requests)))
    for shards in (8, 100, 1024):
        rows.append((f"detection: a 20% shard of {shards}, N={DEFAULT_MIN_REQUESTS}",
                     hot_shard_detection(shards, 0.2, seed=shards)))
    rows.append(("detection: mod, IDs step 2 (half the shards empty), N=2000", strided_mod_detection(2, seed=2)))
    rows.append(("detection: mod, IDs step 10 (10 shards at 10%), N=2000", strided_mod_detection(10, seed=10)))
    rows.append(("false stops: uniform run peeked every 2,000 requests to 40,000, 100 shards",
                 peeking_blocks(100, seed=100)))
    return rows


def main() -> None:
    start = time.monotonic()
    for name, rate in table():
        skipped = f" ({rate.skipped} sets above the limit left out)" if rate.skipped else ""
        print(f"{name}: {rate.hits} of {rate.trials} ({rate.rate:.1%}){skipped}", flush=True)
    print(f"({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
