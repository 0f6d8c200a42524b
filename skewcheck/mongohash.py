"""MongoDB's hashed shard key values (BSONElementHasher::hash64, seed 0), per key and per batch.

The hash is MD5 over the seed (int32), the value's canonical BSON type (int32) and its bytes,
all little-endian; the digest's first 8 bytes, read as a little-endian int64, are the chunk key.
Every number (int, long, double) is hashed as the int64 it truncates to (canonical type 10); a
string (canonical type 15) as BSON stores it: its byte length + 1 as int32, its UTF-8, a NUL.
Published vectors: src/mongo/db/hasher_test.cpp (1 -> 5902408780260971510, "abc" ->
8478485326885698097).
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from skewcheck.keytext import bytes_text, fixed_width_text, str_units
from skewcheck.md5 import md5_first64_text

NUMBER_TYPE = 10  # canonicalType() of NumberInt/NumberLong/NumberDouble
STRING_TYPE = 15  # canonicalType() of String and Symbol
_SEED = 0  # BSONElementHasher::DEFAULT_HASH_SEED


def _signed(u: int) -> int:
    return u - (1 << 64) if u >> 63 else u


def mongo_hash_int(value: int) -> int:
    data = struct.pack("<iiq", _SEED, NUMBER_TYPE, value)
    return struct.unpack("<q", hashlib.md5(data).digest()[:8])[0]


def mongo_hash_str(data: bytes) -> int:
    """The hash of a string whose UTF-8 is `data`."""
    record = struct.pack("<iii", _SEED, STRING_TYPE, len(data) + 1) + data + b"\0"
    return struct.unpack("<q", hashlib.md5(record).digest()[:8])[0]


def mongo_hashes_int(keys: np.ndarray) -> np.ndarray:
    """mongo_hash_int of every int64 key, as int64."""
    records = np.zeros((keys.size, 4), dtype=np.uint32)
    records[:, 0] = _SEED
    records[:, 1] = NUMBER_TYPE
    records.view(np.int64)[:, 1] = keys  # little-endian machine: the value's bytes as they go
    return md5_first64_text(fixed_width_text(records.view(np.uint8).ravel(), 16)).view(np.int64)


def mongo_hashes_str(keys: list[str]) -> np.ndarray:
    """mongo_hash_str of every str key's UTF-8, as int64."""
    units, starts, lengths = str_units(keys)
    n = len(keys)
    sizes = lengths + 13  # seed, type, length prefix, text, NUL
    out_starts = np.zeros(n, dtype=np.int64)
    np.cumsum(sizes[:-1], out=out_starts[1:])
    data = np.zeros(int(sizes.sum()), dtype=np.uint8)
    prefix = np.zeros((n, 3), dtype=np.uint32)
    prefix[:, 0], prefix[:, 1] = _SEED, STRING_TYPE
    prefix[:, 2] = (lengths + 1).astype(np.uint32)
    head = prefix.view(np.uint8).reshape(n, 12)
    for j in range(12):
        data[out_starts + j] = head[:, j]
    total = int(lengths.sum())
    if total:
        owner = np.repeat(np.arange(n), lengths)
        first = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=first[1:])
        within = np.arange(total) - first[owner]
        data[out_starts[owner] + 12 + within] = units[starts[owner] + within]
    return md5_first64_text(bytes_text(data, out_starts, sizes)).view(np.int64)
