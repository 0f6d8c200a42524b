"""Browser-facing pages in headless Chromium (Debian's, driven by playwright; no browser download):
Locust's start form and Shards tab, the live page with its heatmap and latency, and the HTML
report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import REPO, require_real_part, run_skewcheck
from locust_runs import free_port, kill_group, locust_cmd, processes_in_group, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without these, Chromium tries to reach Google's services, which this closed network refuses
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    require_real_part(os.path.exists(CHROMIUM), "Debian's chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=CHROMIUM_ARGS)
        yield context
        context.close()


def test_shards_tab_and_live_chart_show_the_hot_shard_during_an_incident(browser) -> None:
    port = free_port()
    proc = subprocess.Popen(
        locust_cmd("--skew-config", "configs/incident-2020.yaml", "--web-host", "127.0.0.1", "--web-port", str(port),
                   "--autostart", "-u", "40", "-r", "40", "-t", "90s"),
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = browser.new_page()
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _reachable(page, url), 30), "Locust's web UI did not come up"
        page.goto(f"{url}/?tab=shards")
        page.get_by_role("tab", name="Shards").click()
        row = page.locator("tr", has_text="hash-mod (primary)").first
        row.wait_for(timeout=20_000)
        cells = row.locator("td").all_inner_texts()
        assert cells[1].strip() == "0" and cells[3].startswith("100.0%"), cells

        page.goto(f"{url}/skew")
        page.wait_for_selector('svg[data-router="hash-mod"] rect.bar', timeout=15_000)
        shares = page.eval_on_selector_all('svg[data-router="hash-mod"] rect.bar',
                                           "bars => bars.map(b => Number(b.dataset.share))")
        assert len(shares) == 100 and shares[0] == 1.0 and max(shares[1:]) == 0.0
        murmur = page.eval_on_selector_all('svg[data-router="murmur3"] rect.bar',
                                           "bars => bars.map(b => Number(b.dataset.share))")
        assert max(murmur) < 0.15
        # the live verdict turns from INCONCLUSIVE to BLOCK once min_requests (2000) are counted
        page.wait_for_function("document.getElementById('verdict').textContent === 'BLOCK'", timeout=60_000)
        page.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        finally:
            leftover = wait_for(lambda: not processes_in_group(proc.pid), 10)
            kill_group(proc)
    assert proc.returncode == 1, out[-3000:]  # stopped mid-incident: the verdict is still a block
    assert leftover is True


def _state(url: str) -> str:
    with urllib.request.urlopen(f"{url}/stats/requests", timeout=5) as res:
        return json.load(res)["state"]


def _reachable(page, url: str) -> bool:
    try:
        return page.goto(url, timeout=2000).ok
    except Exception:
        return False


def test_the_html_report_loads_with_its_charts(browser, tmp_path: Path) -> None:
    proc = run_skewcheck("plan", "configs/incident-2020.yaml", "--requests", "50000", "--out", str(tmp_path))
    assert proc.returncode == 1
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto((tmp_path / "report.html").as_uri())
    assert page.locator("#verdict").inner_text() == "BLOCK"
    assert page.locator("svg").count() == 4  # three routers' shares and the saturation curve
    bar = page.locator('svg[data-router="hash-mod"] rect.bar[data-shard="0"]')
    assert float(bar.get_attribute("data-share")) == 1.0
    assert page.locator("svg line.limit").count() == 3
    curve = page.locator("svg.saturation")
    assert curve.locator("polyline.curve").count() == 3 and curve.locator("line.needed").count() == 1
    marker = curve.locator("circle.recommended").bounding_box()
    assert marker is not None and marker["width"] > 0  # drawn where the recommendation is
    assert "hash-mod" not in page.locator("#recommendation").inner_text().split(":")[1]
    assert failed == []  # self-contained: nothing else was fetched
    page.close()


class _Console:
    """A Locust process's console, read line by line while it runs."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=10)


def test_the_start_form_options_take_effect_and_the_pages_show_them(browser, tmp_path: Path) -> None:
    """Change router and shards in the start form, run, look at the Shards tab, the live page and its
    heatmap, stop from the UI: the verdict is printed at once, for the load alone."""
    port = free_port()
    proc = subprocess.Popen(
        locust_cmd("--skew-config", "configs/incident-2020.yaml", "--web-host", "127.0.0.1", "--web-port", str(port),
                   "--skew-report-dir", str(tmp_path)),
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    console = _Console(proc)
    try:
        page = browser.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _reachable(page, url), 30), "Locust's web UI did not come up"
        # a value the scenario can't take is refused with the reason, and nothing starts
        page.get_by_text("Custom parameters").click()
        page.fill("input[name=skewShards]", "many")
        page.get_by_role("button", name="START").click()
        page.get_by_text("--skew-shards: 'many' is not a whole number").wait_for(timeout=10_000)
        assert "this test runs" not in console.text

        page.fill("input[name=userCount]", "20")
        page.fill("input[name=spawnRate]", "20")
        page.select_option("select[name=skewRouting]", "murmur3")
        page.fill("input[name=skewShards]", "64")
        page.get_by_role("button", name="START").click()
        started = time.monotonic()
        assert wait_for(lambda: "this test runs incident-2020 over 64 shards routed by murmur3" in console.text, 20)
        # the embedded target follows the form, so its X-Shard answers keep matching the routing
        assert wait_for(lambda: "restarted the embedded demo target" in console.text, 30), console.text[-2000:]
        assert wait_for(lambda: _state(url) == "running", 30)

        page.goto(f"{url}/?tab=shards")
        page.get_by_role("tab", name="Shards").click()
        row = page.locator("tr", has_text="murmur3 (primary)").first
        row.wait_for(timeout=20_000)
        page.wait_for_function("['PASS', 'INCONCLUSIVE', 'BLOCK'].includes("
                               "document.getElementById('skew-verdict')?.textContent)", timeout=15_000)
        assert page.locator("#skew-live-link").get_attribute("href").endswith("/skew")
        cells = page.locator("tr", has_text="(primary)").first.locator("td").all_inner_texts()
        assert cells[5].endswith("ms") and cells[6].endswith("ms") and cells[7].endswith("%"), cells
        shares = [float(t.split("%")[0]) for t in page.locator("tr", has_text="(primary)").locator("td:nth-child(4)")
                  .all_inner_texts()]
        assert len(shares) == 64 and shares == sorted(shares, reverse=True)  # hottest first

        page.goto(f"{url}/skew")
        page.wait_for_selector('svg[data-router="murmur3"] rect.bar', timeout=15_000)
        assert page.locator('svg[data-router="murmur3"] rect.bar').count() == 64
        assert page.locator('svg[data-router="murmur3"] text.shard-label').first.text_content() == "0"
        page.wait_for_selector('svg[data-router="observed"] rect.bar', timeout=15_000)
        assert page.locator('svg[data-router="observed"] rect.bar').count() == 64
        page.wait_for_selector("#heatmap svg.heatmap rect.cell", timeout=15_000)
        assert page.locator("#heatmap svg.heatmap").get_attribute("data-rows") == "64"
        assert page.locator("#heatmap text.shard-label").first.text_content() == "0"
        page.wait_for_selector("#latency-table td", timeout=15_000)
        assert "median" in page.locator("#latency-table").inner_text()  # of the others, once they have 100 each

        time.sleep(max(0.0, 12 - (time.monotonic() - started)))
        page.goto(url)
        page.get_by_role("button", name="STOP").click()
        stopped = time.monotonic()
        assert wait_for(lambda: "\nverdict: " in console.text, 20), console.text[-3000:]
        assert proc.poll() is None  # printed at the stop, while Locust still serves its UI
        time.sleep(3)  # idle after the stop: not part of the run
        page.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            kill_group(proc)
            console.join()
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["scenario"]["shards"] == 64 and doc["scenario"]["routing"]["primary"] == "murmur3"
    assert doc["observed"]["mismatches"] == 0  # the demo target was restarted with the form's routing
    assert doc["duration_s"] <= stopped - started + 1.0  # the load alone, not the idle time after it
    assert doc["heatmap"]["shards"] == 64 and doc["latency"]["shards"][0]["p99"] > 0
    status = doc["verdict"]["status"]
    assert f"verdict: {status.upper()} (exit {doc['verdict']['exit_code']})" in console.text
    assert status != "block" and doc["locust"]["failures"] == 0  # murmur3 spreads the accounts: no 503s
    # at the exit, after Locust's own tables, the verdict again: the console ends with it
    assert console.lines[-1].startswith("skewcheck reports: ") and console.lines[-2].startswith("  ["), \
        console.text[-2000:]
    assert console.text.count("\nverdict: ") == 2


def test_the_html_report_has_the_heatmap_and_the_latency_table(browser, tmp_path: Path) -> None:
    from locust_runs import run_locust

    run = run_locust("--headless", "-u", "40", "-r", "40", "-t", "6s", "--skew-config", "configs/incident-2020.yaml",
                     report_dir=tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    page = browser.new_page()
    page.goto((tmp_path / "report.html").as_uri())
    cells = page.locator('svg.heatmap rect.cell[data-shard="0"]')
    assert cells.count() >= 5
    assert all(float(s) == 1.0 for s in cells.evaluate_all("cs => cs.map(c => c.dataset.share)")
               if s != "0.0000")
    assert page.locator('svg.heatmap rect.cell[data-shard="1"]').first.get_attribute("data-share") == "0.0000"
    table = page.locator("table#latency").inner_text()
    assert "p99" in table and "no other shard served" in table
    first = page.locator("table#latency tr").nth(1).locator("td").all_inner_texts()
    assert first[0] == "0" and first[2] == "100.0%" and first[5].endswith("ms") and float(first[6][:-1]) > 0
    page.close()
