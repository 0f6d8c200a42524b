"""The consumer-group loop: poll a batch, decode it, tally it, commit its offsets.

One loop for both Kafka clients (`kafka.client: kafka-python | confluent`): it runs on the thin
interface of skewcheck.kafka.client, so everything below holds whichever library reads the broker.

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
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from skewcheck.config import KafkaConfig
from skewcheck.errors import SkewcheckError
from skewcheck.kafka.client import (
    COMMIT_TIMEOUT_MS,
    MAX_POLL_RECORDS,  # noqa: F401  # the bench reads the batch size from here
    SESSION_TIMEOUT_MS,
    BrokerTrouble,
    ConsumerClient,
    PartitionBatch,
)
from skewcheck.report.escape import printable
from skewcheck.sidecar import checkpoint
from skewcheck.sidecar.state import SidecarState

POLL_TIMEOUT_MS = 200  # how long one poll waits for data, so a stop request is seen promptly
COMMIT_INTERVAL_S = 1.0  # bounds what a partition handed to another instance can re-read
# A join with no assignment after twice the session timeout has stalled (kafka-python 3.0 can leave
# a join unfinished for good, seen about once in 30 starts on a busy machine): rejoin afresh.
REBALANCE_STALL_S = 2 * SESSION_TIMEOUT_MS / 1000
TROUBLE_REPORT_S = 10.0  # one line per this while the broker stays unreachable
_CONNECTION_PREFIX = re.compile(r"<KafkaConnection[^>]*>:\s*(Connection lost:\s*)?")  # kafka-python's own framing
CLIENT_LOGGERS = ("kafka", "librdkafka")  # kafka-python's loggers, and where librdkafka's lines go

log = logging.getLogger("skewcheck.sidecar")


class KafkaErrorLog(logging.Handler):
    """Keeps the client's recent errors (both log connection failures instead of raising them)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.recent: deque[str] = deque(maxlen=50)
        self.count = 0

    @property
    def last(self) -> str | None:
        return self.recent[-1] if self.recent else None

    def emit(self, record: logging.LogRecord) -> None:
        self.note(record.getMessage())

    def note(self, message: str) -> None:
        """One error the client reported (a log line, or librdkafka's error callback)."""
        self.recent.append(_CONNECTION_PREFIX.sub("", message))
        self.count += 1

    def since(self, count: int) -> list[str]:
        """The errors logged after the count was `count` (as many as are kept)."""
        return list(self.recent)[-min(self.count - count, len(self.recent)):] if self.count > count else []

    def install(self, verbose: bool = False) -> KafkaErrorLog:
        for name in CLIENT_LOGGERS:
            client_log = logging.getLogger(name)
            client_log.propagate = False  # the sidecar reports broker trouble in its own words
            client_log.addHandler(self if name == "kafka" else logging.NullHandler())
            client_log.setLevel(logging.INFO if verbose else logging.ERROR)
            if verbose:
                shown = logging.StreamHandler()
                shown.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
                client_log.addHandler(shown)
        # librdkafka's errors reach `note` through its error callback (once each), not its log
        return self

    def uninstall(self) -> None:
        logging.getLogger("kafka").removeHandler(self)


def open_consumer(kafka: KafkaConfig, settings: dict[str, Any], *, client_id: str, connect_timeout_s: float,
                  from_beginning: bool, errors: KafkaErrorLog, instance_id: str | None = None) -> ConsumerClient:
    """A member of the consumer group on `kafka.client`, connected, with the topic present; or one
    clear error. `settings` are kafka-python's (skewcheck.kafka.security.client_settings).

    UsageError (exit 2): the broker refused our security settings, the topic does not exist, or
    the client's library is not installed. InconclusiveError (exit 3): no broker answered in time.
    """
    if kafka.client == "confluent":
        from skewcheck.kafka import confluent as library
    else:
        from skewcheck.kafka import kafka_python as library  # type: ignore[no-redef]
    return library.open_client(kafka, settings, client_id=client_id, connect_timeout_s=connect_timeout_s,
                               from_beginning=from_beginning, errors=errors, instance_id=instance_id)


class EventConsumer:
    """Runs the loop for one consumer of the group; `run` returns when `stop` is set."""

    def __init__(self, client: ConsumerClient, state: SidecarState, *, state_path: Any = None,
                 errors: KafkaErrorLog | None = None, clock: Callable[[], float] = time.time,
                 reopen: Callable[[], ConsumerClient] | None = None) -> None:
        self.client = client
        self.reopen = reopen  # makes a fresh client when a group join has stalled
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
        client.subscribe(self._on_assigned, self._on_revoked)

    def run(self, stop: threading.Event) -> None:
        state = self.state
        decode = state.decoder.decode
        while not stop.is_set():
            try:
                batches = self.client.poll(POLL_TIMEOUT_MS / 1000)
            except BrokerTrouble as exc:  # both clients reconnect by themselves; keep the counts
                self._trouble(str(exc))
                stop.wait(1.0)
                continue
            now = self.clock()
            if batches:
                values, offsets = self._unseen(batches)
                if offsets:
                    state.apply(decode(values), offsets, now)
            self._after_poll(now, bool(batches))
            if now - self._last_commit >= COMMIT_INTERVAL_S:
                self.commit()
            since = self._joining_since
            if since is not None and now - since > REBALANCE_STALL_S and self.reopen is not None:
                self._rejoin(now)

    def _rejoin(self, now: float) -> None:
        """Replace a client whose group join never completed (seen with kafka-python 3.0)."""
        self._joining_since = now  # whatever happens next, wait a full period before trying again
        try:
            fresh = self.reopen()  # type: ignore[misc]
        except SkewcheckError as exc:
            self._trouble(str(exc))
            return
        print(f"skewcheck sidecar: no partitions after {REBALANCE_STALL_S:g} s in the group; rejoining",
              flush=True)
        old, self.client = self.client, fresh
        old.close(1.0)
        fresh.subscribe(self._on_assigned, self._on_revoked)

    def _unseen(self, batches: list[PartitionBatch]) -> tuple[list[bytes | None], dict[int, int]]:
        """The values of records this tally does not hold yet, and the offsets just past them."""
        values: list[bytes | None] = []
        offsets: dict[int, int] = {}
        positions = self.state.positions  # written only by this thread
        for batch in batches:  # one partition may come in several runs, oldest first
            start = offsets.get(batch.partition, positions.get(batch.partition, -1))
            if batch.last < start:
                continue  # re-delivered after a commit that did not land: already counted
            if batch.first < start:
                values.extend([v for v, o in zip(batch.values, batch.offsets()) if o >= start])
            else:
                values.extend(batch.values)
            offsets[batch.partition] = batch.last + 1
        return values, offsets

    # --- offsets ------------------------------------------------------------------------------------

    def commit(self, sync: bool = False) -> None:
        """Save the state file (when there is one), then commit what the tally holds."""
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
        if not sync:
            self.client.commit(offsets, self._on_commit)
            return
        try:
            self.client.commit_now(offsets, COMMIT_TIMEOUT_MS / 1000)
        except BrokerTrouble as exc:
            self._commit_failed(exc)
        else:
            self._committed.update(offsets)

    def _on_commit(self, committed: dict[int, int], error: BaseException | None) -> None:
        if error is not None:
            self._commit_failed(error)
        self._committed.update(committed)

    def _commit_failed(self, exc: BaseException) -> None:
        with self.state.lock:
            self.state.commit_failures += 1
        log.debug("offset commit failed: %s", exc)

    # Rebalance callbacks run inside the client's poll: nothing in them may block on the broker.

    def _on_revoked(self, gone: set[int]) -> None:
        self._joining_since = self._joining_since or self.clock()
        self.commit()  # asynchronous: the next owner starts where this tally ends, if it lands in time
        with self.state.lock:
            self.state.assigned = frozenset(self.state.assigned - gone)
            self.state.ready = False
            for p in gone:
                self.state.lag.pop(p, None)

    def _on_assigned(self, assigned: set[int]) -> None:
        self._joining_since = None
        with self.state.lock:
            self.state.assigned = frozenset(assigned)
        self._assignment_pending = True

    def forget_stale_positions(self) -> None:
        """Drop saved offsets beyond a partition's end: the topic was recreated or truncated since."""
        saved = dict(self.state.positions)
        if not saved:
            return
        count = self.client.partition_count()
        gone = sorted(p for p in saved if count is not None and p >= count)
        if gone:  # the topic was recreated with fewer partitions: asking for those would fail
            print(f"skewcheck sidecar: {self.topic} has {count} partitions now; forgetting the saved "
                  f"offsets of partition(s) {', '.join(map(str, gone))}", flush=True)
            with self.state.lock:
                for partition in gone:
                    self.state.positions.pop(partition, None)
        try:
            ends = self.client.end_offsets(sorted(set(saved) - set(gone)), COMMIT_TIMEOUT_MS / 1000)
        except BrokerTrouble:
            return
        for partition, end in ends.items():
            if end is not None and saved.get(partition, 0) > end:
                print(f"skewcheck sidecar: partition {partition} of {self.topic} ends at {end}, before "
                      f"the saved offset {saved[partition]}; reading it from the committed offset",
                      flush=True)
                with self.state.lock:
                    self.state.positions.pop(partition, None)

    # --- health ---------------------------------------------------------------------------------

    def _after_poll(self, now: float, got_records: bool) -> None:
        state = self.state
        client = self.client
        lag: dict[int, int] = {}
        for partition in client.assignment():
            end = client.highwater(partition)
            position = state.positions.get(partition)
            if end is not None and position is not None:
                lag[partition] = max(0, end - position)
        count = client.partition_count() if self._assignment_pending else None
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
        self.commit(sync=True)
        self.client.close(COMMIT_TIMEOUT_MS / 1000)
