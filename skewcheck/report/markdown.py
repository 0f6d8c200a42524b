"""Markdown for pull requests and `$GITHUB_STEP_SUMMARY` (which GitHub renders with raw HTML):
every text from data through `markdown_text`/`markdown_code`, the whole capped below 1 MiB."""

from __future__ import annotations

import re
from typing import Any

from skewcheck.report import findings
from skewcheck.report.escape import capped_markdown, html_text, markdown_code, markdown_text
from skewcheck.report.terminal import NOTABLE_KEY_SHARE

ICON = {"pass": "✅", "block": "❌", "inconclusive": "⚠️"}


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _cell(text: Any) -> str:
    """Text from data in a paragraph or a table cell: no markup, no HTML, no cell boundary."""
    return markdown_text(text)


def _fence(text: str) -> str:
    """A fenced code block that text with backtick runs of its own cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _labelled(doc: dict[str, Any]) -> list[str]:
    labels = [text for name, text in (doc.get("router_labels") or {}).items() if text != name]
    return ["", "Routers with parameters: " + "; ".join(_cell(t) for t in labels)] if labels else []


def render(doc: dict[str, Any]) -> str:
    s, v = doc["summary"], doc["verdict"]
    out = [
        f"## skewcheck: {ICON[v['status']]} {v['status'].upper()} (exit {v['exit_code']})",
        "",
        f"{s['requests']:,} requests over {s['shards']} shards; primary router {markdown_code(s['primary'])}.",
        *_labelled(doc),
        "",
        "| rule | router | status | detail |",
        "|---|---|---|---|",
    ]
    out += [f"| {_cell(c['rule'])} | {_cell(c.get('router') or '')} | {ICON[c['status']]} {c['status']} | "
            f"{_cell(c['message'])} |" for c in v["checks"]]
    out += ["", "| router | hottest shard | max share (95% CI) | stddev ratio | floor | excess |",
            "|---|---|---|---|---|---|"]
    for name, rs in s["routers"].items():
        rb = doc["balance"][name]
        lo, hi = rb["max_share_interval"]
        excess = "?" if rb["stddev_excess"] is None else f"{rb['stddev_excess']:.3f}"
        floor = "?" if rs["stddev_ratio_floor"] is None else f"{rs['stddev_ratio_floor']:.3f}"
        out.append(f"| {_cell(name)} | {rs['hottest_shard']} | {_pct(rs['max_share'])} ({_pct(lo)}–{_pct(hi)}) | "
                   f"{rs['stddev_ratio']:.3f} | {floor} | {excess} |")
    diag = doc.get("diagnosis") or {}
    if diag:
        out += ["", f"**Diagnosis:** {_cell(diag['message'])}"]
        if diag.get("fix"):
            out.append(f"**Fix:** {_cell(diag['fix'])}")
    notable = [t for t in s.get("top_keys", [])[:5] if t["share"] >= NOTABLE_KEY_SHARE]
    if notable:
        out += ["", "Hottest keys: " + ", ".join(f"{markdown_code(t['key'])} ({_pct(t['share'])})" for t in notable)]
    for c in v["checks"]:
        for f in findings.of(c):
            out += ["", f"<details><summary>{html_text(c['rule'])}: {html_text(findings.title(f))}</summary>", "",
                    _fence(findings.stack(f)), "", f"Fix: {_cell(f.get('fix', ''))}", "</details>"]
    plan = doc.get("plan")
    if plan:
        out += ["", "### Capacity plan", "",
                "| router | shards | hottest | max share (95% CI) | saturates at (QPS) | headroom | verdict |",
                "|---|---|---|---|---|---|---|"]
        for r in plan["rows"]:
            lo, hi = r["max_share_interval"]
            out.append(f"| {_cell(r['router'])} | {r['shards']} | {r['hottest_shard']} | {_pct(r['max_share'])} "
                       f"({_pct(lo)}–{_pct(hi)}) | {r['saturation_qps']:,.0f} | {_pct(r['headroom'])} | {r['status']} |")
        if plan.get("safest"):
            out += ["", f"Safest: {markdown_code(plan['safest']['router'])} over {plan['safest']['shards']} shards."]
    return capped_markdown("\n".join(out) + "\n")
