"""Routing throughput: vectorised shard_many against the per-key loop, for every router.

    .venv/bin/python bench/bench_routing.py            # 10**7 int keys and 10**7 str keys
    .venv/bin/python bench/bench_routing.py --n 1000000

Keys: a seeded permutation of 0..n-1, as int keys and as "user-<n>" str keys. The per-key loop
(mmh3 called per key for murmur3, Router.shard for the others) runs in the same process on the
first --sample keys; its results must equal the vectorised ones bit for bit. Rates are keys per
second of this process's CPU time (--clock wall for elapsed time), so other load on a shared
machine does not skew them. Peak RSS is the process's high-water mark (resource.getrusage).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any, Callable

import mmh3
import numpy as np

from skewcheck.routing import KEY_TYPES, ROUTER_NAMES, Router, make_router

GOAL_RATIO = 5.0  # vectorised murmur3 must beat the mmh3-per-key loop by this much
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10**7, help="keys per key type (default 10**7)")
    parser.add_argument("--sample", type=int, default=200_000,
                        help="keys timed in the per-key loop")
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each form; the best counts")
    parser.add_argument("--routers", default=",".join(ROUTER_NAMES))
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args(argv)

    ids = np.random.default_rng(2020).permutation(args.n).astype(np.int64)
    batches: dict[str, Any] = {"int": ids, "str": [f"user-{i}" for i in ids.tolist()]}
    rss_keys = peak_rss_mib()
    print(f"{args.n:,} keys per type, {args.shards} shards, "
          f"per-key loop on {min(args.sample, args.n):,} keys, {args.clock} clock; "
          f"RSS after making keys: {rss_keys:.0f} MiB")
    print(f"{'router':<9} {'keys':<4} {'vectorised':>12} {'per-key loop':>13} {'ratio':>7} "
          f"{'exact':>6} {'peak RSS':>9}")
    murmur3_ratios = {}
    exact_all = True
    for name in args.routers.split(","):
        for key_type in KEY_TYPES:
            if (name, key_type) == ("mod", "str"):
                continue
            row = measure(make_router(name, args.shards, key_type), batches[key_type], args)
            exact_all &= row["exact"]
            if name == "murmur3":
                murmur3_ratios[key_type] = row["ratio"]
            exact = "yes" if row["exact"] else "NO"
            print(f"{name:<9} {key_type:<4} {row['vec']:>8.2f} M/s {row['loop']:>9.2f} M/s "
                  f"{row['ratio']:>6.1f}x {exact:>6} {peak_rss_mib():>5.0f} MiB", flush=True)
    print(f"routing raised the peak RSS by {peak_rss_mib() - rss_keys:.0f} MiB")
    for key_type, ratio in murmur3_ratios.items():
        verdict = "meets" if ratio >= GOAL_RATIO else "misses"
        print(f"murmur3 {key_type} keys: vectorised is {ratio:.1f}x the mmh3 per-key loop "
              f"({verdict} the {GOAL_RATIO:.0f}x goal)")
    return 0 if exact_all else 1


def measure(router: Router, keys: Any, args: argparse.Namespace) -> dict[str, Any]:
    sample = keys[:args.sample]
    sample_keys = sample.tolist() if router.key_type == "int" else sample
    loop = per_key_loop(router)
    vec_s = loop_s = float("inf")
    for _ in range(max(args.repeat, 1)):  # alternate the two, so a busy machine slows both alike
        shards, seconds = timed(lambda: router.shard_many(keys), args.clock)
        vec_s = min(vec_s, seconds)
        loop_result, seconds = timed(lambda: loop(sample_keys), args.clock)
        loop_s = min(loop_s, seconds)
    vec_rate = len(keys) / vec_s / 1e6
    loop_rate = len(sample_keys) / loop_s / 1e6
    return {"vec": vec_rate, "loop": loop_rate, "ratio": vec_rate / loop_rate,
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
