"""Kafka messages as the sidecar reads them: request events, access-log lines and frames in;
malformed input counted by reason, never an exception."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewcheck.kafka.events import MALFORMED_REASONS, MAX_MESSAGE_BYTES, Decoder
from skewcheck.routing import make_router
from skewcheck.tally import Tally

INT_ROUTERS = ("mod", "murmur3")


def one(decoder: Decoder, value: bytes | None) -> tuple[list, dict]:
    batch = decoder.decode([value])
    assert batch.messages == 1
    assert len(batch.keys) + len(batch.frames) + sum(batch.malformed.values()) == 1
    return batch.keys, batch.malformed


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
])
def test_malformed_events_are_counted_by_reason(ints, value, reason):
    keys, malformed = one(ints, value)
    assert keys == [] and malformed == {reason: 1}
    assert reason in MALFORMED_REASONS


def test_int_keys_come_as_json_ints_or_decimal_text(ints):
    batch = ints.decode([b'{"key": 7}', b'{"key": "-7"}', b'{"key": "0"}', b'{"key": 9223372036854775807}'])
    assert batch.keys == [7, -7, 0, 2**63 - 1] and not batch.malformed


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


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                              lambda children: st.lists(children, max_size=4)
                              | st.dictionaries(st.sampled_from(["key", "v", "ts", "shard", "kind", "ok",
                                                                 "requests", "routers", "x"]),
                                                children, max_size=6),
                              max_leaves=12).map(lambda doc: json.dumps(doc).encode())))
def test_nothing_a_producer_sends_raises(value):
    for decoder in (Decoder(INT_ROUTERS, 100, "int"), Decoder(("hash-mod", "murmur3"), 100, "str")):
        batch = decoder.decode([value])
        assert len(batch.keys) + len(batch.frames) + sum(batch.malformed.values()) == 1
        assert set(batch.malformed) <= set(MALFORMED_REASONS)
