"""The Go services the leak probe is proven against (gotargets/), and the helpers that run them.

Other leak tests import `build_orders_binary` and `start_target` from here: each binary (as
is, and built with GOEXPERIMENT=goroutineleakprofile) is built once per session into
pytest's base temp dir, and every started server is killed in a finalizer.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, require_binary, require_real_part

from skewcheck.config import load_scenario

GOTARGETS = REPO / "gotargets"
START_TIMEOUT_S = 10.0  # the binary prints its address before serving; seconds mean it is stuck
BUILD_AND_START_TIMEOUT_S = 300.0  # a cold Go build cache compiles net/http and crypto/tls first
# the fixed target's timeouts, short so a 4 s hold outlasts them with room to spare
FAST_TIMEOUTS = ("-read-header-timeout", "1s", "-read-timeout", "1500ms", "-idle-timeout", "1s")

pytestmark = pytest.mark.go


GOROUTINELEAK_EXPERIMENT = "goroutineleakprofile"  # Go 1.26; the profile is on by default later


def goroutineleak_build_env(go: str) -> dict[str, str]:
    """GOEXPERIMENT for a binary serving /debug/pprof/goroutineleak; {} where Go no longer
    knows the experiment (it is generally available there). Needs Go 1.26 at least."""
    require_real_part(go_version() >= (1, 26), "Go >= 1.26 (the goroutineleak profile)")
    known = subprocess.run([go, "env", "GOEXPERIMENT"], capture_output=True, text=True,
                           timeout=30, env={**os.environ, "GOEXPERIMENT": GOROUTINELEAK_EXPERIMENT})
    return {"GOEXPERIMENT": GOROUTINELEAK_EXPERIMENT} if known.returncode == 0 else {}


def build_orders_binary(tmp_path_factory: pytest.TempPathFactory, *,
                        goroutineleak: bool = False) -> Path:
    """`go build ./orders` once per session (also with the goroutineleak profile): the output
    path is shared by every leak test module."""
    go = require_binary("go")
    name = "orders-goroutineleak" if goroutineleak else "orders"
    out = tmp_path_factory.getbasetemp() / "gotargets" / name
    if not out.exists():
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        env.pop("GOEXPERIMENT", None)
        if goroutineleak:
            env.update(goroutineleak_build_env(go))
        build = subprocess.run([go, "build", "-o", str(out), "./orders"], cwd=GOTARGETS,
                               env=env, capture_output=True, text=True, timeout=300)
        assert build.returncode == 0, f"go build failed:\n{build.stderr}"
    return out


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


@pytest.fixture(scope="session")
def goroutineleak_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory, goroutineleak=True)


def go_version() -> tuple[int, int]:
    output = subprocess.run([require_binary("go"), "env", "GOVERSION"], capture_output=True,
                            text=True, timeout=30).stdout
    match = re.match(r"go(\d+)\.(\d+)", output.strip())
    return (int(match[1]), int(match[2])) if match else (0, 0)


class GoTarget:
    """One running orders server on 127.0.0.1; `stop()` kills it (idempotent)."""

    def __init__(self, binary: Path, mode: str, *flags: str, env: dict[str, str] | None = None):
        # a file, not a pipe: a TLS server logs every failed handshake, and a full pipe would
        # stall it mid-probe
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [str(binary), "-mode", mode, "-addr", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, **(env or {})})
        self.address = ""
        self.tls = "-tls" in flags

    def wait_ready(self) -> GoTarget:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT_S):
                raise AssertionError("the Go target did not print its address")
        self.address = self.process.stdout.readline().strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", self.address), (
            f"unexpected first line {self.address!r}: {self.stderr()}")
        return self

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    @property
    def pprof(self) -> str:
        return f"{self.url}/debug/pprof/"

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.url + path, headers={"Connection": "close"})
        context = ssl._create_unverified_context() if self.tls else None  # its own self-signed cert
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.log.close()


def start_target(request: pytest.FixtureRequest, binary: Path, mode: str, *flags: str,
                 env: dict[str, str] | None = None) -> GoTarget:
    """Start a target and register its kill before waiting for it, so nothing is left behind."""
    target = GoTarget(binary, mode, *flags, env=env)
    request.addfinalizer(target.stop)
    return target.wait_ready()


@pytest.mark.parametrize("mode, tls", [("leaky", False), ("fixed", False), ("leaky", True),
                                       ("fixed", True)])
def test_target_serves_orders_metrics_and_pprof(request, orders_binary, mode, tls):
    target = start_target(request, orders_binary, mode, *FAST_TIMEOUTS, *(["-tls"] if tls else []))
    order = {"user_id": 2020, "item": "book", "qty": 2}
    post = urllib.request.Request(target.url + "/orders", data=json.dumps(order).encode(),
                                  headers={"Content-Type": "application/json"}, method="POST")
    context = ssl._create_unverified_context() if tls else None
    with urllib.request.urlopen(post, timeout=10, context=context) as response:
        assert response.status == 201
        assert json.loads(response.read())["user_id"] == 2020
    assert json.loads(target.get("/orders?user_id=2020"))[0]["item"] == "book"
    assert json.loads(target.get("/orders?user_id=7")) == []
    assert json.loads(target.get("/orders/upstream?user_id=2020"))["upstream_status"] == 200
    metrics = target.get("/metrics").decode()
    assert re.search(r"^go_goroutines \d+$", metrics, re.M)
    assert target.get("/debug/pprof/goroutine?debug=1").startswith(b"goroutine profile: total ")


@pytest.mark.parametrize("flags", [("-mode", "sloppy"), ("-mode", "fixed", "-handlers", "sloppy")])
def test_target_rejects_an_unknown_mode(orders_binary, flags):
    run = subprocess.run([str(orders_binary), *flags], capture_output=True, text=True, timeout=10)
    assert run.returncode == 2
    assert f"{flags[-2]} must be leaky or fixed" in run.stderr


def test_only_the_experiment_build_serves_the_goroutineleak_profile(request, orders_binary,
                                                                      goroutineleak_binary):
    plain = start_target(request, orders_binary, "leaky")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        plain.get("/debug/pprof/goroutineleak?debug=1")
    assert excinfo.value.code == 404  # net/http/pprof: "Unknown profile"
    proven = start_target(request, goroutineleak_binary, "leaky")
    assert b"goroutineleak" in proven.get("/debug/pprof/")
    assert proven.get("/debug/pprof/goroutineleak?debug=1").startswith(
        b"goroutineleak profile: total 0")


def test_tls_target_makes_its_own_certificate_for_loopback(request, orders_binary):
    target = start_target(request, orders_binary, "fixed", "-tls", *FAST_TIMEOUTS)
    host, port = target.address.split(":")
    pem = ssl.get_server_certificate((host, int(port)))
    context = ssl.create_default_context(cadata=pem)  # verifies: the name is 127.0.0.1
    with urllib.request.urlopen(target.url + "/orders?user_id=1", timeout=10,
                                context=context) as response:
        assert response.status == 200


def test_fixed_target_bounds_bodies(request, orders_binary):
    target = start_target(request, orders_binary, "fixed", "-max-body", "16", *FAST_TIMEOUTS)
    upload = urllib.request.Request(target.url + "/upload", data=b"x" * 64, method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(upload, timeout=10)
    assert excinfo.value.code == 413


def test_make_leak_target_builds_and_serves_what_the_worked_scenario_probes(repo):
    """`make leak-target` serves the bundled service where configs/leak-probe.yaml looks."""
    make = require_binary("make")
    require_binary("go")
    default = subprocess.run([make, "-s", "-n", "leak-target"], cwd=repo, capture_output=True,
                             text=True, timeout=30).stdout
    scenario = load_scenario(repo / "configs" / "leak-probe.yaml")
    assert f"-addr {scenario.leak.target}" in default
    assert scenario.leak.probe_target == ("127.0.0.1", 6060) and scenario.leak.active
    # the same target on a port of the kernel's choosing, so a running one is no obstacle
    process = subprocess.Popen([make, "-s", "leak-target",
                                "LEAK_TARGET_ARGS=-mode leaky -addr 127.0.0.1:0"], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(BUILD_AND_START_TIMEOUT_S), "make leak-target printed nothing"
        address = process.stdout.readline().strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", address), address
        url = f"http://{address}/debug/pprof/goroutineleak?debug=1"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read().startswith(b"goroutineleak profile: total ")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # make and the service it started
        process.communicate(timeout=10)
