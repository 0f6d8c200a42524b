"""The plugin's web routes are no more open than Locust's own: with --web-login they need the
login; a stats reset from the web UI is recorded in the verdict, never silent."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO
from locust_runs import free_port, kill_group, locust_cmd, wait_for

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(locust_cmd("--web-host", "127.0.0.1", "--web-port", str(port), *args), cwd=REPO,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: _get(base + "/")[0] in (200, 302, 401), 30), "the web UI did not come up"
    return proc, base


def test_the_skew_routes_need_the_login_when_locust_asks_for_one() -> None:
    proc, base = _start("--web-login")
    try:
        for path in ("/skew/summary.json", "/skew/metrics", "/skew"):
            status, body = _get(base + path)
            assert '"requests"' not in body and "skewcheck_requests_total" not in body, (path, status, body[:200])
    finally:
        kill_group(proc)
    proc, base = _start()
    try:
        status, body = _get(base + "/skew/summary.json")  # the same route, no login asked: served
        assert status == 200 and '"requests"' in body
    finally:
        kill_group(proc)


def test_a_stats_reset_from_the_web_ui_is_recorded_in_the_verdict(tmp_path: Path) -> None:
    proc, base = _start("--autostart", "-u", "20", "-r", "20", "-t", "8s", "--autoquit", "1",
                        "--skew-report-dir", str(tmp_path))
    try:
        time.sleep(3)
        request = urllib.request.Request(base + "/stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    doc = json.loads((tmp_path / "result.json").read_text())
    reset = next(c for c in doc["verdict"]["checks"] if c["rule"] == "stats_reset")
    assert reset["value"] == 1 and "judges the requests since then" in reset["message"]
    assert "stats_reset" in out
