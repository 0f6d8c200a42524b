"""Requests per second of Locust with the plugin, one process and `--processes 2`, against the
Python demo target and against the small Go target (bench/fasttarget), side by side.

    .venv/bin/python bench/bench_scale.py [--seconds 30] [--users 100] [--rounds 2]

Users never wait (bench/scale.yaml: 100 shards, mod + murmur3, X-Shard checked), so whatever
saturates first — the load generator's CPU or the target — sets the rate. Every target and
process count runs once per round, in turn; the rate is the plugin's own count of requests over
the run's length. Peak RSS is the largest sum over Locust's processes (master and workers)
during a run. It also prints the cores each side kept busy (CPU seconds over the run's wall
time: Locust's processes, the target) and the load average — on a shared machine they tell
whether the target, the load generator or the machine ran out first.
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


def watch(proc: subprocess.Popen, stop: threading.Event, out: dict) -> None:
    """Peak RSS of Locust's process tree, and the CPU seconds its processes used."""
    top, cpu = 0.0, {}
    parent = psutil.Process(proc.pid)
    while not stop.wait(0.5):
        try:
            tree = [parent, *parent.children(recursive=True)]
            top = max(top, sum(p.memory_info().rss for p in tree) / 2**20)
            for p in tree:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass
    out.update(rss=top, cpu=sum(cpu.values()))


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run_locust(host: str, processes: int, seconds: int, users: int, target_pid: int) -> dict:
    cmd = [LOCUST, "-f", str(REPO / "locustfiles" / "orders.py"), "--headless", "-u", str(users), "-r",
           str(users), "-t", f"{seconds}s", "--host", host, "--only-summary", "--skip-log-setup",
           "--skew-config", str(BENCH / "scale.yaml")]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    with tempfile.TemporaryFile("w+") as log:
        target0, started = cpu_seconds(target_pid), time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        stop, seen = threading.Event(), {}
        watcher = threading.Thread(target=watch, args=(proc, stop, seen))
        watcher.start()
        proc.wait(timeout=seconds + 120)
        wall = time.monotonic() - started
        target_cpu = cpu_seconds(target_pid) - target0
        stop.set()
        watcher.join()
        log.seek(0)
        text = log.read()
    found = COUNTED.search(text)
    if not found:
        raise SystemExit(f"no skewcheck summary in the Locust output:\n{text[-3000:]}")
    requests, elapsed = int(found.group(1).replace(",", "")), float(found.group(2))
    return {"rate": requests / elapsed, "rss": seen["rss"], "load": os.getloadavg()[0],
            "locust_cores": seen["cpu"] / wall, "target_cores": target_cpu / wall}


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
                    result = run_locust(host, processes, args.seconds, args.users, server.pid)
                    runs.setdefault((target, processes), []).append(result)
                    print(f"  round {r + 1}  {target:<10} --processes {processes}  {result['rate']:>7,.0f} req/s  "
                          f"cores busy: Locust {result['locust_cores']:.2f}, target {result['target_cores']:.2f}  "
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
