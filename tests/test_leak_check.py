"""The leak gate's rules, causes, filters and config, on written profiles (no Go needed)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from skewcheck.errors import UsageError
from skewcheck.leak import LeakConfig, LeakProbe, LeakSourceError, leak_hook, load_profile
from skewcheck.leak.benign import is_benign
from skewcheck.leak.cause import diagnose
from skewcheck.leak.check import (
    SETTLE_BACKOFF,
    SETTLE_FIRST_WAIT_S,
    SETTLE_MAX_WAIT_S,
    drain,
    gc_proven,
    probe_survival,
    settle,
)
from skewcheck.leak.finding import new_goroutines
from skewcheck.leak.probe import DRAIN_GRACE_S, ProbeConnections, resolve_target
from skewcheck.leak.profile import Profile, Stack, parse_goroutine_profile
from skewcheck.leak.proof import GoroutineLeakView, leaked_only
from skewcheck.leak.report import render_check, render_findings
from skewcheck.leak.signature import is_plumbing, signature_of
from skewcheck.leak.source import ProfileNotServed, goroutine_profile_url, goroutineleak_profile_url
from skewcheck.report import findings as report_findings
from skewcheck.verdict import Verdict

SAMPLES = Path(__file__).parent / "data" / "pprof"
EMPTY = Profile("debug=2", 0, ())


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def goroutines(n: int, state: str = "chan receive", fn: str = "main.worker") -> Profile:
    return Profile("debug=2", n, tuple(
        Stack((fn,), created_by="main.handler", state=state, goroutine_id=i) for i in range(n)))


# --- signatures, benign stacks, causes -----------------------------------------------------------

@pytest.mark.parametrize("function, plumbing", [
    ("internal/poll.runtime_pollWait", True), ("net.(*conn).Read", True),
    ("bufio.(*Reader).fill", True), ("net/http.(*connReader).Read", True),
    ("net/http.readRequest", True), ("net/http.HandlerFunc.ServeHTTP", True),
    ("runtime.gopark", True), ("io.ReadAll", True),
    ("net/http.(*conn).readRequest", False), ("net/http.(*conn).serve", False),
    ("bufio.(*Reader).Peek", False), ("main.leakyUpload", False),
    ("net/http.(*persistConn).readLoop", False), ("github.com/acme/api.(*Server).handle", False),
])
def test_plumbing_frames(function, plumbing):
    assert is_plumbing(function) is plumbing


def test_benign_stacks_are_named_predicates():
    stacks = load_profile(SAMPLES / "go1.19-debug1.txt").stacks
    assert [is_benign(s) for s in stacks] == [False, False, True, True]  # signal loop, pprof writer
    assert is_benign(Stack(("runtime.goexit",)))
    assert is_benign(Stack((), created_by="net/http.(*connReader).startBackgroundRead"))


@pytest.mark.parametrize("sample, goroutine, cause", [
    ("go1.19-debug2.txt", 45, "no_read_header_timeout"),
    ("go1.19-debug2.txt", 52, "blocked_channel"),
    ("go1.27-labels.txt", 19, "no_read_timeout"),
    ("go1.26-leaked.txt", 14, "unclosed_response_body"),
    ("go1.21-debug2.txt", 7, "goroutine_not_exiting"),
])
def test_causes_come_from_frames_and_state(sample, goroutine, cause):
    stack = next(s for s in load_profile(SAMPLES / sample).stacks if s.goroutine_id == goroutine)
    states = {stack.state: 1} if stack.state else {}
    assert diagnose(signature_of(stack), stack, states).name == cause


def test_idle_keepalive_connection_is_no_idle_timeout():
    stack = Stack(("internal/poll.runtime_pollWait", "bufio.(*Reader).fill", "bufio.(*Reader).Peek",
                   "net/http.(*conn).serve"),
                  created_by="net/http.(*Server).Serve", state="IO wait")
    assert signature_of(stack).functions == ("bufio.(*Reader).Peek", "net/http.(*conn).serve")
    assert diagnose(signature_of(stack), stack, {"IO wait": 1}).name == "no_idle_timeout"


def test_findings_are_grouped_by_signature_with_count_state_and_minutes():
    findings = new_goroutines(EMPTY, load_profile(SAMPLES / "go1.19-debug2.txt"))
    top = findings[0]
    assert top.signature.functions == ("net/http.(*conn).readRequest", "net/http.(*conn).serve")
    assert (top.count, top.states, top.wait_minutes) == (3, {"IO wait": 3}, 3)
    data = json.loads(json.dumps([f.to_json() for f in findings]))
    assert data[0]["cause"] == "no_read_header_timeout" and "ReadHeaderTimeout" in data[0]["fix"]
    assert data[0]["created_by"] == "net/http.(*Server).Serve"


# --- the settle loop (goleak's retry with backoff) -----------------------------------------------

def test_settle_backs_off_exponentially_until_the_deadline():
    clock = FakeClock()
    result = settle(lambda: goroutines(9), limit=5, timeout_s=3.0, clock=clock, sleep=clock.sleep)
    assert not result.settled and result.profile.total == 9
    assert clock.sleeps[0] == SETTLE_FIRST_WAIT_S
    assert clock.sleeps[1] == pytest.approx(SETTLE_FIRST_WAIT_S * SETTLE_BACKOFF)
    assert max(clock.sleeps) <= SETTLE_MAX_WAIT_S
    assert sum(clock.sleeps) == pytest.approx(3.0)
    assert result.attempts == len(clock.sleeps) + 1


def test_settle_stops_as_soon_as_the_total_is_back():
    clock = FakeClock()
    totals = iter([9, 8, 5, 1])
    result = settle(lambda: goroutines(next(totals)), limit=5, timeout_s=10, clock=clock,
                    sleep=clock.sleep)
    assert result.settled and result.attempts == 3 and result.profile.total == 5


# --- the two rules --------------------------------------------------------------------------------

def test_probe_survival_blocks_on_connections_still_served():
    after = load_profile(SAMPLES / "go1.19-debug2.txt")
    check = probe_survival(EMPTY, after, after, probes={"silent": 3}, tolerance=0, hold_s=10,
                           closed_by_server=0)
    assert check.status == "block" and check.value == 3
    assert "no_read_header_timeout" in check.message
    assert [f["cause"] for f in check.details["findings"]] == ["no_read_header_timeout"]


def test_probe_survival_counts_at_most_one_goroutine_per_probe():
    after = load_profile(SAMPLES / "go1.19-debug2.txt")
    check = probe_survival(EMPTY, after, after, probes={"silent": 2}, tolerance=1, hold_s=10,
                           closed_by_server=0)
    assert check.value == 2


def test_probe_survival_passes_when_the_server_closed_them():
    check = probe_survival(EMPTY, goroutines(0), EMPTY, probes={"silent": 20}, tolerance=2,
                           hold_s=4, closed_by_server=20)
    assert check.status == "pass" and check.value == 0


def test_probes_that_never_show_up_are_inconclusive():
    check = probe_survival(EMPTY, EMPTY, EMPTY, probes={"silent": 20}, tolerance=2, hold_s=4,
                           closed_by_server=0)
    assert check.status == "inconclusive" and "showed up" in check.message


def test_metrics_only_survival_uses_the_total():
    before, after = Profile("go_goroutines", 10), Profile("go_goroutines", 70)
    check = probe_survival(before, after, after, probes={"silent": 20, "stalled": 20},
                           tolerance=2, hold_s=4, closed_by_server=0)
    assert check.status == "block" and check.value == 40


def test_drain_blocks_with_grouped_findings_and_passes_within_tolerance():
    clock = FakeClock()
    stuck = settle(lambda: goroutines(7), limit=3, timeout_s=1, clock=clock, sleep=clock.sleep)
    check = drain(goroutines(1), stuck, tolerance=2, timeout_s=1)
    assert check.status == "block" and check.value == 6
    finding = check.details["findings"][0]
    assert (finding["count"], finding["cause"]) == (6, "blocked_channel")
    settled = settle(lambda: goroutines(3), limit=3, timeout_s=1, clock=clock, sleep=clock.sleep)
    assert drain(goroutines(1), settled, tolerance=2, timeout_s=1).status == "pass"


# --- configuration --------------------------------------------------------------------------------

def test_config_defaults_match_the_design():
    config = LeakConfig(pprof_url="http://127.0.0.1:6060/debug/pprof/")
    assert (config.silent, config.partial, config.stalled) == (20, 20, 20)  # 2020 % 100
    assert config.hold_s + config.settle_timeout_s <= 30
    assert config.probe_target == ("127.0.0.1", 6060) and config.active
    assert not LeakConfig().active and not LeakConfig(pprof_url="http://x:1", enabled=False).active


@pytest.mark.parametrize("data, field", [
    ({"hold_s": 0}, "leak.hold_s"), ({"silent": 5000}, "leak.silent"),
    ({"pprof_url": "ftp://x/"}, "leak.pprof_url"), ({"target": "nohost"}, "leak.target"),
    ({"probe_path": "orders"}, "leak.probe_path"), ({"unknown": 1}, "leak.unknown"),
])
def test_config_errors_name_the_field(data, field):
    with pytest.raises(UsageError, match=field.replace(".", r"\.")):
        LeakConfig.parse(data)


@pytest.mark.parametrize("url, expected", [
    ("http://h:1/debug/pprof/", "http://h:1/debug/pprof/goroutine?debug=2"),
    ("http://h:1/debug/pprof", "http://h:1/debug/pprof/goroutine?debug=2"),
    ("http://h:1", "http://h:1/debug/pprof/goroutine?debug=2"),
    ("http://h:1/debug/pprof/goroutine?debug=1", "http://h:1/debug/pprof/goroutine?debug=2"),
    ("http://h:1/admin/pprof/goroutine", "http://h:1/admin/pprof/goroutine?debug=2"),
])
def test_pprof_urls_point_at_the_goroutine_text(url, expected):
    assert goroutine_profile_url(url) == expected


def test_remote_targets_are_refused_unless_allowed():
    with pytest.raises(UsageError, match="not a loopback address.*allow_remote"):
        resolve_target("192.0.2.10", 80, allow_remote=False)  # TEST-NET-1: never contacted
    assert resolve_target("192.0.2.10", 80, allow_remote=True) == ("192.0.2.10", 80)
    assert resolve_target("localhost", 80, allow_remote=False) == ("localhost", 80)


# --- the probe run, against a fake source and a bare listening socket -----------------------------

class ScriptedSource:
    description = "scripted"

    def __init__(self, *profiles: Profile | Exception) -> None:
        self.profiles = list(profiles)

    def snapshot(self) -> Profile:
        item = self.profiles.pop(0) if len(self.profiles) > 1 else self.profiles[0]
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def listener():
    """A loopback socket whose backlog completes the probe's connects; nothing reads them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def quick_config(port: int, **overrides) -> LeakConfig:
    values = dict(pprof_url=f"http://127.0.0.1:{port}/debug/pprof/", silent=2, partial=2, stalled=2,
                  hold_s=0.01, settle_timeout_s=0.01)
    return LeakConfig(**{**values, **overrides})


def test_unreachable_source_gives_inconclusive_checks_not_exceptions(listener):
    down = LeakSourceError("pprof endpoint http://127.0.0.1:1/ is unreachable: refused")
    probe = LeakProbe(quick_config(listener), source=ScriptedSource(down))
    checks = probe.run()
    assert [c.status for c in checks] == ["inconclusive", "inconclusive"]
    assert Verdict(tuple(checks)).exit_code == 3
    assert all("unreachable" in c.message for c in checks)


def test_garbled_source_gives_inconclusive(listener):
    def garbled():
        return parse_goroutine_profile("<html>")

    source = ScriptedSource(EMPTY)
    source.snapshot = garbled  # type: ignore[method-assign]
    checks = LeakProbe(quick_config(listener), source=source).run()
    assert [c.status for c in checks] == ["inconclusive", "inconclusive"]
    assert "not a goroutine profile" in checks[0].message


def test_refused_probe_target_is_inconclusive(listener):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens here now
    config = quick_config(listener, target=f"127.0.0.1:{port}")
    probe = LeakProbe(config, source=ScriptedSource(EMPTY))
    check = probe.run_probes()
    assert check.status == "inconclusive" and "refused" in check.message


def test_probe_connections_always_close(listener):
    probes = ProbeConnections("127.0.0.1", listener, {"silent": 2, "partial": 1, "stalled": 1}, "/")
    with probes:
        assert len(probes.sockets) == 4
        assert probes.opened == {"silent": 2, "partial": 1, "stalled": 1}
        held = list(probes.sockets)
        assert probes.closed_by_server() == 0
    assert probes.sockets == [] and all(s.fileno() == -1 for s in held)


def test_leak_hook_runs_only_where_the_run_is_judged(listener):
    class Scenario:
        leak = quick_config(listener)

    class Run:
        scenario = Scenario()
        role = "master"

    assert leak_hook(Run()) is not None
    Run.role = "worker"
    assert leak_hook(Run()) is None
    Scenario.leak = None
    Run.role = "local"
    assert leak_hook(Run()) is None


def test_a_probe_needs_a_source():
    with pytest.raises(UsageError, match="pprof_url"):
        LeakProbe(LeakConfig())


# --- early verdicts: the hold ends when the server closed every probe, the drain when a block
# is certain (the real-server counterparts: test_leak_probe.py, test_leak_goroutineleak.py) ----

def serving(n: int) -> Profile:
    """`n` goroutines parked reading a request that never comes, as a server without timeouts."""
    return Profile("debug=2", n, tuple(
        Stack(("internal/poll.runtime_pollWait", "net/http.(*conn).readRequest",
               "net/http.(*conn).serve"), created_by="net/http.(*Server).Serve",
              state="IO wait", goroutine_id=100 + i) for i in range(n)))


def plus(*profiles: Profile) -> Profile:
    stacks = tuple(s for p in profiles for s in p.stacks)
    return Profile("debug=2", len(stacks), stacks)


@pytest.fixture
def closing_listener():
    """A loopback server that closes every connection it accepts: a server with short timeouts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()


def real_pause_clock() -> FakeClock:
    """Fake time for the probe's waits, with a real moment at each so sockets can change."""
    clock = FakeClock()
    fake_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        fake_sleep(seconds)
        time.sleep(0.01)

    clock.sleep = sleep  # type: ignore[method-assign]
    return clock


def test_the_hold_ends_once_the_server_closed_every_probe(closing_listener):
    clock = real_pause_clock()
    # silent ones only: a probe writing to a socket the server already closed gets a reset
    config = quick_config(closing_listener, silent=6, partial=0, stalled=0, hold_s=10,
                          settle_timeout_s=1)
    probe = LeakProbe(config, source=ScriptedSource(EMPTY), clock=clock, sleep=clock.sleep)
    check = probe.run_probes()
    assert check.status == "pass" and check.details["closed_by_server"] == 6
    assert check.details["held_s"] < config.hold_s  # ended early, in fake seconds
    full = LeakProbe(config.model_copy(update={"early_verdict": False}),
                     source=ScriptedSource(EMPTY), clock=clock, sleep=clock.sleep)
    assert full.run_probes().details["held_s"] == pytest.approx(config.hold_s)


def test_the_hold_waits_while_closed_probes_still_hold_goroutines(closing_listener):
    clock = real_pause_clock()
    config = quick_config(closing_listener, silent=6, partial=0, stalled=0, hold_s=5,
                          settle_timeout_s=1)
    # the server closed the sockets but its goroutines stay: the hold is not cut short
    source = ScriptedSource(EMPTY, serving(6))
    check = LeakProbe(config, source=source, clock=clock, sleep=clock.sleep).run_probes()
    assert check.status == "block" and check.details["held_s"] == pytest.approx(5)


def test_a_certain_block_ends_the_drain_once_the_probes_own_goroutines_are_gone(listener):
    clock = FakeClock()
    config = quick_config(listener, hold_s=1, settle_timeout_s=15)
    leftovers = goroutines(5)  # the load's workers: not back, but not the probe's
    # baseline, before the probes, visible, after the hold, then the drain's snapshots
    source = ScriptedSource(EMPTY, leftovers, plus(leftovers, serving(6)),
                            plus(leftovers, serving(6)), plus(leftovers, serving(6)), leftovers)
    probe = LeakProbe(config, source=source, clock=clock, sleep=clock.sleep)
    probe.baseline()
    assert probe.run_probes().status == "block"
    assert probe.certain_block() == "leak_probe_survival"
    drained_from = clock.now
    check = probe.drain_check()
    assert check.status == "block" and check.value == 5
    assert check.details["blocked_by"] == "leak_probe_survival"
    assert check.details["attempts"] == 2  # one look with the probes' goroutines, one without
    assert clock.now - drained_from < DRAIN_GRACE_S
    assert "not waiting out 15 s: leak_probe_survival already blocks" in check.message


def test_without_early_verdicts_the_drain_waits_out_its_timeout(listener):
    clock = FakeClock()
    config = quick_config(listener, hold_s=1, settle_timeout_s=15, early_verdict=False)
    source = ScriptedSource(EMPTY, EMPTY, serving(6), serving(6), goroutines(5))
    probe = LeakProbe(config, source=source, clock=clock, sleep=clock.sleep)
    probe.baseline()
    assert probe.run_probes().status == "block" and probe.certain_block() is None
    drained_from = clock.now
    check = probe.drain_check()
    assert check.status == "block" and "blocked_by" not in check.details
    assert clock.now - drained_from == pytest.approx(15)


def test_settle_stops_when_done_says_so():
    clock = FakeClock()
    looks = iter([9, 8, 7])
    result = settle(lambda: goroutines(next(looks)), limit=2, timeout_s=10, clock=clock,
                    sleep=clock.sleep, done=lambda p: p.total <= 8)
    assert (result.settled, result.done_early, result.attempts) == (False, True, 2)


# --- GC-proven leaks (the real-server counterpart: test_leak_goroutineleak.py) ------------------

def test_leaked_only_keeps_the_goroutines_marked_leaked():
    profile = load_profile(SAMPLES / "go1.26-leaked.txt")
    leaked = leaked_only(profile)
    assert {s.goroutine_id for s in leaked.stacks} == {12, 14} and leaked.total == 2
    grouped = load_profile(SAMPLES / "go1.26-leaked-debug1.txt")
    assert leaked_only(grouped) is grouped  # debug=1 of goroutineleak lists only leaked ones


def test_gc_proven_blocks_on_any_new_leak_and_names_the_stack():
    before = leaked_only(load_profile(SAMPLES / "go1.26-leaked.txt"))
    after = plus(before, Profile("debug=2", 1, (
        Stack(("main.leakyNotify.func1",), created_by="main.leakyNotify", state="chan send",
              leaked=True),)))
    check = gc_proven(before, after, view={"available": True})
    assert (check.status, check.value, check.limit) == ("block", 1, 0)
    assert [f["frames"] for f in check.details["findings"]] == [["main.leakyNotify.func1"]]
    assert "blocked_channel" in check.message
    assert gc_proven(before, before, view={}).status == "pass"


def test_gc_proven_without_a_later_look_is_inconclusive_unless_already_proven():
    base = Profile("debug=2", 0, ())
    assert gc_proven(base, None, view={}, error="reset").status == "inconclusive"
    assert gc_proven(base, base, view={}, error="reset").status == "inconclusive"
    proven = goroutines(3)
    assert gc_proven(base, proven, view={}, error="reset").status == "block"


@pytest.mark.parametrize("url, expected", [
    ("http://h:1/debug/pprof/", "http://h:1/debug/pprof/goroutineleak?debug=2"),
    ("http://h:1", "http://h:1/debug/pprof/goroutineleak?debug=2"),
    ("http://h:1/debug/pprof/goroutine?debug=1", "http://h:1/debug/pprof/goroutineleak?debug=2"),
    ("http://h:1/admin/pprof/goroutine", "http://h:1/admin/pprof/goroutineleak?debug=2"),
    ("http://h:1/admin/dump", None),  # no pprof layout: the profile cannot be placed
])
def test_the_goroutineleak_profile_sits_beside_the_goroutine_profile(url, expected):
    assert goroutineleak_profile_url(url) == expected
    view = GoroutineLeakView.for_config(LeakConfig(pprof_url=url))
    assert view.url == expected and (view.available is False) == (expected is None)


def test_a_target_without_the_profile_is_probed_as_before(listener):
    not_served = ProfileNotServed("pprof endpoint …/goroutineleak answered HTTP 404 Not Found")
    probe = LeakProbe(quick_config(listener, silent=0, partial=0, stalled=0),
                      source=ScriptedSource(EMPTY), leak_source=ScriptedSource(not_served))
    checks = probe.run()
    assert [c.rule for c in checks] == ["leak_probe_survival", "leak_drain"]
    assert Verdict(tuple(checks)).status == "pass"
    view = checks[1].details["goroutineleak"]
    assert view["available"] is False and "HTTP 404" in view["reason"]
    assert "GC-proven leaks were not looked for" in render_check(checks[1])


def test_a_goroutineleak_profile_that_fails_midway_is_inconclusive(listener):
    down = LeakSourceError("goroutineleak profile is unreachable: reset")
    probe = LeakProbe(quick_config(listener), source=ScriptedSource(EMPTY),
                      leak_source=ScriptedSource(EMPTY, down))
    checks = probe.run()
    assert [(c.rule, c.status) for c in checks][-1] == ("leak_gc_proven", "inconclusive")
    assert Verdict(tuple(checks)).exit_code == 3


def test_a_leak_proven_after_the_load_is_a_certain_block(listener):
    clock = FakeClock()
    config = quick_config(listener, silent=0, partial=0, stalled=0, settle_timeout_s=15)
    worker = Stack(("main.leakyNotify.func1",), created_by="main.leakyNotify", state="chan send",
                   leaked=True)
    leaked = Profile("debug=2", 3, (worker, worker, worker))
    probe = LeakProbe(config, source=ScriptedSource(EMPTY, leaked), clock=clock,
                      sleep=clock.sleep, leak_source=ScriptedSource(EMPTY, leaked))
    probe.baseline()
    checks = probe.after_load()
    assert probe.certain_block() == "leak_gc_proven"
    assert [(c.rule, c.status) for c in checks] == [
        ("leak_probe_survival", "pass"), ("leak_drain", "block"), ("leak_gc_proven", "block")]
    assert checks[1].details["blocked_by"] == "leak_gc_proven" and clock.now < DRAIN_GRACE_S


# --- hostile text, new configuration --------------------------------------------------------------

def test_profile_text_reaches_the_terminal_escaped():
    hostile = "main.handler\x1b[2J\x1b]0;owned\x07\u202egnp.exe"
    stack = Stack((hostile,), created_by="main.start\r\n  fix: nothing", state="chan send")
    findings = new_goroutines(EMPTY, Profile("debug=2", 1, (stack,)))
    text = render_findings(findings)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\r" not in text and "main.handler\\x1b[2J" in text and "\\u202e" in text
    as_json = findings[0].to_json()
    assert "\x1b" not in report_findings.title(as_json) + report_findings.stack(as_json)


@pytest.mark.parametrize("data, field", [
    ({"handshake": -1}, "leak.handshake"), ({"tls": "maybe"}, "leak.tls"),
    ({"goroutineleak": "sometimes"}, "leak.goroutineleak"),
    ({"early_verdict": "soon"}, "leak.early_verdict"),
])
def test_new_config_keys_are_validated(data, field):
    with pytest.raises(UsageError, match=field.replace(".", r"\.")):
        LeakConfig.parse(data)


def test_a_goroutineleak_read_missed_after_the_load_is_made_up_by_the_one_after_the_drain(listener):
    down = LeakSourceError("goroutineleak profile is unreachable: reset")
    probe = LeakProbe(quick_config(listener, silent=0, partial=0, stalled=0),
                      source=ScriptedSource(EMPTY), leak_source=ScriptedSource(EMPTY, down, EMPTY))
    checks = probe.run()
    assert [(c.rule, c.status) for c in checks][-1] == ("leak_gc_proven", "pass")
    assert checks[-1].details["goroutineleak"]["errors"] == {"after_load": str(down)}
