"""The live shard view in Locust's web UI: a "Shards" tab (Locust's extended tabs/tables), a page
with a live SVG bar chart per router (`/skew`), the summary as JSON and Prometheus metrics."""

from __future__ import annotations

import json
from typing import Any, Callable

from locust import events

from skewcheck.locust.run import active, current
from skewcheck.metrics import Snapshot, exposition

TAB_KEY = "shards"
TAB_ROWS_LIMIT = 500  # the tab is a table; more rows make Locust's UI slow
TABLE = [
    {"key": "router", "title": "Router"},
    {"key": "shard", "title": "Shard"},
    {"key": "requests", "title": "Requests"},
    {"key": "share", "title": "Share (95% interval)"},
    {"key": "qps", "title": "QPS (window)"},
]


def shard_rows(summary: Any, limit: int = TAB_ROWS_LIMIT) -> list[dict[str, Any]]:
    """Rows of the Shards tab: each router's shards, hottest first."""
    rows: list[dict[str, Any]] = []
    per_router = max(1, limit // max(1, len(summary.routers)))
    for name, rs in summary.routers.items():
        tag = f"{name} (primary)" if name == summary.primary else name
        for s in rs.hottest(per_router):
            rows.append({
                "router": tag,
                "shard": s,
                "requests": int(rs.counts[s]),
                "share": f"{rs.shares[s] * 100:.1f}% ({rs.share_low[s] * 100:.1f}–{rs.share_high[s] * 100:.1f}%)",
                "qps": round(float(rs.window_qps[s]), 1),
            })
    return rows


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    run = active()
    if run is not None and environment.web_ui is not None and run.role != "worker":
        install(environment.web_ui, current)


def install(web_ui: Any, current: Callable[[], Any]) -> None:
    """Add the Shards tab and the /skew routes to Locust's Flask app."""
    from flask import Response, request

    app = web_ui.app
    auth = getattr(web_ui, "auth_required_if_enabled", lambda f: f)
    web_ui.template_args["extended_tabs"] = [
        *web_ui.template_args.get("extended_tabs", []), {"title": "Shards", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        *web_ui.template_args.get("extended_tables", []), {"key": TAB_KEY, "structure": TABLE}]

    @app.after_request
    def _extend_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        try:
            summary, _ = current().snapshot()
            body = response.get_json()
            extended = [e for e in body.get("extended_stats", []) if e.get("key") != TAB_KEY]
            body["extended_stats"] = [*extended, {"key": TAB_KEY, "data": shard_rows(summary)}]
            response.set_data(json.dumps(body))
        except Exception:  # the live view must never break Locust's own stats endpoint
            pass
        return response

    @app.route("/skew/summary.json")
    @auth
    def _summary() -> Any:
        summary, judgement = current().snapshot()
        limit = current().scenario.gate.max_shard_share
        routers = {
            name: {"counts": rs.counts.tolist(), "window_qps": [round(float(q), 2) for q in rs.window_qps],
                   "max_share": rs.max_share, "hottest_shard": rs.hottest_shard,
                   "stddev_ratio": rs.stddev_ratio, "stddev_ratio_floor": rs.floor}
            for name, rs in summary.routers.items()
        }
        body = {"requests": summary.requests, "primary": summary.primary, "shards": summary.shards,
                "limit": limit, "routers": routers, "verdict": judgement.verdict.to_json(),
                "diagnosis": judgement.diagnosis.message,
                "top_keys": [[str(k), c] for k, c in summary.top_keys]}
        return Response(json.dumps(body), mimetype="application/json")

    @app.route("/skew/metrics")
    @auth
    def _metrics() -> Any:
        def snap() -> Snapshot:
            run = current()
            summary, judgement = run.snapshot()
            return Snapshot(summary, judgement.verdict, probe_goroutines=run.probe_goroutines)

        limit = current().scenario.metrics.shard_series_limit
        return Response(exposition(snap, limit), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.route("/skew")
    @app.route("/skew/")
    @auth
    def _page() -> Any:
        return Response(LIVE_PAGE, mimetype="text/html")


# One self-contained page: no external assets; values from data are inserted as text, never as HTML.
LIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>skewcheck — live shards</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}
svg{background:#f6f8fa;border:1px solid #d0d7de;margin:.3em 0}
.status{font-weight:bold;padding:.1em .5em;border-radius:4px;color:#fff}
.pass{background:#1a7f37}.block{background:#cf222e}.inconclusive{background:#9a6700}
</style></head><body>
<h1>skewcheck — live shards <span id="verdict" class="status"></span></h1>
<p id="headline">waiting for data…</p>
<div id="charts"></div>
<script>
const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function chart(name, r, limit, primary) {
  const W = 900, H = 220, L = 48, PW = W - 60, PH = H - 48;
  const total = r.counts.reduce((a, b) => a + b, 0) || 1;
  const shares = r.counts.map(c => c / total);
  const top = Math.max(Math.max(...shares), limit) * 1.15 || 1;
  const y = v => 10 + PH * (1 - v / top);
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, "data-router": name});
  svg.appendChild(el("title", {}, name));
  const bw = PW / shares.length;
  shares.forEach((s, i) => {
    const h = PH * s / top;
    const bar = el("rect", {class: "bar", "data-shard": i, "data-share": s.toFixed(6),
      x: (L + i * bw).toFixed(2), y: (10 + PH - h).toFixed(2), width: Math.max(bw - (bw > 3 ? 1 : 0), 0.5).toFixed(2),
      height: h.toFixed(2), fill: s > limit ? "#cf222e" : "#0969da"});
    bar.appendChild(el("title", {}, `shard ${i}: ${(s * 100).toFixed(1)}% (${r.counts[i]}), ${r.window_qps[i]} QPS`));
    svg.appendChild(bar);
  });
  svg.appendChild(el("line", {class: "limit", x1: L, x2: L + PW, y1: y(limit), y2: y(limit),
    stroke: "#cf222e", "stroke-dasharray": "6 4"}));
  svg.appendChild(el("text", {x: L + PW, y: y(limit) - 4, "font-size": 11, "text-anchor": "end", fill: "#cf222e"},
    `limit ${(limit * 100).toFixed(0)}%`));
  svg.appendChild(el("text", {x: L - 4, y: y(top) + 10, "font-size": 10, "text-anchor": "end"}, `${(top * 100).toFixed(0)}%`));
  const box = document.createElement("section");
  const h = document.createElement("h3");
  h.textContent = `${name}${name === primary ? " (primary)" : ""}: max share ${(r.max_share * 100).toFixed(1)}% on shard ${r.hottest_shard}; stddev ratio ${r.stddev_ratio.toFixed(3)} vs floor ${r.stddev_ratio_floor.toFixed(3)}`;
  box.appendChild(h);
  box.appendChild(svg);
  return box;
}
async function refresh() {
  try {
    const res = await fetch(location.pathname.replace(/\/?$/, "/") + "summary.json", {cache: "no-store"});
    const d = await res.json();
    const v = document.getElementById("verdict");
    v.textContent = d.verdict.status.toUpperCase();
    v.className = "status " + d.verdict.status;
    document.getElementById("headline").textContent =
      `${d.requests} requests over ${d.shards} shards. ${d.diagnosis}`;
    const charts = document.getElementById("charts");
    charts.replaceChildren(...Object.entries(d.routers).map(([n, r]) => chart(n, r, d.limit, d.primary)));
  } catch (e) {
    document.getElementById("headline").textContent = "no data yet (" + e + ")";
  }
}
refresh();
setInterval(refresh, 2000);
</script></body></html>
"""
