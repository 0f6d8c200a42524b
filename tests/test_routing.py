"""Routers and hash kernels: public vectors, per-key == vectorised, and agreement with the real
libraries (mmh3, kafka-python) and with straight-from-the-definition reference code."""

from __future__ import annotations

import pickle
import random
from dataclasses import FrozenInstanceError

import mmh3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewcheck import hashes, keytext
from skewcheck.errors import UsageError
from skewcheck.hashes import (
    java_string_hash,
    jump_hash,
    murmur2,
    murmur3_32,
    murmur3_32_many,
    redis_slot,
)
from skewcheck.keytext import KEY_TYPES, KeyBatch, parse_key, str_text
from skewcheck.routing import ROUTER_NAMES, Router, make_router


def key_array(keys, key_type):
    return KeyBatch.of(keys, key_type).values()

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EDGE_INTS = [0, 1, -1, 9, 10, -10, INT32_MIN, INT32_MAX, INT32_MIN - 1, INT32_MAX + 1,
             2**32, -(2**32) - 1, INT64_MIN, INT64_MAX, INT64_MIN + 1, 10**18, -(10**18)]
# the routers without parameters that this file spells out; tests/test_datastore_routers.py has the rest
BASIC = ("mod", "hash-mod", "murmur3", "kafka", "jump", "redis")
COMBOS = [(name, kt) for name in BASIC for kt in KEY_TYPES if (name, kt) != ("mod", "str")]


def kafka_python_murmur2():
    partitioner = pytest.importorskip("kafka.partitioner")  # kafka-python 3.x exports it here
    return partitioner.murmur2


# ---------------------------------------------------------------- references from the definitions


def ref_java_hash(text: str) -> int:
    """String.hashCode over UTF-16 code units, straight from the definition."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) % 2**32
    return h - 2**32 if h >= 2**31 else h


def ref_crc16_xmodem(data: bytes) -> int:
    """Bitwise CRC16-XMODEM: poly 0x1021, init 0, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def ref_redis_slot(key: bytes) -> int:
    """Redis cluster.c keyHashSlot."""
    s = key.find(b"{")
    if s != -1:
        e = key.find(b"}", s + 1)
        if e != -1 and e != s + 1:
            key = key[s + 1:e]
    return ref_crc16_xmodem(key) & 0x3FFF


def ref_jump(key: int, buckets: int) -> int:
    """jump_consistent_hash from the paper, in C's integer and double arithmetic."""
    key %= 2**64
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def ref_java_int_hash(v: int) -> int:
    if INT32_MIN <= v <= INT32_MAX:
        return v
    u = v % 2**64
    h = (u ^ (u >> 32)) % 2**32
    return h - 2**32 if h >= 2**31 else h


def ref_shard(name: str, key: int | str, n: int) -> int:
    """The routing table of the design, spelt out with the reference functions and libraries."""
    text = (str(key) if isinstance(key, int) else key).encode("utf-8")
    if name == "mod":
        return key % n  # type: ignore[operator]
    if name == "hash-mod":
        h = ref_java_int_hash(key) if isinstance(key, int) else ref_java_hash(key)
        return abs(h) % n
    if name == "murmur3":
        return mmh3.hash(text, 0, signed=False) % n
    if name == "kafka":
        return (kafka_python_murmur2()(text) & 0x7FFFFFFF) % n
    if name == "jump":
        return ref_jump(key if isinstance(key, int) else mmh3.hash64(text, signed=False)[0], n)
    return ref_redis_slot(text) * n // 16384


def signed32(u: int) -> int:
    return u - 2**32 if u >= 2**31 else u


# ---------------------------------------------------------------- public vectors (routing.md)


def test_java_hashcode_vectors():
    assert java_string_hash("Hello") == 69609650
    assert java_string_hash("a") == 97
    assert java_string_hash("") == 0
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # a surrogate pair is two units


def test_java_long_hashcode():
    r = make_router("hash-mod", 1000, "int")
    assert r.shard(2**32) == 1  # (int)(0x1_0000_0001) = 1
    assert r.shard(-(2**32) - 1) == 1  # 0xFFFFFFFE_FFFFFFFF -> 0xFFFFFFFF ^ 0xFFFFFFFE = 1
    assert r.shard(-7) == 7  # int32 range: Integer.hashCode is the value itself


def test_shardingsphere_vectors():
    assert make_router("hash-mod", 4, "str").shard("a") == 1
    assert make_router("mod", 16, "int").shard(17) == 1
    assert make_router("mod", 16, "int").shard(-1) == 15  # BigInteger.mod is never negative
    # Math.abs((long) Integer.MIN_VALUE) does not overflow: 2**31 % 7 == 2
    assert make_router("hash-mod", 7, "int").shard(INT32_MIN) == 2
    assert make_router("hash-mod", 7, "int").shard_many(np.array([INT32_MIN])).tolist() == [2]


def test_mmh3_vectors():
    assert murmur3_32("foo") == -156908512 % 2**32
    assert murmur3_32_many(["foo"], "str").tolist() == [-156908512 % 2**32]
    n = 2**31 - 1
    assert make_router("murmur3", n, "str").shard("foo") == (-156908512 % 2**32) % n


def test_kafka_murmur2_vectors():
    assert signed32(murmur2(b"21")) == -973932308
    assert signed32(murmur2(b"foobar")) == -790332482
    r = make_router("kafka", 1000, "str")
    assert [r.shard(""), r.shard("a")] == [681, 524]
    assert r.shard_many(["", "a"]).tolist() == [681, 524]
    assert make_router("kafka", 1000, "int").shard(21) == (-973932308 & 0x7FFFFFFF) % 1000


def test_redis_crc16_vectors():
    assert redis_slot(b"123456789") == 0x31C3
    assert redis_slot(b"somekey") == 11058
    assert redis_slot(b"foo{hash_tag}") == 2515
    r = make_router("redis", 16384, "str")  # one shard per slot: shard == slot
    keys = ["123456789", "somekey", "foo{hash_tag}", "{hash_tag}bar"]
    assert [r.shard(k) for k in keys] == [0x31C3, 11058, 2515, 2515]
    assert r.shard_many(keys).tolist() == [0x31C3, 11058, 2515, 2515]
    assert make_router("redis", 16384, "int").shard(123456789) == 0x31C3


def test_redis_slot_ranges_are_even():
    r = make_router("redis", 3, "str")
    assert r.shard("somekey") == 11058 * 3 // 16384 == 2


def test_jump_vectors():
    expected = [0, 55, 62, 8, 45, 59, 86, 97, 82, 59]
    r = make_router("jump", 100, "int")
    assert [r.shard(k) for k in range(10)] == expected
    assert r.shard_many(np.arange(10)).tolist() == expected
    assert jump_hash(256, 1024) == 520
    assert make_router("jump", 1024, "int").shard_many(np.array([256])).tolist() == [520]


def test_jump_str_uses_first_half_of_murmur3_x64_128():
    key = "user-42"
    assert make_router("jump", 1000, "str").shard(key) == ref_jump(
        mmh3.hash64(key.encode(), signed=False)[0], 1000)


# ---------------------------------------------------------------- API and errors


def test_names_and_types():
    assert ROUTER_NAMES[:6] == BASIC
    assert len(set(ROUTER_NAMES)) == len(ROUTER_NAMES)
    assert KEY_TYPES == ("int", "str")


def test_router_is_frozen_comparable_and_pickles():
    r = make_router("murmur3", 10, "str")
    assert (r.name, r.shards, r.key_type) == ("murmur3", 10, "str")
    assert r == Router("murmur3", 10, "str") and hash(r) == hash(Router("murmur3", 10, "str"))
    with pytest.raises(FrozenInstanceError):
        r.shards = 11  # type: ignore[misc]
    clone = pickle.loads(pickle.dumps(r))
    assert clone == r and clone.shard("abc") == r.shard("abc")


def test_unknown_router_lists_valid_ones():
    with pytest.raises(UsageError) as exc:
        make_router("sha1", 10, "int")
    assert "sha1" in str(exc.value)
    assert all(name in str(exc.value) for name in ROUTER_NAMES)


@pytest.mark.parametrize("shards", [0, -1, True, 2.5, 2**31])
def test_bad_shard_count(shards):
    with pytest.raises(UsageError, match="shards"):
        make_router("murmur3", shards, "int")


def test_mod_needs_int_keys():
    with pytest.raises(UsageError, match="router mod needs int keys"):
        make_router("mod", 10, "str")


def test_unknown_key_type():
    with pytest.raises(UsageError, match="key type"):
        make_router("murmur3", 10, "float")


@pytest.mark.parametrize("text,value", [("17", 17), ("-5", -5), (" 42 ", 42), ("+3", 3),
                                        (str(INT64_MIN), INT64_MIN), (str(INT64_MAX), INT64_MAX)])
def test_parse_int_keys(text, value):
    assert parse_key(text, "int") == value


@pytest.mark.parametrize("text", ["", "abc", "1.5", "1e3", "1_000", "0x10", "\u0661\u0662",
                                  str(INT64_MAX + 1), str(INT64_MIN - 1)])
def test_parse_rejects_non_int64(text):
    with pytest.raises(UsageError):
        parse_key(text, "int")


def test_parse_str_keys_are_verbatim():
    assert parse_key(" 007 ", "str") == " 007 "


def test_key_array():
    ints = key_array([1, -2, INT64_MAX], "int")
    assert ints.dtype == np.int64 and ints.tolist() == [1, -2, INT64_MAX]
    assert key_array(np.array([1, 2], dtype=np.uint8), "int").dtype == np.int64
    strs = key_array(["a", "b\0"], "str")
    assert strs.dtype == object and strs.tolist() == ["a", "b\0"]
    assert key_array(np.array(["x"]), "str").tolist() == ["x"]
    assert key_array([], "int").size == 0


@pytest.mark.parametrize("keys", [[1.5], [True], ["1"], [2**63], [-(2**63) - 1],
                                  np.array([2**64 - 1], dtype=np.uint64), "123"])
def test_key_array_rejects_non_int64(keys):
    with pytest.raises(UsageError):
        key_array(keys, "int")


def test_key_array_rejects_non_text():
    with pytest.raises(UsageError):
        key_array(["a", 1], "str")


@pytest.mark.parametrize("name", BASIC)
def test_per_key_rejects_bad_int_keys(name):
    r = make_router(name, 10, "int")
    for bad in ["5", 5.0, True, 2**63, INT64_MIN - 1, None]:
        with pytest.raises(UsageError):
            r.shard(bad)
    assert r.shard(np.int64(5)) == r.shard(5)  # numpy ints are ints


@pytest.mark.parametrize("name,key_type", [c for c in COMBOS if c[1] == "str"])
def test_lone_surrogates_are_a_usage_error(name, key_type):
    # mmh3 5.x crashes the interpreter on such a str; the routers must refuse it first
    r = make_router(name, 10, key_type)
    for key in ["\ud800", "a\udcffb", "\udfff\ud800"]:
        with pytest.raises(UsageError, match="surrogate"):
            r.shard(key)
        with pytest.raises(UsageError, match="surrogate"):
            r.shard_many(["ok", key])
    with pytest.raises(UsageError):
        r.shard(5)
    with pytest.raises(UsageError):
        r.shard_many(["a", 5])
    with pytest.raises(UsageError, match="surrogate"):
        murmur3_32("\ud800")


def test_empty_batches():
    for name, key_type in COMBOS:
        r = make_router(name, 7, key_type)
        out = r.shard_many(np.empty(0, dtype=np.int64) if key_type == "int" else [])
        assert out.dtype == np.int64 and out.size == 0


# ---------------------------------------------------------------- properties

int_keys = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from(EDGE_INTS),
                     st.integers(-(10**6), 10**6))
chars = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from("{}\0\x7f\x80\u07ff\u0800\uffff"),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8"),
)
str_keys = st.one_of(st.text(chars, max_size=40),
                     st.sampled_from(["", "{}", "{a}", "a{b}c{d}", "}{x}"]))
shard_counts = st.one_of(st.integers(1, 1000), st.integers(1, 2**31 - 1))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", BASIC)
@FAST
@given(keys=st.lists(int_keys, max_size=40), n=shard_counts)
def test_int_per_key_equals_vectorised_equals_reference(name, keys, n):
    r = make_router(name, n, "int")
    per_key = [r.shard(k) for k in keys]
    assert r.shard_many(np.array(keys, dtype=np.int64)).tolist() == per_key
    assert per_key == [ref_shard(name, k, n) for k in keys]


@pytest.mark.parametrize("name", [n for n in BASIC if n != "mod"])
@FAST
@given(keys=st.lists(str_keys, max_size=40), n=shard_counts)
def test_str_per_key_equals_vectorised_equals_reference(name, keys, n):
    r = make_router(name, n, "str")
    per_key = [r.shard(k) for k in keys]
    assert r.shard_many(keys).tolist() == per_key
    assert r.shard_many(np.array(keys, dtype=object)).tolist() == per_key
    assert per_key == [ref_shard(name, k, n) for k in keys]


@FAST
@given(data=st.binary(max_size=64))
def test_murmur2_equals_kafka_python(data):
    assert murmur2(data) == kafka_python_murmur2()(data)


@FAST
@given(keys=st.lists(str_keys, max_size=40), seed=st.integers(0, 2**32 - 1))
def test_murmur3_32_many_equals_mmh3_on_text(keys, seed):
    expected = [mmh3.hash(k.encode(), seed, signed=False) for k in keys]
    assert [murmur3_32(k, seed) for k in keys] == expected
    got = murmur3_32_many(keys, "str", seed)
    assert got.dtype == np.uint32 and got.tolist() == expected


@FAST
@given(keys=st.lists(int_keys, max_size=40), seed=st.integers(0, 2**32 - 1))
def test_murmur3_32_many_on_int_text(keys, seed):
    expected = [mmh3.hash(str(k).encode(), seed, signed=False) for k in keys]
    assert murmur3_32_many(np.array(keys, dtype=np.int64), "int", seed).tolist() == expected


@FAST
@given(keys=st.lists(str_keys, max_size=40))
def test_murmur3_x64_first_half_equals_mmh3_hash64(keys):
    expected = [mmh3.hash64(k.encode(), signed=False)[0] for k in keys]
    assert hashes.murmur3_x64_64_many(keys, "str").tolist() == expected


@FAST
@given(keys=st.lists(int_keys, max_size=40))
def test_text_hashes_of_int_keys_hash_their_decimal_text(keys):
    texts = [str(k).encode() for k in keys]
    batch = np.array(keys, dtype=np.int64)
    assert hashes.murmur3_x64_64_many(batch, "int").tolist() == [
        mmh3.hash64(t, signed=False)[0] for t in texts]
    assert hashes.murmur2_many(batch, "int").tolist() == [murmur2(t) for t in texts]
    assert hashes.redis_slot_many(batch, "int").tolist() == [ref_redis_slot(t) for t in texts]


@FAST
@given(text=str_keys)
def test_java_string_hash_equals_reference(text):
    assert java_string_hash(text) == ref_java_hash(text)


@FAST
@given(key=st.integers(0, 2**64 - 1), buckets=shard_counts)
def test_jump_equals_reference(key, buckets):
    assert jump_hash(key, buckets) == ref_jump(key, buckets)
    vec = hashes.jump_hash_many(np.array([key], dtype=np.uint64), buckets)
    assert vec.tolist() == [ref_jump(key, buckets)]


@pytest.mark.parametrize("keys,longest_first", [
    (["abcd", "abcdefgh", "abcdefghijk", "a", "", "xyz", "é😀"], False),  # few steps: masked
    (["a", "b" * 40, "", "c" * 17, "d" * 16, "e" * 3], True),  # many: sorted, longest first
])
def test_both_block_layouts(keys, longest_first):
    text = str_text(keys)
    assert text.longest_first is longest_first
    assert hashes.murmur3_32_text(text).tolist() == [
        mmh3.hash(k.encode(), signed=False) for k in keys]
    assert hashes.murmur3_x64_64_text(text).tolist() == [
        mmh3.hash64(k.encode(), signed=False)[0] for k in keys]
    assert hashes.murmur2_text(text).tolist() == [murmur2(k.encode()) for k in keys]
    assert hashes.crc16_text(text).tolist() == [ref_crc16_xmodem(k.encode()) for k in keys]


# ---------------------------------------------------------------- large batches, wholesale


def random_text_keys(rng: random.Random, n: int, with_nul: bool) -> list[str]:
    # UTF-8 width boundaries (1 to 4 bytes), braces, and U+0000 when asked for
    alphabet = "abcXYZ019-_{}\u00e9\u07ff\u0800\uffff\U0001F600\U00010348"
    alphabet += "\0" if with_nul else ""
    keys = [f"user-{rng.randrange(10**9)}" for _ in range(n // 2)]
    keys += ["".join(rng.choices(alphabet, k=rng.choice([0, 1, 3, 4, 7, 15, 16, 17, 33])))
             for _ in range(n - len(keys) - 2)]
    keys += ["x" * 300, "{" + "y" * 70000 + "}"]  # lengths past the narrow sort keys
    rng.shuffle(keys)
    return keys


def random_int_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    keys = np.concatenate([
        rng.integers(INT64_MIN, INT64_MAX, size=n // 4, dtype=np.int64, endpoint=True),
        rng.integers(-(10**6), 10**6, size=n // 4),
        rng.integers(0, 10**7, size=n // 4),
        np.array(EDGE_INTS, dtype=np.int64),
    ])
    return np.concatenate([keys, rng.integers(-(2**40), 2**40, size=n - keys.size)])


@pytest.mark.parametrize("name,key_type", COMBOS)
def test_large_batch_matches_per_key(name, key_type):
    n = 100_000  # more than one chunk
    if key_type == "int":
        keys = random_int_keys(np.random.default_rng(7), n)
        per_key_keys = keys.tolist()
    else:
        keys = per_key_keys = random_text_keys(random.Random(7), n, with_nul=False)
    r = make_router(name, 97, key_type)
    shards = r.shard_many(keys)
    assert shards.dtype == np.int64 and shards.shape == (n,)
    assert shards.tolist() == [r.shard(k) for k in per_key_keys]


@pytest.mark.parametrize("with_nul", [False, True])
def test_tiny_chunks_cover_every_key(monkeypatch, with_nul):
    # chunks of a few keys, some far longer than the rest
    monkeypatch.setattr(keytext, "CHUNK_KEYS", 3)
    rng = random.Random(13)
    keys = random_text_keys(rng, 300, with_nul) + ["z" * 5000, "", "{t}" * 900, ""]
    ints = random_int_keys(np.random.default_rng(13), 300)
    for name, key_type in COMBOS:
        r = make_router(name, 1009, key_type)
        batch, scalar = (ints, ints.tolist()) if key_type == "int" else (keys, keys)
        assert r.shard_many(batch).tolist() == [r.shard(k) for k in scalar], (name, key_type)


def test_large_batch_with_nul_keys_matches_mmh3():
    keys = random_text_keys(random.Random(11), 100_000, with_nul=True)
    got = murmur3_32_many(keys, "str")
    assert got.tolist() == [mmh3.hash(k.encode(), signed=False) for k in keys]
    head = keys[:5000]
    assert hashes.java_hash_many(head, "str").tolist() == [ref_java_hash(k) for k in head]


def test_large_int_batch_matches_mmh3():
    keys = random_int_keys(np.random.default_rng(3), 100_000)
    got = murmur3_32_many(keys, "int")
    assert got.tolist() == [mmh3.hash(str(k).encode(), signed=False) for k in keys.tolist()]
