"""`skewcheck plan`: the capacity planner, run as users run it."""

from __future__ import annotations

import gzip
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_skewcheck

from skewcheck.config import load_scenario, parse_scenario
from skewcheck.routing import make_router


def plan_doc(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def rows_of(doc: dict) -> dict:
    return {(r["router"], r["shards"]): r for r in doc["plan"]["rows"]}


def test_incident_plan_blocks_and_never_recommends_hash_mod(tmp_path: Path) -> None:
    proc = run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "200000",
                         "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "verdict: BLOCK (exit 1)" in proc.stdout
    assert "shard 0 carries 100.0%" in proc.stdout
    assert "routing skew" in proc.stdout  # murmur3 spreads the same 127 accounts
    # the capacity rule: the configured setup cannot carry 5,000 QPS, shard 0 saturates first
    assert re.search(r"capacity: hash-mod over 100 shards cannot carry 5,000 QPS with 20% "
                     r"headroom: .*shard 0 saturates first, at 200 total QPS", proc.stdout)
    doc = plan_doc(tmp_path)
    assert doc["schema"] == "skewcheck.result/1" and doc["kind"] == "plan"
    assert doc["routers"]["hash-mod"]["counts"][0] == 200_000
    capacity = next(c for c in doc["verdict"]["checks"] if c["rule"] == "capacity")
    assert capacity["status"] == "block" and capacity["shard"] == 0
    assert capacity["details"]["saturation_qps"] == pytest.approx(200.0)  # the pool: 2 / 10 ms
    plan = doc["plan"]
    rec = plan["recommendation"]
    assert rec["router"] in ("murmur3", "jump") and rec["change"] == "router and shards"
    hash_mod = next(r for r in rec["rejected"] if r["router"] == "hash-mod")
    assert "5% above it" in hash_mod["reason"]  # it passes only at lucky counts
    recommended = rows_of(doc)[(rec["router"], rec["shards"])]
    assert recommended["status"] == "pass" and "smallest" in recommended["roles"]
    # hash-mod over 1024 carries these 127 keys, but only because they happen not to collide
    assert rows_of(doc)[("hash-mod", 1024)]["capacity_status"] == "pass"
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failure = next(tc.find("failure") for tc in junit.iter("testcase")
                   if tc.get("name") == "capacity[hash-mod]")
    assert "200 total QPS" in failure.get("message")
    assert "❌" in (tmp_path / "summary.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert html.count("<svg") >= 4 and 'class="limit"' in html and 'class="saturation"' in html
    assert html.count('class="curve"') == 3 and 'class="recommended"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) and "<link" not in html


def test_capacity_plan_recommends_the_smallest_setup_that_carries_the_target(
        tmp_path: Path) -> None:
    proc = run_skewcheck("plan", "configs/capacity.yaml", "--requests", "200000",
                         "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = plan_doc(tmp_path)
    plan, rows = doc["plan"], rows_of(doc)
    configured = rows[("mod", 100)]
    keys = load_scenario(REPO / "configs/capacity.yaml").build_distribution().sample(200_000)
    mod = np.bincount(keys % 100, minlength=100)
    # sequence mostly 0: IDs are multiples of 4096, so the 25 shards ≡ 0 mod 4 take ~4% each
    assert np.count_nonzero(mod >= 0.03 * len(keys)) == 25 and mod[mod >= 0.03 * len(keys)].sum() >= 0.9 * len(keys)
    assert configured["capacity_status"] == "block" and configured["hottest_shard"] == mod.argmax()
    assert configured["saturation_qps"] == pytest.approx(500 * 200_000 / mod.max())
    assert re.search(r"mod over 100 shards cannot carry 20,000 QPS with 30% headroom: at 20,000 "
                     r"QPS the hottest shard \(\d+\) is at 1\d\d% of capacity", proc.stdout)
    rec = plan["recommendation"]
    findings = plan["search"]["findings"]
    assert rec["router"] in ("murmur3", "jump") and rec["exact"]
    assert rec["shards"] == min(f["shards"] for f in findings.values() if f["shards"])
    assert findings["mod"]["shards"] is None  # Snowflake IDs defeat modulo at every count
    assert plan["capacity"]["min_shards"] <= rec["shards"] <= plan["capacity"]["min_shards"] + 8
    # the figures are those of every key routed by the router itself
    loads = np.bincount(make_router(rec["router"], rec["shards"], "int").shard_many(keys),
                        minlength=rec["shards"])
    assert rows[(rec["router"], rec["shards"])]["counts"] == loads.tolist()
    assert rec["saturation_qps"] == pytest.approx(500 * 200_000 / loads.max())
    assert plan["curves"]["mod"]["shards"] == list(range(2, 4097))
    assert plan["reshard"]["from"] == 100 and plan["growth"]["horizon"] == "+90 days"


def test_default_plan_passes() -> None:
    proc = run_skewcheck("plan", "configs/default.yaml", "--requests", "200000")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: PASS (exit 0)" in proc.stdout
    assert "judged on balance only" in proc.stdout  # no target_qps: no capacity verdict


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
    run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "20000",
                  "--out", str(tmp_path))
    saved = plan_doc(tmp_path)["plan"]
    configured = {r["router"]: r["status"] for r in saved["rows"] if r["shards"] == 100}
    assert configured["hash-mod"] == "block"
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("gate:\n  max_shard_share: 1.0\n  stddev_excess_limit: 100\n")
    again = run_skewcheck("gate", str(tmp_path / "result.json"), "--config", str(lenient),
                          "--out", str(tmp_path / "again"))
    assert again.returncode == 1, again.stdout + again.stderr  # capacity still blocks
    assert "[FAIL] capacity: hash-mod over 100 shards cannot carry" in again.stdout
    rows = plan_doc(tmp_path / "again")["plan"]["rows"]
    assert [(r["router"], r["shards"]) for r in rows] == \
        [(r["router"], r["shards"]) for r in saved["rows"]]
    assert {r["balance_status"] for r in rows} == {"pass"}
    assert all(r["status"] == r["capacity_status"] for r in rows)
    strict = tmp_path / "strict.yaml"
    strict.write_text("gate:\n  min_requests: 1000000\n")  # the plan simulated 20,000
    run_skewcheck("gate", str(tmp_path / "result.json"), "--config", str(strict),
                  "--out", str(tmp_path / "s"))
    strict_rows = plan_doc(tmp_path / "s")["plan"]["rows"]
    # too few requests to pass; a block the evidence already proves (all on one shard) stands
    assert {r["balance_status"] for r in strict_rows if r["hottest_share"] <= 0.15} == {"inconclusive"}
    assert all(r["balance_status"] in ("block", "inconclusive") for r in strict_rows)


def test_gate_refuses_a_plan_section_it_cannot_judge_again(tmp_path: Path) -> None:
    run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "5000",
                  "--out", str(tmp_path))
    doc = plan_doc(tmp_path)
    for r in doc["plan"]["rows"]:
        del r["counts"]  # a plan section without the rows' per-shard counts
    (tmp_path / "old.json").write_text(json.dumps(doc))
    proc = run_skewcheck("gate", str(tmp_path / "old.json"), "--config", "configs/default.yaml")
    assert proc.returncode == 2 and "the saved plan section is malformed" in proc.stderr
    assert "plan.rows[0].counts: Field required" in proc.stderr and "Traceback" not in proc.stderr


def test_hostile_keys_reach_no_report_unescaped(tmp_path: Path) -> None:
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        "routing:\n  primary: murmur3\n  key_type: str\n"
        "keys:\n  - kind: hot\n    keys: [\"<script>alert(1)</script>\\x1b[2J\"]\n    share: 0.5\n"
        "    base: {kind: prefixed, prefix: 'u-', inner: {kind: uniform, low: 1, high: 100000}}\n"
        "plan:\n  target_qps: 10000\n  shard_capacity_qps: 500\n  search: {max_shards: 256}\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000", "--out", str(tmp_path / "out"))
    assert proc.returncode in (0, 1, 3), proc.stderr
    plan = proc.stdout[proc.stdout.index("capacity plan:"):proc.stdout.index("verdict:")]
    assert re.search(r"alone carries 4\d\.\d% of requests", plan)  # no shard count carries it
    assert "\x1b" not in plan and "\\x1b[2J" in plan
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    planned = html[html.index("<h2>Capacity plan</h2>"):]
    assert "\x1b" not in planned and "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in planned


def test_the_primary_is_judged_whatever_order_plan_routers_are_listed_in(tmp_path: Path) -> None:
    text = (REPO / "configs/incident-2020.yaml").read_text().replace(
        "routers: [hash-mod, murmur3, jump]", "routers: [murmur3, jump, hash-mod]")
    assert "routers: [murmur3, jump, hash-mod]" in text
    cfg = tmp_path / "incident.yaml"
    cfg.write_text(text)
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000")
    assert proc.returncode == 1
    assert "shard 0 carries 100.0% of requests under hash-mod" in proc.stdout


def test_a_scenario_without_keys_uses_the_default_distribution(tmp_path: Path) -> None:
    cfg = tmp_path / "minimal.yaml"
    cfg.write_text("shards: 64\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "20000")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("plan,message", [
    ("target_qps: 5000", "plan: target_qps needs a per-shard capacity"),
    ("target_qps: 5000\n  shard_capacity_qps: 0",
     "plan.shard_capacity_qps: Input should be greater than 0"),
    ("target_qps: 5000\n  pool: {size: 2, service_ms: 0}",
     "plan.pool.service_ms: Input should be greater than 0"),
    ("shard_weights: [1, -2]", "plan.shard_weights[1]: Input should be greater than 0"),
    ("horizon: '+90 days'", "plan.horizon needs time-based or increasing keys"),
    ("horizon: soon", "plan.horizon: horizon 'soon' is not a duration"),
    ("reshard: {from: 8, to: 8}", "plan.reshard: from and to are both 8 shards"),
])
def test_bad_plan_input_is_one_message_and_exit_2(tmp_path: Path, plan: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"keys: [{{kind: zipf, n: 1000, exponent: 1.1}}]\nplan:\n  {plan}\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "5000")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_plan_from_a_result_without_key_weights_is_exit_2(tmp_path: Path) -> None:
    run_skewcheck("plan", "configs/default.yaml", "--requests", "5000", "--out", str(tmp_path))
    doc = plan_doc(tmp_path)
    doc["top_keys"], doc["key_f2"] = [], None
    (tmp_path / "bare.json").write_text(json.dumps(doc))
    proc = run_skewcheck("plan", "configs/default.yaml", "--from", str(tmp_path / "bare.json"))
    assert proc.returncode == 2 and "holds no key weights to plan from" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad_flag = run_skewcheck("plan", "configs/default.yaml", "--reshard", "100-128")
    assert bad_flag.returncode == 2 and "N:M" in bad_flag.stderr


SMALL = """
seed: 3
shards: 10
gate: {max_shard_share: 0.5}
routing: {primary: mod, compare: [murmur3, jump], key_type: int}
keys: [{kind: strided, start: 1000, step: 10, count: 8}]
plan:
  routers: [mod, murmur3, jump]
  target_qps: 800
  shard_capacity_qps: 300
  headroom: 0.2
  search: {min_shards: 2, max_shards: 64}
"""


def test_a_saved_run_replans_offline_to_the_same_figures(tmp_path: Path) -> None:
    cfg = tmp_path / "small.yaml"
    cfg.write_text(SMALL)
    first = run_skewcheck("plan", str(cfg), "--requests", "40000", "--out", str(tmp_path / "a"))
    assert first.returncode == 1, first.stdout + first.stderr  # 8 IDs ≡ 0 mod 10: one shard
    again = run_skewcheck("plan", str(cfg), "--from", str(tmp_path / "a" / "result.json"),
                          "--out", str(tmp_path / "b"))
    assert again.returncode == 1, again.stdout + again.stderr
    a, b = plan_doc(tmp_path / "a")["plan"], plan_doc(tmp_path / "b")["plan"]
    assert b["key_model"]["source"] == "result" and b["key_model"]["exact"]  # all 8 keys recorded
    def strip(rows: list[dict]) -> list[dict]:
        return [{k: r[k] for k in ("router", "shards", "counts", "saturation_qps")} for r in rows]

    assert strip(b["rows"]) == strip(a["rows"])
    assert b["recommendation"]["router"] == a["recommendation"]["router"]


def test_resharding_what_if_from_the_flag(tmp_path: Path) -> None:
    cfg = tmp_path / "uniform.yaml"
    cfg.write_text("keys: [{kind: uniform, low: 0, high: 10099}]\nrouting: {primary: mod, "
                   "compare: [jump]}\nplan:\n  routers: [mod, jump]\n  search: {max_shards: 256}\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "300000", "--reshard", "100:101",
                         "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resharding 100 → 101 shards" in proc.stdout
    moves = {r["router"]: r for r in plan_doc(tmp_path)["plan"]["reshard"]["routers"]}
    assert moves["mod"]["keys_moved"] == pytest.approx(1 - 100 / 10100, abs=0.002)  # ≈ all
    assert moves["jump"]["keys_moved"] == pytest.approx(1 - 100 / 101, abs=0.003)
    assert moves["jump"]["expected_moved"] == pytest.approx(1 / 101)
    assert 'class="reshard"' in (tmp_path / "report.html").read_text()


def test_growth_shows_the_hot_shard_moving_with_increasing_ids(tmp_path: Path) -> None:
    cfg = tmp_path / "growth.yaml"
    cfg.write_text("shards: 64\ngate: {max_shard_share: 0.5}\nrouting: {primary: mod, compare: "
                   "[murmur3]}\nkeys: [{kind: strided, start: 5000, step: 64, count: 200, "
                   "rate: 0.5}]\nplan:\n  routers: [mod, murmur3]\n  horizon: '+1 day'\n"
                   "  search: {max_shards: 128}\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "50000", "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    growth = plan_doc(tmp_path)["plan"]["growth"]
    mod = next(g for g in growth["rows"] if g["router"] == "mod" and g["shards"] == 64)
    # every ID ≡ 5000 mod 64 today; 43,200 IDs later (5000 + 43200·64) mod 64: the same shard
    assert mod["now"]["hottest_shard"] == 5000 % 64 == mod["then"]["hottest_shard"]
    assert mod["then"]["max_share"] == 1.0 and "stays" in mod["change"]
    assert "43,200 IDs issued since" in proc.stdout


def test_a_gzip_replay_of_real_ids_plans_like_the_generator_that_made_them(tmp_path: Path) -> None:
    scenario = load_scenario(REPO / "configs/capacity.yaml")
    keys = scenario.build_distribution().sample(80_000)
    (tmp_path / "orders.txt.gz").write_bytes(gzip.compress(
        ("order_id\n" + "\n".join(map(str, keys.tolist())) + "\n").encode()))
    text = (REPO / "configs/capacity.yaml").read_text()
    text = text.replace("max_shards: 4096", "max_shards: 512")
    snowflake = text[text.index("  - kind: snowflake"):text.index("\ngate:")]
    replayed = text.replace(snowflake, "  - {kind: replay, path: orders.txt.gz, header: true}\n")
    replayed = replayed.replace("  requests: 1000000", "").replace('  horizon: "+90 days"', "")
    assert "kind: replay" in replayed
    (tmp_path / "replay.yaml").write_text(replayed)
    generated = text.replace("  requests: 1000000", "  requests: 80000")
    (tmp_path / "generated.yaml").write_text(generated.replace('  horizon: "+90 days"', ""))
    got = run_skewcheck("plan", str(tmp_path / "replay.yaml"), "--out", str(tmp_path / "r"))
    want = run_skewcheck("plan", str(tmp_path / "generated.yaml"), "--out", str(tmp_path / "g"))
    assert got.returncode == want.returncode == 1, got.stdout + got.stderr
    r, g = plan_doc(tmp_path / "r")["plan"], plan_doc(tmp_path / "g")["plan"]
    assert r["requests"] == 80_000  # the replay's keys, once
    assert [x["counts"] for x in r["rows"]] == [x["counts"] for x in g["rows"]]
    assert r["recommendation"] == g["recommendation"]


def test_the_shipped_configs_parse_with_their_plan_sections() -> None:
    for path in sorted((REPO / "configs").glob("*.yaml")):
        scenario = load_scenario(path)
        assert scenario.plan.target_qps is None or scenario.plan.capacity_qps
    incident = load_scenario(REPO / "configs/incident-2020.yaml")
    assert incident.plan.capacity_qps == incident.demo.pool_size / incident.demo.service_ms * 1000
    assert parse_scenario("plan: {pool: {size: 4, service_ms: 5}}").plan.capacity_qps == 800
