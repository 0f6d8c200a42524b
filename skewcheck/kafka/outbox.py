"""The bounded outbox between Locust's users and Kafka: a request never waits for the broker.

A request only serialises its message into the outbox (full: the message is dropped and counted);
a sender thread (a greenlet under Locust) hands the outbox to kafka-python, waiting at most
MAX_BLOCK_MS for metadata, and yields every SEND_SLICE sends. A broker outage costs messages,
counted as dropped, never requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from skewcheck.config import KafkaConfig

PRODUCER_API_VERSION = (4, 0)  # pinned: with none, KafkaProducer() blocks to probe the broker
MAX_PENDING = 10_000  # messages queued or in flight; beyond it new ones are dropped and counted
MAX_PENDING_BYTES = 16 << 20  # the same bound in bytes (frames of many shards are large)
MAX_BLOCK_MS = 50  # longest a send waits for metadata — in the sender greenlet, never in a request
SEND_SLICE = 200  # sends between yields, so a backlog never starves the users' greenlets
LINGER_MS = 20
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 10_000  # not acknowledged by then: counted as dropped
RETRY_S = 0.5  # pause before trying again while the broker gives no metadata
WARN_EVERY_S = 30.0

log = logging.getLogger("skewcheck")


@dataclass
class ProducerCounts:
    """Messages (frames or events) and the requests they carry, by fate."""

    messages: int = 0
    requests: int = 0
    delivered: int = 0
    delivered_requests: int = 0
    dropped: int = 0  # refused (outbox full, send error) or failed (broker error, expired)
    dropped_requests: int = 0
    last_error: str = ""

    @property
    def unconfirmed(self) -> int:
        return self.messages - self.delivered - self.dropped

    @property
    def unconfirmed_requests(self) -> int:
        return self.requests - self.delivered_requests - self.dropped_requests

    def add(self, other: ProducerCounts) -> None:
        for name in ("messages", "requests", "delivered", "delivered_requests", "dropped", "dropped_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_error = other.last_error or self.last_error

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ProducerCounts:
        if not isinstance(data, dict):
            return cls()
        counts = cls(**{k: int(data.get(k) or 0) for k in
                        ("messages", "requests", "delivered", "delivered_requests", "dropped", "dropped_requests")})
        counts.last_error = str(data.get("last_error") or "")[:500]
        return counts


class Outbox:
    """A bounded queue of serialised messages and the greenlet (a thread outside Locust) sending it."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.counts = ProducerCounts()
        self._queue: deque[tuple[bytes, bytes | None, int]] = deque()
        self._pending = 0  # queued + in flight
        self._pending_bytes = 0
        self._lock = threading.Lock()  # callbacks arrive on kafka-python's IO thread
        self._wake = threading.Event()
        self._closing = False
        self._final = False  # set by close() once every message is accounted for
        self._warned = 0.0
        self._sender = threading.Thread(target=self._send_loop, name="skewcheck-kafka-outbox", daemon=True)
        self._sender.start()

    def put(self, value: bytes, key: bytes | None, requests: int) -> None:
        """Never blocks: queue the message, or count it dropped when the outbox is full."""
        with self._lock:
            self.counts.messages += 1
            self.counts.requests += requests
            if self._pending >= MAX_PENDING or self._pending_bytes + len(value) > MAX_PENDING_BYTES:
                self._dropped(requests, "outbox full: the broker is not keeping up or is unreachable")
                return
            self._pending += 1
            self._pending_bytes += len(value)
            self._queue.append((value, key, requests))
        self._wake.set()

    def _send_loop(self) -> None:
        from kafka.errors import KafkaTimeoutError

        queue = self._queue
        while not self._final:
            if not queue:
                if self._closing:
                    return
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            for _ in range(SEND_SLICE):
                if not queue or self._final:
                    break
                value, key, requests = queue[0]
                try:
                    future = self.producer.send(self.topic, value=value, key=key)
                except KafkaTimeoutError:
                    with self._lock:
                        self.counts.last_error = f"no metadata for {self.topic} from the broker (unreachable?)"
                    time.sleep(RETRY_S)  # keep the message, try again: the outbox bound does the dropping
                    break
                except Exception as exc:  # noqa: BLE001 (a closed producer, a refused record: count, go on)
                    with self._lock:
                        if self._final:
                            return  # close() has already counted it
                        queue.popleft()
                        self._settle(len(value))
                        self._dropped(requests, f"{type(exc).__name__}: {exc}")
                    continue
                queue.popleft()  # kafka-python holds it now; its callbacks settle it
                size = len(value)
                future.add_callback(self._on_delivered, requests, size)
                future.add_errback(self._on_failed, requests, size)
            time.sleep(0)  # a gevent yield under Locust

    def _on_delivered(self, requests: int, size: int, _metadata: Any) -> None:
        with self._lock:
            self._settle(size)
            self.counts.delivered += 1
            self.counts.delivered_requests += requests

    def _on_failed(self, requests: int, size: int, exc: BaseException) -> None:
        with self._lock:
            self._settle(size)
            self._dropped(requests, f"{type(exc).__name__}: {exc}")

    def _settle(self, size: int) -> None:
        self._pending -= 1
        self._pending_bytes -= size

    def _dropped(self, requests: int, why: str) -> None:
        self.counts.dropped += 1
        self.counts.dropped_requests += requests
        self.counts.last_error = why
        now = time.monotonic()
        if now - self._warned > WARN_EVERY_S:
            self._warned = now
            log.warning("skewcheck: Kafka producer dropping messages for %s (%s); the load goes on",
                        self.topic, why)

    def snapshot(self) -> ProducerCounts:
        with self._lock:
            return ProducerCounts(**asdict(self.counts))

    def flush(self, timeout_s: float) -> None:
        """Wait (yielding) until everything queued is acknowledged or failed, or the time is up."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def close(self, timeout_s: float) -> None:
        self._closing = True
        self._wake.set()
        started = time.monotonic()
        self.flush(timeout_s)
        try:  # returns once kafka-python has answered (or abandoned) everything handed to it
            self.producer.close(timeout=max(0.0, timeout_s - (time.monotonic() - started)))
        except Exception as exc:  # noqa: BLE001 (closing must never cost the run its verdict)
            log.debug("skewcheck: Kafka producer close: %s", exc)
        with self._lock:  # what never got an answer is lost with this process: counted once, here
            self._final = True
            self._queue.clear()
            if self.counts.unconfirmed > 0:
                self.counts.dropped_requests += self.counts.unconfirmed_requests
                self.counts.dropped += self.counts.unconfirmed
                self.counts.last_error = self.counts.last_error or "not acknowledged when the run ended"


def new_producer(kafka: KafkaConfig, client_id: str) -> Any:
    """A KafkaProducer that cannot block a caller: metadata waits and close are bounded."""
    from kafka import KafkaProducer

    kafka_log = logging.getLogger("kafka")
    if kafka_log.level == logging.NOTSET:  # its retry noise would flood Locust's output; counts say it
        kafka_log.setLevel(logging.CRITICAL)

    from skewcheck.kafka.security import client_settings

    return KafkaProducer(
        **client_settings(kafka),
        client_id=client_id,
        api_version=PRODUCER_API_VERSION,
        max_block_ms=MAX_BLOCK_MS,
        linger_ms=LINGER_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
    )
