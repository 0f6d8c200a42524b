"""Replay: real IDs streamed from a file (one per line, or one column of a CSV file), plain or gzip.

The file is read a block at a time (BLOCK_BYTES), each block parsed in one vectorised step:
newlines and delimiters are found with numpy, and IDs of up to 19 digits are decoded eight
bytes at a time (SWAR). A line the vectorised step cannot vouch for (spaces around a key, a
sign, a non-ASCII byte, 20 digits) is parsed on its own by the per-line rules, and a block with
quoted CSV fields goes through the csv module, so every line is judged by the same rules and a
bad one is reported as ``path:line``.

Before any key is handed out the whole file is validated once, streaming, so a bad line anywhere
fails the build (the planner and the Locust plugin alike stop before any load). Memory is a few
blocks whatever the file size, and no file handle outlives a call: each block reopens the file
at its offset (a gzip file keeps its decompressor between blocks instead).
"""

from __future__ import annotations

import csv
import os
import re
import zlib
from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.keys.spec import INT64_MAX, INT64_MIN, ReplaySpec

BLOCK_BYTES = 1 << 18  # file bytes per vectorised step (~25k IDs): its arrays stay in cache
_GZIP_READ = 1 << 20  # compressed bytes read per step; output is capped at BLOCK_BYTES per read
_MAX_LINE_BYTES = 1 << 20  # a longer "line" is not an ID file; refuse rather than buffer it
_GZIP_MAGIC = b"\x1f\x8b"
_VALIDATED_FILES = 16  # files whose validation is remembered (the planner validates, then builds)

_INT_RE = re.compile(r"[+-]?[0-9]+")
_U64 = np.uint64
_ASCII_ZEROS = _U64(0x3030303030303030)
_DIGIT_CHECK = _U64(0x4646464646464646)  # adding it sets a byte's high bit when the byte is > '9'
_HIGH_BITS = _U64(0x8080808080808080)
_PAD = 24  # bytes in front of a block, so every key's last three words can be read
# _KEEP[L]: the top L bytes of a word (a word holds a key's last 8 bytes, most significant first)
_KEEP = np.array([0] + [((1 << 64) - 1) ^ ((1 << (8 * (8 - n))) - 1) for n in range(1, 9)],
                 dtype=_U64)
_FILL = _ASCII_ZEROS & ~_KEEP
_POW8 = (_U64(1), _U64(10**8), _U64(10**16))

ProgressFn = Callable[[int, int], None]


def check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"sample size must be >= 0, got {n}")


def empty(value_type: str) -> np.ndarray:
    return np.empty(0, dtype=np.int64 if value_type == "int" else object)


class ReplayExhausted(UsageError):
    """A replay with ``loop: false`` ran out of keys."""


# --------------------------------------------------------------------------- bytes of the file


class _FileBytes:
    """The file's bytes a block at a time (decompressed when it is gzip); reopened per block."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.offset = 0  # raw (compressed) bytes consumed
        self.size = 0
        self._gzip: bool | None = None
        self._inflate: Any = None
        self._pending = b""  # compressed bytes read but not yet inflated

    def read(self) -> bytes:
        """The next block (b"" at the end of the file)."""
        try:
            with open(self.path, "rb") as f:
                self.size = os.fstat(f.fileno()).st_size
                if self._gzip is None:
                    self._gzip = f.read(2) == _GZIP_MAGIC
                    f.seek(0)
                f.seek(self.offset)
                if not self._gzip:
                    data = f.read(BLOCK_BYTES)
                    self.offset += len(data)
                    return data
                return self._inflated(f)
        except OSError as exc:
            reason = exc.strerror or exc
            raise UsageError(f"{self.path}: cannot read replay file: {reason}") from None

    def _inflated(self, f: Any) -> bytes:
        out: list[bytes] = []
        got = 0
        while got < BLOCK_BYTES:
            if not self._pending:
                self._pending = f.read(_GZIP_READ)
                self.offset += len(self._pending)
                if not self._pending:
                    if self._inflate is not None and not self._inflate.eof:
                        raise UsageError(f"{self.path}: truncated gzip file")
                    break
            if self._inflate is None or self._inflate.eof:
                if self._inflate is not None and not self._pending.startswith(_GZIP_MAGIC):
                    if self._pending.strip(b"\0"):
                        raise UsageError(f"{self.path}: not a valid gzip file: data after the end")
                    self._pending = b""
                    continue
                self._inflate = zlib.decompressobj(wbits=31)  # one per gzip member
            try:
                chunk = self._inflate.decompress(self._pending, BLOCK_BYTES - got)
            except zlib.error as exc:
                raise UsageError(f"{self.path}: not a valid gzip file: {exc}") from None
            self._pending = self._inflate.unconsumed_tail or self._inflate.unused_data
            out.append(chunk)
            got += len(chunk)
        return b"".join(out)


class _Lines:
    """The file as complete lines: the rest of a block at a time (the vectorised path) or one
    line at a time (headers, quoted CSV)."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.bytes = _FileBytes(path)
        self.block = b""
        self.pos = 0  # how much of the block is handed out
        self.line = 0  # lines handed out
        self._carry = b""
        self._block_lines = 0

    def _fill(self) -> bool:
        """Load the next block of complete lines; False at the end of the file."""
        while True:
            data = self.bytes.read()
            if not data:
                if not self._carry:
                    return False
                data, self._carry = self._carry, b""
                if len(data) > _MAX_LINE_BYTES:
                    raise UsageError(f"{self.path}:{self.line + 1}: line longer than 1 MiB")
                self.block, self.pos = data, 0
                return True
            if self._carry:
                data = self._carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                self._carry = data
                if len(data) > _MAX_LINE_BYTES:
                    raise UsageError(f"{self.path}:{self.line + 1}: line longer than 1 MiB")
                continue
            self.block, self._carry, self.pos = data[:cut], data[cut:], 0
            if len(self._carry) > _MAX_LINE_BYTES:
                line = self.line + self.block.count(b"\n") + 1
                raise UsageError(f"{self.path}:{line}: line longer than 1 MiB")
            return True

    def rest(self) -> memoryview | None:
        """Every complete line of the current block not yet handed out (the next block when it is
        used up); None at the end of the file. `take_rest` hands them out."""
        if self.pos >= len(self.block) and not self._fill():
            return None
        return memoryview(self.block)[self.pos:]

    def take_rest(self, lines: int) -> None:
        self.pos = len(self.block)
        self.line += lines

    def next_line(self) -> bytes | None:
        if self.pos >= len(self.block) and not self._fill():
            return None
        end = self.block.find(b"\n", self.pos)
        end = len(self.block) if end < 0 else end + 1
        raw = self.block[self.pos:end]
        self.pos = end
        self.line += 1
        if len(raw) > _MAX_LINE_BYTES + 1:
            raise UsageError(f"{self.path}:{self.line}: line longer than 1 MiB")
        return raw

    @property
    def at_block_end(self) -> bool:
        return self.pos >= len(self.block)


# --------------------------------------------------------------------------- per-line rules


class _Rules:
    """What a key is, line by line: the reference the vectorised path agrees with."""

    def __init__(self, spec: ReplaySpec, as_int: bool) -> None:
        self.path = spec.path
        self.column = spec.column
        self.index: int | None = spec.column if isinstance(spec.column, int) else None
        self.csv = spec.column is not None
        self.delimiter = spec.delimiter
        self.as_int = as_int

    def decode(self, raw: bytes, line: int) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{self.path}:{line}: not valid UTF-8") from None
        return text.lstrip("\ufeff") if line == 1 else text

    def csv_record(self, text: str, line: int) -> list[str]:
        try:
            return next(csv.reader([text], delimiter=self.delimiter, strict=True), [])
        except csv.Error as exc:
            raise UsageError(f"{self.path}:{line}: malformed CSV: {exc}") from None

    def key_text(self, record: Any, line: int) -> str | None:
        """The key's text of one record (a line, or a CSV row); None for a blank line."""
        if isinstance(record, str):
            return record.strip() or None
        if not record or (len(record) == 1 and not record[0].strip()):
            return None  # blank line
        assert self.index is not None
        if self.index >= len(record):
            raise UsageError(
                f"{self.path}:{line}: row has {len(record)} field(s), no column {self.column!r}")
        text = record[self.index].strip()
        if not text:
            raise UsageError(f"{self.path}:{line}: empty key in column {self.column!r}")
        return text

    def convert(self, text: str, line: int) -> int | str:
        if not self.as_int:
            return text
        if not _INT_RE.fullmatch(text):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise UsageError(f"{self.path}:{line}: {shown!r} is not an integer key (key_type int)")
        value = int(text)
        if not INT64_MIN <= value <= INT64_MAX:
            raise UsageError(f"{self.path}:{line}: {text} does not fit in a signed 64-bit integer")
        return value

    def one_line(self, raw: bytes, line: int) -> int | str | None:
        """The key of one line of the file by the per-line rules (None: blank)."""
        text = self.decode(raw, line)
        record: Any = self.csv_record(text, line) if self.csv else text
        key = self.key_text(record, line)
        return None if key is None else self.convert(key, line)


# --------------------------------------------------------------------------- vectorised blocks


def _words(padded: np.ndarray) -> np.ndarray:
    """The 8 bytes from every offset of the padded block as one uint64 (an unaligned view)."""
    return np.ndarray(shape=(padded.size - 7,), dtype=_U64, buffer=padded, strides=(1,))


def _swar8(w: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per uint64 (most significant first in memory) to their value, in place."""
    w -= _ASCII_ZEROS
    for shift, mult, mask in _SWAR_STEPS:
        low = w >> shift
        w *= mult
        w += low
        w &= mask
    return w


_SWAR_STEPS = ((_U64(8), _U64(10), _U64(0x00FF00FF00FF00FF)),
               (_U64(16), _U64(100), _U64(0x0000FFFF0000FFFF)),
               (_U64(32), _U64(10000), _U64(0xFFFFFFFF)))


def _decimal_spans(padded: np.ndarray, start: np.ndarray, end: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Parse `padded[start:end]` spans as signed decimal integers, 19 digits at most.

    Returns (values, ok): ok is False where a span is empty, holds anything but an optional
    leading sign and digits, or does not fit in int64; those go to the per-line rules.
    """
    sign_byte = padded[start]
    negative = sign_byte == ord("-")
    signed = negative | (sign_byte == ord("+"))
    length = end - start - signed
    ok = (length >= 1) & (length <= 19)
    if not ok.any():
        return np.zeros(start.size, dtype=np.int64), ok
    words = _words(padded)
    value = np.zeros(start.size, dtype=_U64)
    bad = np.zeros(start.size, dtype=_U64)
    rest = np.where(ok, length, 0)
    at = end - 8
    for step in range((int(rest.max()) + 7) // 8):
        n = np.minimum(rest, 8)
        w = words[at]
        fewest, most = int(n.min()), int(n.max())
        if fewest == most:  # keys of one width (the usual ID file): scalar masks
            w &= _KEEP[most]
            w |= _FILL[most]
        else:
            w &= _KEEP[n]
            w |= _FILL[n]  # bytes before the key read as '0'
        bad |= (w + _DIGIT_CHECK) | (w - _ASCII_ZEROS)
        value += _swar8(w) * _POW8[step]
        rest -= n
        at -= 8
    ok &= (bad & _HIGH_BITS) == 0
    # 19 digits reach 9999999999999999999 < 2**64: no wrap, so the range check is exact
    ok &= value <= np.where(negative, _U64(1 << 63), _U64(INT64_MAX))
    np.negative(value, out=value, where=negative)
    return value.view(np.int64), ok


def _fixed_width(body: np.ndarray, newlines: np.ndarray) -> np.ndarray | None:
    """The keys of a block whose lines are all digits of one width (the usual ID export), read
    as a matrix without gathering: None when the block is not like that."""
    n = newlines.size
    stride = int(newlines[0]) + 1
    width = stride - 1
    if not 1 <= width <= 19 or body.size != n * stride or body[-1] != ord("\n"):
        return None
    if n > 1 and not (np.diff(newlines) == stride).all():
        return None
    digits = body.reshape(n, stride)[:, :width]
    if ((digits - np.uint8(ord("0"))) > 9).any():
        return None
    words = (width + 7) // 8
    aligned = np.full((n, 8 * words), ord("0"), dtype=np.uint8)  # right-aligned, '0'-padded
    aligned[:, 8 * words - width:] = digits
    columns = aligned.view(_U64)
    value = np.zeros(n, dtype=_U64)
    for step in range(words):  # the last word holds the last 8 digits
        value += _swar8(np.ascontiguousarray(columns[:, words - 1 - step])) * _POW8[step]
    if width == 19 and (value > _U64(INT64_MAX)).any():
        return None
    return value.view(np.int64)


def _strip(padded: np.ndarray, start: np.ndarray, end: np.ndarray,
           rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Spans without the spaces and tabs around them (a few rounds; longer runs of blanks are
    left to the per-line rules)."""
    for _ in range(rounds):
        lead = (start < end) & ((padded[start] == ord(" ")) | (padded[start] == ord("\t")))
        last = padded[np.maximum(end - 1, 0)]
        trail = (start < end) & ((last == ord(" ")) | (last == ord("\t")))
        if not (lead.any() or trail.any()):
            break
        start, end = start + lead, end - trail
    return start, end


class _Block:
    """One block of complete lines as a padded byte array with each line's span."""

    def __init__(self, data: bytes, first_line: int, path: Any) -> None:
        self.padded = np.empty(len(data) + _PAD, dtype=np.uint8)
        self.padded[:_PAD] = ord("0")
        body = self.padded[_PAD:]
        body[:] = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(body == ord("\n"))
        if newlines.size == 0 or newlines[-1] != body.size - 1:  # a last line without newline
            newlines = np.append(newlines, body.size)
        self.first_line = first_line
        self.line_end = newlines + _PAD  # each line's newline, as an offset into `padded`
        self.start = np.empty_like(self.line_end)
        self.start[0] = _PAD
        self.start[1:] = self.line_end[:-1] + 1
        self.lines = int(newlines.size)
        too_long = self.line_end - self.start > _MAX_LINE_BYTES
        if too_long.any():
            raise UsageError(f"{path}:{first_line + int(np.argmax(too_long))}: "
                             "line longer than 1 MiB")
        # a CR before the newline ends the line too (files written on Windows)
        cr = (self.line_end > self.start) & (self.padded[self.line_end - 1] == ord("\r"))
        self.end = self.line_end - cr

    def raw_line(self, i: int) -> bytes:
        return self.padded[self.start[i]:self.line_end[i] + 1].tobytes()


class _Parser:
    """Keys of a block: vectorised where it can vouch for a line, by the per-line rules elsewhere.
    A CSV block with quotes (or a bare CR, or a multi-byte delimiter) is left to the csv module."""

    def __init__(self, rules: _Rules) -> None:
        self.rules = rules
        self.delimiter = rules.delimiter.encode("utf-8")

    def keys(self, data: memoryview, first_line: int) -> tuple[Any, int] | None:
        """(keys of the block, lines in it), keys an int64 array or a list of str; None when the
        block needs the csv module."""
        raw = data.tobytes()
        if self.rules.csv and (len(self.delimiter) != 1 or b'"' in raw
                               or raw.count(b"\r") != raw.count(b"\r\n")):
            return None
        if not self.rules.as_int:
            return self._str_keys(raw, first_line)
        if not self.rules.csv:
            body = np.frombuffer(raw, dtype=np.uint8)
            newlines = np.flatnonzero(body == ord("\n"))
            fixed = _fixed_width(body, newlines) if newlines.size else None
            if fixed is not None:
                return fixed, int(newlines.size)
        block = _Block(raw, first_line, self.rules.path)
        blank = block.end == block.start
        short = None
        if self.rules.csv:
            start, end, short = self._fields(block)
        else:
            start, end = block.start, block.end
        if b" " in raw or b"\t" in raw:
            start, end = _strip(block.padded, start, end)
        values, ok = _decimal_spans(block.padded, start, end)
        if short is None and ok.all():
            return values, block.lines
        odd = ~ok & ~blank
        if short is not None:
            odd |= short & ~blank
        if not odd.any():
            return values[~blank], block.lines
        keep = ~blank & ~odd
        for i in np.flatnonzero(odd).tolist():
            key = self.rules.one_line(block.raw_line(i), first_line + i)
            if key is not None:
                values[i] = key
                keep[i] = True
        return values[keep], block.lines

    def _fields(self, block: _Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Span of the key's column in every line, and which lines have too few fields."""
        index = self.rules.index
        assert index is not None
        delims = np.flatnonzero(block.padded == self.delimiter[0])
        lo = np.searchsorted(delims, block.start)
        hi = np.searchsorted(delims, block.end)
        short = hi - lo < index
        if delims.size == 0:
            return block.start, block.end, short
        last = delims.size - 1
        start = block.start if index == 0 else delims[np.minimum(lo + index - 1, last)] + 1
        end = np.where(lo + index < hi, delims[np.minimum(lo + index, last)], block.end)
        return np.where(short, block.start, start), np.where(short, block.start, end), short

    def _str_keys(self, raw: bytes, first_line: int) -> tuple[list[str], int]:
        newlines = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
        widths = np.diff(newlines, prepend=-1) - 1
        if widths.size and int(widths.max()) > _MAX_LINE_BYTES:
            at = first_line + int(np.argmax(widths > _MAX_LINE_BYTES))
            raise UsageError(f"{self.rules.path}:{at}: line longer than 1 MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first_line + raw.count(b"\n", 0, exc.start)
            raise UsageError(f"{self.rules.path}:{line}: not valid UTF-8") from None
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        if first_line == 1 and lines:
            lines[0] = lines[0].lstrip("\ufeff")
        if not self.rules.csv:
            return [s for s in map(str.strip, lines) if s], len(lines)
        d, index, keys = self.rules.delimiter, self.rules.index, []
        assert index is not None
        for i, line in enumerate(lines):
            cells = line.removesuffix("\r").split(d)
            if len(cells) == 1 and not cells[0].strip():
                continue  # blank line
            if index >= len(cells) or not cells[index].strip():
                self.rules.key_text(cells, first_line + i)  # raises the row's error
            keys.append(cells[index].strip())
        return keys, len(lines)


# --------------------------------------------------------------------------- one pass over a file


class _Pass:
    """One pass over the file from its first line: batches of keys, then None at its end."""

    def __init__(self, spec: ReplaySpec, rules: _Rules) -> None:
        self.rules = rules
        self.spec = spec
        self.lines = _Lines(spec.path)
        self.parser = _Parser(rules)
        self.keys = 0
        self._header_done = not spec.has_header
        self._header_line = 0
        self._reader: Any = None  # a csv reader spanning blocks while quoted fields are read

    @property
    def progress(self) -> tuple[int, int]:
        return self.lines.bytes.offset, self.lines.bytes.size

    def next_batch(self) -> Any:
        """The next batch of keys (an int64 array or a list of str), None at the end of the file."""
        if not self._header_done:
            self._read_header()
        while True:
            if self._reader is not None:
                batch = self._slow_records()
            else:
                data = self.lines.rest()
                if data is None:
                    return None
                parsed = self.parser.keys(data, self.lines.line + 1)
                if parsed is None:
                    batch = self._slow_records()
                else:
                    batch, lines = parsed
                    self.lines.take_rest(lines)
            if batch is None:
                return None
            if len(batch):
                self.keys += len(batch)
                return batch

    def _line_records(self) -> Iterator[str]:
        """Lines for the csv module, decoded one at a time as it asks for them."""
        while True:
            raw = self.lines.next_line()
            if raw is None:
                return
            yield self.rules.decode(raw, self.lines.line)

    def _slow_records(self) -> Any:
        """Records through the csv module until the block is used up and no quoted field is open."""
        if self._reader is None:
            self._reader = csv.reader(self._line_records(), delimiter=self.rules.delimiter,
                                      strict=True)
        keys: list[Any] = []
        while True:
            line = self.lines.line + 1
            try:
                record = next(self._reader)
            except StopIteration:
                self._reader = None
                return keys if keys else None
            except csv.Error as exc:
                raise UsageError(f"{self.rules.path}:{line}: malformed CSV: {exc}") from None
            text = self.rules.key_text(record, line)
            if text is not None:
                keys.append(self.rules.convert(text, line))
            if self.lines.at_block_end:
                self._reader = None
                break
        return np.array(keys, dtype=np.int64) if self.rules.as_int else keys

    def _read_header(self) -> None:
        records: Iterator[Any] = self._line_records()
        if self.rules.csv:
            records = csv.reader(records, delimiter=self.rules.delimiter, strict=True)
        try:
            for record in records:
                cells = [record] if isinstance(record, str) else record
                if not any(c.strip() for c in cells):
                    continue  # blank lines before the header
                if isinstance(self.rules.column, str):
                    names = [c.strip() for c in cells]
                    if self.rules.column not in names:
                        raise UsageError(
                            f"{self.rules.path}:{self.lines.line}: column {self.rules.column!r} "
                            f"not in the header ({', '.join(names)})")
                    self.rules.index = names.index(self.rules.column)
                break
        except csv.Error as exc:
            raise UsageError(f"{self.rules.path}:{self.lines.line}: malformed CSV: {exc}") from None
        self._header_done = True
        self._header_line = self.lines.line

    def no_keys_error(self) -> UsageError:
        only_header = self.spec.has_header and self._header_line > 0
        what = "holds only a header and blank lines" if only_header else "is empty or blank"
        line = self.lines.line + 1
        return UsageError(f"{self.rules.path}:{line}: no keys found (the file {what})")


# --------------------------------------------------------------------------- validation and replay


_validated: OrderedDict[tuple[Any, ...], int] = OrderedDict()


def _identity(spec: ReplaySpec, as_int: bool) -> tuple[Any, ...] | None:
    try:
        st = os.stat(spec.path)
    except OSError:
        return None
    return (os.path.realpath(spec.path), st.st_size, st.st_mtime_ns, spec.column, spec.has_header,
            spec.delimiter, as_int)


def count_keys(spec: ReplaySpec, as_int: bool, progress: ProgressFn | None = None) -> int:
    """Validate the whole file, streaming, and count its keys. UsageError naming `path:line` for
    the first bad line; the count of a file validated before (unchanged since) is remembered."""
    identity = _identity(spec, as_int)
    if identity is not None and identity in _validated:
        _validated.move_to_end(identity)
        return _validated[identity]
    one = _Pass(spec, _Rules(spec, as_int))
    while one.next_batch() is not None:
        if progress:  # a gzip file's bytes are all read before its last lines: 100% only at the end
            done, total = one.progress
            progress(min(done, total - 1), total)
    if one.keys == 0:
        raise one.no_keys_error()
    if progress:
        done, total = one.progress
        progress(total, total)
    if identity is not None:
        _validated[identity] = one.keys
        while len(_validated) > _VALIDATED_FILES:
            _validated.popitem(last=False)
    return one.keys


class Replay:
    """Keys of a replay file in file order, looping (`loop: true`) or running out."""

    def __init__(self, spec: ReplaySpec, value_type: str) -> None:
        self.value_type = value_type
        self.spec = spec
        self._as_int = value_type == "int"
        self.keys_in_file = count_keys(spec, self._as_int)  # a bad line anywhere fails here
        self._pass: _Pass | None = None
        self._batch: Any = []
        self._pos = 0
        self._served = 0
        self._exhausted = False

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        out = np.empty(n, dtype=np.int64 if self._as_int else object)
        filled = 0
        while filled < n:
            if self._pos >= len(self._batch):
                self._refill()
            k = min(n - filled, len(self._batch) - self._pos)
            out[filled:filled + k] = self._batch[self._pos:self._pos + k]
            self._pos += k
            filled += k
            self._served += k
        return out

    def _refill(self) -> None:
        while True:
            if self._exhausted:
                raise ReplayExhausted(
                    f"{self.spec.path}: replay exhausted after {self._served} keys "
                    "(loop: false); use loop: true or a longer file")
            if self._pass is None:
                self._pass = _Pass(self.spec, _Rules(self.spec, self._as_int))
            batch = self._pass.next_batch()
            if batch is not None:
                self._batch, self._pos = batch, 0
                return
            if self._pass.keys == 0:
                raise self._pass.no_keys_error()  # the file changed since it was validated
            self._pass = None
            self._exhausted = not self.spec.loop
