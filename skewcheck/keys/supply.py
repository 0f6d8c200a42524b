"""Keys for a request loop: what a Locust user draws per request."""

from __future__ import annotations

from typing import Any

from skewcheck.keys.distributions import Distribution
from skewcheck.keys.spec import HotSpec, KeySpec, MixtureSpec, PrefixedSpec, ReplaySpec


class KeySupply:
    """Keys for a request loop: drawn `block` at a time (one vectorised draw instead of one call
    per request), or one at a time from keys that can run out, so they end at their last key."""

    __slots__ = ("distribution", "block", "one_at_a_time", "pending")

    def __init__(self, distribution: Distribution, *, one_at_a_time: bool = False,
                 block: int = 1024) -> None:
        self.distribution = distribution
        self.block = block
        self.one_at_a_time = one_at_a_time
        self.pending: list[Any] = []  # drawn ahead, handed out last-first

    def next(self) -> int | str:
        pending = self.pending
        if pending:
            return pending.pop()
        if self.one_at_a_time:  # keys that run out end exactly at their last key
            return self.distribution.sample(1).tolist()[0]
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
