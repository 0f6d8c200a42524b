"""Hot shards over time: bounded heatmap columns, the `gate.sustained_s` rule, and the heatmap
section of a result, re-judged by `skewcheck gate` as users run it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_skewcheck

from skewcheck.gate import GateConfig, judge
from skewcheck.report.result_json import write_json
from skewcheck.result import build_result
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import Tally
from skewcheck.timeline import COLUMNS, Timeline


def test_a_long_run_is_downsampled_into_a_bounded_number_of_columns() -> None:
    timeline = Timeline(4, column_s=1.0)
    for second in range(1000):
        timeline.add(5000.0 + second, np.array([1, 2, 3, second]))
    counts = timeline.used_counts()
    assert len(counts) <= COLUMNS and timeline.column_s == 16.0  # 1000 s in 16 s columns: 63 of them
    assert counts.sum(axis=0).tolist() == [1000, 2000, 3000, sum(range(1000))]  # nothing lost
    assert counts[0].tolist() == [16, 32, 48, sum(range(16))]


def _run(hot_seconds: range, seconds: int = 30, shards: int = 100) -> Tally:
    """Two requests a millisecond over 100 shards under murmur3; shard `hot` takes half the
    traffic during `hot_seconds` (a hot spot that comes and goes)."""
    rng = np.random.default_rng(4)
    router = make_router("murmur3", shards, "int")
    tally = Tally([router])
    keys = rng.integers(1, 10**9, size=200_000)
    hot_key = next(int(k) for k in keys if router.shard(int(k)) == 7)
    for second in range(seconds):
        batch = keys[(second * 2000) % 190_000:][:2000].copy()
        if second in hot_seconds:
            batch[::2] = hot_key
        tally.add_many(batch, ts=1000.0 + second + 0.5)
    tally.add_many(keys[:10], ts=1000.0 + seconds + 0.5)  # closes the last second's slot
    return tally


def test_a_shard_hot_for_eight_seconds_blocks_a_five_second_rule_and_not_a_ten_second_one() -> None:
    summary = summarize(_run(range(10, 18)))
    five = {c.rule: c for c in judge(summary, GateConfig(sustained_s=5)).verdict.checks}["sustained_share"]
    assert five.status == "block" and five.shard == 7 and five.value == 8.0
    assert "from 10 s into the run" in five.message
    ten = {c.rule: c for c in judge(summary, GateConfig(sustained_s=10)).verdict.checks}["sustained_share"]
    assert ten.status == "pass" and "shard 7, 8 s" in ten.message
    # the whole-run share stays under the limit: only the rule over time sees the hot spot
    assert summary.primary_summary.max_share < 0.15


def test_balanced_traffic_never_trips_the_sustained_rule() -> None:
    summary = summarize(_run(range(0)))
    check = {c.rule: c for c in judge(summary, GateConfig(sustained_s=1)).verdict.checks}["sustained_share"]
    assert check.status == "pass" and check.shard is None


def _gate_sustained(tmp_path: Path, result: Path):
    """`skewcheck gate RESULT` with the sustained rule on (5 s)."""
    config = tmp_path / "gate.yaml"
    config.write_text("shards: 100\nrouting: {primary: murmur3}\ngate: {sustained_s: 5, min_requests: 100}\n")
    return run_skewcheck("gate", str(result), "--config", str(config))


def test_without_a_time_series_the_sustained_rule_is_inconclusive(tmp_path: Path) -> None:
    summary = summarize(_run(range(10, 18)))
    doc = build_result("run", summary, judge(summary))
    doc["heatmap"] = None
    path = write_json(doc, tmp_path / "result.json")
    proc = _gate_sustained(tmp_path, path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "sustained_share: no per-shard counts over time" in proc.stdout


def test_the_saved_heatmap_is_re_judged_by_skewcheck_gate(tmp_path: Path) -> None:
    summary = summarize(_run(range(10, 18)))
    doc = build_result("run", summary, judge(summary))
    heat = doc["heatmap"]
    assert heat["columns"] == 31 and heat["column_s"] == 1.0 and len(heat["rows"]) == 100
    row7 = next(r for r in heat["rows"] if r["shard"] == 7)
    assert row7["counts"][12] > 1000 and row7["counts"][2] < 100
    path = write_json(doc, tmp_path / "result.json")
    proc = _gate_sustained(tmp_path, path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "shard 7 stayed above the 15% limit for 8 s" in proc.stdout
    proc = run_skewcheck("gate", str(path))  # the rule is off by default: the run passes
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("damage", [
    lambda h: h["rows"][0].update(shard=100),
    lambda h: h["rows"][0]["counts"].append(1),
    lambda h: h.update(column_s=-1),
])
def test_a_damaged_heatmap_section_is_a_usage_error(tmp_path: Path, damage) -> None:
    summary = summarize(_run(range(0), seconds=3))
    doc = json.loads(json.dumps(build_result("run", summary, judge(summary)), default=float))
    damage(doc["heatmap"])
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    proc = run_skewcheck("gate", str(path))
    assert proc.returncode == 2 and "heatmap" in proc.stderr and "Traceback" not in proc.stderr
