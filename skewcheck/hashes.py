"""Hash kernels behind the routers: per-key forms and numpy batch forms that agree bit for bit.

Per-key forms are what Locust calls once per request; batch forms serve `skewcheck plan`, the
`route` command and the tally. A batch is worked through in cache-sized chunks; the text kernels
take a chunk's `KeyText` (the UTF-8 text of all its keys in one buffer) and hash it one block
step at a time across all keys.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Callable, Sequence

import mmh3
import numpy as np

from skewcheck.errors import UsageError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

# keys per batch step: big enough to amortise numpy call overhead, small enough that a chunk's
# str objects, just sliced, are still in cache when joined (one join of a whole batch is slower)
CHUNK_KEYS = 1 << 16

_U8 = np.uint8
_U32 = np.uint32
_U64 = np.uint64


# --------------------------------------------------------------------------- key batches


def int_keys(keys: object) -> np.ndarray:
    """A batch of int keys as an int64 array; UsageError for a non-integer or one outside int64."""
    if isinstance(keys, np.ndarray) and keys.dtype == np.int64:
        return keys.ravel()
    arr = keys if isinstance(keys, np.ndarray) else _array_of_ints(keys)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64).ravel()
    if arr.dtype.kind == "u":
        if arr.max() > INT64_MAX:
            raise UsageError(f"key {int(arr.max())} is outside the signed 64-bit integer range")
        return arr.astype(np.int64).ravel()
    if arr.dtype.kind == "O":
        return np.array([checked_int(k) for k in arr.ravel().tolist()], dtype=np.int64)
    raise UsageError(f"int keys must be integers, got an array of {arr.dtype}")


def _array_of_ints(keys: object) -> np.ndarray:
    if isinstance(keys, (str, bytes)):
        raise UsageError("keys must be a sequence of keys, not a single string")
    try:
        return np.asarray(list(keys))  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"int keys must be a sequence of integers: {exc}") from None


def checked_int(key: object) -> int:
    """One int key as a Python int; UsageError for a non-integer or a value outside int64."""
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
        raise UsageError(f"key {key!r} is not an integer")
    value = int(key)
    if not INT64_MIN <= value <= INT64_MAX:
        raise UsageError(f"key {value} is outside the signed 64-bit integer range")
    return value


def str_keys(keys: object) -> list[str]:
    """A batch of str keys as a list (fast to join); element types are checked when it is joined."""
    if isinstance(keys, (str, bytes)):
        raise UsageError("keys must be a sequence of keys, not a single string")
    if isinstance(keys, list):
        return keys
    if isinstance(keys, np.ndarray):
        return keys.ravel().tolist()
    return list(keys)  # type: ignore[call-overload]


def checked_str(key: object) -> str:
    """One str key as a plain str; UsageError for anything that is not text."""
    if not isinstance(key, str):
        raise UsageError(f"key {key!r} is not a string")
    return str(key)


def _join(keys: list[str]) -> str:
    try:
        return "\0".join(keys)
    except TypeError:
        bad = next(k for k in keys if not isinstance(k, str))
        raise UsageError(f"key {bad!r} is not a string") from None


def unencodable_key_error(key: str) -> UsageError:
    """The error for a key with a lone surrogate: it has no UTF-8 form, so no router can hash it."""
    return UsageError(f"key {key!r} is not valid Unicode text (lone surrogate); "
                      "keys are hashed as UTF-8")


def _encode(joined: str, keys: list[str], encoding: str) -> bytes:
    try:
        return joined.encode(encoding)
    except UnicodeEncodeError:
        for key in keys:
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise unencodable_key_error(key) from None
        raise


def for_chunks(keys: Sequence | np.ndarray, step: Callable[[object], np.ndarray],
               dtype: type) -> np.ndarray:
    """Apply a batch function chunk by chunk, so memory stays bounded and arrays stay in cache."""
    n = len(keys)
    if n <= CHUNK_KEYS:
        return step(keys).astype(dtype, copy=False)
    out = np.empty(n, dtype=dtype)
    for lo in range(0, n, CHUNK_KEYS):
        out[lo:lo + CHUNK_KEYS] = step(keys[lo:lo + CHUNK_KEYS])
    return out


def remainder(values: np.ndarray, n: int) -> np.ndarray:
    """values % n with Python's sign rule, as int64: numpy's floor_divide by a scalar is far
    faster than its remainder, so take the remainder through it."""
    divisor = values.dtype.type(n)
    return (values - (values // divisor) * divisor).astype(np.int64, copy=False)


# --------------------------------------------------------------------------- batch text


@dataclass(frozen=True)
class KeyText:
    """The UTF-8 text of a chunk of keys, laid out for hashing block by block.

    Key k's little-endian 32-bit word i is `words[base[k] + i]`; words past a key's end hold
    other bytes and are masked by the kernels. When str key lengths spread widely, keys are
    ordered longest first so that block step i runs on a prefix slice, and `order[k]` is key k's
    index in the caller's batch; otherwise (and always for int keys, at most 20 bytes) keys keep
    their order and the last few steps are masked instead, which is cheaper than sorting.
    """

    words: np.ndarray
    base: np.ndarray
    lengths: np.ndarray
    order: np.ndarray | None
    longest_first: bool
    rows: np.ndarray | None = None  # (keys, words) view when every key has its own aligned row

    def __len__(self) -> int:
        return int(self.lengths.size)

    def rounds(self, block: int) -> list[tuple[int, np.ndarray | None]]:
        """For each block step: how many leading keys take part, and which of them (None: all)."""
        n = len(self)
        if n == 0:
            return []
        if self.longest_first:
            steps = np.arange(1, int(self.lengths[0]) // block + 1, dtype=np.int64) * block
            # descending lengths: their negation ascends, and searchsorted counts a prefix
            counts = np.searchsorted(-self.lengths, -steps, side="right").tolist()
            return [(count, None) for count in counts]
        steps = self.lengths // block
        fewest, most = int(steps.min()), int(steps.max())
        return [(n, None)] * fewest + [(n, steps > i) for i in range(fewest, most)]

    def u32(self, word: int | np.ndarray, count: int) -> np.ndarray:
        """Word `word` of the first `count` keys; may be a view, so callers must not write to it."""
        if self.rows is not None and isinstance(word, int):
            return self.rows[:count, word]
        return self.words[self.base[:count] + word]

    def u64(self, word: int | np.ndarray, count: int) -> np.ndarray:
        idx = self.base[:count] + word
        return self.words[idx].astype(_U64) | (self.words[idx + 1].astype(_U64) << _U64(32))

    def restore(self, values: np.ndarray) -> np.ndarray:
        """Put per-key results back into the caller's key order."""
        if self.order is None:
            return values
        out = np.empty_like(values)
        out[self.order] = values
        return out


def _assign(state: np.ndarray, new: np.ndarray, live: np.ndarray | None) -> None:
    """Commit one block step: to every key of the slice, or only to the keys still in their text."""
    if live is None:
        state[...] = new
    else:
        np.putmask(state, live, new)


# masking costs a full-width pass per step; up to this many masked steps beat a sort
_MASKED_STEPS = 2


def _longest_first(lengths: np.ndarray) -> np.ndarray:
    top = int(lengths.max())
    # a stable sort on a narrow unsigned key uses numpy's radix sort
    narrow = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int64
    return np.argsort((top - lengths).astype(narrow), kind="stable")


def str_units(keys: list[str], utf16: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One join and one encode of a chunk of str keys: (code units, each key's start, length).

    Units are UTF-8 bytes, or UTF-16 code units when `utf16` (for ASCII text, bytes either way).
    UsageError for a key that is not a str or has no UTF-8 form.
    """
    joined = _join(keys)
    if utf16 and not joined.isascii():
        units = np.frombuffer(_encode(joined, keys, "utf-16-le"), dtype=np.uint16)
    else:
        units = np.frombuffer(_encode(joined, keys, "utf-8"), dtype=np.uint8)
    n = len(keys)
    seps = np.flatnonzero(units == 0)
    if seps.size != n - 1:  # some key holds U+0000: measure keys instead of finding separators
        return units, *_segments_by_length(keys, joined, _utf16_widths if utf16 else _utf8_widths)
    starts = np.zeros(n, dtype=np.int64)
    ends = np.full(n, units.size, dtype=np.int64)
    starts[1:] = seps + 1
    ends[:-1] = seps
    return units, starts, ends - starts


def str_text(keys: list[str], redis_tags: bool = False) -> KeyText:
    """KeyText of a chunk of str keys (or of their Redis hash tags)."""
    units, starts, lengths = str_units(keys)
    if redis_tags:
        starts, lengths = _redis_tags(units, starts, lengths)
    return _packed_text(units, starts, lengths)


def _packed_text(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> KeyText:
    # four copies of the buffer shifted by 0..3 bytes make every word read an aligned uint32 gather
    span = data.size // 4 + 5  # reads run up to 15 bytes past a key's end, into zero padding
    phases = np.zeros((4, span), dtype=_U32)
    flat_bytes = phases.view(np.uint8).reshape(4, span * 4)
    for shift in range(4):
        flat_bytes[shift, :max(data.size - shift, 0)] = data[shift:]
    base = (starts & 3) * span + (starts >> 2)
    blocks = lengths >> 2
    if lengths.size == 0 or int(blocks.max()) - int(blocks.min()) <= _MASKED_STEPS:
        # masked steps read at most 11 bytes past a key's end: still inside the padding
        return KeyText(phases.ravel(), base, lengths, None, longest_first=False)
    order = _longest_first(lengths)
    return KeyText(phases.ravel(), base[order], lengths[order], order, longest_first=True)


def _utf8_widths(code_points: np.ndarray) -> np.ndarray:
    return (1 + (code_points >= 0x80).astype(np.int64) + (code_points >= 0x800)
            + (code_points >= 0x10000))


def _utf16_widths(code_points: np.ndarray) -> np.ndarray:
    return 1 + (code_points >= 0x10000).astype(np.int64)


def _segments_by_length(keys: list[str], joined: str, widths: Callable[[np.ndarray], np.ndarray]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Start and length (in code units) of each key in the NUL-joined batch, from key lengths."""
    n = len(keys)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    chars = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    char_starts = np.zeros(n, dtype=np.int64)
    np.cumsum(chars[:-1] + 1, out=char_starts[1:])
    if joined.isascii():
        return char_starts, chars
    code_points = np.frombuffer(joined.encode("utf-32-le"), dtype=_U32)
    offsets = np.zeros(code_points.size + 1, dtype=np.int64)
    np.cumsum(widths(code_points), out=offsets[1:])
    starts = offsets[char_starts]
    return starts, offsets[char_starts + chars] - starts


def _redis_tags(data: np.ndarray, starts: np.ndarray,
                lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Narrow each key to its hash tag: the text between the first '{' and the next '}', if any."""
    opens = np.flatnonzero(data == ord("{"))
    closes = np.flatnonzero(data == ord("}"))
    if opens.size == 0 or closes.size == 0:
        return starts, lengths
    ends = starts + lengths
    i = np.searchsorted(opens, starts)
    open_at = opens[np.minimum(i, opens.size - 1)]
    has_open = (i < opens.size) & (open_at < ends)
    j = np.searchsorted(closes, open_at + 1)
    close_at = closes[np.minimum(j, closes.size - 1)]
    tagged = has_open & (j < closes.size) & (close_at < ends) & (close_at > open_at + 1)
    return (np.where(tagged, open_at + 1, starts),
            np.where(tagged, close_at - open_at - 1, lengths))


_ROW_WORDS = 6  # 24-byte rows: "-9223372036854775808" is 20 bytes, and rows stay 8-byte aligned
_POW10 = [10**e for e in range(20)]
_SIGN_FIX = 0x1D  # "0" ^ "-": turns the zero before a negative key's digits into its sign


def _four_digit_words() -> np.ndarray:
    """ASCII of every zero-padded 4-digit number, as a little-endian word ("0042" -> b"0042")."""
    numbers = np.arange(10**4, dtype=np.int64)
    word = np.zeros(numbers.size, dtype=_U32)
    for pos in range(4):
        digit = numbers // 10 ** (3 - pos) % 10
        word |= (digit + ord("0")).astype(_U32) << _U32(8 * pos)
    return word


_FOUR_DIGITS = _four_digit_words()


class _RowBase:
    """Word index of each row's start (0, 6, 12, ...), computed once and grown on demand."""

    def __init__(self) -> None:
        self.table = np.zeros(0, dtype=np.int64)

    def upto(self, n: int) -> np.ndarray:
        if self.table.size < n:
            self.table = np.arange(max(n, 2 * self.table.size), dtype=np.int64) * _ROW_WORDS
        return self.table[:n]


_ROW_BASE = _RowBase()


def int_text(keys: np.ndarray) -> KeyText:
    """KeyText of the decimal text of int64 keys (Python's `str(key)`), one aligned row per key.

    The digits are written right-aligned, four per table lookup, then every key is shifted down
    by its own byte count so that its text starts its row: no sorting, no per-length groups.
    """
    n = keys.size
    negative = keys < 0
    magnitude = keys.view(_U64)
    signed = bool(negative.any())
    if signed:
        # two's complement negation: INT64_MIN becomes 2**63
        magnitude = np.where(negative, -magnitude, magnitude)
    lengths = _decimal_digits(magnitude).astype(np.int64) + negative
    width = (int(lengths.max()) + 7) // 8 * 8 if n else 8  # bytes of right-aligned text, 8 to 24
    right = _right_aligned_digits(magnitude, width)
    left = _shift_down(right, width - lengths)
    if signed:  # the byte before a negative key's digits is a padding "0": make it the sign
        left[0] ^= np.where(negative, _U64(_SIGN_FIX), _U64(0))
    rows = np.zeros((n + 1, _ROW_WORDS // 2), dtype=_U64)  # a spare zero row pads the last key
    for k, word in enumerate(left):
        rows[:n, k] = word
    return KeyText(rows.view(_U32).ravel(), _ROW_BASE.upto(n), lengths, None,
                   longest_first=False, rows=rows.view(_U32))


def _decimal_digits(magnitude: np.ndarray) -> np.ndarray:
    if magnitude.size == 0:
        return np.empty(0, dtype=np.uint8)
    fewest, most = len(str(int(magnitude.min()))), len(str(int(magnitude.max())))
    digits = np.full(magnitude.size, fewest, dtype=np.uint8)
    for power in _POW10[fewest:most]:  # only the powers that split this batch
        digits += magnitude >= _U64(power)
    return digits


def _right_aligned_digits(magnitude: np.ndarray, width: int) -> list[np.ndarray]:
    """The last `width` decimal digits of each number, zero-padded, as little-endian words."""
    words = [np.zeros(magnitude.size, dtype=_U64) for _ in range(width // 8)]
    q = magnitude.astype(_U32) if width <= 8 else magnitude  # 32-bit division is twice as fast
    scale = q.dtype.type(10**4)
    for group in range(width // 4):  # four digits per group, least significant first
        rest = q // scale
        ascii4 = _FOUR_DIGITS.take(q - rest * scale).astype(_U64)
        byte = width - 4 * (group + 1)  # where the group starts in the right-aligned text
        words[byte // 8] |= ascii4 << _U64(8 * (byte % 8))
        q = rest
    return words


def _shift_down(words: list[np.ndarray], shift: np.ndarray) -> list[np.ndarray]:
    """Move each key's bytes `shift` places toward the start (a per-key funnel shift)."""
    whole = shift >> 3
    if int(whole.max(initial=0)) > 0:  # whole words first, when some key needs them
        words = [_word_after(words, k, whole) for k in range(len(words))]
    bits = ((shift & 7) * 8).astype(_U64)
    shifted = []
    for k, word in enumerate(words):
        word = word >> bits
        if k + 1 < len(words):  # numpy shifts by 64 to 0, so bits == 0 needs no special case
            word |= words[k + 1] << (_U64(64) - bits)
        shifted.append(word)
    return shifted


def _word_after(words: list[np.ndarray], k: int, whole: np.ndarray) -> np.ndarray:
    """Word k + whole of each key; past the last word it lies beyond the key's text: any word."""
    out = words[k]
    for step in range(1, len(words) - k):
        out = np.where(whole == step, words[k + step], out)
    return out


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
    return _text_hash_many(keys, key_type, lambda text: murmur3_32_text(text, seed), _U32)


def _text_hash_many(keys: object, key_type: str, kernel: Callable[[KeyText], np.ndarray],
                    dtype: type, redis_tags: bool = False) -> np.ndarray:
    """A text kernel over a whole batch, chunk by chunk."""
    if key_type == "int":
        return for_chunks(int_keys(keys), lambda part: kernel(int_text(part)), dtype)
    return for_chunks(str_keys(keys), lambda part: kernel(str_text(part, redis_tags)), dtype)


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
    return _text_hash_many(keys, key_type, murmur3_x64_64_text, _U64)


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


def murmur3_x64_64_text(text: KeyText) -> np.ndarray:
    """First 64 bits of MurmurHash3 x64_128 (seed 0) of every key, in the caller's key order."""
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
    h2 ^= _mix_k2_64(text.u64(word + 2, n) & _TAIL64[np.maximum(rest - 8, 0)])  # empty: no-op
    h1 ^= _mix_k1_64(text.u64(word, n) & _TAIL64[np.minimum(rest, 8)])
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
    return _text_hash_many(keys, key_type, murmur2_text, _U32)


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
    crc = _text_hash_many(keys, key_type, crc16_text, np.uint16, redis_tags=True)
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
