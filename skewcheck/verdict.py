"""The gate's output: one Check per rule, folded into a Verdict with an exit code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

from skewcheck.errors import EXIT_BLOCK, EXIT_INCONCLUSIVE, EXIT_PASS

Status = Literal["pass", "block", "inconclusive"]

# block outranks inconclusive outranks pass: a failed rule is never hidden by missing evidence elsewhere
_RANK = {"pass": 0, "inconclusive": 1, "block": 2}
EXIT_CODES = {"pass": EXIT_PASS, "block": EXIT_BLOCK, "inconclusive": EXIT_INCONCLUSIVE}


@dataclass(frozen=True)
class Check:
    """The outcome of one gate rule (one JUnit test case)."""

    rule: str
    status: Status
    message: str
    router: str | None = None
    shard: int | None = None
    value: float | None = None
    limit: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        if not self.checks:
            return "inconclusive"  # fail closed: nothing was judged
        return worst(c.status for c in self.checks)

    @property
    def reasons(self) -> tuple[Check, ...]:
        """The checks that keep this verdict from passing."""
        return tuple(c for c in self.checks if c.status != "pass")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "reasons": [c.to_json() for c in self.reasons],
            "checks": [c.to_json() for c in self.checks],
        }


def worst(statuses: Iterable[Status]) -> Status:
    """block over inconclusive over pass."""
    return max(statuses, key=_RANK.__getitem__)
