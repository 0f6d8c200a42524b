"""The end-of-run table for a terminal. Every line goes through `printable`: keys and messages
come from traffic, and must not move the cursor or forge a line."""

from __future__ import annotations

import math
from typing import Any

from skewcheck.report import latency as latency_table
from skewcheck.report.escape import printable
from skewcheck.report.figures import busy, pct, qps
from skewcheck.report.keys import keys_line

MARK = {"pass": "ok  ", "block": "FAIL", "inconclusive": "??  "}




def _num(x: float | None) -> str:
    return "unknown" if x is None or math.isnan(x) else f"{x:.3f}"


def render(doc: dict[str, Any], hottest: int = 5) -> str:
    s = doc["summary"]
    timed = bool(s.get("duration_s"))  # a simulated plan has no clock, so no QPS
    lines = [
        f"skewcheck {doc.get('kind', 'run')}: {s['requests']:,} requests"
        + (f" in {s['duration_s']:.1f} s" if s.get("duration_s") else "")
        + f" over {s['shards']} shards (primary router: {s['primary']})",
    ]
    labels = [text for name, text in (doc.get("router_labels") or {}).items() if text != name]
    if labels:
        lines.append("routers with parameters: " + "; ".join(labels))
    for name, rs in s["routers"].items():
        tag = " (primary)" if name == s["primary"] else ""
        rb = doc["balance"][name]
        lo, hi = rb["max_share_interval"]
        lines += [
            "",
            f"{name}{tag}: max share {pct(rs['max_share'])} [{pct(lo)}–{pct(hi)}] on shard "
            f"{rs['hottest_shard']}; stddev ratio {rs['stddev_ratio']:.3f} vs {_num(rs['stddev_ratio_floor'])} "
            f"for a random hash of these keys (excess {_num(rb['stddev_excess'])}); {rb['status']}",
            f"  {'shard':>6} {'requests':>10} {'share':>7} {'95% interval':>16}" + (f" {'QPS':>9}" if timed else ""),
        ]
        for h in rs["hottest"][:hottest]:
            a, b = h["share_interval"]
            lines.append(f"  {h['shard']:>6} {h['requests']:>10,} {pct(h['share']):>7} "
                         f"{pct(a) + '–' + pct(b):>16}" + (f" {h['qps']:>9.1f}" if timed else ""))
    obs = s.get("observed")
    if obs:
        lines += ["", f"observed (X-Shard): {obs['requests']:,} requests, {obs['mismatches']:,} disagreed "
                      f"with {s['primary']}; max share {pct(obs['max_share'])} on shard {obs['hottest_shard']}"]
    if doc.get("latency"):
        lines += ["", *latency_table.terminal(doc["latency"]).split("\n")]
    diag = doc.get("diagnosis") or {}
    if diag:
        lines += ["", f"diagnosis: {diag['message']}"]
        if diag.get("fix"):
            lines.append(f"fix: {diag['fix']}")
    if s.get("keys"):
        lines.append("keys: " + keys_line(s, printable))
    elif s.get("top_keys"):
        keys = ", ".join(f"{t['key']} ({pct(t['share'])})" for t in s["top_keys"][:5])
        lines.append(f"hottest keys (Misra–Gries, each may undercount by ≤ {s['top_keys_error']:,}): {keys}")
    plan = doc.get("plan")
    if plan:
        lines += ["", *render_plan(plan).split("\n")]
    v = doc["verdict"]
    lines += ["", f"verdict: {v['status'].upper()} (exit {v['exit_code']})"]
    for c in v["checks"]:
        lines.append(f"  [{MARK[c['status']]}] {c['rule']}: {c['message']}")
    return "\n".join(printable(line) for line in lines)  # a newline inside a key stays "\\x0a"






def render_plan(plan: dict[str, Any]) -> str:
    """The capacity plan: the rows in plain figures, the search, the recommendation, the
    resharding and growth what-ifs. Rows show router names and numbers only."""
    cap, km = plan["capacity"], plan["key_model"]
    model = (f"exact, {km['distinct_keys']:,.0f} distinct keys" if km["exact"] else
             f"a sample of {km['sampled_keys']:,} of ~{km['distinct_keys']:,.0f} distinct keys "
             f"and the {km['listed_keys']:,} heaviest")
    lines = [f"capacity plan: {plan['requests']:,} requests planned (key model: {model}; "
             f"{plan.get('passes', 0)} pass(es) over the keys)"]
    target = cap["target_qps"]
    if cap["judged"]:
        lines.append(f"  target {target:,.0f} QPS; one shard carries "
                     f"{cap['shard_capacity_qps']:,.0f} "
                     f"QPS; headroom {cap['headroom']:.0%}: a setup must saturate above "
                     f"{cap['needed_qps']:,.0f} QPS (at least {cap['min_shards'] or '—'} shards)")
    elif cap["shard_capacity_qps"]:
        lines.append(f"  one shard carries {cap['shard_capacity_qps']:,.0f} QPS; no target_qps: "
                     "rows are judged on balance")
    else:
        lines.append("  no target_qps and per-shard capacity: rows are judged on balance only")
    busy_head = f"at {target:,.0f} QPS" if target else "busy at target"
    lines.append(f"  {'router':<9} {'shards':>6}  {'role':<19} {'first to saturate':<29} "
                 f"{busy_head:>17} {'saturates at':>14}  verdict")
    for r in plan["rows"]:
        first = f"shard {r['hottest_shard']} ({pct(r['hottest_share'])} of requests)"
        why = [k for k, v in (("capacity", r.get("capacity_status")),
                              ("balance", r.get("balance_status"))) if v and v != "pass"]
        verdict = r["status"] + (f" ({', '.join(why)})" if why else "")
        approx = "" if r.get("exact", True) else " ~"
        lines.append(f"  {r['router']:<9} {r['shards']:>6}  {','.join(r['roles']) or '-':<19} "
                     f"{first:<29} {busy(r.get('utilisation')):>17} "
                     f"{qps(r.get('saturation_qps'), ' QPS'):>14}  {verdict}{approx}")
    search = plan.get("search") or {}
    findings = search.get("findings") or {}
    if findings:
        span = (f"{len(search['counts'])} stated shard counts" if search.get("counts")
                else f"{search['min_shards']}–{search['max_shards']} shards")
        lines += ["", f"searched {span}: robust = carries the target from N shards to N + "
                      f"{search['robust_span']:.0%} (at least N + {search['robust_min_span']}) and "
                      f"in each of {search['resamples']} resampled key sets"]
        for router, f in findings.items():
            if f["shards"] is None:
                lines.append(f"  {router:<9} no robust count: {f['reason']}")
            else:
                how = "" if f["exact"] else " (on the sampled key model, not confirmed exactly)"
                first = (f"; first carries the target at {f['first_pass']}"
                         if f.get("first_pass") not in (None, f["shards"]) else "")
                lines.append(f"  {router:<9} smallest robust count: {f['shards']} shards"
                             f"{first}{how}")
        if search.get("key_limit"):
            lines.append(f"  {search['key_limit']}")
    rec = plan.get("recommendation")
    if rec:
        lines += ["", f"recommendation: {rec['message']}"]
        for rej in rec.get("rejected", []):
            lines.append(f"  not {rej['router']}: {rej['reason']}")
    rs = plan.get("reshard")
    if rs:
        lines += ["", f"resharding {rs['from']} → {rs['to']} shards "
                      f"(keys moved {'exact' if rs['keys_exact'] else 'from the key sample'}):",
                  f"  {'router':<9} {'keys moved':>10} {'traffic moved':>14} {'even keys':>10}  "
                  f"after the move"]
        for r in rs["routers"]:
            even = pct(r["expected_moved"], missing="—")
            lines.append(f"  {r['router']:<9} {pct(r['keys_moved']):>10} "
                         f"{pct(r['traffic_moved']):>14} {even:>10}  shard {r['hottest_shard']} "
                         f"hottest ({pct(r['max_share'])}), saturates at "
                         f"{qps(r['saturation_qps'], ' QPS')}: {r['status']}")
    growth = plan.get("growth")
    if growth:
        lines += ["", f"growth at {growth['horizon']}: " + "; ".join(growth["moved"])]
        for g in growth["rows"]:
            now, then = g["now"], g["then"]
            lines.append(f"  {g['router']:<9} {g['shards']:>6}  {g['change']}: shard "
                         f"{now['hottest_shard']} → {then['hottest_shard']}, max share "
                         f"{pct(now['max_share'])} → {pct(then['max_share'])}, saturates at "
                         f"{qps(now['saturation_qps'], ' QPS')} → {qps(then['saturation_qps'], ' QPS')}")
    return "\n".join(lines)
