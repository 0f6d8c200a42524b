"""Markdown for pull requests and `$GITHUB_STEP_SUMMARY`."""

from __future__ import annotations

from typing import Any

from skewcheck.report import findings
from skewcheck.report import latency as latency_table
from skewcheck.report.keys import keys_line

ICON = {"pass": "✅", "block": "❌", "inconclusive": "⚠️"}


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(doc: dict[str, Any]) -> str:
    s, v = doc["summary"], doc["verdict"]
    out = [
        f"## skewcheck: {ICON[v['status']]} {v['status'].upper()} (exit {v['exit_code']})",
        "",
        f"{s['requests']:,} requests over {s['shards']} shards; primary router `{s['primary']}`.",
        "",
        "| rule | router | status | detail |",
        "|---|---|---|---|",
    ]
    out += [f"| {c['rule']} | {c.get('router') or ''} | {ICON[c['status']]} {c['status']} | {_cell(c['message'])} |"
            for c in v["checks"]]
    out += ["", "| router | hottest shard | max share (95% CI) | stddev ratio | floor | excess |",
            "|---|---|---|---|---|---|"]
    for name, rs in s["routers"].items():
        rb = doc["balance"][name]
        lo, hi = rb["max_share_interval"]
        excess = "?" if rb["stddev_excess"] is None else f"{rb['stddev_excess']:.3f}"
        floor = "?" if rs["stddev_ratio_floor"] is None else f"{rs['stddev_ratio_floor']:.3f}"
        out.append(f"| `{name}` | {rs['hottest_shard']} | {_pct(rs['max_share'])} ({_pct(lo)}–{_pct(hi)}) | "
                   f"{rs['stddev_ratio']:.3f} | {floor} | {excess} |")
    diag = doc.get("diagnosis") or {}
    if diag:
        out += ["", f"**Diagnosis:** {_cell(diag['message'])}"]
        if diag.get("fix"):
            out.append(f"**Fix:** {_cell(diag['fix'])}")
    if doc.get("latency"):
        out += ["", latency_table.markdown(doc["latency"])]
    if s.get("keys"):
        out += ["", "Keys: " + keys_line(s, lambda k: f"`{_cell(k)}`")]
    elif s.get("top_keys"):
        out += ["", "Hottest keys: " + ", ".join(f"`{_cell(t['key'])}` ({_pct(t['share'])})" for t in s["top_keys"][:5])]
    for c in v["checks"]:
        for f in findings.of(c):
            out += ["", f"<details><summary>{_cell(c['rule'])}: {_cell(findings.title(f))}</summary>", "",
                    "```", findings.stack(f), "```", "", f"Fix: {_cell(f.get('fix', ''))}", "</details>"]
    plan = doc.get("plan")
    if plan:
        out += ["", "### Capacity plan", "",
                "| router | shards | hottest | max share (95% CI) | saturates at (QPS) | headroom | verdict |",
                "|---|---|---|---|---|---|---|"]
        for r in plan["rows"]:
            lo, hi = r["max_share_interval"]
            out.append(f"| `{r['router']}` | {r['shards']} | {r['hottest_shard']} | {_pct(r['max_share'])} "
                       f"({_pct(lo)}–{_pct(hi)}) | {r['saturation_qps']:,.0f} | {_pct(r['headroom'])} | {r['status']} |")
        if plan.get("safest"):
            out += ["", f"Safest: `{plan['safest']['router']}` over {plan['safest']['shards']} shards."]
    return "\n".join(out) + "\n"
