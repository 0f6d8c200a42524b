"""Go's goroutineleak profile beside the probe, on real Go servers built with
GOEXPERIMENT=goroutineleakprofile (gotargets/orders).

The two views see different leaks: the GC proves a worker blocked on a channel nobody will
serve, the probe finds goroutines parked reading silent connections (a normal wait to the GC).
The runs go in parallel in one module fixture, with 3 s holds against targets whose timeouts
are 1–1.5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from test_leak_gotargets import FAST_TIMEOUTS, build_orders_binary, start_target

from skewcheck.leak import parse_goroutine_profile

pytestmark = pytest.mark.go

HOLD_S = "3"  # outlasts the fixed target's 1–1.5 s timeouts
# long enough that a drain waiting it out would stand out; the blocks below must not wait it
SETTLE_S = "30"
NOTIFY = "/orders/notify?user_id=2020"
RUN_TIMEOUT_S = 90
LEAK_LOOKS, LEAK_LOOK_EVERY_S = 40, 0.05  # up to 2 s for three workers to block


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


@pytest.fixture(scope="session")
def goroutineleak_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory, goroutineleak=True)


def probe_leak(target, out: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "skewcheck", "probe-leak", "--pprof", target.pprof,
            "--hold", HOLD_S, "--settle-timeout", SETTLE_S, "--probe-path", "/upload",
            "--json", str(out / f"{name}.json"), *extra]


@pytest.fixture(scope="module")
def runs(request, orders_binary, goroutineleak_binary, tmp_path_factory):
    """Every probe-leak run of this module, started at once and collected."""
    out = tmp_path_factory.mktemp("goroutineleak")
    # fixed mode's server timeouts with leaky mode's handlers: the probes pass, the worker leaks
    timeouts_leaky_handlers = ("-handlers", "leaky", *FAST_TIMEOUTS)
    plans = {
        # both views on the seed's service: silent connections and a blocked channel worker
        "both": (goroutineleak_binary, "leaky", (), ("--load", NOTIFY, "--load",
                                                     "/orders/upstream?user_id=2020")),
        # two leaked workers: within the drain's tolerance of 2, but proven by the GC
        "profile-only": (goroutineleak_binary, "fixed", timeouts_leaky_handlers,
                         ("--load", NOTIFY, "--load-requests", "2")),
        "profile-only-plain": (orders_binary, "fixed", timeouts_leaky_handlers,
                               ("--load", NOTIFY, "--load-requests", "2")),
        # twenty leaked workers and a settle timeout of 30 s: the proof ends the wait
        "proof-ends-drain": (goroutineleak_binary, "fixed", timeouts_leaky_handlers,
                             ("--load", NOTIFY)),
        # silent connections only, no load: the GC sees nothing wrong
        "probe-only": (goroutineleak_binary, "leaky", (), ("--partial", "0", "--stalled", "0")),
    }
    processes = {}
    for name, (binary, mode, flags, extra) in plans.items():
        target = start_target(request, binary, mode, *flags)
        processes[name] = subprocess.Popen(probe_leak(target, out, name, *extra), cwd=REPO,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True)
    for process in processes.values():
        request.addfinalizer(lambda p=process: p.poll() is None and p.kill())
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout,
                                                    stderr)
        results[name].doc = json.loads((out / f"{name}.json").read_text()) \
            if (out / f"{name}.json").exists() else None
    return results


def checks_of(run) -> dict[str, dict]:
    assert run.doc is not None, run.stdout + run.stderr
    return {c["rule"]: c for c in run.doc["verdict"]["checks"]}


def frames_of(check: dict) -> set[str]:
    return {frame for f in check["details"]["findings"] for frame in f["frames"]}


def test_real_goroutineleak_profile_is_parsed_in_both_forms(request, goroutineleak_binary):
    """Go 1.26's own output: debug=2 marks `(leaked)` in the header of every goroutine the
    leak-detection GC proved leaked; debug=1 lists only those, under its own header."""
    target = start_target(request, goroutineleak_binary, "leaky")
    for _ in range(3):
        target.get(NOTIFY)
    for _ in range(LEAK_LOOKS):  # the workers block 100 ms after their handler gave up on them
        full = parse_goroutine_profile(target.get("/debug/pprof/goroutineleak?debug=2").decode())
        leaked = [s for s in full.stacks if s.leaked]
        if len(leaked) == 3:
            break
        time.sleep(LEAK_LOOK_EVERY_S)
    assert len(leaked) == 3 and full.total > 3  # debug=2 writes every goroutine
    assert {(s.functions[0], s.state, s.created_by) for s in leaked} == {
        ("main.leakyNotify.func1", "chan send", "main.leakyNotify")}
    assert not any(s.leaked for s in full.stacks if "net/http.(*conn).serve" in s.functions)
    grouped = parse_goroutine_profile(target.get("/debug/pprof/goroutineleak?debug=1").decode())
    assert grouped.format == "debug=1" and grouped.total == 3
    assert [(s.count, s.functions[-1]) for s in grouped.stacks] == [(3, "main.leakyNotify.func1")]
    assert ("handler", "notify") in grouped.stacks[0].labels


def test_both_views_report_their_own_leaks(runs):
    run = runs["both"]
    assert run.returncode == 1, run.stdout + run.stderr
    checks = checks_of(run)
    assert [c["rule"] for c in run.doc["verdict"]["checks"]] == [
        "leak_probe_survival", "leak_drain", "leak_gc_proven"]
    proven = checks["leak_gc_proven"]
    assert proven["status"] == "block" and proven["value"] == 20 and proven["limit"] == 0
    assert [(f["count"], f["frames"], f["created_by"], f["cause"])
            for f in proven["details"]["findings"]] == [
        (20, ["main.leakyNotify.func1"], "main.leakyNotify", "blocked_channel")]
    # the GC never marks a goroutine reading a socket; the probe's findings are all of those
    survival = checks["leak_probe_survival"]
    assert survival["status"] == "block"
    assert "net/http.(*conn).readRequest" in frames_of(survival)
    assert "main.leakyNotify.func1" not in frames_of(survival)
    assert "net/http.(*conn).serve" not in frames_of(proven)
    assert "leak_gc_proven: BLOCK — 20 goroutine(s) proven leaked by Go's GC" in run.stdout
    assert "goroutineleak after the drain: 20 goroutine(s) proven leaked" in run.stderr


def test_a_channel_leak_only_the_profile_sees(runs):
    run = runs["profile-only"]
    assert run.returncode == 1, run.stdout + run.stderr
    checks = checks_of(run)
    assert checks["leak_probe_survival"]["status"] == "pass"  # the server has its timeouts
    assert checks["leak_drain"]["status"] == "pass"  # 2 more goroutines: within tolerance 2
    proven = checks["leak_gc_proven"]
    assert proven["status"] == "block" and proven["value"] == 2
    assert frames_of(proven) == {"main.leakyNotify.func1"}
    assert "make the goroutine select on the request context's Done()" in run.stdout


def test_without_the_profile_the_same_leak_passes_and_the_report_says_why(runs):
    run = runs["profile-only-plain"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(checks_of(run)) == {"leak_probe_survival", "leak_drain"}
    assert "goroutineleak profile not served by the target" in run.stdout
    assert "HTTP 404" in run.stdout and "GC-proven leaks were not looked for" in run.stdout
    view = run.doc["leak"]["goroutineleak"]
    assert view["available"] is False and "not served" in view["reason"]


def test_a_gc_proven_leak_ends_the_drain_without_its_settle_timeout(runs):
    run = runs["proof-ends-drain"]
    assert run.returncode == 1, run.stdout + run.stderr
    checks = checks_of(run)
    assert checks["leak_probe_survival"]["status"] == "pass"
    drain = checks["leak_drain"]["details"]
    assert checks["leak_drain"]["status"] == "block"
    assert drain["blocked_by"] == "leak_gc_proven" and drain["settled"] is False
    assert drain["settle_timeout_s"] == float(SETTLE_S)
    assert "not waiting out 30 s: leak_gc_proven already blocks" in run.stdout
    assert checks["leak_gc_proven"]["value"] == 20


def test_a_silent_connection_leak_only_the_probe_sees(runs):
    run = runs["probe-only"]
    assert run.returncode == 1, run.stdout + run.stderr
    checks = checks_of(run)
    survival = checks["leak_probe_survival"]
    assert survival["status"] == "block" and survival["value"] == 20
    assert {f["cause"] for f in survival["details"]["findings"]} == {"no_read_header_timeout"}
    proven = checks["leak_gc_proven"]
    assert proven["status"] == "pass" and proven["details"]["findings"] == []
    assert "does not look at goroutines waiting on network I/O" in proven["message"]
