"""Sidecar throughput: consume + decode + route (2 routers) + tally, against a bare consumer.

    .venv/bin/python bench/bench_sidecar.py                 # 300k design events, int keys
    .venv/bin/python bench/bench_sidecar.py --n 1000000 --key-type str --repeat 3

Starts its own single-node broker (tests/kafka_broker.KafkaBroker → scripts/kafka-broker),
fills a 4-partition topic with request events (the design's JSON), then reads the whole topic
in fresh processes, alternately:
- bare: a kafka-python KafkaConsumer in a new group that polls and discards;
- sidecar: the sidecar's own loop (skewcheck.kafka.consumer.EventConsumer) in a new group —
  decode and validate every message, route each poll batch under the primary router and one
  compare router (vectorised), tally per router × shard × window, commit offsets.
Both use the same consumer settings (max_poll_records, fetch sizes) and time from their first
record to their last. Rates are wall-clock events per second (the broker shares the machine:
CPU time of one process alone would flatter both); the best of --repeat runs counts. Peak RSS is
each reading process's high-water mark. The goal is sidecar ≥ 0.5 × bare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.5
PARTITIONS = 4


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the two readers (each runs in its own process) ----------------------------------------------


def measure_bare(bootstrap: str, topic: str, n: int) -> dict:
    from kafka import KafkaConsumer

    from skewcheck.kafka.consumer import MAX_POLL_RECORDS

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-bare-{uuid.uuid4().hex}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=MAX_POLL_RECORDS)
    seen, first, cpu0 = 0, None, None
    while seen < n:
        records = consumer.poll(timeout_ms=200)
        if records and first is None:
            first, cpu0 = time.perf_counter(), time.process_time()
        for batch in records.values():
            seen += len(batch)
    elapsed, cpu = time.perf_counter() - first, time.process_time() - cpu0
    consumer.close(autocommit=False)
    return {"events": seen, "elapsed_s": elapsed, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib()}


def measure_sidecar(bootstrap: str, topic: str, n: int, key_type: str) -> dict:
    from skewcheck.config import KafkaConfig, parse_scenario
    from skewcheck.kafka.consumer import EventConsumer, KafkaErrorLog, open_consumer
    from skewcheck.kafka.security import client_settings
    from skewcheck.sidecar.state import SidecarState

    routing = "{primary: mod, compare: [murmur3]}" if key_type == "int" else \
        "{primary: hash-mod, compare: [murmur3], key_type: str}"
    scenario = parse_scenario(f"shards: 100\nrouting: {routing}\n")
    kafka = KafkaConfig(bootstrap_servers=bootstrap, topic=topic, group_id=f"bench-sidecar-{uuid.uuid4().hex}")
    marks: dict[str, float] = {}
    done = threading.Event()

    class TimedState(SidecarState):
        def apply(self, batch, offsets, now):  # type: ignore[override]
            marks.setdefault("first", time.perf_counter())
            marks.setdefault("cpu0", time.process_time())
            super().apply(batch, offsets, now)
            if self.consumed >= n:
                marks["last"], marks["cpu1"] = time.perf_counter(), time.process_time()
                done.set()

    state = TimedState(scenario, kafka)
    assert len(state.tally.router_names) == 2
    errors = KafkaErrorLog().install()
    consumer = open_consumer(kafka, client_settings(kafka), client_id="bench-sidecar", connect_timeout_s=30,
                             from_beginning=True, errors=errors)
    loop = EventConsumer(consumer, state, errors=errors)
    loop.run(done)
    loop.close()
    assert state.tally.requests == n and not any(state.malformed.values()), state.malformed
    return {"events": state.consumed, "elapsed_s": marks["last"] - marks["first"],
            "cpu_s": marks["cpu1"] - marks["cpu0"], "peak_rss_mib": peak_rss_mib()}


# --- the run ----------------------------------------------------------------------------------------


def fill(bootstrap: str, topic: str, n: int, key_type: str) -> float:
    from kafka import KafkaProducer

    rng = random.Random(2020)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1,
                             enable_idempotence=False)
    started = time.perf_counter()
    for _ in range(n):
        key = str(rng.randrange(1, 10**9)) if key_type == "int" else f"user-{rng.randrange(10**7)}"
        producer.send(topic, json.dumps({"v": 1, "ts": time.time(), "key": key, "name": "/orders", "ok": True,
                                         "latency_ms": round(rng.uniform(1, 50), 1)}).encode())
    producer.flush()
    producer.close()
    return n / (time.perf_counter() - started)


def child(mode: str, bootstrap: str, topic: str, n: int, key_type: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--measure", mode, "--bootstrap", bootstrap,
                           "--topic", topic, "--n", str(n), "--key-type", key_type],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} reader failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300_000, help="events in the topic (default 300000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each reader; the best counts")
    parser.add_argument("--key-type", choices=("int", "str"), default="int")
    parser.add_argument("--measure", choices=("bare", "sidecar"), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    if args.measure == "bare":
        print(json.dumps(measure_bare(args.bootstrap, args.topic, args.n)))
        return 0
    if args.measure == "sidecar":
        print(json.dumps(measure_sidecar(args.bootstrap, args.topic, args.n, args.key_type)))
        return 0

    from tests.kafka_broker import KafkaBroker

    try:
        import crc32c  # noqa: F401
        crc = "crc32c (C)"
    except ImportError:
        crc = "pure-Python CRC32C (install kafka-python[crc32c])"
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as workdir, KafkaBroker(Path(workdir)) as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, partitions=PARTITIONS)
        produced = fill(broker.bootstrap, topic, args.n, args.key_type)
        print(f"{args.n:,} request events ({args.key_type} keys) in a {PARTITIONS}-partition topic on "
              f"{broker.bootstrap}, produced at {produced:,.0f}/s; {crc}; {os.cpu_count()} CPUs")
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for mode in ("bare", "sidecar"):
                result = child(mode, broker.bootstrap, topic, args.n, args.key_type)
                result["rate"] = result["events"] / result["elapsed_s"]
                result["cpu_rate"] = result["events"] / result["cpu_s"] if result["cpu_s"] else float("inf")
                print(f"  {mode:<8} {result['rate']:>10,.0f} events/s wall  {result['cpu_rate']:>10,.0f} /CPU-s  "
                      f"peak RSS {result['peak_rss_mib']:.0f} MiB")
                if mode not in best or result["rate"] > best[mode]["rate"]:
                    best[mode] = result
    ratio = best["sidecar"]["rate"] / best["bare"]["rate"]
    cpu_ratio = best["sidecar"]["cpu_rate"] / best["bare"]["cpu_rate"]
    print(f"\n{'reader':<8} {'events/s':>12} {'per CPU-s':>11} {'peak RSS':>10}")
    for mode in ("bare", "sidecar"):
        print(f"{mode:<8} {best[mode]['rate']:>12,.0f} {best[mode]['cpu_rate']:>11,.0f} "
              f"{best[mode]['peak_rss_mib']:>7.0f} MiB")
    verdict = "meets" if ratio >= GOAL_RATIO else "MISSES"
    print(f"sidecar / bare = {ratio:.2f} wall ({verdict} the goal of ≥ {GOAL_RATIO}); "
          f"{cpu_ratio:.2f} per CPU-second")
    return 0 if ratio >= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
