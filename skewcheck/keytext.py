"""Keys as routers take them: checked, normalised once per batch, and laid out as text.

A `KeyBatch` holds one batch of keys of one key type (an int64 array, or a list of str) and, per
cache-sized chunk, the text the hashing routers hash (an int key's decimal text, a str key's
UTF-8). The text of a chunk is built the first time a router asks for it and then shared by every
router, the F2 key buckets and the heavy-hitter sketch, so a batch is normalised and encoded once
however many routers count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from skewcheck.errors import UsageError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
KEY_TYPES: tuple[str, ...] = ("int", "str")

# keys per batch step: big enough to amortise numpy call overhead, small enough that a chunk's
# str objects, just sliced, are still in cache when joined (one join of a whole batch is slower)
CHUNK_KEYS = 1 << 16

_U32 = np.uint32
_U64 = np.uint64


# ------------------------------------------------------------------ single keys and batches


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
    items = list(keys)  # type: ignore[call-overload]
    bad = next((k for k in items if type(k) is bool or type(k) is np.bool_), None)
    if bad is not None:  # numpy would quietly take True for 1 in a list of ints
        raise UsageError(f"key {bad!r} is not an integer")
    try:
        return np.asarray(items)
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


def utf8_bytes(key: object) -> bytes:
    """One str key as UTF-8 (a lone surrogate can't be encoded: a clear error, never a crash)."""
    if type(key) is not str:
        key = checked_str(key)
    try:
        return key.encode()
    except UnicodeEncodeError:
        raise unencodable_key_error(key) from None


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


def parse_key(text: str, key_type: str) -> int | str:
    """A key from its text: str keys as they are; int keys in decimal, within signed 64 bits."""
    if key_type == "str":
        return text
    check_key_type(key_type)
    digits = text.strip()
    # int() alone would also take "1_000" and non-ASCII digits
    if digits.isascii() and "_" not in digits:
        try:
            value = int(digits)
        except ValueError:
            pass
        else:
            if INT64_MIN <= value <= INT64_MAX:
                return value
            raise UsageError(f"key {text!r} is outside the signed 64-bit integer range")
    raise UsageError(f"key {text!r} is not an integer")


def check_key_type(key_type: str) -> None:
    if key_type not in KEY_TYPES:
        raise UsageError(f"unknown key type {key_type!r}; valid key types: {', '.join(KEY_TYPES)}")


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


def utf16_str_text(keys: list[str]) -> KeyText:
    """KeyText of the UTF-16LE bytes of a chunk of str keys."""
    units, starts, lengths = str_units(keys, utf16=True)
    data = units.astype(np.uint16, copy=False).view(np.uint8)  # ASCII came back as bytes
    return _packed_text(data, starts * 2, lengths * 2)


def utf16_of_int_text(text: KeyText) -> KeyText:
    """UTF-16LE KeyText of int keys' decimal text: every ASCII byte gains a zero high byte."""
    assert text.rows is not None
    wide = text.rows.view(np.uint8).astype(np.uint16).view(np.uint8)
    rows = np.ascontiguousarray(wide).view(_U32)
    width = rows.shape[1]
    base = np.arange(len(text), dtype=np.int64) * width
    return KeyText(rows.ravel(), base, text.lengths * 2, None, longest_first=False, rows=rows)


def bytes_text(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> KeyText:
    """KeyText of keys that are the byte ranges [start, start + length) of `data` (uint8)."""
    return _packed_text(data, starts, lengths)


def fixed_width_text(data: np.ndarray, width: int) -> KeyText:
    """KeyText of keys that are consecutive `width`-byte records of `data` (uint8)."""
    n = data.size // width
    starts = np.arange(n, dtype=np.int64) * width
    return _packed_text(data, starts, np.full(n, width, dtype=np.int64))


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



# --------------------------------------------------------------------------- a normalised batch


class KeyChunk:
    """Up to CHUNK_KEYS keys of a batch; their text is built on first use and kept."""

    __slots__ = ("keys", "key_type", "_text", "_tagged", "_utf16")

    def __init__(self, keys: np.ndarray | list[str], key_type: str) -> None:
        self.keys = keys
        self.key_type = key_type
        self._text: KeyText | None = None
        self._tagged: KeyText | None = None
        self._utf16: KeyText | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def release(self) -> None:
        """Let go of the text (a large batch keeps one chunk's text at a time)."""
        self._text = self._tagged = self._utf16 = None

    def text(self) -> KeyText:
        """The chunk's key text: decimal for int keys, UTF-8 for str keys."""
        if self._text is None:
            self._text = int_text(self.keys) if self.key_type == "int" else str_text(self.keys)
        return self._text

    def redis_text(self) -> KeyText:
        """What Redis Cluster hashes: each key's hash tag, or the whole key (ints have no tags)."""
        if self.key_type == "int":
            return self.text()
        if self._tagged is None:
            self._tagged = str_text(self.keys, redis_tags=True)
        return self._tagged

    def utf16_text(self) -> KeyText:
        """The key text as UTF-16LE code units (what Java hashes a String's chars as)."""
        if self._utf16 is None:
            self._utf16 = (utf16_of_int_text(self.text()) if self.key_type == "int"
                           else utf16_str_text(self.keys))
        return self._utf16


class KeyBatch:
    """A batch of keys of one key type, checked once; routers read it chunk by chunk."""

    __slots__ = ("keys", "key_type", "_chunks")

    def __init__(self, keys: np.ndarray | list[str], key_type: str) -> None:
        self.keys = keys  # int64 array or list of str: use `of` to build one from raw keys
        self.key_type = key_type
        self._chunks: list[KeyChunk] | None = None

    @classmethod
    def of(cls, keys: Any, key_type: str) -> KeyBatch:
        """Normalise raw keys (a KeyBatch passes through); UsageError for a key of the wrong type,
        an int beyond int64, or text with no UTF-8 form, before anything is hashed."""
        if isinstance(keys, KeyBatch):
            if keys.key_type != key_type:
                raise UsageError(f"a batch of {keys.key_type} keys is not one of {key_type} keys")
            return keys
        check_key_type(key_type)
        if key_type == "int":
            return cls(int_keys(keys), key_type)
        batch = str_keys(keys)
        if not all(type(k) is str for k in batch):
            batch = [checked_str(k) for k in batch]
        found = cls(batch, key_type)
        for chunk in found.chunks():
            chunk.text()  # text UTF-8 cannot encode (a lone surrogate) fails here, not mid-count
        return found

    def __len__(self) -> int:
        return len(self.keys)

    def chunks(self) -> list[KeyChunk]:
        if self._chunks is None:
            keys, n = self.keys, len(self.keys)
            self._chunks = [KeyChunk(keys[lo:lo + CHUNK_KEYS], self.key_type)
                            for lo in range(0, n, CHUNK_KEYS)]
        return self._chunks

    def map(self, step: Callable[[KeyChunk], np.ndarray], dtype: type) -> np.ndarray:
        """`step` over every chunk, joined into one array of `dtype`."""
        return self.map_all([step], dtype)[0]

    def map_all(self, steps: Sequence[Callable[[KeyChunk], np.ndarray]], dtype: type) -> list[np.ndarray]:
        """Every step over every chunk, chunk by chunk: a chunk's text is built once, read by all
        the steps while it is still in cache, and let go before the next chunk."""
        chunks = self.chunks()
        if len(chunks) == 1:
            return [step(chunks[0]).astype(dtype, copy=False) for step in steps]
        out = [np.empty(len(self), dtype=dtype) for _ in steps]
        lo = 0
        for chunk in chunks:
            hi = lo + len(chunk)
            for step, values in zip(steps, out):
                values[lo:hi] = step(chunk)
            chunk.release()
            lo = hi
        return out

    def take(self, at: np.ndarray) -> KeyBatch:
        """The keys at these positions (already checked: no second normalisation)."""
        if self.key_type == "int":
            return KeyBatch(self.keys[at], "int")
        keys = self.keys
        return KeyBatch([keys[i] for i in at.tolist()], "str")

    def values(self) -> np.ndarray:
        """The keys as one array (object array for str keys), e.g. for the heavy-hitter sketch."""
        if self.key_type == "int":
            return self.keys
        out = np.empty(len(self.keys), dtype=object)
        out[:] = self.keys
        return out

    def key(self, i: int) -> int | str:
        key = self.keys[i]
        return int(key) if self.key_type == "int" else key
