"""The shard × time heatmap as one SVG (the HTML report and the live page): a row per shard, a
column per time bucket, each cell coloured by the shard's share of that column's requests — blue up
to the share limit, orange to red above it, grey where the column had no requests. Rendered from
the result document's `heatmap` section; only numbers reach the SVG, each through html.escape."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH = 900
LEFT, TOP, BOTTOM = 56, 20, 34  # room for the shard labels, the legend and the time axis
MAX_HEIGHT = 420
EMPTY = "#eaeef2"  # a column without requests


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    t = min(max(t, 0.0), 1.0)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def color(share: float, limit: float) -> str:
    """White → blue up to the limit; orange → dark red from the limit to three times it."""
    if share <= limit:
        return _mix((0xf6, 0xf8, 0xfa), (0x09, 0x69, 0xda), share / limit if limit else 1.0)
    return _mix((0xfb, 0x8f, 0x44), (0x82, 0x07, 0x1e), (share - limit) / (2 * limit) if limit else 1.0)


def svg(section: dict[str, Any], limit: float) -> str:
    rows = section["rows"]
    columns = int(section["columns"])
    totals = section["totals"]
    column_s = float(section["column_s"])
    n = max(len(rows), 1)
    cell_h = max(2.0, min(14.0, MAX_HEIGHT / n))
    plot_w = WIDTH - LEFT - 12
    cell_w = plot_w / max(columns, 1)
    height = TOP + cell_h * n + BOTTOM
    e = lambda v: escape(str(v))  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="heatmap" viewBox="0 0 {WIDTH} '
             f'{height:.0f}" width="{WIDTH}" height="{height:.0f}" data-columns="{columns}" '
             f'data-rows="{len(rows)}" data-column-s="{e(column_s)}">'
             f"<title>share of requests per shard over time ({e(section.get('router', ''))})</title>"]
    label_every = max(1, round(11 / cell_h))
    for y_index, row in enumerate(rows):
        y = TOP + y_index * cell_h
        shard = int(row["shard"])
        if y_index % label_every == 0:
            parts.append(f'<text class="shard-label" x="{LEFT - 4}" y="{y + min(cell_h, 11) - 1:.1f}" '
                         f'font-size="10" text-anchor="end">{shard}</text>')
        for c, count in enumerate(row["counts"]):
            total = totals[c]
            share = count / total if total else 0.0
            fill = color(share, limit) if total else EMPTY
            parts.append(f'<rect class="cell" data-shard="{shard}" data-column="{c}" data-share="{share:.4f}" '
                         f'x="{LEFT + c * cell_w:.2f}" y="{y:.2f}" width="{cell_w + 0.05:.2f}" '
                         f'height="{cell_h + 0.05:.2f}" fill="{fill}"><title>shard {shard}, '
                         f'{c * column_s:g}–{(c + 1) * column_s:g} s: {share * 100:.1f}% of {total:,}</title></rect>')
    axis_y = TOP + cell_h * n
    ticks = max(1, columns // 8)
    for c in range(0, columns + 1, ticks):
        parts.append(f'<text class="time-label" x="{LEFT + c * cell_w:.1f}" y="{axis_y + 12:.1f}" font-size="10" '
                     f'text-anchor="middle">{c * column_s:g} s</text>')
    parts.append(f'<text x="{LEFT - 4}" y="{TOP - 6}" font-size="10" text-anchor="end">shard</text>'
                 f'<text x="{WIDTH - 12}" y="{TOP - 6}" font-size="10" text-anchor="end">time since the first '
                 f'request →</text>')
    legend_y = axis_y + 20
    for i, share in enumerate((0.0, limit / 2, limit, 2 * limit, 3 * limit)):
        x = LEFT + i * 90
        parts.append(f'<rect x="{x}" y="{legend_y}" width="12" height="10" fill="{color(share, limit)}"/>'
                     f'<text x="{x + 16}" y="{legend_y + 9}" font-size="10">{share * 100:.0f}%</text>')
    parts.append(f'<text x="{LEFT + 5 * 90}" y="{legend_y + 9}" font-size="10">share of the column\'s requests '
                 f'(limit {limit * 100:g}%); {e(column_s)} s per column</text></svg>')
    return "".join(parts)


def caption(section: dict[str, Any]) -> str:
    shown, total = len(section["rows"]), int(section["shards"])
    which = "every shard" if shown == total else f"the {shown} shards with the highest share in any column, of {total}"
    return (f"Share of requests per shard over time under {section.get('router', '?')}: {which}; "
            f"{section['columns']} columns of {section['column_s']:g} s.")
