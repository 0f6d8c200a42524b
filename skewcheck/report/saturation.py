"""The saturation curve as one self-contained SVG: for each router, the total QPS at which its
hottest shard saturates against the shard count, with the target and the headroom line, the
configured count and the recommendation marked. Every text from data is escaped."""

from __future__ import annotations

import math
from html import escape
from typing import Any

PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#6e7781")
LOG_SPAN = 20  # shard counts spanning more than this ratio get a log axis


def _value(qps: float | None, share: float | None) -> float | None:
    """What is plotted: saturation QPS, or without a capacity 1/max share (in shard capacities)."""
    if qps is not None:
        return None if math.isinf(qps) else qps
    return None if not share else 1.0 / share


def _axis(lo: float, hi: float, log: bool, start: float, length: float, flip: bool = False):
    def at(v: float) -> float:
        if log:
            f = (math.log(v) - math.log(lo)) / ((math.log(hi) - math.log(lo)) or 1.0)
        else:
            f = (v - lo) / ((hi - lo) or 1.0)
        return start + (1 - f if flip else f) * length
    return at


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if not log:
        step = 10 ** math.floor(math.log10(max(hi - lo, 1)))
        return [lo + i * step for i in range(int((hi - lo) / step) + 1)][:12]
    out = []
    p = 10 ** math.floor(math.log10(lo))
    while p <= hi * 1.0001:
        for m in (1, 2, 5):
            if lo <= p * m <= hi * 1.0001:
                out.append(p * m)
        p *= 10
    return out


def chart(plan: dict[str, Any], width: int = 900, height: int = 380) -> str:
    curves = plan.get("curves") or {}
    cap = plan["capacity"]
    with_qps = cap.get("shard_capacity_qps") is not None
    series = {}
    for router, c in curves.items():
        pts = [(n, _value(q if with_qps else None, s))
               for n, q, s in zip(c["shards"], c["saturation_qps"], c["max_share"])]
        series[router] = [(n, v) for n, v in pts if v]
    values = [v for pts in series.values() for _, v in pts]
    counts = [n for pts in series.values() for n, _ in pts]
    if not values:
        return ""
    lines = [x for x in (cap.get("target_qps"), cap.get("needed_qps")) if x and with_qps]
    y_lo, y_hi = min(values + lines) / 1.3, max(values + lines) * 1.3
    x_lo, x_hi = min(counts), max(counts)
    x_log = x_hi / max(x_lo, 1) > LOG_SPAN
    left, top, plot_w, plot_h = 70, 14, width - 90, height - 64
    x = _axis(x_lo, x_hi, x_log, left, plot_w)
    y = _axis(y_lo, y_hi, True, top, plot_h, flip=True)
    unit = "total QPS at saturation" if with_qps else "saturation, in one shard's capacity"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="saturation" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
             f"<title>{escape(unit)} against the shard count, per router</title>"]
    for t in _ticks(y_lo, y_hi, True):
        parts.append(f'<text x="{left - 4}" y="{y(t) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{t:,.0f}</text><line x1="{left}" x2="{left + plot_w}" '
                     f'y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#d0d7de" stroke-width="0.5"/>')
    for t in _ticks(x_lo, x_hi, x_log):
        parts.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 14}" font-size="10" '
                     f'text-anchor="middle">{t:,.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 22}" font-size="11" '
                 f'text-anchor="middle">shards{" (log scale)" if x_log else ""}</text>'
                 f'<text x="12" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(unit)}</text>')
    for i, (router, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        low, high = _envelope(pts, x)
        band = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in low + high[::-1])
        line = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in low)
        parts.append(f'<polygon class="band" fill="{color}" fill-opacity="0.15" stroke="none" '
                     f'points="{band}"/><polyline class="curve" data-router="{escape(router)}" '
                     f'fill="none" stroke="{color}" stroke-width="1.4" points="{line}"/>')
        exact = curves[router].get("exact_points") or {}
        for n, q, s in zip(exact.get("shards", []), exact.get("saturation_qps", []),
                           exact.get("max_share", [])):
            v = _value(q if with_qps else None, s)
            if v and x_lo <= n <= x_hi:
                parts.append(f'<circle class="exact" cx="{x(n):.1f}" cy="{y(v):.1f}" r="1.8" '
                             f'fill="{color}"><title>{escape(router)}: {n} shards, exact: '
                             f'{v:,.0f}</title></circle>')
        parts.append(f'<rect x="{left + 10}" y="{top + 8 + 16 * i}" width="12" height="3" '
                     f'fill="{color}"/><text x="{left + 26}" y="{top + 12 + 16 * i}" '
                     f'font-size="11">{escape(router)}</text>')
    for value, label, css in ((cap.get("target_qps"), "target", "target"),
                              (cap.get("needed_qps"), "target + headroom", "needed")):
        if value and with_qps:
            parts.append(f'<line class="{css}" x1="{left}" x2="{left + plot_w}" '
                         f'y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#cf222e" '
                         f'stroke-dasharray="{"6 4" if css == "needed" else "2 3"}"/>'
                         f'<text x="{left + plot_w - 4}" y="{y(value) - 4:.1f}" font-size="11" '
                         f'text-anchor="end" fill="#cf222e" stroke="#fff" stroke-width="3" '
                         f'paint-order="stroke">{escape(label)} {value:,.0f} QPS</text>')
    configured = plan.get("configured_shards")
    if configured and x_lo <= configured <= x_hi:
        parts.append(f'<line class="configured" x1="{x(configured):.1f}" x2="{x(configured):.1f}" '
                     f'y1="{top}" y2="{top + plot_h}" stroke="#6e7781" stroke-dasharray="1 3"/>'
                     f'<text x="{x(configured) + 3:.1f}" y="{top + 10}" font-size="10" '
                     f'fill="#6e7781">configured: {configured}</text>')
    rec = plan.get("recommendation") or {}
    if rec.get("router") in curves and rec.get("shards"):
        found = dict(series[rec["router"]]).get(rec["shards"])
        value = _value(rec.get("saturation_qps"), None) if with_qps else found
        if value and x_lo <= rec["shards"] <= x_hi:
            parts.append(f'<circle class="recommended" cx="{x(rec["shards"]):.1f}" '
                         f'cy="{y(value):.1f}" r="5" fill="none" stroke="#1f2328" '
                         f'stroke-width="1.5"><title>recommended: {escape(rec["router"])} over '
                         f'{rec["shards"]} shards</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _envelope(points: list[tuple[int, float]], x: Any
              ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Per pixel column, the count that saturates first and the one that saturates last: the
    line follows the first (what a planner must expect), the band spans both."""
    columns: dict[int, list[tuple[int, float]]] = {}
    for n, v in points:
        columns.setdefault(int(x(n)), []).append((n, v))
    low, high = [], []
    for col in sorted(columns):
        group = columns[col]
        low.append(min(group, key=lambda p: p[1]))
        high.append(max(group, key=lambda p: p[1]))
    return low, high
