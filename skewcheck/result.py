"""The run result document (`skewcheck.result/1`): written by every run, re-judged by `skewcheck gate`."""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skewcheck import __version__
from skewcheck.errors import SkewcheckError, UsageError, validation_message
from skewcheck.keytext import parse_key
from skewcheck.latency import LatencySummary
from skewcheck.routing import make_router
from skewcheck.gate import GateConfig, Judgement, judge
from skewcheck.summary import Summary, from_counts, summarize_counts
from skewcheck.timeline import heatmap_json, timeline_of
from skewcheck.verdict import Check

SCHEMA = "skewcheck.result/1"
# recomputed from the counts by `skewcheck gate`; every other recorded check is carried as it was
BALANCE_RULES = {"min_requests", "max_shard_share", "stddev_ratio", "routing_emulation",
                 "unreached_requests", "shard_failures", "distinct_keys", "shard_latency",
                 "max_shard_p99_ratio", "sustained_share"}


Count = Annotated[int, Field(ge=0)]


class RouterCounts(BaseModel):
    shards: int = Field(ge=1)
    counts: list[Count]


class TopKey(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: Union[str, int]
    requests: Count


class ObservedCounts(BaseModel):
    counts: list[Count]
    requests: Count = 0
    mismatches: Count = 0
    mismatch_examples: list[dict[str, Any]] = Field(default_factory=list)


class LatencySection(BaseModel):
    """Per-shard latency quantiles (ms) as saved: what `skewcheck gate` re-judges them from."""

    model_config = ConfigDict(extra="allow")

    requests: list[Count]
    p50: list[Optional[float]]
    p95: list[Optional[float]]
    p99: list[Optional[float]]


class HeatmapRow(BaseModel):
    shard: int = Field(ge=0)
    counts: list[Count]


class HeatmapSection(BaseModel):
    model_config = ConfigDict(extra="allow")

    start: float
    column_s: float = Field(gt=0)
    columns: int = Field(ge=1, le=1 << 20)
    shards: int = Field(ge=1)
    rows: list[HeatmapRow]


class ResultDocument(BaseModel):
    """What `skewcheck gate` needs from a saved result; everything else is carried through."""

    model_config = ConfigDict(extra="allow")

    schema_: Literal["skewcheck.result/1"] = Field(alias="schema")
    kind: str = "run"
    requests: int = Field(ge=0)
    duration_s: float = 0.0
    shards: int = Field(ge=1)
    primary: str
    routers: dict[str, RouterCounts]
    key_f2: Optional[float] = None  # Σ c_j² of key counts; null when unknown (judged inconclusive)
    window_s: float = 10.0
    top_keys: list[TopKey] = Field(default_factory=list)
    top_keys_error: int = 0
    distinct_keys: Optional[float] = Field(None, ge=0)
    failures: Optional[list[Count]] = None  # failed requests per shard
    unreached: Optional[list[Count]] = None  # requests that never reached the target, per shard
    observed: Optional[ObservedCounts] = None
    latency: Optional[LatencySection] = None
    heatmap: Optional[HeatmapSection] = None
    verdict: dict[str, Any] = Field(default_factory=dict)


def build_result(
    kind: str,
    summary: Summary,
    judgement: Judgement,
    scenario: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "skewcheck", "version": __version__},
        "scenario": scenario or {},
        "requests": summary.requests,
        "duration_s": summary.duration_s,
        "shards": summary.shards,
        "primary": summary.primary,
        "window_s": summary.window_s,
        "routers": {name: {"shards": rs.shards, "counts": rs.counts.tolist()}
                    for name, rs in summary.routers.items()},
        "observed": None if summary.observed is None else {
            "counts": summary.observed.counts.tolist(),
            "requests": summary.observed_requests,
            "mismatches": summary.observed_mismatches,
            "mismatch_examples": [{"key": str(k), "predicted": p, "observed": o}
                                  for k, p, o in summary.mismatch_examples],
        },
        "key_f2": summary.key_f2,
        "distinct_keys": summary.distinct_keys,
        "top_keys": [{"key": str(k), "requests": c} for k, c in summary.top_keys],
        "top_keys_error": summary.top_keys_error,
        "failures": None if summary.failures is None else summary.failures.tolist(),
        "unreached": None if summary.unreached is None else summary.unreached.tolist(),
        "summary": summary.to_json(),
        "latency": None if summary.latency is None else summary.latency.to_json(),
        # a simulated plan has no clock: no time axis to draw
        "heatmap": None if summary.timeline is None or not summary.duration_s else
        heatmap_json(summary.timeline, summary.primary),
        "balance": {name: rb.to_json() for name, rb in judgement.routers.items()},
        "diagnosis": {"kind": judgement.diagnosis.kind, "message": judgement.diagnosis.message,
                      "fix": judgement.diagnosis.fix},
        "verdict": judgement.verdict.to_json(),
    }
    if extra:
        doc.update(extra)
    return doc


def write_json(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(doc), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: an unknown number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_result(path: str | Path) -> tuple[dict[str, Any], ResultDocument]:
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read result {p}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p} is not a JSON document: {exc}") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise UsageError(f"{p} is not a skewcheck result (expected \"schema\": \"{SCHEMA}\")")
    try:
        doc = ResultDocument.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(validation_message(exc, source=str(p), separator="; ")) from None
    if doc.primary not in doc.routers:
        raise UsageError(f"{p}: primary router {doc.primary!r} has no counts")
    for name, rc in doc.routers.items():
        if len(rc.counts) != rc.shards:
            raise UsageError(f"{p}: routers.{name}: {len(rc.counts)} counts for {rc.shards} shards")
        if sum(rc.counts) != doc.requests:
            raise UsageError(f"{p}: routers.{name}: counts add up to {sum(rc.counts)}, not to the "
                             f"{doc.requests} requests")
    lat = doc.latency
    if lat is not None and any(len(xs) != doc.shards for xs in (lat.requests, lat.p50, lat.p95, lat.p99)):
        raise UsageError(f"{p}: latency: per-shard figures for other than {doc.shards} shards")
    heat = doc.heatmap
    if heat is not None and (heat.shards != doc.shards or any(
            r.shard >= doc.shards or len(r.counts) != heat.columns for r in heat.rows)):
        raise UsageError(f"{p}: heatmap: rows that don't fit {doc.shards} shards × {heat.columns} columns")
    if doc.key_f2 is not None and doc.requests and not doc.requests <= doc.key_f2 <= float(doc.requests) ** 2:
        raise UsageError(f"{p}: key_f2 {doc.key_f2} is impossible for {doc.requests} requests "
                         "(it lies between N and N²)")
    return raw, doc


def summary_from_result(doc: ResultDocument, key_type: str = "int") -> Summary:
    """Rebuild the summary from saved counts, so a result can be judged under other thresholds."""
    def per_shard(values: list[int] | None) -> np.ndarray | None:
        return None if values is None or len(values) != doc.shards else np.array(values, dtype=np.int64)

    def router_of(name: str, shards: int) -> Any:
        try:
            return make_router(name, shards, key_type)
        except SkewcheckError:
            return None  # a router this version doesn't know: its keys go unnamed

    failures, unreached = per_shard(doc.failures), per_shard(doc.unreached)
    load = np.array(doc.routers[doc.primary].counts, dtype=np.int64)
    if doc.observed is not None and doc.observed.requests and len(doc.observed.counts) == doc.shards:
        load = np.array(doc.observed.counts, dtype=np.int64)
    latency = None
    if doc.latency is not None:
        lat = doc.latency
        latency = LatencySummary.from_arrays(lat.requests, lat.p50, lat.p95, lat.p99, load, failures, unreached)
    summary = from_counts(
        doc.primary, {name: np.array(rc.counts, dtype=np.int64) for name, rc in doc.routers.items()},
        key_f2=math.nan if doc.key_f2 is None else doc.key_f2, requests=doc.requests,
        duration_s=doc.duration_s, window_s=doc.window_s,
        top_keys=[(_typed(t.key, key_type), t.requests) for t in doc.top_keys],
        top_keys_error=doc.top_keys_error, distinct_keys=doc.distinct_keys,
        failures=failures, unreached=unreached, router_of=router_of, latency=latency,
        timeline=None if doc.heatmap is None else timeline_of(doc.heatmap.model_dump()))
    obs = doc.observed
    if obs is None or not obs.requests:
        return summary
    return replace(
        summary,
        observed=summarize_counts("observed", np.array(obs.counts, dtype=np.int64), key_f2=summary.key_f2,
                                  duration_s=doc.duration_s, run_requests=doc.requests),
        observed_requests=obs.requests,
        observed_mismatches=obs.mismatches,
        mismatch_examples=[(e.get("key"), e.get("predicted"), e.get("observed")) for e in obs.mismatch_examples],
    )


def _typed(key: str | int, key_type: str) -> int | str:
    if key_type == "int" and isinstance(key, str):
        try:
            return parse_key(key, "int")
        except UsageError:
            return key  # shown as given, routed by nothing
    return key


def rejudge(doc: ResultDocument, gate: GateConfig | None = None, key_type: str = "int") -> tuple[Summary, Judgement]:
    """Recompute the balance rules; carry the other checks (leak, producer) as they were recorded."""
    summary = summary_from_result(doc, key_type)
    carried = [_carried(c) for c in doc.verdict.get("checks", []) if not isinstance(c, dict)
               or c.get("rule") not in BALANCE_RULES]
    return summary, judge(summary, gate, carried)


class _SavedCheck(BaseModel):
    rule: str
    status: Literal["pass", "block", "inconclusive"]
    message: str = ""
    router: Optional[str] = None
    shard: Optional[int] = None
    value: Optional[float] = None
    limit: Optional[float] = None
    details: dict[str, Any] = Field(default_factory=dict)


def _carried(data: Any) -> Check:
    """A recorded non-balance check (leak, producer…), validated; garbage can't pass silently."""
    try:
        c = _SavedCheck.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"a recorded check is malformed: {validation_message(exc, separator='; ')}") from None
    return Check(c.rule, c.status, c.message, c.router, c.shard, c.value, c.limit, c.details)
