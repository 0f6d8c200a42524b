"""Sidecar throughput on both Kafka clients, against bare consumers of each, side by side.

    .venv/bin/python bench/bench_sidecar.py                  # 3·10⁵ design events, int keys, 3 rounds
    .venv/bin/python bench/bench_sidecar.py --n 1000000 --key-type str --rounds 5

Starts its own single-node broker (tests/kafka_broker.KafkaBroker → scripts/kafka-broker), fills
a 4-partition topic with request events (the design's JSON, keys as decimal text), then reads the
whole topic in a fresh process per reader and round, each in a new consumer group, every reader
once per round (in an order that rotates from round to round):
- bare kafka-python: a KafkaConsumer with the sidecar's settings that polls and discards;
- bare confluent: a confluent_kafka.Consumer with the sidecar's librdkafka settings (fetch
  backoff, queue size) that consumes and takes each value;
- confluent + json.loads: the same, decoding every value with json.loads;
- sidecar kafka-python / sidecar confluent: the sidecar's own loop (EventConsumer) on each
  client — decode and validate every message, route each poll batch under the primary router
  and one compare router (vectorised), tally per router × shard × window, commit offsets.
Each reader times itself from its first record to its last: events per wall-clock second, and
events per CPU-second of its process (all its threads: librdkafka fetches on its own). The
broker shares the machine, so the median of the rounds counts. Peak RSS is each reading
process's high-water mark. It also times the decode step alone (the pydantic reference model
per message against the fast batch decoder) on the same events.

Goals: sidecar on kafka-python ≥ 0.8 × bare kafka-python per CPU-second; sidecar on confluent
≥ 400k events/s and ≥ 0.6 × confluent + json.loads.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
READERS = ("bare-kafka-python", "bare-confluent", "confluent+json", "sidecar-kafka-python", "sidecar-confluent")
GOAL_KP_CPU_RATIO = 0.8  # sidecar on kafka-python / bare kafka-python, per CPU-second
GOAL_CF_RATE = 400_000  # sidecar on confluent, events/s of one instance
GOAL_CF_JSON_RATIO = 0.6  # sidecar on confluent / confluent + json.loads, events/s
JOIN_STALL_S = 30.0  # no record this long after start: the group join stalled
STALLED = 4  # a reader's exit code for that
READER_TIMEOUT_S = 300.0


def peak_rss_mib() -> float:
    """This process's high-water RSS since exec (ru_maxrss would carry over the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario_and_kafka(bootstrap: str, topic: str, key_type: str, client: str) -> tuple[Any, Any]:
    from skewcheck.config import KafkaConfig, parse_scenario

    routing = "{primary: mod, compare: [murmur3]}" if key_type == "int" else \
        "{primary: hash-mod, compare: [murmur3], key_type: str}"
    scenario = parse_scenario(f"shards: 100\nrouting: {routing}\n")
    kafka = KafkaConfig(bootstrap_servers=bootstrap, topic=topic, group_id=f"bench-{uuid.uuid4().hex}",
                        client=client)
    return scenario, kafka


class Stopwatch:
    """Wall and CPU time from the first record to the last."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.cpu0 = self.thread0 = 0.0
        self.opened = time.monotonic()

    def check_joined(self) -> None:
        """A bare kafka-python consumer whose group join stalled (as kafka-python 3.0's sometimes
        does) gets no record ever: give up, and the run starts this reader again."""
        if self.first is None and time.monotonic() - self.opened > JOIN_STALL_S:
            raise SystemExit(STALLED)

    def started(self) -> None:
        if self.first is None:
            self.first, self.cpu0 = time.perf_counter(), time.process_time()
            self.thread0 = time.thread_time()

    def result(self, events: int) -> dict:
        assert self.first is not None, "no record arrived"
        return {"events": events, "elapsed_s": time.perf_counter() - self.first,
                "cpu_s": time.process_time() - self.cpu0, "thread_cpu_s": time.thread_time() - self.thread0,
                "peak_rss_mib": peak_rss_mib()}


# --- the readers (each runs in its own process) ----------------------------------------------------


def bare_kafka_python(bootstrap: str, topic: str, n: int, key_type: str) -> dict:
    from kafka import KafkaConsumer

    from skewcheck.kafka.kafka_python import consumer_settings
    from skewcheck.kafka.security import client_settings

    _, kafka = scenario_and_kafka(bootstrap, topic, key_type, "kafka-python")
    consumer = KafkaConsumer(**consumer_settings(kafka, client_settings(kafka), client_id="bench-bare",
                                                 from_beginning=True))
    consumer.subscribe([topic])
    watch, seen = Stopwatch(), 0
    while seen < n:
        records = consumer.poll(timeout_ms=200)
        watch.check_joined()
        if records:
            watch.started()
        for batch in records.values():
            seen += len(batch)
    result = watch.result(seen)
    consumer.close(autocommit=False)
    return result


def bare_confluent(bootstrap: str, topic: str, n: int, key_type: str, decode: bool = False) -> dict:
    from confluent_kafka import Consumer, Message

    from skewcheck.kafka.client import MAX_POLL_RECORDS
    from skewcheck.kafka.confluent import consumer_config
    from skewcheck.kafka.security import client_settings

    _, kafka = scenario_and_kafka(bootstrap, topic, key_type, "confluent")
    consumer = Consumer(consumer_config(kafka, client_settings(kafka), client_id="bench-bare", from_beginning=True))
    consumer.subscribe([topic])
    watch, seen = Stopwatch(), 0
    loads = json.loads
    while seen < n:
        messages = consumer.consume(MAX_POLL_RECORDS, 0.2)
        watch.check_joined()
        if not messages:
            continue
        watch.started()
        values = list(map(Message.value, messages))
        if decode:
            docs = [loads(v) for v in values]
            assert len(docs) == len(values)
        seen += len(values)
    result = watch.result(seen)
    consumer.close()
    return result


def sidecar(bootstrap: str, topic: str, n: int, key_type: str, client: str) -> dict:
    from skewcheck.kafka.consumer import EventConsumer, KafkaErrorLog, open_consumer
    from skewcheck.kafka.security import client_settings
    from skewcheck.sidecar.state import SidecarState

    scenario, kafka = scenario_and_kafka(bootstrap, topic, key_type, client)
    watch = Stopwatch()
    done = threading.Event()
    marks: dict[str, dict] = {}

    class TimedState(SidecarState):
        def apply(self, batch, offsets, now):  # type: ignore[override]
            super().apply(batch, offsets, now)
            if self.consumed >= n and not done.is_set():
                marks["result"] = watch.result(self.consumed)
                done.set()

    state = TimedState(scenario, kafka)
    assert len(state.tally.router_names) == 2
    errors = KafkaErrorLog().install()
    consumer = open_consumer(kafka, client_settings(kafka), client_id="bench-sidecar", connect_timeout_s=30,
                             from_beginning=True, errors=errors)
    poll = consumer.poll

    def timed_poll(timeout_s: float):  # the clock starts when the first records arrive, before decoding
        batches = poll(timeout_s)
        if batches:
            watch.started()
        return batches

    consumer.poll = timed_poll  # type: ignore[method-assign]
    loop = EventConsumer(consumer, state, errors=errors)
    gc.freeze()  # as `skewcheck sidecar` does before its loop
    loop.run(done)
    loop.close()
    assert state.tally.requests == n and not any(state.malformed.values()), state.malformed
    return marks["result"]


def measure(reader: str, bootstrap: str, topic: str, n: int, key_type: str) -> dict:
    if reader == "bare-kafka-python":
        return bare_kafka_python(bootstrap, topic, n, key_type)
    if reader == "bare-confluent":
        return bare_confluent(bootstrap, topic, n, key_type)
    if reader == "confluent+json":
        return bare_confluent(bootstrap, topic, n, key_type, decode=True)
    return sidecar(bootstrap, topic, n, key_type, reader.removeprefix("sidecar-"))


# --- the run ----------------------------------------------------------------------------------------


def event(rng: random.Random, key_type: str) -> bytes:
    key = str(rng.randrange(1, 10**9)) if key_type == "int" else f"user-{rng.randrange(10**7)}"
    return json.dumps({"v": 1, "ts": time.time(), "key": key, "name": "/orders", "ok": True,
                       "latency_ms": round(rng.uniform(1, 50), 1)}).encode()


def fill(bootstrap: str, topic: str, n: int, key_type: str) -> float:
    from confluent_kafka import Producer

    rng = random.Random(2020)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                         "acks": 1, "enable.idempotence": False})
    started = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, event(rng, key_type), partition=i % PARTITIONS)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
    assert producer.flush(60) == 0, "some events were not delivered"
    return n / (time.perf_counter() - started)


def decode_step(n: int, key_type: str) -> dict[str, float]:
    """µs per event of the decode step: the pydantic reference model against the fast decoder."""
    from skewcheck.config import KafkaConfig
    from skewcheck.sidecar.state import SidecarState

    scenario, _ = scenario_and_kafka("127.0.0.1:9092", "t", key_type, "kafka-python")
    decoder = SidecarState(scenario, KafkaConfig()).decoder
    rng = random.Random(7)
    values = [event(rng, key_type) for _ in range(min(n, 5000))]
    out = {}
    for name, decode in (("reference", decoder.decode_each), ("fast", decoder.decode)):
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            assert len(decode(values).keys) == len(values)
            best = min(best, time.process_time() - started)
        out[name] = best / len(values) * 1e6
    return out


def child(reader: str, bootstrap: str, topic: str, n: int, key_type: str, tries: int = 3) -> dict:
    for _ in range(tries):
        try:
            proc = subprocess.run([sys.executable, __file__, "--measure", reader, "--bootstrap", bootstrap,
                                   "--topic", topic, "--n", str(n), "--key-type", key_type],
                                  cwd=REPO, capture_output=True, text=True, timeout=READER_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            print(f"  ({reader} took over {READER_TIMEOUT_S:g} s; starting it again)", flush=True)
            continue
        if proc.returncode == STALLED:
            print(f"  ({reader}: no record {JOIN_STALL_S:g} s after joining; starting it again)", flush=True)
            continue
        if proc.returncode != 0:
            raise SystemExit(f"{reader} failed:\n{proc.stderr[-3000:]}")
        break
    else:
        raise SystemExit(f"{reader} did not finish in {tries} tries")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rate"] = result["events"] / result["elapsed_s"]
    result["cpu_rate"] = result["events"] / result["cpu_s"] if result["cpu_s"] else float("inf")
    result["thread_us"] = result["thread_cpu_s"] / result["events"] * 1e6  # the thread that polls
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300_000, help="events in the topic (default 300000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every reader; the median counts")
    parser.add_argument("--key-type", choices=("int", "str"), default="int")
    parser.add_argument("--measure", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    if args.measure:
        print(json.dumps(measure(args.measure, args.bootstrap, args.topic, args.n, args.key_type)))
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the median of fewer is no median)")

    from tests.kafka_broker import KafkaBroker

    step = decode_step(args.n, args.key_type)
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as workdir, KafkaBroker(Path(workdir)) as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        broker.create_topic(topic, partitions=PARTITIONS)
        produced = fill(broker.bootstrap, topic, args.n, args.key_type)
        print(f"{args.n:,} request events ({args.key_type} keys) in a {PARTITIONS}-partition topic on "
              f"{broker.bootstrap}, produced at {produced:,.0f}/s; {os.cpu_count()} CPUs; "
              f"median of {args.rounds} rounds")
        print(f"decode step alone: {step['reference']:.2f} µs/event with the pydantic reference model, "
              f"{step['fast']:.2f} µs/event with the fast batch decoder ({step['reference'] / step['fast']:.1f}×)")
        runs: dict[str, list[dict]] = {reader: [] for reader in READERS}
        for r in range(args.rounds):
            order = READERS[r % len(READERS):] + READERS[:r % len(READERS)]
            for reader in order:
                result = child(reader, broker.bootstrap, topic, args.n, args.key_type)
                runs[reader].append(result)
                print(f"  round {r + 1}  {reader:<21} {result['rate']:>11,.0f} events/s  "
                      f"{result['cpu_rate']:>11,.0f} /CPU-s  {result['thread_us']:.2f} µs/event in its "
                      f"Python thread  peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)

    med = {reader: {k: statistics.median(r[k] for r in rs) for k in ("rate", "cpu_rate", "thread_us",
                                                                     "peak_rss_mib")}
           for reader, rs in runs.items()}
    print(f"\n{'reader':<21} {'events/s':>11} {'per CPU-s':>11} {'µs/event':>9} {'peak RSS':>9}   "
          "(median; range over rounds; µs/event: CPU of the polling thread)")
    for reader in READERS:
        rates = [r["rate"] for r in runs[reader]]
        cpu = [r["cpu_rate"] for r in runs[reader]]
        print(f"{reader:<21} {med[reader]['rate']:>11,.0f} {med[reader]['cpu_rate']:>11,.0f} "
              f"{med[reader]['thread_us']:>9.2f} {med[reader]['peak_rss_mib']:>5.0f} MiB   "
              f"({min(rates):,.0f}–{max(rates):,.0f}; {min(cpu):,.0f}–{max(cpu):,.0f} /CPU-s)")

    kp_cpu = med["sidecar-kafka-python"]["cpu_rate"] / med["bare-kafka-python"]["cpu_rate"]
    kp_wall = med["sidecar-kafka-python"]["rate"] / med["bare-kafka-python"]["rate"]
    cf_rate = med["sidecar-confluent"]["rate"]
    cf_json = cf_rate / med["confluent+json"]["rate"]
    cf_json_cpu = med["sidecar-confluent"]["cpu_rate"] / med["confluent+json"]["cpu_rate"]
    cf_bare = cf_rate / med["bare-confluent"]["rate"]
    speedup = cf_rate / med["sidecar-kafka-python"]["rate"]
    goals = [
        (kp_cpu >= GOAL_KP_CPU_RATIO, f"sidecar kafka-python / bare kafka-python = {kp_cpu:.2f} per CPU-second "
                                      f"(goal ≥ {GOAL_KP_CPU_RATIO}); {kp_wall:.2f} wall"),
        (cf_rate >= GOAL_CF_RATE, f"sidecar confluent = {cf_rate:,.0f} events/s (goal ≥ {GOAL_CF_RATE:,}); "
                                  f"{speedup:.1f}× the sidecar on kafka-python"),
        (cf_json >= GOAL_CF_JSON_RATIO, f"sidecar confluent / confluent + json.loads = {cf_json:.2f} events/s "
                                        f"(goal ≥ {GOAL_CF_JSON_RATIO}); {cf_json_cpu:.2f} per CPU-second; "
                                        f"{cf_bare:.2f} of bare confluent"),
    ]
    print()
    for met, line in goals:
        print(f"{'meets ' if met else 'MISSES'}  {line}")
    return 0 if all(met for met, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
