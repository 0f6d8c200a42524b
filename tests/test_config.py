"""Scenario files: shipped configs load; bad ones give one message naming the field and line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, run_skewcheck

from skewcheck.config import load_scenario, parse_scenario
from skewcheck.errors import UsageError

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_the_four_worked_scenarios_are_shipped() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"default", "incident-2020", "ci-gate", "capacity"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load_and_draw_keys(path: Path) -> None:
    scenario = load_scenario(path)
    keys = scenario.build_distribution().sample(1000)
    assert len(keys) == 1000
    assert scenario.routing.router_names[0] == scenario.routing.primary
    assert "murmur3" in scenario.routing.router_names


def test_incident_config_is_the_seed_incident() -> None:
    s = load_scenario(REPO / "configs/incident-2020.yaml")
    assert (s.shards, s.routing.primary, s.routing.key_type) == (100, "hash-mod", "int")
    keys = set(s.build_distribution().sample(20_000).tolist())
    assert keys == {20200000 + 100 * j for j in range(127)}


def test_defaults_are_sensible_without_a_file() -> None:
    s = load_scenario(None)
    assert s.shards == 100 and s.gate.max_shard_share == 0.15 and s.gate.min_requests >= 1000
    assert len(set(s.build_distribution().sample(1000).tolist())) > 990  # distinct random IDs


@pytest.mark.parametrize("text,expect", [
    ("shards: 0\n", "shards"),
    ("routing:\n  primary: modulo\n", "unknown router 'modulo'"),
    ("shards: 10\nrouting:\n  key_type: uuid\n", "routing.key_type"),
    ("keys:\n  - kind: strided\n    start: 1\n    step: 100\n    count: -3\n", "count"),
    ("keys:\n  - kind: gaussian\n", "keys[0]"),
    ("gate:\n  max_shard_share: 1.5\n", "gate.max_shard_share"),
    ("shards: 4\n", "raise the limit or the shard count"),
    ("routing:\n  primary: mod\n  key_type: str\n", "mod needs int keys"),
    ("shards: [1, 2\n", "invalid YAML"),
    ("- just\n- a list\n", "a scenario is a YAML mapping"),
    ("shardz: 10\n", "shardz"),
])
def test_bad_scenarios_name_the_field(text: str, expect: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_scenario(text, "bad.yaml")
    assert expect in str(exc.value)
    assert str(exc.value).startswith("bad.yaml")


def test_errors_carry_the_line_number() -> None:
    text = "name: x\nshards: 100\ngate:\n  min_requests: 10\n  max_shard_share: 2\n"
    with pytest.raises(UsageError, match=r"bad.yaml:5: gate.max_shard_share"):
        parse_scenario(text, "bad.yaml")


def test_cli_reports_a_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing:\n  primary: nope\n")
    proc = run_skewcheck("plan", str(bad), "--requests", "100")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown router 'nope'" in proc.stderr
    assert f"{bad}:2" in proc.stderr
    missing = run_skewcheck("plan", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read config" in missing.stderr and "Traceback" not in missing.stderr


def test_replay_paths_are_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("7\n8\n9\n")
    cfg = tmp_path / "replay.yaml"
    cfg.write_text("keys:\n  - kind: replay\n    path: ids.txt\n")
    keys = load_scenario(cfg).build_distribution().sample(6).tolist()
    assert sorted(set(keys)) == [7, 8, 9]
