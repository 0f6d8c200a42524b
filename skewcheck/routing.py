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

from skewcheck.datastores import FACTORIES
from skewcheck.errors import UsageError
from skewcheck.hashes import (
    MASK64,
    REDIS_SLOTS,
    crc16_text,
    java_int_hash,
    java_int_hash_many,
    java_long_hash,
    java_long_hash_many,
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
)
from skewcheck.keytext import (
    INT64_MAX,
    INT64_MIN,
    KeyBatch,
    KeyChunk,
    check_key_type,
    checked_int,
    checked_str,
    utf8_bytes,
)
from skewcheck.router_params import canonical_params, label, parse_params

ROUTER_NAMES: tuple[str, ...] = (
    "mod", "hash-mod", "murmur3", "kafka", "jump", "redis",
    "pg-hash", "citus", "cassandra", "elasticsearch", "redis-cluster", "ketama",
    "vitess-hash", "vitess-xxhash", "crc32", "fnv1a32", "fnv1a64", "xxhash64", "range",
)
MAX_SHARDS = 2**31 - 1  # shard counts are Java ints in ShardingSphere, Kafka and Guava's jump hash

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_POSITIVE31 = 0x7FFF_FFFF  # Kafka's toPositive(): clear the sign bit, not abs()

ScalarRoute = Callable[[Any], int]
ChunkRoute = Callable[[KeyChunk], np.ndarray]


@dataclass(frozen=True)
class Router:
    """A named router over a fixed number of shards for one key type.

    `router.shard(key) -> int` is a closure bound at construction for this router and key type,
    so a per-request caller does no dispatch. `shard_chunk(chunk)` routes one chunk of a
    normalised `KeyBatch`, whose key text every router of a batch shares; `shard_many(keys)`
    routes a whole batch.
    """

    name: str
    shards: int
    key_type: str
    params: Any = ()  # a dict or params model on the way in; a sorted tuple of items once built
    shard: ScalarRoute = field(init=False, repr=False, compare=False)
    shard_chunk: ChunkRoute = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self.name, self.shards, self.key_type)
        object.__setattr__(self, "shards", int(self.shards))  # a numpy int would leak into results
        model = parse_params(self.name, dict(self.params) if isinstance(self.params, tuple)
                             else self.params)
        object.__setattr__(self, "params", canonical_params(model))
        if self.name in FACTORIES:
            scalar, batch = FACTORIES[self.name](self.shards, self.key_type, model)
        elif self.name == "hash-mod" and getattr(model, "java_type", "int") == "long":
            if self.key_type != "int":
                raise UsageError("router hash-mod: java_type long needs int keys (str keys hash "
                                 "as a String)")
            scalar, batch = _hash_mod_long(self.shards), _hash_mod_long_many(self.shards)
        else:
            scalar = _SCALAR[self.name, self.key_type](self.shards)
            batch = _BATCH[self.name](self.shards, self.key_type)
        object.__setattr__(self, "shard", scalar)
        object.__setattr__(self, "shard_chunk", batch)

    @property
    def label(self) -> str:
        """The router as reports name it, with its parameters: `cassandra(vnodes=16, seed=0)`."""
        return label(self.name, self.params)

    def shard_many(self, keys: Any) -> np.ndarray:
        """int64 shard of every key (raw keys of this key type, or a KeyBatch of them)."""
        return KeyBatch.of(keys, self.key_type).map(self.shard_chunk, np.int64)

    def __reduce__(self) -> tuple[Callable[..., Router], tuple[str, int, str, dict[str, Any]]]:
        # closures do not pickle: rebuild from the definition (files are read again)
        return make_router, (self.name, self.shards, self.key_type, dict(self.params))


def make_router(name: str, shards: int, key_type: str, params: Any = None) -> Router:
    """The router `name` over `shards` shards with its parameters (a dict; None: defaults);
    UsageError for an unknown name, a bad count or a bad parameter."""
    return Router(name, shards, key_type, params or ())


def _validate(name: str, shards: int, key_type: str) -> None:
    check_key_type(key_type)
    if name not in ROUTER_NAMES:
        raise UsageError(f"unknown router {name!r}; valid routers: {', '.join(ROUTER_NAMES)}")
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)):
        raise UsageError(f"shards must be an integer, got {shards!r}")
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"shards must be between 1 and {MAX_SHARDS}, got {shards}")
    if name == "mod" and key_type != "int":
        raise UsageError("router mod needs int keys")
    if name == "vitess-hash" and key_type != "int":
        raise UsageError("router vitess-hash needs int keys")


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


def _hash_mod_long(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return abs(java_long_hash(key)) % n  # a java.lang.Long, whatever its value
    return shard


def _hash_mod_long_many(n: int) -> ChunkRoute:
    return lambda chunk: remainder(np.abs(java_long_hash_many(chunk.keys)), n)


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


def _murmur3_str(n: int) -> ScalarRoute:
    hash32 = mmh3.hash

    def shard(key: Any) -> int:
        return hash32(utf8_bytes(key), signed=False) % n  # bytes: mmh3 crashes on a lone surrogate
    return shard


def _kafka_int(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
            key = checked_int(key)
        return (murmur2(str(key).encode()) & _POSITIVE31) % n
    return shard


def _kafka_str(n: int) -> ScalarRoute:
    def shard(key: Any) -> int:
        data = utf8_bytes(key)
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
        data = utf8_bytes(key)
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
        data = utf8_bytes(key)
        return redis_slot(data) * n // REDIS_SLOTS
    return shard


# --------------------------------------------------------------------------- batch forms
# Each takes one chunk of a KeyBatch (int64 keys or a list of str) and reads the chunk's shared
# text: hash and remainder run while the chunk's arrays are still in cache.


def _mod_many(n: int, key_type: str) -> ChunkRoute:
    return lambda chunk: remainder(chunk.keys, n)  # floor division: never negative, as %


def _hash_mod_many(n: int, key_type: str) -> ChunkRoute:
    java_hashes = java_int_hash_many if key_type == "int" else java_string_hashes
    return lambda chunk: remainder(np.abs(java_hashes(chunk.keys)), n)


def _murmur3_many(n: int, key_type: str) -> ChunkRoute:
    return lambda chunk: remainder(murmur3_32_text(chunk.text()), n)


def _kafka_many(n: int, key_type: str) -> ChunkRoute:
    positive = np.uint32(_POSITIVE31)
    return lambda chunk: remainder(murmur2_text(chunk.text()) & positive, n)


def _jump_many(n: int, key_type: str) -> ChunkRoute:
    if key_type == "int":
        return lambda chunk: jump_hash_many(chunk.keys, n)
    return lambda chunk: jump_hash_many(murmur3_x64_64_text(chunk.text()), n)


def _redis_many(n: int, key_type: str) -> ChunkRoute:
    return lambda chunk: ((crc16_text(chunk.redis_text()).astype(np.int64) & 0x3FFF) * n
                          // REDIS_SLOTS)


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
_BATCH: dict[str, Callable[[int, str], ChunkRoute]] = {
    "mod": _mod_many,
    "hash-mod": _hash_mod_many,
    "murmur3": _murmur3_many,
    "kafka": _kafka_many,
    "jump": _jump_many,
    "redis": _redis_many,
}
