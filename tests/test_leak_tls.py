"""The probe over TLS, against real Go HTTPS servers (gotargets/orders -tls, a certificate it
makes for 127.0.0.1 at start).

Silent TLS connections never send a ClientHello; stalled handshakes send one and then
nothing; partial and stalled requests stall inside a completed handshake. A server with no
timeouts keeps a goroutine for each; ReadHeaderTimeout bounds the handshake too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from test_leak_gotargets import build_orders_binary, start_target

from skewcheck.leak import LeakConfig
from skewcheck.leak.connections import client_hello, probe_tls_context

pytestmark = pytest.mark.go

PER_KIND = "10"
HOLD_S = "3"  # outlasts the 1 s ReadHeaderTimeout below
# ReadHeaderTimeout and IdleTimeout, no ReadTimeout: the handshake and the header are bounded
HEADER_AND_IDLE_TIMEOUTS = ("-read-header-timeout", "1s", "-read-timeout", "0s",
                            "-idle-timeout", "1s")
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(request, orders_binary, tmp_path_factory):
    out = tmp_path_factory.mktemp("tls")
    plans = {
        "leaky": ("leaky", (), ("--stalled", PER_KIND)),
        # no stalled bodies: only ReadTimeout bounds those (the leaky run shows them)
        "header-and-idle": ("fixed", HEADER_AND_IDLE_TIMEOUTS, ("--stalled", "0")),
    }
    processes = {}
    for name, (mode, flags, extra) in plans.items():
        target = start_target(request, orders_binary, mode, "-tls", *flags)
        command = [sys.executable, "-m", "skewcheck", "probe-leak", "--pprof", target.pprof,
                   "--hold", HOLD_S, "--settle-timeout", "3", "--probe-path", "/upload",
                   "--silent", PER_KIND, "--partial", PER_KIND, "--handshake", PER_KIND,
                   "--load", "/orders?user_id=2020", "--json", str(out / f"{name}.json"), *extra]
        processes[name] = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    for process in processes.values():
        request.addfinalizer(lambda p=process: p.poll() is None and p.kill())
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        run = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        path = out / f"{name}.json"
        run.doc = json.loads(path.read_text()) if path.exists() else None
        results[name] = run
    return results


def survival_of(run) -> dict:
    assert run.doc is not None, run.stdout + run.stderr
    return next(c for c in run.doc["verdict"]["checks"] if c["rule"] == "leak_probe_survival")


def test_tls_server_without_timeouts_blocks_on_silent_and_stalled_handshakes(runs):
    run = runs["leaky"]
    assert run.returncode == 1, run.stdout + run.stderr
    survival = survival_of(run)
    assert survival["status"] == "block" and survival["details"]["tls"] is True
    assert survival["details"]["probes"] == {"silent": 10, "partial": 10, "stalled": 10,
                                             "handshake": 10}
    causes = {f["cause"]: (f["count"], f["frames"][0]) for f in survival["details"]["findings"]}
    assert causes == {
        "tls_handshake_not_started": (10, "crypto/tls.(*Conn).readClientHello"),
        "tls_handshake_stalled": (10, "crypto/tls.(*serverHandshakeStateTLS13).readClientFinished"),
        "no_read_header_timeout": (10, "net/http.(*conn).readRequest"),  # inside the session
        "no_read_timeout": (10, "net/http.(*body).Read"),
    }
    assert "40 of 40 TLS probe connections still hold a goroutine" in run.stdout
    assert "TLS connections that never send a ClientHello are held open" in run.stdout
    assert "net/http bounds the TLS handshake by the smallest of ReadHeaderTimeout" in run.stdout
    assert "over TLS" in run.stderr and "10 stalled handshakes" in run.stderr


def test_tls_server_with_header_and_idle_timeouts_passes(runs):
    run = runs["header-and-idle"]
    assert run.returncode == 0, run.stdout + run.stderr
    survival = survival_of(run)
    assert survival["status"] == "pass" and survival["value"] == 0
    assert survival["details"]["closed_by_server"] == survival["details"]["opened"] == 30
    assert "leak_drain: PASS" in run.stdout and "verdict: PASS" in run.stdout


def test_a_client_hello_is_a_tls_handshake_record():
    hello = client_hello(probe_tls_context())
    assert hello[0] == 0x16 and hello[1] == 0x03  # handshake record, TLS 1.x
    assert hello[5] == 0x01  # ClientHello
    assert int.from_bytes(hello[3:5], "big") == len(hello) - 5


def test_tls_follows_the_pprof_url_unless_set():
    assert LeakConfig(pprof_url="https://127.0.0.1:1/debug/pprof/").probe_tls
    assert not LeakConfig(pprof_url="http://127.0.0.1:1/debug/pprof/").probe_tls
    # another target than the pprof one says nothing about its protocol
    assert not LeakConfig(pprof_url="https://127.0.0.1:1/", target="127.0.0.1:2").probe_tls
    assert LeakConfig(pprof_url="http://127.0.0.1:1/", target="127.0.0.1:2", tls=True).probe_tls
    plain = LeakConfig(pprof_url="http://127.0.0.1:1/")
    assert "handshake" not in plain.probe_counts and plain.probe_count == 60
    assert LeakConfig(pprof_url="https://127.0.0.1:1/").probe_count == 80

