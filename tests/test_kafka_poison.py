"""A poison message on a real broker: a frame that looks valid until something reads it deeply
(`observed.examples` of the wrong shape) is counted as malformed and skipped; the sidecar keeps
consuming, its state file never holds half a batch, and a restart adds no phantom requests."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest

try:  # registered here too, so this file also runs on its own (see tests/kafka_broker.py)
    from kafka_broker import kafka_broker, unique_name
except ImportError:
    from tests.kafka_broker import kafka_broker, unique_name  # noqa: F401

from skewcheck.routing import make_router
from skewcheck.tally import Tally
from tests.sidecar_runs import Sidecars, produce

pytest.importorskip("kafka")

pytestmark = [pytest.mark.kafka]

ROUTERS = ("mod", "murmur3")


@pytest.fixture
def sidecars(tmp_path, client):
    started = Sidecars(tmp_path, client=client)
    yield started
    started.close()


def _event(key: int) -> bytes:
    return json.dumps({"v": 1, "ts": time.time(), "key": key, "ok": True}).encode()


def _frame(keys: list[int], source: str) -> dict:
    tally = Tally([make_router(name, 100, "int") for name in ROUTERS])
    for key in keys:
        tally.add(key, observed_shard=1 if key % 7 == 0 else key % 100)  # some disagree: examples
    return tally.drain_frame(source).to_json()


def _expected(keys: list[int], router: str) -> np.ndarray:
    return np.bincount(make_router(router, 100, "int").shard_many(np.array(keys)), minlength=100)


def _counts(state: dict, router: str) -> np.ndarray:
    out = np.zeros(100, dtype=np.int64)
    for shard, count in state["frame"]["routers"][router].items():
        out[int(shard)] = count
    return out


def test_a_poison_frame_is_skipped_and_a_restart_counts_exactly(kafka_broker, sidecars, tmp_path):
    topic = unique_name("poison")
    kafka_broker.create_topic(topic, partitions=2)
    config = tmp_path / "scenario.yaml"
    config.write_text("routing: {primary: mod, compare: [murmur3]}\n")
    rng = random.Random(11)
    event_keys = [rng.randrange(10**9) for _ in range(6_000)]
    frame_keys = [[rng.randrange(10**9) for _ in range(500)] for _ in range(4)]
    frames = [_frame(keys, f"worker-{i}") for i, keys in enumerate(frame_keys)]
    poisons = []
    for shape in (["1", "x", "y"], ["1", 2], [1, 2, 3], ["1", 200, 3]):  # wrong types, arity, a shard out of range
        poison = json.loads(json.dumps(frames[0]))
        poison["observed"]["examples"] = [shape]
        poisons.append(json.dumps(poison).encode())
    first = [_event(k) for k in event_keys[:3_000]] + [json.dumps(f).encode() for f in frames[:2]] + poisons
    rng.shuffle(first)
    state_file = tmp_path / "sidecar.state"
    args = ("--config", str(config), "--from-beginning", "--state", str(state_file), "--instance-id", "poison-0")
    group = unique_name("poison")

    produce(kafka_broker.bootstrap, topic, first)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, *args).wait_ready()
    state = sc.wait_counted(lambda s: s["consumed"] >= len(first))
    assert not sc.exited(), sc.output[-2000:]
    assert state["consumed"] == len(first) and state["frames"] == 2
    assert sum(state["malformed"].values()) == len(poisons)
    assert sc.stop() == 0  # SIGTERM: state saved, offsets committed

    saved = json.loads(state_file.read_text())
    assert saved["frame"]["requests"] == 3_000 + 1_000  # the state holds whole batches only

    second = [_event(k) for k in event_keys[3_000:]] + [json.dumps(f).encode() for f in frames[2:]]
    produce(kafka_broker.bootstrap, topic, second)
    sc = sidecars.start(kafka_broker.bootstrap, topic, group, *args).wait_ready()
    assert "resumed" in sc.output
    state = sc.wait_counted(lambda s: s["consumed"] >= len(first) + len(second))
    assert state["consumed"] == len(first) + len(second), "a message was counted twice or lost"
    every_key = event_keys + [k for keys in frame_keys for k in keys]
    assert state["frame"]["requests"] == len(every_key)  # no phantom requests from the restart
    for router in ROUTERS:
        assert (_counts(state, router) == _expected(every_key, router)).all(), router
    assert sum(state["malformed"].values()) == len(poisons)
    assert sc.stop() == 0
