"""xxHash64 (seed 0 by default), per key and per batch over a KeyText, bit for bit with the
reference C implementation (PyPI `xxhash`, Go's cespare/xxhash that Vitess uses)."""

from __future__ import annotations

import struct

import numpy as np

from skewcheck.keytext import KeyText

MASK64 = 0xFFFF_FFFF_FFFF_FFFF
P1, P2, P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
P4, P5 = 9650029242287828579, 2870177450012600261

_U64 = np.uint64


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK64


def _round(acc: int, lane: int) -> int:
    return _rotl((acc + lane * P2) & MASK64, 31) * P1 & MASK64


def _merge(h: int, v: int) -> int:
    return ((h ^ _round(0, v)) * P1 + P4) & MASK64


def xxh64(data: bytes, seed: int = 0) -> int:
    length = len(data)
    pos = 0
    if length >= 32:
        v = [(seed + P1 + P2) & MASK64, (seed + P2) & MASK64, seed, (seed - P1) & MASK64]
        for lanes in struct.iter_unpack("<4Q", data[:length // 32 * 32]):
            v = [_round(a, x) for a, x in zip(v, lanes)]
        pos = length // 32 * 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & MASK64
        for lane in v:
            h = _merge(h, lane)
    else:
        h = (seed + P5) & MASK64
    h = (h + length) & MASK64
    while pos + 8 <= length:
        h ^= _round(0, int.from_bytes(data[pos:pos + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & MASK64
        pos += 8
    if pos + 4 <= length:
        h ^= int.from_bytes(data[pos:pos + 4], "little") * P1 & MASK64
        h = (_rotl(h, 23) * P2 + P3) & MASK64
        pos += 4
    for byte in data[pos:]:
        h ^= byte * P5 & MASK64
        h = _rotl(h, 11) * P1 & MASK64
    h ^= h >> 33
    h = h * P2 & MASK64
    h ^= h >> 29
    h = h * P3 & MASK64
    return h ^ (h >> 32)


def _rotl_many(x: np.ndarray, r: int) -> np.ndarray:
    return (x << _U64(r)) | (x >> _U64(64 - r))


def _round_many(acc: np.ndarray, lane: np.ndarray) -> np.ndarray:
    return _rotl_many(acc + lane * _U64(P2), 31) * _U64(P1)


def xxh64_text(text: KeyText, seed: int = 0) -> np.ndarray:
    """xxHash64 of every key of a KeyText (uint64), in the caller's key order."""
    n = len(text)
    lengths = text.lengths
    v = [np.full(n, x & MASK64, dtype=_U64) for x in (seed + P1 + P2, seed + P2, seed, seed - P1)]
    for i, (count, live) in enumerate(text.rounds(32)):
        for lane, acc in enumerate(v):
            new = _round_many(acc[:count], text.u64(8 * i + 2 * lane, count))
            if live is None:
                acc[:count] = new
            else:
                np.putmask(acc[:count], live, new)
    h = np.full(n, (seed + P5) & MASK64, dtype=_U64)
    striped = lengths >= 32
    if striped.any():
        merged = (_rotl_many(v[0], 1) + _rotl_many(v[1], 7) + _rotl_many(v[2], 12)
                  + _rotl_many(v[3], 18))
        for acc in v:
            merged = (merged ^ _round_many(np.zeros(n, dtype=_U64), acc)) * _U64(P1) + _U64(P4)
        h = np.where(striped, merged, h)
    h += lengths.astype(_U64)
    start = (lengths >> 5) << 3  # word index after the stripes
    rest = lengths & 31
    last = lengths >> 2  # never read past this word: at most 7 bytes past a key's end
    for j in range(4):
        live = rest >= 8 * (j + 1)
        if not live.any():
            break
        lane = text.u64(np.minimum(start + 2 * j, last), n)
        new = _rotl_many(h ^ _round_many(np.zeros(n, dtype=_U64), lane), 27) * _U64(P1) + _U64(P4)
        h = np.where(live, new, h)
    live = (rest & 7) >= 4
    if live.any():
        word = text.u32(np.minimum(start + 2 * (rest >> 3), last), n).astype(_U64)
        new = _rotl_many(h ^ (word * _U64(P1)), 23) * _U64(P2) + _U64(P3)
        h = np.where(live, new, h)
    tail = text.u32(last, n).astype(_U64)
    for j in range(3):
        live = (lengths & 3) > j
        if not live.any():
            break
        byte = (tail >> _U64(8 * j)) & _U64(0xFF)
        h = np.where(live, _rotl_many(h ^ (byte * _U64(P5)), 11) * _U64(P1), h)
    h ^= h >> _U64(33)
    h *= _U64(P2)
    h ^= h >> _U64(29)
    h *= _U64(P3)
    h ^= h >> _U64(32)
    return text.restore(h)
