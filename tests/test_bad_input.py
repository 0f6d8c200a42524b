"""Bad input gets one clear message and the documented exit code — 2 for usage or
configuration, 3 for no evidence — never a traceback and never "unexpected error". The table in
the README's reliability section is this file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from conftest import run_skewcheck
from locust_runs import run_locust

BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "keys: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("saved")
    run = run_skewcheck("plan", "configs/default.yaml", "--requests", "5000", "--out", str(out))
    assert run.returncode in (0, 1, 3), run.stderr
    return json.loads((out / "result.json").read_text())


def _write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _result(tmp: Path, saved: dict, edit: Callable[[dict], None]) -> str:
    doc = json.loads(json.dumps(saved))
    edit(doc)
    return _write(tmp, "result.json", json.dumps(doc))


CASES: list[tuple[str, int, Callable[[Path, dict], list[str]]]] = [
    ("gate: result whose scenario is a string", 2,
     lambda t, s: ["gate", _result(t, s, lambda d: d.update(scenario="nope"))]),
    ("gate: result whose scenario.gate is invalid", 2,
     lambda t, s: ["gate", _result(t, s, lambda d: d["scenario"].update(gate={"max_shard_share": "lots"}))]),
    ("gate: result whose plan.rows is not a list", 2,
     lambda t, s: ["gate", _result(t, s, lambda d: d["plan"].update(rows="none"))]),
    ("gate: deeply nested JSON", 2,
     lambda t, s: ["gate", _write(t, "deep.json", '{"schema": "skewcheck.result/1", "x": ' + "[" * 100_000
                                  + "]" * 100_000 + "}")]),
    ("gate: not JSON", 2, lambda t, s: ["gate", _write(t, "x.json", "\x00\xff not json")]),
    ("gate: no such file", 2, lambda t, s: ["gate", str(t / "missing.json")]),
    ("gate: negative counts", 2,
     lambda t, s: ["gate", _result(t, s, lambda d: d["routers"]["mod"]["counts"].__setitem__(0, -1))]),
    ("gate --timeout nan", 2, lambda t, s: ["gate", "--sidecar", "http://127.0.0.1:1", "--timeout", "nan"]),
    ("gate --timeout inf", 2, lambda t, s: ["gate", "--sidecar", "http://127.0.0.1:1", "--timeout", "inf"]),
    ("gate --timeout -1", 2, lambda t, s: ["gate", "--sidecar", "http://127.0.0.1:1", "--timeout", "-1"]),
    ("gate --sidecar not a URL", 2, lambda t, s: ["gate", "--sidecar", "ftp://x"]),
    ("gate --sidecar nobody listening", 3, lambda t, s: ["gate", "--sidecar", "http://127.0.0.1:1", "--timeout", "2"]),
    ("gate --config whose limit the result's shards can't meet", 2,
     lambda t, s: ["gate", _result(t, s, lambda d: None),
                   "--config", _write(t, "c.yaml", "shards: 1000\ngate: {max_shard_share: 0.005}\n")]),
    ("sidecar --connect-timeout nan", 2, lambda t, s: ["sidecar", "--connect-timeout", "nan"]),
    ("sidecar --instance-id with spaces", 2, lambda t, s: ["sidecar", "--instance-id", "a b"]),
    ("plan: shards: 2000000000", 2, lambda t, s: ["plan", _write(t, "s.yaml", "shards: 2000000000\n")]),
    ("plan: window_s: 1e9", 2, lambda t, s: ["plan", _write(t, "w.yaml", "window_s: 1.0e9\n")]),
    ("plan: 10^6 shards × 4 routers × 600 s of window", 2,
     lambda t, s: ["plan", _write(t, "m.yaml", "shards: 1000000\nwindow_s: 600\n"
                                  "routing: {primary: mod, compare: [murmur3, jump, kafka]}\n")]),
    ("plan: a YAML alias bomb", 2, lambda t, s: ["plan", _write(t, "bomb.yaml", BOMB)]),
    ("plan: a duplicate key", 2, lambda t, s: ["plan", _write(t, "dup.yaml", "shards: 10\nshards: 20\n")]),
    ("plan: an unknown router", 2, lambda t, s: ["plan", _write(t, "r.yaml", "routing: {primary: modulo}\n")]),
    ("plan --requests 0", 2, lambda t, s: ["plan", "configs/default.yaml", "--requests", "0"]),
    ("route --shards 0", 2, lambda t, s: ["route", "--router", "mod", "--shards", "0", "1"]),
    ("route: an int key that isn't one", 2, lambda t, s: ["route", "--router", "mod", "--shards", "4", "abc"]),
    ("route: an int key beyond 64 bits", 2,
     lambda t, s: ["route", "--router", "mod", "--shards", "4", str(2**70)]),
    ("leak-diff: no such profiles", 2, lambda t, s: ["leak-diff", str(t / "a.txt"), str(t / "b.txt")]),
    ("probe-leak --pprof not a URL", 2, lambda t, s: ["probe-leak", "--pprof", "nope"]),
    ("demo-target --shards 0", 2, lambda t, s: ["demo-target", "--shards", "0"]),
    ("demo-target --port 70000", 2, lambda t, s: ["demo-target", "--port", "70000"]),
]


@pytest.mark.parametrize("name,code,argv", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message_and_its_exit_code(name: str, code: int, argv, tmp_path: Path,
                                                         saved: dict) -> None:
    run = run_skewcheck(*argv(tmp_path, saved), timeout=60)
    assert run.returncode == code, (name, run.returncode, run.stdout[-500:], run.stderr[-1500:])
    assert "Traceback" not in run.stderr and "unexpected error" not in run.stderr, run.stderr
    assert run.stderr.strip() and len(run.stderr.strip().splitlines()) <= 5, run.stderr


@pytest.mark.slow
def test_locust_with_an_impossible_shard_count_exits_2_with_one_message(tmp_path: Path) -> None:
    run = run_locust("--headless", "-u", "1", "-r", "1", "-t", "2s", "--skew-shards", "1000000000", timeout=60)
    assert run.returncode == 2, run.output[-2000:]
    assert "Traceback" not in run.output and "shards" in run.stderr
    assert not run.leftover
