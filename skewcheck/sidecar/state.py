"""What one sidecar has counted, and how the counts of several sidecars add up.

`SidecarState` holds the tally (routers × shards × window slots + sketches), the message counters
and the consumed offsets of one consumer; the consumer thread writes it under `lock`, the HTTP
threads read it under the same lock. Its `/state` document is a frame of the whole-run counts
plus the consumer's partitions, so `skewcheck gate --sidecar A --sidecar B` adds the instances of
one consumer group by `Tally.add_frame`, exactly as the Locust master adds its workers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skewcheck.config import KafkaConfig, Scenario
from skewcheck.errors import InconclusiveError, UsageError, validation_message
from skewcheck.frame import Frame, FrameError
from skewcheck.gate import GateConfig, Judgement, judge
from skewcheck.kafka.events import MALFORMED_REASONS, DecodedBatch, Decoder
from skewcheck.limits import MAX_MISMATCH_EXAMPLES
from skewcheck.metrics import Snapshot
from skewcheck.result import build_result
from skewcheck.router_params import RoutingParams
from skewcheck.routing import make_router
from skewcheck.summary import Summary, summarize
from skewcheck.tally import Tally
from skewcheck.verdict import Check

STATE_SCHEMA = "skewcheck.sidecar-state/1"
COVERAGE_RULE = "kafka_coverage"
LIVENESS_STALL_S = 60.0  # a consumer loop silent this long is stuck: /healthz fails


def instance_name() -> str:
    """host:pid — what tells the instances of one consumer group apart in /state and the gate."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class StateView:
    """What one sidecar had counted at one moment, copied out of the live state."""

    now: float
    tally: Tally
    coverage: Check
    info: dict[str, Any]
    lag: dict[int, int]

    def judge(self, scenario: Scenario) -> tuple[Summary, Judgement]:
        summary = summarize(self.tally, now=self.now)
        return summary, judge(summary, scenario.gate, [self.coverage])


class SidecarState:
    def __init__(self, scenario: Scenario, kafka: KafkaConfig, instance: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        names = scenario.routing.router_names
        key_type = scenario.routing.key_type
        routers = [scenario.routing.router(name, scenario.shards) for name in names]
        self.scenario = scenario
        self.kafka = kafka
        self.instance = instance or instance_name()
        self.clock = clock
        self.tally = Tally(routers, window_s=scenario.window_s, clock=clock)
        self.decoder = Decoder(names, scenario.shards, key_type, kafka.key_field, kafka.shard_field)
        self.lock = threading.Lock()
        self.consumed = 0  # every message polled, valid or not
        self.events = 0
        self.frames = 0
        self.malformed: dict[str, int] = {reason: 0 for reason in MALFORMED_REASONS}
        self.positions: dict[int, int] = {}  # partition -> next offset after what the tally holds
        self.assigned: frozenset[int] = frozenset()
        self.lag: dict[int, int] = {}
        self.partition_count: int | None = None
        self.ready = False
        self.heartbeat = clock()
        self.commit_failures = 0
        self.kafka_error: str | None = None  # the last broker error since the last good poll

    # --- the consumer thread ------------------------------------------------------------------------

    def apply(self, batch: DecodedBatch, offsets: dict[int, int], now: float) -> None:
        """Count one decoded poll batch and move the positions past it (one lock for both)."""
        with self.lock:
            tally = self.tally
            if batch.keys:  # decoded keys are checked already: routed once, observed shards too
                timed = any(t is not None for t in batch.latency_ms)
                tally.add_many(batch.keys, ts=now, observed=batch.observed if batch.any_observed else None,
                               failed=np.array(batch.failed, dtype=bool) if any(batch.failed) else None,
                               latency_ms=batch.latency_ms if timed else None)
            for frame in batch.frames:
                tally.add_frame(frame, ts=now)
            self.consumed += batch.messages
            self.events += len(batch.keys)
            self.frames += len(batch.frames)
            for reason, count in batch.malformed.items():
                self.malformed[reason] = self.malformed.get(reason, 0) + count
            self.positions.update(offsets)

    def alive(self, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) - self.heartbeat < LIVENESS_STALL_S

    # --- read side (HTTP threads) --------------------------------------------------------------------
    # Only copying the counts holds the lock (about a millisecond for 10^4 shards); summarising,
    # judging and encoding run outside it, so a scrape never stalls consumption.

    def view(self, now: float | None = None) -> StateView:
        now = self.clock() if now is None else now
        with self.lock:
            self.tally.advance_to(now)
            return StateView(now, self.tally.copy(), coverage_check(
                self.kafka.topic, self.partition_count, [sorted(self.assigned)], dict(self.lag), instances=1),
                self.consumer_info(), dict(self.lag))

    def judge(self, now: float | None = None) -> tuple[Summary, Judgement]:
        return self.view(now).judge(self.scenario)

    def metrics_snapshot(self, now: float | None = None) -> Snapshot:
        view = self.view(now)
        summary, judgement = view.judge(self.scenario)
        info = view.info
        return Snapshot(summary, judgement.verdict, events_consumed=info["consumed"],
                        events_malformed={r: info["malformed"].get(r, 0) for r in MALFORMED_REASONS},
                        consumer_lag={(self.kafka.topic, p): lag for p, lag in view.lag.items()})

    def result(self, now: float | None = None) -> dict[str, Any]:
        """The run result document (`skewcheck.result/1`, kind "sidecar")."""
        view = self.view(now)
        summary, judgement = view.judge(self.scenario)
        return build_result("sidecar", summary, judgement, self.scenario.model_dump(mode="json", warnings=False),
                            {"sidecar": view.info})

    def state_document(self) -> dict[str, Any]:
        """The `/state` document, copied under the lock."""
        with self.lock:
            return self.document()

    def consumer_info(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "bootstrap_servers": self.kafka.bootstrap_servers,
            "topic": self.kafka.topic,
            "group": self.kafka.group_id,
            "consumed": self.consumed,
            "events": self.events,
            "frames": self.frames,
            "malformed": {r: c for r, c in self.malformed.items() if c},
            "partitions": self._partitions(),
            "commit_failures": self.commit_failures,
            "kafka_error": self.kafka_error,
        }

    def _partitions(self) -> dict[str, Any]:
        return {
            "count": self.partition_count,
            "assigned": sorted(self.assigned),
            "positions": {str(p): o for p, o in sorted(self.positions.items())},
            "lag": {str(p): lag for p, lag in sorted(self.lag.items())},
        }

    def document(self) -> dict[str, Any]:
        """The `/state` document (and the checkpoint): whole-run counts as a frame, plus offsets."""
        tally = self.tally
        # counts only: the span is first_ts/last_ts below (a frame's window_s is capped at a day)
        frame = tally.frame(self.instance).model_copy(update={"window_start": self.clock(), "window_s": 0.0})
        if frame.observed is not None:  # the examples are carried once, as mismatch_examples below
            frame = frame.model_copy(update={"observed": frame.observed.model_copy(update={"examples": []})})
        return {
            "schema": STATE_SCHEMA,
            "instance": self.instance,
            "topic": self.kafka.topic,
            "group": self.kafka.group_id,
            "shards": tally.shards,
            "key_type": tally.key_type,
            "router_names": list(tally.router_names),
            "window_s": tally.window_s,
            "first_ts": tally.first_ts,
            "last_ts": tally.last_ts,
            "consumed": self.consumed,
            "events": self.events,
            "frames": self.frames,
            "malformed": dict(self.malformed),
            "partitions": self._partitions(),
            "mismatch_examples": [[str(k), p, o] for k, p, o in tally.mismatch_examples],
            "scenario": self.scenario.model_dump(mode="json", warnings=False),
            "frame": frame.to_json(),
        }

    # --- restart ----------------------------------------------------------------------------------

    def restore(self, raw: dict[str, Any], source: str) -> None:
        """Take back the counts and offsets of a checkpoint written by an earlier process."""
        doc = parse_state(raw, source, UsageError)
        expected = (list(self.tally.router_names), self.tally.shards, self.tally.key_type)
        if (doc.router_names, doc.shards, doc.key_type) != expected:
            raise UsageError(f"{source} counts routers {doc.router_names} over {doc.shards} shards "
                             f"({doc.key_type} keys), not this scenario's {expected[0]} over "
                             f"{expected[1]} ({expected[2]}); remove it or use another --state file")
        if (doc.topic, doc.group) != (self.kafka.topic, self.kafka.group_id):
            raise UsageError(f"{source} holds offsets of topic {doc.topic!r} in group {doc.group!r}, "
                             f"not {self.kafka.topic!r} in {self.kafka.group_id!r}")
        try:
            frame = Frame.parse(doc.frame, self.tally.rules)
        except FrameError as exc:
            raise UsageError(f"{source}: the saved counts are not a valid frame ({exc.reason}: {exc})") from None
        with self.lock:
            self.tally.add_frame(frame, ts=doc.first_ts if doc.first_ts is not None else self.clock())
            if doc.last_ts is not None:
                self.tally.extend_to(doc.last_ts)
            for key, predicted, observed in doc.mismatch_examples[:MAX_MISMATCH_EXAMPLES]:
                self.tally.mismatch_examples.append((_typed_key(key, doc.key_type), predicted, observed))
            self.consumed += doc.consumed
            self.events += doc.events
            self.frames += doc.frames
            for reason, count in doc.malformed.items():
                self.malformed[reason] = self.malformed.get(reason, 0) + count
            self.positions.update({int(p): o for p, o in doc.partitions.positions.items()})


# --- /state documents, read back -------------------------------------------------------------------


class PartitionsDocument(BaseModel):
    count: int | None = None
    assigned: list[int] = Field(default_factory=list)
    positions: dict[str, int] = Field(default_factory=dict)
    lag: dict[str, int] = Field(default_factory=dict)


class StateDocument(BaseModel):
    """A `/state` document as another process reads it (the gate, a restarted sidecar)."""

    model_config = ConfigDict(extra="ignore")

    schema_: Literal["skewcheck.sidecar-state/1"] = Field(alias="schema")
    instance: str
    topic: str
    group: str
    shards: int = Field(ge=1)
    key_type: Literal["int", "str"]
    router_names: list[str] = Field(min_length=1)
    window_s: float = Field(gt=0)
    first_ts: float | None = None
    last_ts: float | None = None
    consumed: int = Field(0, ge=0)
    events: int = Field(0, ge=0)
    frames: int = Field(0, ge=0)
    malformed: dict[str, int] = Field(default_factory=dict)
    partitions: PartitionsDocument = Field(default_factory=PartitionsDocument)
    mismatch_examples: list[tuple[str, int, int]] = Field(default_factory=list)
    scenario: dict[str, Any] = Field(default_factory=dict)
    frame: dict[str, Any]


def parse_state(raw: Any, source: str, error: type[Exception] = InconclusiveError) -> StateDocument:
    if not isinstance(raw, dict) or raw.get("schema") != STATE_SCHEMA:
        raise error(f"{source} is not a skewcheck sidecar state (expected \"schema\": \"{STATE_SCHEMA}\")")
    try:
        return StateDocument.model_validate(raw)
    except ValidationError as exc:
        raise error(validation_message(exc, source=source, separator="; ")) from None


def _routing_params(scenario: dict[str, Any]) -> RoutingParams:
    """The routers' parameters the sidecars' scenario gave (rings, slot maps, ...)."""
    try:
        return RoutingParams.model_validate((scenario.get("routing") or {}).get("params") or {})
    except ValidationError:
        return RoutingParams()  # a state from another version: routers with their defaults


def merge_states(docs: list[StateDocument], sources: list[str]) -> Tally:
    """One tally holding the sum of several instances' counts (same scenario, same consumer group)."""
    base, first_source = docs[0], sources[0]
    for doc, source in zip(docs[1:], sources[1:]):
        if (doc.router_names, doc.shards, doc.key_type) != (base.router_names, base.shards, base.key_type):
            raise UsageError(f"{source} counts {doc.router_names} over {doc.shards} shards but {first_source} "
                             f"counts {base.router_names} over {base.shards}: they run different scenarios")
        if (doc.topic, doc.group) != (base.topic, base.group):
            raise UsageError(f"{source} consumes {doc.topic!r} as group {doc.group!r} but {first_source} "
                             f"consumes {base.topic!r} as {base.group!r}: adding them would count messages twice")
    instances = [doc.instance for doc in docs]
    if len(set(instances)) != len(instances):
        raise UsageError("the same sidecar instance was given twice; its counts would be added twice")
    params = _routing_params(base.scenario)
    routers = [make_router(name, base.shards, base.key_type, params.of(name))
               for name in base.router_names]
    tally = Tally(routers, window_s=base.window_s)
    frames = []
    for doc, source in zip(docs, sources):  # every document is checked before anything is added
        try:
            frames.append(Frame.parse(doc.frame, tally.rules))
        except FrameError as exc:
            raise InconclusiveError(f"{source}: the sidecar's counts are not a valid frame "
                                    f"({exc.reason}: {exc})") from None
    firsts = [d.first_ts for d in docs if d.first_ts is not None]
    lasts = [d.last_ts for d in docs if d.last_ts is not None]
    start = min(firsts) if firsts else time.time()
    for doc, frame in zip(docs, frames):
        tally.add_frame(frame, ts=start)
        for key, predicted, observed in doc.mismatch_examples:
            if len(tally.mismatch_examples) < MAX_MISMATCH_EXAMPLES:
                tally.mismatch_examples.append((_typed_key(key, base.key_type), predicted, observed))
    if lasts:
        tally.extend_to(max(lasts))
    return tally


def coverage_check(topic: str, partition_count: int | None, assigned: Iterable[Iterable[int]],
                   lag: dict[Any, int], instances: int) -> Check:
    """Fail closed on a partial view: every partition of the topic must be consumed by a judged instance."""
    held = set().union(*[set(a) for a in assigned]) if assigned else set()
    behind = sum(lag.values())
    details = {"topic": topic, "partitions": partition_count, "assigned": sorted(held), "lag": behind,
               "instances": instances}
    who = "this sidecar" if instances == 1 else f"the {instances} sidecars judged"
    if not partition_count:
        return Check(COVERAGE_RULE, "inconclusive", f"the partitions of {topic} are not known yet "
                     "(the consumer has not joined its group)", value=0, details=details)
    missing = sorted(set(range(partition_count)) - held)
    if missing:
        listed = ", ".join(map(str, missing))
        holder = "not assigned to this sidecar" if instances == 1 else f"assigned to none of {who}"
        return Check(COVERAGE_RULE, "inconclusive",
                     f"partition(s) {listed} of {topic} are {holder}: the counts are a partial view; "
                     "judge every instance of the consumer group (repeat --sidecar)",
                     value=len(held), limit=partition_count, details=details)
    return Check(COVERAGE_RULE, "pass",
                 f"all {partition_count} partitions of {topic} are consumed by {who} "
                 f"({behind:,} messages behind)", value=len(held), limit=partition_count, details=details)


def _typed_key(text: str, key_type: str) -> int | str:
    if key_type == "int" and text.lstrip("-").isdigit():
        return int(text)
    return text  # an example only: shown as given


def gate_config(doc: StateDocument) -> GateConfig:
    return GateConfig.model_validate((doc.scenario or {}).get("gate") or {})
