"""Replay: real IDs streamed from a file (one per line, or one column of a CSV file).

A cursor reopens the file for every chunk of keys and keeps only that chunk, so memory is
constant in the file size and no file handle outlives a call.
"""

from __future__ import annotations

import csv
import re
from typing import Any, Iterator

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.keys.spec import INT64_MAX, INT64_MIN, ReplaySpec


def check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"sample size must be >= 0, got {n}")


def empty(value_type: str) -> np.ndarray:
    return np.empty(0, dtype=np.int64 if value_type == "int" else object)


class ReplayExhausted(UsageError):
    """A replay with ``loop: false`` ran out of keys."""


_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_LINE_BYTES = 1 << 20  # a longer "line" is not an ID file; refuse rather than buffer it
_CHUNK_KEYS = 4096


class _ReplayCursor:
    """One read position in a replay file.

    It reopens the file for every chunk of keys and keeps only that chunk, so memory
    is constant in the file size and no file handle outlives a call.
    """

    def __init__(self, spec: ReplaySpec, as_int: bool) -> None:
        self._path = spec.path
        self._column = spec.column
        self._index = spec.column if isinstance(spec.column, int) else None
        self._csv = spec.column is not None
        self._delimiter = spec.delimiter
        self._header = spec.has_header
        self._loop = spec.loop
        self._as_int = as_int
        self._data_offset: int | None = None  # byte offset just past the header, once read
        self._data_line = 0
        self._offset = 0  # byte offset of the next unread line
        self._line = 0  # lines consumed before _offset
        self._pass_keys = 0  # keys read since the last rewind; 0 at EOF means there are none
        self._exhausted = False
        self._served = 0
        self._buf: list[int | str] = []
        self._pos = 0

    def take_into(self, out: np.ndarray) -> None:
        """Fill ``out`` with the next ``len(out)`` keys, one chunk at a time."""
        filled, n = 0, len(out)
        while filled < n:
            if self._pos >= len(self._buf):
                self._refill()
            k = min(n - filled, len(self._buf) - self._pos)
            out[filled:filled + k] = self._buf[self._pos:self._pos + k]
            self._pos += k
            filled += k
            self._served += k

    def _refill(self) -> None:
        self._buf, self._pos = [], 0
        while not self._buf:
            if self._exhausted:
                raise ReplayExhausted(
                    f"{self._path}: replay exhausted after {self._served} keys "
                    "(loop: false); use loop: true or a longer file"
                )
            self._read_chunk()

    def _read_chunk(self) -> None:
        try:
            f = open(self._path, "rb")
        except OSError as exc:
            reason = exc.strerror or exc
            raise UsageError(f"{self._path}: cannot read replay file: {reason}") from None
        with f:
            f.seek(self._offset)
            lines = self._lines(f)
            records: Iterator[Any] = (
                csv.reader(lines, delimiter=self._delimiter, strict=True) if self._csv else lines
            )
            if self._data_offset is None and not self._header:
                self._data_offset, self._data_line = 0, 0
            elif self._data_offset is None:
                try:
                    self._read_header(records)
                except csv.Error as exc:
                    raise UsageError(f"{self._path}:{self._line}: malformed CSV: {exc}") from None
            while len(self._buf) < _CHUNK_KEYS:
                line = self._line + 1
                try:
                    record = next(records)
                except StopIteration:
                    self._at_eof()
                    return
                except csv.Error as exc:
                    raise UsageError(f"{self._path}:{line}: malformed CSV: {exc}") from None
                text = self._key_text(record, line)
                if text is not None:
                    self._buf.append(self._convert(text, line))
                    self._pass_keys += 1

    def _lines(self, f: Any) -> Iterator[str]:
        """Decoded lines; offset and line number advance as each line is handed out."""
        while True:
            at_start = self._offset == 0
            raw = f.readline(_MAX_LINE_BYTES + 1)
            if not raw:
                return
            self._offset += len(raw)
            self._line += 1
            if len(raw) > _MAX_LINE_BYTES:
                raise UsageError(f"{self._path}:{self._line}: line longer than 1 MiB")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{self._path}:{self._line}: not valid UTF-8") from None
            yield text.lstrip("\ufeff") if at_start else text

    def _read_header(self, records: Iterator[Any]) -> None:
        for record in records:
            cells = [record] if isinstance(record, str) else record
            if not any(c.strip() for c in cells):
                continue  # blank lines before the header
            if isinstance(self._column, str):
                names = [c.strip() for c in cells]
                if self._column not in names:
                    raise UsageError(
                        f"{self._path}:{self._line}: column {self._column!r} not in the header "
                        f"({', '.join(names)})"
                    )
                self._index = names.index(self._column)
            break
        self._data_offset, self._data_line = self._offset, self._line

    def _key_text(self, record: Any, line: int) -> str | None:
        if isinstance(record, str):
            return record.strip() or None
        if not record or (len(record) == 1 and not record[0].strip()):
            return None  # blank line
        assert self._index is not None
        if self._index >= len(record):
            raise UsageError(
                f"{self._path}:{line}: row has {len(record)} field(s), "
                f"no column {self._column!r}"
            )
        text = record[self._index].strip()
        if not text:
            raise UsageError(f"{self._path}:{line}: empty key in column {self._column!r}")
        return text

    def _convert(self, text: str, line: int) -> int | str:
        if not self._as_int:
            return text
        if not _INT_RE.fullmatch(text):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise UsageError(f"{self._path}:{line}: {shown!r} is not an integer key (key_type int)")
        value = int(text)
        if not INT64_MIN <= value <= INT64_MAX:
            raise UsageError(f"{self._path}:{line}: {text} does not fit in a signed 64-bit integer")
        return value

    def _at_eof(self) -> None:
        if self._pass_keys == 0:
            only_header = self._header and self._data_line > 0
            what = "holds only a header and blank lines" if only_header else "is empty or blank"
            raise UsageError(f"{self._path}:{self._line + 1}: no keys found (the file {what})")
        if self._loop:
            self._offset, self._line = self._data_offset or 0, self._data_line
            self._pass_keys = 0
        else:
            self._exhausted = True


class Replay:
    def __init__(self, spec: ReplaySpec, value_type: str) -> None:
        self.value_type = value_type
        self._cursor = _ReplayCursor(spec, value_type == "int")
        self._cursor._refill()  # fail at build time on a missing, empty or malformed file

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        out = np.empty(n, dtype=np.int64 if self.value_type == "int" else object)
        self._cursor.take_into(out)
        return out
