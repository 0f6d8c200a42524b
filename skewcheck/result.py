"""The run result document (`skewcheck.result/1`): one model, written by every run, plan and
sidecar, read back by `skewcheck gate`, rendered by every reporter.

`build_result` builds the document through `ResultDocument`, so what is written is exactly what
`load_result` accepts: unknown numbers (NaN) are null, counts are non-negative integers, checks
have a known status. The sections of the edges (plan, leak, producer, sidecar, locust, decision)
are carried as objects; the parts `skewcheck gate` re-judges are typed.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from skewcheck import __version__
from skewcheck.errors import UsageError, validation_message
from skewcheck.gate import Judgement
from skewcheck.report.result_json import plain
from skewcheck.summary import Summary
from skewcheck.timeline import heatmap_json

SCHEMA = "skewcheck.result/1"
MAX_RESULT_BYTES = 256 << 20  # counts of 10^6 shards × a few routers as JSON: far below


def known(value: Any) -> Any:
    """JSON has no NaN or infinity: an unknown number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Count = Annotated[int, Field(ge=0)]
Number = Annotated[Optional[float], BeforeValidator(known)]
Status = Literal["pass", "block", "inconclusive"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class RouterCounts(_Section):
    shards: int = Field(ge=1)
    counts: list[Count]


class TopKey(_Section):
    key: Union[str, int]
    requests: Count


class MismatchExample(_Section):
    key: str
    predicted: int
    observed: int


class ObservedCounts(_Section):
    counts: list[Count]
    requests: Count = 0
    mismatches: Count = 0
    mismatch_examples: list[MismatchExample] = Field(default_factory=list)
    pairs: Optional[list[tuple[Union[str, int], int]]] = None  # (key, X-Shard) sample, for infer


class CheckRecord(_Section):
    rule: str
    status: Status
    message: str = ""
    router: Optional[str] = None
    shard: Optional[int] = None
    value: Number = None
    limit: Number = None
    details: dict[str, Any] = Field(default_factory=dict)


class VerdictRecord(_Section):
    status: Status = "inconclusive"
    exit_code: int = 3
    reasons: list[CheckRecord] = Field(default_factory=list)
    checks: list[CheckRecord] = Field(default_factory=list)


class DiagnosisRecord(_Section):
    kind: str
    message: str
    fix: str = ""


class BalanceRecord(_Section):
    router: str
    status: Status
    share_status: Status
    max_share_interval: tuple[float, float]
    stddev_status: Status
    stddev_null_quantile: Number = None
    stddev_excess: Number = None
    routing_p: Number = None


class HottestShard(_Section):
    shard: int
    requests: Count
    share: float
    share_interval: tuple[float, float]
    qps: float
    window_qps: float


class RouterSummaryRecord(_Section):
    router: str
    shards: int
    requests: Count
    hottest_shard: int
    max_share: float
    expected_max_share: float
    max_share_p: Number = None
    stddev_ratio: float
    stddev_ratio_floor: Number = None
    stddev_ratio_p: Number = None
    window_stddev_ratio: float = 0.0
    window_stddev_ratio_floor: Number = None
    hottest_keys: list[TopKey] = Field(default_factory=list)
    hottest: list[HottestShard] = Field(default_factory=list)


class SummaryRecord(_Section):
    requests: Count
    duration_s: float
    shards: int
    primary: str
    key_f2: Number = None
    key_sum_p2: Number = None
    distinct_keys: Optional[int] = None
    window_s: float = 10.0
    window_requests: Count = 0
    failed: Count = 0
    unreached: Count = 0
    routers: dict[str, RouterSummaryRecord]
    top_keys: list[TopKey] = Field(default_factory=list)
    top_keys_error: Count = 0
    shard_failures: list[dict[str, Any]] = Field(default_factory=list)
    observed: Optional[dict[str, Any]] = None


class LatencySection(_Section):
    """Per-shard latency quantiles (ms) as saved: what `skewcheck gate` re-judges them from."""

    requests: list[Count]
    p50: list[Optional[float]]
    p95: list[Optional[float]]
    p99: list[Optional[float]]


class HeatmapRow(_Section):
    shard: int = Field(ge=0)
    counts: list[Count]


class HeatmapSection(_Section):
    start: float
    column_s: float = Field(gt=0)
    columns: int = Field(ge=1, le=1 << 20)
    shards: int = Field(ge=1)
    rows: list[HeatmapRow]


class ResultDocument(_Section):
    """The whole document. `skewcheck gate` re-judges it from the typed counts and keys."""

    schema_: Literal["skewcheck.result/1"] = Field(alias="schema")
    kind: str = "run"
    created: str = ""
    tool: dict[str, Any] = Field(default_factory=dict)
    scenario: dict[str, Any] = Field(default_factory=dict)
    requests: Count
    duration_s: float = 0.0
    shards: int = Field(ge=1)
    primary: str
    window_s: float = 10.0
    routers: dict[str, RouterCounts]
    observed: Optional[ObservedCounts] = None
    key_f2: Number = None  # Σ c_j² of key counts; null when unknown (judged inconclusive)
    distinct_keys: Number = Field(None, ge=0)
    top_keys: list[TopKey] = Field(default_factory=list)
    top_keys_error: Count = 0
    failures: Optional[list[Count]] = None  # failed requests per shard
    unreached: Optional[list[Count]] = None  # requests that never reached the target, per shard
    latency: Optional[LatencySection] = None
    heatmap: Optional[HeatmapSection] = None
    summary: Optional[SummaryRecord] = None
    balance: dict[str, BalanceRecord] = Field(default_factory=dict)
    diagnosis: Optional[DiagnosisRecord] = None
    verdict: VerdictRecord = Field(default_factory=VerdictRecord)
    plan: Optional[dict[str, Any]] = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


def build_result(
    kind: str,
    summary: Summary,
    judgement: Judgement,
    scenario: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The result document of a run, plan or sidecar, validated by the model that reads it back."""
    raw: dict[str, Any] = {
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
            "pairs": [[str(k), s] for k, s in summary.observed_pairs],
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
        "router_labels": router_labels(list(summary.routers), scenario or {}),
        **(extra or {}),
    }
    return ResultDocument.model_validate(plain(raw)).to_json()


def router_labels(names: list[str], scenario: dict[str, Any]) -> dict[str, str]:
    """Each router as reports name it, with the parameters the scenario gave it."""
    from skewcheck.router_params import canonical_params, label, parse_params

    given = (scenario.get("routing") or {}).get("params") or {}
    labels = {}
    for name in names:
        raw = given.get(name, given.get(name.replace("-", "_")))
        try:
            labels[name] = label(name, canonical_params(parse_params(name, raw)))
        except UsageError:
            labels[name] = name  # a result from elsewhere: name it as it came
    return labels


def load_result(path: str | Path) -> tuple[dict[str, Any], ResultDocument]:
    """A saved result, checked as `skewcheck gate` needs it; UsageError (exit 2) otherwise."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_RESULT_BYTES:
            raise UsageError(f"{p} is larger than {MAX_RESULT_BYTES >> 20} MiB; not a skewcheck result")
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read result {p}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{p} is not a JSON document: {exc}") from None
    except RecursionError:
        raise UsageError(f"{p} is nested too deeply to be a skewcheck result") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        raise UsageError(f"{p} is not a skewcheck result (expected \"schema\": \"{SCHEMA}\")")
    try:
        doc = ResultDocument.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"{p} is a malformed skewcheck result: "
                         f"{validation_message(exc, separator='; ')}") from None
    except RecursionError:
        raise UsageError(f"{p} is nested too deeply to be a skewcheck result") from None
    if doc.primary not in doc.routers:
        raise UsageError(f"{p}: primary router {doc.primary!r} has no counts")
    for name, rc in doc.routers.items():
        if len(rc.counts) != rc.shards:
            raise UsageError(f"{p}: routers.{name}: {len(rc.counts)} counts for {rc.shards} shards")
        if sum(rc.counts) != doc.requests:
            raise UsageError(f"{p}: routers.{name}: counts add up to {sum(rc.counts)}, not to the "
                             f"{doc.requests} requests")
    for name in ("failures", "unreached"):
        values = getattr(doc, name)
        if values is not None and len(values) != doc.shards:
            raise UsageError(f"{p}: {name}: {len(values)} counts for {doc.shards} shards")
    lat = doc.latency
    if lat is not None and any(len(xs) != doc.shards for xs in (lat.requests, lat.p50, lat.p95, lat.p99)):
        raise UsageError(f"{p}: latency: per-shard figures for other than {doc.shards} shards")
    heat = doc.heatmap
    if heat is not None and (heat.shards != doc.shards or any(
            r.shard >= doc.shards or len(r.counts) != heat.columns for r in heat.rows)):
        raise UsageError(f"{p}: heatmap: rows that don't fit {doc.shards} shards × {heat.columns} columns")
    if doc.observed is not None and len(doc.observed.counts) != doc.shards:
        raise UsageError(f"{p}: observed.counts: {len(doc.observed.counts)} counts for {doc.shards} shards")
    if doc.key_f2 is not None and doc.requests and not doc.requests <= doc.key_f2 <= float(doc.requests) ** 2:
        raise UsageError(f"{p}: key_f2 {doc.key_f2} is impossible for {doc.requests} requests "
                         "(it lies between N and N²)")
    if doc.plan is not None and not isinstance(doc.plan.get("rows", []), list):
        raise UsageError(f"{p}: plan.rows is not a list")
    return raw, doc
