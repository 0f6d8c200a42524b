"""Kafka messages as the sidecar reads them: request events, access-log lines and frames in;
malformed input counted by reason, never an exception. The fast batch decoder and the reference
model agree on every message, and whatever they accept the sidecar's state counts."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewcheck.config import KafkaConfig, parse_scenario
from skewcheck.kafka.events import (
    FAST_CHUNK,
    MALFORMED_REASONS,
    MAX_MESSAGE_BYTES,
    DecodedBatch,
    Decoder,
)
from skewcheck.routing import make_router
from skewcheck.sidecar.state import SidecarState
from skewcheck.tally import Tally

INT_ROUTERS = ("mod", "murmur3")


def one(decoder: Decoder, value: bytes | None) -> tuple[list, dict]:
    batch = decoder.decode([value])
    assert batch.messages == 1
    assert len(batch.keys) + len(batch.frames) + sum(batch.malformed.values()) == 1
    assert same(batch, decoder.decode_each([value]))
    return batch.keys, batch.malformed


def accepted(batch: DecodedBatch) -> list[tuple]:
    """What a batch counts, in a canonical order (the fast path appends in another order)."""
    rows = zip(batch.keys, batch.observed, batch.failed, batch.latency_ms, strict=True)
    return sorted(((type(k).__name__, k, o, f, lat) for k, o, f, lat in rows), key=repr)


def same(fast: DecodedBatch, reference: DecodedBatch) -> bool:
    return (accepted(fast) == accepted(reference) and fast.malformed == reference.malformed
            and [f.to_json() for f in fast.frames] == [f.to_json() for f in reference.frames]
            and fast.messages == reference.messages)


@pytest.fixture
def ints() -> Decoder:
    return Decoder(INT_ROUTERS, 100, "int")


def test_the_designs_request_event_is_valid(ints):
    event = {"v": 1, "ts": 1732000000.5, "key": "12345", "name": "/orders", "ok": True,
             "latency_ms": 12.3, "shard": 45}
    batch = ints.decode([json.dumps(event).encode()])
    assert batch.keys == [12345] and batch.observed_keys == [12345] and batch.observed_shards == [45]
    assert not batch.malformed


@pytest.mark.parametrize("value, reason", [
    (b"\xff\xfe garbage", "not_json"),
    (b'{"key": "1"', "not_json"),
    (None, "not_json"),  # a tombstone
    (b'{"key": "\\ud800"}', "not_json"),  # a lone surrogate is no text
    (b"[1, 2]", "not_object"),
    (b'"12345"', "not_object"),
    (b"null", "not_object"),
    (b'{"v": 2, "key": "1"}', "wrong_version"),
    (b'{"v": true, "key": "1"}', "wrong_version"),
    (b'{"v": "1", "key": "1"}', "wrong_version"),
    (b'{"ts": 1, "name": "/orders"}', "missing_field"),
    (b'{"key": "12a"}', "key_not_int"),
    (b'{"key": 12.5}', "key_not_int"),
    (b'{"key": true}', "key_not_int"),
    (b'{"key": null}', "key_not_int"),
    (b'{"key": ["1"]}', "key_not_int"),
    (b'{"key": "1_000"}', "key_not_int"),
    (b'{"key": 99999999999999999999}', "value_out_of_range"),
    (b'{"key": "9999999999999999999"}', "value_out_of_range"),
    (b'{"key": 1, "ts": "now"}', "wrong_type"),
    (b'{"key": 1, "ok": "yes"}', "wrong_type"),
    (b'{"key": 1, "ok": 1}', "wrong_type"),
    (b'{"key": 1, "name": 7}', "wrong_type"),
    (b'{"key": 1, "ts": 1e300}', "value_out_of_range"),
    (b'{"key": 1, "ts": -5}', "value_out_of_range"),
    (b'{"key": 1, "latency_ms": 1e308}', "value_out_of_range"),
    (b'{"key": 1, "latency_ms": NaN}', "value_out_of_range"),
    (b'{"key": 1, "latency_ms": Infinity}', "value_out_of_range"),
    (b'{"key": 1, "shard": 100}', "shard_out_of_range"),
    (b'{"key": 1, "shard": -1}', "shard_out_of_range"),
    (b'{"key": 1, "shard": "3"}', "wrong_type"),
    # what msgspec alone would take and the reference model refuses
    (b'{"key": 1, "path": "\xff"}', "not_json"),  # not UTF-8 in an ignored field
    (b'{"key": 1, "path": "\xed\xa0\x80"}', "not_json"),  # an encoded surrogate
    (b'{"key": 1, "x": ' + b"[" * 250 + b"]" * 250 + b"}", "not_json"),  # deeper than pydantic parses
    (b'{"key": 1, "x": ' + b"1" * 4301 + b"}", "not_json"),  # a number longer than pydantic reads
    (b'{"key": 1, "x": {"y": [-' + b"9" * 5000 + b'.5e1]}}', "not_json"),
    (b'{"key": "12\\n"}', "key_not_int"),
    (b'{"key": "1\\n2"}', "key_not_int"),
    (b'{"key": "00000000000000000001"}', "key_not_int"),  # 20 digits
    (b'{"key": "+5"}', "key_not_int"),
    (b'{"key": " 5"}', "key_not_int"),
    (b'{"key": "\\u0665"}', "key_not_int"),  # an Arabic-Indic digit
    (b'{"key": ""}', "key_not_int"),
])
def test_malformed_events_are_counted_by_reason(ints, value, reason):
    keys, malformed = one(ints, value)
    assert keys == [] and malformed == {reason: 1}
    assert reason in MALFORMED_REASONS


def test_malformed_events_are_counted_in_a_batch_of_valid_ones(ints):
    valid = [json.dumps({"v": 1, "key": str(k), "ok": k % 3 > 0, "latency_ms": k / 10}).encode()
             for k in range(3 * FAST_CHUNK)]
    bad = [b"\xff\xfe garbage", None, b'{"key": "12a"}', b'{"key": 1, "path": "\xff"}',
           b'{"key": "9999999999999999999"}', b'{"key": "1\\n2"}', b'{"key": 2, "n": ' + b"7" * 4400 + b"}"]
    values = valid[:FAST_CHUNK + 7] + bad + valid[FAST_CHUNK + 7:]
    batch = ints.decode(values)
    assert same(batch, ints.decode_each(values))
    assert sorted(batch.keys) == list(range(3 * FAST_CHUNK))
    assert batch.malformed == {"not_json": 4, "key_not_int": 2, "value_out_of_range": 1}
    assert sum(batch.failed) == FAST_CHUNK and batch.latency_ms[:2] == [0.0, 0.1]


def test_valid_events_never_take_the_reference_path(ints, monkeypatch):
    refused: list[bytes] = []
    monkeypatch.setattr(ints, "_reference", lambda value, batch: refused.append(value))
    values = [json.dumps({"v": 1, "ts": 1.7e9, "key": str(k) if k % 2 else k, "name": "/orders",
                          "ok": True, "latency_ms": 3, "shard": k % 100}).encode() for k in range(2500)]
    batch = ints.decode(values)
    assert refused == [] and batch.keys == list(range(2500)) and batch.observed == [k % 100 for k in range(2500)]
    assert ints.decode([b'{"key": "7x"}']).keys == [] and refused == [b'{"key": "7x"}']


def test_int_keys_come_as_json_ints_or_decimal_text(ints):
    batch = ints.decode([b'{"key": 7}', b'{"key": "-7"}', b'{"key": "0"}', b'{"key": 9223372036854775807}'])
    assert batch.keys == [7, -7, 0, 2**63 - 1] and not batch.malformed
    batch = ints.decode([b'{"key": "-9223372036854775808"}', b'{"key": "0007"}'])
    assert batch.keys == [-2**63, 7] and not batch.malformed


def test_str_keys_limits():
    d = Decoder(("hash-mod", "murmur3"), 16, "str")
    assert one(d, b'{"key": "user-1"}') == (["user-1"], {})
    assert one(d, b'{"key": 42}') == (["42"], {})  # a numeric ID's text is the key
    assert one(d, json.dumps({"key": "x" * 257}).encode())[1] == {"key_too_long": 1}
    assert one(d, json.dumps({"key": "x" * 256}).encode())[0] == ["x" * 256]
    assert one(d, b'{"key": ""}')[1] == {"missing_field": 1}
    assert one(d, b'{"key": false}')[1] == {"wrong_type": 1}
    assert one(d, json.dumps({"key": "é😀"}).encode())[0] == ["é😀"]


def test_oversized_messages_are_refused_before_parsing(ints):
    assert one(ints, b'{"key": 1, "pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}')[1] == {"oversized_message": 1}


def test_an_access_log_names_its_key_and_shard_fields():
    d = Decoder(INT_ROUTERS, 100, "int", key_field="user_id", shard_field="db_shard")
    line = {"time": "2024-05-01T10:00:00Z", "method": "GET", "path": "/orders", "status": 200,
            "user_id": 4200, "db_shard": 0, "upstream": {"ms": 3}, "key": "ignored", "v": 1}
    batch = d.decode([json.dumps(line).encode()])
    assert batch.keys == [4200] and batch.observed_shards == [0] and not batch.malformed
    assert one(d, b'{"key": 5}')[1] == {"missing_field": 1}  # the design's field name is not the key here
    assert one(d, b'{"user_id": 5, "db_shard": 300}')[1] == {"shard_out_of_range": 1}
    no_shard = Decoder(INT_ROUTERS, 100, "int", key_field="user_id", shard_field=None)
    assert no_shard.decode([b'{"user_id": 5, "shard": "whatever"}']).keys == [5]


# --- frames ---------------------------------------------------------------------------------------


def frame_of(keys: list[int], routers=INT_ROUTERS, shards: int = 100, observed: bool = True) -> dict:
    tally = Tally([make_router(name, shards, "int") for name in routers])
    for k in keys:
        tally.add(k, ts=1000.0, observed_shard=(k % shards) if observed else None)
    return tally.drain_frame("worker-1", now=1001.0).to_json()


def test_a_workers_frame_is_valid(ints):
    frame = frame_of(list(range(0, 5000, 7)))
    batch = ints.decode([json.dumps(frame).encode()])
    assert [f.to_json() for f in batch.frames] == [frame] and not batch.malformed and not batch.keys


def broken(frame: dict, change) -> bytes:
    f = copy.deepcopy(frame)
    change(f)
    return json.dumps(f).encode()


@pytest.mark.parametrize("change, reason", [
    (lambda f: f.__setitem__("v", 2), "wrong_version"),
    (lambda f: f.pop("requests"), "missing_field"),
    (lambda f: f.pop("routers"), "missing_field"),
    (lambda f: f.__setitem__("requests", "many"), "wrong_type"),
    (lambda f: f.__setitem__("requests", 10**15), "value_out_of_range"),
    (lambda f: f.__setitem__("requests", -1), "value_out_of_range"),
    (lambda f: f["routers"].__setitem__("redis", {"0": 1}), "unknown_router"),
    (lambda f: f["routers"].pop("murmur3"), "inconsistent_frame"),
    (lambda f: f["routers"]["mod"].__setitem__("100", 1), "shard_out_of_range"),
    (lambda f: f["routers"]["mod"].__setitem__("x", 1), "wrong_type"),
    (lambda f: f.__setitem__("requests", f["requests"] + 1), "inconsistent_frame"),
    (lambda f: f["routers"]["mod"].__setitem__("0", -3), "value_out_of_range"),
    (lambda f: f["top_keys"].__setitem__(0, ["not-a-number", 1]), "key_not_int"),
    (lambda f: f["key_buckets"].__setitem__("4096", 1), "value_out_of_range"),
    (lambda f: f["observed"]["shards"].__setitem__("500", 1), "shard_out_of_range"),
    (lambda f: f.__setitem__("window_start", float("nan")), "value_out_of_range"),
    (lambda f: f.__setitem__("routers", []), "wrong_type"),
])
def test_malformed_frames_are_counted_by_reason(ints, change, reason):
    frame = frame_of(list(range(0, 5000, 7)) + [42] * 200)  # a hot key, so top_keys is not empty
    _keys, malformed = one(ints, broken(frame, change))
    assert malformed == {reason: 1}


def test_frame_detection_needs_kind_frame(ints):
    # the word "frame" alone (a key, a path) does not make a message a frame
    assert one(ints, b'{"key": 3, "path": "/frame", "note": "frame"}') == ([3], {})
    assert one(ints, b'{"kind": "frame", "key": 3}')[1] == {"missing_field": 1}


# --- fuzzing: decoder + state ------------------------------------------------------------------

FIELD_NAMES = ["key", "v", "ts", "shard", "kind", "ok", "name", "latency_ms", "requests", "routers",
               "user_id", "db_shard", "x"]
ODD_TEXT = ["12345", "-7", "007", "1_000", " 12", "+5", "12\n", "\u0663", "9223372036854775807",
            "9223372036854775808", "-9223372036854775809", "x" * 257, "x" * 256, "", "\ud800", "é😀", "frame"]
ODD_NUMBERS = [0, 1, -1, 2, 99, 100, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64, 1e11, 1e11 + 1, 86_400_000.0,
               -0.0, 0.5, 1e300, float("inf"), float("nan")]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from(ODD_NUMBERS)
           | st.floats() | st.text(max_size=12) | st.sampled_from(ODD_TEXT))
documents = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                         | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=7), max_leaves=10)
keys = (st.integers(-2**63, 2**63 - 1) | st.integers(0, 10**6).map(str) | st.text(min_size=1, max_size=8)
        | st.sampled_from(ODD_TEXT))


@st.composite
def mostly(draw, valid):
    """Valid values most of the time, anything now and then: events near the schema's edges."""
    return draw(scalars if draw(st.integers(0, 9)) == 0 else valid)


near_events = {
    "v": mostly(st.just(1)), "ts": mostly(st.floats(0, 1e11) | st.integers(0, 10**11)),
    "name": mostly(st.text(max_size=12)), "ok": mostly(st.booleans()),
    "latency_ms": mostly(st.floats(0, 86_400_000) | st.integers(0, 10**6)),
    "shard": mostly(st.integers(0, 110)), "db_shard": mostly(st.integers(0, 8)), "user_id": mostly(keys),
    "kind": scalars, "x": documents,
}
events = st.fixed_dictionaries({"key": mostly(keys)}, optional=near_events)


@st.composite
def messages(draw) -> bytes | None:
    """What a producer may send: events near the schema, any JSON, raw bytes, and events broken
    the ways msgspec and pydantic-core could read differently."""
    doc = draw(documents if draw(st.integers(0, 5)) == 0 else events)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True)
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8
    change = draw(st.sampled_from(["none"] * 14 + ["cut", "byte", "dup", "deep", "pad", "tombstone", "bytes"]))
    if change == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif change == "byte":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    elif change == "dup" and raw.startswith(b"{") and len(raw) > 2:  # a field given twice
        raw = b"{" + json.dumps({"key": draw(scalars)}).encode()[1:-1] + b"," + raw[1:]
    elif change == "deep" and raw.startswith(b"{") and len(raw) > 2:
        depth = draw(st.sampled_from([10, 150, 199, 200, 201, 260]))
        raw = b'{"x": ' + b"[" * depth + b"]" * depth + b"," + raw[1:]
    elif change == "pad":
        raw = draw(st.sampled_from([b" ", b"\n", b"\t", b"\r", b"\x0c", b"\x00", b"\xef\xbb\xbf"])) + raw
    elif change == "tombstone":
        return None
    elif change == "bytes":
        raw = draw(st.binary(max_size=60))
    return raw


def fuzz_decoders() -> list[tuple[Decoder, SidecarState]]:
    setups = [("shards: 100\nrouting: {primary: mod, compare: [murmur3]}\n", {}),
              ("shards: 100\nrouting: {primary: hash-mod, compare: [murmur3], key_type: str}\n", {}),
              ("shards: 7\nrouting: {primary: jump}\n", {"key_field": "user_id", "shard_field": "db_shard"}),
              ("shards: 7\nrouting: {primary: redis, key_type: str}\n", {"key_field": "name"})]  # reference only
    out = []
    for scenario, kafka in setups:
        state = SidecarState(parse_scenario(scenario), KafkaConfig(topic="t", **kafka), instance="fuzz",
                             clock=lambda: 1000.0)
        out.append((state.decoder, state))
    return out


FUZZ = fuzz_decoders()


@settings(max_examples=300, deadline=None)
@given(st.lists(messages(), max_size=12), st.integers(0, 3))
def test_the_fast_decoder_agrees_with_the_reference_and_the_state_counts_it(values, which):
    decoder, state = FUZZ[which]
    if which == 0 and values:  # a worker's frame in the stream, for the int scenario
        values = values + [json.dumps(frame_of([1, 2, 3])).encode()]
    batch = decoder.decode(values)
    assert same(batch, decoder.decode_each(values))
    assert len(batch.keys) + len(batch.frames) + sum(batch.malformed.values()) == len(values)
    assert set(batch.malformed) <= set(MALFORMED_REASONS)
    before = (state.consumed, state.events, state.tally.requests, sum(state.malformed.values()))
    state.apply(batch, {0: 1}, 1000.0)  # whatever validated is counted without raising
    assert state.consumed - before[0] == len(values)
    assert state.events - before[1] == len(batch.keys)
    assert state.tally.requests - before[2] == len(batch.keys) + sum(f.requests for f in batch.frames)
    assert sum(state.malformed.values()) - before[3] == sum(batch.malformed.values())


def test_a_key_field_named_like_another_field_keeps_both_rules():
    d = Decoder(("hash-mod",), 16, "str", key_field="name")
    assert d.decode([b'{"name": "/orders"}']).keys == ["/orders"]
    assert d.decode([b'{"name": 5}']).malformed == {"wrong_type": 1}  # a key, but no name
