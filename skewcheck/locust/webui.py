"""The live shard view in Locust's web UI: a "Shards" tab (Locust's extended tabs/tables) with the
verdict badge and a link to the live page, the live page itself (`/skew`: a bar chart per router and
for the observed shards, the shard × time heatmap, the per-shard latency), the summary as JSON and
Prometheus metrics. The start form's --skew-* fields are checked before Locust starts a test."""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from locust import events

from skewcheck.errors import SkewcheckError
from skewcheck.latency import ms
from skewcheck.locust.options import scenario_from_options
from skewcheck.locust.run import active, current
from skewcheck.metrics import Snapshot, exposition
from skewcheck.report import heatmap
from skewcheck.timeline import heatmap_json

TAB_KEY = "shards"
TAB_ROWS_LIMIT = 500  # the tab is a table; more rows make Locust's UI slow
WHAT_IF_ROWS = 10  # per what-if router: its hottest shards, beside the primary's full list
TABLE = [
    {"key": "router", "title": "Router"},
    {"key": "shard", "title": "Shard"},
    {"key": "requests", "title": "Requests"},
    {"key": "share", "title": "Share (95% interval)"},
    {"key": "qps", "title": "QPS (window)"},
    {"key": "p50", "title": "p50"},
    {"key": "p99", "title": "p99"},
    {"key": "failed", "title": "Failed"},
]


def shard_rows(summary: Any, limit: int = TAB_ROWS_LIMIT) -> list[dict[str, Any]]:
    """Rows of the Shards tab: the primary router's shards hottest first, with the latency and
    failures measured where the requests went; then each what-if router's hottest shards."""
    rows: list[dict[str, Any]] = []
    lat = summary.latency
    for name, rs in summary.routers.items():
        primary = name == summary.primary
        tag = f"{name} (primary)" if primary else f"{name} (what-if)"
        for s in rs.hottest(limit if primary else WHAT_IF_ROWS):
            row = {
                "router": tag,
                "shard": s,
                "requests": int(rs.counts[s]),
                "share": f"{rs.shares[s] * 100:.1f}% ({rs.share_low[s] * 100:.1f}–{rs.share_high[s] * 100:.1f}%)",
                "qps": round(float(rs.window_qps[s]), 1),
                "p50": "", "p99": "", "failed": "",
            }
            if primary and lat is not None and lat.requests[s]:
                row.update(p50=ms(lat.p50[s]), p99=ms(lat.p99[s]), failed=f"{lat.failure_rate[s] * 100:.1f}%")
            elif primary and summary.failures is not None and summary.failures[s]:
                row["failed"] = f"{int(summary.failures[s]):,}"
            rows.append(row)
    return rows


def live_summary(run: Any) -> dict[str, Any]:
    """What /skew/summary.json serves: counts, verdict and the latency and heatmap sections."""
    summary, judgement = run.snapshot()
    routers = {
        name: {"counts": rs.counts.tolist(), "window_qps": [round(float(q), 2) for q in rs.window_qps],
               "max_share": rs.max_share, "hottest_shard": rs.hottest_shard,
               "stddev_ratio": rs.stddev_ratio, "stddev_ratio_floor": rs.floor}
        for name, rs in summary.routers.items()
    }
    obs = summary.observed
    return {"requests": summary.requests, "primary": summary.primary, "shards": summary.shards,
            "limit": run.scenario.gate.max_shard_share, "routers": routers,
            "observed": None if obs is None else {"counts": obs.counts.tolist(), "max_share": obs.max_share,
                                                 "hottest_shard": obs.hottest_shard,
                                                 "requests": summary.observed_requests,
                                                 "mismatches": summary.observed_mismatches},
            "verdict": judgement.verdict.to_json(), "diagnosis": judgement.diagnosis.message,
            "latency": None if summary.latency is None else summary.latency.to_json(),
            "heatmap": None if summary.timeline is None else heatmap_json(summary.timeline, summary.primary),
            "top_keys": [[str(k), c] for k, c in summary.top_keys]}


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    run = active()
    if run is not None and environment.web_ui is not None and run.role != "worker":
        install(environment.web_ui, current)


def form_problem(options: Any, form: Any) -> str | None:
    """Why the start form's --skew-* values can't run (None when they can), checked before Locust
    takes them into its parsed options."""
    trial = copy.copy(options)
    for key, value in form.items():
        if key.startswith("skew_"):
            setattr(trial, key, value)
    try:
        scenario_from_options(trial)
    except SkewcheckError as exc:
        return f"skewcheck: {exc}"
    return None


def install(web_ui: Any, current: Callable[[], Any]) -> None:
    """Add the Shards tab, the form check and the /skew routes to Locust's Flask app."""
    from flask import Response, jsonify, request

    app = web_ui.app
    auth = getattr(web_ui, "auth_required_if_enabled", lambda f: f)
    web_ui.template_args["extended_tabs"] = [
        *web_ui.template_args.get("extended_tabs", []), {"title": "Shards", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        *web_ui.template_args.get("extended_tables", []), {"key": TAB_KEY, "structure": TABLE}]

    @app.before_request
    def _check_form() -> Any:
        if request.method != "POST" or not request.path.endswith("/swarm"):
            return None
        problem = form_problem(web_ui.environment.parsed_options, request.form)
        if problem is None:
            return None
        return jsonify({"success": False, "message": problem, "host": web_ui.environment.host})

    @app.after_request
    def _extend(response: Any) -> Any:
        try:
            if request.path.endswith("/stats/requests") and response.status_code == 200:
                summary, _ = current().snapshot()
                body = response.get_json()
                extended = [e for e in body.get("extended_stats", []) if e.get("key") != TAB_KEY]
                body["extended_stats"] = [*extended, {"key": TAB_KEY, "data": shard_rows(summary)}]
                response.set_data(json.dumps(body))
            elif request.endpoint == "locust.index" and response.status_code == 200:
                html = response.get_data(as_text=True)
                if "</body>" in html and TAB_SCRIPT_TAG not in html:
                    response.set_data(html.replace("</body>", TAB_SCRIPT_TAG + "</body>", 1))
        except Exception:  # the live view must never break Locust's own pages
            pass
        return response

    @app.route("/skew/tab.js")
    def _tab_script() -> Any:
        return Response(TAB_SCRIPT, mimetype="text/javascript")

    @app.route("/skew/summary.json")
    @auth
    def _summary() -> Any:
        return Response(json.dumps(live_summary(current()), default=float), mimetype="application/json")

    @app.route("/skew/heatmap.svg")
    @auth
    def _heatmap() -> Any:
        run = current()
        summary, _ = run.snapshot()
        section = None if summary.timeline is None else heatmap_json(summary.timeline, summary.primary)
        if section is None:
            return Response("no requests counted yet", status=404, mimetype="text/plain")
        return Response(heatmap.svg(section, run.scenario.gate.max_shard_share), mimetype="image/svg+xml")

    @app.route("/skew/metrics")
    @auth
    def _metrics() -> Any:
        def snap() -> Snapshot:
            run = current()
            summary, judgement = run.snapshot()
            return Snapshot(summary, judgement.verdict, probe_goroutines=run.probe_goroutines)

        metrics = current().scenario.metrics
        return Response(exposition(snap, metrics.shard_series_limit, metrics.latency_series_limit),
                        mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.route("/skew")
    @app.route("/skew/")
    @auth
    def _page() -> Any:
        return Response(LIVE_PAGE, mimetype="text/html")


TAB_SCRIPT_TAG = '<script src="skew/tab.js" defer></script>'

# Above the Shards tab's table: the live verdict as a badge, the diagnosis and a link to /skew.
# Text from the summary is set with textContent, never as HTML.
TAB_SCRIPT = """(() => {
  const COLORS = {pass: "#1a7f37", block: "#cf222e", inconclusive: "#9a6700"};
  const base = location.pathname.replace(/\\/?$/, "/");
  function header() {
    let box = document.getElementById("skew-tab-header");
    const table = document.querySelector("table");
    if (!new URLSearchParams(location.search).has("tab") || !table ||
        new URLSearchParams(location.search).get("tab") !== "shards") {
      if (box) box.remove();
      return null;
    }
    const anchor = table.closest(".MuiTableContainer-root") || table;
    if (!box) {
      box = document.createElement("div");
      box.id = "skew-tab-header";
      box.style.cssText = "display:flex;gap:1em;align-items:center;margin:.5em 0 1em;font:14px system-ui,sans-serif";
      const badge = document.createElement("span");
      badge.id = "skew-verdict";
      badge.style.cssText = "font-weight:bold;padding:.2em .6em;border-radius:4px;color:#fff;background:#6e7781";
      badge.textContent = "…";
      const text = document.createElement("span");
      text.id = "skew-diagnosis";
      const link = document.createElement("a");
      link.id = "skew-live-link";
      link.href = base + "skew";
      link.target = "_blank";
      link.textContent = "live page: charts, heatmap, latency →";
      box.append(badge, text, link);
    }
    if (!box.isConnected || box.nextElementSibling !== anchor) anchor.parentNode.insertBefore(box, anchor);
    return box;
  }
  async function refresh() {
    const box = header();
    if (!box) return;
    try {
      const d = await (await fetch(base + "skew/summary.json", {cache: "no-store"})).json();
      const badge = document.getElementById("skew-verdict");
      badge.textContent = d.verdict.status.toUpperCase();
      badge.dataset.status = d.verdict.status;
      badge.style.background = COLORS[d.verdict.status] || "#6e7781";
      document.getElementById("skew-diagnosis").textContent = `${d.requests} requests over ${d.shards} shards. ${d.diagnosis}`;
    } catch (e) { /* the next refresh tries again */ }
  }
  setInterval(refresh, 1000);  // also puts the header back when Locust re-renders the tab
  refresh();
})();
"""


# One self-contained page: no external assets; values from data are inserted as text, never as
# HTML (the heatmap is the server's SVG: numbers only, each escaped there).
LIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>skewcheck — live shards</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1f2328}
svg{background:#f6f8fa;border:1px solid #d0d7de;margin:.3em 0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.2em .6em;text-align:right}
.status{font-weight:bold;padding:.1em .5em;border-radius:4px;color:#fff}
.pass{background:#1a7f37}.block{background:#cf222e}.inconclusive{background:#9a6700}
</style></head><body>
<h1>skewcheck — live shards <span id="verdict" class="status"></span></h1>
<p id="headline">waiting for data…</p>
<div id="charts"></div>
<h2>Observed shards (X-Shard)</h2><div id="observed"><p>the target does not answer X-Shard</p></div>
<h2>Hot shards over time</h2><div id="heatmap"><p>no requests counted yet</p></div>
<h2>Latency by shard</h2><div id="latency"><p>no timed requests yet</p></div>
<script>
const NS = "http://www.w3.org/2000/svg";
const base = location.pathname.replace(/\\/?$/, "/");
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function html(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
function pct(x) { return (x * 100).toFixed(1) + "%"; }
function ms(x) {
  if (x === null || x === undefined) return "?";
  if (x >= 1000) return (x / 1000).toPrecision(3) + " s";
  return (x < 100 ? x.toPrecision(3) : x.toFixed(0)) + " ms";
}
function chart(name, counts, limit, qps) {
  const W = 900, H = 240, L = 48, PW = W - 60, PH = H - 64;
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  const shares = counts.map(c => c / total);
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
    bar.appendChild(el("title", {}, `shard ${i}: ${pct(s)} (${counts[i]})` + (qps ? `, ${qps[i]} QPS` : "")));
    svg.appendChild(bar);
  });
  const step = Math.max(1, Math.ceil(shares.length / 20));  // at most ~20 labels under the bars
  for (let i = 0; i < shares.length; i += step) {
    svg.appendChild(el("text", {class: "shard-label", x: (L + (i + 0.5) * bw).toFixed(1), y: 10 + PH + 14,
      "font-size": 10, "text-anchor": "middle"}, String(i)));
  }
  svg.appendChild(el("text", {x: L + PW / 2, y: H - 6, "font-size": 11, "text-anchor": "middle"},
    `shard (0–${shares.length - 1})`));
  svg.appendChild(el("line", {class: "limit", x1: L, x2: L + PW, y1: y(limit), y2: y(limit),
    stroke: "#cf222e", "stroke-dasharray": "6 4"}));
  svg.appendChild(el("text", {x: L + PW, y: y(limit) - 4, "font-size": 11, "text-anchor": "end", fill: "#cf222e"},
    `limit ${(limit * 100).toFixed(0)}%`));
  for (const v of [0, top / 2, top]) {
    svg.appendChild(el("text", {x: L - 4, y: y(v) + 4, "font-size": 10, "text-anchor": "end"}, `${(v * 100).toFixed(0)}%`));
  }
  return svg;
}
function section(title, svg) {
  const box = document.createElement("section");
  box.appendChild(html("h3", title));
  box.appendChild(svg);
  return box;
}
function latencyTable(lat) {
  const table = html("table");
  table.id = "latency-table";
  const head = html("tr");
  for (const h of ["shard", "requests", "share", "p50", "p95", "p99", "failed"]) head.appendChild(html("th", h));
  table.appendChild(head);
  const add = cells => { const tr = html("tr"); cells.forEach(c => tr.appendChild(html("td", c))); table.appendChild(tr); };
  for (const r of lat.shards) add([String(r.shard), String(r.requests), pct(r.share), ms(r.p50), ms(r.p95), ms(r.p99), pct(r.failure_rate)]);
  const m = lat.median;
  if (m) add([`median of ${m.shards} other`, "", "", ms(m.p50), ms(m.p95), ms(m.p99), pct(m.failure_rate)]);
  else {
    const tr = html("tr"), cell = html("td", "no other shard served enough requests to compare with");
    cell.colSpan = 6;
    tr.append(html("td", "median"), cell);
    table.appendChild(tr);
  }
  const box = document.createElement("div");
  box.appendChild(html("p", `DDSketch: each quantile within ±${lat.relative_error * 100}%; the median over shards with at least ${lat.min_samples} timed requests.`));
  box.appendChild(table);
  return box;
}
async function heatmap() {
  const res = await fetch(base + "heatmap.svg", {cache: "no-store"});
  if (!res.ok) return;
  const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName === "svg") document.getElementById("heatmap").replaceChildren(document.importNode(svg, true));
}
async function refresh() {
  try {
    const res = await fetch(base + "summary.json", {cache: "no-store"});
    const d = await res.json();
    const v = document.getElementById("verdict");
    v.textContent = d.verdict.status.toUpperCase();
    v.className = "status " + d.verdict.status;
    document.getElementById("headline").textContent = `${d.requests} requests over ${d.shards} shards. ${d.diagnosis}`;
    const charts = document.getElementById("charts");
    charts.replaceChildren(...Object.entries(d.routers).map(([n, r]) => section(
      `${n}${n === d.primary ? " (primary)" : " (what-if)"}: max share ${pct(r.max_share)} on shard ${r.hottest_shard}; stddev ratio ${r.stddev_ratio.toFixed(3)} vs floor ${r.stddev_ratio_floor.toFixed(3)}`,
      chart(n, r.counts, d.limit, r.window_qps))));
    if (d.observed) document.getElementById("observed").replaceChildren(section(
      `observed: ${d.observed.requests} requests reported their shard, ${d.observed.mismatches} disagreed with ${d.primary}; max share ${pct(d.observed.max_share)} on shard ${d.observed.hottest_shard}`,
      chart("observed", d.observed.counts, d.limit, null)));
    if (d.latency) document.getElementById("latency").replaceChildren(latencyTable(d.latency));
    await heatmap();
  } catch (e) {
    document.getElementById("headline").textContent = "no data yet (" + e + ")";
  }
}
refresh();
setInterval(refresh, 2000);
</script></body></html>
"""
