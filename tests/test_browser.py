"""Browser-facing pages in headless Chromium (Debian's, driven by playwright; no browser download):
Locust's Shards tab and the live chart during an incident run, and the HTML report."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
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
