"""The consumer-group loop: poll a batch, decode it, tally it, commit its offsets.

Offsets, and what a restart can count twice or lose:
- Offsets are committed after the batch is tallied (at most every COMMIT_INTERVAL_S, when
  partitions are revoked, and at shutdown), never before: nothing polled is skipped, so a crash
  in the middle of a batch loses nothing that Kafka still holds. Delivery is at least once.
- The consumer remembers, per partition, the offset just past what its tally holds, and drops
  any record below it. So a commit that failed or never left (broker restart, rebalance, a kill
  right after a `--state` save) never makes the same instance count a message twice.
- With `--state FILE`, the tally and those offsets are saved (atomically) before every commit.
  A killed sidecar restarted with the same file takes back its counts and offsets: exact, for
  a group of one (what arrived after the last save is re-read, what was saved is not).
- Without `--state`, a restarted sidecar starts from empty counts at the committed offsets:
  nothing is counted twice, but what the previous process counted is gone from its view.
- Counted twice, in a group of several: a partition that moves to another instance while its
  last commit had not landed is re-read by the new owner from the committed offset: at most
  COMMIT_INTERVAL_S of that partition's messages (or what was polled while commits failed).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from skewcheck.config import KafkaConfig
from skewcheck.errors import InconclusiveError, SkewcheckError, UsageError
from skewcheck.kafka.security import describe
from skewcheck.report.escape import printable
from skewcheck.sidecar import checkpoint
from skewcheck.sidecar.state import SidecarState

POLL_TIMEOUT_MS = 200  # how long one poll waits for data, so a stop request is seen promptly
MAX_POLL_RECORDS = 5000  # larger batches route faster (numpy); memory per batch stays bounded
COMMIT_INTERVAL_S = 1.0  # bounds what a partition handed to another instance can re-read
SESSION_TIMEOUT_MS = 10_000  # a killed instance's partitions move on after this, not Kafka's 45 s
# A join with no assignment after twice the session timeout has stalled (kafka-python 3.0 can leave
# a join unfinished for good, seen about once in 30 starts on a busy machine): rejoin afresh.
REBALANCE_STALL_S = 2 * SESSION_TIMEOUT_MS / 1000
COMMIT_TIMEOUT_MS = 5000  # blocking calls (shutdown commit, start-up checks) never hang on a dead broker
TOPIC_POLL_S = 0.5
TROUBLE_REPORT_S = 10.0  # one line per this while the broker stays unreachable
_CONNECTION_PREFIX = re.compile(r"<KafkaConnection[^>]*>:\s*(Connection lost:\s*)?")  # kafka-python's own framing
_SECURITY_FAILURE = re.compile(r"sasl|ssl|tls|handshake|authenticat|certificate", re.IGNORECASE)

log = logging.getLogger("skewcheck.sidecar")


class KafkaErrorLog(logging.Handler):
    """Keeps kafka-python's recent errors (it logs connection failures instead of raising them)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.recent: deque[str] = deque(maxlen=50)
        self.count = 0

    @property
    def last(self) -> str | None:
        return self.recent[-1] if self.recent else None

    def emit(self, record: logging.LogRecord) -> None:
        self.recent.append(_CONNECTION_PREFIX.sub("", record.getMessage()))
        self.count += 1

    def since(self, count: int) -> list[str]:
        """The errors logged after the count was `count` (as many as are kept)."""
        return list(self.recent)[-min(self.count - count, len(self.recent)):] if self.count > count else []

    def install(self, verbose: bool = False) -> KafkaErrorLog:
        kafka_log = logging.getLogger("kafka")
        kafka_log.addHandler(self)
        kafka_log.propagate = False  # the sidecar reports broker trouble in its own words
        kafka_log.setLevel(logging.INFO if verbose else logging.ERROR)
        if verbose:
            shown = logging.StreamHandler()
            shown.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            kafka_log.addHandler(shown)
        return self

    def uninstall(self) -> None:
        logging.getLogger("kafka").removeHandler(self)


def open_consumer(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, connect_timeout_s: float,
                  from_beginning: bool, errors: KafkaErrorLog, instance_id: str | None = None) -> Any:
    """A KafkaConsumer in the group, connected, with the topic present; or one clear error.

    UsageError (exit 2): the broker refused our security settings, or the topic does not exist.
    InconclusiveError (exit 3): no broker answered within the timeout.
    """
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    where = describe(kafka)
    seen = errors.count
    try:
        # A group-less probe checks the broker and the topic: listing every topic from the group's
        # own consumer changes its metadata snapshot and starts a needless rebalance.
        probe = KafkaConsumer(**settings, client_id=f"{client_id}-probe",
                              bootstrap_timeout_ms=int(connect_timeout_s * 1000))
    except KafkaError as exc:
        logged = errors.since(seen)
        refused = [m for m in logged if _SECURITY_FAILURE.search(m)]
        # the connection error says more than kafka-python's closing "Bootstrap failed"
        last = next((m for m in reversed(logged) if not m.startswith("Bootstrap failed")), None)
        if refused and _reachable(settings["bootstrap_servers"]):
            raise UsageError(f"Kafka at {where} refused the connection: {refused[-1]}; check "
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
        return KafkaConsumer(
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
    except KafkaError as exc:  # it answered the probe a moment ago
        raise InconclusiveError(f"Kafka at {where} stopped answering while the sidecar started: {exc}") from None


def _topics(consumer: Any) -> set[str]:
    from kafka.errors import KafkaError

    try:
        return set(consumer.topics())
    except KafkaError:
        return set()


def _reachable(servers: list[str], timeout_s: float = 2.0) -> bool:
    """Whether any bootstrap server accepts TCP: tells refused security settings from a dead broker."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


class EventConsumer:
    """Runs the loop for one consumer of the group; `run` returns when `stop` is set."""

    def __init__(self, consumer: Any, state: SidecarState, *, state_path: Any = None,
                 errors: KafkaErrorLog | None = None, clock: Callable[[], float] = time.time,
                 reopen: Callable[[], Any] | None = None) -> None:
        from kafka import ConsumerRebalanceListener

        self.consumer = consumer
        self.reopen = reopen  # makes a fresh consumer when a group join has stalled
        self.state = state
        self.topic = state.kafka.topic
        self.state_path = state_path
        self.errors = errors or KafkaErrorLog()
        self.clock = clock
        self._last_commit = 0.0
        self._committed: dict[int, int] = {}  # what the last commit sent, to skip empty ones
        self._assignment_pending = False
        self._trouble_seen = self.errors.count
        self._trouble_reported = 0.0
        self._joining_since: float | None = clock()  # from a revocation (or the start) to an assignment

        owner = self

        class _Rebalance(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                owner._on_revoked(revoked)

            def on_partitions_assigned(self, assigned: Any) -> None:
                owner._on_assigned(assigned)

        self._listener = _Rebalance()
        consumer.subscribe([self.topic], listener=self._listener)

    def run(self, stop: threading.Event) -> None:
        from kafka.errors import KafkaError

        state = self.state
        decode = state.decoder.decode
        while not stop.is_set():
            try:
                records = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            except (KafkaError, OSError) as exc:  # kafka-python reconnects by itself; keep the counts
                self._trouble(f"{type(exc).__name__}: {exc}")
                stop.wait(1.0)
                continue
            now = self.clock()
            if records:
                values, offsets = self._unseen(records)
                if offsets:
                    state.apply(decode(values), offsets, now)
            self._after_poll(now, bool(records))
            if now - self._last_commit >= COMMIT_INTERVAL_S:
                self.commit()
            since = self._joining_since
            if since is not None and now - since > REBALANCE_STALL_S and self.reopen is not None:
                self._rejoin(now)

    def _rejoin(self, now: float) -> None:
        """Replace a consumer whose group join never completed (seen with kafka-python 3.0)."""
        from kafka.errors import KafkaError

        self._joining_since = now  # whatever happens next, wait a full period before trying again
        try:
            fresh = self.reopen()
        except SkewcheckError as exc:
            self._trouble(str(exc))
            return
        print(f"skewcheck sidecar: no partitions after {REBALANCE_STALL_S:g} s in the group; rejoining",
              flush=True)
        old, self.consumer = self.consumer, fresh
        try:
            old.close(autocommit=False, timeout_ms=1000)
        except (KafkaError, OSError) as exc:
            log.debug("closing the stalled consumer: %s", exc)
        fresh.subscribe([self.topic], listener=self._listener)

    def _unseen(self, records: dict[Any, list[Any]]) -> tuple[list[bytes | None], dict[int, int]]:
        """The values of records this tally does not hold yet, and the offsets just past them."""
        values: list[bytes | None] = []
        offsets: dict[int, int] = {}
        positions = self.state.positions  # written only by this thread
        for tp, batch in records.items():
            start = positions.get(tp.partition, -1)
            if batch[-1].offset < start:
                continue  # re-delivered after a commit that did not land: already counted
            if batch[0].offset < start:
                batch = [r for r in batch if r.offset >= start]
            values.extend([r.value for r in batch])
            offsets[tp.partition] = batch[-1].offset + 1
        return values, offsets

    # --- offsets ------------------------------------------------------------------------------------

    def commit(self, sync: bool = False) -> None:
        """Save the state file (when there is one), then commit what the tally holds."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        self._last_commit = self.clock()
        state = self.state
        with state.lock:
            offsets = {p: o for p, o in state.positions.items() if p in state.assigned}
            changed = offsets != {p: o for p, o in self._committed.items() if p in offsets}
            doc = state.document() if self.state_path is not None and changed else None
        if not changed or not offsets:
            return
        if doc is not None:
            checkpoint.save(self.state_path, doc)
        request = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        try:
            if sync:
                self.consumer.commit(request, timeout_ms=COMMIT_TIMEOUT_MS)
                self._committed.update(offsets)
            else:
                self.consumer.commit_async(request, callback=self._on_commit)
        except (KafkaError, OSError) as exc:
            self._commit_failed(exc)

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            self._commit_failed(response)
        else:
            self._committed.update({tp.partition: meta.offset for tp, meta in offsets.items()})

    def _commit_failed(self, exc: BaseException) -> None:
        with self.state.lock:
            self.state.commit_failures += 1
        log.debug("offset commit failed: %s", exc)

    # Rebalance callbacks run on kafka-python's IO loop: nothing in them may block on the broker.

    def _on_revoked(self, revoked: Any) -> None:
        self._joining_since = self._joining_since or self.clock()
        self.commit()  # asynchronous: the next owner starts where this tally ends, if it lands in time
        gone = {tp.partition for tp in revoked if tp.topic == self.topic}
        with self.state.lock:
            self.state.assigned = frozenset(self.state.assigned - gone)
            self.state.ready = False
            for p in gone:
                self.state.lag.pop(p, None)

    def _on_assigned(self, assigned: Any) -> None:
        self._joining_since = None
        with self.state.lock:
            self.state.assigned = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)
        self._assignment_pending = True

    def forget_stale_positions(self) -> None:
        """Drop saved offsets beyond a partition's end: the topic was recreated or truncated since."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        saved = dict(self.state.positions)
        if not saved:
            return
        try:
            ends = self.consumer.end_offsets([TopicPartition(self.topic, p) for p in saved],
                                             timeout_ms=COMMIT_TIMEOUT_MS)
        except (KafkaError, OSError, ValueError):
            return
        for tp, end in ends.items():
            if end is not None and saved.get(tp.partition, 0) > end:
                print(f"skewcheck sidecar: partition {tp.partition} of {self.topic} ends at {end}, before "
                      f"the saved offset {saved[tp.partition]}; reading it from the committed offset",
                      flush=True)
                with self.state.lock:
                    self.state.positions.pop(tp.partition, None)

    # --- health ---------------------------------------------------------------------------------

    def _after_poll(self, now: float, got_records: bool) -> None:
        from kafka.errors import KafkaError

        state = self.state
        lag: dict[int, int] = {}
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            position = state.positions.get(tp.partition)
            if end is not None and position is not None:
                lag[tp.partition] = max(0, end - position)
        count = None
        if self._assignment_pending:
            try:
                count = len(self.consumer.partitions_for_topic(self.topic) or ())
            except (KafkaError, OSError):
                count = None
        with state.lock:
            state.heartbeat = now
            state.lag.update(lag)
            if self._assignment_pending:
                state.ready = bool(state.assigned)  # positions are resolved once a poll has returned
                state.partition_count = count or state.partition_count
                self._assignment_pending = False
            if got_records:
                state.kafka_error = None
        if self.errors.count > self._trouble_seen:
            self._trouble(self.errors.last or "broker error")
        elif got_records and self._trouble_reported:
            print("skewcheck sidecar: Kafka is reachable again; consuming", flush=True)
            self._trouble_reported = 0.0

    def _trouble(self, message: str) -> None:
        self._trouble_seen = self.errors.count
        with self.state.lock:
            self.state.kafka_error = message
        now = self.clock()
        if now - self._trouble_reported >= TROUBLE_REPORT_S:
            print(printable(f"skewcheck sidecar: Kafka trouble ({message}); retrying, counts kept"), flush=True)
            self._trouble_reported = now

    def close(self) -> None:
        """Final state file and commit, then leave the group (bounded: the broker may be gone)."""
        from kafka.errors import KafkaError

        self.commit(sync=True)
        try:
            self.consumer.close(autocommit=False, timeout_ms=COMMIT_TIMEOUT_MS)
        except (KafkaError, OSError) as exc:
            log.debug("consumer close: %s", exc)

