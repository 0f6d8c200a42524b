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
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from skewcheck import __version__
from skewcheck.errors import SkewcheckError, UsageError, validation_message
from skewcheck.gate import GateConfig, Judgement, judge
from skewcheck.keytext import parse_key
from skewcheck.routing import make_router
from skewcheck.summary import Summary, from_counts, summarize_counts
from skewcheck.verdict import Check

SCHEMA = "skewcheck.result/1"
MAX_RESULT_BYTES = 256 << 20  # counts of 10^6 shards × a few routers as JSON: far below
# recomputed from the counts by `skewcheck gate`; every other recorded check is carried as it was
BALANCE_RULES = {"min_requests", "max_shard_share", "stddev_ratio", "routing_emulation",
                 "unreached_requests", "shard_failures", "distinct_keys"}


def _known(value: Any) -> Any:
    """JSON has no NaN or infinity: an unknown number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Count = Annotated[int, Field(ge=0)]
Number = Annotated[Optional[float], BeforeValidator(_known)]
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
        },
        "key_f2": summary.key_f2,
        "distinct_keys": summary.distinct_keys,
        "top_keys": [{"key": str(k), "requests": c} for k, c in summary.top_keys],
        "top_keys_error": summary.top_keys_error,
        "failures": None if summary.failures is None else summary.failures.tolist(),
        "unreached": None if summary.unreached is None else summary.unreached.tolist(),
        "summary": summary.to_json(),
        "balance": {name: rb.to_json() for name, rb in judgement.routers.items()},
        "diagnosis": {"kind": judgement.diagnosis.kind, "message": judgement.diagnosis.message,
                      "fix": judgement.diagnosis.fix},
        "verdict": judgement.verdict.to_json(),
        **(extra or {}),
    }
    return ResultDocument.model_validate(_plain(raw)).to_json()


def _plain(value: Any) -> Any:
    """Numbers as JSON has them (numpy scalars to Python, NaN and infinity to null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    return _known(value)


def write_json(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(doc), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


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
    if doc.observed is not None and len(doc.observed.counts) != doc.shards:
        raise UsageError(f"{p}: observed.counts: {len(doc.observed.counts)} counts for {doc.shards} shards")
    if doc.key_f2 is not None and doc.requests and not doc.requests <= doc.key_f2 <= float(doc.requests) ** 2:
        raise UsageError(f"{p}: key_f2 {doc.key_f2} is impossible for {doc.requests} requests "
                         "(it lies between N and N²)")
    if doc.plan is not None and not isinstance(doc.plan.get("rows", []), list):
        raise UsageError(f"{p}: plan.rows is not a list")
    return raw, doc


def summary_from_result(doc: ResultDocument, key_type: str = "int") -> Summary:
    """Rebuild the summary from saved counts, so a result can be judged under other thresholds."""
    def per_shard(values: list[int] | None) -> np.ndarray | None:
        return None if values is None else np.array(values, dtype=np.int64)

    def router_of(name: str, shards: int) -> Any:
        try:
            return make_router(name, shards, key_type)
        except SkewcheckError:
            return None  # a router this version doesn't know: its keys go unnamed

    summary = from_counts(
        doc.primary, {name: np.array(rc.counts, dtype=np.int64) for name, rc in doc.routers.items()},
        key_f2=math.nan if doc.key_f2 is None else doc.key_f2, requests=doc.requests,
        duration_s=doc.duration_s, window_s=doc.window_s,
        top_keys=[(_typed(t.key, key_type), t.requests) for t in doc.top_keys],
        top_keys_error=doc.top_keys_error, distinct_keys=doc.distinct_keys,
        failures=per_shard(doc.failures), unreached=per_shard(doc.unreached), router_of=router_of)
    obs = doc.observed
    if obs is None or not obs.requests:
        return summary
    return replace(
        summary,
        observed=summarize_counts("observed", np.array(obs.counts, dtype=np.int64), key_f2=summary.key_f2,
                                  duration_s=doc.duration_s, run_requests=doc.requests),
        observed_requests=obs.requests,
        observed_mismatches=obs.mismatches,
        mismatch_examples=[(e.key, e.predicted, e.observed) for e in obs.mismatch_examples],
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
    carried = [Check(c.rule, c.status, c.message, c.router, c.shard, c.value, c.limit, c.details)
               for c in doc.verdict.checks if c.rule not in BALANCE_RULES]
    return summary, judge(summary, gate, carried)
