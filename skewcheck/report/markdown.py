"""Markdown for pull requests and `$GITHUB_STEP_SUMMARY` (which GitHub renders with raw HTML):
every text from data through `markdown_text`/`markdown_code`, the whole capped below 1 MiB."""

from __future__ import annotations

import re
from typing import Any

from skewcheck.report import findings
from skewcheck.report import latency as latency_table
from skewcheck.report.escape import capped_markdown, html_text, markdown_code, markdown_text
from skewcheck.report.figures import busy, finding_note, pct, qps
from skewcheck.report.keys import keys_line

ICON = {"pass": "✅", "block": "❌", "inconclusive": "⚠️"}




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
        out.append(f"| {_cell(name)} | {rs['hottest_shard']} | {pct(rs['max_share'])} ({pct(lo)}–{pct(hi)}) | "
                   f"{rs['stddev_ratio']:.3f} | {floor} | {excess} |")
    diag = doc.get("diagnosis") or {}
    if diag:
        out += ["", f"**Diagnosis:** {_cell(diag['message'])}"]
        if diag.get("fix"):
            out.append(f"**Fix:** {_cell(diag['fix'])}")
    if doc.get("latency"):
        out += ["", latency_table.markdown(doc["latency"])]
    if s.get("keys"):
        out += ["", "Keys: " + keys_line(s, markdown_code)]
    elif s.get("top_keys"):
        out += ["", "Hottest keys: " + ", ".join(f"{markdown_code(t['key'])} ({pct(t['share'])})" for t in s["top_keys"][:5])]
    for c in v["checks"]:
        for f in findings.of(c):
            out += ["", f"<details><summary>{html_text(c['rule'])}: {html_text(findings.title(f))}</summary>", "",
                    _fence(findings.stack(f)), "", f"Fix: {_cell(f.get('fix', ''))}", "</details>"]
    plan = doc.get("plan")
    if plan:
        out += ["", *render_plan(plan)]
    return capped_markdown("\n".join(out) + "\n")






def render_plan(plan: dict[str, Any]) -> list[str]:
    """The capacity plan as Markdown lines: rows, search, recommendation, what-ifs."""
    cap = plan["capacity"]
    target = cap["target_qps"]
    out = ["### Capacity plan", ""]
    if cap["judged"]:
        out += [f"Target {target:,.0f} QPS; one shard carries "
                f"{cap['shard_capacity_qps']:,.0f} QPS; "
                f"headroom {cap['headroom']:.0%} (a setup must saturate above "
                f"{cap['needed_qps']:,.0f} QPS).", ""]
    rec = plan.get("recommendation") or {}
    if rec.get("message"):
        out += [f"**Recommendation:** {_cell(rec['message'])}", ""]
        out += [f"- not {markdown_code(r['router'])}: {_cell(r['reason'])}"
                for r in rec.get("rejected", [])]
        out.append("")
    out += ["| router | shards | role | first to saturate | at target | saturates at (QPS) "
            "| verdict |",
            "|---|---|---|---|---|---|---|"]
    for r in plan["rows"]:
        out.append(f"| {_cell(r['router'])} | {r['shards']} | {_cell(', '.join(r['roles']))} | "
                   f"shard {r['hottest_shard']} ({pct(r['hottest_share'])}) | "
                   f"{busy(r.get('utilisation'))} | {qps(r.get('saturation_qps'))} | "
                   f"{ICON[r['status']]} {r['status']} |")
    findings = (plan.get("search") or {}).get("findings") or {}
    if findings:
        out += ["", "| router | smallest robust shard count | note |", "|---|---|---|"]
        for router, f in findings.items():
            note = finding_note(f)
            shards = f["shards"] if f["shards"] is not None else "—"
            out.append(f"| {_cell(router)} | {shards} | "
                       f"{_cell(note)} |")
    rs = plan.get("reshard")
    if rs:
        out += ["", f"Resharding {rs['from']} → {rs['to']} shards:", "",
                "| router | keys moved | traffic moved | evenly spread keys | hottest after "
                "| verdict |",
                "|---|---|---|---|---|---|"]
        for r in rs["routers"]:
            even = pct(r["expected_moved"], missing="—")
            out.append(f"| {_cell(r['router'])} | {pct(r['keys_moved'])} | "
                       f"{pct(r['traffic_moved'])} | {even} | shard {r['hottest_shard']} "
                       f"({pct(r['max_share'])}) | {r['status']} |")
    growth = plan.get("growth")
    if growth:
        out += ["", f"Growth at {_cell(growth['horizon'])}:", ""]
        out += [f"- {markdown_code(g['router'])} over {g['shards']}: {_cell(g['change'])} (shard "
                f"{g['now']['hottest_shard']} → {g['then']['hottest_shard']}, max share "
                f"{pct(g['now']['max_share'])} → {pct(g['then']['max_share'])})"
                for g in growth["rows"]]
    return out
