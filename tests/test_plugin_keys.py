"""The plugin's key supply and worker frames, in-process (the Locust runs are in test_locust_harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skewcheck import plugin
from skewcheck.config import parse_scenario
from skewcheck.keys import ReplayExhausted, ends
from skewcheck.routing import make_router
from skewcheck.tally import Tally


def _run(yaml: str) -> plugin.SkewRun:
    scenario = parse_scenario(yaml)
    routers = [make_router(n, scenario.shards, scenario.routing.key_type) for n in scenario.routing.router_names]
    return plugin.SkewRun(None, scenario, Tally(routers), scenario.build_distribution(), "worker",
                          keys_end=ends(list(scenario.keys)))


def test_keys_come_in_blocks_and_follow_the_scenario() -> None:
    run = _run("shards: 100\nkeys: [{kind: strided, start: 20200000, step: 100, count: 127}]\n")
    keys = [run.next_key() for _ in range(3000)]  # several blocks
    assert all((k - 20200000) % 100 == 0 and 20200000 <= k < 20200000 + 127 * 100 for k in keys)
    assert len(set(keys)) == 127 and not run.keys_end


def test_a_replay_that_ends_hands_out_every_key_to_the_last(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{1000 + i}\n" for i in range(10)))
    run = _run(f"shards: 100\nkeys: [{{kind: replay, path: {ids}, loop: false}}]\n")
    assert run.keys_end
    assert [run.next_key() for _ in range(10)] == list(range(1000, 1010))
    with pytest.raises(ReplayExhausted, match="after 10 keys"):
        run.next_key()


def test_a_worker_reports_keys_no_router_could_take_even_when_nothing_else_counted() -> None:
    run = _run("shards: 100\n")
    run.tally.add("not-a-number", ts=1.0)
    frame = plugin._drain(run, "w1")
    assert frame is not None and frame["requests"] == 0 and frame["unroutable"] == 1
    assert plugin._drain(run, "w1") is None  # nothing new since
