"""The consumer loop without a broker (a stand-in consumer): records already in the tally are
never counted again, offsets are committed after the tally, and a group join that never
completes is replaced by a fresh consumer."""

from __future__ import annotations

import json
import threading
from collections import namedtuple

import pytest

from skewcheck.config import KafkaConfig, parse_scenario
from skewcheck.kafka import consumer as consumer_module
from skewcheck.kafka.consumer import EventConsumer
from skewcheck.sidecar.state import SidecarState

pytest.importorskip("kafka")
from kafka import TopicPartition

Record = namedtuple("Record", "offset value")
TOPIC = "t"


class StandIn:
    """Just what EventConsumer calls on a KafkaConsumer; serves scripted poll results."""

    def __init__(self, batches, assign_on_subscribe: bool = True) -> None:
        self.batches = list(batches)
        self.assign_on_subscribe = assign_on_subscribe
        self.listener = None
        self.commits: list[dict] = []
        self.closed = False
        self.stop: threading.Event | None = None

    def subscribe(self, topics, listener):
        self.listener = listener
        if self.assign_on_subscribe:
            listener.on_partitions_revoked(set())
            listener.on_partitions_assigned({TopicPartition(TOPIC, p) for p in range(2)})

    def poll(self, timeout_ms):
        if not self.batches:
            if self.stop is not None:
                self.stop.set()
            return {}
        return self.batches.pop(0)

    def assignment(self):
        return {TopicPartition(TOPIC, p) for p in range(2)} if self.assign_on_subscribe else set()

    def highwater(self, tp):
        return None

    def partitions_for_topic(self, topic):
        return {0, 1}

    def commit_async(self, offsets, callback):
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})
        callback(offsets, None)

    def commit(self, offsets, timeout_ms):
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})

    def close(self, autocommit, timeout_ms):
        self.closed = True


def records(partition: int, start: int, keys) -> dict:
    return {TopicPartition(TOPIC, partition): [Record(start + i, json.dumps({"key": k}).encode())
                                               for i, k in enumerate(keys)]}


def state() -> SidecarState:
    return SidecarState(parse_scenario("shards: 10\n"), KafkaConfig(topic=TOPIC), instance="x")


def run(loop: EventConsumer, fake: StandIn) -> None:
    stop = threading.Event()
    fake.stop = stop
    loop.run(stop)
    loop.close()


def test_records_below_the_tallied_offset_are_not_counted_again():
    # partition 0 is re-delivered from offset 2 after a commit that did not land (it held up to 5)
    fake = StandIn([records(0, 0, [1, 2, 3, 4, 5]), records(0, 2, [3, 4, 5, 6, 7]), records(1, 0, [8])])
    s = state()
    loop = EventConsumer(fake, s)
    run(loop, fake)
    assert s.tally.requests == 8 and s.consumed == 8
    assert s.positions == {0: 7, 1: 1}
    assert fake.commits[-1] == {0: 7, 1: 1}  # committed after the tally, to what it holds


def test_a_stalled_join_is_replaced_by_a_fresh_consumer(monkeypatch):
    monkeypatch.setattr(consumer_module, "REBALANCE_STALL_S", 0.0)
    stalled = StandIn([{}, {}, {}], assign_on_subscribe=False)  # joins, never gets an assignment
    fresh = StandIn([records(0, 0, [1, 2, 3])])
    s = state()
    loop = EventConsumer(stalled, s, reopen=lambda: fresh)
    run(loop, fresh)
    assert stalled.closed and loop.consumer is fresh
    assert s.tally.requests == 3 and s.assigned == frozenset({0, 1}) and s.ready
