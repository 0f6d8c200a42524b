"""Does a Prometheus scrape of a 10^4-shard sidecar delay consumption?

    .venv/bin/python bench/bench_scrape.py [--shards 10000] [--seconds 10]

One thread applies decoded poll batches to a SidecarState as the consumer loop does (no broker:
the lock is the point); another scrapes /metrics every 0.5 s. Side by side in one run: no
scrapes, scrapes as the sidecar does them (the counts copied under the lock, summarised outside
it), and scrapes that hold the lock while they summarise (how it was). Printed: batches applied
per second and the longest any one batch waited for the lock.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skewcheck.config import KafkaConfig, parse_scenario  # noqa: E402
from skewcheck.metrics import exposition  # noqa: E402
from skewcheck.sidecar.state import SidecarState  # noqa: E402

BATCH = 5000  # MAX_POLL_RECORDS
SCRAPE_EVERY_S = 0.5


def _state(shards: int) -> tuple[SidecarState, list]:
    scenario = parse_scenario(f"shards: {shards}\nrouting: {{primary: mod, compare: [murmur3, jump]}}\n")
    state = SidecarState(scenario, KafkaConfig(topic="t"), instance="bench")
    rng = np.random.default_rng(1)
    values = [json.dumps({"key": int(k)}).encode() for k in rng.integers(0, 10**9, BATCH)]
    batch = state.decoder.decode(values)
    state.apply(batch, {0: BATCH}, time.time())  # every shard has counts to summarise
    for _ in range(20):
        state.apply(state.decoder.decode([json.dumps({"key": int(k)}).encode()
                                          for k in rng.integers(0, 10**9, BATCH)]), {0: BATCH}, time.time())
    return state, values


def _run(state: SidecarState, values: list, seconds: float, mode: str) -> tuple[float, float]:
    stop = threading.Event()
    applied = [0]
    worst_wait = [0.0]

    def consume() -> None:
        offset = 10**6
        while not stop.is_set():
            batch = state.decoder.decode(values)
            asked = time.perf_counter()
            with state.lock:
                worst_wait[0] = max(worst_wait[0], time.perf_counter() - asked)
            state.apply(batch, {0: offset}, time.time())
            offset += BATCH
            applied[0] += 1

    def scrape() -> None:
        limit = state.scenario.metrics.shard_series_limit
        while not stop.wait(SCRAPE_EVERY_S):
            if mode == "outside":
                exposition(state.metrics_snapshot, limit)
            else:  # the whole scrape under the consumer's lock
                with state.lock:
                    view_tally = state.tally
                    from skewcheck.gate import judge
                    from skewcheck.metrics import Snapshot
                    from skewcheck.summary import summarize

                    summary = summarize(view_tally, now=time.time())
                    verdict = judge(summary, state.scenario.gate).verdict
                    exposition(lambda: Snapshot(summary, verdict), limit)

    threads = [threading.Thread(target=consume)]
    if mode != "none":
        threads.append(threading.Thread(target=scrape))
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return applied[0] / (time.perf_counter() - start), worst_wait[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    state, values = _state(args.shards)
    results = {mode: _run(state, values, args.seconds, mode) for mode in ("none", "outside", "under")}
    base = results["none"][0]
    for mode, label in (("none", "no scrapes"), ("outside", "scrapes summarising outside the lock"),
                        ("under", "scrapes summarising under the lock")):
        rate, wait = results[mode]
        print(f"{label:<40} {rate * BATCH:>10,.0f} events/s ({rate / base:.2f}× of no scrapes); "
              f"longest wait for the lock {wait * 1e3:7.1f} ms")
    print(f"{args.shards:,} shards × 3 routers; a scrape every {SCRAPE_EVERY_S:g} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
