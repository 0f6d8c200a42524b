"""`skewcheck probe-leak` and the LeakProbe API against real Go servers built from gotargets/.

The leaky and fixed runs (CLI and API) go in parallel in one module fixture so the whole file
stays well under a minute: holds of 3–4 s against a fixed target whose timeouts are 1–1.5 s.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, run_skewcheck
from test_leak_gotargets import FAST_TIMEOUTS, build_orders_binary, start_target

from skewcheck.leak import LeakConfig, LeakProbe
from skewcheck.leak.load import send_requests

pytestmark = pytest.mark.go

HOLD_S = "4"  # outlasts the fixed target's 1–1.5 s timeouts with room to spare
SETTLE_S = "4"  # the leaky target never settles, so this is what its run waits
LOAD = ("/orders?user_id=2020", "/orders/notify?user_id=2020", "/orders/upstream?user_id=2020")
RUN_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def orders_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_orders_binary(tmp_path_factory)


def probe_leak_command(target, *extra: str) -> list[str]:
    args = ["--pprof", target.pprof, "--target", target.address, "--hold", HOLD_S,
            "--settle-timeout", SETTLE_S, "--probe-path", "/upload"]
    for path in LOAD:
        args += ["--load", path]
    return [sys.executable, "-m", "skewcheck", "probe-leak", *args, *extra]


def api_run(target, results: dict, key: str) -> None:
    config = LeakConfig(pprof_url=target.pprof, hold_s=3, settle_timeout_s=3, probe_path="/upload")
    host, port = target.address.split(":")

    def load() -> None:
        send_requests(host, int(port), list(LOAD), 10)

    results[key] = LeakProbe(config).run(load=load)


@pytest.fixture(scope="module")
def runs(request, orders_binary, tmp_path_factory):
    """Leaky and fixed targets probed at once: by the CLI (with --json) and by the API."""
    out = tmp_path_factory.mktemp("probe-leak")
    targets = {name: start_target(request, orders_binary, mode, *FAST_TIMEOUTS)
               for name, mode in [("leaky", "leaky"), ("fixed", "fixed"),
                                  ("api-leaky", "leaky"), ("api-fixed", "fixed"),
                                  ("metrics-leaky", "leaky")]}
    commands = {
        "leaky": probe_leak_command(targets["leaky"], "--json", str(out / "leaky.json")),
        "fixed": probe_leak_command(targets["fixed"], "--json", str(out / "fixed.json")),
        "metrics-leaky": [sys.executable, "-m", "skewcheck", "probe-leak",
                          "--metrics", targets["metrics-leaky"].url + "/metrics",
                          "--hold", "3", "--settle-timeout", "1", "--silent", "10",
                          "--partial", "0", "--stalled", "0"],
    }
    processes = {name: subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                 for name, cmd in commands.items()}
    for process in processes.values():
        request.addfinalizer(lambda p=process: p.poll() is None and p.kill())
    api: dict = {}
    threads = [threading.Thread(target=api_run, args=(targets[f"api-{m}"], api, m)) for m in
               ("leaky", "fixed")]
    for thread in threads:
        thread.start()
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode,
                                                    stdout, stderr)
    for thread in threads:
        thread.join(RUN_TIMEOUT_S)
    return {"cli": results, "api": api, "json": out}


def finding_block(stdout: str, frame: str) -> str:
    """The grouped finding (its `N × [state]` line through its fix line) that lists `frame`."""
    blocks: list[list[str]] = []
    for line in stdout.splitlines():
        if re.match(r"^  \d+ × \[", line):
            blocks.append([line.strip()])
        elif line.startswith("    ") and blocks:
            blocks[-1].append(line.strip())
    found = ["\n".join(b) for b in blocks if frame in b]
    assert found, f"no finding lists {frame}:\n{stdout}"
    return found[0]


def test_leaky_target_blocks_naming_the_silent_connection_stack(runs):
    run = runs["cli"]["leaky"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert ("leak_probe_survival: BLOCK — 60 of 60 probe connections still hold a goroutine"
            in run.stdout)
    block = finding_block(run.stdout, "net/http.(*conn).readRequest")
    assert block.startswith("40 × [IO wait]")
    assert block.index("net/http.(*conn).readRequest") < block.index("net/http.(*conn).serve")
    assert "ReadHeaderTimeout" in block
    upload = finding_block(run.stdout, "main.leakyUpload")
    assert upload.startswith("20 × [IO wait]") and "ReadTimeout" in upload
    assert "verdict: BLOCK" in run.stdout


def test_leaky_target_blocks_naming_the_blocked_channel_handler(runs):
    run = runs["cli"]["leaky"]
    assert "leak_drain: BLOCK" in run.stdout
    worker = finding_block(run.stdout, "main.leakyNotify.func1")
    assert worker.startswith("20 × [chan send]")
    assert "created by main.leakyNotify" in worker
    assert "request context" in worker
    client = finding_block(run.stdout, "net/http.(*persistConn).readLoop")
    assert "resp.Body.Close()" in client


def test_fixed_target_passes(runs):
    run = runs["cli"]["fixed"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "leak_probe_survival: PASS — 0 of 60" in run.stdout
    assert "the server closed 60" in run.stdout
    assert "leak_drain: PASS" in run.stdout and "verdict: PASS" in run.stdout


def test_the_hold_ends_once_the_fixed_target_closed_every_probe(runs):
    survival = json.loads((runs["json"] / "fixed.json").read_text())["verdict"]["checks"][0]
    details = survival["details"]
    assert details["closed_by_server"] == details["opened"] == 60
    assert details["held_s"] < details["hold_s"]  # its timeouts are shorter than the hold
    assert "the server closed all 60 probe connections after" in runs["cli"]["fixed"].stderr


def test_the_leaky_drain_does_not_wait_out_its_timeout_once_survival_blocks(runs):
    leaky = json.loads((runs["json"] / "leaky.json").read_text())
    drain = next(c for c in leaky["verdict"]["checks"] if c["rule"] == "leak_drain")
    assert drain["details"]["blocked_by"] == "leak_probe_survival"
    assert drain["details"]["settled"] is False
    # what is left after the probes' own connections closed is the load's leaks, not the probes'
    assert not any("net/http.(*conn).readRequest" in f["frames"]
                   for f in drain["details"]["findings"])


def test_progress_says_what_the_probe_does(runs):
    stderr = runs["cli"]["leaky"].stderr
    for line in ("holding 60 probe connections (20 silent, 20 partial, 20 stalled)",
                 "settling: leak_probe_survival already blocks"):
        assert line in stderr, stderr
    assert re.search(r"held 4\.\d s: the server closed 0 of 60", stderr), stderr


def test_a_target_without_the_goroutineleak_profile_says_so(runs):
    run = runs["cli"]["fixed"]
    assert "goroutineleak profile not served by the target" in run.stdout
    doc = json.loads((runs["json"] / "fixed.json").read_text())
    assert doc["leak"]["goroutineleak"]["available"] is False
    assert [c["rule"] for c in doc["verdict"]["checks"]] == ["leak_probe_survival", "leak_drain"]


def test_json_output_carries_checks_findings_and_verdict(runs):
    leaky = json.loads((runs["json"] / "leaky.json").read_text())
    assert leaky["schema"] == "skewcheck.leak/1"
    assert leaky["verdict"]["status"] == "block" and leaky["verdict"]["exit_code"] == 1
    rules = {c["rule"]: c for c in leaky["verdict"]["checks"]}
    survival = rules["leak_probe_survival"]
    assert survival["value"] == 60 and survival["limit"] == 2
    causes = {f["cause"]: f["count"] for f in survival["details"]["findings"]}
    assert causes == {"no_read_header_timeout": 40, "no_read_timeout": 20}
    drained = {f["cause"] for f in rules["leak_drain"]["details"]["findings"]}
    assert {"blocked_channel", "unclosed_response_body", "no_idle_timeout"} <= drained
    fixed = json.loads((runs["json"] / "fixed.json").read_text())
    assert fixed["verdict"]["status"] == "pass" and fixed["verdict"]["reasons"] == []


def test_api_gives_the_same_verdicts(runs):
    leaky, fixed = runs["api"]["leaky"], runs["api"]["fixed"]
    assert [(c.rule, c.status) for c in leaky] == [("leak_probe_survival", "block"),
                                                   ("leak_drain", "block")]
    assert [(c.rule, c.status) for c in fixed] == [("leak_probe_survival", "pass"),
                                                   ("leak_drain", "pass")]
    json.dumps([c.to_json() for c in leaky + fixed])  # reporters can serialise every detail


def test_metrics_only_probe_judges_by_the_total(runs):
    run = runs["cli"]["metrics-leaky"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "leak_probe_survival: BLOCK — 10 of 10" in run.stdout


# --- failures a user can cause --------------------------------------------------------------------

def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_pprof_endpoint_down_is_inconclusive():
    port = free_port()
    run = run_skewcheck("probe-leak", "--pprof", f"http://127.0.0.1:{port}/debug/pprof/",
                        "--hold", "1", "--settle-timeout", "1")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "leak_probe_survival: INCONCLUSIVE" in run.stdout and "unreachable" in run.stdout
    assert "Traceback" not in run.stderr


def test_garbled_pprof_output_is_inconclusive(request, orders_binary):
    target = start_target(request, orders_binary, "fixed", *FAST_TIMEOUTS)
    run = run_skewcheck("probe-leak", "--pprof", target.url + "/metrics", "--hold", "1")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "not a goroutine profile" in run.stdout and "Traceback" not in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--pprof", "http://192.0.2.10:6060/debug/pprof/"], "not a loopback address"),
    (["--pprof", "http://127.0.0.1:1/", "--hold", "-1"], "--hold"),
    (["--pprof", "http://127.0.0.1:1/", "--silent", "5000"], "--silent"),
    (["--pprof", "http://127.0.0.1:1/", "--target", "nohost"], "--target"),
    (["--hold", "1"], "--pprof URL"),
])
def test_bad_usage_exits_2_with_one_line(args, message):
    run = run_skewcheck("probe-leak", *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and run.stderr.strip().count("\n") == 0
