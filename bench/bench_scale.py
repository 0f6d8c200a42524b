"""Requests per second of Locust with the plugin, one process and `--processes 2`, against the
Python demo target and against the small Go target (bench/fasttarget), side by side.

    .venv/bin/python bench/bench_scale.py [--seconds 30] [--users 100] [--rounds 2]

Users never wait (bench/scale.yaml: 100 shards, mod + murmur3, X-Shard checked), so whatever
saturates first — the load generator's CPU or the target — sets the rate. Every target and
process count runs once per round, in turn; the rate is the plugin's own count of requests over
the run's length. Peak RSS is the largest sum over Locust's processes (master and workers)
during a run. The load average is printed too: on a shared machine it says how much of the two
cores the run had.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench_plugin_overhead import build_target, start_target  # noqa: E402

LOCUST = str(Path(sys.executable).with_name("locust"))
SKEWCHECK = str(Path(sys.executable).with_name("skewcheck"))
COUNTED = re.compile(r"skewcheck run: ([\d,]+) requests in ([\d.]+) s")


def start_demo() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([SKEWCHECK, "demo-target", "--port", "0", "--config", str(BENCH / "scale.yaml")],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line.split("listening on ", 1)[1]


def peak_rss(proc: subprocess.Popen, stop: threading.Event, out: list[float]) -> None:
    top = 0.0
    parent = psutil.Process(proc.pid)
    while not stop.wait(0.5):
        try:
            tree = [parent, *parent.children(recursive=True)]
            top = max(top, sum(p.memory_info().rss for p in tree) / 2**20)
        except psutil.Error:
            pass
    out.append(top)


def run_locust(host: str, processes: int, seconds: int, users: int) -> dict:
    cmd = [LOCUST, "-f", str(REPO / "locustfiles" / "orders.py"), "--headless", "-u", str(users), "-r",
           str(users), "-t", f"{seconds}s", "--host", host, "--only-summary", "--skip-log-setup",
           "--skew-config", str(BENCH / "scale.yaml")]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        stop, rss = threading.Event(), []
        watcher = threading.Thread(target=peak_rss, args=(proc, stop, rss))
        watcher.start()
        proc.wait(timeout=seconds + 120)
        stop.set()
        watcher.join()
        log.seek(0)
        text = log.read()
    found = COUNTED.search(text)
    if not found:
        raise SystemExit(f"no skewcheck summary in the Locust output:\n{text[-3000:]}")
    requests, elapsed = int(found.group(1).replace(",", "")), float(found.group(2))
    return {"rate": requests / elapsed, "rss": rss[0], "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    binary = build_target(Path(tempfile.gettempdir()) / "skewcheck-bench")
    runs: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for target in ("demo", "fasttarget"):
            server, host = start_demo() if target == "demo" else start_target(binary)
            try:
                for processes in (1, 2):
                    result = run_locust(host, processes, args.seconds, args.users)
                    runs.setdefault((target, processes), []).append(result)
                    print(f"  round {r + 1}  {target:<10} --processes {processes}  {result['rate']:>7,.0f} req/s  "
                          f"peak RSS {result['rss']:.0f} MiB  load {result['load']:.1f}", flush=True)
            finally:
                server.terminate()
                server.wait(timeout=10)
    print(f"\n{'target':<10} {'processes':>9} {'req/s (median)':>15} {'range':>17} {'peak RSS':>9}")
    for (target, processes), results in runs.items():
        rates = [x["rate"] for x in results]
        print(f"{target:<10} {processes:>9} {statistics.median(rates):>15,.0f} "
              f"{min(rates):>8,.0f}–{max(rates):<8,.0f} {max(x['rss'] for x in results):>5.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
