"""Key specs: the scenario's `keys:` section, validated by pydantic at the boundary.

A spec (or a weighted list of specs, a mixture) names a distribution and its parameters;
`skewcheck.keys.distributions` turns it into a seeded generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

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

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
ZIPF_MAX_N = 10_000_000  # the CDF is n float64s (80 MB at the cap), shared per process
TWITTER_EPOCH_MS = 1288834974657
DEFAULT_SNOWFLAKE_START_MS = 1583020800000  # 2020-03-01T00:00:00Z, fixed for reproducibility
SNOWFLAKE_MAX_WORKERS = 1 << 10
SNOWFLAKE_MAX_SEQ = 1 << 12

KeyType = Literal["int", "str"]


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
    # IDs issued per second (auto-increment: step 1): with plan.horizon the block moves on
    rate: float | None = Field(None, gt=0, allow_inf_nan=False)

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
