"""The sidecar's state without a broker: counting decoded batches, the /state document, adding
several instances up, the state file, the HTTP endpoints, and the gate reading sidecars."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from skewcheck.config import KafkaConfig, parse_scenario
from skewcheck.errors import InconclusiveError, UsageError
from skewcheck.routing import make_router
from skewcheck.sidecar import checkpoint
from skewcheck.sidecar.remote import fetch_state, state_url
from skewcheck.sidecar.server import SidecarServer
from skewcheck.sidecar.state import SidecarState, coverage_check, merge_states, parse_state
from skewcheck.summary import summarize
from tests.sidecar_runs import metric, skewcheck

SCENARIO = parse_scenario("shards: 100\nrouting: {primary: mod, compare: [hash-mod]}\n")


def events(keys, shard=None) -> list[bytes]:
    return [json.dumps({"v": 1, "ts": 1.0, "key": str(k), **({} if shard is None else {"shard": shard(k)})}).encode()
            for k in keys]


def fed(keys, instance: str, partitions=(0,), clock=lambda: 1000.0, kafka: KafkaConfig | None = None) -> SidecarState:
    state = SidecarState(SCENARIO, kafka or KafkaConfig(topic="t"), instance=instance, clock=clock)
    batch = state.decoder.decode(events(keys, shard=lambda k: k % 100))
    state.apply(batch, {p: 10 + p for p in partitions}, clock())
    state.assigned = frozenset(partitions)
    state.partition_count = 4
    return state


def expected_counts(keys, router: str) -> np.ndarray:
    r = make_router(router, 100, "int")
    return np.bincount(r.shard_many(np.asarray(keys, dtype=np.int64)), minlength=100)


def test_batches_are_routed_under_every_router_with_observed_shards():
    keys = list(range(0, 30_000, 3))
    state = fed(keys, "a")
    assert state.tally.requests == len(keys) and state.events == len(keys) and state.consumed == len(keys)
    counts = state.tally.counts()
    for i, name in enumerate(state.tally.router_names):
        assert (counts[i] == expected_counts(keys, name)).all(), name
    assert state.tally.observed_requests == len(keys) and state.tally.observed_mismatches == 0


def test_observed_shards_that_disagree_are_examples():
    state = SidecarState(SCENARIO, KafkaConfig(), instance="a", clock=lambda: 5.0)
    state.apply(state.decoder.decode(events([7, 8, 9], shard=lambda k: 0)), {0: 3}, 5.0)
    assert state.tally.observed_mismatches == 3
    assert state.tally.mismatch_examples[:3] == [(7, 7, 0), (8, 8, 0), (9, 9, 0)]


def test_mismatch_examples_survive_a_restart_once(tmp_path):
    state = SidecarState(SCENARIO, KafkaConfig(topic="t"), instance="a", clock=lambda: 5.0)
    state.apply(state.decoder.decode(events([7, 8, 9], shard=lambda k: 0)), {0: 3}, 5.0)
    path = tmp_path / "state.json"
    checkpoint.save(path, state.document())
    again = SidecarState(SCENARIO, KafkaConfig(topic="t"), instance="a", clock=lambda: 6.0)
    again.restore(checkpoint.load(path), str(path))
    assert again.tally.mismatch_examples == state.tally.mismatch_examples == [(7, 7, 0), (8, 8, 0), (9, 9, 0)]
    merged = merge_states([parse_state(state.document(), "a")], ["a"])
    assert merged.mismatch_examples == [(7, 7, 0), (8, 8, 0), (9, 9, 0)]


def test_instances_add_up_exactly_to_one_tally():
    keys = [int(k) for k in np.random.default_rng(7).zipf(1.3, 20_000) % 10**9]
    a, b = fed(keys[:12_000], "a", (0, 1)), fed(keys[12_000:], "b", (2, 3))
    docs = [parse_state(json.loads(json.dumps(s.document())), s.instance) for s in (a, b)]
    merged = merge_states(docs, ["http://a", "http://b"])
    whole = fed(keys, "whole")
    assert merged.requests == whole.tally.requests == len(keys)
    assert (merged.counts() == whole.tally.counts()).all()
    assert (merged.key_buckets == whole.tally.key_buckets).all()  # so the noise floor matches too
    assert (merged.observed == whole.tally.observed).all()
    assert summarize(merged).key_f2 == pytest.approx(summarize(whole.tally).key_f2)
    top = dict(summarize(merged).top_keys)
    assert top and all(c <= keys.count(k) for k, c in top.items())


def test_instances_of_different_scenarios_or_groups_are_not_added():
    a = fed([1, 2], "a")
    other = SidecarState(parse_scenario("shards: 50\n"), KafkaConfig(topic="t"), instance="b")
    docs = [parse_state(a.document(), "a"), parse_state(other.document(), "b")]
    with pytest.raises(UsageError, match="different scenarios"):
        merge_states(docs, ["A", "B"])
    c = fed([1], "c", kafka=KafkaConfig(topic="t", group_id="another"))
    with pytest.raises(UsageError, match="count messages twice"):
        merge_states([docs[0], parse_state(c.document(), "c")], ["A", "C"])
    with pytest.raises(UsageError, match="given twice"):
        merge_states([docs[0], docs[0]], ["A", "A2"])


def test_coverage_fails_closed_on_a_partial_view():
    assert coverage_check("t", 4, [[0, 1], [2, 3]], {}, instances=2).status == "pass"
    partial = coverage_check("t", 4, [[0, 1]], {"0": 5}, instances=1)
    assert partial.status == "inconclusive" and "partition(s) 2, 3 of t" in partial.message
    assert coverage_check("t", None, [[]], {}, instances=1).status == "inconclusive"


def test_the_state_file_round_trips(tmp_path):
    keys = list(range(5000))
    a = fed(keys, "a", (0, 1, 2, 3))
    a.malformed["not_json"] = 3
    path = tmp_path / "state.json"
    checkpoint.save(path, a.document())
    b = SidecarState(SCENARIO, KafkaConfig(topic="t"), instance="b", clock=lambda: 2000.0)
    b.restore(checkpoint.load(path), str(path))
    assert b.tally.requests == 5000 and (b.tally.counts() == a.tally.counts()).all()
    assert b.positions == {0: 10, 1: 11, 2: 12, 3: 13} and b.malformed["not_json"] == 3
    assert b.tally.first_ts == a.tally.first_ts
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_the_state_of_a_sidecar_running_for_days_restores(tmp_path):
    now = [1000.0]
    a = fed(list(range(3000)), "a", clock=lambda: now[0])
    now[0] += 3 * 86_400  # three days later, with the counts from the first second still held
    path = tmp_path / "state.json"
    checkpoint.save(path, a.document())
    b = SidecarState(SCENARIO, KafkaConfig(topic="t"), instance="b", clock=lambda: now[0])
    b.restore(checkpoint.load(path), str(path))
    assert b.tally.requests == 3000 and b.tally.first_ts == 1000.0


def test_a_state_file_of_another_scenario_or_topic_is_refused(tmp_path):
    path = tmp_path / "state.json"
    checkpoint.save(path, fed([1], "a").document())
    other = SidecarState(parse_scenario("shards: 10\n"), KafkaConfig(topic="t"), instance="x")
    with pytest.raises(UsageError, match="not this scenario"):
        other.restore(checkpoint.load(path), str(path))
    moved = SidecarState(SCENARIO, KafkaConfig(topic="elsewhere"), instance="x")
    with pytest.raises(UsageError, match="offsets of topic 't'"):
        moved.restore(checkpoint.load(path), str(path))
    path.write_text("{not json")
    with pytest.raises(UsageError, match="not a skewcheck state"):
        checkpoint.load(path)
    assert checkpoint.load(tmp_path / "missing.json") is None


# --- HTTP -----------------------------------------------------------------------------------------


@pytest.fixture
def served():
    state = fed(list(range(0, 40_000, 7)), "served", (0, 1, 2, 3), clock=lambda: 1000.0)
    state.malformed["not_json"] = 2
    state.lag = {0: 0, 1: 5}
    server = SidecarServer("127.0.0.1", 0, state).start()
    yield server, state
    server.close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_metrics_endpoint_exports_the_design_names(served):
    server, state = served
    status, body = get(server.url + "/metrics")
    text = body.decode()
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"skewcheck_requests", "skewcheck_shard_qps", "skewcheck_shard_share", "skewcheck_shard_share_max",
            "skewcheck_shard_qps_stddev_ratio", "skewcheck_shard_qps_stddev_ratio_floor", "skewcheck_gate_status",
            "skewcheck_events_consumed", "skewcheck_events_malformed", "skewcheck_consumer_lag"} <= names
    n = state.tally.requests
    assert metric(text, "skewcheck_events_consumed_total") == n
    assert metric(text, "skewcheck_events_malformed_total", reason="not_json") == 2
    assert metric(text, "skewcheck_events_malformed_total", reason="key_too_long") == 0  # every reason exported
    assert metric(text, "skewcheck_consumer_lag", topic="t", partition="1") == 5
    assert sum(metric(text, "skewcheck_requests_total", router="mod", shard=str(s)) for s in range(100)) == n
    assert metric(text, "skewcheck_gate_status") == 0


def test_verdict_state_and_probes(served):
    server, state = served
    status, body = get(server.url + "/verdict")
    doc = json.loads(body)
    assert status == 200 and doc["schema"] == "skewcheck.result/1" and doc["kind"] == "sidecar"
    assert doc["verdict"]["status"] == "pass" and doc["requests"] == state.tally.requests
    assert {c["rule"] for c in doc["verdict"]["checks"]} >= {"max_shard_share", "kafka_coverage"}
    assert json.loads(get(server.url + "/state")[1])["schema"] == "skewcheck.sidecar-state/1"
    assert get(server.url + "/healthz")[0] == 200
    assert get(server.url + "/readyz")[0] == 503  # no consumer has polled yet
    state.ready = True
    assert get(server.url + "/readyz")[0] == 200
    assert get(server.url + "/nope")[0] == 404


def test_the_gate_judges_a_served_state(served):
    server, state = served
    assert fetch_state(server.url).frame["requests"] == state.tally.requests
    assert state_url(server.url + "/verdict") == server.url + "/state"
    run = skewcheck("gate", "--sidecar", server.url + "/")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "kafka_coverage: all 4 partitions of t are consumed" in run.stdout


class _NotASidecar(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>hello</html>" if self.path == "/state" else b"missing"
        self.send_response(200 if self.path == "/state" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def not_a_sidecar():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotASidecar)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_gate_fails_closed_on_what_is_not_a_sidecar(not_a_sidecar):
    with pytest.raises(InconclusiveError, match="not a skewcheck sidecar state"):
        fetch_state(not_a_sidecar)
    run = skewcheck("gate", "--sidecar", not_a_sidecar)
    assert run.returncode == 3 and "not a skewcheck sidecar state" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_the_gate_with_an_unreachable_sidecar_is_one_line_and_exit_3():
    from tests.locust_runs import free_port

    run = skewcheck("gate", "--sidecar", f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stderr.startswith("skewcheck gate: cannot reach the sidecar at http://127.0.0.1:")
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--sidecar", "ftp://x:1"], "is not an http(s) URL"),
    (["result.json", "--sidecar", "http://127.0.0.1:1"], "not both"),
    ([], "give a result file"),
])
def test_gate_usage_errors_exit_2(args, message):
    run = skewcheck("gate", *args)
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_the_gate_rejudges_a_sidecar_result_file(served, tmp_path):
    server, _state = served
    path = tmp_path / "result.json"
    path.write_text(get(server.url + "/verdict")[1].decode())
    run = skewcheck("gate", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "kafka_coverage" in run.stdout  # carried as recorded


@pytest.mark.promtool
def test_the_sidecar_metrics_pass_promtool(served):
    from test_prometheus_rules import promtool_check_metrics

    server, _ = served
    assert promtool_check_metrics(get(server.url + "/metrics")[1].decode()) == []
