"""The end-of-run table for a terminal."""

from __future__ import annotations

from typing import Any

from skewcheck.report import latency as latency_table
from skewcheck.report.findings import printable
from skewcheck.report.keys import keys_line

MARK = {"pass": "ok  ", "block": "FAIL", "inconclusive": "??  "}


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _num(x: float | None) -> str:
    return "unknown" if x is None or x != x else f"{x:.3f}"


def render(doc: dict[str, Any], hottest: int = 5) -> str:
    s = doc["summary"]
    timed = bool(s.get("duration_s"))  # a simulated plan has no clock, so no QPS
    lines = [
        f"skewcheck {doc.get('kind', 'run')}: {s['requests']:,} requests"
        + (f" in {s['duration_s']:.1f} s" if s.get("duration_s") else "")
        + f" over {s['shards']} shards (primary router: {s['primary']})",
    ]
    for name, rs in s["routers"].items():
        tag = " (primary)" if name == s["primary"] else ""
        rb = doc["balance"][name]
        lo, hi = rb["max_share_interval"]
        lines += [
            "",
            f"{name}{tag}: max share {_pct(rs['max_share'])} [{_pct(lo)}–{_pct(hi)}] on shard "
            f"{rs['hottest_shard']}; stddev ratio {rs['stddev_ratio']:.3f} vs {_num(rs['stddev_ratio_floor'])} "
            f"for a random hash of these keys (excess {_num(rb['stddev_excess'])}); {rb['status']}",
            f"  {'shard':>6} {'requests':>10} {'share':>7} {'95% interval':>16}" + (f" {'QPS':>9}" if timed else ""),
        ]
        for h in rs["hottest"][:hottest]:
            a, b = h["share_interval"]
            lines.append(f"  {h['shard']:>6} {h['requests']:>10,} {_pct(h['share']):>7} "
                         f"{_pct(a) + '–' + _pct(b):>16}" + (f" {h['qps']:>9.1f}" if timed else ""))
    obs = s.get("observed")
    if obs:
        lines += ["", f"observed (X-Shard): {obs['requests']:,} requests, {obs['mismatches']:,} disagreed "
                      f"with {s['primary']}; max share {_pct(obs['max_share'])} on shard {obs['hottest_shard']}"]
    if doc.get("latency"):
        lines += ["", latency_table.terminal(doc["latency"])]
    diag = doc.get("diagnosis") or {}
    if diag:
        lines += ["", f"diagnosis: {diag['message']}"]
        if diag.get("fix"):
            lines.append(f"fix: {diag['fix']}")
    if s.get("keys"):
        lines.append("keys: " + keys_line(s, printable))
    elif s.get("top_keys"):
        keys = ", ".join(f"{t['key']} ({_pct(t['share'])})" for t in s["top_keys"][:5])
        lines.append(f"hottest keys (Misra–Gries, each may undercount by ≤ {s['top_keys_error']:,}): {keys}")
    plan = doc.get("plan")
    if plan:
        lines += ["", render_plan(plan)]
    v = doc["verdict"]
    lines += ["", f"verdict: {v['status'].upper()} (exit {v['exit_code']})"]
    for c in v["checks"]:
        lines.append(f"  [{MARK[c['status']]}] {c['rule']}: {c['message']}")
    return "\n".join(lines)


def render_plan(plan: dict[str, Any]) -> str:
    lines = [
        f"capacity plan: {plan['requests']:,} simulated requests; shard capacity "
        f"{plan['shard_capacity_qps']:,.0f} QPS; target {plan['target_qps']:,.0f} QPS",
        f"  {'router':<9} {'shards':>6} {'hottest':>7} {'max share ± 95%':>22} {'stddev/floor':>14} "
        f"{'saturates at':>13} {'headroom':>9}  verdict",
    ]
    for row in plan["rows"]:
        lo, hi = row["max_share_interval"]
        lines.append(
            f"  {row['router']:<9} {row['shards']:>6} {row['hottest_shard']:>7} "
            f"{_pct(row['max_share']) + ' [' + _pct(lo) + '–' + _pct(hi) + ']':>22} "
            f"{row['stddev_ratio']:>6.2f}/{row['stddev_ratio_floor']:<6.2f} "
            f"{row['saturation_qps']:>10,.0f} QPS {_pct(row['headroom']):>8}  {row['status']}")
    safest = plan.get("safest")
    if safest:
        lines.append(f"safest: {safest['router']} over {safest['shards']} shards — the hottest shard saturates "
                     f"at {safest['saturation_qps']:,.0f} total QPS")
    return "\n".join(lines)
