"""PromQL artefacts, checked offline with promtool: the PrometheusRule in k8s/,
its rule unit tests, the Grafana dashboard's queries, and a reusable
`promtool check metrics` helper for the exporters' /metrics output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from conftest import REPO, require_binary

RULE_FILE = REPO / "k8s" / "prometheusrule.yaml"
RULE_TESTS = REPO / "k8s" / "tests" / "prometheusrule.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "skewcheck-dashboard.json"

# The design's metric list (a public contract), plus the sidecar's consumer lag.
# Kept here rather than read from the design document: tests must not depend
# on files outside the repository.
KNOWN_METRICS = {
    "skewcheck_requests_total",
    "skewcheck_shard_qps",
    "skewcheck_shard_share",
    "skewcheck_shard_share_max",
    "skewcheck_shard_qps_stddev_ratio",
    "skewcheck_shard_qps_stddev_ratio_floor",
    "skewcheck_gate_status",
    "skewcheck_events_consumed_total",
    "skewcheck_events_malformed_total",
    "skewcheck_probe_goroutines",
    "skewcheck_consumer_lag",
    # per-shard latency and failures of the busiest shards (metrics.latency_series_limit)
    "skewcheck_shard_latency_seconds",
    "skewcheck_shard_latency_p99_median_seconds",
    "skewcheck_shard_failure_ratio",
}


# --------------------------------------------------------------------------- helpers

def promtool() -> str:
    return require_binary("promtool")


def promtool_check_metrics(text: str) -> list[str]:
    """promtool's complaints about a Prometheus text exposition; [] when it is clean.

    Lint findings (exit 3) come back one per line, e.g. 'foo counter metrics
    should have "_total" suffix'; a parse error (exit 1) comes back as its
    message. Reusable on a real /metrics body from the sidecar or Locust master.
    """
    proc = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode == 0:
        return []
    return lines or [f"promtool check metrics exited {proc.returncode}"]


def extract_rules(dest: Path) -> Path:
    """The PrometheusRule's spec.groups as a plain rules file, which is what
    the operator hands Prometheus and what promtool understands."""
    (rule,) = [d for d in yaml.safe_load_all(RULE_FILE.read_text()) if d and d["kind"] == "PrometheusRule"]
    path = dest / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False, width=1000))
    return path


def alert_rules() -> list[dict[str, Any]]:
    (rule,) = [d for d in yaml.safe_load_all(RULE_FILE.read_text()) if d and d["kind"] == "PrometheusRule"]
    return [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "and", "or", "unless", "inf", "nan", "start", "end"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects. Good enough for our own queries (not
    a full parser): strips strings, label matchers, ranges, grouping clauses
    and Grafana variables, then keeps identifiers that are not function calls,
    keywords or parts of numbers/durations."""
    assert "__name__" not in expr, "selecting by __name__ hides the metric name from this check"
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", " ", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        before = s[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":
            continue  # 5m, 1e3
        if s[m.end():].lstrip().startswith("("):
            continue  # function or aggregation
        if m.group(0).lower() in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for p in dashboard()["panels"]:
        yield p
        yield from p.get("panels", [])  # collapsed rows keep theirs inside


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if "expr" in t]
    for var in dashboard()["templating"]["list"]:
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if var["type"] == "query" and q:
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", q)
            exprs.append(m.group(1) if m else q)
    return exprs


# --------------------------------------------------------------------------- promtool check metrics

GOOD_EXPOSITION = """\
# HELP skewcheck_requests_total Requests counted per router and shard.
# TYPE skewcheck_requests_total counter
skewcheck_requests_total{router="mod",shard="0"} 1027
skewcheck_requests_total{router="murmur3",shard="0"} 12
# HELP skewcheck_shard_qps Requests per second per shard over the sliding window.
# TYPE skewcheck_shard_qps gauge
skewcheck_shard_qps{router="mod",shard="0"} 102.7
# HELP skewcheck_shard_share Share of requests per shard over the sliding window.
# TYPE skewcheck_shard_share gauge
skewcheck_shard_share{router="mod",shard="0"} 0.9
# HELP skewcheck_shard_share_max Largest shard share over the sliding window.
# TYPE skewcheck_shard_share_max gauge
skewcheck_shard_share_max{router="mod"} 0.9
# HELP skewcheck_shard_qps_stddev_ratio Stddev over mean of per-shard QPS.
# TYPE skewcheck_shard_qps_stddev_ratio gauge
skewcheck_shard_qps_stddev_ratio{router="mod"} 9.5
# HELP skewcheck_shard_qps_stddev_ratio_floor Expected stddev ratio of a perfect router on these keys.
# TYPE skewcheck_shard_qps_stddev_ratio_floor gauge
skewcheck_shard_qps_stddev_ratio_floor{router="mod"} 0.88
# HELP skewcheck_gate_status Gate verdict: 0 pass, 1 block, 3 inconclusive.
# TYPE skewcheck_gate_status gauge
skewcheck_gate_status 1
# HELP skewcheck_events_consumed_total Kafka messages consumed.
# TYPE skewcheck_events_consumed_total counter
skewcheck_events_consumed_total 5000
# HELP skewcheck_events_malformed_total Kafka messages skipped as malformed.
# TYPE skewcheck_events_malformed_total counter
skewcheck_events_malformed_total{reason="bad_json"} 3
# HELP skewcheck_consumer_lag Messages behind the partition's end offset.
# TYPE skewcheck_consumer_lag gauge
skewcheck_consumer_lag{topic="skewcheck.requests",partition="0"} 12
# HELP skewcheck_probe_goroutines Goroutines on the Go target at each probe phase.
# TYPE skewcheck_probe_goroutines gauge
skewcheck_probe_goroutines{phase="baseline"} 8
skewcheck_probe_goroutines{phase="hold"} 48
# HELP skewcheck_shard_latency_seconds Latency of the busiest shards.
# TYPE skewcheck_shard_latency_seconds summary
skewcheck_shard_latency_seconds{shard="0",quantile="0.5"} 0.053
skewcheck_shard_latency_seconds{shard="0",quantile="0.99"} 0.41
skewcheck_shard_latency_seconds_sum{shard="0"} 130.2
skewcheck_shard_latency_seconds_count{shard="0"} 2446
# HELP skewcheck_shard_latency_p99_median_seconds p99 latency of the median shard.
# TYPE skewcheck_shard_latency_p99_median_seconds gauge
skewcheck_shard_latency_p99_median_seconds 0.006
# HELP skewcheck_shard_failure_ratio Share of the busiest shards' requests that failed.
# TYPE skewcheck_shard_failure_ratio gauge
skewcheck_shard_failure_ratio{shard="0"} 0.38
"""


@pytest.mark.promtool
def test_promtool_check_metrics_accepts_the_design_metric_names():
    """Every documented name and type passes promtool's lint, as the design requires."""
    exposed = {ln.split()[2] for ln in GOOD_EXPOSITION.splitlines() if ln.startswith("# TYPE")}
    assert exposed == KNOWN_METRICS
    assert promtool_check_metrics(GOOD_EXPOSITION) == []


@pytest.mark.promtool
def test_promtool_check_metrics_reports_lint_problems():
    bad = ("# TYPE skewcheckEvents counter\n"
           "skewcheckEvents 3\n")
    problems = promtool_check_metrics(bad)
    assert any('"_total" suffix' in p for p in problems), problems
    assert any("snake_case" in p for p in problems), problems
    assert any("no help text" in p for p in problems), problems


@pytest.mark.promtool
def test_promtool_check_metrics_reports_parse_errors():
    problems = promtool_check_metrics('skewcheck_shard_share{router="mod" 0.5\n')
    assert problems and "pars" in problems[0].lower(), problems


# --------------------------------------------------------------------------- the PrometheusRule

@pytest.mark.promtool
def test_rules_pass_promtool_check(tmp_path):
    proc = subprocess.run([promtool(), "check", "rules", str(extract_rules(tmp_path))],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in yaml.safe_load((tmp_path / 'rules.yaml').read_text())['groups'])} rules" in proc.stdout


@pytest.mark.promtool
def test_rule_unit_tests_pass(tmp_path):
    extract_rules(tmp_path)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    proc = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.promtool
def test_rule_unit_tests_fail_when_a_threshold_moves(tmp_path):
    """The unit tests are not vacuous: loosen the share threshold and they catch it."""
    path = extract_rules(tmp_path)
    path.write_text(path.read_text().replace("skewcheck_shard_share > 0.15", "skewcheck_shard_share >= 0.15"))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    proc = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [c for t in cases for c in t.get("alert_rule_test", [])]
    for rule in alert_rules():
        name = rule["alert"]
        assert any(c["alertname"] == name and c["exp_alerts"] for c in checks), f"{name} never fires in a test"
        assert any(c["alertname"] == name and not c["exp_alerts"] for c in checks), f"{name} has no must-not-fire test"


def test_required_alerts_are_present():
    exprs = {r["alert"]: " ".join(r["expr"].split()) for r in alert_rules()}
    by_metric = {m: [a for a, e in exprs.items() if m in promql_metric_names(e)] for m in KNOWN_METRICS}

    (share,) = by_metric["skewcheck_shard_share"]
    assert "> 0.15" in exprs[share]
    (stddev,) = by_metric["skewcheck_shard_qps_stddev_ratio_floor"]
    assert stddev in by_metric["skewcheck_shard_qps_stddev_ratio"] and exprs[stddev].endswith("> 0.8")
    (malformed,) = by_metric["skewcheck_events_malformed_total"]
    assert malformed in by_metric["skewcheck_events_consumed_total"] and "rate(" in exprs[malformed]
    (lag,) = by_metric["skewcheck_consumer_lag"]
    assert exprs[lag].startswith("sum ")
    assert any(exprs[a] == "skewcheck_gate_status == 1" for a in by_metric["skewcheck_gate_status"])

    fors = {r["alert"]: r.get("for") for r in alert_rules()}
    assert fors[share] == "2m"
    for r in alert_rules():
        assert r["labels"]["severity"] in {"critical", "warning", "info"}
        assert r["annotations"]["summary"] and r["annotations"]["description"]


def test_rules_reference_only_known_metrics():
    for r in alert_rules():
        assert promql_metric_names(r["expr"]) <= KNOWN_METRICS, r["alert"]


# --------------------------------------------------------------------------- the Grafana dashboard

def test_metric_name_extraction():
    """The checker below is only as good as this extraction."""
    assert promql_metric_names(
        'sum by (router) (rate(skewcheck_requests_total{router=~"$router"}[$__rate_interval])) offset 5m'
    ) == {"skewcheck_requests_total"}
    assert promql_metric_names("sqrt(clamp_min(a ^ 2 - b ^ 2, 0)) > 0.8") == {"a", "b"}
    assert promql_metric_names("up == 0 and on(job) skewcheck_gate_status") == {"up", "skewcheck_gate_status"}
    assert promql_metric_names("rate(skewcheck_events_consumed[5m]) > 1e3") == {"skewcheck_events_consumed"}


def test_dashboard_is_valid_json_with_unique_panels():
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "router"} <= variables
    for p in dashboard_panels():
        if p["type"] == "row":
            continue
        assert p["title"] and p["targets"], p.get("title")
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        gp = p["gridPos"]
        assert 0 <= gp["x"] and gp["x"] + gp["w"] <= 24 and gp["h"] > 0
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"


def test_dashboard_queries_only_reference_known_metrics():
    exprs = dashboard_exprs()
    assert exprs
    for e in exprs:
        names = promql_metric_names(e)
        assert names, f"no metric in {e!r}"
        assert names <= KNOWN_METRICS, f"{e!r} uses {names - KNOWN_METRICS}"


def test_dashboard_covers_the_metrics():
    used = set().union(*(promql_metric_names(e) for e in dashboard_exprs()))
    assert used == KNOWN_METRICS, f"not on the dashboard: {KNOWN_METRICS - used}"
    titles = " | ".join(p["title"] for p in dashboard_panels()).lower()
    for words in ("share", "max shard share", "stddev", "qps", "gate status", "malformed", "lag", "goroutines",
                  "latency p99", "failure ratio"):
        assert words in titles, words
    # The gate's limits drawn where the numbers are compared with them.
    steps = {p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])]
             for p in dashboard_panels() if p["type"] != "row"}
    assert 0.15 in next(v for k, v in steps.items() if k.lower().startswith("max shard share"))
    assert 0.8 in next(v for k, v in steps.items() if "stddev" in k.lower())


@pytest.mark.promtool
def test_dashboard_queries_parse(tmp_path):
    """promtool parses every query, as recording rules, with Grafana's variables filled in."""
    filled = [e.replace("$__rate_interval", "1m").replace("$__interval", "1m")
               .replace("${router}", "mod").replace("$router", "mod") for e in dashboard_exprs()]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(filled)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules, width=1000))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
