"""Prometheus series and scrape cost at large shard counts, with and without the per-router cap.

    .venv/bin/python bench/bench_metrics_cardinality.py [--shards 10000] [--routers 3]

Prints series per scrape, exposition size, time to build one scrape, and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from skewcheck.gate import judge
from skewcheck.metrics import Snapshot, exposition
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import Tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shards", type=int, default=10_000)
    ap.add_argument("--routers", type=int, default=3)
    ap.add_argument("--requests", type=int, default=1_000_000)
    args = ap.parse_args()
    names = ["mod", "murmur3", "jump", "kafka"][: args.routers]
    tally = Tally([make_router(n, args.shards, "int") for n in names])
    keys = np.random.default_rng(1).integers(1, 10**12, args.requests)
    tally.add_many(keys, ts=time.time())

    def snap() -> Snapshot:
        summary = summarize(tally)
        return Snapshot(summary, judge(summary).verdict)

    print(f"{args.shards} shards x {len(names)} routers, {args.requests:,} requests")
    print(f"{'cap per router':>15} {'series':>8} {'bytes':>11} {'scrape ms':>10}")
    for limit in (args.shards, 1024, 100):
        t0 = time.perf_counter()
        text = exposition(snap, shard_series_limit=limit)
        ms = (time.perf_counter() - t0) * 1000
        series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        print(f"{limit:>15} {series:>8} {len(text):>11,} {ms:>10.0f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
