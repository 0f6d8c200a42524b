"""The real Kafka broker the sidecar's tests run against.

scripts/kafka-broker runs it; tests/kafka_broker.py wraps it for pytest.

These tests check the harness itself, with kafka-python as the client:
- keyed messages round-trip through a consumer group, and each lands on the
  partition Kafka's own Java partitioner (murmur2) assigns to its key;
- a stop and restart keeps port, topics, data and committed offsets, and a
  consumer and producer kept open across it carry on;
- stopping, or killing the process that owns the broker, leaves no JVM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

# The fixture is imported here too, so this file also runs without the
# conftest.py registration; both registrations share one broker (see
# kafka_broker.py). tests/ is on sys.path under pytest's default import mode;
# the fallback covers tests/ becoming a package.
try:
    from kafka_broker import (  # noqa: F401
        SCRIPT,
        KafkaBroker,
        kafka_broker,
        require_broker_jars,
        unique_name,
    )
except ImportError:
    from kafka_broker import (  # noqa: F401
        SCRIPT,
        KafkaBroker,
        kafka_broker,
        require_broker_jars,
        unique_name,
    )

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.serializer import DefaultSerializer, JsonSerializer  # noqa: E402

pytestmark = [pytest.mark.kafka]

PARTITIONS = 4

# Kafka's default partitioner for keyed records, straight from kafka-clients:
# BuiltInPartitioner.partitionForKey = toPositive(murmur2(key)) % numPartitions.
# Run with `java File.java` (source-file mode), so no build step is needed.
PARTITION_FOR_KEY_JAVA = """
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class PartitionForKey {
    public static void main(String[] args) throws Exception {
        int partitions = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String key; (key = in.readLine()) != null; ) {
            byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
            out.append(BuiltInPartitioner.partitionForKey(bytes, partitions)).append('\\n');
        }
        System.out.print(out);
    }
}
"""


def java_partitions(keys: list[str], partitions: int, workdir: Path) -> dict[str, int]:
    """Partition per key according to the broker distribution's Java client."""
    source = workdir / "PartitionForKey.java"
    source.write_text(PARTITION_FOR_KEY_JAVA)
    proc = subprocess.run(
        ["java", "-cp", KafkaBroker.classpath(), str(source), str(partitions)],
        input="\n".join(keys) + "\n", capture_output=True, text=True, timeout=120,
        encoding="utf-8",
    )
    assert proc.returncode == 0, proc.stderr
    result = [int(line) for line in proc.stdout.split()]
    assert len(result) == len(keys)
    return dict(zip(keys, result))


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="test-kafka-broker-producer",
        acks="all",
        linger_ms=5,
        retries=20,
        retry_backoff_ms=200,
        reconnect_backoff_max_ms=1000,  # come back quickly after a broker restart
        # kafka-python 3.x (de)serializer objects: keys as UTF-8 text, values as JSON.
        key_serializer=DefaultSerializer("utf-8"),
        value_serializer=JsonSerializer(),
    )


def consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        client_id="test-kafka-broker-consumer",
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        reconnect_backoff_max_ms=1000,
        key_deserializer=DefaultSerializer("utf-8"),
        value_deserializer=JsonSerializer(),
    )


def consume(c: KafkaConsumer, count: int, timeout_s: float = 60.0) -> list:
    """Poll until `count` records arrived (or fail with what did); then a short
    extra poll, so duplicates or extra records would show up in the result."""
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count:
        assert time.monotonic() < deadline, (
            f"got {len(records)} of {count} records within {timeout_s}s")
        for batch in c.poll(timeout_ms=500).values():
            records.extend(batch)
    for batch in c.poll(timeout_ms=500).values():
        records.extend(batch)
    return records


def process_alive(pid: int) -> bool:
    """Whether pid runs; an exited process not yet reaped (a zombie) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def jvms_for(directory: Path) -> list[int]:
    """Pids of live `kafka.Kafka` JVMs whose server.properties is in `directory`."""
    props = str(directory.resolve() / "server.properties").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in argv and props in argv and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.2)


# ---------------------------------------------------------------------------- tests


def test_keyed_messages_round_trip_on_murmur2_partitions(kafka_broker, tmp_path):
    topic, group = unique_name("roundtrip"), unique_name("roundtrip-group")
    kafka_broker.create_topic(topic, partitions=PARTITIONS)
    assert kafka_broker.partitions_for(topic) == PARTITIONS

    # 1000 messages over 250 keys (4 each), including non-ASCII keys: the
    # partitioner hashes the UTF-8 bytes, as the design's `kafka` router does.
    keys = [f"{prefix}-{i}" for prefix in ("user", "acct", "ключ", "üser") for i in range(61)]
    keys += ["", "a", "/orders", "/orders/42", "🙂", "x" * 300]
    assert len(keys) == len(set(keys)) == 250
    messages = [(keys[i % len(keys)], {"v": 1, "seq": i}) for i in range(1000)]

    p = producer(kafka_broker.bootstrap)
    try:
        futures = [p.send(topic, key=k, value=v) for k, v in messages]
        p.flush(timeout=60)
        sent_partition = {}
        for (key, value), future in zip(messages, futures):
            sent_partition[value["seq"]] = future.get(timeout=30).partition
    finally:
        p.close()

    c = consumer(kafka_broker.bootstrap, topic, group)
    try:
        records = consume(c, len(messages))
        # The group really owned the topic: all partitions assigned to this member.
        assert {tp.partition for tp in c.assignment()} == set(range(PARTITIONS))
        c.commit()
        committed = {tp: c.committed(TopicPartition(topic, tp)) for tp in range(PARTITIONS)}
    finally:
        c.close()

    # Every message exactly once.
    seqs = Counter(r.value["seq"] for r in records)
    assert len(records) == len(messages)
    assert sorted(seqs) == list(range(1000)) and set(seqs.values()) == {1}

    # Where Kafka's own Java partitioner puts each key is where it landed.
    expected = java_partitions(keys, PARTITIONS, tmp_path)
    misplaced = [(r.key, r.partition, expected[r.key]) for r in records
                 if r.partition != expected[r.key]]
    assert not misplaced, f"key, partition, java partition: {misplaced[:10]}"
    assert all(sent_partition[r.value["seq"]] == r.partition for r in records)

    # All partitions got data, and the committed offsets account for every message.
    per_partition = Counter(r.partition for r in records)
    assert set(per_partition) == set(range(PARTITIONS)), per_partition
    assert committed == {tp: per_partition[tp] for tp in range(PARTITIONS)}


def test_restart_keeps_port_data_and_offsets_and_clients_recover(kafka_broker):
    topic, group = unique_name("restart"), unique_name("restart-group")
    kafka_broker.create_topic(topic, partitions=PARTITIONS)
    bootstrap, old_pid = kafka_broker.bootstrap, kafka_broker.pid

    p = producer(bootstrap)
    c = consumer(bootstrap, topic, group)
    try:
        for i in range(100):
            p.send(topic, key=f"k{i}", value={"seq": i, "phase": "before"})
        p.flush(timeout=60)
        before = consume(c, 100)
        assert len(before) == 100
        c.commit()

        with kafka_broker.stopped():
            # Stopped means stopped: the JVM is gone, not just unresponsive.
            assert not kafka_broker.is_running()
            assert old_pid is not None and not process_alive(old_pid)
            assert jvms_for(kafka_broker.directory) == []

        # Same address, new JVM, same data dir.
        assert kafka_broker.bootstrap == bootstrap
        assert kafka_broker.pid != old_pid
        assert jvms_for(kafka_broker.directory) == [kafka_broker.pid]

        # The clients opened before the restart carry on: the producer's new
        # messages reach the same consumer, which resumes after its commit.
        for i in range(100, 200):
            p.send(topic, key=f"k{i}", value={"seq": i, "phase": "after"})
        p.flush(timeout=60)
        after = consume(c, 100, timeout_s=90)
        assert sorted(r.value["seq"] for r in after) == list(range(100, 200))
        c.commit()
    finally:
        p.close()
        c.close()

    # The data from before the restart is still on disk: a new group reads all 200.
    everything = consumer(bootstrap, topic, unique_name("restart-reread"))
    try:
        assert sorted(r.value["seq"] for r in consume(everything, 200)) == list(range(200))
    finally:
        everything.close()

    # And the group's offsets survived on the broker.
    again = consumer(bootstrap, topic, group)
    try:
        committed = sum(again.committed(TopicPartition(topic, tp)) or 0 for tp in range(PARTITIONS))
        assert committed == 200
    finally:
        again.close()


def test_start_on_existing_dir_refuses_another_port(kafka_broker):
    other_port = kafka_broker.port + 1
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "start", "--dir", str(kafka_broker.directory),
         "--port", str(other_port)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "already runs at" in proc.stderr and kafka_broker.bootstrap in proc.stderr
    assert kafka_broker.is_running()


@pytest.mark.slow
def test_no_jvm_left_after_stop_crash_or_owner_death(tmp_path):
    """A broker of its own (the session broker is not disturbed), owned by a
    stand-in process we can kill, as a pytest run can be killed."""
    require_broker_jars()  # same policy as the fixture: skip locally, fail in CI
    owner = subprocess.Popen(["sleep", "600"])
    broker = KafkaBroker(tmp_path / "broker", owner_pid=owner.pid)
    try:
        began = time.monotonic()
        bootstrap = broker.start()
        print(f"broker start (incl. format): {time.monotonic() - began:.1f}s")
        assert jvms_for(broker.directory) == [broker.pid]

        # `stop` leaves nothing behind.
        broker.stop()
        assert jvms_for(broker.directory) == []
        assert broker.pid is None and not broker.is_running()

        # Restart on the same dir: same port.
        began = time.monotonic()
        assert broker.start() == bootstrap
        print(f"broker restart: {time.monotonic() - began:.1f}s")

        # A crash (SIGKILL) is recovered from by a plain start, still on that port,
        # and the broker serves again.
        topic = unique_name("crash")
        broker.create_topic(topic, partitions=1)
        broker.kill()
        assert jvms_for(broker.directory) == []
        began = time.monotonic()
        assert broker.start() == bootstrap
        print(f"broker restart after SIGKILL: {time.monotonic() - began:.1f}s")
        p = producer(bootstrap)
        p.send(topic, key="k", value={"seq": 0}).get(timeout=30)
        p.close()
        assert len(jvms_for(broker.directory)) == 1

        # The owner dies without stopping anything: the watchdog stops the JVM.
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_until(lambda: jvms_for(broker.directory) == [], 60,
                   "the watchdog to stop the broker")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        broker.stop()
        leftover = jvms_for(broker.directory)
        for pid in leftover:
            os.kill(pid, signal.SIGKILL)
        assert leftover == []
