"""Goroutine profile parsing: written samples of every header form from Go 1.19 to 1.27, and
profiles captured during the run from the machine's Go (debug=1, debug=2, go_goroutines)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from test_leak_gotargets import build_orders_binary, go_version, start_target

from skewcheck.errors import EXIT_USAGE, SkewcheckError
from skewcheck.leak import (
    ProfileError,
    load_profile,
    parse_go_goroutines,
    parse_goroutine_profile,
    signature_of,
)
from skewcheck.leak.finding import counted_total, new_goroutines
from skewcheck.leak.profile import ELIDED_MARKER, Profile

SAMPLES = Path(__file__).parent / "data" / "pprof"
READ_REQUEST = ("net/http.(*conn).readRequest", "net/http.(*conn).serve")


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


def by_id(profile: Profile) -> dict:
    return {stack.goroutine_id: stack for stack in profile.stacks}


# --- written samples ------------------------------------------------------------------------------

def test_go119_debug1_counts_grouped_stacks_and_splits_tab_runs():
    profile = load_profile(SAMPLES / "go1.19-debug1.txt")
    assert (profile.format, profile.total) == ("debug=1", 23)
    assert sum(stack.count for stack in profile.stacks) == 23
    silent = profile.stacks[0]
    assert silent.count == 20 and silent.state is None and silent.created_by is None
    assert silent.functions[0] == "internal/poll.runtime_pollWait"
    assert silent.locations[-1] == "/usr/lib/go-1.19/src/net/http/server.go:1916"
    assert signature_of(silent).functions == READ_REQUEST
    assert dict(profile.stacks[2].labels) == {"component": "signals"}
    assert counted_total(profile) == 21  # the profile writer and signal loop are benign


def test_go119_debug2_reads_states_minutes_and_old_creator_form():
    profile = load_profile(SAMPLES / "go1.19-debug2.txt")
    assert (profile.format, profile.total, profile.truncated) == ("debug=2", 7, False)
    stacks = by_id(profile)
    assert stacks[45].state == "IO wait" and stacks[45].wait_minutes == 3
    assert stacks[45].created_by == "net/http.(*Server).Serve" and stacks[45].creator_id is None
    assert signature_of(stacks[45]).functions == READ_REQUEST
    assert stacks[1].created_by is None and stacks[1].wait_minutes == 9
    assert stacks[52].state == "chan receive" and stacks[52].created_by == "main.notify"


def test_elided_frames_keep_a_stable_signature():
    deep = by_id(load_profile(SAMPLES / "go1.19-debug2.txt"))[61]
    assert deep.elided and deep.functions[-1] == ELIDED_MARKER
    assert signature_of(deep).functions == ("main.walk", ELIDED_MARKER)
    # Go 1.21+ elides the middle of deep stacks: "...N frames elided..."
    middle = by_id(load_profile(SAMPLES / "go1.21-debug2.txt"))[40]
    assert middle.elided
    assert signature_of(middle).functions == ("main.retry", ELIDED_MARKER, "main.retry")


def test_go121_creator_goroutine_locked_thread_and_generic_frames():
    stacks = by_id(load_profile(SAMPLES / "go1.21-debug2.txt"))
    assert stacks[18].created_by == "net/http.(*Server).Serve" and stacks[18].creator_id == 1
    assert stacks[18].wait_minutes == 12 and stacks[19].wait_minutes is None
    assert stacks[7].state == "syscall" and stacks[7].wait_minutes == 12
    assert stacks[7].locked_to_thread
    assert stacks[34].functions[0] == "main.process[...]" and stacks[34].creator_id == 33


def test_go125_durable_states():
    stacks = by_id(load_profile(SAMPLES / "go1.25-durable.txt"))
    assert all(stack.durable for stack in stacks.values())
    states = [stacks[i].state for i in (21, 22, 23)]
    assert states == ["chan receive", "sync.WaitGroup.Wait", "select"]
    assert stacks[22].wait_minutes == 2


def test_go126_leaked_states_and_traceback_labels():
    stacks = by_id(load_profile(SAMPLES / "go1.26-leaked.txt"))
    assert stacks[12].leaked and stacks[12].state == "chan send"
    assert stacks[14].leaked and stacks[14].wait_minutes == 3
    assert stacks[7].state == "chan send" and not stacks[7].leaked
    assert dict(stacks[7].labels) == {"handler": "notify", "user": "2020"}
    leak1 = load_profile(SAMPLES / "go1.26-leaked-debug1.txt")
    assert leak1.total == 2 and dict(leak1.stacks[0].labels) == {"handler": "notify"}


def test_go127_labels_after_the_bracket():
    stacks = by_id(load_profile(SAMPLES / "go1.27-labels.txt"))
    assert stacks[18].state == "select" and stacks[18].wait_minutes == 4
    assert dict(stacks[18].labels) == {"handler": "notify", "user": "42"}
    # a quoted "]" inside a label value does not end the status
    assert stacks[19].state == "IO wait"
    assert dict(stacks[19].labels) == {"handler": "upload", "path": '/upload?name="a]b"'}
    assert stacks[20].locked_to_thread and dict(stacks[20].labels) == {"component": "signals"}


def test_go_goroutines_from_prometheus_text():
    profile = parse_go_goroutines((SAMPLES / "metrics.txt").read_text())
    assert (profile.format, profile.total, profile.stacks) == ("go_goroutines", 83, ())
    assert parse_go_goroutines('go_goroutines{job="orders"} 12 1700000000000\n').total == 12


@pytest.mark.parametrize("name, message", [
    ("not-a-profile.html", "not a goroutine profile: line 1 is '<!DOCTYPE html>'"),
    ("heap-debug1.txt", "a heap profile, not a goroutine profile"),
])
def test_garbage_files_are_one_clear_error(name, message):
    with pytest.raises(ProfileError, match="^" + str(SAMPLES / name) + ": ") as excinfo:
        load_profile(SAMPLES / name)
    assert message in str(excinfo.value)
    assert isinstance(excinfo.value, SkewcheckError) and excinfo.value.exit_code == EXIT_USAGE
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("goroutine profile: total 3\nthis is not a record\n", "line 2"),
    ("goroutine profile: total 3\n3 @ 0x1 0x2\nnot a frame\n", "expected a '#' frame line"),
    ("goroutine 1 [running]:\nmain.main()\n\nhello\n", "line 4"),
    ("goroutine 1 [running\nmain.main()\n", "malformed goroutine header"),
    ("threadcreate profile: total 9\n", "a threadcreate profile"),
])
def test_malformed_text_names_the_line(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_goroutine_profile(text, source="t")


@pytest.mark.parametrize("data, message", [
    (b"\x1f\x8b\x08\x00binary", "binary data"),
    (b"goroutine profile: total 1\n\xff\xfe", "not UTF-8"),
])
def test_binary_files_are_refused(tmp_path, data, message):
    path = tmp_path / "profile.pb.gz"
    path.write_bytes(data)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


@pytest.mark.parametrize("text, message", [
    ("# HELP x y\nprocess_cpu_seconds_total 1\n", "no go_goroutines sample"),
    ("go_goroutines NaN\n", "go_goroutines is NaN"),
    ("go_goroutines{a=\"1\"} 3\ngo_goroutines{a=\"2\"} 4\n", "2 go_goroutines series"),
    ("<html>\n", "not Prometheus text"),
])
def test_bad_metrics_are_one_clear_error(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_go_goroutines(text)


def test_truncated_dump_is_flagged():
    text = (SAMPLES / "go1.21-debug2.txt").read_text()
    cut = text[:text.index("net/http.(*conn).serve(") + 30]
    profile = parse_goroutine_profile(cut)
    assert profile.truncated and profile.total == 1


# --- captured from the machine's Go --------------------------------------------------------------

@pytest.fixture(scope="module")
def captured(request, orders_binary):
    """A leaky target's profiles before, and while it holds 3 silent connections and a worker."""
    target = start_target(request, orders_binary, "leaky", env={"GODEBUG": "tracebacklabels=1"})

    def profiles() -> dict[int, str]:
        return {d: target.get(f"/debug/pprof/goroutine?debug={d}").decode() for d in (1, 2)}

    before = profiles()
    silent = [socket.create_connection(("127.0.0.1", int(target.address.split(":")[1])))
              for _ in range(3)]
    request.addfinalizer(lambda: [s.close() for s in silent])
    target.get("/orders/notify?user_id=2020")
    time.sleep(0.5)  # the worker blocks on its send once the confirmation delay is over
    after = profiles()
    metrics = target.get("/metrics").decode()
    return before, after, metrics


@pytest.mark.go
@pytest.mark.parametrize("debug", [1, 2])
def test_captured_profiles_show_the_silent_connections(captured, debug):
    before, after, _ = captured
    old = parse_goroutine_profile(before[debug])
    new = parse_goroutine_profile(after[debug])
    assert new.format == f"debug={debug}"
    assert new.total == sum(stack.count for stack in new.stacks)
    findings = {f.signature.functions: f for f in new_goroutines(old, new)}
    assert findings[READ_REQUEST].count == 3
    notify = findings[("main.leakyNotify.func1",)]
    assert notify.labels == {"handler": ["notify"]} or debug == 2
    if debug == 2:
        assert findings[READ_REQUEST].states == {"IO wait": 3}
        assert notify.cause.name == "blocked_channel" and notify.states == {"chan send": 1}


@pytest.mark.go
def test_captured_debug2_headers_match_this_go(captured):
    _, after, _ = captured
    profile = parse_goroutine_profile(after[2])
    serving = [s for s in profile.stacks if signature_of(s).functions == READ_REQUEST]
    assert len(serving) == 3
    assert all(s.created_by == "net/http.(*Server).Serve" for s in serving)
    worker = next(s for s in profile.stacks if s.functions[:1] == ("main.leakyNotify.func1",))
    if go_version() >= (1, 21):
        assert all(s.creator_id == 1 for s in serving)  # "created by … in goroutine 1"
    if go_version() >= (1, 26):  # GODEBUG=tracebacklabels=1 puts labels in the header
        assert dict(worker.labels) == {"handler": "notify"}


@pytest.mark.go
def test_captured_go_goroutines_agrees_with_the_profile(captured):
    _, after, metrics = captured
    total = parse_go_goroutines(metrics).total
    assert abs(total - parse_goroutine_profile(after[2]).total) <= 2  # scrapes come and go
