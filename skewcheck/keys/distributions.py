"""Key distributions: seeded, reproducible generators of the keys a load test sends.

`build_distribution` turns a spec (or a weighted list of specs) into a `Distribution` whose
`sample(n)` draws the next n keys from `np.random.default_rng(seed)`: reproducible for a seed,
vectorised, and holding none of the keys it has produced, so memory does not grow with the
number of keys drawn.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.keys.replay import Replay, check_n, empty
from skewcheck.keys.spec import (
    SNOWFLAKE_MAX_SEQ,
    HotSpec,
    KeySpec,
    MixtureSpec,
    PrefixedSpec,
    ReplaySpec,
    SnowflakeSpec,
    StridedSpec,
    UniformSpec,
    ZipfSpec,
)


@runtime_checkable
class Distribution(Protocol):
    """A seeded key generator: ``sample(n)`` draws the next n keys (Locust users draw them a
    block at a time through KeySupply; the planner in large chunks)."""

    value_type: str  # "int" or "str"

    def sample(self, n: int) -> np.ndarray: ...


def _str_array(values: list[str]) -> np.ndarray:
    """An object array of Python str (numpy would otherwise pick a fixed-width dtype)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _child_seed(seed: int, index: int) -> int:
    """A seed for child ``index`` that is stable across runs and independent of its siblings."""
    state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, dtype=np.uint64)
    return int(state[0])


class _Uniform:
    value_type = "int"

    def __init__(self, spec: UniformSpec, seed: int) -> None:
        self._low, self._high = spec.low, spec.high
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
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
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        ranks = np.searchsorted(self._cdf, self._rng.random(n), side="right")
        return self._start + np.minimum(ranks, self._last).astype(np.int64)


class _Strided:
    value_type = "int"

    def __init__(self, spec: StridedSpec, seed: int) -> None:
        self._start, self._step, self._count = spec.start, spec.step, spec.count
        self._cycle = spec.order == "cycle"
        self._sample_i = 0  # round-robin position
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        if self._cycle:
            i = (self._sample_i + np.arange(n, dtype=np.int64)) % self._count
            self._sample_i = (self._sample_i + n) % self._count
        else:
            i = self._rng.integers(0, self._count, size=n, dtype=np.int64)
        return self._start + self._step * i


class _Snowflake:
    """Snowflake IDs of `workers` ID generators issuing `rate` IDs a second between them, at
    Poisson arrival times (a real service's requests, not a metronome: at a perfectly periodic
    5 ms cadence `id % 100` would see only the few residues of a 5 ms stride). Within a
    millisecond each worker's sequence counts up from 0; a full sequence rolls into the next ms,
    as a real generator waits for it."""

    value_type = "int"

    def __init__(self, spec: SnowflakeSpec, seed: int) -> None:
        self._rate, self._workers = spec.rate, spec.workers
        self._base = spec.start_ms - spec.epoch_ms
        times, workers = np.random.SeedSequence(seed).spawn(2)  # separate streams: however the
        self._arrivals = np.random.default_rng(times)  # IDs are batched, they come out the same
        self._worker_of = np.random.default_rng(workers)
        self._clock_ms = 0.0  # arrival time of the last ID, in ms since start_ms
        self._last_ms = -1
        self._last_seq: dict[int, int] = {}  # worker -> IDs it issued in _last_ms

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        if n == 0:
            return empty("int")
        arrivals = self._clock_ms + np.cumsum(self._arrivals.exponential(1000.0 / self._rate, n))
        self._clock_ms = float(arrivals[-1])
        ms = np.floor(arrivals).astype(np.int64)
        worker = self._worker_of.integers(0, self._workers, n, dtype=np.int64)
        seq = _occurrence(ms * self._workers + worker)
        if self._last_seq:  # IDs continuing the previous batch's last millisecond
            carried = ms == self._last_ms
            if carried.any():
                seq[carried] += np.array([self._last_seq.get(w, 0) for w in worker[carried].tolist()])
        ms = ms + seq // SNOWFLAKE_MAX_SEQ  # a full sequence waits for the next millisecond
        seq = seq % SNOWFLAKE_MAX_SEQ
        last = ms == ms[-1]
        if int(ms[-1]) != self._last_ms:
            self._last_seq = {}
        for w, s in zip(worker[last].tolist(), seq[last].tolist()):
            self._last_seq[w] = max(self._last_seq.get(w, 0), s + 1)
        self._last_ms = int(ms[-1])
        return ((self._base + ms) << 22) | (worker << 12) | seq


def _occurrence(group: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its group (0 for the first)."""
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    first = np.ones(group.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    index = np.arange(group.size)
    start = np.maximum.accumulate(np.where(first, index, 0))
    out = np.empty(group.size, dtype=np.int64)
    out[order] = index - start
    return out


class _Hot:
    def __init__(self, keys: list[int | str], weights: list[float] | None, share: float,
                 base: Distribution, value_type: str, seed: int) -> None:
        self.value_type = value_type
        self._keys = keys
        self._key_array = (np.array(keys, dtype=np.int64) if value_type == "int"
                           else _str_array([str(k) for k in keys]))
        w = np.asarray(weights if weights is not None else [1.0] * len(keys), dtype=np.float64)
        self._cum = np.cumsum(w / w.sum())
        self._share = share
        self._base = base
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
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

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        p = self._prefix
        return _str_array([f"{p}{v}" for v in self._inner.sample(n).tolist()])


class _AsText:
    """An int-valued distribution seen through ``routing.key_type: str``: its decimal text."""

    value_type = "str"

    def __init__(self, inner: Distribution) -> None:
        self._inner = inner

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        return _str_array([str(v) for v in self._inner.sample(n).tolist()])


class _Mixture:
    def __init__(self, children: list[Distribution], weights: list[float], value_type: str,
                 seed: int) -> None:
        self.value_type = value_type
        self._children = children
        w = np.asarray(weights, dtype=np.float64)
        self._cum = np.cumsum(w / w.sum())
        self._last = len(children) - 1
        self._rng = np.random.default_rng(seed)

    def sample(self, n: int) -> np.ndarray:
        check_n(n)
        which = np.minimum(np.searchsorted(self._cum, self._rng.random(n), side="right"),
                           self._last)
        out = np.empty(n, dtype=np.int64 if self.value_type == "int" else object)
        for i, child in enumerate(self._children):
            mask = which == i
            m = int(mask.sum())
            if m:
                out[mask] = child.sample(m)
        return out




_KEY_TYPE_REASON = "routing.key_type is int"


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
        return _coerce(Replay(spec, spec.key_type or want), spec, want, where, why)
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
