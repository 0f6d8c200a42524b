"""The embedded sharded orders service: routing fidelity, the 2020 incident, /metrics, clean shutdown.

All traffic goes to 127.0.0.1, every loop is bounded in count or time.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from conftest import REPO, require_binary

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from skewcheck.demo import DemoTarget, start_subprocess, stop_subprocess
from skewcheck.demo.pool import SecondRing, ShardPool
from skewcheck.errors import UsageError
from skewcheck.keytext import parse_key
from skewcheck.routing import make_router

INCIDENT_KEYS = [20200000 + 100 * j for j in range(127)]
INCIDENT = {"shards": 100, "key_type": "int", "pool_size": 2, "service_ms": 20, "wait_timeout_ms": 50}


class Client:
    """One keep-alive connection, the way a Locust user holds one."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None,
                raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path)

    def close(self) -> None:
        self.conn.close()


def metric_samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels -> value} for every sample in a Prometheus text exposition."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = collections.defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def scrape(url: str) -> str:
    c = Client(url)
    try:
        status, headers, body = c.get("/metrics")
    finally:
        c.close()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return body.decode()


def hammer(url: str, keys: list[int], threads: int = 32, seconds: float = 3.0) -> tuple[collections.Counter, set]:
    """Each thread is one test account holder cycling its own keys, like Locust users; returns codes and shards."""
    codes: collections.Counter = collections.Counter()
    shards: set[str] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def user(i: int) -> None:
        mine, n, local, seen = keys[i::threads], 0, collections.Counter(), set()
        c = Client(url)
        try:
            while time.monotonic() < deadline and n < 100_000:
                status, headers, _ = c.get(f"/orders?user_id={mine[n % len(mine)]}")
                local[status] += 1
                seen.add(headers.get("X-Shard"))
                n += 1
        finally:
            c.close()
            with lock:
                codes.update(local)
                shards.update(seen)

    workers = [threading.Thread(target=user, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 30)
    return codes, shards


def port_released(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine; a listener is not
        s.bind(("127.0.0.1", port))
    return True


def demo_children(parent: int | None = None) -> list[int]:
    """Live (non-zombie) processes running demo-target whose parent is `parent` (default: this test)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent and b"demo-target" in cmd:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def small_target() -> Any:
    with DemoTarget(shards=8, routing="hash-mod", key_type="int", service_ms=0) as target:
        yield target


# --- routing fidelity ----------------------------------------------------------------------


@pytest.mark.parametrize("routing", ["hash-mod", "murmur3"])
def test_x_shard_is_the_routers_prediction(routing: str) -> None:
    rnd = random.Random(7)
    keys = INCIDENT_KEYS[:40] + [0, 1, -1, -5, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]
    keys += [rnd.randrange(-(2**63), 2**63) for _ in range(60)] + [rnd.randrange(0, 10**7) for _ in range(60)]
    router = make_router(routing, 100, "int")
    with DemoTarget(shards=100, routing=routing, key_type="int", service_ms=0) as target:
        c = Client(target.url)
        try:
            for k in keys:
                want = str(router.shard(parse_key(str(k), "int")))
                status, headers, body = c.get(f"/orders?user_id={k}")
                assert status == 200 and headers["X-Shard"] == want, k
                assert all(o["shard"] == int(want) for o in json.loads(body))
            for k in keys[::10]:
                status, headers, body = c.request("POST", "/orders", {"user_id": k, "amount": 12.5})
                assert status == 201 and headers["X-Shard"] == str(router.shard(k)), k
                assert json.loads(body)["shard"] == int(headers["X-Shard"])
        finally:
            c.close()


def test_x_shard_for_str_keys() -> None:
    keys = ["alice", "bob", "ünïcødé", "用户42", "20200000", "a b", "{tag}x"]
    router = make_router("murmur3", 16, "str")
    with DemoTarget(shards=16, routing="murmur3", key_type="str", service_ms=0) as target:
        c = Client(target.url)
        try:
            for k in keys:
                status, headers, _ = c.get(f"/orders?user_id={quote(k)}")
                assert status == 200 and headers["X-Shard"] == str(router.shard(k)), k
                status, headers, _ = c.request("POST", "/orders", {"user_id": k})
                assert status == 201 and headers["X-Shard"] == str(router.shard(k)), k
        finally:
            c.close()


# --- the incident --------------------------------------------------------------------------


def test_incident_saturates_shard_zero_under_hash_mod_but_not_murmur3() -> None:
    with DemoTarget(routing="hash-mod", **INCIDENT) as target:
        codes, shards = hammer(target.url, INCIDENT_KEYS)
        samples = metric_samples(scrape(target.url))
    assert shards == {"0"}  # every strided account lands on shard 0
    assert codes[503] > 0 and codes[200] > 0, codes
    usage = samples["shard_connection_pool_usage_max"]
    assert usage[(("shard", "0"),)] == 1.0
    assert all(v == 0 for labels, v in usage.items() if labels != (("shard", "0"),))
    assert samples["shard_pool_timeouts_total"][(("shard", "0"),)] == codes[503]
    assert samples["shard_requests_total"][(("code", "503"), ("shard", "0"))] == codes[503]
    assert samples["shard_slow_query_rate_5m"][(("shard", "0"),)] > 0

    with DemoTarget(routing="murmur3", **INCIDENT) as target:
        codes, shards = hammer(target.url, INCIDENT_KEYS)
        samples = metric_samples(scrape(target.url))
    assert codes[503] == 0 and codes[200] > 0, codes
    assert len(shards) > 50  # spread over most shards
    assert sum(samples["shard_pool_timeouts_total"].values()) == 0


# --- /metrics ------------------------------------------------------------------------------


def _exercised_metrics() -> str:
    with DemoTarget(shards=4, routing="murmur3", key_type="int", pool_size=1, service_ms=0,
                    wait_timeout_ms=0) as target:
        c = Client(target.url)
        try:
            for k in range(20):
                assert c.get(f"/orders?user_id={k}")[0] == 200
                assert c.request("POST", "/orders", {"user_id": k, "amount": 1})[0] == 201
        finally:
            c.close()
        return scrape(target.url)


def test_metrics_parse_and_have_every_shard() -> None:
    samples = metric_samples(_exercised_metrics())
    shards = {(("shard", str(i)),) for i in range(4)}
    for name in ("shard_connection_pool_usage_max", "shard_connection_pool_in_use", "shard_connection_pool_size",
                 "shard_pool_timeouts_total", "shard_slow_query_rate_5m", "shard_pool_wait_seconds_count",
                 "shard_pool_wait_seconds_sum"):
        assert set(samples[name]) == shards, name
    assert all(v == 0 for v in samples["shard_connection_pool_in_use"].values())  # nothing in flight
    assert all(0 < v <= 1 for v in samples["shard_connection_pool_usage_max"].values())
    assert sum(samples["shard_pool_wait_seconds_count"].values()) == 40
    by_code = collections.Counter()
    for labels, v in samples["shard_requests_total"].items():
        by_code[dict(labels)["code"]] += v
    assert by_code == {"200": 20, "201": 20}
    buckets = samples["shard_pool_wait_seconds_bucket"]
    assert all(buckets[(("le", "+Inf"), s[0])] == samples["shard_pool_wait_seconds_count"][s] for s in shards)


@pytest.mark.promtool
def test_metrics_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=_exercised_metrics(), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/orders", None),
    ("GET", "/orders?user_id=", None),
    ("GET", "/orders?user_id=abc", None),
    ("GET", "/orders?user_id=1.5", None),
    ("GET", "/orders?user_id=99999999999999999999999", None),
    ("GET", "/orders?user_id=1&user_id=2", None),
    ("GET", "/orders?user_id=%FF%FE", None),
    ("POST", "/orders", b""),
    ("POST", "/orders", b"not json"),
    ("POST", "/orders", b"[1, 2]"),
    ("POST", "/orders", b"\xff\xfe"),
    ("POST", "/orders", b'{"amount": 3}'),
    ("POST", "/orders", b'{"user_id": null}'),
    ("POST", "/orders", b'{"user_id": true}'),
    ("POST", "/orders", b'{"user_id": [1]}'),
    ("POST", "/orders", b'{"user_id": "x1"}'),
    ("POST", "/orders", b'{"user_id": 5, "amount": "ten"}'),
    ("POST", "/orders", b'{"user_id": 5, "amount": NaN}'),
])
def test_bad_user_id_is_400_json(small_target: DemoTarget, method: str, path: str, body: bytes | None) -> None:
    c = Client(small_target.url)
    try:
        status, headers, payload = c.request(method, path, raw=body)
        assert status == 400, payload
        assert "error" in json.loads(payload) and "Traceback" not in payload.decode()
        assert "X-Shard" not in headers
        assert c.get("/healthz")[0] == 200  # the keep-alive connection is still usable
    finally:
        c.close()


def test_lone_surrogate_str_key_is_400() -> None:
    with DemoTarget(shards=8, routing="murmur3", key_type="str", service_ms=0) as target:
        c = Client(target.url)
        try:
            status, _, payload = c.request("POST", "/orders", raw=b'{"user_id": "\\ud800"}')
            assert status == 400 and "error" in json.loads(payload)
        finally:
            c.close()


def test_healthz_404_and_405() -> None:
    with DemoTarget(shards=3, routing="murmur3", key_type="int", service_ms=0) as target:
        c = Client(target.url)
        try:
            status, _, body = c.get("/healthz")
            assert status == 200 and json.loads(body)["shards"] == 3
            assert c.get("/nope")[0] == 404
            status, headers, _ = c.request("POST", "/metrics", raw=b"")
            assert status == 405 and headers["Allow"] == "GET"
        finally:
            c.close()


def test_bad_options_are_usage_errors() -> None:
    for kwargs in ({"routing": "nope"}, {"routing": "mod", "key_type": "str"}, {"shards": 0},
                   {"pool_size": 0}, {"service_ms": -1}, {"port": 70000}):
        with pytest.raises(UsageError):
            DemoTarget(**kwargs)


# --- the pool on its own -------------------------------------------------------------------


def test_pool_times_out_when_full_and_counts_it() -> None:
    pool = ShardPool(size=1, service_s=0.2, wait_timeout_s=0.01)
    holder = threading.Thread(target=pool.query, args=(200,))
    holder.start()
    time.sleep(0.05)
    assert pool.snapshot().in_use == 1
    assert pool.query(200) == 503
    holder.join()
    snap = pool.snapshot()
    assert snap.in_use == 0 and snap.usage_max == 1.0 and snap.timeouts == 1
    assert snap.requests == {200: 1, 503: 1}
    assert snap.wait_buckets[-1] == 2


def test_second_ring_is_bounded_and_forgets() -> None:
    ring = SecondRing(5)
    for s in range(1000):
        ring.add(s, 1)
    assert ring.values(999) == [1] * 5 and len(ring._value) == 5
    ring.raise_to(999, 7)
    assert max(ring.values(999)) == 7 and ring.values(1010) == []


# --- lifecycle -----------------------------------------------------------------------------


def test_in_process_stop_is_idempotent_and_closes_connections() -> None:
    target = DemoTarget(shards=2, routing="murmur3", key_type="int", service_ms=0)
    url = target.start()
    assert target.start() == url  # a second start is the same server
    port = urlsplit(url).port
    c = Client(url, timeout=5)
    assert c.get("/orders?user_id=1")[0] == 200
    target.stop()
    target.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        c.get("/orders?user_id=1")  # the open keep-alive connection was ended too
    c.close()
    assert port_released(port)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_exits_0_on_signal_and_releases_the_port(sig: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "skewcheck", "demo-target", "--shards", "10", "--routing",
                             "hash-mod", "--service-ms", "1"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("demo-target listening on http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[-1]
        c = Client(url)
        status, headers, _ = c.get("/orders?user_id=20200000")
        assert status == 200 and headers["X-Shard"] == "0"  # held open across the signal
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
        c.close()
        assert port_released(urlsplit(url).port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_takes_defaults_from_config_and_flags_override(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("shards: 7\nrouting: {primary: murmur3, key_type: str}\ndemo: {pool_size: 3}\n")
    proc, url = start_subprocess(config=str(cfg), shards=9, cwd=str(REPO))
    try:
        c = Client(url)
        status, headers, _ = c.get("/orders?user_id=alice")  # str keys, from the config
        assert status == 200 and headers["X-Shard"] == str(make_router("murmur3", 9, "str").shard("alice"))
        samples = metric_samples(c.get("/metrics")[2].decode())
        assert len(samples["shard_connection_pool_size"]) == 9  # the flag beats the config's 7
        assert set(samples["shard_connection_pool_size"].values()) == {3}
        c.close()
    finally:
        assert stop_subprocess(proc) == 0


def test_subprocess_mode_leaves_no_process_behind() -> None:
    proc, url = start_subprocess(shards=4, routing="murmur3", key_type="int", service_ms=1, cwd=str(REPO))
    assert demo_children() == [proc.pid]
    c = Client(url)
    assert c.get("/orders?user_id=42")[0] == 200
    assert stop_subprocess(proc) == 0
    assert stop_subprocess(proc) == 0  # idempotent
    c.close()
    assert demo_children() == [] and not alive(proc.pid)
    assert port_released(urlsplit(url).port)


def test_subprocess_start_failure_kills_and_reports(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown router"):
        start_subprocess(routing="nope", cwd=str(REPO))
    bad = tmp_path / "bad.yaml"
    bad.write_text("shards: -1\n")
    with pytest.raises(UsageError, match="shards"):
        start_subprocess(config=str(bad), cwd=str(REPO))
    assert demo_children() == []


def test_subprocess_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """The plugin's process may be SIGKILLed; --exit-with-parent stops the orphaned target anyway."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from skewcheck.demo import start_subprocess
        proc, url = start_subprocess(shards=2, routing="murmur3", key_type="int")
        print(proc.pid, flush=True)
        time.sleep(60)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)
