"""The hashes services route with by hand: CRC-32 (zlib), FNV-1a (32 and 64 bit), per key and
per batch over a KeyText, bit for bit. xxHash64 is in skewcheck.xxh64."""

from __future__ import annotations

import zlib

import numpy as np

from skewcheck.bytewise import fold_bytes
from skewcheck.keytext import KeyText

_U32 = np.uint32
_U64 = np.uint64

FNV32_OFFSET, FNV32_PRIME = 0x811C9DC5, 0x01000193
FNV64_OFFSET, FNV64_PRIME = 0xCBF29CE484222325, 0x100000001B3


def crc32(data: bytes) -> int:
    """zlib's CRC-32 (IEEE 802.3, reflected, as Go's crc32.ChecksumIEEE and Java's CRC32)."""
    return zlib.crc32(data)


def fnv1a32(data: bytes) -> int:
    h = FNV32_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV32_PRIME) & 0xFFFF_FFFF
    return h


def fnv1a64(data: bytes) -> int:
    h = FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV64_PRIME) & 0xFFFF_FFFF_FFFF_FFFF
    return h


def _crc_tables() -> np.ndarray:
    table = np.arange(256, dtype=_U32)
    for _ in range(8):
        table = np.where(table & _U32(1), (table >> _U32(1)) ^ _U32(0xEDB88320),
                         table >> _U32(1)).astype(_U32)
    # slicing by four: tables[k][b] is the CRC of byte b followed by k zero bytes
    tables = [table]
    for _ in range(3):
        prev = tables[-1]
        tables.append((prev >> _U32(8)) ^ table[prev & _U32(0xFF)])
    return np.stack(tables)


_CRC = _crc_tables()


def _crc_byte(crc: np.ndarray, byte: np.ndarray) -> np.ndarray:
    return _CRC[0][(crc ^ byte) & _U32(0xFF)] ^ (crc >> _U32(8))


def _crc_word(crc: np.ndarray, word: np.ndarray) -> np.ndarray:
    x = crc ^ word
    return (_CRC[3][x & _U32(0xFF)] ^ _CRC[2][(x >> _U32(8)) & _U32(0xFF)]
            ^ _CRC[1][(x >> _U32(16)) & _U32(0xFF)] ^ _CRC[0][x >> _U32(24)])


def crc32_text(text: KeyText) -> np.ndarray:
    """CRC-32 of every key of a KeyText (uint32), in the caller's key order."""
    crc = np.full(len(text), 0xFFFF_FFFF, dtype=_U32)
    crc = fold_bytes(text, crc, _crc_byte, _crc_word)
    return text.restore(crc ^ _U32(0xFFFF_FFFF))


def fnv1a32_text(text: KeyText) -> np.ndarray:
    prime = _U32(FNV32_PRIME)
    h = np.full(len(text), FNV32_OFFSET, dtype=_U32)
    return text.restore(fold_bytes(text, h, lambda s, b: (s ^ b) * prime))


def fnv1a64_text(text: KeyText) -> np.ndarray:
    prime = _U64(FNV64_PRIME)
    h = np.full(len(text), FNV64_OFFSET, dtype=_U64)
    return text.restore(fold_bytes(text, h, lambda s, b: (s ^ b) * prime))
