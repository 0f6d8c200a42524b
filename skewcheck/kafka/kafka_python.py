"""The kafka-python client of the consumer loop (`kafka.client: kafka-python`, the default)."""

from __future__ import annotations

import functools
import time
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
from skewcheck.kafka.security import describe


def consumer_settings(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, from_beginning: bool,
                      instance_id: str | None = None, connect_timeout_s: float = 30.0) -> dict[str, Any]:
    """KafkaConsumer keyword arguments of a group member (the bench's bare consumer uses them too)."""
    return dict(
        **settings,
        client_id=client_id,
        group_id=kafka.group_id,
        enable_auto_commit=False,  # offsets are committed after the tally holds the batch
        auto_offset_reset="earliest" if from_beginning else "latest",
        allow_auto_create_topics=False,  # a typo in --topic must not create a topic
        max_poll_records=MAX_POLL_RECORDS,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        # static membership: a restarted instance takes its partitions back without a rebalance
        group_instance_id=instance_id,
        bootstrap_timeout_ms=int(connect_timeout_s * 1000),
    )


def open_client(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, connect_timeout_s: float,
                from_beginning: bool, errors: Any, instance_id: str | None = None) -> KafkaPythonClient:
    """A group member, connected, with the topic present; or one clear error (see open_consumer)."""
    try:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError
    except ImportError:
        raise UsageError("kafka.client kafka-python needs kafka-python: pip install 'skewcheck[kafka]'") from None

    where = describe(kafka)
    seen = errors.count
    try:
        # A group-less probe checks the broker and the topic: listing every topic from the group's
        # own consumer changes its metadata snapshot and starts a needless rebalance.
        probe = KafkaConsumer(**settings, client_id=f"{client_id}-probe",
                              bootstrap_timeout_ms=int(connect_timeout_s * 1000))
    except KafkaError as exc:
        logged = errors.since(seen)
        refusal = refused(logged, settings["bootstrap_servers"])
        # the connection error says more than kafka-python's closing "Bootstrap failed"
        last = next((m for m in reversed(logged) if not m.startswith("Bootstrap failed")), None)
        if refusal:
            raise UsageError(f"Kafka at {where} refused the connection: {refusal}; check "
                             "kafka.security_protocol, kafka.sasl_mechanism, the credentials and "
                             "kafka.ssl_cafile") from None
        raise InconclusiveError(f"cannot reach Kafka at {where} within {connect_timeout_s:g} s "
                                f"({last or exc}); is the broker up and the address right?") from None
    try:
        deadline = time.monotonic() + connect_timeout_s
        while kafka.topic not in _topics(probe):
            if time.monotonic() >= deadline:
                raise UsageError(f"topic {kafka.topic!r} does not exist on {kafka.bootstrap_servers}; "
                                 "create it or fix --topic / kafka.topic")
            time.sleep(TOPIC_POLL_S)
    finally:
        probe.close(autocommit=False, timeout_ms=1000)
    try:
        consumer = KafkaConsumer(**consumer_settings(kafka, settings, client_id=client_id,
                                                     from_beginning=from_beginning, instance_id=instance_id,
                                                     connect_timeout_s=connect_timeout_s))
    except KafkaError as exc:  # it answered the probe a moment ago
        raise InconclusiveError(f"Kafka at {where} stopped answering while the sidecar started: {exc}") from None
    return KafkaPythonClient(consumer, kafka.topic)


def _topics(consumer: Any) -> set[str]:
    from kafka.errors import KafkaError

    try:
        return set(consumer.topics())
    except KafkaError:
        return set()


def _offsets(records: list[Any]) -> list[int]:
    return [r.offset for r in records]


class KafkaPythonClient:
    """A KafkaConsumer behind the loop's interface (skewcheck.kafka.client.ConsumerClient)."""

    name = "kafka-python"

    def __init__(self, consumer: Any, topic: str) -> None:
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        self.consumer = consumer
        self.topic = topic
        self._tp = TopicPartition
        self._offset = OffsetAndMetadata
        self._failures = (KafkaError, OSError)  # kafka-python reconnects by itself after these

    def subscribe(self, on_assigned: Rebalance, on_revoked: Rebalance) -> None:
        from kafka import ConsumerRebalanceListener

        topic = self.topic

        # kafka-python runs these on its IO loop: nothing in them may block on the broker
        class _Rebalance(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                on_revoked({tp.partition for tp in revoked if tp.topic == topic})

            def on_partitions_assigned(self, assigned: Any) -> None:
                on_assigned({tp.partition for tp in assigned if tp.topic == topic})

        self.consumer.subscribe([topic], listener=_Rebalance())

    def poll(self, timeout_s: float) -> list[PartitionBatch]:
        try:
            records = self.consumer.poll(timeout_ms=int(timeout_s * 1000))
        except self._failures as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None
        return [PartitionBatch(tp.partition, batch[0].offset, batch[-1].offset, [r.value for r in batch],
                               functools.partial(_offsets, batch))
                for tp, batch in records.items() if batch and tp.topic == self.topic]

    def _request(self, offsets: dict[int, int]) -> dict[Any, Any]:
        return {self._tp(self.topic, p): self._offset(o, "", -1) for p, o in offsets.items()}

    def commit(self, offsets: dict[int, int], done: CommitDone) -> None:
        def answered(sent: Any, response: Any) -> None:
            if isinstance(response, Exception):
                done({}, response)
            else:
                done({tp.partition: meta.offset for tp, meta in sent.items()}, None)

        try:
            self.consumer.commit_async(self._request(offsets), callback=answered)
        except self._failures as exc:
            done({}, exc)

    def commit_now(self, offsets: dict[int, int], timeout_s: float) -> None:
        try:
            self.consumer.commit(self._request(offsets), timeout_ms=int(timeout_s * 1000))
        except self._failures as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic}

    def highwater(self, partition: int) -> int | None:
        return self.consumer.highwater(self._tp(self.topic, partition))

    def partition_count(self) -> int | None:
        try:
            return len(self.consumer.partitions_for_topic(self.topic) or ()) or None
        except self._failures:
            return None

    def end_offsets(self, partitions: list[int], timeout_s: float) -> dict[int, int | None]:
        try:
            ends = self.consumer.end_offsets([self._tp(self.topic, p) for p in partitions],
                                             timeout_ms=int(timeout_s * 1000))
        except (*self._failures, ValueError) as exc:
            raise BrokerTrouble(f"{type(exc).__name__}: {exc}") from None
        return {tp.partition: end for tp, end in ends.items()}

    def close(self, timeout_s: float = COMMIT_TIMEOUT_MS / 1000) -> None:
        try:
            self.consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))
        except self._failures:
            pass  # the broker may be gone; leaving the group is then its session timeout's job
