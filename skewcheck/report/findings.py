"""How every reporter shows a leak finding: a one-line title and the stack it groups.

Frames, creators and labels come from the target's profile: they are data, and may carry
anything, terminal escapes included. Every reporter shows them through `printable`.
"""

from __future__ import annotations

from typing import Any

from skewcheck.report.escape import printable


def title(finding: dict[str, Any]) -> str:
    states = ", ".join(f"{s} ×{n}" for s, n in (finding.get("states") or {}).items())
    frames = finding.get("frames") or []
    where = frames[0] if frames else "?"
    return printable(f"{finding.get('count', '?')} goroutine(s) in {where}"
                     + (f" [{states}]" if states else "")
                     + (f" — {finding['summary']}" if finding.get("summary") else ""))


def stack(finding: dict[str, Any]) -> str:
    lines = list(finding.get("frames") or [])
    if finding.get("created_by"):
        lines.append(f"created by {finding['created_by']}")
    if finding.get("wait_minutes"):
        lines.append(f"(waiting ≥ {finding['wait_minutes']} minutes)")
    return "\n".join(printable(line) for line in lines)


def of(check: dict[str, Any]) -> list[dict[str, Any]]:
    return list((check.get("details") or {}).get("findings") or [])
