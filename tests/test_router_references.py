"""Every datastore router against the real implementation, running here: 10**4 hidden-style keys
each (ints across int64, astral text, empty keys, hash tags), zero disagreements, for the per-key
and the vectorised form alike.

    PostgreSQL   a real server: hash-partitioned tables, rows inserted, partition read back
    Citus        PostgreSQL's real hashint4/hashint8/hashtext, split as Citus splits the range
    Cassandra    Murmur3Partitioner from Maven Central's cassandra-all
    OpenSearch   OperationRouting.generateShardId from Maven Central's opensearch
    Redis        a real 3-node cluster: its slot map, CLUSTER KEYSLOT and MOVED redirects
    ketama       libmemcached's weighted ketama through ctypes
    Vitess       Vitess' own hash and xxhash vindexes (Go module vitess.io/vitess)
    by hand      Go's hash/crc32 and hash/fnv, cespare/xxhash, zlib and PyPI xxhash
    hash-mod     Integer/Long/String.hashCode on the JVM
"""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import REPO
from postgres_server import citus_shard, pg_literal_lines
from reference_keys import INT32_MAX, INT32_MIN, hex_lines, int_keys, text_keys

from skewcheck import tokens
from skewcheck.datastores import default_routing_num_shards
from skewcheck.keytext import KeyBatch
from skewcheck.ring import seeded_cassandra_ring
from skewcheck.routing import make_router
from skewcheck.slotmap import load_slot_map


def assert_router_equals(router, keys, expected: list[int]) -> None:
    """Per-key and vectorised forms both equal the real implementation, key for key."""
    per_key = [router.shard(k) for k in keys]
    batch = router.shard_many(np.array(keys, dtype=np.int64) if router.key_type == "int" else keys)
    wrong = [(k, p, e) for k, p, e in zip(keys, per_key, expected) if p != e]
    assert not wrong, f"{len(wrong)} of {len(keys)} keys disagree, e.g. {wrong[:3]}"
    assert batch.tolist() == per_key


# ---------------------------------------------------------------------------------- PostgreSQL


def pg_keys(column: str, key_type: str, seed: int) -> list:
    """Keys a column of this type holds: int4 within int32, int8 over int64, text as Unicode
    (PostgreSQL text holds no U+0000: text_keys leaves it out)."""
    if column == "int4":
        return int_keys(seed, low=INT32_MIN, high=INT32_MAX)
    if key_type == "int":
        return int_keys(seed + 1)
    return text_keys(seed + 2)


@pytest.mark.postgres
@pytest.mark.parametrize("column,key_type,modulus", [
    ("int8", "int", 7), ("int4", "int", 13), ("text", "str", 10), ("text", "int", 3)])
def test_pg_hash_partitions_equal_postgres(postgres, column, key_type, modulus):
    keys = pg_keys(column, key_type, seed=41)
    table = f"p_{column}_{key_type}_{modulus}"
    ddl = [f"create table {table} (k {column}) partition by hash (k)"]
    ddl += [f"create table {table}_{r} partition of {table} for values with "
            f"(modulus {modulus}, remainder {r})" for r in range(modulus)]
    postgres.psql(";".join(ddl))
    rows = [str(k) for k in keys] if column == "text" and key_type == "int" else keys
    postgres.copy_in(table, pg_literal_lines(rows))
    shown = "encode(convert_to(k::text, 'UTF8'), 'hex')"
    got = postgres.psql(f"select {shown}, tableoid::regclass::text from {table}")
    partition = {bytes.fromhex(hexed).decode(): int(name.rsplit("_", 1)[1]) for hexed, name in got}
    assert len(partition) == len(set(map(str, keys)))
    router = make_router("pg-hash", modulus, key_type, {"column_type": column})
    assert_router_equals(router, keys, [partition[str(k)] for k in keys])


@pytest.mark.postgres
@pytest.mark.parametrize("column,key_type,shards", [
    ("int8", "int", 32), ("int4", "int", 7), ("text", "str", 48)])
def test_citus_shards_on_postgres_hash_functions(postgres, column, key_type, shards):
    keys = pg_keys(column, key_type, seed=51)
    table = f"c_{column}_{shards}"
    postgres.psql(f"create table {table} (k {column})")
    postgres.copy_in(table, pg_literal_lines(keys))
    function = {"int8": "hashint8", "int4": "hashint4", "text": "hashtext"}[column]
    got = postgres.psql(f"select encode(convert_to(k::text, 'UTF8'), 'hex'), {function}(k) "
                        f"from {table}")
    hashed = {bytes.fromhex(hexed).decode(): int(h) for hexed, h in got}
    router = make_router("citus", shards, key_type, {"column_type": column})
    assert_router_equals(router, keys, [citus_shard(hashed[str(k)], shards) for k in keys])


# ---------------------------------------------------------------------------------- Cassandra


@pytest.mark.java
@pytest.mark.parametrize("int_type", ["bigint", "int"])
def test_cassandra_tokens_of_int_keys(reference_programs, int_type):
    keys = int_keys(61) if int_type == "bigint" else int_keys(62, low=INT32_MIN, high=INT32_MAX)
    real = [int(t) for t in reference_programs.java(
        "cassandra_classpath", "CassandraTokens", int_type, stdin="".join(f"{k}\n" for k in keys))]
    assert [tokens.token(tokens.int_key_bytes(k, int_type)) for k in keys] == real
    assert tokens.int_tokens(np.array(keys, dtype=np.int64), int_type).tolist() == real
    ring_router = make_router("cassandra", 5, "int", {"vnodes": 8, "seed": 3, "int_type": int_type})
    ring = seeded_cassandra_ring(5, 8, 3)
    assert_router_equals(ring_router, keys, [ring.owner(t) for t in real])


@pytest.mark.java
def test_cassandra_tokens_of_text_keys(reference_programs):
    keys = text_keys(63, nul=True)
    real = [int(t) for t in reference_programs.java(
        "cassandra_classpath", "CassandraTokens", "text", stdin=hex_lines(keys))]
    assert [tokens.token(k.encode()) for k in keys] == real
    assert tokens.tokens_text(KeyBatch.of(keys, "str").chunks()[0].text()).tolist() == real
    # tails with a byte >= 0x80 are where Cassandra's hash parts from the reference MurmurHash3
    assert any(max(k.encode()[len(k.encode()) & ~15:], default=0) >= 0x80 for k in keys)


@pytest.mark.java
def test_cassandra_ring_file_routes_like_the_tokens_say(reference_programs, tmp_path):
    keys = text_keys(64)
    real = [int(t) for t in reference_programs.java(
        "cassandra_classpath", "CassandraTokens", "text", stdin=hex_lines(keys))]
    rng = np.random.default_rng(9)
    ring = {f"10.0.0.{i}": sorted(rng.integers(-(2**63) + 1, 2**63 - 1, size=4).tolist())
            for i in range(1, 4)}
    lines = ["Datacenter: dc1", "==========",
             "Address    Rack   Status State   Load       Owns    Token",
             f"{'':59}{max(t for ts in ring.values() for t in ts)}"]
    lines += [f"{node}  rack1  Up     Normal  1.21 MiB   33.3%   {t}"
              for node, ts in ring.items() for t in ts]
    path = tmp_path / "ring.txt"
    path.write_text("\n".join(lines) + "\n")
    owners = sorted((t, i) for i, ts in enumerate(ring.values()) for t in ts)

    def owner(token: int) -> int:  # the node of the first ring token >= the key's, wrapping
        return next((i for t, i in owners if t >= token), owners[0][1])

    router = make_router("cassandra", 3, "str", {"ring": str(path)})
    assert_router_equals(router, keys, [owner(t) for t in real])


# ---------------------------------------------------------------------------------- OpenSearch


@pytest.mark.java
@pytest.mark.parametrize("shards,routing_shards,key_type", [
    (5, None, "str"), (1, None, "int"), (24, 48, "str"), (3, None, "int")])
def test_opensearch_document_routing(reference_programs, shards, routing_shards, key_type):
    keys = text_keys(71, nul=True) if key_type == "str" else int_keys(72)
    args = [str(shards)] + ([str(routing_shards)] if routing_shards else [])
    out = reference_programs.java("opensearch_classpath", "OpenSearchRouting", *args,
                                  stdin=hex_lines([str(k) for k in keys]))
    assert out[0] == f"routing_num_shards {routing_shards or default_routing_num_shards(shards)}"
    params = {"routing_num_shards": routing_shards} if routing_shards else {}
    router = make_router("elasticsearch", shards, key_type, params)
    assert_router_equals(router, keys, [int(s) for s in out[1:]])


# ---------------------------------------------------------------------------------- hash-mod


@pytest.mark.java
@pytest.mark.parametrize("java_type", ["int", "long"])
def test_hash_mod_java_types_equal_the_jvm(reference_programs, java_type):
    keys = int_keys(81)
    # a literal beyond int32 reaches ShardingSphere as a Long either way
    boxed = ["int" if java_type == "int" and INT32_MIN <= k <= INT32_MAX else "long"
             for k in keys]
    real: dict[int, int] = {}
    for box in ("int", "long"):
        chosen = [k for k, b in zip(keys, boxed) if b == box]
        hashes = reference_programs.java("cassandra_classpath", "JavaHashCode", box,
                                         stdin="".join(f"{k}\n" for k in chosen))
        real.update(zip(chosen, map(int, hashes)))
    router = make_router("hash-mod", 97, "int", {"java_type": java_type})
    assert_router_equals(router, keys, [abs(real[k]) % 97 for k in keys])
    if java_type == "long":
        assert router.shard(-5) == 4  # Long.hashCode(-5) is 4; Integer.hashCode(-5) is -5


@pytest.mark.java
def test_hash_mod_strings_equal_the_jvm(reference_programs):
    keys = text_keys(82, nul=True)
    hashes = reference_programs.java("cassandra_classpath", "JavaHashCode", "string",
                                     stdin=hex_lines(keys))
    assert_router_equals(make_router("hash-mod", 100, "str"), keys,
                         [abs(int(h)) % 100 for h in hashes])


# ---------------------------------------------------------------------------------- Redis


def _slot_map_forms(redis_cluster, tmp_path):
    nodes = tmp_path / "nodes.txt"
    nodes.write_text(redis_cluster.cli("CLUSTER", "NODES"))
    raw = tmp_path / "shards.txt"
    raw.write_text(redis_cluster.cli("CLUSTER", "SHARDS"))  # into a pipe: raw replies
    framed = tmp_path / "shards-tty.txt"
    framed.write_text(redis_cluster.cli("--no-raw", "CLUSTER", "SHARDS"))
    as_json = tmp_path / "shards.json"
    as_json.write_text(redis_cluster.cli("--json", "CLUSTER", "SHARDS"))
    return [nodes, raw, framed, as_json]


@pytest.mark.redis
def test_redis_cluster_slot_map_equals_the_cluster(redis_cluster, tmp_path):
    keys = text_keys(91, nul=True)
    client = redis_cluster.client()
    slots = client.pipeline([(b"CLUSTER", b"KEYSLOT", k.encode()) for k in keys])
    shards = client.pipeline([(b"CLUSTER", b"SHARDS")])[0]
    owner_of_slot = {}
    primaries = []
    for shard in shards:
        fields = dict(zip(shard[::2], shard[1::2]))
        bounds = fields[b"slots"]
        node = next(dict(zip(n[::2], n[1::2])) for n in fields[b"nodes"]
                    if dict(zip(n[::2], n[1::2]))[b"role"] == b"master")
        address = f"{node[b'ip'].decode()}:{node[b'port']}"
        primaries.append((min(bounds[::2]), address))
        for lo, hi in zip(bounds[::2], bounds[1::2]):
            owner_of_slot.update({s: address for s in range(lo, hi + 1)})
    order = [address for _, address in sorted(primaries)]  # shards numbered by lowest slot
    expected = [order.index(owner_of_slot[s]) for s in slots]
    # the even-split router over 16384 shards is the slot itself
    assert_router_equals(make_router("redis", 16384, "str"), keys, slots)
    for path in _slot_map_forms(redis_cluster, tmp_path):
        owner, nodes = load_slot_map(str(path))
        assert list(nodes) == order, path.name
        router = make_router("redis-cluster", 3, "str", {"slot_map": str(path)})
        assert_router_equals(router, keys, expected)
    client.close()


@pytest.mark.redis
def test_redis_cluster_moved_redirects_agree(redis_cluster, tmp_path):
    """Writes to one node: it stores its own keys and answers MOVED <slot> <owner> for the rest."""
    keys = [k for k in text_keys(92) if k][:4000] + [str(k) for k in int_keys(93, n=2000)]
    client = redis_cluster.client(0)
    replies = []
    for lo in range(0, len(keys), 1000):
        commands = [(b"SET", k.encode(), b"1") for k in keys[lo:lo + 1000]]
        client.sock.sendall(b"".join(
            b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in commands))
        for _ in commands:
            try:
                replies.append(client.reply())
            except RuntimeError as exc:  # "MOVED 3999 127.0.0.1:6381"
                replies.append(str(exc))
    client.close()
    here = f"127.0.0.1:{redis_cluster.ports[0]}"
    owners = [here if r == "OK" else r.split()[2] for r in replies]
    path = tmp_path / "nodes.txt"
    path.write_text(redis_cluster.cli("CLUSTER", "NODES"))
    _, nodes = load_slot_map(str(path))
    router = make_router("redis-cluster", 3, "str", {"slot_map": str(path)})
    assert_router_equals(router, keys, [nodes.index(o) for o in owners])
    assert len(set(owners)) == 3


# ---------------------------------------------------------------------------------- ketama


@pytest.mark.memcached
@pytest.mark.parametrize("servers", [
    ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"],
    ["cache-a:11211:1", "cache-b:11311:2", "cache-c:11211:1", "cache-d:5000:3"],
    [f"mc{i}.internal:{11000 + i}" for i in range(10)],
])
def test_ketama_equals_libmemcached(libmemcached, servers):
    parsed = []
    for s in servers:
        host, port, *weight = s.split(":")
        parsed.append((host, int(port), int(weight[0]) if weight else 1))
    for key_type, keys in (("str", text_keys(101, nul=True)), ("int", int_keys(102))):
        real = libmemcached.servers_of(parsed, [str(k).encode() for k in keys])
        router = make_router("ketama", len(servers), key_type, {"servers": servers})
        assert_router_equals(router, keys, real)


def memcached_keys(seed: int) -> list[str]:
    """Text keys memcached takes: no whitespace or control characters, at most 250 bytes."""
    keys = [k for k in text_keys(seed, nul=False)
            if k and len(k.encode()) <= 250 and not any(c.isspace() or ord(c) < 0x21 for c in k)]
    return keys[:4000]


@pytest.mark.memcached
@pytest.mark.parametrize("pool,key_hash,named", [("md5pool", "md5", False),
                                                  ("fnvpool", "fnv1a_64", True)])
def test_ketama_equals_twemproxy(twemproxy, pool, key_hash, named):
    keys = memcached_keys(103 if named else 104)
    real = twemproxy.servers_of(pool, [k.encode() for k in keys])
    servers = [f"127.0.0.1:{port}:1" + (f" mc-{i}" if named else "")
               for i, port in enumerate(twemproxy.memcached_ports)]
    router = make_router("ketama", len(servers), "str", {"servers": servers, "hash": key_hash})
    assert_router_equals(router, keys, real)
    assert len(set(real)) == len(servers)
    # bytes >= 0x80 are where twemproxy's signed-char fnv1a_64 parts from plain FNV-1a
    assert any(max(k.encode()) >= 0x80 for k in keys)


# ---------------------------------------------------------------------------------- Vitess


def even_shard(ksid_hex: str, shards: int) -> int:
    return int(ksid_hex, 16) * shards >> 64


@pytest.mark.go
@pytest.mark.parametrize("vindex", ["hash", "xxhash"])
def test_vitess_vindexes_equal_vitess(reference_programs, vindex):
    keys = int_keys(111)
    ksids = reference_programs.go("vitessref", vindex, stdin="".join(f"{k}\n" for k in keys))
    for shards, ranges in ((4, None), (3, ["-55", "55-aa", "aa-"]), (16, None)):
        params = {"shard_ranges": ranges} if ranges else {}
        router = make_router(f"vitess-{vindex}", shards, "int", params)
        if ranges:
            bounds = [int(r.split("-")[0].ljust(16, "0"), 16) for r in ranges[1:]]
            expected = [sum(int(k, 16) >= b for b in bounds) for k in ksids]
        else:
            expected = [even_shard(k, shards) for k in ksids]
        assert_router_equals(router, keys, expected)


# ---------------------------------------------------------------------------------- by hand


@pytest.mark.go
@pytest.mark.parametrize("key_type", ["str", "int"])
def test_hand_written_hashes_equal_go_and_c(reference_programs, key_type):
    import xxhash

    keys = text_keys(121, nul=True) if key_type == "str" else int_keys(122)
    data = [str(k).encode() for k in keys]
    rows = [list(map(int, line.split("\t"))) for line in reference_programs.go(
        "bytehashes", stdin="".join(d.hex() + "\n" for d in data))]
    crc, f32, f64, xx = (list(col) for col in zip(*rows))
    assert crc == [zlib.crc32(d) for d in data]
    assert xx == [xxhash.xxh64_intdigest(d) for d in data]
    for name, real in (("crc32", crc), ("fnv1a32", f32), ("fnv1a64", f64), ("xxhash64", xx)):
        for shards in (7, 100, 2**31 - 1):
            assert_router_equals(make_router(name, shards, key_type), keys,
                                 [h % shards for h in real])


@pytest.mark.java
@pytest.mark.go
def test_reference_programs_are_built_by_the_script(reference_programs):
    """`make deps` runs scripts/reference-impls; a second run finds everything built."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "reference-impls"), "fetch"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ready" in proc.stdout
    assert "building" not in proc.stderr
