"""One self-contained HTML file: SVG bar charts of per-shard share per router, the limit line,
the verdict and the hottest keys. No external assets; every value from data is escaped."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from skewcheck.report import findings, heatmap
from skewcheck.report import latency as latency_table
from skewcheck.report.keys import keys_line

COLOR = {"pass": "#1a7f37", "block": "#cf222e", "inconclusive": "#9a6700"}
CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
.status{font-weight:bold;padding:.2em .6em;color:#fff;border-radius:4px}
svg{background:#f6f8fa;border:1px solid #d0d7de;margin:.5em 0}
pre{background:#f6f8fa;padding:.5em;overflow:auto}"""


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def share_chart(title: str, counts: Sequence[int], limit: float, width: int = 900, height: int = 240) -> str:
    """SVG bars of each shard's share, with the limit as a dashed line."""
    total = sum(counts) or 1
    shares = [c / total for c in counts]
    k = max(len(shares), 1)
    top = max(max(shares, default=0.0), limit) * 1.15 or 1.0
    left, plot_w, plot_h = 48, width - 60, height - 50
    bar_w = plot_w / k
    y = lambda v: 10 + plot_h * (1 - v / top)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" data-router="{escape(title)}"><title>{escape(title)}</title>']
    for tick in (0.0, top / 2, top):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{_pct(tick)}</text>')
    hottest = max(range(len(shares)), key=shares.__getitem__) if shares else -1
    for i, s in enumerate(shares):
        color = "#cf222e" if s > limit else ("#bf8700" if i == hottest else "#0969da")
        h = plot_h * s / top
        parts.append(f'<rect class="bar" data-shard="{i}" data-share="{s:.6f}" x="{left + i * bar_w:.2f}" '
                     f'y="{10 + plot_h - h:.2f}" width="{max(bar_w - (1 if bar_w > 3 else 0), 0.5):.2f}" '
                     f'height="{h:.2f}" fill="{color}"><title>shard {i}: {_pct(s)} ({counts[i]:,})</title></rect>')
    ly = y(limit)
    parts.append(f'<line class="limit" x1="{left}" x2="{left + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}" '
                 f'stroke="#cf222e" stroke-dasharray="6 4"/>')
    parts.append(f'<text x="{left + plot_w}" y="{ly - 4:.1f}" font-size="11" text-anchor="end" '
                 f'fill="#cf222e">limit {_pct(limit)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
                 f'shard (0–{k - 1})</text></svg>')
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    s, v = doc["summary"], doc["verdict"]
    limit = next((c["limit"] for c in v["checks"] if c["rule"] == "max_shard_share" and c.get("limit")), 0.15)
    status = v["status"]
    body = [
        f"<h1>skewcheck {escape(str(doc.get('kind', 'run')))}: "
        f'<span class="status" id="verdict" style="background:{COLOR[status]}">{escape(status.upper())}</span></h1>',
        f"<p>{s['requests']:,} requests over {s['shards']} shards; primary router "
        f"<code>{escape(s['primary'])}</code>; exit code {v['exit_code']}.</p>",
        "<h2>Checks</h2><table><tr><th>rule</th><th>router</th><th>status</th><th>detail</th></tr>",
    ]
    for c in v["checks"]:
        body.append(f"<tr><td>{escape(c['rule'])}</td><td>{escape(c.get('router') or '')}</td>"
                    f'<td style="color:{COLOR[c["status"]]}">{escape(c["status"])}</td><td>{escape(c["message"])}</td></tr>')
    body.append("</table>")
    diag = doc.get("diagnosis") or {}
    if diag:
        body.append(f"<p><b>Diagnosis:</b> {escape(diag['message'])}</p>")
        if diag.get("fix"):
            body.append(f"<p><b>Fix:</b> {escape(diag['fix'])}</p>")
    body.append("<h2>Per-shard share</h2>")
    for name, rc in doc["routers"].items():
        rs = s["routers"][name]
        lo, hi = doc["balance"][name]["max_share_interval"]
        body.append(f"<h3>{escape(name)}{' (primary)' if name == s['primary'] else ''}</h3>"
                    f"<p>max share {_pct(rs['max_share'])} ({_pct(lo)}–{_pct(hi)}) on shard {rs['hottest_shard']}; "
                    f"stddev ratio {rs['stddev_ratio']:.3f} vs floor {rs['stddev_ratio_floor'] or 0:.3f}</p>")
        body.append(share_chart(name, rc["counts"], limit))
    obs = doc.get("observed")
    if obs and obs.get("requests"):
        body.append("<h3>observed (X-Shard)</h3>" + share_chart("observed", obs["counts"], limit))
    if doc.get("heatmap"):
        body.append(f'<h2>Hot shards over time</h2><p>{escape(heatmap.caption(doc["heatmap"]))}</p>'
                    + heatmap.svg(doc["heatmap"], limit))
    if doc.get("latency"):
        body.append(latency_table.html(doc["latency"]))
    if s.get("keys"):
        body.append(f'<h2>Keys</h2><p id="keys">{escape(keys_line(s, str))}</p>')
    elif s.get("top_keys"):
        body.append(f"<h2>Hottest keys</h2><p>Misra–Gries summary; each count may be low by up to "
                    f"{s['top_keys_error']:,}.</p><table><tr><th>key</th><th>requests</th><th>share</th></tr>")
        body += [f"<tr><td><code>{escape(str(t['key']))}</code></td><td>{t['requests']:,}</td>"
                 f"<td>{_pct(t['share'])}</td></tr>" for t in s["top_keys"]]
        body.append("</table>")
    for c in v["checks"]:
        for f in findings.of(c):
            body.append(f"<h3>{escape(c['rule'])}: {escape(findings.title(f))}</h3>"
                        f"<pre>{escape(findings.stack(f))}</pre><p>Fix: {escape(str(f.get('fix', '')))}</p>")
    plan = doc.get("plan")
    if plan:
        body.append("<h2>Capacity plan</h2><table><tr><th>router</th><th>shards</th><th>hottest</th>"
                    "<th>max share (95% CI)</th><th>saturates at (QPS)</th><th>headroom</th><th>verdict</th></tr>")
        for r in plan["rows"]:
            lo, hi = r["max_share_interval"]
            body.append(f"<tr><td>{escape(r['router'])}</td><td>{r['shards']}</td><td>{r['hottest_shard']}</td>"
                        f"<td>{_pct(r['max_share'])} ({_pct(lo)}–{_pct(hi)})</td><td>{r['saturation_qps']:,.0f}</td>"
                        f"<td>{_pct(r['headroom'])}</td><td>{escape(r['status'])}</td></tr>")
        body.append("</table>")
        if plan.get("safest"):
            body.append(f"<p>Safest: <b>{escape(plan['safest']['router'])}</b> over {plan['safest']['shards']} shards.</p>")
    title = f"skewcheck {escape(status)}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
