"""The consumer loop without a broker (a stand-in client; tests/test_kafka_sidecar.py runs the
same loop on a real broker with both real clients): records already in the tally are never
counted again, offsets are committed after the tally, and a group join that never completes is
replaced by a fresh client."""

from __future__ import annotations

import json
import threading

from skewcheck.config import KafkaConfig, parse_scenario
from skewcheck.kafka import consumer as consumer_module
from skewcheck.kafka.client import BrokerTrouble, PartitionBatch
from skewcheck.kafka.consumer import EventConsumer
from skewcheck.sidecar.state import SidecarState

TOPIC = "t"


class StandIn:
    """Just the ConsumerClient interface; serves scripted poll results."""

    name = "stand-in"

    def __init__(self, polls, assign_on_subscribe: bool = True) -> None:
        self.polls = list(polls)
        self.assign_on_subscribe = assign_on_subscribe
        self.commits: list[dict] = []
        self.closed = False
        self.stop: threading.Event | None = None

    def subscribe(self, on_assigned, on_revoked):
        if self.assign_on_subscribe:
            on_revoked(set())
            on_assigned({0, 1})

    def poll(self, timeout_s):
        if not self.polls:
            if self.stop is not None:
                self.stop.set()
            return []
        return self.polls.pop(0)

    def assignment(self):
        return {0, 1} if self.assign_on_subscribe else set()

    def highwater(self, partition):
        return None

    def partition_count(self):
        return 2

    def commit(self, offsets, done):
        self.commits.append(dict(offsets))
        done(dict(offsets), None)

    def commit_now(self, offsets, timeout_s):
        self.commits.append(dict(offsets))

    def end_offsets(self, partitions, timeout_s):
        return {p: None for p in partitions}

    def close(self, timeout_s):
        self.closed = True


def records(partition: int, start: int, keys) -> PartitionBatch:
    offsets = [start + i for i in range(len(keys))]
    return PartitionBatch(partition, offsets[0], offsets[-1], [json.dumps({"key": k}).encode() for k in keys],
                          lambda: offsets)


def state() -> SidecarState:
    return SidecarState(parse_scenario("shards: 10\n"), KafkaConfig(topic=TOPIC), instance="x")


def run(loop: EventConsumer, fake: StandIn) -> None:
    stop = threading.Event()
    fake.stop = stop
    loop.run(stop)
    loop.close()


def test_records_below_the_tallied_offset_are_not_counted_again():
    # partition 0 is re-delivered from offset 2 after a commit that did not land (it held up to 5)
    fake = StandIn([[records(0, 0, [1, 2, 3, 4, 5])], [records(0, 2, [3, 4, 5, 6, 7])], [records(1, 0, [8])]])
    s = state()
    loop = EventConsumer(fake, s)
    run(loop, fake)
    assert s.tally.requests == 8 and s.consumed == 8
    assert s.positions == {0: 7, 1: 1}
    assert fake.commits[-1] == {0: 7, 1: 1}  # committed after the tally, to what it holds


def test_one_partition_in_several_runs_of_one_poll():
    # librdkafka hands over a queue in which a partition's fetches can interleave with another's
    fake = StandIn([[records(0, 0, [1, 2]), records(1, 0, [3]), records(0, 2, [4, 5]), records(0, 1, [2, 4])]])
    s = state()
    run(EventConsumer(fake, s), fake)
    assert s.tally.requests == 5 and s.positions == {0: 4, 1: 1}


def test_a_stalled_join_is_replaced_by_a_fresh_client(monkeypatch):
    monkeypatch.setattr(consumer_module, "REBALANCE_STALL_S", 0.0)
    stalled = StandIn([[], [], []], assign_on_subscribe=False)  # joins, never gets an assignment
    fresh = StandIn([[records(0, 0, [1, 2, 3])]])
    s = state()
    loop = EventConsumer(stalled, s, reopen=lambda: fresh)
    run(loop, fresh)
    assert stalled.closed and loop.client is fresh
    assert s.tally.requests == 3 and s.assigned == frozenset({0, 1}) and s.ready


class Shrunk(StandIn):
    """A topic recreated with 2 partitions where the state file knew 4; ends 10 and 60."""

    def end_offsets(self, partitions, timeout_s):
        if any(p >= 2 for p in partitions):
            raise BrokerTrouble("UnknownTopicOrPartitionError")  # as a real client refuses it
        return {p: {0: 10, 1: 60}[p] for p in partitions}


def test_saved_offsets_of_partitions_gone_or_past_their_end_are_forgotten():
    s = state()
    s.positions.update({0: 100, 1: 50, 2: 70, 3: 9})
    loop = EventConsumer(Shrunk([]), s)
    loop.forget_stale_positions()
    assert s.positions == {1: 50}  # 0 ends before its saved offset; 2 and 3 are gone
