"""`skewcheck infer` as users run it: (key, shard) pairs produced by the real implementations
(PostgreSQL, a Redis Cluster, Cassandra's and OpenSearch's jars, libmemcached, Vitess, Go's
hashes, the JVM) are traced back to the router and shard count; shuffled pairs fit nothing."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from conftest import run_skewcheck
from postgres_server import citus_shard, pg_literal_lines
from reference_keys import INT32_MAX, INT32_MIN, hex_lines, int_keys, text_keys

from skewcheck.frame import Frame, FrameError
from skewcheck.gate import GateConfig, judge
from skewcheck.result import build_result
from skewcheck.routing import make_router
from skewcheck.slotmap import load_slot_map
from skewcheck.summary import summarize
from skewcheck.tally import Tally

PAIRS = 3000


def write_csv(path, keys, shards) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["key", "shard"])
        out.writerows(zip(keys, shards))
    return str(path)


def infer_cli(path, *extra, expect=0):
    result = run_skewcheck("infer", str(path), *extra)
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stdout


def shuffled(values, seed=1):
    out = list(values)
    random.Random(seed).shuffle(out)
    return out


def assert_found(stdout: str, first_line: str) -> None:
    assert stdout.splitlines()[0] == first_line, stdout


# ---------------------------------------------------------------------------------- real parts


@pytest.mark.postgres
def test_infer_finds_postgres_hash_partitions(postgres, tmp_path):
    keys = int_keys(201, n=PAIRS)
    postgres.psql("create table inf (k int8) partition by hash (k);" + "".join(
        f"create table inf_{r} partition of inf for values with (modulus 13, remainder {r});"
        for r in range(13)))
    postgres.copy_in("inf", [str(k) for k in keys])
    rows = postgres.psql("select k, tableoid::regclass::text from inf")
    keys = [int(k) for k, _ in rows]
    shards = [int(name.rsplit("_", 1)[1]) for _, name in rows]
    path = write_csv(tmp_path / "pairs.csv", keys, shards)
    assert_found(infer_cli(path), f"pg-hash(column_type=int8) over 13 shards, int keys: "
                                  f"100.0% of {len(keys):,} pairs")
    assert "no router fits" in infer_cli(write_csv(tmp_path / "shuffled.csv", keys,
                                                   shuffled(shards)), expect=3)


@pytest.mark.postgres
def test_infer_finds_citus_on_postgres_hashes(postgres, tmp_path):
    keys = [f"tenant-{i}" for i in range(PAIRS)] + text_keys(202, n=500)
    postgres.psql("create table inf_c (k text)")
    postgres.copy_in("inf_c", pg_literal_lines(keys))
    rows = postgres.psql("select encode(convert_to(k, 'UTF8'), 'hex'), hashtext(k) from inf_c")
    keys = [bytes.fromhex(h).decode() for h, _ in rows]
    shards = [citus_shard(int(h), 32) for _, h in rows]
    lines = "".join(json.dumps({"ts": 1, "key": k, "shard": s, "path": "/t"}) + "\n"
                    for k, s in zip(keys, shards))
    (tmp_path / "access.log").write_text(lines + "not json\n{\"key\": 5}\n", encoding="utf-8")
    out = infer_cli(tmp_path / "access.log")
    assert_found(out, f"citus(column_type=text) over 32 shards, str keys: 100.0% of "
                      f"{len(keys):,} pairs")
    assert "(skipped 2 records that were not key/shard pairs)" in out


@pytest.mark.redis
def test_infer_finds_the_redis_cluster_slot_map(redis_cluster, tmp_path):
    keys = [k for k in text_keys(203, n=PAIRS) if k]
    client = redis_cluster.client()
    slots = client.pipeline([(b"CLUSTER", b"KEYSLOT", k.encode()) for k in keys])
    client.close()
    nodes = tmp_path / "nodes.txt"
    nodes.write_text(redis_cluster.cli("CLUSTER", "NODES"))
    owner, _ = load_slot_map(str(nodes))
    shards = [int(owner[s]) for s in slots]
    scenario = tmp_path / "redis.yaml"
    scenario.write_text("shards: 3\nrouting:\n  primary: redis-cluster\n  key_type: str\n"
                        "  params:\n    redis-cluster: {slot_map: nodes.txt}\n"
                        "gate: {max_shard_share: 0.5}\n")
    path = write_csv(tmp_path / "pairs.csv", keys, shards)
    out = infer_cli(path, "--config", str(scenario), "--key-type", "str")
    assert_found(out, f"redis-cluster(slot_map={nodes}) over 3 shards, str keys: 100.0% of "
                      f"{len(keys):,} pairs")
    # the even split differs from this cluster's ranges only at slot 5461: a tie, or nearly
    assert "runner-up: redis over 3 shards, str keys" in out


@pytest.mark.java
def test_infer_finds_opensearch_and_cassandra(reference_programs, tmp_path):
    keys = text_keys(204, n=PAIRS)
    out = reference_programs.java("opensearch_classpath", "OpenSearchRouting", "5",
                                  stdin=hex_lines(keys))
    path = write_csv(tmp_path / "os.csv", keys, [int(s) for s in out[1:]])
    assert_found(infer_cli(path), f"elasticsearch over 5 shards, str keys: 100.0% of "
                                  f"{len(keys):,} pairs")

    tokens = [int(t) for t in reference_programs.java(
        "cassandra_classpath", "CassandraTokens", "text", stdin=hex_lines(keys))]
    ring_file = tmp_path / "ring.txt"
    rng = np.random.default_rng(5)
    ring = {f"10.1.0.{i}": rng.integers(-(2**62), 2**62, size=16).tolist() for i in range(4)}
    ring_file.write_text("".join(f"{node} | {{{', '.join(repr(str(t)) for t in ts)}}}\n"
                                 for node, ts in ring.items()))
    points = sorted((t, i) for i, ts in enumerate(ring.values()) for t in ts)
    owners = [next((i for p, i in points if p >= t), points[0][1]) for t in tokens]
    scenario = tmp_path / "cassandra.yaml"
    scenario.write_text("shards: 4\nrouting:\n  params:\n    cassandra: {ring: ring.txt}\n"
                        "gate: {max_shard_share: 0.5}\n")
    path = write_csv(tmp_path / "cassandra.csv", keys, owners)
    assert_found(infer_cli(path, "--config", str(scenario)),
                 f"cassandra(int_type=bigint, ring={ring_file}, seed=0, vnodes=16) over 4 shards, "
                 f"str keys: 100.0% of {len(keys):,} pairs")


@pytest.mark.java
def test_infer_tells_java_long_from_integer(reference_programs, tmp_path):
    keys = int_keys(205, n=PAIRS)
    hashes = reference_programs.java("cassandra_classpath", "JavaHashCode", "long",
                                     stdin="".join(f"{k}\n" for k in keys))
    path = write_csv(tmp_path / "long.csv", keys, [abs(int(h)) % 64 for h in hashes])
    assert_found(infer_cli(path), f"hash-mod(java_type=long) over 64 shards, int keys: 100.0% "
                                  f"of {len(keys):,} pairs")


@pytest.mark.memcached
def test_infer_finds_ketama(libmemcached, tmp_path):
    servers = ["cache1:11211", "cache2:11211", "cache3:11211", "cache4:11211", "cache5:11211"]
    keys = text_keys(206, n=PAIRS)
    shards = libmemcached.servers_of([(s.split(":")[0], 11211, 1) for s in servers],
                                     [k.encode() for k in keys])
    scenario = tmp_path / "memcached.yaml"
    scenario.write_text("shards: 5\nrouting:\n  primary: ketama\n  key_type: str\n  params:\n"
                        f"    ketama: {{servers: {json.dumps(servers)}}}\n"
                        "gate: {max_shard_share: 0.5}\n")
    path = write_csv(tmp_path / "ketama.csv", keys, shards)
    out = infer_cli(path, "--config", str(scenario))
    assert out.splitlines()[0].startswith("ketama(hash=md5, servers=cache1:11211,") and \
        out.splitlines()[0].endswith(f"over 5 shards, str keys: 100.0% of {len(keys):,} pairs")
    # without the servers no ketama candidate exists, and nothing else fits
    assert "no router fits" in infer_cli(path, expect=3)


@pytest.mark.go
def test_infer_finds_vitess_and_hand_written_hashes(reference_programs, tmp_path):
    keys = int_keys(207, n=PAIRS)
    ksids = reference_programs.go("vitessref", "hash", stdin="".join(f"{k}\n" for k in keys))
    path = write_csv(tmp_path / "vitess.csv", keys, [int(k, 16) * 8 >> 64 for k in ksids])
    assert_found(infer_cli(path), f"vitess-hash over 8 shards, int keys: 100.0% of "
                                  f"{len(keys):,} pairs")
    data = [str(k).encode() for k in keys]
    rows = reference_programs.go("bytehashes", stdin="".join(d.hex() + "\n" for d in data))
    fnv64 = [int(r.split("\t")[2]) for r in rows]
    path = write_csv(tmp_path / "fnv.csv", keys, [h % 10 for h in fnv64])
    assert_found(infer_cli(path),
                 f"fnv1a64 over 10 shards, int keys: 100.0% of {len(keys):,} pairs")
    ranking = json.loads(infer_cli(path, "--json"))
    assert ranking["match"]["router"] == "fnv1a64" and ranking["match"]["shards"] == 10
    assert "no router fits" in infer_cli(write_csv(tmp_path / "fnv-shuffled.csv", keys,
                                                   shuffled([h % 10 for h in fnv64])), expect=3)


# ---------------------------------------------------------------------------------- a run


def run_with_target(router, keys, answered):
    """A tally of a run whose target answered X-Shard as `answered` routes, under `router`."""
    tally = Tally([router, make_router("murmur3", router.shards, router.key_type)],
                  clock=lambda: 1000.0)
    for key in keys:
        tally.add(key, observed_shard=answered.shard(key))
    tally.flush()
    return tally


def test_a_runs_result_names_the_router_that_would_have_matched(tmp_path):
    keys = [k for k in int_keys(208, n=6000)]
    configured = make_router("mod", 100, "int")
    actual = make_router("hash-mod", 100, "int", {"java_type": "long"})
    tally = run_with_target(configured, keys, actual)
    assert len(tally.observed_pairs) == 5000  # the kept sample is bounded
    summary = summarize(tally, now=1000.0)
    judgement = judge(summary, GateConfig(min_requests=100))
    emulation = next(c for c in judgement.verdict.checks if c.rule == "routing_emulation")
    assert emulation.status == "inconclusive"
    assert "hash-mod(java_type=long) over 100 shards, int keys: 100.0% of 5,000 pairs would " \
           "have matched" in emulation.message
    doc = build_result("run", summary, judgement, scenario={})
    assert len(doc["observed"]["pairs"]) == 5000
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    assert_found(infer_cli(path), "hash-mod(java_type=long) over 100 shards, int keys: 100.0% "
                                  "of 5,000 pairs")


def test_frames_carry_a_bounded_sample_of_pairs():
    worker = run_with_target(make_router("kafka", 12, "str"), text_keys(209, n=800),
                             make_router("kafka", 12, "str"))
    frame = Frame.parse(worker.frame("w1", now=1000.0).to_json(), worker.rules)
    assert len(frame.observed.pairs) == 200
    master = Tally(list(worker.routers), clock=lambda: 1000.0)
    master.add_frame(frame)
    assert master.observed_pairs == worker.observed_pairs[:200]
    bad = frame.to_json()
    bad["observed"]["pairs"] = [["k", -1]]
    with pytest.raises(FrameError):
        Frame.parse(bad, worker.rules)


# ---------------------------------------------------------------------------------- bad input


def test_too_few_or_one_shard_is_inconclusive(tmp_path):
    few = write_csv(tmp_path / "few.csv", range(10), [k % 3 for k in range(10)])
    result = run_skewcheck("infer", few)
    assert result.returncode == 3 and "too few" in result.stderr
    one = write_csv(tmp_path / "one.csv", range(100), [0] * 100)
    result = run_skewcheck("infer", one)
    assert result.returncode == 3 and "every pair is on shard 0" in result.stderr


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    for args, fragment in ((["missing.csv"], "cannot read missing.csv"),
                           ([str(tmp_path), "--min-agreement", "2"], "--min-agreement"),
                           ([str(tmp_path), "--router", "sha1"], "unknown router 'sha1'")):
        result = run_skewcheck("infer", *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert fragment in result.stderr and len(result.stderr.splitlines()) == 1
    (tmp_path / "r.json").write_text(json.dumps({"observed": {"counts": [1], "requests": 1,
                                                              "mismatch_examples": []}}))
    result = run_skewcheck("infer", str(tmp_path / "r.json"))
    assert result.returncode == 3 and "no observed.pairs" in result.stderr


def test_hostile_keys_never_reach_the_output(tmp_path):
    router = make_router("crc32", 7, "str")
    keys = ["\x1b[31mred", "<script>", "a\nb"] + [f"k{i}" for i in range(300)]
    lines = "".join(json.dumps({"key": k, "shard": router.shard(k)}) + "\n" for k in keys)
    (tmp_path / "log.jsonl").write_text(lines)
    out = infer_cli(tmp_path / "log.jsonl")
    assert out.splitlines()[0] == f"crc32 over 7 shards, str keys: 100.0% of {len(keys)} pairs"
    assert "\x1b" not in out and "<script>" not in out


def test_large_inputs_are_sampled(tmp_path):
    router = make_router("xxhash64", 50, "int")
    keys = list(range(-30_000, 30_000))
    path = write_csv(tmp_path / "big.csv", keys, [router.shard(k) for k in keys])
    out = infer_cli(path, "--max-pairs", "4000")
    assert out.splitlines()[0] == "xxhash64 over 50 shards, int keys: 100.0% of 4,000 pairs"
    assert "(sampled 4,000 of 60,000 pairs)" in out
    assert INT32_MIN < min(keys) and max(keys) < INT32_MAX
