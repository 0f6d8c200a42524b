"""Routers: pure functions key -> shard, per key (Locust's hot path) and per batch (numpy).

Both forms of every router agree bit for bit. The hashing routers hash the key's UTF-8 text; an
int key's text is its decimal form ("-5"). The public test vectors of each definition are in
tests/test_routing.py.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any, Callable

import mmh3
import numpy as np

from skewcheck.errors import UsageError
from skewcheck.hashes import (
    INT64_MAX,
    INT64_MIN,
    MASK64,
    REDIS_SLOTS,
    KeyText,
    checked_int,
    checked_str,
    crc16_text,
    for_chunks,
    int_keys,
    int_text,
    java_int_hash,
    java_int_hash_many,
    java_string_hash,
    java_string_hashes,
    jump_hash,
    jump_hash_many,
    murmur2,
    murmur2_text,
    murmur3_32_text,
    murmur3_x64_64,
    murmur3_x64_64_text,
    redis_slot,
    remainder,
    str_keys,
    str_text,
    unencodable_key_error,
)

ROUTER_NAMES: tuple[str, ...] = ("mod", "hash-mod", "murmur3", "kafka", "jump", "redis")
KEY_TYPES: tuple[str, ...] = ("int", "str")
MAX_SHARDS = 2**31 - 1  # shard counts are Java ints in ShardingSphere, Kafka and Guava's jump hash

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_POSITIVE31 = 0x7FFF_FFFF  # Kafka's toPositive(): clear the sign bit, not abs()

ScalarRoute = Callable[[Any], int]
BatchRoute = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class Router:
    """A named router over a fixed number of shards for one key type.

    `router.shard(key) -> int` is a closure bound at construction for this router and key type,
    so the per-request path does no dispatch. `shard_many(keys)` routes a whole batch.
    """

    name: str
    shards: int
    key_type: str
    shard: ScalarRoute = field(init=False, repr=False, compare=False)
    _batch: BatchRoute = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self.name, self.shards, self.key_type)
        object.__setattr__(self, "shards", int(self.shards))  # a numpy int would leak into results
        object.__setattr__(self, "shard", _SCALAR[self.name, self.key_type](self.shards))
        object.__setattr__(self, "_batch", _BATCH[self.name](self.shards, self.key_type))

    def shard_many(self, keys: Any) -> np.ndarray:
        """int64 shard of every key: an int64 array for int keys, a sequence of str for str keys."""
        return self._batch(int_keys(keys) if self.key_type == "int" else str_keys(keys))

    def __reduce__(self) -> tuple[Callable[..., Router], tuple[str, int, str]]:
        return make_router, (self.name, self.shards, self.key_type)  # closures do not pickle


def make_router(name: str, shards: int, key_type: str) -> Router:
    """The router `name` over `shards` shards; UsageError for an unknown name or bad count."""
    return Router(name, shards, key_type)


def _validate(name: str, shards: int, key_type: str) -> None:
    if key_type not in KEY_TYPES:
        raise UsageError(f"unknown key type {key_type!r}; valid key types: {', '.join(KEY_TYPES)}")
    if name not in ROUTER_NAMES:
        raise UsageError(f"unknown router {name!r}; valid routers: {', '.join(ROUTER_NAMES)}")
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)):
        raise UsageError(f"shards must be an integer, got {shards!r}")
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"shards must be between 1 and {MAX_SHARDS}, got {shards}")
    if name == "mod" and key_type != "int":
        raise UsageError("router mod needs int keys")


def parse_key(text: str, key_type: str) -> int | str:
    """A key from its text: str keys as they are; int keys in decimal, within signed 64 bits."""
    if key_type == "str":
        return text
    if key_type != "int":
        raise UsageError(f"unknown key type {key_type!r}; valid key types: {', '.join(KEY_TYPES)}")
    digits = text.strip()
    # int() alone would also take "1_000" and non-ASCII digits
    if digits.isascii() and "_" not in digits:
        try:
            value = int(digits)
        except ValueError:
            pass
        else:
            if INT64_MIN <= value <= INT64_MAX:
                return value
            raise UsageError(f"key {text!r} is outside the signed 64-bit integer range")
    raise UsageError(f"key {text!r} is not an integer")


def key_array(keys: Any, key_type: str) -> np.ndarray:
    """A batch of keys normalised: int64 array for int keys, object array of str for str keys."""
    if key_type == "int":
        return int_keys(keys)
    if key_type != "str":
        raise UsageError(f"unknown key type {key_type!r}; valid key types: {', '.join(KEY_TYPES)}")
    batch = str_keys(keys)
    if not all(type(k) is str for k in batch):
        batch = [checked_str(k) for k in batch]
    out = np.empty(len(batch), dtype=object)
    out[:] = batch
    return out


# --------------------------------------------------------------------------- per-key forms
# Each factory returns the closure Router.shard binds: the type guard is one identity check,
# and only a key that fails it takes the slow, validating path.


def _mod_int(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return key % n
    return shard


def _hash_mod_int(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return abs(key if _INT32_MIN <= key <= _INT32_MAX else java_int_hash(key)) % n
    return shard


def _hash_mod_str(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not str:
            key = checked_str(key)
        return abs(java_string_hash(key)) % n
    return shard


def _murmur3_int(n: int) -> ScalarRoute:
    hash32 = mmh3.hash

    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return hash32(str(key), signed=False) % n  # decimal text is ASCII, safe to pass as str
    return shard


def _utf8(key: Any) -> bytes:
    """A str key as UTF-8 (a lone surrogate can't be encoded: a clear error, never a crash)."""
    if type(key) is not str:
        key = checked_str(key)
    try:
        return key.encode()
    except UnicodeEncodeError:
        raise unencodable_key_error(key) from None


def _murmur3_str(n: int) -> ScalarRoute:
    hash32 = mmh3.hash

    def shard(key: Any) -> int:
        return hash32(_utf8(key), signed=False) % n  # bytes: mmh3 crashes on a lone surrogate
    return shard


def _kafka_int(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return (murmur2(str(key).encode()) & _POSITIVE31) % n
    return shard


def _kafka_str(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        data = _utf8(key)
        return (murmur2(data) & _POSITIVE31) % n
    return shard


def _jump_int(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return jump_hash(key & MASK64, n)  # negative keys as their two's complement
    return shard


def _jump_str(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        data = _utf8(key)
        return jump_hash(murmur3_x64_64(data), n)
    return shard


def _redis_int(n: int) -> ScalarRoute:
    crc16 = binascii.crc_hqx  # CRC-CCITT from 0 is CRC16-XMODEM

    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return (crc16(str(key).encode(), 0) & 0x3FFF) * n // REDIS_SLOTS  # no braces: no tag
    return shard


def _redis_str(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        data = _utf8(key)
        return redis_slot(data) * n // REDIS_SLOTS
    return shard


# --------------------------------------------------------------------------- batch forms
# Each takes the whole batch, normalised by Router.shard_many (int64 array or list of str), and
# routes it chunk by chunk: hash and remainder run while the chunk's arrays are still in cache.


def _chunked(route_chunk: Callable[[Any], np.ndarray]) -> BatchRoute:
    return lambda keys: for_chunks(keys, route_chunk, np.int64)


def _text_of(key_type: str, redis_tags: bool = False) -> Callable[[Any], KeyText]:
    if key_type == "int":
        return int_text  # decimal text has no braces, hence no hash tags
    return lambda keys: str_text(keys, redis_tags)


def _mod_many(n: int, key_type: str) -> BatchRoute:
    return _chunked(lambda keys: remainder(keys, n))  # floor division: never negative, as %


def _hash_mod_many(n: int, key_type: str) -> BatchRoute:
    java_hashes = java_int_hash_many if key_type == "int" else java_string_hashes
    return _chunked(lambda keys: remainder(np.abs(java_hashes(keys)), n))


def _murmur3_many(n: int, key_type: str) -> BatchRoute:
    text_of = _text_of(key_type)
    return _chunked(lambda keys: remainder(murmur3_32_text(text_of(keys)), n))


def _kafka_many(n: int, key_type: str) -> BatchRoute:
    text_of = _text_of(key_type)
    positive = np.uint32(_POSITIVE31)
    return _chunked(lambda keys: remainder(murmur2_text(text_of(keys)) & positive, n))


def _jump_many(n: int, key_type: str) -> BatchRoute:
    if key_type == "int":
        return lambda keys: jump_hash_many(keys, n)
    return _chunked(lambda keys: jump_hash_many(murmur3_x64_64_text(str_text(keys)), n))


def _redis_many(n: int, key_type: str) -> BatchRoute:
    text_of = _text_of(key_type, redis_tags=True)
    return _chunked(lambda keys: (crc16_text(text_of(keys)).astype(np.int64) & 0x3FFF)
                    * n // REDIS_SLOTS)


_SCALAR: dict[tuple[str, str], Callable[[int], ScalarRoute]] = {
    ("mod", "int"): _mod_int,
    ("hash-mod", "int"): _hash_mod_int,
    ("hash-mod", "str"): _hash_mod_str,
    ("murmur3", "int"): _murmur3_int,
    ("murmur3", "str"): _murmur3_str,
    ("kafka", "int"): _kafka_int,
    ("kafka", "str"): _kafka_str,
    ("jump", "int"): _jump_int,
    ("jump", "str"): _jump_str,
    ("redis", "int"): _redis_int,
    ("redis", "str"): _redis_str,
}
_BATCH: dict[str, Callable[[int, str], BatchRoute]] = {
    "mod": _mod_many,
    "hash-mod": _hash_mod_many,
    "murmur3": _murmur3_many,
    "kafka": _kafka_many,
    "jump": _jump_many,
    "redis": _redis_many,
}
