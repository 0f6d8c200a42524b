"""How every reporter writes a number: a share, a QPS figure, how busy a shard is; and what a
planner's finding rests on."""

from __future__ import annotations


def pct(x: float | None, missing: str = "?") -> str:
    """A share as a percentage with one decimal (`missing` when unknown)."""
    return missing if x is None else f"{x * 100:.1f}%"


def finding_note(finding: dict) -> str:
    """What a planner's search finding rests on: its reason when none was found, else whether
    the shard count was confirmed on the exact keys or only on the sampled key model."""
    if finding["shards"] is None:
        return finding["reason"]
    return "exact" if finding["exact"] else "on the sampled key model"


def qps(x: float | None, unit: str = "") -> str:
    """A total QPS figure: "never" for a shard that never saturates, "—" when unknown."""
    if x is None:
        return "—"
    return "never" if x == float("inf") else f"{x:,.0f}{unit}"


def busy(u: float | None) -> str:
    """A shard's utilisation at the target: "68% of capacity", past twice it "3.5× capacity"."""
    if u is None:
        return "—"
    return f"{u:.1f}× capacity" if u >= 2 else f"{u:.0%} of capacity"
