"""What every reporter says about the keys: how many distinct ones, and which carry a notable share.

Keys are data from the load (or from anyone who writes to the Kafka topic): each format passes its
own quoting (`quote`), so no key reaches a terminal, Markdown or HTML unescaped.
"""

from __future__ import annotations

from typing import Any, Callable

from skewcheck.report.figures import pct


def keys_line(summary: dict[str, Any], quote: Callable[[str], str], listed: int = 5) -> str:
    """"127 distinct keys, counted exactly; no key stands out (…); the busiest carries 1.3%"."""
    keys = summary.get("keys") or {}
    if not summary.get("requests"):
        return "no keys counted"
    distinct = keys.get("distinct")
    exact = keys.get("exact", False)
    how = ("counted exactly" if exact else
           f"the hottest counted by a Misra–Gries summary, each low by at most {keys.get('error', 0):,}")
    many = "an unknown number of distinct keys" if distinct is None else \
        f"{'' if exact else '≈'}{distinct:,} distinct key{'s' if distinct != 1 else ''}"
    notable = keys.get("notable") or []
    rule = (f"≥ {pct(keys.get('notable_share', 0.01))} of the requests and ≥ "
            f"{keys.get('notable_over_mean', 2.0):g}× the mean key's share")
    if not notable:
        return f"{many}, {how}; no key stands out ({rule}); the busiest carries " \
               f"{pct(keys.get('busiest_share', 0.0))}"
    shown = ", ".join(f"{quote(str(k['key']))} ({pct(k['share'])})" for k in notable[:listed])
    more = f" and {len(notable) - listed} more" if len(notable) > listed else ""
    return f"{many}, {how}; hot keys ({rule}): {shown}{more}"
