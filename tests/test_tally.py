"""The tally: per-key and batch paths agree, windows slide, held-back keys stay bounded and
count in their own slot, frames merge by addition without losing or double-counting anything,
bad frames change nothing, and keys no router can take are counted apart."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import run_skewcheck

from skewcheck.frame import Frame
from skewcheck.gate import judge
from skewcheck.routing import make_router
from skewcheck.summary import summarize
from skewcheck.tally import PENDING_KEYS, Tally


def _tally(shards: int = 100, names=("hash-mod", "murmur3"), **kw) -> Tally:
    return Tally([make_router(n, shards, "int") for n in names], **kw)


KEYS = [20200000 + 100 * j for j in range(127)]


def relayed(frame: Frame, to: Tally) -> Frame:
    """A frame as the receiving side gets it: JSON on the wire, parsed against its own rules."""
    return Frame.parse(json.loads(json.dumps(frame.to_json())), to.rules)


def test_per_key_and_batch_paths_count_the_same() -> None:
    rng = np.random.default_rng(5)
    keys = rng.choice(KEYS, 20_000)
    a, b = _tally(), _tally()
    for k in keys.tolist():
        a.add(k, ts=100.0)
    b.add_many(keys, ts=100.0)
    assert (a.counts() == b.counts()).all() and a.requests == b.requests == 20_000
    assert (a.key_buckets == b.key_buckets).all()
    assert a.counts()[0, 0] == 20_000  # hash-mod: every account on shard 0


def test_held_back_keys_stay_bounded_whatever_the_number_of_requests() -> None:
    t = _tally()
    t.add(KEYS[0], ts=5.0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(200_000):  # one slot: only the PENDING_KEYS bound flushes
        t.add(10_000_000 + i, ts=5.5)  # distinct keys, none of them a small cached int
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # 200k keys held would be ~7 MB of ints and list; the bound keeps a few hundred KB
    assert peak < 3 * 2**20, peak
    assert t.requests == 200_001 and t.counts()[1].sum() == 200_001


def test_held_back_keys_count_in_the_slot_they_arrived_in() -> None:
    t = _tally(window_s=2)
    for _ in range(3 * PENDING_KEYS + 5):
        t.add(KEYS[0], ts=100.5)
    for _ in range(7):
        t.add(KEYS[1], ts=101.5)
    t.add(KEYS[2], ts=102.5)  # slot 100 leaves the 2 s window
    _, requests, _ = t.window_counts()
    assert requests == 8 and t.requests == 3 * PENDING_KEYS + 13
    assert t.counts()[0, 0] == 3 * PENDING_KEYS + 13  # hash-mod: every account on shard 0


def test_a_key_no_router_can_take_is_counted_apart_and_nothing_else_is_lost() -> None:
    t = _tally()
    for k in KEYS[:50]:
        t.add(k, ts=1.0, observed_shard="0")
    t.add("not-a-number", ts=1.0, observed_shard="0")
    t.add(2**70, ts=1.0)
    t.add(1.5, ts=1.0, observed_shard="0")
    for k in KEYS[50:100]:
        t.add(k, ts=1.0, observed_shard="1" if k == KEYS[60] else "0")
    summary = summarize(t)
    assert summary.requests == 100 and t.unroutable == 3 and "not-a-number" in t.unroutable_example
    assert t.counts()[0, 0] == 100
    assert t.observed_requests == 100 and t.observed_mismatches == 1
    assert t.mismatch_examples == [(KEYS[60], 0, 1)]
    master = _tally()
    master.add_frame(relayed(t.drain_frame("w"), master), ts=1.0)
    assert master.unroutable == 3 and master.requests == 100
    only_bad = _tally()
    only_bad.add("not-a-number", ts=1.0)
    assert only_bad.has_counts()  # a worker must still send this (requests 0, unroutable 1)
    frame = only_bad.drain_frame("w")
    assert frame.requests == 0 and frame.unroutable == 1 and not only_bad.has_counts()


def test_text_a_router_cannot_encode_is_skipped_and_the_rest_of_the_batch_counts() -> None:
    t = Tally([make_router(n, 100, "str") for n in ("hash-mod", "murmur3")])
    keys = [f"user-{i}" for i in range(300)]
    for k in keys[:150]:
        t.add(k, ts=1.0)
    t.add("broken-\ud800", ts=1.0)  # a lone surrogate: a str, but no UTF-8 for the hash
    for k in keys[150:]:
        t.add(k, ts=1.0, observed_shard=["3", "4"])  # a repeated header arrives as a list
    summary = summarize(t)
    assert summary.requests == 300 and t.unroutable == 1 and "not valid Unicode" in t.unroutable_example
    assert (t.counts().sum(axis=1) == 300).all() and t.key_buckets.sum() == 300
    assert t.observed_requests == 150 and t.observed_mismatches == 150


def test_x_shard_text_is_parsed_and_garbage_or_other_shards_are_mismatches() -> None:
    t = _tally()
    answers = ["0", "0", "abc", "150", " 0", "", "0"]
    for a in answers:
        t.add(KEYS[3], ts=1.0, observed_shard=a)
    t.add(KEYS[3], ts=1.0)  # no header: not an observation
    t.flush()
    assert t.observed_requests == 7 and t.observed_mismatches == 3
    assert list(t.observed[:1]) == [4]  # "0" three times and " 0" (int() takes the spaces)
    assert sorted(o for _, _, o in t.mismatch_examples) == [-1, -1, 150]


def test_observations_in_a_batch_match_the_per_key_path() -> None:
    keys = KEYS * 3
    shards = [0] * len(keys)
    shards[5], shards[200] = 7, 99
    a, b = _tally(), _tally()
    for k, s in zip(keys, shards):
        a.add(k, ts=1.0, observed_shard=s)
    b.add_many(keys, ts=1.0, observed=shards)
    assert (a.observed == b.observed).all() and a.observed_requests == b.observed_requests == len(keys)
    assert a.observed_mismatches == b.observed_mismatches == 2
    assert a.mismatch_examples == b.mismatch_examples == [(keys[5], 0, 7), (keys[200], 0, 99)]


def test_f2_from_the_real_bucket_hash_matches_the_exact_value() -> None:
    rng = np.random.default_rng(6)
    keys = rng.choice(KEYS, 50_000)
    t = _tally()
    t.add_many(keys, ts=1.0)
    exact = float((np.unique(keys, return_counts=True)[1].astype(float) ** 2).sum())
    assert summarize(t).key_f2 == pytest.approx(exact, rel=0.05)
    assert summarize(t).routers["murmur3"].floor == pytest.approx(np.sqrt(99 / 127), rel=0.05)


def test_the_window_slides_and_the_run_total_keeps_everything() -> None:
    t = _tally(window_s=10)
    for second in range(30):
        for _ in range(10 if second < 20 else 1):
            t.add(KEYS[0], ts=1000.0 + second + 0.5)
    counts, requests, covered = t.window_counts()
    assert requests == 10 and covered == pytest.approx(9.5, abs=0.6)  # only the last 10 s, 1 req/s
    assert t.counts()[0, 0] == 210 and t.requests == 210
    assert summarize(t).routers["hash-mod"].window_qps[0] == pytest.approx(1.0, rel=0.15)


def test_a_late_timestamp_never_moves_the_end_of_the_run_back() -> None:
    t = _tally()
    t.add(KEYS[0], ts=100.0)
    t.add(KEYS[1], ts=110.0)
    t.add(KEYS[2], ts=101.0)
    assert t.duration_s == 10.0 and t.requests == 3


def test_frames_merge_by_addition_with_buckets_top_keys_and_examples() -> None:
    rng = np.random.default_rng(7)
    keys = rng.choice(KEYS, 6000)
    whole, master = _tally(), _tally()
    workers = [_tally(), _tally(), _tally()]
    for i, k in enumerate(keys.tolist()):
        whole.add(k, ts=50.0, observed_shard=0)
        workers[i % 3].add(k, ts=50.0, observed_shard=1 if i == 7 else 0)
        if i % 1000 == 999:  # workers report several times during the run
            for w in workers:
                master.add_frame(relayed(w.drain_frame("w"), master), ts=50.0)
    for w in workers:
        master.add_frame(w.drain_frame("w"), ts=50.0)
    assert master.requests == whole.requests == 6000
    assert (master.counts() == whole.counts()).all()
    assert (master.key_buckets == whole.key_buckets).all()
    assert master.observed_mismatches == 1 and master.mismatch_examples[0][2] == 1
    assert summarize(master).key_f2 == pytest.approx(summarize(whole).key_f2)


def test_top_key_error_bound_holds_across_frames() -> None:
    # each frame: 64 keys × 11 and key X × 10 — X is pruned from every frame, so the
    # master must carry that loss in its error bound
    master = _tally(names=("murmur3",))
    for f in range(50):
        w = _tally(names=("murmur3",))
        for j in range(64):
            for _ in range(11):
                w.add(10_000 * f + j + 1, ts=1.0)
        for _ in range(10):
            w.add(7, ts=1.0)
        master.add_frame(w.drain_frame("w"), ts=1.0)
    estimate = dict(master.top.counts).get(7, 0)
    assert estimate <= 500 <= estimate + master.top.error


@pytest.mark.parametrize("mutate", [
    lambda f: f["routers"]["murmur3"].update({"100": 1}),  # a shard this tally doesn't have
    lambda f: f["routers"].pop("hash-mod"),  # a router missing
    lambda f: f.update(requests=f["requests"] + 1),  # counts don't add up
    lambda f: f["routers"]["murmur3"].update({"0": -5}),  # negative count
    lambda f: f.update(top_keys=[["not-an-int", 3]]),
    lambda f: f.update(key_buckets={"99999": 1}),
])
def test_a_bad_frame_raises_and_changes_nothing(mutate) -> None:
    w = _tally()
    for k in KEYS[:50]:
        w.add(k, ts=1.0)
    frame = w.drain_frame("w").to_json()
    master = _tally()
    master.add(KEYS[0], ts=1.0)
    before = (master.requests, master.counts().copy(), master.key_buckets.copy())
    mutate(frame)
    with pytest.raises(ValueError):
        master.add_frame(Frame.parse(frame, master.rules), ts=1.0)
    assert master.requests == before[0] and (master.counts() == before[1]).all()
    assert (master.key_buckets == before[2]).all()


def test_frames_without_key_buckets_make_the_stddev_rule_inconclusive() -> None:
    master = _tally(names=("murmur3",))
    counts = {str(s): 30 for s in range(100)}
    foreign = {"v": 1, "kind": "frame", "source": "elsewhere", "window_start": 1.0, "window_s": 1.0,
               "requests": 3000, "routers": {"murmur3": counts}}
    master.add_frame(Frame.parse(foreign, master.rules), ts=1.0)
    checks = {c.rule: c for c in judge(summarize(master)).verdict.checks}
    assert checks["stddev_ratio"].status == "inconclusive" and "unknown" in checks["stddev_ratio"].message


def _saved_result(tmp_path: Path) -> Path:
    proc = run_skewcheck("plan", "configs/default.yaml", "--requests", "20000", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / "result.json"


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(key_f2=1.0), "key_f2"),
    (lambda d: d["routers"]["mod"]["counts"].__setitem__(0, -1), "greater than or equal to 0"),
    (lambda d: d["routers"]["mod"]["counts"].__setitem__(0, 10**9), "add up"),
    (lambda d: d["verdict"]["checks"].append({"rule": "leak_drain", "status": "fine"}), "malformed"),
    (lambda d: d.update(top_keys=[{"key": "1", "requests": "many"}]), "top_keys"),
])
def test_gate_rejects_a_tampered_result_with_exit_2(tmp_path: Path, edit, message: str) -> None:
    path = _saved_result(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    proc = run_skewcheck("gate", str(path))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_gate_treats_an_unknown_floor_as_inconclusive(tmp_path: Path) -> None:
    path = _saved_result(tmp_path)
    doc = json.loads(path.read_text())
    doc["key_f2"] = None
    path.write_text(json.dumps(doc))
    proc = run_skewcheck("gate", str(path))
    assert proc.returncode == 3 and "noise floor is unknown" in proc.stdout
