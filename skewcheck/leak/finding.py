"""Goroutines grouped by stack signature, and what grew between two profiles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from skewcheck.leak.benign import is_benign
from skewcheck.leak.cause import Cause, diagnose
from skewcheck.leak.profile import Profile, Stack
from skewcheck.leak.signature import Signature, signature_of


@dataclass
class StackGroup:
    """All goroutines of one profile sharing a signature."""

    signature: Signature
    example: Stack
    count: int = 0
    states: Counter = field(default_factory=Counter)
    wait_minutes: int | None = None
    labels: dict[str, set[str]] = field(default_factory=dict)

    def add(self, stack: Stack) -> None:
        self.count += stack.count
        if stack.state:
            self.states[stack.state] += stack.count
        if stack.wait_minutes is not None:
            self.wait_minutes = max(self.wait_minutes or 0, stack.wait_minutes)
        for key, value in stack.labels:
            self.labels.setdefault(key, set()).add(value)


@dataclass(frozen=True)
class Finding:
    """Goroutines with one signature that are there after and were not before."""

    signature: Signature
    count: int  # how many more than before
    before: int
    after: int
    states: dict[str, int]
    wait_minutes: int | None
    labels: dict[str, list[str]]
    cause: Cause

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count, "before": self.before, "after": self.after,
            "states": dict(self.states), "wait_minutes": self.wait_minutes,
            "frames": list(self.signature.functions), "created_by": self.signature.created_by,
            "labels": {k: list(v) for k, v in self.labels.items()},
            "cause": self.cause.name, "summary": self.cause.summary, "fix": self.cause.fix,
        }


def group_stacks(profile: Profile, *, creators: bool = True,
                 include_benign: bool = False) -> dict[Signature, StackGroup]:
    groups: dict[Signature, StackGroup] = {}
    for stack in profile.stacks:
        if not include_benign and is_benign(stack):
            continue
        signature = signature_of(stack)
        if not creators:
            signature = signature.without_creator()
        group = groups.get(signature)
        if group is None:
            group = groups[signature] = StackGroup(signature, stack)
        group.add(stack)
    return groups


def counted_total(profile: Profile) -> int:
    """Goroutines that count toward a leak: all but the benign ones (all, without stacks)."""
    if profile.format == "go_goroutines":
        return profile.total
    benign = sum(stack.count for stack in profile.stacks if is_benign(stack))
    return max(0, profile.total - benign)


def new_goroutines(before: Profile, after: Profile) -> list[Finding]:
    """Signatures with more goroutines in `after` than in `before`, largest growth first."""
    creators = before.format == after.format  # debug=1 has no creators to compare
    old = group_stacks(before, creators=creators)
    findings = []
    for signature, group in group_stacks(after, creators=creators).items():
        previous = old[signature].count if signature in old else 0
        if group.count <= previous:
            continue
        findings.append(Finding(
            signature=signature, count=group.count - previous, before=previous, after=group.count,
            states=dict(group.states), wait_minutes=group.wait_minutes,
            labels={k: sorted(v) for k, v in group.labels.items()},
            cause=diagnose(signature, group.example, dict(group.states)),
        ))
    findings.sort(key=lambda f: (-f.count, f.signature))
    return findings
