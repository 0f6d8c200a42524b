"""`skewcheck leak-diff BEFORE AFTER`, run as users run it, on saved profiles."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import run_skewcheck
from test_leak_gotargets import build_orders_binary, start_target

from skewcheck.leak.finding import counted_total
from skewcheck.leak.profile import parse_goroutine_profile

SAMPLES = Path(__file__).parent / "data" / "pprof"


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


def _steady(target, debug: int, want=None) -> bytes:
    """A profile taken once the goroutines of the fixture's own earlier requests have exited.

    Each GET is served on its own connection; the goroutine of the previous one may still be
    on its way out when the next profile is written, and would count as one more goroutine.
    Without `want`, two profiles in a row with the same total; with it, a total of `want`.
    """
    deadline = time.monotonic() + 10
    previous = None
    while True:
        body = target.get(f"/debug/pprof/goroutine?debug={debug}")
        total = counted_total(parse_goroutine_profile(body.decode(), "fixture"))
        if (total == want) if want is not None else (total == previous):
            return body
        if time.monotonic() > deadline:
            return body  # the assertions below then say what the profile holds
        previous = total
        time.sleep(0.05)


@pytest.fixture(scope="module")
def saved(request, orders_binary, tmp_path_factory) -> dict[str, Path]:
    """A leaky target's profiles saved before and after it was left 5 silent connections."""
    out = tmp_path_factory.mktemp("profiles")
    target = start_target(request, orders_binary, "leaky")
    port = int(target.address.rsplit(":", 1)[1])
    paths, totals = {}, {}
    for debug in (1, 2):
        paths[f"before{debug}"] = out / f"before.debug{debug}.txt"
        body = _steady(target, debug)
        totals[debug] = counted_total(parse_goroutine_profile(body.decode(), "fixture"))
        paths[f"before{debug}"].write_bytes(body)
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    request.addfinalizer(lambda: [s.close() for s in silent])
    for debug in (1, 2):
        paths[f"after{debug}"] = out / f"after.debug{debug}.txt"
        paths[f"after{debug}"].write_bytes(_steady(target, debug, want=totals[debug] + 5))
    return paths


@pytest.mark.go
@pytest.mark.parametrize("before, after", [("before2", "after2"), ("before1", "after1"),
                                           ("before1", "after2")])
def test_more_goroutines_after_is_a_leak_with_the_new_stacks_grouped(saved, before, after):
    run = run_skewcheck("leak-diff", str(saved[before]), str(saved[after]))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "leak: 5 more goroutines" in run.stdout
    assert "5 × [" in run.stdout
    block = run.stdout[run.stdout.index("5 × ["):]
    assert block.index("net/http.(*conn).readRequest") < block.index("net/http.(*conn).serve")
    assert "ReadHeaderTimeout" in run.stdout


@pytest.mark.go
def test_tolerance_absorbs_small_growth(saved):
    run = run_skewcheck("leak-diff", str(saved["before2"]), str(saved["after2"]),
                        "--tolerance", "5")
    assert run.returncode == 0, run.stdout
    assert "no leak: 5 more goroutines" in run.stdout


@pytest.mark.go
def test_fewer_goroutines_after_is_no_leak(saved):
    run = run_skewcheck("leak-diff", str(saved["after2"]), str(saved["before2"]))
    assert run.returncode == 0
    assert "no leak" in run.stdout and "new stacks" not in run.stdout


def test_written_samples_diff_across_go_versions():
    run = run_skewcheck("leak-diff", str(SAMPLES / "go1.21-debug2.txt"),
                        str(SAMPLES / "go1.19-debug2.txt"))
    assert run.returncode == 1
    assert "[IO wait, 3+ minutes]" in run.stdout and "main.notify.func1" in run.stdout


@pytest.mark.parametrize("garbage", ["not-a-profile.html", "heap-debug1.txt", "missing.txt"])
def test_garbage_or_unreadable_file_is_one_line_and_exit_2(garbage):
    run = run_skewcheck("leak-diff", str(SAMPLES / garbage), str(SAMPLES / "go1.19-debug2.txt"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith("skewcheck leak-diff: ")
    assert garbage in run.stderr


def test_negative_tolerance_is_a_usage_error():
    run = run_skewcheck("leak-diff", str(SAMPLES / "go1.19-debug2.txt"),
                        str(SAMPLES / "go1.19-debug2.txt"), "--tolerance", "-1")
    assert run.returncode == 2 and "--tolerance" in run.stderr
