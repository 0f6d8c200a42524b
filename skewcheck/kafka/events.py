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
from typing import Annotated, Any

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

from skewcheck.frame import (
    INCONSISTENT_FRAME,
    KEY_NOT_INT,
    KEY_TOO_LONG,
    MISSING_FIELD,
    OUT_OF_RANGE,
    RANGE_ERRORS,
    SHARD_OUT_OF_RANGE,
    UNKNOWN_ROUTER,
    WRONG_TYPE,
    WRONG_VERSION,
    Frame,
    FrameError,
    FrameRules,
)
from skewcheck.keytext import INT64_MAX, INT64_MIN
from skewcheck.limits import (
    MAX_KEY_CHARS,
    MAX_LATENCY_MS,
    MAX_MESSAGE_BYTES,
    MAX_NAME_CHARS,
    MAX_TS,
)

# Why a message was skipped: the label values of skewcheck_events_malformed_total{reason}.
NOT_JSON = "not_json"  # not UTF-8 JSON text (random bytes, truncated, lone surrogates)
NOT_OBJECT = "not_object"  # JSON, but an array, string, number or null
OVERSIZED = "oversized_message"  # more than MAX_MESSAGE_BYTES
# and the frame's: wrong_version ("v" not 1), missing_field (no key, an empty key, a frame without
# a required field), wrong_type, value_out_of_range (huge or negative numbers, NaN, ints beyond
# int64), key_too_long, key_not_int, shard_out_of_range, unknown_router (a frame counting a router
# this sidecar does not), inconsistent_frame (counts that do not add up)
MALFORMED_REASONS: tuple[str, ...] = (
    NOT_JSON, NOT_OBJECT, OVERSIZED, WRONG_VERSION, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE,
    KEY_TOO_LONG, KEY_NOT_INT, SHARD_OUT_OF_RANGE, UNKNOWN_ROUTER, INCONSISTENT_FRAME,
)
_FRAME_MARK = b'"frame"'  # cheap pre-check: only messages containing it can be frames

Version = Annotated[StrictInt, Field(ge=1, le=1)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=MAX_TS)]  # JSON ints are accepted as floats


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


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
    """What one poll batch holds once decoded: keys to route (with the shard each event reported,
    None where it reported none), frames to add, and the skipped messages by reason."""

    keys: list[int | str] = field(default_factory=list)
    observed: list[int | None] = field(default_factory=list)  # aligned with keys
    failed: list[bool] = field(default_factory=list)  # aligned with keys: the event said ok: false
    latency_ms: list[float | None] = field(default_factory=list)  # aligned with keys; None: not given
    frames: list[Frame] = field(default_factory=list)
    malformed: dict[str, int] = field(default_factory=dict)
    messages: int = 0

    def skip(self, reason: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1

    @property
    def observed_keys(self) -> list[int | str]:
        return [k for k, s in zip(self.keys, self.observed) if s is not None]

    @property
    def observed_shards(self) -> list[int]:
        return [s for s in self.observed if s is not None]

    @property
    def any_observed(self) -> bool:
        return any(s is not None for s in self.observed)


class Decoder:
    """Validates raw Kafka values against the scenario (routers, shards, key type, key field)."""

    def __init__(self, router_names: tuple[str, ...] | list[str], shards: int, key_type: str,
                 key_field: str = "key", shard_field: str | None = "shard") -> None:
        if shard_field == key_field:
            shard_field = None  # one field cannot be both; the key wins
        self.router_names = tuple(router_names)
        self.shards = shards
        self.key_type = key_type
        self.rules = FrameRules(self.router_names, shards, key_type)
        self.key_field = key_field
        self.shard_field = shard_field
        self._event = event_model(key_field, shard_field, key_type, shards)
        # the core validator directly: model_validate_json's wrapper costs ~0.6 µs a message
        self._validate_event = self._event.__pydantic_validator__.validate_json

    def decode(self, values: list[bytes | None]) -> DecodedBatch:
        batch = DecodedBatch(messages=len(values))
        keys, observed, failed, latency = batch.keys, batch.observed, batch.failed, batch.latency_ms
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
            observed.append(event.shard if has_shard else None)
            failed.append(event.ok is False)
            latency.append(event.latency_ms)
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
        try:
            batch.frames.append(Frame.parse(doc, self.rules))
        except FrameError as exc:
            batch.skip(exc.reason)
        return True

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
            if kinds & RANGE_ERRORS:
                return OUT_OF_RANGE
            return KEY_NOT_INT if self.key_type == "int" else WRONG_TYPE
        if where == self.shard_field and kind in RANGE_ERRORS:
            return SHARD_OUT_OF_RANGE
        return OUT_OF_RANGE if kind in RANGE_ERRORS else WRONG_TYPE
