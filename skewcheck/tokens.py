"""Cassandra / ScyllaDB Murmur3Partitioner tokens, per key and per batch.

A partition key's token is the first 64 bits of MurmurHash3 x64_128 (seed 0) of its serialised
bytes, as a signed long, with Long.MIN_VALUE moved to Long.MAX_VALUE (MIN is the ring's minimum
token, which only the empty key has). Cassandra's MurmurHash differs from the reference: its
tail bytes are Java bytes, sign-extended before they are shifted, so a key whose last len % 16
bytes hold one >= 0x80 hashes differently from mmh3. Keys serialise as CQL does: bigint as 8
bytes and int as 4 bytes, big-endian two's complement; text as UTF-8.
"""

from __future__ import annotations

import struct

import mmh3
import numpy as np

from skewcheck.hashes import MASK64, murmur3_x64_64_text
from skewcheck.keytext import KeyText, fixed_width_text

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT_WIDTHS = {"bigint": 8, "int": 4}  # CQL integer column types and their serialised size

_C1, _C2 = 0x87C37B91114253D5, 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    return k ^ (k >> 33)


def _java_tail_lane(tail: bytes) -> int:
    lane = 0
    for i, byte in enumerate(tail):
        signed = byte - 256 if byte >= 0x80 else byte
        lane ^= (signed << (8 * i)) & MASK64
    return lane


def _cassandra_h1(data: bytes) -> int:
    length = len(data)
    h1 = h2 = 0
    whole = length // 16
    for k1, k2 in struct.iter_unpack("<2Q", data[:whole * 16]):
        h1 ^= _rotl((k1 * _C1) & MASK64, 31) * _C2 & MASK64
        h1 = (_rotl(h1, 27) + h2) * 5 + 0x52DCE729 & MASK64
        h2 ^= _rotl((k2 * _C2) & MASK64, 33) * _C1 & MASK64
        h2 = (_rotl(h2, 31) + h1) * 5 + 0x38495AB5 & MASK64
    tail = data[whole * 16:]
    k2 = _java_tail_lane(tail[8:])
    k1 = _java_tail_lane(tail[:8])
    h2 ^= _rotl((k2 * _C2) & MASK64, 33) * _C1 & MASK64
    h1 ^= _rotl((k1 * _C1) & MASK64, 31) * _C2 & MASK64
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    h1, h2 = _fmix(h1), _fmix(h2)
    return (h1 + h2) & MASK64


def _signed(u: int) -> int:
    return u - (1 << 64) if u >> 63 else u


def token(data: bytes) -> int:
    """Murmur3Partitioner.getToken of a serialised partition key (a signed 64-bit token)."""
    if not data:
        return INT64_MIN  # the partitioner's MINIMUM token
    tail = data[len(data) & ~15:]
    if max(tail, default=0) < 0x80:  # no sign extension to mimic: the reference hash is the same
        h1 = mmh3.hash64(data, signed=False)[0]
    else:
        h1 = _cassandra_h1(data)
    value = _signed(h1)
    return INT64_MAX if value == INT64_MIN else value


def int_key_bytes(key: int, int_type: str) -> bytes:
    """A CQL bigint/int key as it is serialised: big-endian two's complement."""
    return key.to_bytes(INT_WIDTHS[int_type], "big", signed=True)


def tokens_text(text: KeyText) -> np.ndarray:
    """Murmur3Partitioner tokens (int64) of every key of a KeyText, in the caller's key order."""
    h1 = murmur3_x64_64_text(text, signed_tail=True).view(np.int64)
    h1 = np.where(h1 == INT64_MIN, np.int64(INT64_MAX), h1)
    return np.where(text.restore(text.lengths) == 0, np.int64(INT64_MIN), h1)


def int_tokens(keys: np.ndarray, int_type: str) -> np.ndarray:
    """Murmur3Partitioner tokens of int64 keys serialised as CQL bigint or int."""
    width = INT_WIDTHS[int_type]
    data = keys.astype(">i8" if width == 8 else ">i4").view(np.uint8)
    return tokens_text(fixed_width_text(data, width))
