"""The Locust side of the Kafka pipeline: publish frames (default) or one event per request.

Active when the scenario's `kafka.produce` is `frames` or `events` (or --skew-kafka-bootstrap is
given); it subscribes to the Locust environment's events itself (`subscribe`):
- where requests are made (local runner, workers) it publishes to `kafka.topic`: every
  `kafka.frame_interval_s` a frame of the requests since the last one — counted by a follower of
  the run's own tally, so no key is routed twice — or with `produce: events` one request event
  per request, from its own request listener;
- on the master it adds up the workers' producer counts, which travel in their reports;
- at the end it adds the check `kafka_producer` to the run's checks.

It never blocks or slows the load (skewcheck.kafka.outbox). The check is a pass whatever was
dropped, with the counts in its message and details: this run's own verdict comes from the Locust
master's tally, which does not depend on Kafka; what a drop does hurt is the sidecar's view,
which `skewcheck gate --sidecar` judges (fail-closed there).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any, Callable

from skewcheck.config import KafkaConfig
from skewcheck.errors import UsageError
from skewcheck.kafka.outbox import Outbox, ProducerCounts, new_producer
from skewcheck.tally import Tally
from skewcheck.verdict import Check

RULE = "kafka_producer"
REPORT_KEY = "skewcheck_kafka"  # where a worker's producer counts travel in its report to the master
CONTEXT_KEY = "skew_key"  # the request context entry that carries the key (skewcheck.locust.run)
FINAL_FLUSH_S = 0.2  # at test stop on a worker: its final report to the master must not wait long
CLOSE_FLUSH_S = 2.0  # at the end of the process


class KafkaProducerHook:
    """Publishes what this process's users request (local runner or worker)."""

    def __init__(self, run: Any, kafka: KafkaConfig, current: Callable[[], Any]) -> None:
        from skewcheck.kafka.security import client_settings

        client_settings(kafka)  # bad SASL/TLS settings or missing credentials: exit 2 before the load
        self.kafka = kafka
        self.role = run.role
        self.source = _source(run)
        self.current = current  # the run as it is now (a worker rebuilds it at test start)
        self.outbox: Outbox | None = None
        self.tally: Tally | None = None
        self._stopped = False

    def subscribe(self, events: Any) -> None:
        events.test_start.add_listener(self._on_test_start)
        events.test_stop.add_listener(self._on_test_stop)
        events.quitting.add_listener(self._on_quitting)
        if self.kafka.produce == "events":
            events.request.add_listener(self._on_request)
        if self.role == "worker":
            events.report_to_master.add_listener(self._on_report_to_master)

    # --- start ------------------------------------------------------------------------------------

    def _on_test_start(self, **_kw: Any) -> None:
        run = self.current()
        if self.kafka.produce == "frames":
            if self.tally is None or self.tally not in run.tally.followers:
                self.tally = Tally(run.tally.routers, window_s=run.tally.window_s)
                run.tally.follow(self.tally)  # the run's tally routes; this one only counts
        if self.outbox is not None:
            return  # a restarted test keeps its producer
        self.outbox = Outbox(new_producer(self.kafka, f"skewcheck-{self.source}"), self.kafka.topic)
        if self.kafka.produce == "frames":
            threading.Thread(target=self._frame_loop, name="skewcheck-kafka-frames", daemon=True).start()

    # --- events mode: one message per request ------------------------------------------------------

    def _on_request(self, name: str = "", response_time: float = 0.0, response: Any = None,
                    context: dict | None = None, exception: Any = None, **_kw: Any) -> None:
        key = context.get(CONTEXT_KEY) if context else None
        if key is None or self.outbox is None:
            return
        if exception is not None and not getattr(response, "status_code", 0):
            return  # no answer: the request reached no shard (as the run's own tally counts it)
        event = {"v": 1, "ts": time.time(), "key": str(key), "name": name, "ok": exception is None,
                 "latency_ms": float(response_time or 0.0)}
        observed = _observed_shard(response)
        if observed is not None:
            event["shard"] = observed
        self.outbox.put(json.dumps(event, separators=(",", ":")).encode(), None, 1)

    # --- frames mode ------------------------------------------------------------------------------

    def _frame_loop(self) -> None:
        while not self._stopped:
            time.sleep(self.kafka.frame_interval_s)
            if not self._stopped:
                self._publish_frame()

    def _publish_frame(self) -> None:
        if self.tally is None or self.outbox is None:
            return
        self.current().tally.flush()  # held-back keys reach the follower
        if not self.tally.has_counts():
            return
        frame = self.tally.drain_frame(self.source)
        value = json.dumps(frame.to_json(), separators=(",", ":")).encode()
        self.outbox.put(value, self.source.encode(), frame.requests)

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
        if self.role == "local":
            run = self.current()
            counts = self.outbox.snapshot() if self.outbox else ProducerCounts()
            run.result_extra["producer"] = _extra(self.kafka, counts, 1)
            run.extra_checks.append(producer_check(self.kafka, counts, processes=1))

    def _on_report_to_master(self, client_id: str, data: dict, **_kw: Any) -> None:
        if self.outbox is not None:
            data[REPORT_KEY] = self.outbox.snapshot().to_json()


def _observed_shard(response: Any) -> int | None:
    from skewcheck.tally import shard_number

    headers = getattr(response, "headers", None)
    raw = headers.get("X-Shard") if headers is not None else None
    number = None if raw is None else shard_number(raw)
    return number if number is not None and number >= 0 else None


class ProducerReport:
    """On the master: the workers' producer counts, added up into the check."""

    def __init__(self, kafka: KafkaConfig, current: Callable[[], Any]) -> None:
        self.kafka = kafka
        self.current = current
        self.by_worker: dict[str, ProducerCounts] = {}

    def subscribe(self, events: Any) -> None:
        events.worker_report.add_listener(self._on_worker_report)
        events.quitting.add_listener(self._on_quitting)

    def _on_worker_report(self, client_id: str, data: dict, **_kw: Any) -> None:
        if REPORT_KEY in data:
            self.by_worker[str(client_id)] = ProducerCounts.from_json(data[REPORT_KEY])  # cumulative

    def _on_quitting(self, **_kw: Any) -> None:
        total = ProducerCounts()
        for counts in self.by_worker.values():
            total.add(counts)
        run = self.current()
        run.result_extra["producer"] = _extra(self.kafka, total, len(self.by_worker))
        run.extra_checks.append(producer_check(self.kafka, total, processes=len(self.by_worker)))


def attach(run: Any, current: Callable[[], Any]) -> KafkaProducerHook | ProducerReport | None:
    """The producer for this process, subscribed to its Locust events; None unless the scenario
    produces to Kafka."""
    kafka: KafkaConfig = run.scenario.kafka
    if kafka.produce == "off":
        return None
    try:
        import kafka as _kafka_python  # noqa: F401
    except ImportError:
        raise UsageError(f"kafka.produce is {kafka.produce!r} but kafka-python is not installed "
                         "(pip install 'skewcheck[kafka]')") from None
    hook = ProducerReport(kafka, current) if run.role == "master" else KafkaProducerHook(run, kafka, current)
    hook.subscribe(run.environment.events)
    return hook


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
