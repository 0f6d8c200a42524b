"""Running real headless Locust processes the way users do, and checking nothing is left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO

LOCUSTFILE = REPO / "locustfiles" / "orders.py"
LOCUST = str(Path(sys.executable).with_name("locust"))


@dataclass
class LocustRun:
    returncode: int
    stdout: str
    stderr: str
    report_dir: Path | None
    leftover: list[int]  # processes of the run's group still alive after Locust exited

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def result(self) -> dict:
        assert self.report_dir is not None
        return json.loads((self.report_dir / "result.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def locust_cmd(*args: str, log_setup: bool = False) -> list[str]:
    """The command; `log_setup` keeps Locust's own logging, its stats tables on the console included."""
    return [LOCUST, "-f", str(LOCUSTFILE), *([] if log_setup else ["--skip-log-setup"]), *args]


def run_locust(*args: str, report_dir: Path | None = None, timeout: float = 90,
               env: dict[str, str] | None = None, console: bool = False) -> LocustRun:
    """`console`: Locust's logging as users see it, stderr merged into stdout in order."""
    extra = ["--skew-report-dir", str(report_dir)] if report_dir else []
    proc = subprocess.Popen(locust_cmd(*args, *extra, log_setup=console), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if console else subprocess.PIPE,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        err = err or ""
        leftover = wait_for(lambda: not processes_in_group(proc.pid), 5) or processes_in_group(proc.pid)
    finally:
        kill_group(proc)
    return LocustRun(proc.returncode, out, err, report_dir, [] if leftover is True else leftover)


def kill_group(proc: subprocess.Popen) -> None:
    """Make sure a Locust process and everything it started (workers, demo target) are gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def processes_in_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def demo_target_left_running(output: str) -> bool:
    """Whether the demo target a run started (its URL is in the output) still accepts connections."""
    match = re.search(r"started the embedded demo target at http://127\.0\.0\.1:(\d+)", output)
    assert match, "the run did not report starting the demo target"
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(match.group(1)))) == 0


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
