"""Key distributions: seeded, reproducible generators of the keys a load test sends.

A scenario's ``keys`` is a spec (or a weighted list of specs) validated by pydantic;
``build_distribution`` turns it into a ``Distribution`` with a cheap per-request
``next()`` and a vectorised ``sample(n)``. ``next()`` draws from ``random.Random(seed)``
and ``sample()`` from ``np.random.default_rng(seed)``: two independent streams, each
reproducible for a given seed. No distribution keeps the keys it has produced, so
memory does not grow with the number of keys drawn.
"""

from __future__ import annotations

import bisect
import csv
import functools
import random
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal, Protocol, Union, runtime_checkable

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from skewcheck.errors import UsageError, validation_message

__all__ = [
    "Distribution",
    "HotSpec",
    "KeySpec",
    "MixtureSpec",
    "PrefixedSpec",
    "ReplayExhausted",
    "ReplaySpec",
    "SnowflakeSpec",
    "StridedSpec",
    "UniformSpec",
    "ZipfSpec",
    "KeySupply",
    "build_distribution",
    "ends",
    "parse_keys",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
ZIPF_MAX_N = 10_000_000  # the CDF is n float64s (80 MB at the cap), shared per process
TWITTER_EPOCH_MS = 1288834974657
DEFAULT_SNOWFLAKE_START_MS = 1583020800000  # 2020-03-01T00:00:00Z, fixed for reproducibility
SNOWFLAKE_MAX_WORKERS = 1 << 10
SNOWFLAKE_MAX_SEQ = 1 << 12

KeyType = Literal["int", "str"]


# ---------------------------------------------------------------------------
# Specs (the configuration boundary)
# ---------------------------------------------------------------------------


def _check_int64(*values: int) -> None:
    for value in values:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"key {value} does not fit in a signed 64-bit integer")


class _Spec(BaseModel):
    """Fields every distribution spec shares; typos in field names are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(1.0, ge=0, allow_inf_nan=False)


class UniformSpec(_Spec):
    """Integers drawn uniformly from [low, high], both ends included."""

    kind: Literal["uniform"] = "uniform"
    low: int = 1
    high: int = 1_000_000

    @model_validator(mode="after")
    def _range(self) -> UniformSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        _check_int64(self.low, self.high)
        return self


class ZipfSpec(_Spec):
    """n keys ``start + rank`` with P(rank r) proportional to 1/(r+1)^exponent (rank 0 hottest)."""

    kind: Literal["zipf"] = "zipf"
    n: int = Field(gt=0, le=ZIPF_MAX_N)
    exponent: float = Field(gt=0, allow_inf_nan=False)
    start: int = 1

    @model_validator(mode="after")
    def _range(self) -> ZipfSpec:
        _check_int64(self.start, self.start + self.n - 1)
        return self


class StridedSpec(_Spec):
    """``count`` keys ``start + step*i``: blocks of test accounts that share a factor with N."""

    kind: Literal["strided"] = "strided"
    start: int
    step: int
    count: int = Field(gt=0)
    order: Literal["random", "cycle"] = "random"

    @model_validator(mode="after")
    def _range(self) -> StridedSpec:
        if self.step == 0:
            raise ValueError("step must not be 0")
        _check_int64(self.start, self.start + self.step * (self.count - 1))
        return self


class SnowflakeSpec(_Spec):
    """Twitter Snowflake IDs ``((ms - epoch_ms) << 22) | (worker << 12) | seq`` at ``rate``/s."""

    kind: Literal["snowflake"] = "snowflake"
    rate: float = Field(gt=0, allow_inf_nan=False)
    workers: int = Field(1, ge=1, le=SNOWFLAKE_MAX_WORKERS)
    start_ms: int = DEFAULT_SNOWFLAKE_START_MS
    epoch_ms: int = TWITTER_EPOCH_MS

    @model_validator(mode="after")
    def _range(self) -> SnowflakeSpec:
        if not 0 <= self.start_ms - self.epoch_ms < 1 << 41:
            raise ValueError("start_ms must lie within 2^41 ms after epoch_ms")
        # a real generator waits for the next ms when seq overflows; we refuse such rates instead
        if self.rate > SNOWFLAKE_MAX_SEQ * 1000 * self.workers:
            raise ValueError(
                f"rate {self.rate:g}/s exceeds what {self.workers} worker(s) can issue "
                f"({SNOWFLAKE_MAX_SEQ * 1000 * self.workers}/s)"
            )
        return self


class ReplaySpec(_Spec):
    """Real IDs streamed from a file: one per line, or one ``column`` of a CSV file."""

    kind: Literal["replay"] = "replay"
    path: Path
    column: Annotated[StrictInt, Field(ge=0)] | StrictStr | None = None
    header: bool | None = None  # default: a named column implies a header row
    delimiter: str = Field(",", min_length=1, max_length=1)
    key_type: KeyType | None = None  # default: routing.key_type
    loop: bool = True

    @property
    def has_header(self) -> bool:
        return self.header if self.header is not None else isinstance(self.column, str)

    @model_validator(mode="after")
    def _named_column_needs_header(self) -> ReplaySpec:
        if isinstance(self.column, str) and self.header is False:
            raise ValueError("a column given by name needs a header row (header: true)")
        return self


class HotSpec(_Spec):
    """A few hot ``keys`` carrying ``share`` of requests; the rest come from ``base``."""

    kind: Literal["hot"] = "hot"
    keys: list[StrictInt | StrictStr] = Field(min_length=1)
    share: float = Field(ge=0, le=1, allow_inf_nan=False)
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    base: KeySpec = Field(default_factory=UniformSpec)

    @field_validator("keys")
    @classmethod
    def _int64_keys(cls, keys: list[int | str]) -> list[int | str]:
        _check_int64(*(k for k in keys if isinstance(k, int)))
        return keys

    # field (not model) validators here and in MixtureSpec: pydantic runs "after" model
    # validators twice on recursive models (pydantic#13581)
    @field_validator("weights")
    @classmethod
    def _weights_match(cls, weights: list[float] | None,
                       info: ValidationInfo) -> list[float] | None:
        keys = info.data.get("keys")
        if weights is not None and keys is not None:
            if len(weights) != len(keys):
                raise ValueError(f"weights has {len(weights)} entries but keys has {len(keys)}")
            if sum(weights) <= 0:
                raise ValueError("weights must not all be 0")
        return weights


class PrefixedSpec(_Spec):
    """String keys ``prefix + str(inner)`` such as ``user-42``; ``inner`` must yield ints."""

    kind: Literal["prefixed"] = "prefixed"
    prefix: str
    inner: KeySpec = Field(default_factory=UniformSpec)


class MixtureSpec(_Spec):
    """Components chosen per key in proportion to their ``weight``."""

    kind: Literal["mixture"] = "mixture"
    components: list[KeySpec] = Field(min_length=1)

    @field_validator("components")
    @classmethod
    def _some_weight(cls, components: list[KeySpec]) -> list[KeySpec]:
        if sum(c.weight for c in components) <= 0:
            raise ValueError("component weights must not all be 0")
        return components


KeySpec = Annotated[
    Union[
        UniformSpec,
        ZipfSpec,
        HotSpec,
        StridedSpec,
        PrefixedSpec,
        SnowflakeSpec,
        ReplaySpec,
        MixtureSpec,
    ],
    Field(discriminator="kind"),
]

for _model in (HotSpec, PrefixedSpec, MixtureSpec):
    _model.model_rebuild()

_SPEC_ADAPTER: TypeAdapter[Any] = TypeAdapter(KeySpec)
_LIST_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[KeySpec])
KINDS = frozenset(  # discriminator tags, which pydantic puts into error locations
    m.model_fields["kind"].default
    for m in (UniformSpec, ZipfSpec, HotSpec, StridedSpec, PrefixedSpec, SnowflakeSpec,
              ReplaySpec, MixtureSpec)
)


def parse_keys(data: Any, where: str = "keys") -> list[KeySpec] | KeySpec:
    """Validate raw (YAML/JSON) key specs, a list meaning a weighted mixture.

    Errors become a UsageError naming the field, e.g. ``keys[1].count: Input should be > 0``.
    """
    adapter = _LIST_ADAPTER if isinstance(data, list) else _SPEC_ADAPTER
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise UsageError(validation_message(exc, root=where, skip=KINDS)) from None


# ---------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------


@runtime_checkable
class Distribution(Protocol):
    """A seeded key generator: ``next()`` per request, ``sample(n)`` for offline planning."""

    value_type: str  # "int" or "str"

    def next(self) -> int | str: ...

    def sample(self, n: int) -> np.ndarray: ...


def _str_array(values: list[str]) -> np.ndarray:
    """An object array of Python str (numpy would otherwise pick a fixed-width dtype)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _empty(value_type: str) -> np.ndarray:
    return np.empty(0, dtype=np.int64 if value_type == "int" else object)


def _check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"sample size must be >= 0, got {n}")


def _child_seed(seed: int, index: int) -> int:
    """A seed for child ``index`` that is stable across runs and independent of its siblings."""
    state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, dtype=np.uint64)
    return int(state[0])


class _Uniform:
    value_type = "int"

    def __init__(self, spec: UniformSpec, seed: int) -> None:
        self._low, self._high = spec.low, spec.high
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)

    def next(self) -> int:
        return self._random.randint(self._low, self._high)

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        return self._rng.integers(self._low, self._high, size=n, endpoint=True, dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    """Normalised CDF over ranks; cached read-only so per-user distributions share it."""
    cdf = np.cumsum(np.arange(1, n + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]
    cdf[-1] = 1.0  # guard against rounding so every draw in [0, 1) lands on a rank
    cdf.setflags(write=False)
    return cdf


class _Zipf:
    value_type = "int"

    def __init__(self, spec: ZipfSpec, seed: int) -> None:
        self._start, self._last = spec.start, spec.n - 1
        self._cdf = _zipf_cdf(spec.n, spec.exponent)
        self._cdf_view = memoryview(self._cdf)  # bisect on it yields Python floats, no copy
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)

    def next(self) -> int:
        rank = bisect.bisect_right(self._cdf_view, self._random.random())
        return self._start + min(rank, self._last)

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        ranks = np.searchsorted(self._cdf, self._rng.random(n), side="right")
        return self._start + np.minimum(ranks, self._last).astype(np.int64)


class _Strided:
    value_type = "int"

    def __init__(self, spec: StridedSpec, seed: int) -> None:
        self._start, self._step, self._count = spec.start, spec.step, spec.count
        self._cycle = spec.order == "cycle"
        self._next_i = 0  # round-robin positions, one per stream
        self._sample_i = 0
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)

    def next(self) -> int:
        if self._cycle:
            i = self._next_i
            self._next_i = (i + 1) % self._count
        else:
            i = self._random.randrange(self._count)
        return self._start + self._step * i

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        if self._cycle:
            i = (self._sample_i + np.arange(n, dtype=np.int64)) % self._count
            self._sample_i = (self._sample_i + n) % self._count
        else:
            i = self._rng.integers(0, self._count, size=n, dtype=np.int64)
        return self._start + self._step * i


class _Snowflake:
    """Deterministic clock: ID i comes at ms ``floor(i*1000/rate)`` from worker ``i % workers``."""

    value_type = "int"

    def __init__(self, spec: SnowflakeSpec, seed: int) -> None:
        del seed  # the ID sequence is a function of the clock alone
        self._rate, self._workers = spec.rate, spec.workers
        self._base = spec.start_ms - spec.epoch_ms
        self._next = _SnowflakeClock()
        self._sample = _SnowflakeClock()

    def next(self) -> int:
        c = self._next
        i = c.i
        c.i += 1
        ms = int((i * 1000) / self._rate)
        if ms != c.ms:  # a new millisecond: every worker's seq restarts at 0
            c.ms, c.run_start = ms, i
        w = i % self._workers
        seq = (i - (c.run_start + (w - c.run_start) % self._workers)) // self._workers
        return ((self._base + ms) << 22) | (w << 12) | seq

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        if n == 0:
            return _empty("int")
        c = self._sample
        i = c.i + np.arange(n, dtype=np.int64)
        c.i += n
        ms = np.floor((i.astype(np.float64) * 1000.0) / self._rate).astype(np.int64)
        changed = np.empty(n, dtype=bool)
        changed[0] = ms[0] != c.ms
        changed[1:] = ms[1:] != ms[:-1]
        run_start = np.maximum.accumulate(np.where(changed, i, -1))
        run_start[run_start < 0] = c.run_start  # leading IDs continue the previous batch's ms
        w = i % self._workers
        seq = (i - (run_start + (w - run_start) % self._workers)) // self._workers
        c.ms, c.run_start = int(ms[-1]), int(run_start[-1])
        return ((self._base + ms) << 22) | (w << 12) | seq


class _SnowflakeClock:
    """Position of one stream: next ID index, current ms and the index that opened it."""

    __slots__ = ("i", "ms", "run_start")

    def __init__(self) -> None:
        self.i, self.ms, self.run_start = 0, -1, 0


class _Hot:
    def __init__(self, keys: list[int | str], weights: list[float] | None, share: float,
                 base: Distribution, value_type: str, seed: int) -> None:
        self.value_type = value_type
        self._keys = keys
        self._key_array = (np.array(keys, dtype=np.int64) if value_type == "int"
                           else _str_array([str(k) for k in keys]))
        w = np.asarray(weights if weights is not None else [1.0] * len(keys), dtype=np.float64)
        self._cum = np.cumsum(w / w.sum())
        self._cum_list = self._cum.tolist()
        self._uniform = weights is None
        self._share = share
        self._base = base
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)

    def next(self) -> int | str:
        r = self._random
        if r.random() >= self._share:
            return self._base.next()
        if self._uniform:
            return self._keys[r.randrange(len(self._keys))]
        return self._keys[min(bisect.bisect_right(self._cum_list, r.random()), len(self._keys) - 1)]

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        hot = self._rng.random(n) < self._share
        m = int(hot.sum())
        out = np.empty(n, dtype=self._key_array.dtype)
        idx = np.searchsorted(self._cum, self._rng.random(m), side="right")
        out[hot] = self._key_array[np.minimum(idx, len(self._keys) - 1)]
        out[~hot] = self._base.sample(n - m)
        return out


class _Prefixed:
    value_type = "str"

    def __init__(self, prefix: str, inner: Distribution) -> None:
        self._prefix, self._inner = prefix, inner

    def next(self) -> str:
        return f"{self._prefix}{self._inner.next()}"

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        p = self._prefix
        return _str_array([f"{p}{v}" for v in self._inner.sample(n).tolist()])


class _AsText:
    """An int-valued distribution seen through ``routing.key_type: str``: its decimal text."""

    value_type = "str"

    def __init__(self, inner: Distribution) -> None:
        self._inner = inner

    def next(self) -> str:
        return str(self._inner.next())

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        return _str_array([str(v) for v in self._inner.sample(n).tolist()])


class _Mixture:
    def __init__(self, children: list[Distribution], weights: list[float], value_type: str,
                 seed: int) -> None:
        self.value_type = value_type
        self._children = children
        w = np.asarray(weights, dtype=np.float64)
        self._cum = np.cumsum(w / w.sum())
        self._cum_list = self._cum.tolist()
        self._last = len(children) - 1
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)

    def next(self) -> int | str:
        # bisect_right never picks a zero-weight component: its cumulative bound equals the previous
        i = bisect.bisect_right(self._cum_list, self._random.random())
        return self._children[min(i, self._last)].next()

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        which = np.minimum(np.searchsorted(self._cum, self._rng.random(n), side="right"),
                           self._last)
        out = np.empty(n, dtype=np.int64 if self.value_type == "int" else object)
        for i, child in enumerate(self._children):
            mask = which == i
            m = int(mask.sum())
            if m:
                out[mask] = child.sample(m)
        return out


# ---------------------------------------------------------------------------
# Replay: real IDs streamed from a file
# ---------------------------------------------------------------------------


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

    def take(self) -> int | str:
        if self._pos >= len(self._buf):
            self._refill()
        key = self._buf[self._pos]
        self._pos += 1
        self._served += 1
        return key

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


class _Replay:
    def __init__(self, spec: ReplaySpec, value_type: str) -> None:
        self.value_type = value_type
        self._spec = spec
        self._next = _ReplayCursor(spec, value_type == "int")
        self._next._refill()  # fail at build time on a missing, empty or malformed file
        self._sample: _ReplayCursor | None = None

    def next(self) -> int | str:
        return self._next.take()

    def sample(self, n: int) -> np.ndarray:
        _check_n(n)
        if self._sample is None:
            self._sample = _ReplayCursor(self._spec, self.value_type == "int")
        out = np.empty(n, dtype=np.int64 if self.value_type == "int" else object)
        self._sample.take_into(out)
        return out


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

_KEY_TYPE_REASON = "routing.key_type is int"


class KeySupply:
    """Keys for a request loop: drawn `block` at a time (one vectorised draw instead of one call
    per request), or one at a time from keys that can run out, so they end at their last key."""

    __slots__ = ("distribution", "block", "one_at_a_time", "pending")

    def __init__(self, distribution: Distribution, *, one_at_a_time: bool = False, block: int = 1024) -> None:
        self.distribution = distribution
        self.block = block
        self.one_at_a_time = one_at_a_time
        self.pending: list[Any] = []  # drawn ahead, handed out last-first

    def next(self) -> int | str:
        pending = self.pending
        if pending:
            return pending.pop()
        if self.one_at_a_time:
            return self.distribution.next()
        pending = self.distribution.sample(self.block).tolist()
        pending.reverse()
        self.pending = pending
        return pending.pop()


def ends(specs: list[KeySpec] | KeySpec) -> bool:
    """Whether these keys can run out (a replay with loop: false anywhere in them)."""
    if isinstance(specs, list):
        return any(ends(s) for s in specs)
    if isinstance(specs, ReplaySpec):
        return not specs.loop
    if isinstance(specs, HotSpec):
        return ends(specs.base)
    if isinstance(specs, PrefixedSpec):
        return ends(specs.inner)
    if isinstance(specs, MixtureSpec):
        return ends(specs.components)
    return False


def build_distribution(specs: list[KeySpec] | KeySpec, seed: int, key_type: str) -> Distribution:
    """Build a distribution from a spec or a weighted list of specs (a mixture).

    With ``key_type`` "str", int-valued distributions yield their decimal text; with
    "int", a str-valued one is a UsageError naming it (``keys[1] (prefixed) ...``).
    """
    if key_type not in ("int", "str"):
        raise UsageError(f"routing.key_type must be 'int' or 'str', got {key_type!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(specs, list):
        return _build(specs, seed, key_type, "keys", _KEY_TYPE_REASON)
    if not specs:
        raise UsageError("keys: at least one key distribution is required")
    paths = [f"keys[{i}]" for i in range(len(specs))]
    return _build_mixture(specs, seed, key_type, paths, _KEY_TYPE_REASON)


def _build(spec: KeySpec, seed: int, want: str, where: str, why: str) -> Distribution:
    """Build ``spec`` yielding ``want``-typed keys; ``where``/``why`` name it in errors."""
    if isinstance(spec, MixtureSpec):
        paths = [f"{where}.components[{i}]" for i in range(len(spec.components))]
        return _build_mixture(spec.components, seed, want, paths, why)
    if isinstance(spec, HotSpec):
        return _build_hot(spec, seed, want, where, why)
    if isinstance(spec, PrefixedSpec):
        inner = _build(spec.inner, seed, "int", f"{where}.inner",
                       "a prefixed distribution's inner keys must be int")
        return _coerce(_Prefixed(spec.prefix, inner), spec, want, where, why)
    if isinstance(spec, ReplaySpec):
        return _coerce(_Replay(spec, spec.key_type or want), spec, want, where, why)
    leaf = _LEAVES.get(type(spec))
    if leaf is None:
        raise UsageError(f"{where}: unsupported key distribution {type(spec).__name__}")
    return _coerce(leaf(spec, seed), spec, want, where, why)


_LEAVES: dict[type, Callable[[Any, int], Distribution]] = {
    UniformSpec: _Uniform,
    ZipfSpec: _Zipf,
    StridedSpec: _Strided,
    SnowflakeSpec: _Snowflake,
}


def _coerce(dist: Distribution, spec: KeySpec, want: str, where: str, why: str) -> Distribution:
    if dist.value_type == want:
        return dist
    if want == "str":
        return _AsText(dist)
    raise UsageError(f"{where} ({spec.kind}) yields str keys but {why}")


def _build_mixture(specs: list[KeySpec], seed: int, want: str, paths: list[str],
                   why: str) -> Distribution:
    if len(specs) == 1:  # a one-component mixture is just that component
        return _build(specs[0], seed, want, paths[0], why)
    children = [
        _build(s, _child_seed(seed, i), want, path, why)
        for i, (s, path) in enumerate(zip(specs, paths))
    ]
    weights = [s.weight for s in specs]
    if sum(weights) <= 0:
        raise UsageError(f"{paths[0].rsplit('[', 1)[0]}: component weights must not all be 0")
    return _Mixture(children, weights, want, seed)


def _build_hot(spec: HotSpec, seed: int, want: str, where: str, why: str) -> Distribution:
    if want == "int" and any(isinstance(k, str) for k in spec.keys):
        raise UsageError(f"{where} ({spec.kind}) yields str keys but {why}")
    keys = list(spec.keys) if want == "int" else [str(k) for k in spec.keys]
    base = _build(spec.base, _child_seed(seed, 0), want, f"{where}.base", why)
    return _Hot(keys, spec.weights, spec.share, base, want, seed)
