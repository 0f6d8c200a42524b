"""Leak checks and their findings as terminal text, read from the JSON a check carries.

Every piece of profile text goes through `printable`: frame names are the target's data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from skewcheck.leak.check import RULE_DRAIN
from skewcheck.leak.finding import Finding
from skewcheck.report.findings import printable
from skewcheck.verdict import Check


def render_finding(finding: dict[str, Any], indent: str = "  ") -> str:
    states = finding.get("states") or {}
    state_text = ", ".join(s if len(states) == 1 else f"{s} ×{n}"
                           for s, n in sorted(states.items(), key=lambda kv: -kv[1]))
    wait = f", {finding['wait_minutes']}+ minutes" if finding.get("wait_minutes") else ""
    lines = [f"{indent}{finding['count']} × [{state_text or 'state unknown'}{wait}]"
             f"  ({finding['before']} → {finding['after']})"]
    lines += [f"{indent}      {frame}" for frame in finding.get("frames") or []]
    if finding.get("created_by"):
        lines.append(f"{indent}      created by {finding['created_by']}")
    labels = finding.get("labels") or {}
    if labels:
        pairs = ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(labels.items()))
        lines.append(f"{indent}      labels: {pairs}")
    lines.append(f"{indent}    cause: {finding['summary']}")
    lines.append(f"{indent}    fix:   {finding['fix']}")
    return "\n".join(printable(line) for line in lines)


def render_findings(findings: Iterable[Finding | dict[str, Any]], indent: str = "  ") -> str:
    return "\n".join(render_finding(f if isinstance(f, dict) else f.to_json(), indent)
                     for f in findings)


def render_check(check: Check) -> str:
    lines = [printable(f"{check.rule}: {check.status.upper()} — {check.message}")]
    view = check.details.get("goroutineleak") or {}
    if check.rule == RULE_DRAIN and view and not view.get("available"):
        lines.append(printable(f"  goroutineleak profile {view.get('reason', 'not read')}: "
                               "GC-proven leaks were not looked for"))
    findings = check.details.get("findings") or []
    if findings and check.status != "pass":
        lines.append(render_findings(findings))
    return "\n".join(lines)
