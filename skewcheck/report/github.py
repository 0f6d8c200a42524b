"""GitHub Actions workflow commands for the verdict: one `::error` annotation per rule that keeps
the release from passing (block or inconclusive), printed by a run inside a workflow
(`GITHUB_ACTIONS=true`) so the rule and its message show on the job's summary page.

Messages carry keys and target data: `%`, CR and LF are escaped as the runner requires, so no key
can end the command early or start another one.
"""

from __future__ import annotations

from typing import Any

from skewcheck.report.escape import printable


def _data(text: str) -> str:
    return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(doc: dict[str, Any]) -> str:
    lines = []
    for check in doc["verdict"]["reasons"]:
        what = "blocks the release" if check["status"] == "block" else "is inconclusive"
        where = f" [{check['router']}]" if check.get("router") else ""
        lines.append(f"::error title={_property('skewcheck ' + check['rule'] + where)}::"
                     f"{_data(check['rule'] + ' ' + what + ': ' + check['message'])}")
    return "\n".join(lines)
