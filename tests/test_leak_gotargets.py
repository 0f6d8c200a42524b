"""The Go services the leak probe is proven against (gotargets/), and the helpers that run them.

Other leak tests import `build_orders_binary` and `start_target` from here: the binary is
built once per session into pytest's base temp dir, and every started server is killed in a
finalizer.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, require_binary

GOTARGETS = REPO / "gotargets"
START_TIMEOUT_S = 10.0  # the binary prints its address before serving; seconds mean it is stuck
# the fixed target's timeouts, short so a 4 s hold outlasts them with room to spare
FAST_TIMEOUTS = ("-read-header-timeout", "1s", "-read-timeout", "1500ms", "-idle-timeout", "1s")

pytestmark = pytest.mark.go


def build_orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`go build ./orders` once per session: the output path is shared by every leak test module."""
    go = require_binary("go")
    out = tmp_path_factory.getbasetemp() / "gotargets" / "orders"
    if not out.exists():
        build = subprocess.run([go, "build", "-o", str(out), "./orders"], cwd=GOTARGETS,
                               env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"},
                               capture_output=True, text=True, timeout=300)
        assert build.returncode == 0, f"go build failed:\n{build.stderr}"
    return out


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


def go_version() -> tuple[int, int]:
    output = subprocess.run([require_binary("go"), "env", "GOVERSION"], capture_output=True,
                            text=True, timeout=30).stdout
    match = re.match(r"go(\d+)\.(\d+)", output.strip())
    return (int(match[1]), int(match[2])) if match else (0, 0)


class GoTarget:
    """One running orders server on 127.0.0.1; `stop()` kills it (idempotent)."""

    def __init__(self, binary: Path, mode: str, *flags: str, env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [str(binary), "-mode", mode, "-addr", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.address = ""

    def wait_ready(self) -> GoTarget:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT_S):
                raise AssertionError("the Go target did not print its address")
        self.address = self.process.stdout.readline().strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", self.address), (
            f"unexpected first line {self.address!r}: {self.process.stderr.read()}")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pprof(self) -> str:
        return f"{self.url}/debug/pprof/"

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.url + path, headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()


def start_target(request: pytest.FixtureRequest, binary: Path, mode: str, *flags: str,
                 env: dict[str, str] | None = None) -> GoTarget:
    """Start a target and register its kill before waiting for it, so nothing is left behind."""
    target = GoTarget(binary, mode, *flags, env=env)
    request.addfinalizer(target.stop)
    return target.wait_ready()


@pytest.mark.parametrize("mode", ["leaky", "fixed"])
def test_target_serves_orders_metrics_and_pprof(request, orders_binary, mode):
    target = start_target(request, orders_binary, mode, *FAST_TIMEOUTS)
    order = {"user_id": 2020, "item": "book", "qty": 2}
    post = urllib.request.Request(target.url + "/orders", data=json.dumps(order).encode(),
                                  headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(post, timeout=10) as response:
        assert response.status == 201
        assert json.loads(response.read())["user_id"] == 2020
    assert json.loads(target.get("/orders?user_id=2020"))[0]["item"] == "book"
    assert json.loads(target.get("/orders?user_id=7")) == []
    assert json.loads(target.get("/orders/upstream?user_id=2020"))["upstream_status"] == 200
    metrics = target.get("/metrics").decode()
    assert re.search(r"^go_goroutines \d+$", metrics, re.M)
    assert target.get("/debug/pprof/goroutine?debug=1").startswith(b"goroutine profile: total ")


def test_target_rejects_an_unknown_mode(orders_binary):
    run = subprocess.run([str(orders_binary), "-mode", "sloppy"], capture_output=True, text=True,
                         timeout=10)
    assert run.returncode == 2
    assert "leaky or fixed" in run.stderr


def test_fixed_target_bounds_bodies(request, orders_binary):
    target = start_target(request, orders_binary, "fixed", "-max-body", "16", *FAST_TIMEOUTS)
    upload = urllib.request.Request(target.url + "/upload", data=b"x" * 64, method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(upload, timeout=10)
    assert excinfo.value.code == 413
