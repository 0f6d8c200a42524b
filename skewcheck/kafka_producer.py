"""The Locust side of the Kafka pipeline: publish frames (default) or one event per request.

A run hook (skewcheck.plugin.register_hook), active when the scenario's `kafka.produce` is
`frames` or `events` (or --skew-kafka-bootstrap is given):
- where requests are made (local runner, workers) it publishes to `kafka.topic`: every
  `kafka.frame_interval_s` a frame drained from a tally of its own (the master-report path keeps
  its own tally untouched), or with `produce: events` one request event per request;
- on the master it adds up the workers' producer counts, which travel in their reports;
- at the end it adds the check `kafka_producer` to the verdict.

It never blocks or slows the load: a request only serialises its event into a bounded outbox
(full: the message is dropped and counted); a sender greenlet hands the outbox to kafka-python,
waiting at most MAX_BLOCK_MS for metadata, and yields every SEND_SLICE sends. A broker outage
costs messages, counted as dropped, never requests.

The check is a pass whatever was dropped, with the counts in its message and details: this run's
own verdict comes from the Locust master's tally, which does not depend on Kafka; what a drop
does hurt is the sidecar's view, which `skewcheck gate --sidecar` judges (fail-closed there).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from skewcheck.config import KafkaConfig
from skewcheck.errors import UsageError
from skewcheck.routing import make_router
from skewcheck.tally import Tally
from skewcheck.verdict import Check

RULE = "kafka_producer"
REPORT_KEY = "skewcheck_kafka"  # where a worker's producer counts travel in its report to the master
PRODUCER_API_VERSION = (4, 0)  # pinned: with none, KafkaProducer() blocks to probe the broker
MAX_PENDING = 10_000  # messages queued or in flight; beyond it new ones are dropped and counted
MAX_PENDING_BYTES = 16 << 20  # the same bound in bytes (frames of many shards are large)
MAX_BLOCK_MS = 50  # longest a send waits for metadata — in the sender greenlet, never in a request
SEND_SLICE = 200  # sends between yields, so a backlog never starves the users' greenlets
LINGER_MS = 20
REQUEST_TIMEOUT_MS = 5_000
DELIVERY_TIMEOUT_MS = 10_000  # not acknowledged by then: counted as dropped
RETRY_S = 0.5  # pause before trying again while the broker gives no metadata
FINAL_FLUSH_S = 0.2  # at test stop on a worker: its final report to the master must not wait long
CLOSE_FLUSH_S = 2.0  # at the end of the process
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

    from skewcheck.sidecar.security import client_settings

    return KafkaProducer(
        **client_settings(kafka),
        client_id=client_id,
        api_version=PRODUCER_API_VERSION,
        max_block_ms=MAX_BLOCK_MS,
        linger_ms=LINGER_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
    )


class KafkaProducerHook:
    """Publishes what this process's users request (local runner or worker)."""

    def __init__(self, run: Any, kafka: KafkaConfig) -> None:
        from skewcheck.sidecar.security import client_settings

        client_settings(kafka)  # bad SASL/TLS settings or missing credentials: exit 2 before the load
        self.kafka = kafka
        self.role = run.role
        self.source = _source(run)
        self.outbox: Outbox | None = None
        self.tally: Tally | None = None
        self._stopped = False

    # --- run hook -----------------------------------------------------------------------------------

    def start(self, run: Any) -> None:
        if self.outbox is not None:
            return  # a restarted test keeps its producer
        self.outbox = Outbox(new_producer(self.kafka, f"skewcheck-{self.source}"), self.kafka.topic)
        events = run.environment.events
        if self.kafka.produce == "frames":
            s = run.scenario
            self.tally = Tally([make_router(n, s.shards, s.routing.key_type) for n in s.routing.router_names],
                               window_s=s.window_s)
            threading.Thread(target=self._frame_loop, name="skewcheck-kafka-frames", daemon=True).start()
            run.key_listeners.append(self._count_key)
        else:
            run.key_listeners.append(self._publish_event)
        events.test_stop.add_listener(self._on_test_stop)
        events.quitting.add_listener(self._on_quitting)
        if self.role == "worker":
            events.report_to_master.add_listener(self._on_report_to_master)

    def stop(self, run: Any) -> list[Check]:
        """End of a local run: last frame, bounded flush, the check."""
        self._finish(CLOSE_FLUSH_S)
        counts = self.outbox.snapshot() if self.outbox else ProducerCounts()
        run.result_extra = {**getattr(run, "result_extra", {}), "producer": _extra(self.kafka, counts, 1)}
        return [producer_check(self.kafka, counts, processes=1)]

    # --- the hot path (per request) ----------------------------------------------------------------

    def _count_key(self, key: int | str, observed: int | None, name: str, ok: bool, latency_ms: float) -> None:
        self.tally.add(key, observed_shard=observed)

    def _publish_event(self, key: int | str, observed: int | None, name: str, ok: bool,
                       latency_ms: float) -> None:
        event = {"v": 1, "ts": time.time(), "key": str(key), "name": name, "ok": ok,
                 "latency_ms": float(latency_ms or 0.0)}
        if observed is not None and observed >= 0:
            event["shard"] = observed
        self.outbox.put(json.dumps(event, separators=(",", ":")).encode(), None, 1)

    # --- frames -----------------------------------------------------------------------------------

    def _frame_loop(self) -> None:
        while not self._stopped:
            time.sleep(self.kafka.frame_interval_s)
            if not self._stopped:
                self._publish_frame()

    def _publish_frame(self) -> None:
        tally = self.tally
        if tally is None or self.outbox is None or not tally.has_counts():
            return
        frame = tally.drain_frame(self.source)
        value = json.dumps(frame, separators=(",", ":")).encode()
        self.outbox.put(value, self.source.encode(), frame["requests"])

    # --- the end ----------------------------------------------------------------------------------

    def _finish(self, flush_s: float) -> None:
        if self.outbox is None or self._stopped:
            return
        self._stopped = True
        self._publish_frame()  # the requests since the last tick
        self.outbox.close(flush_s)

    def _on_test_stop(self, **_kw: Any) -> None:
        if self.role == "worker" and self.outbox is not None:
            self._publish_frame()
            self.outbox.flush(FINAL_FLUSH_S)  # so the final report to the master says "delivered"

    def _on_quitting(self, **_kw: Any) -> None:
        self._finish(CLOSE_FLUSH_S)

    def _on_report_to_master(self, client_id: str, data: dict, **_kw: Any) -> None:
        if self.outbox is not None:
            data[REPORT_KEY] = self.outbox.snapshot().to_json()


class ProducerReport:
    """On the master: the workers' producer counts, added up into the check."""

    def __init__(self, kafka: KafkaConfig) -> None:
        self.kafka = kafka
        self.by_worker: dict[str, ProducerCounts] = {}

    def start(self, run: Any) -> None:
        run.environment.events.worker_report.add_listener(self._on_worker_report)

    def _on_worker_report(self, client_id: str, data: dict, **_kw: Any) -> None:
        if REPORT_KEY in data:
            self.by_worker[str(client_id)] = ProducerCounts.from_json(data[REPORT_KEY])  # cumulative

    def stop(self, run: Any) -> list[Check]:
        total = ProducerCounts()
        for counts in self.by_worker.values():
            total.add(counts)
        run.result_extra = {**getattr(run, "result_extra", {}),
                            "producer": _extra(self.kafka, total, len(self.by_worker))}
        return [producer_check(self.kafka, total, processes=len(self.by_worker))]


def kafka_producer_hook(run: Any) -> KafkaProducerHook | ProducerReport | None:
    """Hook factory for the plugin: nothing unless the scenario produces to Kafka."""
    kafka: KafkaConfig = run.scenario.kafka
    if kafka.produce == "off":
        return None
    try:
        import kafka as _kafka_python  # noqa: F401
    except ImportError:
        raise UsageError(f"kafka.produce is {kafka.produce!r} but kafka-python is not installed "
                         "(pip install 'skewcheck[kafka]')") from None
    if run.role == "master":
        return ProducerReport(kafka)
    return KafkaProducerHook(run, kafka)


def producer_check(kafka: KafkaConfig, counts: ProducerCounts, processes: int) -> Check:
    unit = "frames" if kafka.produce == "frames" else "events"
    details = {**counts.to_json(), "unconfirmed": counts.unconfirmed, "mode": kafka.produce,
               "topic": kafka.topic, "bootstrap_servers": kafka.bootstrap_servers, "processes": processes}
    if processes == 0:
        return Check(RULE, "pass", f"no worker reported Kafka producer counts for {kafka.topic}", details=details)
    text = (f"published {counts.messages:,} {unit} ({counts.requests:,} requests) to {kafka.topic}: "
            f"{counts.delivered:,} delivered")
    if counts.unconfirmed > 0:
        text += f", {counts.unconfirmed:,} not yet confirmed"
    if counts.dropped:
        text += (f", {counts.dropped:,} dropped ({counts.dropped_requests:,} requests; {counts.last_error}): "
                 "the sidecar's view of this run is incomplete, this verdict is not")
    else:
        text += ", none dropped"
    return Check(RULE, "pass", text, value=counts.dropped_requests, limit=None, details=details)


def _extra(kafka: KafkaConfig, counts: ProducerCounts, processes: int) -> dict[str, Any]:
    return {"mode": kafka.produce, "topic": kafka.topic, "bootstrap_servers": kafka.bootstrap_servers,
            "processes": processes, **counts.to_json(), "unconfirmed": counts.unconfirmed}


def _source(run: Any) -> str:
    runner = getattr(run.environment, "runner", None)
    client_id = getattr(runner, "client_id", None) if run.role == "worker" else None
    return str(client_id or f"{socket.gethostname()}-{os.getpid()}")
