"""The main job: real headless Locust runs of locustfiles/orders.py with the plugin and the gate."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO
from locust_runs import demo_target_left_running, free_port, kill_group, locust_cmd, run_locust

pytestmark = pytest.mark.slow

HEADLESS = ("--headless", "-u", "50", "-r", "50")


def test_default_scenario_passes(tmp_path: Path) -> None:
    run = run_locust(*HEADLESS, "-t", "8s", report_dir=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert "started the embedded demo target" in run.output
    assert "verdict: PASS (exit 0)" in run.stdout
    doc = run.result()
    assert doc["schema"] == "skewcheck.result/1" and doc["verdict"]["status"] == "pass"
    assert doc["requests"] >= doc["scenario"]["gate"]["min_requests"]
    # every request reached the target and was counted once
    assert doc["requests"] == doc["locust"]["requests"]
    # the demo target routes with the primary router and answers X-Shard: the emulation agrees
    assert doc["observed"]["requests"] == doc["requests"] and doc["observed"]["mismatches"] == 0
    assert not demo_target_left_running(run.output) and not run.leftover


def test_incident_blocks_naming_the_shard_and_share(tmp_path: Path) -> None:
    run = run_locust(*HEADLESS, "-t", "5s", "--skew-config", "configs/incident-2020.yaml", report_dir=tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    assert "verdict: BLOCK (exit 1)" in run.stdout
    assert "shard 0 carries 100.0% of requests under hash-mod" in run.stdout
    assert "routing skew" in run.stdout
    doc = run.result()
    reasons = {r["rule"]: r for r in doc["verdict"]["reasons"]}
    assert reasons["max_shard_share"]["shard"] == 0 and reasons["max_shard_share"]["value"] == 1.0
    # the hot shard's pool saturates on the demo target: the incident reproduces, with 503s
    assert doc["locust"]["failures"] > 0
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failure = next(tc.find("failure") for tc in junit.iter("testcase")
                   if tc.get("name") == "max_shard_share[hash-mod]")
    assert "shard 0" in failure.get("message") and "15%" in failure.get("message")
    assert (tmp_path / "summary.md").read_text().startswith("## skewcheck: ❌ BLOCK")
    assert not demo_target_left_running(run.output) and not run.leftover


def test_the_same_accounts_under_murmur3_pass_without_503s(tmp_path: Path) -> None:
    # --skew-routing also sets how the embedded target routes: the fix, tried before shipping it
    run = run_locust(*HEADLESS, "-t", "8s", "--skew-config", "configs/incident-2020.yaml",
                     "--skew-routing", "murmur3", report_dir=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    doc = run.result()
    assert doc["locust"]["failures"] == 0 and doc["observed"]["mismatches"] == 0
    assert doc["summary"]["routers"]["murmur3"]["max_share"] < 0.1


def test_a_run_too_short_for_min_requests_is_inconclusive(tmp_path: Path) -> None:
    run = run_locust(*HEADLESS, "-t", "3s", "--skew-min-requests", "1000000", report_dir=tmp_path)
    assert run.returncode == 3, run.output[-3000:]
    assert "verdict: INCONCLUSIVE (exit 3)" in run.stdout
    assert run.result()["verdict"]["reasons"][0]["rule"] == "min_requests"


def test_an_invalid_config_stops_before_any_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing:\n  primary: modulo\n")
    run = run_locust(*HEADLESS, "-t", "5s", "--skew-config", str(bad), timeout=60)
    assert run.returncode == 2
    assert "unknown router 'modulo'" in run.stderr and "Traceback" not in run.output
    assert "started the embedded demo target" not in run.output  # nothing was started


def test_a_target_refusing_connections_is_inconclusive(tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{free_port()}"
    run = run_locust(*HEADLESS, "-t", "3s", "--host", host, report_dir=tmp_path)
    assert run.returncode == 3, run.output[-3000:]
    assert "no requests were counted" in run.stdout


def test_keys_no_router_can_take_make_the_run_inconclusive(tmp_path: Path) -> None:
    bad_keys = str(REPO / "tests" / "data" / "text_keys_for_int_routing.py")
    run = run_locust("-f", bad_keys, *HEADLESS, "-t", "4s", report_dir=tmp_path)
    assert run.returncode == 3, run.output[-3000:]
    doc = run.result()
    check = next(c for c in doc["verdict"]["checks"] if c["rule"] == "request_keys")
    assert check["status"] == "inconclusive" and "could not be routed as int keys" in check["message"]
    assert "user-" in check["message"] and "Traceback" not in run.output
    # the good keys still count: nine in ten of what Locust sent
    assert 0.85 < doc["requests"] / doc["locust"]["requests"] < 0.95


def _worker_totals(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"skewcheck: worker \S+ counted (\d+) requests", output)]


# the second locustfile's workers take 1.5 s to stop: past the 0.5 s Locust's master waits for
# the workers' last reports after telling them to quit
@pytest.mark.parametrize("locustfile", [(), ("-f", str(REPO / "tests" / "data" / "slow_worker_stop.py"))],
                         ids=["orders", "workers-slow-to-stop"])
def test_processes_2_master_total_is_the_sum_of_the_workers(tmp_path: Path, locustfile: tuple[str, ...]) -> None:
    run = run_locust(*locustfile, *HEADLESS, "-t", "5s", "--processes", "2", report_dir=tmp_path, timeout=120)
    assert run.returncode == 0, run.output[-3000:]
    workers = _worker_totals(run.output)
    assert len(workers) == 2 and all(n > 0 for n in workers), run.output[-2000:]
    doc = run.result()
    assert doc["requests"] == sum(workers) == doc["locust"]["requests"]
    assert not run.leftover


def test_a_master_stopped_by_sigterm_loses_no_report(tmp_path: Path) -> None:
    # stopped from outside (SIGTERM, as a CI runner cancelling a job does), with workers that
    # take 1.5 s to stop: the verdict still counts everything they counted
    slow = str(REPO / "tests" / "data" / "slow_worker_stop.py")
    master = subprocess.Popen(locust_cmd("-f", slow, *HEADLESS, "-t", "60s", "--processes", "2",
                                         "--skew-report-dir", str(tmp_path)),
                              cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        time.sleep(6)
        master.send_signal(signal.SIGTERM)
        out, _ = master.communicate(timeout=60)
    finally:
        kill_group(master)
    workers = _worker_totals(out)
    assert len(workers) == 2 and all(n > 0 for n in workers), out[-2000:]
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["requests"] == sum(workers) == doc["locust"]["requests"], out[-2000:]


def test_explicit_master_and_workers_lose_no_report(tmp_path: Path) -> None:
    port = free_port()
    master = subprocess.Popen(
        locust_cmd("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                   "--expect-workers", "2", *HEADLESS, "-t", "5s", "--skew-report-dir", str(tmp_path)),
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    workers = [subprocess.Popen(locust_cmd("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                                cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True) for _ in range(2)]
    try:
        master_out, _ = master.communicate(timeout=120)
        worker_out = "".join(w.communicate(timeout=60)[0] for w in workers)
    finally:
        for p in (master, *workers):
            kill_group(p)
    assert master.returncode == 0, master_out[-3000:]
    totals = _worker_totals(worker_out)
    assert len(totals) == 2, worker_out[-2000:]
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["requests"] == sum(totals) == doc["locust"]["requests"]
    assert all(w.returncode == 0 for w in workers)



def test_the_incident_with_stop_on_block_ends_the_run_when_the_block_is_proven(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_locust(*HEADLESS, "-t", "60s", "--skew-config", "configs/incident-2020.yaml",
                     "--skew-stop-on", "block", report_dir=tmp_path)
    took = time.monotonic() - started
    assert run.returncode == 1, run.output[-3000:]
    assert "the verdict is decided (BLOCK)" in run.stdout
    doc = run.result()
    decided = doc["decision"]
    assert decided["status"] == "block" and decided["stop_on"] == "block"
    assert decided["elapsed_s"] <= 5 and 0 < decided["requests"] < doc["scenario"]["gate"]["min_requests"]
    assert took < 45  # it did not wait for its 60 s run time (a bound, not a measurement)
    share = next(c for c in doc["verdict"]["reasons"] if c["rule"] == "max_shard_share")
    assert share["details"]["anytime"] and "conclusive already" in share["message"]
    assert not demo_target_left_running(run.output) and not run.leftover


def test_a_target_that_dies_mid_run_is_inconclusive_never_pass(tmp_path: Path) -> None:
    from skewcheck.demo import start_subprocess, stop_subprocess

    target, url = start_subprocess(shards=100, routing="mod", cwd=str(REPO))
    proc = subprocess.Popen(locust_cmd(*HEADLESS, "-t", "9s", "--host", url, "--skew-report-dir", str(tmp_path)),
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        time.sleep(3)
        stop_subprocess(target)  # killed mid-run: from now on every request is refused
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
        stop_subprocess(target)
    assert proc.returncode == 3, (out + err)[-3000:]
    assert "never reached the target" in out
    doc = json.loads((tmp_path / "result.json").read_text())
    unreached = next(c for c in doc["verdict"]["checks"] if c["rule"] == "unreached_requests")
    assert unreached["status"] == "inconclusive" and unreached["details"]["unreached"] > 0
    assert doc["unreached"] is not None and sum(doc["unreached"]) == unreached["details"]["unreached"]


def test_make_incident_ends_with_the_verdict_naming_the_slow_failing_shard(tmp_path: Path) -> None:
    # `make incident`'s command, with Locust's own logging as a user's terminal shows it
    run = run_locust(*HEADLESS, "-t", "20s", "--skew-config", "configs/incident-2020.yaml", "--skew-stop-on", "block",
                     report_dir=tmp_path, console=True)
    assert run.returncode == 1, run.output[-3000:]
    lines = [ln for ln in run.stdout.splitlines() if ln.strip()]
    tables = max(i for i, ln in enumerate(lines) if ln.startswith("Response time percentiles"))
    verdict = max(i for i, ln in enumerate(lines) if ln.startswith("verdict: "))
    assert tables < verdict and lines[verdict] == "verdict: BLOCK (exit 1)"
    # after the verdict: its checks, then where the reports are; nothing of Locust's
    assert all(ln.startswith("  [") for ln in lines[verdict + 1:-1]), lines[verdict:]
    assert lines[-1].startswith("skewcheck reports: ")
    failures = next(ln for ln in lines[verdict:] if "shard_failures:" in ln)
    assert re.search(r"shard 0: p99 \d[\d.]* m?s \(no other shard served a request to compare with\), "
                     r"\d+\.\d% of its [\d,]+ requests failed, the other 99 shards served none", failures), failures
    doc = run.result()
    assert doc["latency"]["shards"][0]["shard"] == 0 and doc["latency"]["shards"][0]["failure_rate"] > 0
    assert doc["heatmap"]["rows"][0]["counts"] == doc["heatmap"]["totals"]  # shard 0 takes every column
    assert doc["duration_s"] < doc["decision"]["elapsed_s"] + 3  # the load only, not the shutdown


def test_the_verdict_names_latency_against_the_median_shard_when_other_shards_serve(tmp_path: Path) -> None:
    run = run_locust(*HEADLESS, "-t", "8s", "--skew-shards", "4", "--skew-max-share", "0.4", report_dir=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    latency = next(ln for ln in run.stdout.splitlines() if "shard_latency:" in ln)
    assert re.search(r"p99 [\d.]+ ms, 0\.0% failed; the median of the other 3 shards: p50 [\d.]+ ms", latency), latency
    doc = run.result()
    assert doc["latency"]["median"]["shards"] == 3 and sum(doc["latency"]["requests"]) == doc["requests"]
