"""Routing throughput: vectorised shard_many against the per-key loop, for every router.

    .venv/bin/python bench/bench_routing.py            # 10**7 int keys and 10**7 str keys
    .venv/bin/python bench/bench_routing.py --n 1000000 --routers cassandra,ketama

Keys: a seeded permutation of 0..n-1, as int keys and as "user-<n>" str keys. The per-key loop
(mmh3 called per key for murmur3, Router.shard for the others) runs in the same process on the
first --sample keys; its results must equal the vectorised ones bit for bit. Rates are keys per
second of this process's CPU time (--clock wall for elapsed time), so other load on a shared
machine does not skew them. The two forms alternate --repeat times; each repeat gives one
side-by-side ratio, and the table shows the median rates and ratio with the ratios' range, so one
disturbed repeat cannot move the headline. Peak RSS is the process's high-water mark.

Routers that need parameters get ones sized to --shards: a Redis slot map split into equal
ranges, ranges over murmur3 split evenly, a seeded Cassandra ring, ketama servers shard0..N-1.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from typing import Any, Callable

import mmh3
import numpy as np

from skewcheck.keytext import KEY_TYPES
from skewcheck.routing import ROUTER_NAMES, Router, make_router

GOAL_RATIO = 5.0  # vectorised murmur3 must beat the mmh3-per-key loop by this much
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10**7, help="keys per key type (default 10**7)")
    parser.add_argument("--sample", type=int, default=100_000,
                        help="keys timed in the per-key loop")
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7,
                        help="alternating runs of each form; medians are shown")
    parser.add_argument("--routers", default=",".join(ROUTER_NAMES))
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args(argv)

    ids = np.random.default_rng(2020).permutation(args.n).astype(np.int64)
    batches: dict[str, Any] = {"int": ids, "str": [f"user-{i}" for i in ids.tolist()]}
    rss_keys = peak_rss_mib()
    print(f"{args.n:,} keys per type, {args.shards} shards, "
          f"per-key loop on {min(args.sample, args.n):,} keys, {args.clock} clock; "
          f"RSS after making keys: {rss_keys:.0f} MiB")
    print(f"{'router':<13} {'keys':<4} {'vectorised':>12} {'per-key loop':>13} {'ratio':>7} "
          f"{'range':>13} {'exact':>6} {'peak RSS':>9}")
    murmur3_ratios = {}
    exact_all = True
    for name in args.routers.split(","):
        for key_type in KEY_TYPES:
            if (name, key_type) in (("mod", "str"), ("vitess-hash", "str")):
                continue
            router = make_router(name, args.shards, key_type, bench_params(name, args.shards))
            row = measure(router, batches[key_type], args)
            exact_all &= row["exact"]
            if name == "murmur3":
                murmur3_ratios[key_type] = row
            exact = "yes" if row["exact"] else "NO"
            spread = f"{row['low']:.1f}-{row['high']:.1f}x"
            print(f"{name:<13} {key_type:<4} {row['vec']:>8.2f} M/s {row['loop']:>9.2f} M/s "
                  f"{row['ratio']:>6.1f}x {spread:>13} {exact:>6} {peak_rss_mib():>5.0f} MiB",
                  flush=True)
    print(f"routing raised the peak RSS by {peak_rss_mib() - rss_keys:.0f} MiB")
    for key_type, row in murmur3_ratios.items():
        verdict = "meets" if row["ratio"] >= GOAL_RATIO else "misses"
        print(f"murmur3 {key_type} keys: vectorised is {row['ratio']:.1f}x the mmh3 per-key loop "
              f"(median of {args.repeat}; {row['low']:.1f}-{row['high']:.1f}x) "
              f"({verdict} the {GOAL_RATIO:.0f}x goal)")
    return 0 if exact_all else 1


def bench_params(name: str, shards: int) -> dict[str, Any]:
    """Parameters for the routers that need some, sized to the shard count."""
    if name == "redis-cluster":
        bounds = [i * 16384 // shards for i in range(shards + 1)]
        return {"slots": [f"{lo}-{hi - 1}" for lo, hi in zip(bounds, bounds[1:])]}
    if name == "range":
        return {"over": "murmur3", "splits": [i * 2**32 // shards for i in range(1, shards)]}
    return {}


def measure(router: Router, keys: Any, args: argparse.Namespace) -> dict[str, Any]:
    sample = keys[:args.sample]
    sample_keys = sample.tolist() if router.key_type == "int" else sample
    loop = per_key_loop(router)
    vec_rates, loop_rates, ratios = [], [], []
    for _ in range(max(args.repeat, 1)):  # alternate the two, so a busy machine slows both alike
        shards, seconds = timed(lambda: router.shard_many(keys), args.clock)
        vec_rates.append(len(keys) / max(seconds, 1e-9) / 1e6)
        loop_result, seconds = timed(lambda: loop(sample_keys), args.clock)
        loop_rates.append(len(sample_keys) / max(seconds, 1e-9) / 1e6)
        ratios.append(vec_rates[-1] / loop_rates[-1])
    return {"vec": statistics.median(vec_rates), "loop": statistics.median(loop_rates),
            "ratio": statistics.median(ratios), "low": min(ratios), "high": max(ratios),
            "exact": shards[:len(sample_keys)].tolist() == loop_result}


def per_key_loop(router: Router) -> Callable[[list], list[int]]:
    """The per-key baseline: mmh3 itself for murmur3, Router.shard for every other router."""
    n = router.shards
    if router.name == "murmur3" and router.key_type == "str":
        return lambda keys: [mmh3.hash(k, signed=False) % n for k in keys]
    if router.name == "murmur3":
        return lambda keys: [mmh3.hash(str(k), signed=False) % n for k in keys]
    shard = router.shard
    return lambda keys: [shard(k) for k in keys]


def timed(fn: Callable[[], Any], clock: str) -> tuple[Any, float]:
    now = CLOCKS[clock]
    start = now()
    result = fn()
    return result, now() - start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


if __name__ == "__main__":
    sys.exit(main())
