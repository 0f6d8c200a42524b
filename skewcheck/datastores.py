"""The routers of datastores and of hand-written sharding code, with parameters: each is a
per-key closure and a batch function over a KeyChunk that agree bit for bit.

Every factory takes (shards, key_type, params) and returns (per_key, batch). Shard counts that a
ring, slot map or split list fixes must agree with `shards`: a UsageError says which is which.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Callable

import mmh3
import numpy as np

from skewcheck import checksums, des, ketama, mongohash, pghash, slotmap, tokens, xxh64
from skewcheck.errors import UsageError, read_text
from skewcheck.hashes import REDIS_SLOTS, crc16_text, murmur3_32_text, redis_slot
from skewcheck.keytext import (
    INT64_MAX,
    INT64_MIN,
    KeyChunk,
    checked_int,
    utf8_bytes,
)
from skewcheck.md5 import md5_first_word_text, md5_word
from skewcheck.ring import Ring, load_cassandra_ring, seeded_cassandra_ring
from skewcheck.router_params import (
    CassandraParams,
    ElasticsearchParams,
    KetamaParams,
    PostgresParams,
    RangeParams,
    RedisClusterParams,
    VitessParams,
)

ScalarRoute = Callable[[Any], int]
ChunkRoute = Callable[[KeyChunk], np.ndarray]
Factory = Callable[[int, str, Any], tuple[ScalarRoute, ChunkRoute]]

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_U64 = np.uint64


def _int_key(key: Any) -> int:
    if type(key) is not int or not INT64_MIN <= key <= INT64_MAX:
        key = checked_int(key)
    return key


def _key_text(key_type: str) -> Callable[[Any], bytes]:
    """The bytes a text hash reads: UTF-8 for str keys, the decimal text for int keys."""
    if key_type == "int":
        return lambda key: str(_int_key(key)).encode()
    return utf8_bytes


def _int32_checked(keys: np.ndarray, what: str) -> np.ndarray:
    outside = (keys < _INT32_MIN) | (keys > _INT32_MAX)
    if outside.any():
        raise UsageError(f"key {int(keys[outside][0])} is outside the {what} range "
                         f"({_INT32_MIN} to {_INT32_MAX})")
    return keys


def _int32_key(key: Any, what: str) -> int:
    value = _int_key(key)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise UsageError(f"key {value} is outside the {what} range ({_INT32_MIN} to {_INT32_MAX})")
    return value


# --------------------------------------------------------------------------- PostgreSQL, Citus


def _column_type(params: PostgresParams, key_type: str, router: str) -> str:
    column = params.column_type or ("int8" if key_type == "int" else "text")
    if key_type == "str" and column != "text":
        raise UsageError(f"router {router}: column_type {column} needs int keys (key_type: int)")
    return column


def _pg_hash32(column: str, key_type: str) -> tuple[Callable[[Any], int], ChunkRoute]:
    """Postgres' 32-bit hash of a column value (hashint4 / hashint8 / hashtext), per key and
    per chunk, as uint32."""
    if column == "int4":
        return (lambda key: pghash.hash_uint32(_int32_key(key, "int4") & 0xFFFF_FFFF),
                lambda chunk: pghash.hash_uint32_many(_int32_checked(chunk.keys, "int4")))
    if column == "int8":
        return (lambda key: pghash.hash_uint32(pghash.int8_word(_int_key(key))),
                lambda chunk: pghash.hash_uint32_many(pghash.int8_words(chunk.keys)))
    text = _key_text(key_type)
    return (lambda key: pghash.hash_bytes(text(key)),
            lambda chunk: pghash.hash_bytes_text(chunk.text()))


def _pg_hash64(column: str, key_type: str) -> tuple[Callable[[Any], int], ChunkRoute]:
    """The partition hash of a one-column HASH-partitioned table: hash_combine64(0, the column's
    extended hash with HASH_PARTITION_SEED)."""
    seed = pghash.HASH_PARTITION_SEED
    text = _key_text(key_type)

    def column_hash(key: Any) -> int:
        if column == "int4":
            return pghash.hash_uint32_extended(_int32_key(key, "int4") & 0xFFFF_FFFF, seed)
        if column == "int8":
            return pghash.hash_uint32_extended(pghash.int8_word(_int_key(key)), seed)
        return pghash.hash_bytes_extended(text(key), seed)

    def column_hashes(chunk: KeyChunk) -> np.ndarray:
        if column == "int4":
            return pghash.hash_uint32_extended_many(_int32_checked(chunk.keys, "int4"), seed)
        if column == "int8":
            return pghash.hash_uint32_extended_many(pghash.int8_words(chunk.keys), seed)
        return pghash.hash_bytes_extended_text(chunk.text(), seed)

    return (lambda key: pghash.partition_hash(column_hash(key)),
            lambda chunk: pghash.partition_hashes(column_hashes(chunk)))


def pg_hash(shards: int, key_type: str, params: PostgresParams) -> tuple[ScalarRoute, ChunkRoute]:
    """PARTITION BY HASH (k) with MODULUS shards: the partition of REMAINDER row_hash % shards."""
    scalar, batch = _pg_hash64(_column_type(params, key_type, "pg-hash"), key_type)
    n = _U64(shards)
    return (lambda key: scalar(key) % shards,
            lambda chunk: (batch(chunk) % n).astype(np.int64))


def citus(shards: int, key_type: str, params: PostgresParams) -> tuple[ScalarRoute, ChunkRoute]:
    """Citus hash distribution: the int32 hash space split into `shards` equal ranges from
    INT32_MIN (2**32 // shards each, the last taking the remainder); shard i is the i-th range."""
    scalar, batch = _pg_hash32(_column_type(params, key_type, "citus"), key_type)
    increment = (1 << 32) // shards
    top = shards - 1

    def shard(key: Any) -> int:
        return min(((scalar(key) + (1 << 31)) & 0xFFFF_FFFF) // increment, top)

    def shard_chunk(chunk: KeyChunk) -> np.ndarray:
        offset = (batch(chunk) + np.uint32(1 << 31)).astype(np.int64)  # hash - INT32_MIN, as uint32
        return np.minimum(offset // increment, top)
    return shard, shard_chunk


# --------------------------------------------------------------------------- Cassandra


def cassandra_ring(shards: int, params: CassandraParams) -> Ring:
    if params.ring is None:
        return seeded_cassandra_ring(shards, params.vnodes, params.seed)
    ring = load_cassandra_ring(params.ring)
    if len(ring.nodes) != shards:
        raise UsageError(f"ring file {params.ring} names {len(ring.nodes)} nodes but shards is "
                         f"{shards}: set shards to {len(ring.nodes)}")
    return ring


def _cassandra_key(key_type: str, int_type: str) -> tuple[Callable[[Any], bytes], ChunkRoute]:
    """A key's serialised partition key bytes, and a chunk's tokens."""
    if key_type == "str":
        return utf8_bytes, lambda chunk: tokens.tokens_text(chunk.text())
    if int_type == "int":
        return (lambda key: tokens.int_key_bytes(_int32_key(key, "CQL int"), "int"),
                lambda chunk: tokens.int_tokens(_int32_checked(chunk.keys, "CQL int"), "int"))
    return (lambda key: tokens.int_key_bytes(_int_key(key), "bigint"),
            lambda chunk: tokens.int_tokens(chunk.keys, "bigint"))


def cassandra(shards: int, key_type: str,
              params: CassandraParams) -> tuple[ScalarRoute, ChunkRoute]:
    """Murmur3Partitioner token of the serialised key, owned by the first ring token >= it."""
    ring = cassandra_ring(shards, params)
    key_bytes, token_chunk = _cassandra_key(key_type, params.int_type)
    return (lambda key: ring.owner(tokens.token(key_bytes(key))),
            lambda chunk: ring.owners_of(token_chunk(chunk)))


# --------------------------------------------------------------------------- Elasticsearch


def default_routing_num_shards(shards: int) -> int:
    """index.number_of_routing_shards an index gets by default (Elasticsearch 7+, OpenSearch):
    shards * 2**k, the largest such number up to 1024, split at least once."""
    log2_shards = (shards - 1).bit_length()  # ceil(log2(shards))
    return shards << max(1, 10 - log2_shards)


def elasticsearch(shards: int, key_type: str,
                  params: ElasticsearchParams) -> tuple[ScalarRoute, ChunkRoute]:
    """floorMod(murmur3_x86_32(routing as UTF-16LE), routing_num_shards) / routing_factor, where
    the routing value is the document _id or its custom _routing (the key)."""
    routing_shards = params.routing_num_shards or default_routing_num_shards(shards)
    if routing_shards < shards or routing_shards % shards:
        raise UsageError(f"routing_num_shards {routing_shards} must be a multiple of shards "
                         f"({shards})")
    factor = routing_shards // shards
    text = _key_text(key_type)

    def shard(key: Any) -> int:
        data = text(key).decode().encode("utf-16-le")
        return (mmh3.hash(data, 0, signed=True) % routing_shards) // factor

    def shard_chunk(chunk: KeyChunk) -> np.ndarray:
        h = murmur3_32_text(chunk.utf16_text()).view(np.int32).astype(np.int64)
        return (h % routing_shards) // factor  # numpy's % on int64 is a floor modulo
    return shard, shard_chunk


# --------------------------------------------------------------------------- Redis Cluster


def redis_slot_owners(shards: int, params: RedisClusterParams) -> np.ndarray:
    if params.slots is not None:
        owner, nodes = slotmap.slot_ranges(list(params.slots), "routing.params.redis-cluster.slots")
        source = "slots"
    else:
        owner, nodes = slotmap.load_slot_map(str(params.slot_map))
        source = f"slot map {params.slot_map}"
    if len(nodes) != shards:
        raise UsageError(f"{source} has {len(nodes)} primaries but shards is {shards}: "
                         f"set shards to {len(nodes)}")
    return owner


def redis_cluster(shards: int, key_type: str,
                  params: RedisClusterParams) -> tuple[ScalarRoute, ChunkRoute]:
    """The primary owning the key's hash slot (CRC16 of the hash tag) in a real slot map."""
    owner = redis_slot_owners(shards, params)
    owners = owner.tolist()
    text = _key_text(key_type)
    return (lambda key: owners[redis_slot(text(key))],
            lambda chunk: owner[crc16_text(chunk.redis_text()).astype(np.int64)
                                & (REDIS_SLOTS - 1)])


# --------------------------------------------------------------------------- memcached ketama


def ketama_continuum(shards: int, params: KetamaParams) -> Ring:
    where = "routing.params.ketama.servers"
    names = params.servers or tuple(f"shard{i}" for i in range(shards))
    servers = [ketama.parse_server(s, where) for s in names]
    if len(servers) != shards:
        raise UsageError(f"{where} lists {len(servers)} servers but shards is {shards}: "
                         f"set shards to {len(servers)}")
    return ketama.continuum(servers)


def ketama_router(shards: int, key_type: str,
                  params: KetamaParams) -> tuple[ScalarRoute, ChunkRoute]:
    ring = ketama_continuum(shards, params)
    text = _key_text(key_type)
    if params.hash == "fnv1a_64":
        return (lambda key: ring.owner(ketama.twemproxy_fnv1a_64(text(key))),
                lambda chunk: ring.owners_of(ketama.twemproxy_fnv1a_64_text(chunk.text())))
    return (lambda key: ring.owner(md5_word(text(key))),
            lambda chunk: ring.owners_of(md5_first_word_text(chunk.text())))


# --------------------------------------------------------------------------- Vitess


def vitess_bounds(shards: int, params: VitessParams) -> np.ndarray:
    """Lower bound (as a uint64 keyspace ID) of shards 1..n-1."""
    if params.shard_ranges is None:
        # an even split: shard i starts at ceil(i * 2**64 / n)
        return np.array([-(-(i << 64) // shards) for i in range(1, shards)], dtype=_U64)
    names = list(params.shard_ranges)
    where = "routing.params.vitess-*.shard_ranges"
    if len(names) != shards:
        raise UsageError(f"{where} names {len(names)} shards but shards is {shards}")
    bounds = []
    for i, name in enumerate(names):
        start, sep, end = name.partition("-")
        if not sep or any(c not in "0123456789abcdefABCDEF" for c in start + end) \
                or len(start) > 16 or len(end) > 16:
            raise UsageError(f"{where}: {name!r} is not a Vitess shard name such as -80 or 40-80")
        if (i == 0) != (start == "") or (i == len(names) - 1) != (end == ""):
            raise UsageError(f"{where}: the first shard must start at the beginning (-..) and the "
                             "last end at the end (..-)")
        previous_end = names[i - 1].partition("-")[2] if i else ""
        if i and start.lower().ljust(16, "0") != previous_end.lower().ljust(16, "0"):
            raise UsageError(f"{where}: {name!r} does not start where {names[i - 1]!r} ends")
        if i:
            bounds.append(int(start.ljust(16, "0"), 16))
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise UsageError(f"{where}: shard ranges must ascend")
    return np.array(bounds, dtype=_U64)


def _vitess(ksid_of: Callable[[Any], int], ksid_chunk: ChunkRoute, shards: int,
            params: VitessParams) -> tuple[ScalarRoute, ChunkRoute]:
    bounds = vitess_bounds(shards, params)
    listed = bounds.tolist()
    return (lambda key: bisect_right(listed, ksid_of(key)),
            lambda chunk: np.searchsorted(bounds, ksid_chunk(chunk), side="right").astype(np.int64))


def vitess_hash(shards: int, key_type: str, params: VitessParams) -> tuple[ScalarRoute, ChunkRoute]:
    """Vitess' `hash` vindex: keyspace ID = DES(null key, the uint64 id big-endian)."""
    if key_type != "int":
        raise UsageError("router vitess-hash needs int keys (the hash vindex maps integers)")
    mask = (1 << 64) - 1
    return _vitess(lambda key: des.des_zero_key(_int_key(key) & mask),
                   lambda chunk: des.des_zero_key_many(chunk.keys.view(_U64)), shards, params)


def vitess_xxhash(shards: int, key_type: str,
                  params: VitessParams) -> tuple[ScalarRoute, ChunkRoute]:
    """Vitess' `xxhash` vindex: keyspace ID = xxhash64 of the id's bytes (an integer's decimal
    text), written little-endian; shard ranges compare keyspace IDs as big-endian bytes."""
    text = _key_text(key_type)
    return _vitess(lambda key: int.from_bytes(xxh64.xxh64(text(key)).to_bytes(8, "little"), "big"),
                   lambda chunk: xxh64.xxh64_text(chunk.text()).byteswap(), shards, params)


# --------------------------------------------------------------------------- hand-written


def _text_mod(hash_one: Callable[[bytes], int], hash_text: Callable[[Any], np.ndarray]) -> Factory:
    def factory(shards: int, key_type: str, params: Any) -> tuple[ScalarRoute, ChunkRoute]:
        text = _key_text(key_type)
        n = int(shards)
        return (lambda key: hash_one(text(key)) % n,
                lambda chunk: (hash_text(chunk.text()).astype(_U64) % _U64(n)).astype(np.int64))
    return factory


crc32_mod = _text_mod(checksums.crc32, checksums.crc32_text)
fnv1a32_mod = _text_mod(checksums.fnv1a32, checksums.fnv1a32_text)
fnv1a64_mod = _text_mod(checksums.fnv1a64, checksums.fnv1a64_text)
xxhash64_mod = _text_mod(xxh64.xxh64, xxh64.xxh64_text)


# --------------------------------------------------------------------------- ranges


def _range_values(over: str, key_type: str) -> tuple[Callable[[Any], Any], ChunkRoute]:
    """What the split points are compared with: the key itself, or a hash of it."""
    text = _key_text(key_type)
    if over == "key":
        if key_type == "int":
            return _int_key, lambda chunk: chunk.keys
        # row keys compare as bytes (HBase, TiKV): UTF-8 order is code point order
        return utf8_bytes, lambda chunk: np.array([k.encode() for k in chunk.keys], dtype=object)
    if over == "murmur3":
        return (lambda key: mmh3.hash(text(key), 0, signed=False),
                lambda chunk: murmur3_32_text(chunk.text()))
    if over == "xxhash64":
        return (lambda key: xxh64.xxh64(text(key)), lambda chunk: xxh64.xxh64_text(chunk.text()))
    if over == "crc32":
        return (lambda key: checksums.crc32(text(key)),
                lambda chunk: checksums.crc32_text(chunk.text()))
    if over == "mongo-hash":  # an int key is a NumberLong, a str key a String
        if key_type == "int":
            return (lambda key: mongohash.mongo_hash_int(_int_key(key)),
                    lambda chunk: mongohash.mongo_hashes_int(chunk.keys))
        return (lambda key: mongohash.mongo_hash_str(utf8_bytes(key)),
                lambda chunk: mongohash.mongo_hashes_str(chunk.keys))
    column = "int8" if key_type == "int" else "text"  # pg-hash: Citus' signed int32 hash values
    scalar, batch = _pg_hash32(column, key_type)
    def signed(h: int) -> int:
        return h - ((h >> 31) << 32)

    return (lambda key: signed(scalar(key)),
            lambda chunk: batch(chunk).view(np.int32).astype(np.int64))


def _read_splits(path: str) -> list[str]:
    lines = read_text(path, "splits file").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def range_splits(shards: int, key_type: str, params: RangeParams) -> list[Any]:
    if params.splits is not None:
        source, raw = "routing.params.range.splits", list(params.splits)
    else:
        source, raw = f"splits file {params.splits_file}", _read_splits(str(params.splits_file))
    text_keys = params.over == "key" and key_type == "str"
    splits: list[Any] = []
    for item in raw:
        if text_keys:
            splits.append(str(item).encode())
            continue
        try:
            splits.append(int(str(item).strip()) if not isinstance(item, int) else item)
        except ValueError:
            raise UsageError(f"{source}: split point {item!r} is not an integer") from None
    if any(b <= a for a, b in zip(splits, splits[1:])):
        raise UsageError(f"{source}: split points must strictly ascend")
    if len(splits) + 1 != shards:
        raise UsageError(f"{source} has {len(splits)} split points, which make "
                         f"{len(splits) + 1} shards, but shards is {shards}")
    return splits


def range_router(shards: int, key_type: str, params: RangeParams) -> tuple[ScalarRoute, ChunkRoute]:
    """Shard i holds values in [splits[i-1], splits[i]); values below the first split: shard 0."""
    splits = range_splits(shards, key_type, params)
    value_of, values = _range_values(params.over, key_type)
    if params.over == "key" and key_type == "str":
        table = np.empty(len(splits), dtype=object)
        table[:] = splits
    else:
        signed = params.over in ("key", "pg-hash", "mongo-hash")
        low, high = (-(1 << 63), (1 << 63) - 1) if signed else (0, (1 << 64) - 1)
        if any(not low <= v <= high for v in splits):
            raise UsageError(f"routing.params.range: split points lie outside the values "
                             f"{params.over} gives ({low} to {high})")
        table = np.array(splits, dtype=np.int64 if signed else np.uint64)
    return (lambda key: bisect_right(splits, value_of(key)),
            lambda chunk: np.searchsorted(table, values(chunk), side="right").astype(np.int64))


FACTORIES: dict[str, Factory] = {
    "pg-hash": pg_hash,
    "citus": citus,
    "cassandra": cassandra,
    "elasticsearch": elasticsearch,
    "redis-cluster": redis_cluster,
    "ketama": ketama_router,
    "vitess-hash": vitess_hash,
    "vitess-xxhash": vitess_xxhash,
    "crc32": crc32_mod,
    "fnv1a32": fnv1a32_mod,
    "fnv1a64": fnv1a64_mod,
    "xxhash64": xxhash64_mod,
    "range": range_router,
}
