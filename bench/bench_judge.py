"""Time to summarise and judge a tally with the null model, side by side with the same summary
without it (the counts alone), at 100 and 10^4 shards.

    .venv/bin/python bench/bench_judge.py [--requests N] [--repeat R]

The null model (2,000 random hashes of the observed key weights) is the gate's costliest step;
a live view asks for it every second, so it must stay well under the 200 ms a scrape may take.
"Cold" draws the null model afresh; "warm" finds it in the cache (a live run whose key weights
have settled).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skewcheck import summary as summary_module  # noqa: E402
from skewcheck.gate import judge  # noqa: E402
from skewcheck.keys import build_distribution, parse_keys  # noqa: E402
from skewcheck.routing import make_router  # noqa: E402
from skewcheck.summary import summarize  # noqa: E402
from skewcheck.tally import Tally  # noqa: E402


def _tally(shards: int, requests: int) -> Tally:
    routers = [make_router(name, shards, "int") for name in ("mod", "murmur3", "jump")]
    tally = Tally(routers, clock=lambda: 0.0)
    keys = build_distribution(parse_keys({"kind": "zipf", "n": 1_000_000, "exponent": 0.9}), 7, "int")
    done = 0
    while done < requests:
        n = min(1 << 18, requests - done)
        tally.add_many(keys.sample(n), ts=0.0)
        done += n
    return tally


def _time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for shards in (100, 10_000):
        tally = _tally(shards, args.requests)

        def cold() -> None:
            summary_module._NULLS.clear()
            judge(summarize(tally))

        def warm() -> None:
            judge(summarize(tally))

        def counts_only() -> None:  # the same summary with unknown key weights: no null model
            saved = tally.bucketed_requests
            tally.bucketed_requests = 0
            try:
                judge(summarize(tally))
            finally:
                tally.bucketed_requests = saved

        base = _time(counts_only, args.repeat)
        with_cold = _time(cold, args.repeat)
        with_warm = _time(warm, args.repeat)
        print(f"{shards:>6} shards × 3 routers, {args.requests:,} Zipf requests: summary + judge "
              f"{base * 1e3:6.1f} ms without the null model; with it {with_cold * 1e3:6.1f} ms cold "
              f"({with_cold / base:.1f}×), {with_warm * 1e3:6.1f} ms warm ({with_warm / base:.1f}×)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
