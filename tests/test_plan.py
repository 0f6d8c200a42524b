"""`skewcheck plan`: the capacity planner, run as users run it."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import REPO, run_skewcheck


def test_incident_plan_blocks_and_names_the_hot_shard(tmp_path: Path) -> None:
    proc = run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "200000", "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "verdict: BLOCK (exit 1)" in proc.stdout
    assert "shard 0 carries 100.0%" in proc.stdout
    assert "routing skew" in proc.stdout  # murmur3 spreads the same 127 accounts
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["schema"] == "skewcheck.result/1" and doc["kind"] == "plan"
    assert doc["verdict"]["status"] == "block"
    assert doc["routers"]["hash-mod"]["counts"][0] == 200_000
    rows = {(r["router"], r["shards"]): r for r in doc["plan"]["rows"]}
    assert set(doc["plan"]["shard_counts"]) == {100, 16, 64, 128, 1024}
    # the hottest shard carries everything under hash-mod: it saturates at its own capacity
    assert rows[("hash-mod", 100)]["saturation_qps"] == doc["plan"]["shard_capacity_qps"]
    assert rows[("murmur3", 100)]["saturation_qps"] > 20 * doc["plan"]["shard_capacity_qps"]
    safest = doc["plan"]["safest"]
    passing = [r for r in doc["plan"]["rows"] if r["status"] == "pass"]
    assert safest["saturation_qps"] == max(r["saturation_qps"] for r in passing)
    assert (safest["router"], safest["shards"]) != ("hash-mod", 100)
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failures = [tc for tc in junit.iter("testcase") if tc.find("failure") is not None]
    assert any("shard 0" in f.find("failure").get("message") for f in failures)
    assert "❌" in (tmp_path / "summary.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 3 and 'class="limit"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "<link" not in html  # self-contained


def test_default_plan_passes() -> None:
    proc = run_skewcheck("plan", "configs/default.yaml", "--requests", "200000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: PASS (exit 0)" in proc.stdout


def test_capacity_plan_shows_snowflake_ids_defeat_modulo() -> None:
    proc = run_skewcheck("plan", "configs/capacity.yaml", "--requests", "100000")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "safest:" in proc.stdout


def test_a_plan_too_small_for_min_requests_is_inconclusive() -> None:
    proc = run_skewcheck("plan", "configs/default.yaml", "--requests", "500")
    assert proc.returncode == 3
    assert "min_requests" in proc.stdout


def test_gate_rejudges_a_saved_result(tmp_path: Path) -> None:
    run_skewcheck("plan", "configs/default.yaml", "--requests", "50000", "--out", str(tmp_path))
    ok = run_skewcheck("gate", str(tmp_path / "result.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    strict = tmp_path / "strict.yaml"
    strict.write_text("gate:\n  min_requests: 100000\n")
    again = run_skewcheck("gate", str(tmp_path / "result.json"), "--config", str(strict))
    assert again.returncode == 3
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    bad = run_skewcheck("gate", str(garbage))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_gate_with_other_thresholds_rejudges_every_plan_row(tmp_path: Path) -> None:
    run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "20000", "--out", str(tmp_path))
    saved = json.loads((tmp_path / "result.json").read_text())["plan"]
    assert {r["router"]: r["status"] for r in saved["rows"] if r["shards"] == 100}["hash-mod"] == "block"
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("gate:\n  max_shard_share: 1.0\n  stddev_excess_limit: 100\n")
    again = run_skewcheck("gate", str(tmp_path / "result.json"), "--config", str(lenient),
                          "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout + again.stderr
    rows = json.loads((tmp_path / "again" / "result.json").read_text())["plan"]["rows"]
    assert [(r["router"], r["shards"]) for r in rows] == [(r["router"], r["shards"]) for r in saved["rows"]]
    assert {r["status"] for r in rows} == {"pass"}
    strict = tmp_path / "strict.yaml"
    strict.write_text("gate:\n  min_requests: 1000000\n")  # the plan simulated 20,000
    run_skewcheck("gate", str(tmp_path / "result.json"), "--config", str(strict), "--out", str(tmp_path / "s"))
    strict_rows = json.loads((tmp_path / "s" / "result.json").read_text())["plan"]["rows"]
    assert {r["status"] for r in strict_rows} == {"inconclusive"}


def test_html_escapes_keys_from_data(tmp_path: Path) -> None:
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        "routing:\n  primary: murmur3\n  key_type: str\n"
        "keys:\n  - kind: hot\n    keys: ['<script>alert(1)</script>']\n    share: 0.5\n"
        "    base: {kind: prefixed, prefix: 'u-', inner: {kind: uniform, low: 1, high: 100000}}\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000", "--out", str(tmp_path / "out"))
    assert proc.returncode in (0, 1, 3), proc.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_primary_is_judged_whatever_order_plan_routers_are_listed_in(tmp_path: Path) -> None:
    text = (REPO / "configs/incident-2020.yaml").read_text().replace(
        "routers: [hash-mod, murmur3, jump]", "routers: [murmur3, jump, hash-mod]")
    assert "routers: [murmur3, jump, hash-mod]" in text
    cfg = tmp_path / "incident.yaml"
    cfg.write_text(text)
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000")
    assert proc.returncode == 1 and "shard 0 carries 100.0% of requests under hash-mod" in proc.stdout


def test_a_scenario_without_keys_uses_the_default_distribution(tmp_path: Path) -> None:
    cfg = tmp_path / "minimal.yaml"
    cfg.write_text("shards: 64\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
