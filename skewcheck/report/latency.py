"""The per-shard latency table of every format: the busiest shards (and the slowest and the most
failing) with p50/p95/p99 and failure rate, next to the median of the other shards. Rendered from
the result document's `latency` section; numbers only, no keys."""

from __future__ import annotations

from html import escape
from typing import Any

from skewcheck.latency import ms
from skewcheck.report.figures import pct

HEAD = ("shard", "requests", "share", "p50", "p95", "p99", "failed")


def rows(section: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's cells as text: one row per shown shard, then the median shard."""
    out = [(str(r["shard"]), f"{r['requests']:,}", pct(r["share"]), ms(r["p50"]), ms(r["p95"]), ms(r["p99"]),
            pct(r["failure_rate"])) for r in section.get("shards", [])]
    median = section.get("median")
    if median:
        out.append((f"median of {median['shards']} other", "", "", ms(median["p50"]), ms(median["p95"]),
                    ms(median["p99"]), pct(median["failure_rate"])))
    else:
        out.append(("median", "", "", "no other shard served enough requests", "", "", ""))
    return out


def title(section: dict[str, Any]) -> str:
    return (f"latency by shard (DDSketch, each quantile within ±{section['relative_error'] * 100:g}%; "
            f"median over shards with ≥ {section['min_samples']} timed requests)")


def terminal(section: dict[str, Any]) -> str:
    lines = [title(section) + ":"]
    widths = (18, 10, 7, 9, 9, 9, 7)
    lines.append("  " + " ".join(h.rjust(w) for h, w in zip(HEAD, widths)))
    for r in rows(section):
        if r[1] == "" and r[4] == "":
            lines.append("  " + r[0].rjust(widths[0]) + "  " + r[3])
        else:
            lines.append("  " + " ".join(c.rjust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def markdown(section: dict[str, Any]) -> str:
    lines = [f"**{title(section)}**", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(section)]
    return "\n".join(lines)


def html(section: dict[str, Any]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
    def row(r: tuple[str, ...]) -> str:
        if r[1] == "" and r[4] == "":  # the median row without a median: one cell says why
            return f'<tr><td>{escape(r[0])}</td><td colspan="{len(HEAD) - 1}">{escape(r[3])}</td></tr>'
        return "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>"

    body = "".join(row(r) for r in rows(section))
    return (f'<h2>Latency by shard</h2><p>{escape(title(section))}</p>'
            f'<table id="latency"><tr>{head}</tr>{body}</table>')
