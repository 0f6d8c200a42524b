"""DES encryption under the all-zero key, per key and per batch: Vitess' `hash` vindex maps a
uint64 to its keyspace ID as DES(null key, the 8 big-endian bytes of the value).

With a zero key every round key is zero, so a round is f(R) = P(S(E(R))), tabulated once as eight
6-bit-to-32-bit tables; the initial and final permutations are byte-indexed tables. Tables are
FIPS 46-3's, bits numbered 1 (most significant) to 64.
"""

from __future__ import annotations

import functools

import numpy as np

_IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
       62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
       57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
       61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7]
_FP = [_IP.index(i) + 1 for i in range(1, 65)]
_P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
      2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25]
_S = [  # S1..S8, each four rows of sixteen
    [
     14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
     0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
     4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
     15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
     15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
     3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
     0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
     13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
     10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
     13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
     13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
     1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
     7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
     13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
     10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
     3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
     2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
     14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
     4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
     11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
     12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
     10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
     9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
     4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
     4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
     13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
     1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
     6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
     13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
     1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
     7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
     2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
]
MASK32 = 0xFFFF_FFFF


def _permute(value: int, table: list[int], width: int) -> int:
    out = 0
    for source in table:
        out = (out << 1) | ((value >> (width - source)) & 1)
    return out


def _sp_tables() -> list[list[int]]:
    tables = []
    for box in range(8):
        row = []
        for six in range(64):
            s = _S[box][((six >> 4) & 2 | six & 1) * 16 + ((six >> 1) & 15)]
            row.append(_permute(s << (28 - 4 * box), _P, 32))
        tables.append(row)
    return tables


def _byte_tables(table: list[int]) -> list[list[int]]:
    """Permutation of 64 bits as the OR of eight lookups, one per input byte."""
    return [[_permute(v << (56 - 8 * pos), table, 64) for v in range(256)] for pos in range(8)]


@functools.cache
def _tables() -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """The S-box/P lookups and the byte tables of IP and FP, built on first use (~40 ms: most
    commands never route with vitess-hash)."""
    return _sp_tables(), _byte_tables(_IP), _byte_tables(_FP)


@functools.cache
def _np_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sp, ip, fp = _tables()
    return (np.array(sp, dtype=np.uint32), np.array(ip, dtype=np.uint64),
            np.array(fp, dtype=np.uint64))


def _f(r: int, sp: list[list[int]]) -> int:
    x = ((r >> 1) | (r << 31)) & MASK32  # bit 32 first: E's groups are windows of this word
    out = 0
    for box in range(8):
        out |= sp[box][((x << (4 * box)) | (x >> (32 - 4 * box)) if box else x) >> 26 & 63]
    return out


def des_zero_key(block: int) -> int:
    """DES encryption of one 64-bit block (big-endian integer) under the all-zero key."""
    sp, ip_bytes, fp_bytes = _tables()
    v = 0
    for pos in range(8):
        v |= ip_bytes[pos][(block >> (56 - 8 * pos)) & 0xFF]
    left, right = v >> 32, v & MASK32
    for _ in range(16):
        left, right = right, left ^ _f(right, sp)
    v = (right << 32) | left
    out = 0
    for pos in range(8):
        out |= fp_bytes[pos][(v >> (56 - 8 * pos)) & 0xFF]
    return out


def des_zero_key_many(blocks: np.ndarray) -> np.ndarray:
    """des_zero_key of every uint64 block."""
    sp_np, ip_np, fp_np = _np_tables()
    u = blocks.astype(np.uint64, copy=False)
    v = np.zeros(u.size, dtype=np.uint64)
    for pos in range(8):
        v |= ip_np[pos][(u >> np.uint64(56 - 8 * pos)) & np.uint64(0xFF)]
    left = (v >> np.uint64(32)).astype(np.uint32)
    right = v.astype(np.uint32)
    for _ in range(16):
        x = (right >> np.uint32(1)) | (right << np.uint32(31))
        f = sp_np[0][x >> np.uint32(26)]
        for box in range(1, 8):
            rot = (x << np.uint32(4 * box)) | (x >> np.uint32(32 - 4 * box))
            f |= sp_np[box][rot >> np.uint32(26)]
        left, right = right, left ^ f
    v = (right.astype(np.uint64) << np.uint64(32)) | left.astype(np.uint64)
    out = np.zeros(u.size, dtype=np.uint64)
    for pos in range(8):
        out |= fp_np[pos][(v >> np.uint64(56 - 8 * pos)) & np.uint64(0xFF)]
    return out
