"""Hash kernels behind the routers: per-key forms and numpy batch forms that agree bit for bit.

Per-key forms are what a per-request caller (the demo target) uses; batch forms take a chunk's
`KeyText` (skewcheck.keytext: the text of all its keys in one buffer) and hash it one block step
at a time across all keys. `*_many` run a kernel over a whole batch of raw keys.
"""

from __future__ import annotations

import binascii
import struct
from typing import Callable, Sequence

import mmh3
import numpy as np

from skewcheck.keytext import (
    KeyBatch,
    KeyChunk,
    KeyText,
    for_chunks,
    int_keys,
    str_keys,
    str_units,
    unencodable_key_error,
)

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

_U32 = np.uint32
_U64 = np.uint64


def remainder(values: np.ndarray, n: int) -> np.ndarray:
    """values % n with Python's sign rule, as int64: numpy's floor_divide by a scalar is far
    faster than its remainder, so take the remainder through it."""
    divisor = values.dtype.type(n)
    return (values - (values // divisor) * divisor).astype(np.int64, copy=False)


def _assign(state: np.ndarray, new: np.ndarray, live: np.ndarray | None) -> None:
    """Commit one block step: to every key of the slice, or only to the keys still in their text."""
    if live is None:
        state[...] = new
    else:
        np.putmask(state, live, new)




def text_hash_many(keys: object, key_type: str, kernel: Callable[[KeyText], np.ndarray],
                   dtype: type, redis_tags: bool = False) -> np.ndarray:
    """A text kernel over a whole batch of keys, chunk by chunk."""
    batch = KeyBatch.of(keys, key_type)
    text: Callable[[KeyChunk], KeyText] = KeyChunk.redis_text if redis_tags else KeyChunk.text
    return batch.map(lambda chunk: kernel(text(chunk)), dtype)


# --------------------------------------------------------------------------- MurmurHash3


_C1_32, _C2_32 = 0xCC9E2D51, 0x1B873593
_TAIL32 = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], dtype=_U32)


def murmur3_32(key_text: str, seed: int = 0) -> int:
    """Unsigned MurmurHash3 x86_32 of the key's UTF-8 text: mmh3.hash(text, seed, signed=False)."""
    try:
        data = key_text.encode("utf-8")  # mmh3 would crash on a lone surrogate, so encode first
    except UnicodeEncodeError:
        raise unencodable_key_error(key_text) from None
    return mmh3.hash(data, seed, signed=False)


def murmur3_32_many(keys: object, key_type: str, seed: int = 0) -> np.ndarray:
    """uint32 MurmurHash3 x86_32 of each key's text; bit-equal to murmur3_32 key by key."""
    if not 0 <= seed <= MASK32:
        raise ValueError("seed must be in [0, 2**32)")
    return text_hash_many(keys, key_type, lambda text: murmur3_32_text(text, seed), _U32)


def _rotl32(x: np.ndarray, r: int) -> np.ndarray:
    """Rotate left in place (x is always a private copy) and return x."""
    spill = x >> _U32(32 - r)
    x <<= _U32(r)
    x |= spill
    return x


def _rotl64(x: np.ndarray, r: int) -> np.ndarray:
    spill = x >> _U64(64 - r)
    x <<= _U64(r)
    x |= spill
    return x


def _fmix32(h: np.ndarray) -> np.ndarray:
    h ^= h >> _U32(16)
    h *= _U32(0x85EBCA6B)
    h ^= h >> _U32(13)
    h *= _U32(0xC2B2AE35)
    h ^= h >> _U32(16)
    return h


def _fmix64(k: np.ndarray) -> np.ndarray:
    k ^= k >> _U64(33)
    k *= _U64(0xFF51AFD7ED558CCD)
    k ^= k >> _U64(33)
    k *= _U64(0xC4CEB9FE1A85EC53)
    k ^= k >> _U64(33)
    return k


def _mix_k1_32(k: np.ndarray) -> np.ndarray:
    k = _rotl32(k * _U32(_C1_32), 15)
    k *= _U32(_C2_32)
    return k


def _murmur3_round(h: np.ndarray, block: np.ndarray) -> np.ndarray:
    h = h ^ _mix_k1_32(block)
    _rotl32(h, 13)
    h *= _U32(5)
    h += _U32(0xE6546B64)
    return h


def murmur3_32_text(text: KeyText, seed: int = 0) -> np.ndarray:
    """MurmurHash3 x86_32 of every key of a KeyText, in the caller's key order."""
    h = np.full(len(text), seed, dtype=_U32)
    for i, (count, live) in enumerate(text.rounds(4)):
        head = h[:count]
        _assign(head, _murmur3_round(head, text.u32(i, count)), live)
    tail = text.u32(text.lengths >> 2, len(text))
    tail &= _TAIL32[text.lengths & 3]
    h ^= _mix_k1_32(tail)  # an empty tail stays 0 and changes nothing
    h ^= text.lengths.astype(_U32)
    return text.restore(_fmix32(h))


_C1_64, _C2_64 = 0x87C37B91114253D5, 0x4CF5AD432745937F
_TAIL64 = np.array([(1 << (8 * b)) - 1 for b in range(9)], dtype=_U64)


def murmur3_x64_64(data: bytes) -> int:
    """First half of MurmurHash3 x64_128, unsigned; = mmh3.hash64(data, signed=False)[0]."""
    return mmh3.hash64(data, signed=False)[0]  # keyword: mmh3 5.x ignores a positional `signed`


def murmur3_x64_64_many(keys: object, key_type: str) -> np.ndarray:
    """uint64 first half of MurmurHash3 x64_128 of each key's text; = murmur3_x64_64 per key."""
    return text_hash_many(keys, key_type, murmur3_x64_64_text, _U64)


def _mix_k1_64(k: np.ndarray) -> np.ndarray:
    k = _rotl64(k * _U64(_C1_64), 31)
    k *= _U64(_C2_64)
    return k


def _mix_k2_64(k: np.ndarray) -> np.ndarray:
    k = _rotl64(k * _U64(_C2_64), 33)
    k *= _U64(_C1_64)
    return k


def _x64_round(h: np.ndarray, k: np.ndarray, other: np.ndarray, r: int, c: int) -> np.ndarray:
    h = h ^ k
    _rotl64(h, r)
    h += other
    h *= _U64(5)
    h += _U64(c)
    return h


def _sign_fill(lane: np.ndarray) -> np.ndarray:
    """What Java's sign-extended `(long) byte << 8*i` adds to a tail lane beyond the plain bytes:
    each byte with its top bit set flips every byte above it."""
    flags = (lane >> _U64(7)) & _U64(0x0101_0101_0101_0101)
    flags ^= flags << _U64(8)
    flags ^= flags << _U64(16)
    flags ^= flags << _U64(32)  # byte p: parity of the flags of bytes 0..p
    return (flags << _U64(8)) * _U64(0xFF)


def murmur3_x64_64_text(text: KeyText, signed_tail: bool = False) -> np.ndarray:
    """First 64 bits of MurmurHash3 x64_128 (seed 0) of every key, in the caller's key order.

    `signed_tail`: tail bytes are sign-extended before they are shifted, as Cassandra's
    MurmurHash.hash3_x64_128 does (Java bytes are signed)."""
    n = len(text)
    h1 = np.zeros(n, dtype=_U64)
    h2 = np.zeros(n, dtype=_U64)
    for i, (count, live) in enumerate(text.rounds(16)):
        a, b = h1[:count], h2[:count]
        new_a = _x64_round(a, _mix_k1_64(text.u64(4 * i, count)), b, 27, 0x52DCE729)
        new_b = _x64_round(b, _mix_k2_64(text.u64(4 * i + 2, count)), new_a, 31, 0x38495AB5)
        _assign(a, new_a, live)
        _assign(b, new_b, live)
    word = (text.lengths >> 4) * 4
    rest = text.lengths & 15
    k2 = text.u64(word + 2, n) & _TAIL64[np.maximum(rest - 8, 0)]
    k1 = text.u64(word, n) & _TAIL64[np.minimum(rest, 8)]
    if signed_tail:
        k2 ^= _sign_fill(k2)  # the fill runs to the top of the lane, past the tail's end
        k1 ^= _sign_fill(k1)
    h2 ^= _mix_k2_64(k2)  # an empty lane stays 0 and changes nothing
    h1 ^= _mix_k1_64(k1)
    length = text.lengths.astype(_U64)
    h1 ^= length
    h2 ^= length
    h1 += h2
    h2 += h1
    h1 = _fmix64(h1)
    h1 += _fmix64(h2)
    return text.restore(h1)


# --------------------------------------------------------------------------- Kafka murmur2

_M2_SEED, _M2_M = 0x9747B28C, 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (unsigned 32-bit), as org.apache.kafka.common.utils.Utils.murmur2."""
    length = len(data)
    h = (_M2_SEED ^ length) & MASK32
    whole = length >> 2
    for k in struct.unpack_from(f"<{whole}I", data):
        k = (k * _M2_M) & MASK32
        h = (h * _M2_M ^ (k ^ k >> 24) * _M2_M) & MASK32
    if length & 3:
        h = ((h ^ int.from_bytes(data[whole * 4:], "little")) * _M2_M) & MASK32
    h ^= h >> 13
    h = (h * _M2_M) & MASK32
    return h ^ (h >> 15)


def murmur2_many(keys: object, key_type: str) -> np.ndarray:
    """uint32 Kafka murmur2 of each key's text; = murmur2 per key."""
    return text_hash_many(keys, key_type, murmur2_text, _U32)


def murmur2_text(text: KeyText) -> np.ndarray:
    """Kafka murmur2 of every key of a KeyText, in the caller's key order."""
    m = _U32(_M2_M)
    h = text.lengths.astype(_U32) ^ _U32(_M2_SEED)
    for i, (count, live) in enumerate(text.rounds(4)):
        k = text.u32(i, count) * m
        k ^= k >> _U32(24)
        k *= m
        head = h[:count]
        _assign(head, (head * m) ^ k, live)
    rest = text.lengths & 3
    tail = text.u32(text.lengths >> 2, len(text)) & _TAIL32[rest]
    h = np.where(rest > 0, (h ^ tail) * m, h)
    h ^= h >> _U32(13)
    h *= m
    h ^= h >> _U32(15)
    return text.restore(h)


# --------------------------------------------------------------------------- Redis CRC16


def _crc16_shift(register: np.ndarray, bits: int) -> np.ndarray:
    for _ in range(bits):
        carry = (register & 0x8000) != 0
        register = ((register << 1) & 0xFFFF) ^ np.where(carry, 0x1021, 0)
    return register.astype(np.uint16)


# one byte per step (the classic table) and two bytes per step: a 16-bit register takes 16 bits
_CRC_BYTE = _crc16_shift(np.arange(256, dtype=np.int64) << 8, 8)
_CRC_PAIR = _crc16_shift(np.arange(1 << 16, dtype=np.int64), 16)
REDIS_SLOTS = 16384


def redis_slot(data: bytes) -> int:
    """Redis Cluster slot of a key: CRC16-XMODEM of its hash tag (or whole key) & 0x3FFF."""
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return binascii.crc_hqx(data, 0) & 0x3FFF


def redis_slot_many(keys: object, key_type: str) -> np.ndarray:
    """int64 Redis Cluster slot of each key's text, hash tags honoured; = redis_slot per key."""
    crc = text_hash_many(keys, key_type, crc16_text, np.uint16, redis_tags=True)
    return crc.astype(np.int64) & 0x3FFF


def crc16_text(text: KeyText) -> np.ndarray:
    """CRC16-XMODEM of every key of a KeyText, in the caller's key order."""
    crc = np.zeros(len(text), dtype=np.int64)
    for i, (count, live) in enumerate(text.rounds(4)):
        word = text.u32(i, count).astype(np.int64)
        pairs = ((word & 0x00FF00FF) << 8) | ((word >> 8) & 0x00FF00FF)  # big-endian byte pairs
        head = crc[:count]
        _assign(head, _CRC_PAIR[_CRC_PAIR[head ^ (pairs & 0xFFFF)] ^ (pairs >> 16)], live)
    rest = text.lengths & 3
    word = text.u32(text.lengths >> 2, len(text)).astype(np.int64)
    pair = ((word & 0xFF) << 8) | ((word >> 8) & 0xFF)
    crc = np.where(rest >= 2, _CRC_PAIR[crc ^ pair], crc)
    last = np.where(rest == 3, word >> 16, word) & 0xFF
    stepped = ((crc << 8) & 0xFFFF) ^ _CRC_BYTE[(crc >> 8) ^ last]
    crc = np.where((rest & 1) == 1, stepped, crc)
    return text.restore(crc.astype(np.uint16))


# --------------------------------------------------------------------------- Java hashCode


# short keys skip the per-unit mask: their unwrapped hash stays a few machine words long
_UNMASKED_UNITS = 64


def java_string_hash(text: str) -> int:
    """Java String.hashCode: h = 31*h + c over UTF-16 code units, as a signed int32."""
    if text.isascii():
        units: Sequence[int] = text.encode("ascii")
    else:
        try:
            units = memoryview(text.encode("utf-16-le")).cast("H")
        except UnicodeEncodeError:
            raise unencodable_key_error(text) from None
    h = 0
    if len(units) <= _UNMASKED_UNITS:
        for unit in units:
            h = 31 * h + unit
    else:
        for unit in units:
            h = (31 * h + unit) & MASK32
    h &= MASK32
    return h - ((h >> 31) << 32)


def java_int_hash(value: int) -> int:
    """Integer.hashCode for int32 values, Long.hashCode `(int)(v ^ (v >>> 32))` beyond."""
    if -0x8000_0000 <= value <= 0x7FFF_FFFF:
        return value
    h = (value ^ (value >> 32)) & MASK32  # low 32 bits of v >> 32 do not depend on the sign fill
    return h - ((h >> 31) << 32)


def java_long_hash(value: int) -> int:
    """Long.hashCode `(int)(v ^ (v >>> 32))`, for every int64 value (Long.hashCode(-5) is 4)."""
    h = (value ^ (value >> 32)) & MASK32
    return h - ((h >> 31) << 32)


def java_long_hash_many(keys: np.ndarray) -> np.ndarray:
    """java_long_hash of every int64 key, as int64."""
    u = keys.view(_U64)
    return ((u ^ (u >> _U64(32))) & _U64(MASK32)).astype(_U32).view(np.int32).astype(np.int64)


def java_int_hash_many(keys: np.ndarray) -> np.ndarray:
    """java_int_hash of every int64 key, as int64."""
    u = keys.view(_U64)
    long_hash = ((u ^ (u >> _U64(32))) & _U64(MASK32)).astype(_U32).view(np.int32)
    in_int32 = (keys >= -0x8000_0000) & (keys <= 0x7FFF_FFFF)
    return np.where(in_int32, keys, long_hash.astype(np.int64))


class _PowersOf:
    """Powers of a unit mod 2**32, computed once and grown on demand."""

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.table = np.ones(1, dtype=_U32)

    def upto(self, n: int) -> np.ndarray:
        if self.table.size <= n:
            size = max(n + 1, 2 * self.table.size)
            grown = np.full(size, self.unit, dtype=_U32)
            grown[0] = 1
            self.table = np.cumprod(grown, dtype=_U32)  # uint32 products wrap mod 2**32
        return self.table[:n + 1]


_POW31 = _PowersOf(31)
_POW31_INV = _PowersOf(pow(31, -1, 1 << 32))  # 31 is odd, so it has an inverse mod 2**32


def java_hash_many(keys: object, key_type: str) -> np.ndarray:
    """Java hashCode of every key (String.hashCode or Integer/Long.hashCode), as int64."""
    if key_type == "int":
        return java_int_hash_many(int_keys(keys))
    return for_chunks(str_keys(keys), java_string_hashes, np.int64)


def java_string_hashes(keys: list[str]) -> np.ndarray:
    """java_string_hash of every key of a chunk of str keys, as int64."""
    units, starts, lengths = str_units(keys, utf16=True)
    ends = starts + lengths
    # sum of u[g]*31**(end-1-g) = 31**(end-1) * sum of u[g]*31**-g: weights depend on g only
    weighted = np.zeros(units.size + 1, dtype=_U32)
    np.cumsum(units * _POW31_INV.upto(units.size)[:units.size], dtype=_U32, out=weighted[1:])
    h = _POW31.upto(units.size)[np.maximum(ends - 1, 0)] * (weighted[ends] - weighted[starts])
    return h.view(np.int32).astype(np.int64)


# --------------------------------------------------------------------------- jump hash

_JUMP_MULT = 2862933555777941757


def jump_hash(key: int, buckets: int) -> int:
    """Lamping-Veach jump consistent hash of a uint64 key, with the C reference's float steps."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _JUMP_MULT + 1) & MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def jump_hash_many(keys: np.ndarray, buckets: int) -> np.ndarray:
    """jump_hash of every uint64 key (int64 keys are taken as two's complement), as int64."""
    return for_chunks(keys, lambda part: _jump_chunk(part, buckets), np.int64)


def _jump_chunk(keys: np.ndarray, buckets: int) -> np.ndarray:
    key = keys.view(_U64) if keys.dtype == np.int64 else keys.astype(_U64, copy=False)
    out = np.empty(key.size, dtype=np.int64)
    pending = np.arange(key.size)
    j = np.zeros(key.size, dtype=np.int64)
    while pending.size:
        b = j
        key = key * _U64(_JUMP_MULT) + _U64(1)
        # the same IEEE double steps as the scalar form, so both agree bit for bit
        j = ((b + 1).astype(np.float64)
             * (float(1 << 31) / ((key >> _U64(33)) + _U64(1)).astype(np.float64))).astype(np.int64)
        done = j >= buckets
        out[pending[done]] = b[done]
        more = ~done
        pending, key, j = pending[more], key[more], j[more]
    return out
