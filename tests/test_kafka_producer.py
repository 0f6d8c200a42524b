"""The Locust side: real headless Locust runs publishing to a real broker, read by a real sidecar.

- frames from two workers add up, in the sidecar, to exactly what the Locust master counted;
- `produce: events` publishes one event per request, observed shards included;
- a broker that cannot be reached costs messages (counted in the verdict), never the load or
  the run's own verdict;
- the outbox never blocks a greenlet, and its bound holds.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

try:
    from kafka_broker import kafka_broker, unique_name
except ImportError:
    from tests.kafka_broker import kafka_broker, unique_name  # noqa: F401

from tests.conftest import REPO
from tests.locust_runs import free_port, run_locust
from tests.sidecar_runs import Sidecars

kafka = pytest.importorskip("kafka")
if importlib.util.find_spec("locust") is None:  # never import it here: it monkey-patches this process
    pytest.skip("locust is not installed", allow_module_level=True)

HEADLESS = ("--headless", "-u", "20", "-r", "20")


@pytest.fixture
def sidecars(tmp_path):
    started = Sidecars(tmp_path)
    yield started
    started.close()


def scenario(tmp_path, topic: str, produce: str, extra: str = "") -> str:
    path = tmp_path / f"scenario-{produce}.yaml"
    path.write_text(f"kafka:\n  topic: {topic}\n  produce: {produce}\n  frame_interval_s: 0.5\n{extra}")
    return str(path)


def counts_of(state: dict, router: str, shards: int = 100) -> list[int]:
    out = [0] * shards
    for shard, count in state["frame"]["routers"][router].items():
        out[int(shard)] = count
    return out


@pytest.mark.kafka
def test_worker_frames_add_up_to_the_masters_counts(kafka_broker, sidecars, tmp_path):
    topic = unique_name("frames")
    kafka_broker.create_topic(topic, partitions=4)
    sc = sidecars.start(kafka_broker.bootstrap, topic, unique_name("g"), "--from-beginning").wait_ready()
    port = str(free_port())  # not Locust's default 5557, which another run on this machine may hold
    run = run_locust(*HEADLESS, "-t", "6s", "--processes", "2", "--master-bind-port", port, "--master-port", port,
                     "--skew-min-requests", "100",
                     "--skew-config", scenario(tmp_path, topic, "frames"),
                     "--skew-kafka-bootstrap", kafka_broker.bootstrap, report_dir=tmp_path / "report", timeout=120)
    assert run.returncode == 0, run.output[-3000:]
    doc = run.result()
    n = doc["requests"]
    assert n > 100
    state = sc.wait_counted(lambda s: s["frame"]["requests"] >= n, timeout=30)
    assert state["frame"]["requests"] == n, (state["consumed"], state["partitions"], sc.output[-2000:])
    assert counts_of(state, "mod") == doc["routers"]["mod"]["counts"]
    assert counts_of(state, "murmur3") == doc["routers"]["murmur3"]["counts"]
    assert not any(state["malformed"].values())
    assert state["frames"] >= 4  # from both workers, about two a second each
    check = next(c for c in doc["verdict"]["checks"] if c["rule"] == "kafka_producer")
    assert check["status"] == "pass" and "none dropped" in check["message"], check
    assert check["details"]["processes"] == 2 and check["details"]["delivered_requests"] == n
    assert doc["producer"]["mode"] == "frames" and doc["producer"]["dropped"] == 0


@pytest.mark.kafka
def test_events_mode_publishes_one_event_per_request(kafka_broker, sidecars, tmp_path):
    topic = unique_name("events")
    kafka_broker.create_topic(topic, partitions=4)
    sc = sidecars.start(kafka_broker.bootstrap, topic, unique_name("g"), "--from-beginning").wait_ready()
    run = run_locust(*HEADLESS, "-t", "5s", "--skew-min-requests", "100",
                     "--skew-config", scenario(tmp_path, topic, "events"),
                     "--skew-kafka-bootstrap", kafka_broker.bootstrap, report_dir=tmp_path / "report")
    assert run.returncode == 0, run.output[-3000:]
    doc = run.result()
    n = doc["requests"]
    state = sc.wait_counted(lambda s: s["frame"]["requests"] >= n, timeout=30)
    assert state["frame"]["requests"] == n, (state["consumed"], state["malformed"], state["partitions"], sc.output[-2000:])
    assert state["events"] == n and state["frames"] == 0
    assert counts_of(state, "mod") == doc["routers"]["mod"]["counts"]
    # the demo target answers X-Shard: the events carry it and the sidecar checks it too
    assert state["frame"]["observed"]["requests"] == doc["observed"]["requests"] == n
    assert state["frame"]["observed"]["mismatches"] == 0
    assert "published" in run.stdout and "none dropped" in run.stdout


def test_an_unreachable_broker_never_costs_the_load_or_the_verdict(tmp_path):
    run = run_locust(*HEADLESS, "-t", "5s", "--skew-min-requests", "100",
                     "--skew-config", scenario(tmp_path, "skewcheck.requests", "events"),
                     "--skew-kafka-bootstrap", f"127.0.0.1:{free_port()}", report_dir=tmp_path / "report")
    assert run.returncode == 0, run.output[-3000:]  # the run's own verdict: a pass
    doc = run.result()
    assert doc["requests"] > 100 and doc["locust"]["failures"] == 0
    check = next(c for c in doc["verdict"]["checks"] if c["rule"] == "kafka_producer")
    assert check["status"] == "pass"
    assert check["details"]["dropped_requests"] == doc["requests"] and check["details"]["delivered"] == 0
    assert "dropped" in check["message"] and "this verdict is not" in check["message"]
    assert "Traceback" not in run.output


def test_bad_kafka_settings_stop_the_run_before_any_load(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text("kafka: {produce: frames, security_protocol: SASL_SSL, sasl_mechanism: PLAIN}\n")
    run = run_locust(*HEADLESS, "-t", "5s", "--skew-config", str(path), timeout=60,
                     env={"SKEWCHECK_KAFKA_USERNAME": "", "SKEWCHECK_KAFKA_PASSWORD": ""})
    assert run.returncode == 2, run.output[-2000:]
    assert "SASL credentials missing" in run.stderr and "Traceback" not in run.output
    assert "started the embedded demo target" not in run.output


OUTBOX_UNDER_GEVENT = r"""
from gevent import monkey; monkey.patch_all()
import gevent, json, sys, time
from skewcheck.kafka import producer as kp
from skewcheck.config import KafkaConfig

outbox = kp.Outbox(kp.new_producer(KafkaConfig(bootstrap_servers=sys.argv[1], topic="t"), "probe"), "t")
gaps, puts = [0.0], [0.0]
def ticker():
    last = time.perf_counter()
    while True:
        gevent.sleep(0.002)
        now = time.perf_counter(); gaps[0] = max(gaps[0], now - last); last = now
def requests():
    for i in range(25_000):
        t = time.perf_counter()
        outbox.put(b'{"v":1,"key":"%d"}' % i, None, 1)
        puts[0] = max(puts[0], time.perf_counter() - t)
        if i % 100 == 0:
            gevent.sleep(0)
gevent.spawn(ticker)
started = time.perf_counter()
gevent.spawn(requests).join()
elapsed = time.perf_counter() - started
outbox.close(0.5)
c = outbox.counts
print(json.dumps({"max_gap_s": gaps[0], "max_put_s": puts[0], "elapsed_s": elapsed, "messages": c.messages,
                  "delivered": c.delivered, "dropped": c.dropped}))
"""


def test_the_outbox_never_blocks_a_greenlet_and_stays_bounded():
    proc = subprocess.run([sys.executable, "-c", OUTBOX_UNDER_GEVENT, f"127.0.0.1:{free_port()}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["messages"] == 25_000 and result["delivered"] == 0
    assert result["dropped"] == 25_000  # 10,000 held (the bound), the rest refused; all lost at close
    assert result["max_put_s"] < 0.05, result  # a request never waits on Kafka
    assert result["max_gap_s"] < 0.3, result  # nor does any other greenlet, for long
    assert result["elapsed_s"] < 10, result
