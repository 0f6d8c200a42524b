"""PostgreSQL's hash functions (Bob Jenkins' lookup3, as in src/common/hashfn.c), per key and per
batch, bit for bit.

`hash_bytes` / `hash_bytes_extended` hash a byte string (32-bit, or 64-bit with a seed);
`hash_uint32` / `hash_uint32_extended` hash one 32-bit word. On them sit the hash opclass support
functions: `hashint4` (int4), `hashint8` (int8: the low half xor the high half, inverted for
negative values), `hashtext` (the bytes of a text value under a deterministic collation), and
their `*extended` forms with a 64-bit seed, which hash partitioning calls with
HASH_PARTITION_SEED and folds with `hash_combine64`.
"""

from __future__ import annotations

import struct

import numpy as np

from skewcheck.keytext import KeyText

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
HASH_PARTITION_SEED = 0x7A5B_2236_7996_DCFD  # src/include/catalog/partition.h
_COMBINE64 = 0x49A0_F4DD_15E5_A8E3  # hash_combine64's constant
_INIT = 0x9E37_79B9 + 3923095  # lookup3's initial state, before the length is added

_U32 = np.uint32


# --------------------------------------------------------------------------- per key


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & MASK32; a ^= _rot(c, 4); c = (c + b) & MASK32  # noqa: E702
    b = (b - a) & MASK32; b ^= _rot(a, 6); a = (a + c) & MASK32  # noqa: E702
    c = (c - b) & MASK32; c ^= _rot(b, 8); b = (b + a) & MASK32  # noqa: E702
    a = (a - c) & MASK32; a ^= _rot(c, 16); c = (c + b) & MASK32  # noqa: E702
    b = (b - a) & MASK32; b ^= _rot(a, 19); a = (a + c) & MASK32  # noqa: E702
    c = (c - b) & MASK32; c ^= _rot(b, 4); b = (b + a) & MASK32  # noqa: E702
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c ^= b; c = (c - _rot(b, 14)) & MASK32  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & MASK32  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & MASK32  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & MASK32  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & MASK32  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & MASK32  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & MASK32  # noqa: E702
    return a, b, c


def _seeded(length: int, seed: int) -> tuple[int, int, int]:
    a = b = c = (_INIT + length) & MASK32
    if seed:
        # the seed is hashed as a 12-byte chunk: high word, low word, four zero bytes
        a = (a + (seed >> 32)) & MASK32
        b = (b + (seed & MASK32)) & MASK32
        a, b, c = _mix(a, b, c)
    return a, b, c


def _bytes_state(data: bytes, seed: int) -> tuple[int, int, int]:
    length = len(data)
    a, b, c = _seeded(length, seed)
    whole = length // 12
    for x, y, z in struct.iter_unpack("<3I", data[:whole * 12]):
        a, b, c = _mix((a + x) & MASK32, (b + y) & MASK32, (c + z) & MASK32)
    tail = data[whole * 12:] + bytes(12)
    x, y, z = struct.unpack_from("<3I", tail)
    rest = length - whole * 12
    # little-endian tail: bytes 0-3 into a, 4-7 into b, 8-10 into c above its lowest byte
    a = (a + (x & _TAIL_MASKS[min(rest, 4)])) & MASK32
    b = (b + (y & _TAIL_MASKS[min(max(rest - 4, 0), 4)])) & MASK32
    c = (c + ((z & _TAIL_MASKS[max(rest - 8, 0)]) << 8)) & MASK32
    return _final(a, b, c)


_TAIL_MASKS = (0, 0xFF, 0xFFFF, 0xFFFFFF, MASK32)


def hash_bytes(data: bytes) -> int:
    """hash_bytes (hash_any): uint32."""
    return _bytes_state(data, 0)[2]


def hash_bytes_extended(data: bytes, seed: int) -> int:
    """hash_bytes_extended (hash_any_extended): uint64."""
    _, b, c = _bytes_state(data, seed)
    return (b << 32) | c


def hash_uint32(k: int) -> int:
    a = b = c = (_INIT + 4) & MASK32
    return _final((a + (k & MASK32)) & MASK32, b, c)[2]


def hash_uint32_extended(k: int, seed: int) -> int:
    a, b, c = _seeded(4, seed)
    _, b, c = _final((a + (k & MASK32)) & MASK32, b, c)
    return (b << 32) | c


def int8_word(value: int) -> int:
    """hashint8's 32-bit input: the low half xor the high half (its complement when negative), so
    that an int8 equal to an int4 hashes alike."""
    low, high = value & MASK32, (value >> 32) & MASK32
    return low ^ (high if value >= 0 else high ^ MASK32)


def combine64(a: int, b: int) -> int:
    """hash_combine64(a, b)."""
    return a ^ ((b + _COMBINE64 + (a << 54) + (a >> 7)) & MASK64)


def partition_hash(column_hash: int) -> int:
    """The row hash of a one-column hash-partitioned table: hash_combine64(0, extended hash)."""
    return combine64(0, column_hash)


# --------------------------------------------------------------------------- batch


def _rot_many(x: np.ndarray, k: int) -> np.ndarray:
    return (x << _U32(k)) | (x >> _U32(32 - k))


def _mix_many(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    a = a - c; a ^= _rot_many(c, 4); c = c + b  # noqa: E702
    b = b - a; b ^= _rot_many(a, 6); a = a + c  # noqa: E702
    c = c - b; c ^= _rot_many(b, 8); b = b + a  # noqa: E702
    a = a - c; a ^= _rot_many(c, 16); c = c + b  # noqa: E702
    b = b - a; b ^= _rot_many(a, 19); a = a + c  # noqa: E702
    c = c - b; c ^= _rot_many(b, 4); b = b + a  # noqa: E702
    return a, b, c


def _final_many(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    c = (c ^ b) - _rot_many(b, 14)
    a = (a ^ c) - _rot_many(c, 11)
    b = (b ^ a) - _rot_many(a, 25)
    c = (c ^ b) - _rot_many(b, 16)
    a = (a ^ c) - _rot_many(c, 4)
    b = (b ^ a) - _rot_many(a, 14)
    c = (c ^ b) - _rot_many(b, 24)
    return a, b, c


def _seeded_many(lengths: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    a = lengths.astype(_U32) + _U32(_INIT & MASK32)
    b, c = a.copy(), a.copy()
    if seed:
        a += _U32(seed >> 32)
        b += _U32(seed & MASK32)
        a, b, c = _mix_many(a, b, c)
    return a, b, c


_TAIL32 = np.array(_TAIL_MASKS, dtype=_U32)


def _bytes_state_many(text: KeyText, seed: int) -> tuple[np.ndarray, ...]:
    n = len(text)
    a, b, c = _seeded_many(text.lengths, seed)
    for i, (count, live) in enumerate(text.rounds(12)):
        na, nb, nc = _mix_many(a[:count] + text.u32(3 * i, count),
                               b[:count] + text.u32(3 * i + 1, count),
                               c[:count] + text.u32(3 * i + 2, count))
        for state, new in ((a, na), (b, nb), (c, nc)):
            if live is None:
                state[:count] = new
            else:
                np.putmask(state[:count], live, new)
    word = (text.lengths // 12) * 3
    rest = text.lengths - word * 4
    a = a + (text.u32(word, n) & _TAIL32[np.minimum(rest, 4)])
    b = b + (text.u32(word + 1, n) & _TAIL32[np.clip(rest - 4, 0, 4)])
    c = c + ((text.u32(word + 2, n) & _TAIL32[np.maximum(rest - 8, 0)]) << _U32(8))
    return _final_many(a, b, c)


def hash_bytes_text(text: KeyText) -> np.ndarray:
    """hash_bytes of every key of a KeyText (uint32), in the caller's key order."""
    return text.restore(_bytes_state_many(text, 0)[2])


def hash_bytes_extended_text(text: KeyText, seed: int) -> np.ndarray:
    """hash_bytes_extended of every key of a KeyText (uint64), in the caller's key order."""
    _, b, c = _bytes_state_many(text, seed)
    return text.restore((b.astype(np.uint64) << np.uint64(32)) | c.astype(np.uint64))


def hash_uint32_many(words: np.ndarray) -> np.ndarray:
    a = np.full(words.shape, (_INIT + 4) & MASK32, dtype=_U32)
    return _final_many(a + words.astype(_U32), a.copy(), a.copy())[2]


def hash_uint32_extended_many(words: np.ndarray, seed: int) -> np.ndarray:
    a, b, c = _seeded_many(np.full(words.shape, 4, dtype=np.int64), seed)
    _, b, c = _final_many(a + words.astype(_U32), b, c)
    return (b.astype(np.uint64) << np.uint64(32)) | c.astype(np.uint64)


def int8_words(values: np.ndarray) -> np.ndarray:
    """int8_word of every int64 value, as uint32."""
    u = values.view(np.uint64)
    low = (u & np.uint64(MASK32)).astype(_U32)
    high = (u >> np.uint64(32)).astype(_U32)
    return low ^ np.where(values >= 0, high, ~high)


def partition_hashes(column_hashes: np.ndarray) -> np.ndarray:
    """partition_hash of every uint64 column hash."""
    return column_hashes + np.uint64(_COMBINE64)  # combine64(0, h) = h + constant
