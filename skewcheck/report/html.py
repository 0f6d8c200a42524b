"""One self-contained HTML file: SVG bar charts of per-shard share per router, the limit line,
the verdict and the hottest keys. No external assets; every value from data is escaped."""

from __future__ import annotations

import html
from typing import Any, Sequence

from skewcheck.report import findings, heatmap, saturation
from skewcheck.report import latency as latency_table
from skewcheck.report.escape import html_text as escape
from skewcheck.report.figures import busy, finding_note, pct, qps
from skewcheck.report.keys import keys_line

COLOR = {"pass": "#1a7f37", "block": "#cf222e", "inconclusive": "#9a6700"}
CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
.status{font-weight:bold;padding:.2em .6em;color:#fff;border-radius:4px}
svg{background:#f6f8fa;border:1px solid #d0d7de;margin:.5em 0}
pre{background:#f6f8fa;padding:.5em;overflow:auto}"""




MAX_BARS = 1024  # shards drawn one bar each; past it the hottest, and a histogram of all
HISTOGRAM_BINS = 40


def share_chart(title: str, counts: Sequence[int], limit: float, width: int = 900, height: int = 240) -> str:
    """SVG bars of each shard's share, with the limit as a dashed line. With more than MAX_BARS
    shards, the hottest MAX_BARS in descending order (each labelled with its shard) and a
    histogram of every shard's share, so a report stays a few MB at any shard count."""
    total = sum(counts) or 1
    k = len(counts)
    if k <= MAX_BARS:
        shown = list(range(k))
    else:
        order = sorted(range(k), key=lambda i: (-counts[i], i))
        shown = order[:MAX_BARS]
    shares = [counts[i] / total for i in shown]
    top = max(max(shares, default=0.0), limit) * 1.15 or 1.0
    left, plot_w, plot_h = 48, width - 60, height - 50
    bar_w = plot_w / max(len(shown), 1)
    y = lambda v: 10 + plot_h * (1 - v / top)  # noqa: E731
    name = escape(title)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" data-router="{name}"><title>{name}</title>']
    for tick in (0.0, top / 2, top):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{pct(tick)}</text>')
    hottest = max(range(len(shares)), key=shares.__getitem__) if shares else -1
    for pos, (shard, share) in enumerate(zip(shown, shares)):
        color = "#cf222e" if share > limit else ("#bf8700" if pos == hottest else "#0969da")
        h = plot_h * share / top
        parts.append(f'<rect class="bar" data-shard="{shard}" data-share="{share:.6f}" x="{left + pos * bar_w:.2f}" '
                     f'y="{10 + plot_h - h:.2f}" width="{max(bar_w - (1 if bar_w > 3 else 0), 0.5):.2f}" '
                     f'height="{h:.2f}" fill="{color}"><title>shard {shard}: {pct(share)} '
                     f'({counts[shard]:,})</title></rect>')
    ly = y(limit)
    parts.append(f'<line class="limit" x1="{left}" x2="{left + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}" '
                 f'stroke="#cf222e" stroke-dasharray="6 4"/>')
    parts.append(f'<text x="{left + plot_w}" y="{ly - 4:.1f}" font-size="11" text-anchor="end" '
                 f'fill="#cf222e">limit {pct(limit)}</text>')
    axis = f"shard (0–{k - 1})" if k <= MAX_BARS else f"the hottest {MAX_BARS:,} of {k:,} shards, hottest first"
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
                 f'{axis}</text></svg>')
    if k > MAX_BARS:
        parts.append(_histogram(title, [c / total for c in counts], limit, width))
    return "".join(parts)


def _histogram(title: str, shares: list[float], limit: float, width: int, height: int = 160) -> str:
    """How many shards carry each share (every shard, in HISTOGRAM_BINS bins)."""
    high = max(max(shares, default=0.0), limit) or 1.0
    bins = [0] * HISTOGRAM_BINS
    for share in shares:
        bins[min(int(share / high * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    most = max(bins) or 1
    left, plot_w, plot_h = 48, width - 60, height - 40
    bar_w = plot_w / HISTOGRAM_BINS
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="histogram" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}"><title>{escape(title)}: shards by share</title>']
    for i, n in enumerate(bins):
        h = plot_h * n / most
        parts.append(f'<rect x="{left + i * bar_w:.2f}" y="{10 + plot_h - h:.2f}" width="{max(bar_w - 1, 0.5):.2f}" '
                     f'height="{h:.2f}" fill="#57606a"><title>{n:,} shards at {pct(i * high / HISTOGRAM_BINS)}–'
                     f'{pct((i + 1) * high / HISTOGRAM_BINS)}</title></rect>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
                 f'share of requests (0–{pct(high)}); bar height: number of shards</text></svg>')
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    s, v = doc["summary"], doc["verdict"]
    limit = next(c["limit"] for c in v["checks"] if c["rule"] == "max_shard_share")
    status = v["status"]
    body = [
        f"<h1>skewcheck {escape(str(doc.get('kind', 'run')))}: "
        f'<span class="status" id="verdict" style="background:{COLOR[status]}">{escape(status.upper())}</span></h1>',
        f"<p>{s['requests']:,} requests over {s['shards']} shards; primary router "
        f"<code>{escape(s['primary'])}</code>; exit code {v['exit_code']}.</p>",
        *[f"<p>Routers with parameters: {'; '.join(f'<code>{escape(t)}</code>' for t in labels)}</p>"
          for labels in [[t for n, t in (doc.get("router_labels") or {}).items() if t != n]]
          if labels],
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
                    f"<p>max share {pct(rs['max_share'])} ({pct(lo)}–{pct(hi)}) on shard {rs['hottest_shard']}; "
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
        body += [f"<tr><td><code>{escape(t['key'])}</code></td><td>{t['requests']:,}</td>"
                 f"<td>{pct(t['share'])}</td></tr>" for t in s["top_keys"]]
        body.append("</table>")
    for c in v["checks"]:
        for f in findings.of(c):
            body.append(f"<h3>{escape(c['rule'])}: {escape(findings.title(f))}</h3>"
                        f"<pre>{html.escape(findings.stack(f))}</pre><p>Fix: {escape(f.get('fix', ''))}</p>")
    plan = doc.get("plan")
    if plan:
        body.append(render_plan(plan))
    title = f"skewcheck {escape(status)}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")






def render_plan(plan: dict[str, Any]) -> str:
    """The capacity plan: recommendation, saturation curve, rows, search, resharding, growth."""
    cap = plan["capacity"]
    out = ["<h2>Capacity plan</h2>"]
    if cap["judged"]:
        out.append(f"<p>Target {cap['target_qps']:,.0f} QPS; one shard carries "
                   f"{cap['shard_capacity_qps']:,.0f} QPS; headroom {cap['headroom']:.0%}: a "
                   f"setup must saturate above {cap['needed_qps']:,.0f} QPS.</p>")
    rec = plan.get("recommendation") or {}
    if rec.get("message"):
        out.append(f'<p id="recommendation"><b>Recommendation:</b> {escape(rec["message"])}</p>')
        if rec.get("rejected"):
            out.append("<ul>" + "".join(f"<li>not <code>{escape(r['router'])}</code>: "
                                        f"{escape(r['reason'])}</li>" for r in rec["rejected"])
                       + "</ul>")
    out.append(saturation.chart(plan))
    out.append("<table><tr><th>router</th><th>shards</th><th>role</th><th>first to saturate</th>"
               "<th>at target</th><th>saturates at (QPS)</th><th>verdict</th></tr>")
    for r in plan["rows"]:
        out.append(f"<tr><td>{escape(r['router'])}</td><td>{r['shards']}</td>"
                   f"<td>{escape(', '.join(r['roles']))}</td><td>shard {r['hottest_shard']} "
                   f"({pct(r['hottest_share'])})</td><td>{busy(r.get('utilisation'))}</td>"
                   f"<td>{qps(r.get('saturation_qps'))}</td>"
                   f'<td style="color:{COLOR[r["status"]]}">{escape(r["status"])}</td></tr>')
    out.append("</table>")
    findings_ = (plan.get("search") or {}).get("findings") or {}
    if findings_:
        out.append("<table><tr><th>router</th><th>smallest robust shard count</th>"
                   "<th>note</th></tr>")
        for router, f in findings_.items():
            note = finding_note(f)
            shards = f["shards"] if f["shards"] is not None else "—"
            out.append(f"<tr><td>{escape(router)}</td><td>{shards}</td>"
                       f"<td>{escape(note)}</td></tr>")
        out.append("</table>")
    rs = plan.get("reshard")
    if rs:
        out.append(f'<h3>Resharding {rs["from"]} → {rs["to"]} shards</h3><table class="reshard">'
                   "<tr><th>router</th><th>keys moved</th><th>traffic moved</th>"
                   "<th>evenly spread keys</th><th>hottest after</th><th>verdict</th></tr>")
        for r in rs["routers"]:
            even = pct(r["expected_moved"], missing="—")
            out.append(f"<tr><td>{escape(r['router'])}</td><td>{pct(r['keys_moved'])}</td>"
                       f"<td>{pct(r['traffic_moved'])}</td><td>{even}</td><td>shard "
                       f"{r['hottest_shard']} ({pct(r['max_share'])})</td>"
                       f"<td>{escape(r['status'])}</td></tr>")
        out.append("</table>")
    growth = plan.get("growth")
    if growth:
        out.append(f"<h3>Growth at {escape(growth['horizon'])}</h3><ul>"
                   + "".join(f"<li>{escape(m)}</li>" for m in growth["moved"]) + "</ul><table>"
                   "<tr><th>router</th><th>shards</th><th>hot shard</th><th>max share</th>"
                   "<th>saturates at (QPS)</th></tr>")
        for g in growth["rows"]:
            now, then = g["now"], g["then"]
            out.append(f"<tr><td>{escape(g['router'])}</td><td>{g['shards']}</td>"
                       f"<td>{now['hottest_shard']} → {then['hottest_shard']} "
                       f"({escape(g['change'])})</td><td>{pct(now['max_share'])} → "
                       f"{pct(then['max_share'])}</td><td>{qps(now['saturation_qps'])} → "
                       f"{qps(then['saturation_qps'])}</td></tr>")
        out.append("</table>")
    return "".join(out)
