"""Growth: the keys a later point in time brings (`plan.horizon`), for time-based and increasing
IDs.

Snowflake IDs carry their millisecond: at the horizon the generator issues IDs from
`start_ms + horizon`. Strided IDs with a `rate` (auto-increment is `step: 1`) move on by
rate × horizon IDs: the block in use is the newest `count` IDs. Other key kinds (uniform, zipf,
hot keys, replays) have no clock and stay as they are; keys with no time-based or increasing
part at all cannot be planned at a horizon.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from skewcheck.errors import UsageError, validation_message
from skewcheck.keys import (
    HotSpec,
    KeySpec,
    MixtureSpec,
    PrefixedSpec,
    SnowflakeSpec,
    StridedSpec,
)
from skewcheck.keys.spec import INT64_MAX, INT64_MIN


def _shift(spec: KeySpec, seconds: float, where: str, moved: list[str]) -> KeySpec:
    if isinstance(spec, SnowflakeSpec):
        moved.append(f"{where} (snowflake): IDs issued {seconds / 86400:g} days later")
        return _revalidated(spec, {"start_ms": spec.start_ms + round(seconds * 1000)}, where)
    if isinstance(spec, StridedSpec) and spec.rate is not None:
        issued = round(spec.rate * seconds)
        start = spec.start + spec.step * issued
        last = start + spec.step * (spec.count - 1)
        if not (INT64_MIN <= start <= INT64_MAX and INT64_MIN <= last <= INT64_MAX):
            raise UsageError(f"{where} (strided): at the horizon the IDs leave the signed 64-bit "
                             "range")
        moved.append(f"{where} (strided): {issued:,} IDs issued since, the block starts at {start}")
        return _revalidated(spec, {"start": start}, where)
    if isinstance(spec, MixtureSpec):
        return spec.model_copy(update={"components": [
            _shift(c, seconds, f"{where}.components[{i}]", moved)
            for i, c in enumerate(spec.components)]})
    if isinstance(spec, HotSpec):
        return spec.model_copy(update={"base": _shift(spec.base, seconds, f"{where}.base", moved)})
    if isinstance(spec, PrefixedSpec):
        return spec.model_copy(update={"inner": _shift(spec.inner, seconds, f"{where}.inner",
                                                       moved)})
    return spec


def _revalidated(spec: KeySpec, update: dict[str, Any], where: str) -> KeySpec:
    try:
        return type(spec).model_validate({**spec.model_dump(), **update})
    except ValidationError as exc:
        raise UsageError(f"plan.horizon: {validation_message(exc, root=where)}") from None


def at_horizon(keys: list[KeySpec], seconds: float) -> tuple[list[KeySpec], list[str]]:
    """The key specs at `seconds` from now, and what moved; UsageError when nothing can."""
    moved: list[str] = []
    shifted = [_shift(spec, seconds, f"keys[{i}]", moved) for i, spec in enumerate(keys)]
    if not moved:
        kinds = ", ".join(sorted({spec.kind for spec in keys}))
        raise UsageError(f"plan.horizon needs time-based or increasing keys (snowflake, or "
                         f"strided with a rate of IDs per second); these keys are {kinds}")
    return shifted, moved
