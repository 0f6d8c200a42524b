"""The datastore and hand-written routers without their real parts: per-key == vectorised on
random keys, published vectors, rings/slot maps/splits read from files, and parameters refused
with one clear message. tests/test_router_references.py checks them against the real systems."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
from conftest import run_skewcheck
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_keys import int_keys, text_keys

from skewcheck import keytext
from skewcheck.config import parse_scenario
from skewcheck.errors import UsageError
from skewcheck.ring import parse_cassandra_ring
from skewcheck.routing import ROUTER_NAMES, make_router
from skewcheck.slotmap import load_slot_map, parse_cluster_nodes, parse_cluster_shards, slot_owners

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SLOTS3 = ["0-5460", "5461-10922", "10923-16383"]

# every new router, with parameters where it needs them, over 12 shards
PARAMETERISED = {
    "pg-hash": {}, "citus": {}, "cassandra": {"vnodes": 4, "seed": 7}, "elasticsearch": {},
    "redis-cluster": {"slots": ["0-1000,5000-5460", "1001-4999"] + [
        f"{5461 + i * 1092}-{16383 if i == 9 else 5461 + (i + 1) * 1092 - 1}" for i in range(10)]},
    "ketama": {}, "vitess-xxhash": {}, "crc32": {}, "fnv1a32": {}, "fnv1a64": {}, "xxhash64": {},
    "range": {"over": "murmur3", "splits": [i * (2**32 // 12) for i in range(1, 12)]},
}
# MongoDB hashed chunks: 12 chunks split evenly over the int64 hash values
MONGO_CHUNKS = {"over": "mongo-hash", "splits": [-(2**63) + i * (2**64 // 12) for i in range(1, 12)]}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_name_is_covered_here():
    covered = set(PARAMETERISED) | {"vitess-hash"}
    assert covered | {"mod", "hash-mod", "murmur3", "kafka", "jump", "redis"} == set(ROUTER_NAMES)


chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from("{}\0\x7f\x80\u07ff\u0800\uffff"),
                  st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8"))
str_keys = st.lists(st.one_of(st.text(chars, max_size=70), st.sampled_from(["", "{a}", "a{}"])),
                    max_size=30)
int_keys_st = st.lists(st.one_of(st.integers(INT64_MIN, INT64_MAX),
                                 st.sampled_from([0, -1, INT64_MIN, INT64_MAX, 2**31, -(2**31)])),
                       max_size=30)


@pytest.mark.parametrize("name", sorted(PARAMETERISED))
@FAST
@given(keys=str_keys)
def test_str_per_key_equals_vectorised(name, keys):
    router = make_router(name, 12, "str", PARAMETERISED[name])
    per_key = [router.shard(k) for k in keys]
    assert router.shard_many(keys).tolist() == per_key
    assert all(0 <= s < 12 for s in per_key)


@pytest.mark.parametrize("name", sorted(PARAMETERISED) + ["vitess-hash"])
@FAST
@given(keys=int_keys_st)
def test_int_per_key_equals_vectorised(name, keys):
    router = make_router(name, 12, "int", PARAMETERISED.get(name, {}))
    per_key = [router.shard(k) for k in keys]
    assert router.shard_many(np.array(keys, dtype=np.int64)).tolist() == per_key
    assert all(0 <= s < 12 for s in per_key)


@pytest.mark.parametrize("name", sorted(PARAMETERISED))
def test_many_chunks_of_long_keys(monkeypatch, name):
    # chunks of a few keys, some much longer than the rest: every block layout of KeyText
    monkeypatch.setattr(keytext, "CHUNK_KEYS", 5)
    keys = text_keys(5, n=400, nul=True) + ["z" * 2000, ""]
    router = make_router(name, 12, "str", PARAMETERISED[name])
    assert router.shard_many(keys).tolist() == [router.shard(k) for k in keys]
    ints = int_keys(6, n=300)
    router = make_router(name, 12, "int", PARAMETERISED[name])
    assert router.shard_many(np.array(ints)).tolist() == [router.shard(k) for k in ints]


def test_twemproxy_fnv1a_64_per_key_equals_vectorised():
    from skewcheck.ketama import twemproxy_fnv1a_64

    keys = text_keys(8, n=3000, nul=True)
    router = make_router("ketama", 5, "str", {"hash": "fnv1a_64", "servers": [
        f"10.0.0.{i}:11211:1 cache-{i}" for i in range(5)]})
    assert router.shard_many(keys).tolist() == [router.shard(k) for k in keys]
    # C's signed char: a byte >= 0x80 enters the state as 0xFFFFFFxx
    assert twemproxy_fnv1a_64(b"\xe9") == ((0x84222325 ^ 0xFFFFFFE9) * 0x1B3) % 2**32


# MongoDB's published vectors: src/mongo/db/hasher_test.cpp (and the startup check, 42)
MONGO_HASH = {1: 5902408780260971510, -1: 1140205862565771219, -(2**31): 6165898260261354870,
              2**31 - 1: 1143184177162245883, INT64_MAX: 921523596458303250,
              INT64_MIN: 4532067210535695462, 42: -944302157085130861,
              "abc": 8478485326885698097, "": 2049396243249673340}


def test_mongodb_hashed_chunks_published_vectors():
    splits = sorted(set(MONGO_HASH.values()))  # a chunk starts at every vector's hash
    for key, value in MONGO_HASH.items():
        key_type = "str" if isinstance(key, str) else "int"
        router = make_router("range", len(splits) + 1, key_type,
                             {"over": "mongo-hash", "splits": splits})
        expected = splits.index(value) + 1  # the chunk [value, next split)
        assert router.shard(key) == expected
        assert router.shard_many([key]).tolist() == [expected]


@pytest.mark.parametrize("key_type", ["int", "str"])
def test_mongodb_hashed_chunks_per_key_equals_vectorised(key_type):
    router = make_router("range", 12, key_type, MONGO_CHUNKS)
    keys = int_keys(9, n=3000) if key_type == "int" else text_keys(9, n=3000, nul=True)
    batch = router.shard_many(np.array(keys) if key_type == "int" else keys)
    assert batch.tolist() == [router.shard(k) for k in keys]
    assert len(set(batch.tolist())) == 12


def test_routers_pickle_and_compare_with_their_parameters():
    a = make_router("cassandra", 3, "str", {"vnodes": 8})
    assert a == make_router("cassandra", 3, "str", {"vnodes": 8, "seed": 0})
    assert a != make_router("cassandra", 3, "str", {"vnodes": 8, "seed": 1})
    assert hash(a) == hash(make_router("cassandra", 3, "str", {"vnodes": 8}))
    clone = pickle.loads(pickle.dumps(a))
    assert clone == a and clone.shard("k") == a.shard("k")
    assert a.label == "cassandra(int_type=bigint, seed=0, vnodes=8)"
    assert make_router("murmur3", 3, "str").label == "murmur3"


# ---------------------------------------------------------------- published vectors


# Vitess' own test vectors: go/vt/vtgate/vindexes/hash_test.go and xxhash_test.go (v0.24.4)
VITESS_HASH = {1: "166b40b44aba4bd6", 2: "06e7ea22ce92708f", 3: "4eb190c9a2fa169c",
               4: "d2fd8867d50d2dfe", 5: "70bb023c810ca87a", 6: "f098480ac4c4be71",
               0: "8ca64de9c1b123a7", -1: "355550b2150e2451", INT64_MAX: "f77d48aadda1f1bb",
               INT64_MIN: "95f8a5e5dd31d900"}
VITESS_XXHASH = {1: "d46405367612b4b7", -1: "d8e2a6a7c8c7623d", INT64_MAX: "b37eb01f7bffafd8",
                 INT64_MIN: "102c27ddb26a609e", "test2": "87eb11714c0a0e89",
                 "testaverylongvaluetomakesurethisworks": "81d8c38e0d850e6a"}


@pytest.mark.parametrize("shards", [2, 16, 256])
def test_vitess_published_vectors(shards):
    hash_router = make_router("vitess-hash", shards, "int")
    for key, ksid in VITESS_HASH.items():
        assert hash_router.shard(key) == int(ksid, 16) * shards >> 64
        assert hash_router.shard_many([key]).tolist() == [int(ksid, 16) * shards >> 64]
    for key, ksid in VITESS_XXHASH.items():
        key_type = "str" if isinstance(key, str) else "int"
        expected = int(ksid, 16) * shards >> 64
        router = make_router("vitess-xxhash", shards, key_type)
        assert router.shard(key) == expected and router.shard_many([key]).tolist() == [expected]


def test_vitess_shard_ranges_follow_the_names():
    router = make_router("vitess-hash", 3, "int", {"shard_ranges": ["-40", "40-c0", "c0-"]})
    for key, ksid in VITESS_HASH.items():
        first = int(ksid[:2], 16)
        assert router.shard(key) == (0 if first < 0x40 else 1 if first < 0xC0 else 2)


def test_elasticsearch_default_routing_shards():
    from skewcheck.datastores import default_routing_num_shards

    assert [default_routing_num_shards(n) for n in (1, 2, 3, 5, 1024, 1025)] == [
        1024, 1024, 768, 640, 2048, 2050]


def test_hash_mod_java_types():
    assert make_router("hash-mod", 100, "int", {"java_type": "long"}).shard(-5) == 4
    assert make_router("hash-mod", 100, "int").shard(-5) == 5  # Integer.hashCode(-5) = -5
    long_router = make_router("hash-mod", 100, "int", {"java_type": "long"})
    assert long_router.shard_many([-5, 2**32]).tolist() == [4, 1]


# ---------------------------------------------------------------- files


NODETOOL_RING = """
Datacenter: datacenter1
==========
Address    Rack        Status State   Load            Owns                Token
                                                                          3074457345618258602
127.0.0.1  rack1       Up     Normal  105.35 KiB      33.33%              -9223372036854775808
127.0.0.2  rack1       Up     Normal  99.62 KiB       33.33%              -3074457345618258603
127.0.0.3  rack1       Up     Normal  103.71 KiB      33.33%              3074457345618258602
"""

PEERS = """
 peer      | tokens
-----------+------------------------------------------------
 10.0.0.2  | {'-4611686018427387904', '4611686018427387904'}
 10.0.0.3  | {'0'}

(2 rows)
"""


def test_cassandra_ring_files(tmp_path):
    assert parse_cassandra_ring(NODETOOL_RING, "x") == {
        "127.0.0.1": [-(2**63)], "127.0.0.2": [-3074457345618258603],
        "127.0.0.3": [3074457345618258602]}
    assert parse_cassandra_ring(PEERS, "x") == {
        "10.0.0.2": [-(2**62), 2**62], "10.0.0.3": [0]}
    path = tmp_path / "ring.txt"
    path.write_text(NODETOOL_RING)
    router = make_router("cassandra", 3, "int", {"ring": str(path)})
    from skewcheck.tokens import int_key_bytes, token

    for key in int_keys(3, n=2000):
        t = token(int_key_bytes(key, "bigint"))
        expected = 0 if t <= -(2**63) else 1 if t <= -3074457345618258603 else \
            2 if t <= 3074457345618258602 else 0
        assert router.shard(key) == expected
    with pytest.raises(UsageError, match="names 3 nodes but shards is 4: set shards to 3"):
        make_router("cassandra", 4, "int", {"ring": str(path)})
    (tmp_path / "empty.txt").write_text("nothing here\n")
    with pytest.raises(UsageError, match="no node tokens"):
        make_router("cassandra", 1, "int", {"ring": str(tmp_path / "empty.txt")})
    with pytest.raises(UsageError, match="cannot read ring file"):
        make_router("cassandra", 1, "int", {"ring": str(tmp_path / "missing.txt")})


CLUSTER_NODES = "".join(f"{line}\n" for line in [
    "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@310"
    "04,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected",
    "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@310"
    "02,hostname2 master - 0 1426238316232 2 connected 5461-10922",
    "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@310"
    "03,hostname3 master - 0 1426238318243 3 connected 10923-16383 "
    "[5460->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]",
    "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@310"
    "01,hostname1 myself,master - 0 0 1 connected 0-5460",
])

CLUSTER_SHARDS_TTY = """\
1) 1) "slots"
   2) 1) (integer) 10923
      2) (integer) 16383
   3) "nodes"
   4) 1)  1) "id"
          2) "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
          3) "port"
          4) (integer) 30003
          5) "ip"
          6) "127.0.0.1"
          7) "role"
          8) "master"
2) 1) "slots"
   2) 1) (integer) 0
      2) (integer) 5460
   3) "nodes"
   4) 1)  1) "id"
          2) "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
          3) "port"
          4) (integer) 30001
          5) "ip"
          6) "127.0.0.1"
          7) "role"
          8) "master"
      2)  1) "id"
          2) "07c37dfeb235213a872192d90877d0cd55635b91"
          3) "port"
          4) (integer) 30004
          5) "ip"
          6) "127.0.0.1"
          7) "role"
          8) "replica"
3) 1) "slots"
   2) 1) (integer) 5461
      2) (integer) 10922
   3) "nodes"
   4) 1)  1) "id"
          2) "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
          3) "port"
          4) (integer) 30002
          5) "ip"
          6) "127.0.0.1"
          7) "role"
          8) "master"
"""


def test_slot_maps_from_cluster_nodes_and_shards(tmp_path):
    expected = {"127.0.0.1:30001": [(0, 5460)], "127.0.0.1:30002": [(5461, 10922)],
                "127.0.0.1:30003": [(10923, 16383)]}
    assert parse_cluster_nodes(CLUSTER_NODES, "x") == expected
    assert parse_cluster_shards(CLUSTER_SHARDS_TTY, "x") == expected
    for name, text in (("nodes.txt", CLUSTER_NODES), ("shards.txt", CLUSTER_SHARDS_TTY)):
        path = tmp_path / name
        path.write_text(text)
        owner, nodes = load_slot_map(str(path))
        assert nodes == ("127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:30003")
        assert owner[0] == 0 and owner[5461] == 1 and owner[16383] == 2
        router = make_router("redis-cluster", 3, "str", {"slot_map": str(path)})
        assert router.shard("somekey") == 2 and router.shard("{user1000}.following") == 0


def test_slot_maps_must_cover_every_slot_once():
    with pytest.raises(UsageError, match="slot 5461 is owned by no primary"):
        slot_owners({"a": [(0, 5460)], "b": [(5462, 16383)]}, "x")
    with pytest.raises(UsageError, match="slot 100 is owned twice"):
        slot_owners({"a": [(0, 100)], "b": [(100, 16383)]}, "x")
    with pytest.raises(UsageError, match="3 primaries but shards is 2"):
        make_router("redis-cluster", 2, "str", {"slots": SLOTS3})
    with pytest.raises(UsageError, match="not a slot or a slot range"):
        make_router("redis-cluster", 1, "str", {"slots": ["0-x"]})
    with pytest.raises(UsageError, match="exactly one of slot_map"):
        make_router("redis-cluster", 3, "str")


def test_range_router_from_a_file(tmp_path):
    path = tmp_path / "splits.txt"
    path.write_text("# region start keys\nm\nt\n")
    router = make_router("range", 3, "str", {"splits_file": str(path)})
    keys = ["", "a", "m", "mz", "t", "\U0001F600", "é"]
    assert [router.shard(k) for k in keys] == [0, 0, 1, 1, 2, 2, 2]
    assert router.shard_many(keys).tolist() == [0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(UsageError, match="2 split points, which make 3 shards, but shards is 4"):
        make_router("range", 4, "str", {"splits_file": str(path)})
    with pytest.raises(UsageError, match="strictly ascend"):
        make_router("range", 3, "int", {"splits": [5, 5]})
    with pytest.raises(UsageError, match="not an integer"):
        make_router("range", 2, "int", {"splits": ["x"]})


@pytest.mark.parametrize("name,params,fragment", [
    ("murmur3", {"seed": 1}, "router murmur3 takes no parameters"),
    ("cassandra", {"vnodes": 0}, "vnodes"),
    ("cassandra", {"colour": "red"}, "colour"),
    ("hash-mod", {"java_type": "short"}, "java_type"),
    ("pg-hash", {"column_type": "int8"}, "column_type int8 needs int keys"),
    ("elasticsearch", {"routing_num_shards": 10}, "multiple of shards"),
    ("ketama", {"servers": ["a:1", "b:2"]}, "2 servers but shards is 3"),
    ("ketama", {"servers": ["a:x", "b", "c"]}, "is not host"),
    ("vitess-hash", {"shard_ranges": ["-80", "90-c0", "c0-"]}, "does not start where"),
    ("range", {}, "exactly one of splits"),
])
def test_bad_parameters_are_one_clear_error(name, params, fragment):
    key_type = "str" if name == "pg-hash" else "int"
    with pytest.raises(UsageError, match=fragment):
        make_router(name, 3, key_type, params)


def test_int4_keys_must_fit():
    router = make_router("pg-hash", 4, "int", {"column_type": "int4"})
    with pytest.raises(UsageError, match="outside the int4 range"):
        router.shard(2**31)
    with pytest.raises(UsageError, match="outside the int4 range"):
        router.shard_many([1, 2**31])


# ---------------------------------------------------------------- the scenario and the CLI


def test_scenario_params_with_files_next_to_it(tmp_path):
    (tmp_path / "ring.txt").write_text(NODETOOL_RING)
    config = tmp_path / "cassandra.yaml"
    config.write_text("shards: 3\nrouting:\n  primary: cassandra\n  params:\n"
                      "    cassandra: {ring: ring.txt}\ngate: {max_shard_share: 0.5}\n")
    from skewcheck.config import load_scenario

    scenario = load_scenario(config)
    router = scenario.routing.router("cassandra", 3)
    assert router.params == (("int_type", "bigint"), ("ring", str(tmp_path / "ring.txt")),
                             ("seed", 0), ("vnodes", 16))
    result = run_skewcheck("route", "--router", "cassandra", "--shards", "3", "--config",
                           str(config), "1", "2", "3")
    assert result.returncode == 0, result.stderr
    assert [int(s) for s in result.stdout.split()] == [router.shard(k) for k in (1, 2, 3)]


def test_scenario_param_errors_name_the_field_and_line():
    text = "routing:\n  primary: cassandra\n  params:\n    cassandra:\n      vnodes: many\n"
    with pytest.raises(UsageError) as exc:
        parse_scenario(text, "s.yaml")
    assert str(exc.value).startswith("s.yaml:5: routing.params.cassandra.vnodes:")
    text = "shards: 3\nrouting:\n  primary: redis-cluster\n  key_type: str\n  params:\n" \
           "    redis-cluster: {slots: ['0-100']}\n"
    with pytest.raises(UsageError, match="slot 101 is owned by no primary"):
        parse_scenario(text, "s.yaml")


def test_route_cli_params_and_describe():
    result = run_skewcheck("route", "--router", "redis-cluster", "--shards", "3", "--key-type",
                           "str", "--param", "slots=[0-5460, 5461-10922, 10923-16383]",
                           "somekey", "foo{hash_tag}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "0"]  # slots 11058 and 2515
    described = run_skewcheck("route", "--router", "cassandra", "--shards", "4", "--param",
                              "vnodes=32", "--describe")
    assert described.stdout.strip() == (
        "cassandra(int_type=bigint, seed=0, vnodes=32) over 4 shards, int keys")
    bad = run_skewcheck("route", "--router", "cassandra", "--shards", "4", "--param", "vnodes", "1")
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", ["redis-cluster", "range", "cassandra", "ketama"])
def test_routers_with_parameters_through_the_cli_match_the_library(name):
    rng = random.Random(3)
    keys = [str(rng.randrange(-(2**63), 2**63)) for _ in range(50)]
    params = PARAMETERISED[name]
    args = ["route", "--router", name, "--shards", "12"]
    for k, v in params.items():
        args += ["--param", f"{k}={json.dumps(v)}"]  # JSON is YAML
    result = run_skewcheck(*args, "-", input="\n".join(keys) + "\n")
    assert result.returncode == 0, result.stderr
    router = make_router(name, 12, "int", params)
    assert [int(s) for s in result.stdout.split()] == [router.shard(int(k)) for k in keys]


@pytest.mark.parametrize("name", sorted(PARAMETERISED) + ["vitess-hash"])
def test_bad_keys_are_refused_per_key_and_per_batch(name):
    router = make_router(name, 12, "int", PARAMETERISED.get(name, {}))
    for bad in ["5", 5.0, True, 2**63, INT64_MIN - 1, None]:
        with pytest.raises(UsageError):
            router.shard(bad)
        with pytest.raises(UsageError):
            router.shard_many([1, bad])
    assert router.shard(np.int64(5)) == router.shard(5)
    if name == "vitess-hash":
        return
    router = make_router(name, 12, "str", PARAMETERISED[name])
    for bad in ["\ud800", "a\udcffb"]:  # no UTF-8 form: refused before anything is hashed
        with pytest.raises(UsageError, match="surrogate"):
            router.shard(bad)
        with pytest.raises(UsageError, match="surrogate"):
            router.shard_many(["ok", bad])
    with pytest.raises(UsageError):
        router.shard(5)
