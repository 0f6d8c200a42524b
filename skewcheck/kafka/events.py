"""Kafka message schemas and decoding: request events and frames in, keys and frames out.

A request event is `{"v":1,"ts":…,"key":"<id>","name":…,"ok":…,"latency_ms":…,"shard":…}`; only
the key is required (an external access log names its key field with `kafka.key_field` and its
observed-shard field with `kafka.shard_field`; every other field is ignored, and the design's
fields are type-checked when present). A frame is a worker's drained tally (`"kind":"frame"`).

Anything else is malformed: counted under one reason from MALFORMED_REASONS and skipped, never
fatal. Routing and counting happen per batch, in `skewcheck.sidecar.state`.

Two decoders, one set of rules:
- the reference model (`event_model`, pydantic) defines what a valid event is and, for every
  message it refuses, why;
- the fast path decodes a poll batch with msgspec into typed structs (the same bounds), in C,
  chunk by chunk, and checks int keys given as decimal text for the whole batch at once.
Every message the fast path refuses, or that it could accept where the reference would not
(bytes that are not UTF-8, JSON nested deeper than pydantic-core parses), goes through the
reference model, which decides. So the fast path only ever accepts what the reference accepts,
with the same values (tests/test_sidecar_messages.py checks both on fuzzed batches), every
message is counted once — as a key, a frame or a malformed reason — and a key that was
accepted is one the tally can route.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional, Union

import numpy as np
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
FAST_CHUNK = 1024  # messages per fast decode call: an odd message sends only its chunk the slow way
# pydantic-core refuses JSON nested deeper than 200 levels, msgspec parses deeper: a message with
# more brackets than this is decided by the reference model (an event has one or two)
NESTING_SCREEN = 128
_DEEP_BYTES = 2 * NESTING_SCREEN  # a shorter message cannot hold that many bracket pairs
# pydantic-core refuses a JSON number of more than 4,300 digits (Python's int limit), msgspec
# skips one in a field it ignores: a message holding such a digit run is the reference's too
LONG_NUMBER_DIGITS = 4301
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % LONG_NUMBER_DIGITS)
_DECIMAL_KEY = r"-?[0-9]{1,19}"  # an int key written as text, as the reference model's pattern
_ONE_DECIMAL_KEY = re.compile(_DECIMAL_KEY)
_DECIMAL_KEYS = re.compile(rf"{_DECIMAL_KEY}(?:\n{_DECIMAL_KEY})*")  # many, one per line

Version = Annotated[StrictInt, Field(ge=1, le=1)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=MAX_TS)]  # JSON ints are accepted as floats


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


def event_model(key_field: str, shard_field: str | None, key_type: str, shards: int) -> type[BaseModel]:
    """The request-event model for this scenario: its key field, key type and shard count."""
    int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
    if key_type == "int":
        # JSON ints, or decimal text ("key":"12345" as in the design's event); never floats or bools
        key: Any = int64 | Annotated[str, StringConstraints(strict=True, pattern=rf"^{_DECIMAL_KEY}$")]
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


def fast_event_type(key_field: str, shard_field: str | None, key_type: str, shards: int) -> type | None:
    """The msgspec struct of the fast path: `event_model`'s fields and bounds, except that an int
    key given as text is any str here (the batch checks them together); None when the key or
    shard field has the name of another field (both rules on one value: the reference decides)."""
    import msgspec  # comes with the kafka extra; `gate --sidecar` reads sidecar states without it
    from msgspec import Meta

    names = ["v", "ts", key_field, "name", "ok", "latency_ms"] + ([shard_field] if shard_field else [])
    if len(set(names)) != len(names):
        return None
    int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]  # msgspec ints are strict: no bools, no floats
    key: Any = Union[int64, str] if key_type == "int" else \
        Union[int64, Annotated[str, Meta(min_length=1, max_length=MAX_KEY_CHARS)]]
    fields: list[tuple[Any, ...]] = [
        ("key", key, msgspec.field(name=key_field)),
        ("v", Optional[Annotated[int, Meta(ge=1, le=1)]], None),
        ("ts", Optional[Annotated[float, Meta(ge=0, le=MAX_TS)]], None),  # JSON ints too, as floats
        ("name", Optional[Annotated[str, Meta(max_length=MAX_NAME_CHARS)]], None),
        ("ok", Optional[bool], None),
        ("latency_ms", Optional[Annotated[float, Meta(ge=0, le=MAX_LATENCY_MS)]], None),
    ]
    if shard_field:
        fields.append(("shard", Optional[Annotated[int, Meta(ge=0, lt=shards)]],
                       msgspec.field(default=None, name=shard_field)))
    return msgspec.defstruct("FastRequestEvent", fields, gc=False)


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
        return self.observed.count(None) != len(self.observed)  # in C: this runs once per poll batch


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
        fast = fast_event_type(key_field, shard_field, key_type, shards)
        if fast is None:
            self._fast = None
        else:
            import msgspec

            self._fast = msgspec.json.Decoder(fast).decode
            # what the fast path may raise on any input: each sends the message to the reference
            self._refusals: tuple[type[BaseException], ...] = (
                msgspec.DecodeError, RecursionError, ValueError, OverflowError, UnicodeError)

    def decode(self, values: list[bytes | None]) -> DecodedBatch:
        """One poll batch: the fast path, chunk by chunk; what it refuses, the reference way."""
        if self._fast is None:
            return self.decode_each(values)
        batch = DecodedBatch(messages=len(values))
        accepted: list[bytes] = []
        events: list[Any] = []
        for lo in range(0, len(values), FAST_CHUNK):
            chunk = values[lo:lo + FAST_CHUNK] if len(values) > FAST_CHUNK else values
            decoded = self._fast_chunk(chunk)
            if decoded is None:
                self._screen_each(chunk, batch, accepted, events)
            else:
                accepted.extend(chunk)  # type: ignore[arg-type]  # no None got this far
                events.extend(decoded)
        if events:
            self._add_events(accepted, events, batch)
        return batch

    def decode_each(self, values: list[bytes | None]) -> DecodedBatch:
        """Every message through the reference model alone: what `decode` must agree with."""
        batch = DecodedBatch(messages=len(values))
        for value in values:
            if value is None:
                batch.skip(NOT_JSON)
            elif len(value) > MAX_MESSAGE_BYTES:
                batch.skip(OVERSIZED)
            elif not (_FRAME_MARK in value and self._try_frame(value, batch)):
                self._reference(value, batch)
        return batch

    # --- the fast path ---------------------------------------------------------------------------

    def _fast_chunk(self, chunk: list[bytes | None]) -> list[Any] | None:
        """The chunk's events, if every message in it is a plain event the fast path accepts."""
        try:
            joined = b"".join(chunk)  # type: ignore[arg-type]
        except TypeError:
            return None  # a tombstone
        if _FRAME_MARK in joined or not joined.isascii():
            return None  # a frame, or bytes to check for UTF-8 one by one
        if len(joined) >= _DEEP_BYTES:
            longest = max(map(len, chunk))  # type: ignore[arg-type]
            if longest > MAX_MESSAGE_BYTES:
                return None
            if longest >= _DEEP_BYTES and any(map(_unusual, chunk)):
                return None
        try:
            return list(map(self._fast, chunk))  # type: ignore[arg-type]
        except self._refusals:
            return None

    def _screen_each(self, chunk: list[bytes | None], batch: DecodedBatch, accepted: list[bytes],
                     events: list[Any]) -> None:
        fast, refusals = self._fast, self._refusals
        for value in chunk:
            if value is None:
                batch.skip(NOT_JSON)
                continue
            if len(value) > MAX_MESSAGE_BYTES:
                batch.skip(OVERSIZED)
                continue
            if _FRAME_MARK in value and self._try_frame(value, batch):
                continue
            if (not value.isascii() and not _is_utf8(value)) or _unusual(value):
                # msgspec skips such bytes, depths and numbers in ignored fields; pydantic refuses them
                self._reference(value, batch)
                continue
            try:
                event = fast(value)  # type: ignore[misc]
            except refusals:
                self._reference(value, batch)
                continue
            accepted.append(value)
            events.append(event)

    def _add_events(self, accepted: list[bytes], events: list[Any], batch: DecodedBatch) -> None:
        """Append the fast path's events; keys the batch check refuses go to the reference."""
        keys = [e.key for e in events]
        if self.key_type == "int":
            ints = _int_keys(keys)
            if ints is None:
                self._add_each(accepted, events, batch)
                return
            keys = ints
        elif set(map(type, keys)) != {str}:
            keys = [k if type(k) is str else str(k) for k in keys]  # a numeric ID's text is the key
        batch.keys.extend(keys)
        batch.observed.extend([e.shard for e in events] if self.shard_field is not None
                              else [None] * len(events))
        batch.failed.extend([e.ok is False for e in events])
        batch.latency_ms.extend([e.latency_ms for e in events])

    def _add_each(self, accepted: list[bytes], events: list[Any], batch: DecodedBatch) -> None:
        """Int keys one by one: text that is not a decimal int64 is decided by the reference."""
        has_shard = self.shard_field is not None
        for value, event in zip(accepted, events):
            key = event.key
            if type(key) is str:
                if not _ONE_DECIMAL_KEY.fullmatch(key) or not INT64_MIN <= int(key) <= INT64_MAX:
                    self._reference(value, batch)
                    continue
                key = int(key)
            batch.keys.append(key)
            batch.observed.append(event.shard if has_shard else None)
            batch.failed.append(event.ok is False)
            batch.latency_ms.append(event.latency_ms)

    # --- the reference model -----------------------------------------------------------------------

    def _reference(self, value: bytes, batch: DecodedBatch) -> None:
        """One message through the pydantic model: a key, or the reason it is malformed."""
        try:
            event = self._validate_event(value)
        except ValidationError as exc:
            batch.skip(self._reason(exc))
            return
        key = event.key
        if self.key_type == "int":  # decimal text (the design's "key":"<id>") becomes the int it names
            if type(key) is str:
                key = int(key)
                if not INT64_MIN <= key <= INT64_MAX:
                    batch.skip(OUT_OF_RANGE)
                    return
        elif type(key) is int:
            key = str(key)
        batch.keys.append(key)
        batch.observed.append(event.shard if self.shard_field is not None else None)
        batch.failed.append(event.ok is False)
        batch.latency_ms.append(event.latency_ms)

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


def _int_keys(keys: list[Any]) -> list[int] | None:
    """Int keys (JSON ints, or text a whole batch checks in one regex pass and numpy parses), or
    None when some text is not a decimal int64 (the caller then goes key by key)."""
    try:
        texts = keys
        joined = "\n".join(keys)  # all text, as the design's "key":"<id>"
    except TypeError:
        kinds = set(map(type, keys))
        if kinds == {int}:
            return keys  # msgspec checked the int64 bounds
        texts = [k for k in keys if type(k) is str]
        joined = "\n".join(texts)
    # one line per key: a key holding a newline would pass as two
    if joined.count("\n") != len(texts) - 1 or not _DECIMAL_KEYS.fullmatch(joined):
        return None
    parsed = np.fromstring(joined, dtype=np.int64, sep="\n")  # text checked: it parses to the end
    if len(parsed) != len(texts) or parsed.max() == INT64_MAX or parsed.min() == INT64_MIN:
        ints = list(map(int, texts))  # numpy clips at the bounds: decide those exactly
        if min(ints) < INT64_MIN or max(ints) > INT64_MAX:  # 19 digits can pass the bounds
            return None
    else:
        ints = parsed.tolist()
    if texts is keys:
        return ints
    parsed_texts = iter(ints)
    return [k if type(k) is int else next(parsed_texts) for k in keys]


def _unusual(value: bytes) -> bool:
    """Whether the reference model might read the message differently from the fast path:
    nested deeper than it parses, or holding a number longer than it reads."""
    if len(value) < _DEEP_BYTES:
        return False
    if value.count(b"[") + value.count(b"{") > NESTING_SCREEN:
        return True
    return len(value) >= LONG_NUMBER_DIGITS and _LONG_NUMBER.search(value) is not None


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")  # strict: refuses encoded surrogates too
    except UnicodeDecodeError:
        return False
    return True
