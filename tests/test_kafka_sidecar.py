"""`skewcheck sidecar` on a real broker, run as users run it: a separate process in a consumer
group, read over HTTP, judged by `skewcheck gate --sidecar`.

- events and frames are counted exactly per router and shard; malformed messages by reason;
- Prometheus names and values, /verdict, /readyz; SIGTERM writes the result and exits 0;
- the gate exits 0/1/3 from a running sidecar (pass, the incident's block, no data);
- an access log with its own key and shard fields is valid input;
- reliability: 10^5 valid + 10^4 malformed messages, the broker stopped and restarted under
  the sidecar, the sidecar killed and restarted (exact with --state; resumes from the committed
  offsets without it);
- two instances in one group on a 4-partition topic add up exactly in the gate.

Every test runs once per Kafka client (`--client kafka-python`, `--client confluent`), with the
same expected counts; two instances of one group also run one of each.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

import numpy as np
import pytest

try:  # registered here too, so this file also runs on its own (see tests/kafka_broker.py)
    from kafka_broker import kafka_broker, unique_name
except ImportError:
    from tests.kafka_broker import kafka_broker, unique_name  # noqa: F401

from skewcheck.routing import make_router
from tests.conftest import KAFKA_CLIENTS, require_kafka_client
from tests.locust_runs import wait_for
from tests.sidecar_runs import Sidecars, metric, produce, skewcheck

kafka = pytest.importorskip("kafka")

pytestmark = [pytest.mark.kafka]

PARTITIONS = 4


@pytest.fixture
def sidecars(tmp_path, client):
    started = Sidecars(tmp_path, client=client)
    yield started
    started.close()


@pytest.fixture
def topic(kafka_broker) -> str:
    name = unique_name("skewcheck-requests")
    kafka_broker.create_topic(name, partitions=PARTITIONS)
    return name


def scenario_file(tmp_path, text: str) -> str:
    path = tmp_path / f"scenario-{random.randrange(10**9)}.yaml"
    path.write_text(text)
    return str(path)


def expected(keys, router: str, shards: int = 100, key_type: str = "int") -> np.ndarray:
    r = make_router(router, shards, key_type)
    batch = np.asarray(keys, dtype=np.int64) if key_type == "int" else list(keys)
    return np.bincount(r.shard_many(batch), minlength=shards)


def frame_counts(state: dict, router: str, shards: int = 100) -> np.ndarray:
    out = np.zeros(shards, dtype=np.int64)
    for shard, count in state["frame"]["routers"][router].items():
        out[int(shard)] = count
    return out


def event(key, **extra) -> bytes:
    return json.dumps({"v": 1, "ts": time.time(), "key": key, "name": "/orders", "ok": True,
                       "latency_ms": 3.5, **extra}).encode()


# --- counting, metrics, verdict --------------------------------------------------------------------

MALFORMED_INT = {  # int-key scenario: message -> reason, each sent `n` times
    b"\x00\x01 not json": "not_json",
    b"[1, 2, 3]": "not_object",
    b'{"v": 2, "key": "5"}': "wrong_version",
    b'{"v": 1, "ts": 1.0, "name": "/orders"}': "missing_field",
    b'{"v": 1, "key": "user-5"}': "key_not_int",
    b'{"v": 1, "key": 5, "ok": "yes"}': "wrong_type",
    b'{"v": 1, "key": 5, "latency_ms": 1e300}': "value_out_of_range",
    b'{"v": 1, "key": 5, "shard": 100}': "shard_out_of_range",
    b'{"v": 1, "kind": "frame", "source": "w", "window_start": 1.0, "window_s": 1.0, "requests": 1, '
    b'"routers": {"redis": {"0": 1}}}': "unknown_router",
    b'{"v": 1, "kind": "frame", "source": "w", "window_start": 1.0, "window_s": 1.0, "requests": 2, '
    b'"routers": {"mod": {"0": 1}, "murmur3": {"0": 1}, "hash-mod": {"0": 1}}}': "inconsistent_frame",
}


def test_events_frames_and_malformed_are_counted_exactly(kafka_broker, topic, sidecars, tmp_path):
    config = scenario_file(tmp_path, "shards: 100\nrouting: {primary: mod, compare: [hash-mod]}\n")
    rng = random.Random(1)
    keys = [rng.randrange(1, 10**9) for _ in range(6000)]
    values = [event(str(k) if i % 2 else k) for i, k in enumerate(keys)]  # decimal text or JSON int
    malformed = [m for m in MALFORMED_INT for _ in range(7)]
    frame_keys = [rng.randrange(1, 10**6) for _ in range(900)]
    frames = [json.dumps(_frame(frame_keys[i::3], ("mod", "hash-mod", "murmur3"))).encode() for i in range(3)]
    stream = values + malformed + frames
    rng.shuffle(stream)
    produce(kafka_broker.bootstrap, topic, stream)
    produce(kafka_broker.bootstrap, topic, [None] * 5, key=b"gone")  # tombstones: no JSON at all

    out = tmp_path / "sidecar-result.json"
    sc = sidecars.start(kafka_broker.bootstrap, topic, unique_name("g"), "--config", config,
                        "--from-beginning", "--result", str(out)).wait_ready()
    total = len(stream) + 5
    state = sc.wait_counted(lambda s: s["consumed"] >= total)
    assert state["consumed"] == total, sc.output[-2000:]
    all_keys = keys + frame_keys
    assert state["frame"]["requests"] == len(all_keys) and state["events"] == len(keys) and state["frames"] == 3
    for router in ("mod", "hash-mod", "murmur3"):
        assert (frame_counts(state, router) == expected(all_keys, router)).all(), router
    reasons = {r: c for r, c in state["malformed"].items() if c}
    assert reasons == {**{r: 7 for r in MALFORMED_INT.values()}, "not_json": 7 + 5}

    text = sc.metrics()
    from test_prometheus_rules import promtool_check_metrics

    assert promtool_check_metrics(text) == []  # the real /metrics of a sidecar passes promtool
    assert metric(text, "skewcheck_events_consumed_total") == total
    assert metric(text, "skewcheck_events_malformed_total", reason="wrong_version") == 7
    assert metric(text, "skewcheck_events_malformed_total", reason="not_json") == 12
    assert metric(text, "skewcheck_requests_total", router="mod", shard="0") == expected(all_keys, "mod")[0]
    assert metric(text, "skewcheck_gate_status") == 0
    assert all(metric(text, "skewcheck_consumer_lag", topic=topic, partition=str(p)) == 0 for p in range(4))
    assert 0 < metric(text, "skewcheck_shard_share_max", router="mod") < 0.05

    verdict = sc.json("/verdict")
    assert verdict["verdict"]["status"] == "pass" and verdict["requests"] == len(all_keys)
    # the events' latency_ms (3.5 ms) and the frames' sketches (7 ms) reach the per-shard latency
    latency = verdict["latency"]
    assert sum(latency["requests"]) == len(all_keys)
    assert all(3.5 * 0.98 <= p <= 7.0 * 1.02 for p in latency["p99"] if p is not None)
    assert min(p for p in latency["p50"] if p is not None) == pytest.approx(3.5, rel=0.02)
    gate = skewcheck("gate", "--sidecar", sc.url, "--out", str(tmp_path / "gate"))
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert json.loads((tmp_path / "gate" / "result.json").read_text())["routers"]["mod"]["counts"] == \
        expected(all_keys, "mod").tolist()

    assert sc.stop() == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "sidecar" and doc["requests"] == len(all_keys)
    assert doc["sidecar"]["malformed"]["wrong_version"] == 7 and doc["sidecar"]["consumed"] == total
    assert "result written to" in sc.output


def _frame(keys, routers) -> dict:
    from skewcheck.tally import Tally

    tally = Tally([make_router(name, 100, "int") for name in routers])
    for k in keys:
        tally.add(k, latency_ms=7.0)
    return tally.drain_frame("worker-x").to_json()


def test_the_gate_blocks_the_incident_and_is_inconclusive_without_data(kafka_broker, topic, sidecars, tmp_path):
    config = scenario_file(tmp_path, "routing: {primary: hash-mod}\n")
    sc = sidecars.start(kafka_broker.bootstrap, topic, unique_name("g"), "--config", config).wait_ready()
    empty = skewcheck("gate", "--sidecar", sc.url)
    assert empty.returncode == 3 and "no requests were counted" in empty.stdout, empty.stdout + empty.stderr

    accounts = [100 * i for i in range(1, 128)]  # the seed incident: every test account ≡ 0 (mod 100)
    produce(kafka_broker.bootstrap, topic, [event(str(accounts[i % 127])) for i in range(5000)])
    sc.wait_counted(lambda s: s["frame"]["requests"] >= 5000)
    blocked = skewcheck("gate", "--sidecar", sc.url)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "shard 0 carries 100.0% of requests under hash-mod" in blocked.stdout
    assert "routing skew" in blocked.stdout
    assert metric(sc.metrics(), "skewcheck_gate_status") == 1


def test_an_access_log_with_its_own_key_field_is_valid_input(kafka_broker, topic, sidecars, tmp_path):
    config = scenario_file(tmp_path, "kafka: {key_field: user_id, shard_field: db_shard}\n")
    ids = list(range(1000, 4000))
    lines = [json.dumps({"@timestamp": "2024-05-01T10:00:00Z", "method": "GET", "path": "/orders",
                         "status": 200, "bytes": 512, "user_id": uid, "db_shard": uid % 100,
                         "headers": {"ua": "curl"}}).encode() for uid in ids]
    lines += [json.dumps({"user_id": 7, "db_shard": 3}).encode()]  # the target put 7 on shard 3: mismatch
    produce(kafka_broker.bootstrap, topic, lines)
    sc = sidecars.start(kafka_broker.bootstrap, topic, unique_name("g"), "--config", config,
                        "--from-beginning").wait_ready()
    state = sc.wait_counted(lambda s: s["consumed"] >= len(lines))
    assert state["frame"]["requests"] == len(ids) + 1 and not any(state["malformed"].values())
    assert (frame_counts(state, "mod") == expected(ids + [7], "mod")).all()
    observed = state["frame"]["observed"]
    assert observed["requests"] == len(ids) + 1 and observed["mismatches"] == 1
    assert state["mismatch_examples"] == [["7", 7, 3]]


# --- reliability -----------------------------------------------------------------------------------

STR_SCENARIO = "routing: {primary: hash-mod, compare: [kafka], key_type: str}\n"


def _malformed_str(rng: random.Random, n: int) -> tuple[list[bytes | None], dict[str, int]]:
    """n malformed messages for a str-key scenario, in known proportions by reason."""
    makers = [
        ("not_json", lambda i: b"\xff" + rng.randbytes(rng.randrange(1, 80))),
        ("not_object", lambda i: rng.choice([b"[]", b"42", b'"key"', b"null", b"[{\"key\": \"a\"}]"])),
        ("wrong_type", lambda i: json.dumps({"key": rng.choice([True, [1], {"a": 1}, 1.5])}).encode()),
        ("wrong_type", lambda i: json.dumps({"key": f"u{i}", "ts": "yesterday"}).encode()),
        ("missing_field", lambda i: json.dumps({"v": 1, "ts": 1.0, "name": "/orders", "ok": True}).encode()),
        ("value_out_of_range", lambda i: json.dumps({"key": f"u{i}", "latency_ms": 10.0 ** rng.randrange(10, 300)}).encode()),
        ("value_out_of_range", lambda i: json.dumps({"key": 2**64 + i}).encode()),
        ("key_too_long", lambda i: json.dumps({"key": "k" * rng.randrange(257, 5000)}).encode()),
        ("wrong_version", lambda i: json.dumps({"v": rng.choice([0, 2, 99]), "key": f"u{i}"}).encode()),
        ("not_json", lambda i: None),
    ]
    values: list[bytes | None] = []
    counts: dict[str, int] = {}
    for i in range(n):
        reason, make = makers[i % len(makers)]
        values.append(make(i))
        counts[reason] = counts.get(reason, 0) + 1
    return values, counts


def test_reliability_mixed_stream_broker_restart_and_sidecar_kill(kafka_broker, topic, sidecars, tmp_path):
    """10^5 valid + 10^4 malformed events; the sidecar is SIGKILLed mid-stream and restarted with its
    state file; the broker is stopped and restarted under it. Exact counts at the end."""
    config = scenario_file(tmp_path, STR_SCENARIO)
    rng = random.Random(2020)
    keys = [f"user-{rng.randrange(50_000)}" for _ in range(100_000)]
    bad, bad_counts = _malformed_str(rng, 10_000)
    stream: list[bytes | None] = [event(k) for k in keys] + bad
    rng.shuffle(stream)
    first, rest = stream[:60_000], stream[60_000:]
    state_file = tmp_path / "sidecar-state.json"
    group = unique_name("reliable")
    args = ("--config", config, "--from-beginning", "--state", str(state_file), "--instance-id", "reliable-0")

    produce(kafka_broker.bootstrap, topic, first[:20_000])
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, *args).wait_ready()
    # keep producing while the sidecar is killed, so the kill lands mid-stream
    feeder = threading.Thread(target=produce, args=(kafka_broker.bootstrap, topic, first[20_000:]))
    feeder.start()
    assert wait_for(lambda: 0 < sc.state()["consumed"], 30)
    sc.kill()
    feeder.join()
    killed_at = json.loads(state_file.read_text())["consumed"] if state_file.exists() else 0
    assert killed_at < len(first)

    sc = sidecars.start(kafka_broker.bootstrap, topic, group, *args).wait_ready()
    assert "resumed" in sc.output or killed_at == 0
    state = sc.wait_counted(lambda s: s["consumed"] >= len(first))
    assert state["consumed"] == len(first), "a message was counted twice or lost across the kill"

    with kafka_broker.stopped():
        time.sleep(1.0)
        assert sc.get("/healthz")[0] == 200 and not sc.exited()
        assert sc.state()["consumed"] == len(first)  # the counts survive the outage
    produce(kafka_broker.bootstrap, topic, rest)
    state = sc.wait_counted(lambda s: s["consumed"] >= len(stream), timeout=90)
    assert state["consumed"] == len(stream), sc.output[-3000:]
    assert state["frame"]["requests"] == len(keys)
    for router in ("hash-mod", "kafka", "murmur3"):
        assert (frame_counts(state, router) == expected(keys, router, key_type="str")).all(), router
    assert {r: c for r, c in state["malformed"].items() if c} == bad_counts
    assert not sc.exited() and sc.get("/readyz")[0] == 200
    assert sc.stop() == 0


def test_without_a_state_file_a_restart_resumes_at_the_committed_offsets(kafka_broker, topic, sidecars, tmp_path):
    """Nothing is re-read (no double counting); what the killed process counted is gone with it."""
    from kafka import KafkaConsumer, TopicPartition

    group = unique_name("stateless")
    values = [event(f"k{i}") for i in range(30_000)]
    produce(kafka_broker.bootstrap, topic, values)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, "--from-beginning", "--config",
                        scenario_file(tmp_path, STR_SCENARIO), "--instance-id", "stateless-0")
    sc.wait_ready()
    sc.wait_counted(lambda s: s["consumed"] >= len(values))
    time.sleep(1.5)  # let a commit follow the last batch
    sc.kill()
    probe = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group, enable_auto_commit=False)
    committed = sum(probe.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS))
    probe.close()
    assert committed == len(values)  # commits follow the tally

    more = [event(f"m{i}") for i in range(5_000)]
    produce(kafka_broker.bootstrap, topic, more)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, "--config", scenario_file(tmp_path, STR_SCENARIO),
                        "--instance-id", "stateless-0")
    sc.wait_ready().wait_counted(lambda s: s["consumed"] >= len(more))
    time.sleep(1.0)
    assert sc.state()["consumed"] == len(more)  # only what came after the committed offsets

    last = [event(f"n{i}") for i in range(2_000)]
    produce(kafka_broker.bootstrap, topic, last)
    sc.wait_counted(lambda s: s["consumed"] >= len(more) + len(last))
    assert sc.stop() == 0  # at once: the shutdown's own commit lands, within its bound
    probe = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group, enable_auto_commit=False)
    committed = sum(probe.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS))
    probe.close()
    assert committed == len(values) + len(more) + len(last)


def test_saved_offsets_the_topic_no_longer_has_are_forgotten_not_obeyed(kafka_broker, topic, sidecars,
                                                                         tmp_path):
    """A state file from a topic that had 8 partitions, or whose partition 0 ran further (the topic
    was recreated since): the restarted sidecar reads every record the topic has now."""
    config = scenario_file(tmp_path, STR_SCENARIO)
    state_file = tmp_path / "sidecar-state.json"
    group = unique_name("recreated")
    args = ("--config", config, "--state", str(state_file), "--instance-id", "recreated-0")
    first = [event(f"a{i}") for i in range(1_000)]
    produce(kafka_broker.bootstrap, topic, first)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, "--from-beginning", *args).wait_ready()
    sc.wait_counted(lambda s: s["consumed"] >= len(first))
    assert sc.stop() == 0
    doc = json.loads(state_file.read_text())
    positions = doc["partitions"]["positions"]
    positions.update({str(p): 5 for p in range(4, 8)})  # partitions the topic no longer has
    positions["0"] = positions.get("0", 0) + 10**6  # beyond partition 0's end
    state_file.write_text(json.dumps(doc))

    second = [event(f"b{i}") for i in range(1_000)]
    produce(kafka_broker.bootstrap, topic, second)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, *args).wait_ready()
    state = sc.wait_counted(lambda s: s["frame"]["requests"] >= len(first) + len(second), timeout=30)
    assert state["frame"]["requests"] == len(first) + len(second), sc.output[-2000:]
    assert set(state["partitions"]["positions"]) <= {"0", "1", "2", "3"}
    assert "forgetting the saved offsets of partition(s) 4, 5, 6, 7" in sc.output


@pytest.mark.parametrize("client, other", [(c, c) for c in KAFKA_CLIENTS] + [KAFKA_CLIENTS])
def test_two_instances_of_one_group_add_up_in_the_gate(kafka_broker, topic, sidecars, tmp_path, other):
    require_kafka_client(other)
    config = scenario_file(tmp_path, "shards: 64\nrouting: {primary: jump, compare: [mod]}\n")
    group = unique_name("pair")
    a = sidecars.start(kafka_broker.bootstrap, topic, group, "--config", config, name="a").wait_ready()
    b = sidecars.start(kafka_broker.bootstrap, topic, group, "--config", config, name="b",
                       client=other).wait_ready()
    assert wait_for(lambda: (len(a.state()["partitions"]["assigned"]), len(b.state()["partitions"]["assigned"]))
                    == (2, 2) and a.get("/readyz")[0] == 200, 30), (a.state()["partitions"], b.state()["partitions"])

    rng = random.Random(64)
    keys = [rng.randrange(10**12) for _ in range(40_000)]
    for p in range(PARTITIONS):  # every partition gets a share, so both instances count something
        produce(kafka_broker.bootstrap, topic, [event(k) for k in keys[p::PARTITIONS]], partition=p)
    assert wait_for(lambda: a.state()["consumed"] + b.state()["consumed"] == len(keys), 60)
    sa, sb = a.state(), b.state()
    assert sorted(sa["partitions"]["assigned"] + sb["partitions"]["assigned"]) == [0, 1, 2, 3]
    assert sa["consumed"] > 0 and sb["consumed"] > 0

    both = skewcheck("gate", "--sidecar", a.url, "--sidecar", b.url, "--out", str(tmp_path / "both"))
    assert both.returncode == 0, both.stdout + both.stderr
    merged = json.loads((tmp_path / "both" / "result.json").read_text())
    assert merged["requests"] == len(keys)
    assert merged["routers"]["jump"]["counts"] == expected(keys, "jump", 64).tolist()
    assert merged["routers"]["mod"]["counts"] == expected(keys, "mod", 64).tolist()
    assert "all 4 partitions" in both.stdout and "the 2 sidecars judged" in both.stdout

    alone = skewcheck("gate", "--sidecar", a.url)
    assert alone.returncode == 3, alone.stdout + alone.stderr
    assert "kafka_coverage: partition(s)" in alone.stdout


# --- bad input at start ----------------------------------------------------------------------------


def test_unknown_topic_exits_2_and_is_not_created(kafka_broker, client):
    missing = unique_name("no-such-topic")
    run = skewcheck("sidecar", "--bootstrap-servers", kafka_broker.bootstrap, "--topic", missing,
                    "--metrics-port", "0", "--connect-timeout", "2", "--client", client)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"topic '{missing}' does not exist on {kafka_broker.bootstrap}" in run.stderr
    admin = kafka_broker.admin()
    try:
        assert missing not in admin.list_topics()
    finally:
        admin.close()


def test_sasl_against_a_plaintext_listener_exits_2(kafka_broker, tmp_path, client):
    config = scenario_file(tmp_path, "kafka: {security_protocol: SASL_PLAINTEXT, sasl_mechanism: PLAIN}\n")
    env = {**os.environ, "SKEWCHECK_KAFKA_USERNAME": "alice", "SKEWCHECK_KAFKA_PASSWORD": "secret"}
    import subprocess
    import sys

    from tests.conftest import REPO

    run = subprocess.run([sys.executable, "-m", "skewcheck", "sidecar", "--config", config, "--bootstrap-servers",
                          kafka_broker.bootstrap, "--metrics-port", "0", "--connect-timeout", "3",
                          "--client", client],
                         cwd=REPO, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "refused the connection: " in run.stderr, run.stderr
    said = run.stderr.split("refused the connection: ", 1)[1].lower()  # the client's own words
    assert "sasl" in said or "handshake" in said, run.stderr
    assert "secret" not in run.stdout + run.stderr
