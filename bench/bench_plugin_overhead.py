"""Requests/s of a FastHttpUser with the skewcheck plugin vs without, interleaved in one run.

    .venv/bin/python bench/bench_plugin_overhead.py [--rounds 3] [--seconds 8] [--users 20]

The target is a small Go server (bench/fasttarget) that answers at once, so the load generator
is the bottleneck and any per-request cost of the plugin shows. Runs alternate bare/plugin so
drift of the machine affects both alike. The headline is requests per CPU-second of the Locust
process during the test (what the plugin's per-request cost changes; wall-clock req/s swings
with whatever else the machine runs, and is printed too), with peak RSS and the ratio of medians.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOCUST = str(Path(sys.executable).with_name("locust"))


def build_target(cache: Path) -> Path:
    binary = cache / "fasttarget"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=BENCH / "fasttarget", check=True)
    return binary


def start_target(binary: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(binary), "-addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line.split("listening on ", 1)[1]


def run_locust(locustfile: str, host: str, seconds: int, users: int,
               workdir: Path) -> tuple[float, int, float, float]:
    prefix = workdir / f"run{time.monotonic_ns()}"
    cpu_file = workdir / f"{prefix.name}.cpu"
    cmd = [LOCUST, "-f", str(BENCH / locustfile), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary", "--skip-log-setup",
           "--skew-config", str(BENCH / "overhead.yaml")] if "plugin" in locustfile else \
          [LOCUST, "-f", str(BENCH / locustfile), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary", "--skip-log-setup"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, "BENCH_CPU_FILE": str(cpu_file)})
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    with open(f"{prefix}_stats.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    cpu = float(cpu_file.read_text())
    return float(row["Requests/s"]), int(row["Request Count"]), cpu, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--users", type=int, default=20)
    args = ap.parse_args()
    if not shutil.which("go"):
        sys.exit("bench_plugin_overhead: needs Go to build bench/fasttarget")
    binary = build_target(REPO / ".cache" / "bench")
    target, host = start_target(binary)
    results: dict[str, list[float]] = {"bare": [], "plugin": []}  # requests per CPU-second
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"target {host}; {args.users} users, {args.seconds} s per run, {args.rounds} rounds")
            print(f"{'round':>5} {'run':>7} {'req/s':>9} {'requests':>9} {'CPU s':>7} {'req/CPU-s':>10} "
                  f"{'peak RSS':>9}")
            for r in range(args.rounds):
                for name, locustfile in (("bare", "locust_bare.py"), ("plugin", "locust_plugin.py")):
                    rps, count, cpu, rss = run_locust(locustfile, host, args.seconds, args.users, Path(tmp))
                    results[name].append(count / cpu)
                    print(f"{r + 1:>5} {name:>7} {rps:>9.0f} {count:>9} {cpu:>7.2f} {count / cpu:>10.0f} "
                          f"{rss:>7.0f}MB", flush=True)
    finally:
        target.terminate()
        target.wait()
    bare, plugin = statistics.median(results["bare"]), statistics.median(results["plugin"])
    print(f"median requests per CPU-second of the load generator: bare {bare:.0f}, with plugin "
          f"(2 routers, 100 shards) {plugin:.0f}; ratio {plugin / bare:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
