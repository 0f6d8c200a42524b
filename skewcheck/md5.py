"""MD5 of every key of a KeyText at once (numpy), for ketama: memcached clients hash a key with
MD5 and take the digest's first four bytes as a little-endian word. Bit for bit with hashlib."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from skewcheck.keytext import KeyText

_U32 = np.uint32
_SHIFTS = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_K = [int(abs(math.sin(i + 1)) * 2**32) & 0xFFFF_FFFF for i in range(64)]
_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_TAIL = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], dtype=_U32)


def md5_word(data: bytes, word: int = 0) -> int:
    """Little-endian 32-bit word `word` (0-3) of MD5(data)."""
    return int.from_bytes(hashlib.md5(data).digest()[4 * word:4 * word + 4], "little")


def _message_word(text: KeyText, w: np.ndarray | int, blocks: np.ndarray) -> np.ndarray:
    """Word w of every key's padded MD5 message: its bytes, then 0x80, zeros, and the bit length
    in the last two words of its last block."""
    lengths = text.lengths
    n = len(text)
    offset = lengths - 4 * w  # bytes of the key from this word's start on
    raw = text.u32(np.minimum(w, lengths >> 2), n)  # past the text, read its last word: masked
    inside = np.where(offset >= 4, raw, raw & _TAIL[np.clip(offset, 0, 3)])
    inside = np.where(offset < 0, _U32(0), inside)
    marker = (offset >= 0) & (offset < 4)
    inside |= np.where(marker, _U32(0x80) << (8 * np.clip(offset, 0, 3)).astype(_U32), _U32(0))
    bits = lengths.astype(np.uint64) * np.uint64(8)
    last = 16 * blocks
    inside = np.where(w == last - 2, (bits & np.uint64(0xFFFF_FFFF)).astype(_U32), inside)
    return np.where(w == last - 1, (bits >> np.uint64(32)).astype(_U32), inside)


def md5_first_word_text(text: KeyText) -> np.ndarray:
    """md5_word(key, 0) of every key of a KeyText (uint32), in the caller's key order."""
    return text.restore(_md5_state(text)[0])


def md5_first64_text(text: KeyText) -> np.ndarray:
    """The digest's first 8 bytes as a little-endian uint64, for every key of a KeyText."""
    state = _md5_state(text)
    return text.restore(state[0].astype(np.uint64) | (state[1].astype(np.uint64) << np.uint64(32)))


def _md5_state(text: KeyText) -> list[np.ndarray]:
    """The four 32-bit words of every key's digest, in the KeyText's order."""
    n = len(text)
    blocks = (text.lengths + 8) // 64 + 1
    state = [np.full(n, x, dtype=_U32) for x in _INIT]
    for block in range(int(blocks.max(initial=0))):
        live = blocks > block
        m = [_message_word(text, 16 * block + j, blocks) for j in range(16)]
        a, b, c, d = (s.copy() for s in state)
        for i in range(64):
            if i < 16:
                f, g = (b & c) | (~b & d), i
            elif i < 32:
                f, g = (d & b) | (~d & c), (5 * i + 1) % 16
            elif i < 48:
                f, g = b ^ c ^ d, (3 * i + 5) % 16
            else:
                f, g = c ^ (b | ~d), (7 * i) % 16
            f = f + a + _U32(_K[i]) + m[g]
            s = _SHIFTS[i]
            a, d, c = d, c, b
            b = b + ((f << _U32(s)) | (f >> _U32(32 - s)))
        for old, new in zip(state, (a, b, c, d)):
            np.putmask(old, live, old + new)
    return state
