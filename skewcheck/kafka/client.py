"""What the sidecar's consumer loop needs from a Kafka client, and the parts both clients share.

The loop (skewcheck.kafka.consumer) runs on a `ConsumerClient`: poll a batch of records per
partition, commit offsets (asynchronously, or bounded in time at shutdown), tell the assigned
partitions, their high watermarks and the topic's partition count, close. Two clients implement
it — `kafka_python.KafkaPythonClient` (the default, `kafka.client: kafka-python`) and
`confluent.ConfluentClient` (librdkafka, `kafka.client: confluent`, `pip install
'skewcheck[kafka-fast]'`) — so consumer groups, offsets, the state file and malformed-message
accounting are one piece of code whichever library reads the broker.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_POLL_RECORDS = 5000  # larger batches route faster (numpy); memory per batch stays bounded
SESSION_TIMEOUT_MS = 10_000  # a killed instance's partitions move on after this, not Kafka's 45 s
COMMIT_TIMEOUT_MS = 5000  # blocking calls (shutdown commit, start-up checks) never hang on a dead broker
TOPIC_POLL_S = 0.5  # how often start-up asks again whether the topic exists
# what a broker says when it refuses the connection's security settings (not when it is down)
SECURITY_FAILURE = re.compile(r"sasl|ssl|tls|handshake|authenticat|certificate", re.IGNORECASE)

Rebalance = Callable[[set[int]], None]  # called with the partitions assigned, or revoked
CommitDone = Callable[[dict[int, int], "BaseException | None"], None]  # offsets committed, error


class BrokerTrouble(Exception):
    """A poll or commit failed in a way the client recovers from by itself (broker gone, rebalance)."""


@dataclass
class PartitionBatch:
    """Consecutive records of one partition from one poll, oldest first."""

    partition: int
    first: int  # offset of the first record
    last: int  # offset of the last record
    values: list[bytes | None]
    offsets: Callable[[], list[int]]  # each record's offset; built only when some were counted before


class ConsumerClient(Protocol):
    """One member of the consumer group, subscribed to one topic."""

    name: str  # the `kafka.client` value

    def subscribe(self, on_assigned: Rebalance, on_revoked: Rebalance) -> None:
        """Join the group; the callbacks run inside `poll` and must not block on the broker."""

    def poll(self, timeout_s: float) -> list[PartitionBatch]:
        """Records that arrived (at most MAX_POLL_RECORDS); BrokerTrouble when the poll failed."""

    def commit(self, offsets: dict[int, int], done: CommitDone) -> None:
        """Commit `partition -> next offset` asynchronously; `done` runs in a later poll."""

    def commit_now(self, offsets: dict[int, int], timeout_s: float) -> None:
        """Commit and wait for the answer, at most timeout_s; BrokerTrouble if it did not land."""

    def assignment(self) -> set[int]:
        ...

    def highwater(self, partition: int) -> int | None:
        """The partition's end as of the last fetch (no request), None when not known yet."""

    def partition_count(self) -> int | None:
        """How many partitions the topic has, None when the broker does not say."""

    def end_offsets(self, partitions: list[int], timeout_s: float) -> dict[int, int | None]:
        """Each partition's end, asked of the broker; BrokerTrouble if it does not answer."""

    def close(self, timeout_s: float) -> None:
        """Leave the group without committing (the loop has committed already)."""


def refused(messages: list[str], servers: list[str]) -> str | None:
    """The last of `messages` that says the broker refused our security settings, if the broker
    is up at all (a dead broker makes TLS and SASL errors too)."""
    found = [m for m in messages if SECURITY_FAILURE.search(m)]
    return found[-1] if found and reachable(servers) else None


def reachable(servers: list[str], timeout_s: float = 2.0) -> bool:
    """Whether any bootstrap server accepts TCP: tells refused security settings from a dead broker."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False
