"""The frame: a tally's counts as one message, the one shape in which counts travel.

A Locust worker sends frames to its master, a Locust process publishes them to Kafka, a sidecar
serves its whole-run counts as one at `/state` and keeps one in its state file. All of them
write a frame with `Tally.frame()` and read one with `Frame.parse(raw, rules)`, which checks
everything `Tally.add_frame` relies on — types, bounds, shards, routers, sums — so a frame that
parsed is added without a further check and can never fail halfway:

    {"v":1,"kind":"frame","source":"<worker id>","window_start":<unix s>,"window_s":1.0,
     "requests":<int>,"routers":{"mod":{"<shard>":<count>,...},...},"top_keys":[["<key>",<count>],...],
     "top_error":<int>,"key_buckets":{"<bucket>":<count>},"distinct":{"<register>":<rank>},
     "failures":{"<shard>":<count>},"unreached":{"<shard>":<count>},"unroutable":<int>,
     "observed":{"shards":{"<shard>":<count>},"requests":<int>,"mismatches":<int>,
                 "examples":[["<key>",<predicted>,<observed>],...]},
     "latency":{"relative_error":0.02,"min_key":-116,"shards":{"<shard>":[<first bucket>,<count>,...]}}}

`latency` (optional) is each shard's DDSketch (skewcheck.latency): one run of bucket counts from
its first non-empty bucket on; a frame whose sketch has other parameters is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from skewcheck.keytext import INT64_MAX, INT64_MIN
from skewcheck.latency import BUCKETS as LATENCY_BUCKETS
from skewcheck.latency import MIN_KEY as LATENCY_MIN_KEY
from skewcheck.latency import RELATIVE_ERROR
from skewcheck.limits import (
    MAX_FRAME_PAIRS,
    MAX_FRAME_REQUESTS,
    MAX_FRAME_WINDOW_S,
    MAX_KEY_CHARS,
    MAX_MISMATCH_EXAMPLES,
    MAX_SOURCE_CHARS,
    MAX_TOP_KEYS,
    MAX_TS,
)
from skewcheck.sketch import F2_BUCKETS, DistinctKeys

# Why a frame was refused (the sidecar counts them as skewcheck_events_malformed_total{reason}).
MISSING_FIELD = "missing_field"
WRONG_VERSION = "wrong_version"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "value_out_of_range"
KEY_TOO_LONG = "key_too_long"
KEY_NOT_INT = "key_not_int"
SHARD_OUT_OF_RANGE = "shard_out_of_range"
UNKNOWN_ROUTER = "unknown_router"
INCONSISTENT_FRAME = "inconsistent_frame"

RANGE_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
    "too_long", "string_too_long",
})

Count = Annotated[StrictInt, Field(ge=0, le=MAX_FRAME_REQUESTS)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=MAX_TS)]  # JSON ints are accepted as floats
Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


class FrameError(ValueError):
    """A frame that does not fit: `reason` is one of the reasons above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FrameRules:
    """What a frame must fit to be added to a tally: its routers, shard count and key type."""

    router_names: tuple[str, ...]
    shards: int
    key_type: str


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class ObservedPart(_Part):
    """Shards the target reported (X-Shard), and where they disagreed with the primary router."""

    shards: dict[StrictStr, Count] = Field(default_factory=dict)
    requests: Count = 0
    mismatches: Count = 0
    examples: Annotated[list[tuple[StrictStr, StrictInt, Int64]],
                        Field(max_length=MAX_MISMATCH_EXAMPLES)] = Field(default_factory=list)
    # a sample of (key, shard the target reported), for `skewcheck infer`
    pairs: Annotated[list[tuple[StrictStr, Int64]], Field(max_length=MAX_FRAME_PAIRS)] | None = None


class LatencyPart(_Part):
    """Per-shard latency sketches: {"<shard>": [first bucket, count, …]}."""

    relative_error: StrictFloat
    min_key: StrictInt  # the DDSketch key of bucket 0
    shards: dict[StrictStr, Annotated[list[Count], Field(min_length=2, max_length=LATENCY_BUCKETS + 1)]] = \
        Field(default_factory=dict)

    @classmethod
    def of(cls, shards: dict[str, list[int]]) -> LatencyPart:
        return cls.model_construct(relative_error=RELATIVE_ERROR, min_key=LATENCY_MIN_KEY, shards=shards)


class Frame(_Part):
    v: Annotated[StrictInt, Field(ge=1, le=1)]  # JSON true is no version
    kind: Literal["frame"]
    source: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SOURCE_CHARS)]
    window_start: Seconds
    window_s: Annotated[StrictFloat, Field(ge=0, le=MAX_FRAME_WINDOW_S)]
    requests: Count
    routers: dict[StrictStr, dict[StrictStr, Count]]
    top_keys: Annotated[list[tuple[StrictStr, Count]], Field(max_length=MAX_TOP_KEYS)] = Field(
        default_factory=list)
    top_error: Count = 0
    key_buckets: dict[StrictStr, Count] | None = None
    distinct: dict[StrictStr, Annotated[StrictInt, Field(ge=1, le=DistinctKeys.MAX_RANK)]] | None = None
    failures: dict[StrictStr, Count] = Field(default_factory=dict)  # failed requests per shard
    unreached: dict[StrictStr, Count] = Field(default_factory=dict)  # never reached (not in requests)
    observed: ObservedPart | None = None
    unroutable: Count = 0  # keys no router could take (not in `requests`)
    latency: LatencyPart | None = None  # per-shard latency sketches

    _rules: FrameRules | None = PrivateAttr(None)

    @classmethod
    def parse(cls, raw: Any, rules: FrameRules) -> Frame:
        """A frame from its JSON object, checked against `rules`; FrameError if it doesn't fit."""
        if isinstance(raw, Frame):
            if raw._rules != rules:
                raise FrameError(INCONSISTENT_FRAME, "the frame was counted for other routers or shards")
            return raw
        try:
            frame = cls.model_validate(raw, strict=False)
        except ValidationError as exc:
            raise _structure_error(exc) from None
        _check(frame, rules)
        frame._rules = rules
        return frame

    @classmethod
    def of_counts(cls, rules: FrameRules, **fields: Any) -> Frame:
        """A frame a tally writes: valid by construction, so not validated again."""
        frame = cls.model_construct(v=1, kind="frame", **fields)
        frame._rules = rules
        return frame

    @property
    def rules(self) -> FrameRules | None:
        return self._rules

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    # --- read by Tally.add_frame (only on a parsed frame: every index is a valid shard) --------

    def shard_counts(self, router: str, shards: int) -> np.ndarray | None:
        per_shard = self.routers.get(router)
        return None if per_shard is None else dense(per_shard, shards)

    def bucket_counts(self) -> np.ndarray:
        return dense(self.key_buckets or {}, F2_BUCKETS)

    def registers(self) -> np.ndarray:
        """The HLL registers of the frame's keys."""
        return dense(self.distinct or {}, F2_BUCKETS).astype(np.uint8)

    def typed_top_keys(self) -> list[tuple[int | str, int]]:
        as_int = self._rules is not None and self._rules.key_type == "int"
        return [(int(k) if as_int else k, c) for k, c in self.top_keys]

    def typed_examples(self) -> list[tuple[int | str, int, int]]:
        if self.observed is None:
            return []
        as_int = self._rules is not None and self._rules.key_type == "int"
        return [(int(k) if as_int else k, p, o) for k, p, o in self.observed.examples]

    def typed_pairs(self) -> list[tuple[int | str, int]]:
        if self.observed is None or not self.observed.pairs:
            return []
        as_int = self._rules is not None and self._rules.key_type == "int"
        return [(int(k) if as_int else k, s) for k, s in self.observed.pairs]


def dense(sparse: dict[str, int], size: int) -> np.ndarray:
    """A sparse {"index": count} object (validated) as a dense int64 array."""
    out = np.zeros(size, dtype=np.int64)
    if sparse:
        np.add.at(out, np.fromiter(map(int, sparse), dtype=np.int64, count=len(sparse)),
                  np.fromiter(sparse.values(), dtype=np.int64, count=len(sparse)))
    return out


def sparse(counts: np.ndarray) -> dict[str, int]:
    """Non-zero entries as a JSON object (frames stay small when few shards or buckets are hit)."""
    nz = np.flatnonzero(counts)
    return dict(zip(map(str, nz.tolist()), counts[nz].tolist()))


# --- checks ---------------------------------------------------------------------------------------


def _structure_error(exc: ValidationError) -> FrameError:
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    kind, loc = first["type"], tuple(first["loc"])
    where = ".".join(map(str, loc)) or "frame"
    if kind == "missing":
        reason = MISSING_FIELD
    elif loc[:1] == ("v",):
        reason = WRONG_VERSION
    else:
        reason = OUT_OF_RANGE if kind in RANGE_ERRORS else WRONG_TYPE
    return FrameError(reason, f"{where}: {first['msg']}")


def _check(frame: Frame, rules: FrameRules) -> None:
    unknown = sorted(set(frame.routers) - set(rules.router_names))
    if unknown:
        raise FrameError(UNKNOWN_ROUTER, f"the frame counts router(s) {', '.join(unknown)}, not "
                         f"counted here ({', '.join(rules.router_names)})")
    missing = [n for n in rules.router_names if n not in frame.routers]
    if missing and frame.requests:
        raise FrameError(INCONSISTENT_FRAME, f"the frame has no counts for router {missing[0]}")
    for name, counts in frame.routers.items():
        _check_shards(counts, rules.shards, f"router {name}")
        if sum(counts.values()) != frame.requests:
            raise FrameError(INCONSISTENT_FRAME, f"router {name}: shard counts don't add up to the "
                             f"{frame.requests} requests")
    if frame.key_buckets is not None:
        for bucket in frame.key_buckets:
            if not _is_decimal(bucket):
                raise FrameError(WRONG_TYPE, f"key bucket {bucket!r} is not a number")
            if int(bucket) >= F2_BUCKETS:
                raise FrameError(OUT_OF_RANGE, f"key bucket {bucket} is outside 0..{F2_BUCKETS - 1}")
        if sum(frame.key_buckets.values()) != frame.requests:
            raise FrameError(INCONSISTENT_FRAME, "key bucket counts don't add up to the requests")
    if frame.distinct is not None:
        for register in frame.distinct:
            if not _is_decimal(register):
                raise FrameError(WRONG_TYPE, f"distinct-key register {register!r} is not a number")
            if int(register) >= F2_BUCKETS:
                raise FrameError(OUT_OF_RANGE, f"distinct-key register {register} is outside "
                                 f"0..{F2_BUCKETS - 1}")
    _check_shards(frame.failures, rules.shards, "failures")
    if sum(frame.failures.values()) > frame.requests:
        raise FrameError(INCONSISTENT_FRAME, "more failed requests than requests")
    _check_shards(frame.unreached, rules.shards, "unreached")
    for key, count in frame.top_keys:
        _check_key(key, rules.key_type, "top key")
        if count > frame.requests:
            raise FrameError(INCONSISTENT_FRAME, f"top key count {count} exceeds the {frame.requests} requests")
    if frame.latency is not None:
        _check_latency(frame.latency, frame.requests, rules.shards)
    obs = frame.observed
    if obs is not None:
        _check_shards(obs.shards, rules.shards, "observed")
        if obs.requests > frame.requests or sum(obs.shards.values()) > obs.requests \
                or obs.mismatches > obs.requests:
            raise FrameError(INCONSISTENT_FRAME, "observed counts exceed the requests")
        for key, predicted, _observed in obs.examples:
            _check_key(key, rules.key_type, "mismatch example")
            if not 0 <= predicted < rules.shards:
                raise FrameError(SHARD_OUT_OF_RANGE, f"mismatch example: predicted shard {predicted} "
                                 f"is outside 0..{rules.shards - 1}")
        for key, shard in obs.pairs or ():
            _check_key(key, rules.key_type, "observed pair")
            if shard < 0:
                raise FrameError(SHARD_OUT_OF_RANGE, f"observed pair: shard {shard} is negative")
        if len(obs.pairs or ()) > obs.requests:
            raise FrameError(INCONSISTENT_FRAME, "observed pairs exceed the observed requests")


def _check_latency(part: LatencyPart, requests: int, shards: int) -> None:
    if part.relative_error != RELATIVE_ERROR or part.min_key != LATENCY_MIN_KEY:
        raise FrameError(INCONSISTENT_FRAME, f"latency sketches with relative error {part.relative_error:g} "
                         f"from key {part.min_key}; this tally keeps {RELATIVE_ERROR:g} from key {LATENCY_MIN_KEY}")
    _check_shards(part.shards, shards, "latency")
    total = 0
    for shard, run in part.shards.items():
        if run[0] + len(run) - 1 > LATENCY_BUCKETS:
            raise FrameError(OUT_OF_RANGE, f"latency: shard {shard}'s buckets run past {LATENCY_BUCKETS - 1}")
        total += sum(run) - run[0]
    if total > requests:
        raise FrameError(INCONSISTENT_FRAME, "more latencies than requests")


def _check_shards(counts: dict[str, int], shards: int, what: str) -> None:
    for shard in counts:
        if not _is_decimal(shard):
            raise FrameError(WRONG_TYPE, f"{what}: shard {shard!r} is not a number")
        if int(shard) >= shards:
            raise FrameError(SHARD_OUT_OF_RANGE, f"{what}: shard {shard} is outside 0..{shards - 1}")


def _check_key(key: str, key_type: str, what: str) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise FrameError(KEY_TOO_LONG, f"{what} longer than {MAX_KEY_CHARS} characters")
    if key_type == "int":
        if not _is_decimal(key, signed=True):
            raise FrameError(KEY_NOT_INT, f"{what} {key[:40]!r} is not an integer")
        if not INT64_MIN <= int(key) <= INT64_MAX:
            raise FrameError(OUT_OF_RANGE, f"{what} {key} is outside the signed 64-bit range")


def _is_decimal(text: str, signed: bool = False) -> bool:
    digits = text[1:] if signed and text.startswith("-") else text
    return 0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()
