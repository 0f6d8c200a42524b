"""Kafka message schemas and decoding: request events and frames in, keys and frames out.

A request event is `{"v":1,"ts":…,"key":"<id>","name":…,"ok":…,"latency_ms":…,"shard":…}`; only
the key is required (an external access log names its key field with `kafka.key_field` and its
observed-shard field with `kafka.shard_field`; every other field is ignored, and the design's
fields are type-checked when present). A frame is a worker's drained tally (`"kind":"frame"`).

Anything else is malformed: counted under one reason from MALFORMED_REASONS and skipped, never
fatal. Decoding is per message (pydantic-core parses and validates in one call); routing and
counting happen per batch, in `skewcheck.sidecar.state`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    create_model,
)

from skewcheck.hashes import INT64_MAX, INT64_MIN
from skewcheck.sketch import F2_BITS

MAX_MESSAGE_BYTES = 1 << 20  # Kafka's default max.message.bytes: larger is no message of ours
MAX_KEY_CHARS = 256  # an ID, not a document: longer keys are refused rather than hashed
MAX_NAME_CHARS = 2048
MAX_TS = 1e11  # unix seconds, year 5138: anything later is a unit mistake (ms, µs)
MAX_LATENCY_MS = 86_400_000.0  # a day
MAX_FRAME_REQUESTS = 10**9  # one worker's frame; more is corruption, and it keeps int64 sums safe
MAX_FRAME_WINDOW_S = 86_400.0
MAX_SOURCE_CHARS = 256
MAX_TOP_KEYS = 4096
F2_BUCKETS = 1 << F2_BITS

# Why a message was skipped: the label values of skewcheck_events_malformed_total{reason}.
NOT_JSON = "not_json"  # not UTF-8 JSON text (random bytes, truncated, lone surrogates)
NOT_OBJECT = "not_object"  # JSON, but an array, string, number or null
OVERSIZED = "oversized_message"  # more than MAX_MESSAGE_BYTES
WRONG_VERSION = "wrong_version"  # "v" present and not 1
MISSING_FIELD = "missing_field"  # no key field (or an empty key); a frame without a required field
WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type
OUT_OF_RANGE = "value_out_of_range"  # huge or negative numbers, NaN, int keys beyond int64
KEY_TOO_LONG = "key_too_long"  # longer than MAX_KEY_CHARS
KEY_NOT_INT = "key_not_int"  # key_type int, and the key is no decimal integer
SHARD_OUT_OF_RANGE = "shard_out_of_range"  # an observed or frame shard outside [0, shards)
UNKNOWN_ROUTER = "unknown_router"  # a frame counts a router this sidecar does not
INCONSISTENT_FRAME = "inconsistent_frame"  # a frame whose counts do not add up to its requests
MALFORMED_REASONS: tuple[str, ...] = (
    NOT_JSON, NOT_OBJECT, OVERSIZED, WRONG_VERSION, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE,
    KEY_TOO_LONG, KEY_NOT_INT, SHARD_OUT_OF_RANGE, UNKNOWN_ROUTER, INCONSISTENT_FRAME,
)

_RANGE_ERRORS = frozenset({
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
    "too_long", "string_too_long",
})
_FRAME_MARK = b'"frame"'  # cheap pre-check: only messages containing it can be frames

Version = Annotated[StrictInt, Field(ge=1, le=1)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_FRAME_REQUESTS)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=MAX_TS)]  # JSON ints are accepted as floats


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class ObservedCounts(_Message):
    shards: dict[StrictStr, Count] = Field(default_factory=dict)
    requests: Count = 0
    mismatches: Count = 0


class FrameMessage(_Message):
    """A worker's drained tally (the design's frame, plus the optional sketch fields)."""

    v: Version
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
    observed: ObservedCounts | None = None
    unroutable: Count = 0  # keys the worker's routers could not take (not in `requests`)


def event_model(key_field: str, shard_field: str | None, key_type: str, shards: int) -> type[BaseModel]:
    """The request-event model for this scenario: its key field, key type and shard count."""
    int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
    if key_type == "int":
        # JSON ints, or decimal text ("key":"12345" as in the design's event); never floats or bools
        key: Any = int64 | Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,19}$")]
    else:
        # an access log may write a numeric ID; its text is the key, as routers define it for ints
        key = Annotated[StrictStr, Field(min_length=1, max_length=MAX_KEY_CHARS)] | int64
    fields: dict[str, Any] = {
        "v": (Version | None, None),
        "ts": (Seconds | None, None),
        "key": (key, Field(alias=key_field)),
        "name": (Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS)] | None, None),
        "ok": (bool | None, Field(None, strict=True)),
        "latency_ms": (Annotated[StrictFloat, Field(ge=0, le=MAX_LATENCY_MS)] | None, None),
    }
    if shard_field:
        shard = Annotated[StrictInt, Field(ge=0, lt=shards)]
        fields["shard"] = (shard | None, Field(None, alias=shard_field))
    return create_model("RequestEvent", __base__=_Message, **fields)


@dataclass
class DecodedBatch:
    """What one poll batch holds once decoded: keys to route, frames to add, skips by reason."""

    keys: list[int | str] = field(default_factory=list)
    observed_keys: list[int | str] = field(default_factory=list)  # events that carried a shard
    observed_shards: list[int] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    malformed: dict[str, int] = field(default_factory=dict)
    messages: int = 0

    def skip(self, reason: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1


class Decoder:
    """Validates raw Kafka values against the scenario (routers, shards, key type, key field)."""

    def __init__(self, router_names: tuple[str, ...] | list[str], shards: int, key_type: str,
                 key_field: str = "key", shard_field: str | None = "shard") -> None:
        if shard_field == key_field:
            shard_field = None  # one field cannot be both; the key wins
        self.router_names = tuple(router_names)
        self.shards = shards
        self.key_type = key_type
        self.key_field = key_field
        self.shard_field = shard_field
        self._event = event_model(key_field, shard_field, key_type, shards)
        # the core validator directly: model_validate_json's wrapper costs ~0.6 µs a message
        self._validate_event = self._event.__pydantic_validator__.validate_json

    def decode(self, values: list[bytes | None]) -> DecodedBatch:
        batch = DecodedBatch(messages=len(values))
        keys = batch.keys
        validate = self._validate_event
        int_keys = self.key_type == "int"
        has_shard = self.shard_field is not None
        for value in values:
            if value is None:
                batch.skip(NOT_JSON)
                continue
            if len(value) > MAX_MESSAGE_BYTES:
                batch.skip(OVERSIZED)
                continue
            if _FRAME_MARK in value and self._try_frame(value, batch):
                continue
            try:
                event = validate(value)
            except ValidationError as exc:
                batch.skip(self._reason(exc))
                continue
            key = event.key
            if int_keys:  # decimal text (the design's "key":"<id>") becomes the int it names
                if type(key) is str:
                    key = int(key)
                    if not INT64_MIN <= key <= INT64_MAX:
                        batch.skip(OUT_OF_RANGE)
                        continue
            elif type(key) is int:
                key = str(key)
            keys.append(key)
            shard = event.shard if has_shard else None
            if shard is not None:
                batch.observed_keys.append(key)
                batch.observed_shards.append(shard)
        return batch

    # --- frames ---------------------------------------------------------------------------------

    def _try_frame(self, value: bytes, batch: DecodedBatch) -> bool:
        """Handle a message that says it is a frame; False hands it on to the event path."""
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError):
            return False  # the event path classifies it
        if not isinstance(doc, dict) or doc.get("kind") != "frame":
            return False
        reason = self.frame_problem(doc)
        if reason is None:
            batch.frames.append(doc)
        else:
            batch.skip(reason)
        return True

    def frame_problem(self, doc: dict[str, Any]) -> str | None:
        """None when `doc` is a frame this sidecar can add; else the malformed reason."""
        try:
            frame = FrameMessage.model_validate(doc)
        except ValidationError as exc:
            return _frame_reason(exc)
        unknown = set(frame.routers) - set(self.router_names)
        if unknown:
            return UNKNOWN_ROUTER
        if set(self.router_names) - set(frame.routers):
            return INCONSISTENT_FRAME  # requests this sidecar could not place under some router
        for counts in frame.routers.values():
            total = 0
            for shard, count in counts.items():
                reason = self._shard_problem(shard)
                if reason:
                    return reason
                total += count
            if total != frame.requests:
                return INCONSISTENT_FRAME
        if frame.key_buckets is not None:
            for bucket in frame.key_buckets:
                if not _is_decimal(bucket):
                    return WRONG_TYPE
                if not 0 <= int(bucket) < F2_BUCKETS:
                    return OUT_OF_RANGE
            if sum(frame.key_buckets.values()) != frame.requests:
                return INCONSISTENT_FRAME
        for key, count in frame.top_keys:
            if len(key) > MAX_KEY_CHARS:
                return KEY_TOO_LONG
            if self.key_type == "int":
                if not _is_decimal(key, signed=True):
                    return KEY_NOT_INT
                if not INT64_MIN <= int(key) <= INT64_MAX:
                    return OUT_OF_RANGE
            if count > frame.requests:
                return INCONSISTENT_FRAME
        obs = frame.observed
        if obs is not None:
            for shard in obs.shards:
                reason = self._shard_problem(shard)
                if reason:
                    return reason
            if obs.requests > frame.requests or sum(obs.shards.values()) > obs.requests \
                    or obs.mismatches > obs.requests:
                return INCONSISTENT_FRAME
        return None

    def _shard_problem(self, shard: str) -> str | None:
        if not _is_decimal(shard):
            return WRONG_TYPE
        if int(shard) >= self.shards:
            return SHARD_OUT_OF_RANGE
        return None

    # --- reasons ----------------------------------------------------------------------------------

    def _reason(self, exc: ValidationError) -> str:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        kind, loc = first["type"], first["loc"]
        if kind == "json_invalid":
            return NOT_JSON
        if not loc or kind == "model_type":
            return NOT_OBJECT
        where = loc[0]
        if kind == "missing":
            return MISSING_FIELD
        if where == "v":
            return WRONG_VERSION
        if where == self.key_field:
            kinds = {e["type"] for e in errors if e["loc"][:1] == (where,)}
            if "string_too_long" in kinds:
                return KEY_TOO_LONG
            if "string_too_short" in kinds:
                return MISSING_FIELD
            if kinds & _RANGE_ERRORS:
                return OUT_OF_RANGE
            return KEY_NOT_INT if self.key_type == "int" else WRONG_TYPE
        if where == self.shard_field and kind in _RANGE_ERRORS:
            return SHARD_OUT_OF_RANGE
        return OUT_OF_RANGE if kind in _RANGE_ERRORS else WRONG_TYPE


def _frame_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    kind, loc = first["type"], first["loc"]
    if kind == "missing":
        return MISSING_FIELD
    if loc[:1] == ("v",):
        return WRONG_VERSION
    return OUT_OF_RANGE if kind in _RANGE_ERRORS else WRONG_TYPE


def _is_decimal(text: str, signed: bool = False) -> bool:
    digits = text[1:] if signed and text.startswith("-") else text
    return 0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()
