"""A Locust run against a real leaky Go service blocks on the leak even when shard balance is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from locust_runs import run_locust
from test_leak_gotargets import FAST_TIMEOUTS, orders_binary, start_target  # noqa: F401

pytestmark = [pytest.mark.go, pytest.mark.slow]


def _scenario(tmp_path: Path, pprof: str) -> Path:
    path = tmp_path / "leak.yaml"
    path.write_text(
        "shards: 100\nrouting: {primary: murmur3, key_type: int}\n"
        "keys: [{kind: uniform, low: 1, high: 10000000}]\n"
        "load: {wait_min_s: 0.01, wait_max_s: 0.03}\n"
        f"leak: {{pprof_url: '{pprof}goroutine', silent: 10, partial: 5, stalled: 5, hold_s: 3, "
        "settle_timeout_s: 4}\n")
    return path


@pytest.mark.parametrize("mode,flags,code", [("leaky", (), 1), ("fixed", FAST_TIMEOUTS, 0)])
def test_locust_run_gates_on_goroutine_leaks(request, orders_binary, tmp_path: Path,  # noqa: F811
                                             mode: str, flags: tuple, code: int) -> None:
    target = start_target(request, orders_binary, mode, *flags)
    run = run_locust("--headless", "-u", "20", "-r", "20", "-t", "6s", "--host", target.url,
                     "--skew-config", str(_scenario(tmp_path, target.pprof)), report_dir=tmp_path / "r",
                     timeout=120, console=True)
    assert run.returncode == code, run.output[-4000:]
    doc = run.result()
    checks = {c["rule"]: c for c in doc["verdict"]["checks"]}
    # the run's QPS is over its 6 s of load, not over the probe's hold and settle after it
    assert 5 <= doc["duration_s"] <= 7.5, doc["duration_s"]
    # while the probe holds and settles, Locust's stats printer is quiet (it would repeat one table)
    probing = run.output[run.output.index("skewcheck leak probe: holding"):run.output.index("skewcheck leak probe: done")]
    assert "Aggregated" not in probing, probing[:2000]
    assert run.output.rindex("Response time percentiles") < run.output.rindex("\nverdict: ")
    assert checks["max_shard_share"]["status"] == "pass"  # the balance is fine either way
    survival = checks["leak_probe_survival"]
    if mode == "leaky":
        assert survival["status"] == "block"
        stacks = " ".join(" ".join(f["frames"]) for f in survival["details"]["findings"])
        assert "readRequest" in stacks and "(*conn).serve" in stacks
        junit = (tmp_path / "r" / "junit.xml").read_text()
        assert "leak_probe_survival" in junit and "net/http.(*conn).readRequest" in junit
        assert "net/http.(*conn).readRequest" in (tmp_path / "r" / "report.html").read_text()
        phases = doc["leak"]["goroutines"]
        assert phases["probes_held"] >= phases["before_probes"] + 15  # the held probes' goroutines
        # the console says what the probe does, then its findings with stacks and fixes
        for line in ("skewcheck leak probe: holding 20 probe connections (10 silent, 5 partial, "
                     "5 stalled)", "skewcheck leak probe: settling: leak_probe_survival already "
                     "blocks", "skewcheck leak probe: done", "        net/http.(*conn).readRequest",
                     "      fix:   set http.Server.ReadHeaderTimeout"):
            assert line in run.output, run.output[-4000:]
    else:
        assert survival["status"] == "pass" and checks["leak_drain"]["status"] == "pass"
        assert "skewcheck leak probe: the server closed all 20 probe connections" in run.output
    assert "goroutineleak profile not served by the target" in run.output
