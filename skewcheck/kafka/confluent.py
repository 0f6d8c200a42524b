"""The confluent-kafka (librdkafka) client of the consumer loop: `kafka.client: confluent`.

librdkafka fetches on its own threads, outside the GIL, and hands over messages in C, so the
sidecar's one Python thread spends its time decoding and counting rather than parsing Kafka's
protocol. Installed by `pip install 'skewcheck[kafka-fast]'` (the wheels bundle librdkafka).
"""

from __future__ import annotations

import functools
import logging
import time
from itertools import groupby
from typing import Any

from skewcheck.config import KafkaConfig
from skewcheck.errors import InconclusiveError, UsageError
from skewcheck.kafka.client import (
    COMMIT_TIMEOUT_MS,
    MAX_POLL_RECORDS,
    SESSION_TIMEOUT_MS,
    TOPIC_POLL_S,
    BrokerTrouble,
    CommitDone,
    PartitionBatch,
    Rebalance,
    refused,
)
from skewcheck.kafka.security import describe, librdkafka_settings

# librdkafka stops fetching a partition for fetch.queue.backoff.ms (default 1000) whenever its
# local queue holds queued.min.messages: at sidecar rates that idles the consumer most of each
# second, and a default confluent consumer is then no faster than kafka-python
FETCH_QUEUE_BACKOFF_MS = 10
# prefetched messages kept in memory (librdkafka's default is 64 MiB): a fraction of a second at
# full speed already, and what bounds the client's memory
QUEUED_MAX_KBYTES = 16 * 1024
PROBE_WAIT_S = 2.0  # one metadata request of the start-up check waits at most this
LOGGER = "librdkafka"  # librdkafka's own log lines (shown with --verbose), never its stderr


def consumer_config(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, from_beginning: bool,
                    instance_id: str | None = None) -> dict[str, Any]:
    """librdkafka settings of a group member (the bench's bare consumer uses them too)."""
    conf: dict[str, Any] = {
        **librdkafka_settings(settings),
        "client.id": client_id,
        "group.id": kafka.group_id,
        "enable.auto.commit": False,  # offsets are committed after the tally holds the batch
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "allow.auto.create.topics": False,  # a typo in --topic must not create a topic
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
        "check.crcs": True,  # as kafka-python does by default: a corrupt batch is refused, not decoded
    }
    if instance_id:  # static membership: a restarted instance takes its partitions back at once
        conf["group.instance.id"] = instance_id
    return conf


def _library() -> Any:
    try:
        import confluent_kafka
    except ImportError:
        raise UsageError("kafka.client confluent needs confluent-kafka: "
                         "pip install 'skewcheck[kafka-fast]'") from None
    return confluent_kafka


def open_client(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, connect_timeout_s: float,
                from_beginning: bool, errors: Any, instance_id: str | None = None) -> ConfluentClient:
    """A group member, with the broker answering and the topic present; or one clear error
    (see skewcheck.kafka.consumer.open_consumer)."""
    library = _library()
    from confluent_kafka.admin import AdminClient

    where = describe(kafka)
    servers = settings["bootstrap_servers"]
    callbacks = {"error_cb": lambda error: errors.note(error.str()), "logger": logging.getLogger(LOGGER)}
    seen = errors.count
    # a group-less probe, as with kafka-python: the member itself joins only once the topic is there
    probe = AdminClient({**librdkafka_settings(settings), "client.id": f"{client_id}-probe", **callbacks})
    deadline = time.monotonic() + connect_timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            topics = probe.list_topics(timeout=max(0.1, min(left, PROBE_WAIT_S))).topics
        except library.KafkaException:
            topics = None
        probe.poll(0)  # serves the error callback
        refusal = refused(errors.since(seen), servers)
        if refusal:  # no retry mends a refused handshake
            raise UsageError(f"Kafka at {where} refused the connection: {refusal}; check "
                             "kafka.security_protocol, kafka.sasl_mechanism, the credentials and "
                             "kafka.ssl_cafile")
        if topics is not None and kafka.topic in topics and topics[kafka.topic].error is None:
            break
        if time.monotonic() >= deadline:
            if topics is not None:
                raise UsageError(f"topic {kafka.topic!r} does not exist on {kafka.bootstrap_servers}; "
                                 "create it or fix --topic / kafka.topic")
            last = errors.last if errors.count > seen else "no answer"
            raise InconclusiveError(f"cannot reach Kafka at {where} within {connect_timeout_s:g} s "
                                    f"({last}); is the broker up and the address right?")
        if topics is not None:
            time.sleep(TOPIC_POLL_S)
    conf = consumer_config(kafka, settings, client_id=client_id, from_beginning=from_beginning,
                           instance_id=instance_id)
    return ConfluentClient({**conf, **callbacks}, kafka.topic, errors)


def _offsets(messages: list[Any]) -> list[int]:
    return [m.offset() for m in messages]


class ConfluentClient:
    """A confluent_kafka.Consumer behind the loop's interface (skewcheck.kafka.client.ConsumerClient)."""

    name = "confluent"

    def __init__(self, conf: dict[str, Any], topic: str, errors: Any) -> None:
        library = _library()
        self.topic = topic
        self.errors = errors
        self._done: CommitDone | None = None
        # commit_now's requests waiting for their answer: librdkafka's on_commit names no request,
        # so an answer is matched by the offsets it carries (a rebalance served meanwhile may
        # commit asynchronously, and its answer must not be taken for this one)
        self._waiting: list[tuple[dict[int, int], list[BaseException | None]]] = []
        self._tp = library.TopicPartition
        self._message = library.Message
        self._failures = (library.KafkaException, RuntimeError)  # RuntimeError: a closed consumer
        self._assigned: set[int] = set()  # kept from the rebalance callbacks: assignment() costs ~1 ms
        self.consumer = library.Consumer({**conf, "on_commit": self._answered})

    def subscribe(self, on_assigned: Rebalance, on_revoked: Rebalance) -> None:
        topic = self.topic

        # run inside consume(); librdkafka assigns (or unassigns) the partitions when they return
        def assigned(_consumer: Any, partitions: list[Any]) -> None:
            self._assigned = {tp.partition for tp in partitions if tp.topic == topic}  # eager: all of it
            on_assigned(set(self._assigned))

        def revoked(_consumer: Any, partitions: list[Any]) -> None:
            gone = {tp.partition for tp in partitions if tp.topic == topic}
            self._assigned -= gone
            on_revoked(gone)

        self.consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def poll(self, timeout_s: float) -> list[PartitionBatch]:
        try:
            messages = self.consumer.consume(MAX_POLL_RECORDS, timeout_s)
        except self._failures as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None
        if not messages:
            return []
        message = self._message
        if any(map(message.error, messages)):  # errors come as messages without a record
            for m in messages:
                if m.error() is not None:
                    self.errors.note(m.error().str())
            messages = [m for m in messages if m.error() is None]
        batches = []
        for partition, run in groupby(messages, key=message.partition):  # C calls, not a Python loop
            records = list(run)
            values = list(map(message.value, records))
            batches.append(PartitionBatch(partition, records[0].offset(), records[-1].offset(), values,
                                          functools.partial(_offsets, records)))
        return batches

    def _request(self, offsets: dict[int, int]) -> list[Any]:
        return [self._tp(self.topic, p, o) for p, o in offsets.items()]

    def commit(self, offsets: dict[int, int], done: CommitDone) -> None:
        self._done = done  # the loop passes the same callback every time
        try:
            self.consumer.commit(offsets=self._request(offsets), asynchronous=True)
        except self._failures as exc:
            done({}, exc)

    def _answered(self, error: Any, partitions: list[Any]) -> None:
        """librdkafka's on_commit, served by consume() or poll()."""
        topic = self.topic
        asked = {tp.partition: tp.offset for tp in partitions if tp.topic == topic}
        committed = {tp.partition: tp.offset for tp in partitions
                     if tp.error is None and tp.topic == topic}
        failure = error or next((tp.error for tp in partitions if tp.error is not None), None)
        trouble = None if failure is None else BrokerTrouble(failure.str())
        waiters = [answers for offsets, answers in self._waiting if offsets == asked]
        for answers in waiters:
            answers.append(trouble)
        if not waiters and self._done is not None:
            self._done(committed, trouble)

    def commit_now(self, offsets: dict[int, int], timeout_s: float) -> None:
        # asynchronous, then served here: librdkafka's synchronous commit has no time limit
        answers: list[BaseException | None] = []
        waiter = (dict(offsets), answers)
        self._waiting.append(waiter)
        deadline = time.monotonic() + timeout_s
        try:
            self.consumer.commit(offsets=self._request(offsets), asynchronous=True)
            while not answers and time.monotonic() < deadline:
                # a record this returns is neither tallied nor committed: the group reads it again
                self.consumer.poll(0.05)
        except self._failures as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._waiting.remove(waiter)
        if not answers:
            raise BrokerTrouble(f"no answer to the offset commit within {timeout_s:g} s")
        if answers[0] is not None:
            raise answers[0]

    def assignment(self) -> set[int]:
        return set(self._assigned)

    def highwater(self, partition: int) -> int | None:
        try:
            _low, high = self.consumer.get_watermark_offsets(self._tp(self.topic, partition), cached=True)
        except self._failures:
            return None
        return high if high is not None and high >= 0 else None

    def partition_count(self) -> int | None:
        try:
            found = self.consumer.list_topics(self.topic, timeout=1.0).topics.get(self.topic)
        except self._failures:
            return None
        return len(found.partitions) or None if found is not None and found.error is None else None

    def end_offsets(self, partitions: list[int], timeout_s: float) -> dict[int, int | None]:
        ends: dict[int, int | None] = {}
        try:
            for p in partitions:
                _low, high = self.consumer.get_watermark_offsets(self._tp(self.topic, p), timeout=timeout_s)
                ends[p] = high if high >= 0 else None
        except self._failures as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None
        return ends

    def close(self, timeout_s: float = COMMIT_TIMEOUT_MS / 1000) -> None:
        # librdkafka bounds this itself (about a session timeout when the broker is gone)
        try:
            self.consumer.close()
        except self._failures:
            pass
