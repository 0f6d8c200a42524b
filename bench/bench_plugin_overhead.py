"""Requests per CPU-second of a FastHttpUser with the skewcheck plugin vs without.

    .venv/bin/python bench/bench_plugin_overhead.py [--ab-seconds 120] [--rounds 2] [--seconds 8]
                                                    [--users 20] [--control] [--per-request]

The target is a small Go server (bench/fasttarget) that answers at once, so the load generator
is the bottleneck and any per-request cost of the plugin shows.

1. Headline, one Locust run (bench/locust_ab.py): the users switch between the bare task and the
   plugin task (scenario key, request listener hooked) every 0.25 s. The speed of a CPU here
   drifts by up to 1.6x within seconds (shared host), far more than the effect; blocks this short
   see the same conditions, so the pooled requests per CPU-second of all plugin blocks over all
   bare blocks is the ratio, with a 95% bootstrap interval over block pairs. --control first
   runs the same with both halves bare (an A/A run: the method's own error).
2. Whole processes, bare vs plugin alternating (bench/locust_bare.py, bench/locust_plugin.py):
   peak RSS, and requests per CPU-second of each process for comparison.
3. --per-request: one more run (bench/locust_timed.py) timing the plugin's own calls inside it.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
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


def locust_cmd(locustfile: str, host: str, seconds: int, users: int, *extra: str) -> list[str]:
    """A headless run of a bench locustfile against the target, with the overhead scenario last."""
    return [LOCUST, "-f", str(BENCH / locustfile), "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{seconds}s", "--host", host, "--only-summary", "--skip-log-setup", *extra,
            "--skew-config", str(BENCH / "overhead.yaml")]


def run_locust(locustfile: str, host: str, seconds: int, users: int,
               workdir: Path) -> tuple[float, int, float, float]:
    prefix = workdir / f"run{time.monotonic_ns()}"
    cpu_file = workdir / f"{prefix.name}.cpu"
    cmd = locust_cmd(locustfile, host, seconds, users, "--csv", str(prefix))
    if "plugin" not in locustfile:
        cmd = cmd[:cmd.index("--skew-config")]  # the bare locustfile knows no --skew-* options
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


BLOCK_S = 0.25


def run_ab(host: str, seconds: int, users: int, workdir: Path, control: bool) -> list[tuple[str, int, float]]:
    """One Locust run alternating bare/plugin blocks; (mode, requests, CPU s) per block."""
    blocks = workdir / f"ab{time.monotonic_ns()}.csv"
    cmd = locust_cmd("locust_ab.py", host, seconds, users)
    env = {**os.environ, "BENCH_AB_FILE": str(blocks), "BENCH_AB_BLOCK_S": str(BLOCK_S),
           "BENCH_AB_AA": "1" if control else "0"}
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env, check=False)
    with open(blocks, newline="") as f:
        rows = [(r["mode"], int(r["requests"]), float(r["cpu_s"])) for r in csv.DictReader(f)]
    return rows[4:-1]  # users still starting; the block cut short by the end of the run


def pooled_ratio(pairs: list[tuple[tuple[str, int, float], ...]]) -> float:
    requests = {"bare": 0, "plugin": 0}
    cpu = {"bare": 0.0, "plugin": 0.0}
    for pair in pairs:
        for mode, count, seconds in pair:
            requests[mode] += count
            cpu[mode] += seconds
    return (requests["plugin"] / cpu["plugin"]) / (requests["bare"] / cpu["bare"])


def report_ab(label: str, blocks: list[tuple[str, int, float]]) -> None:
    pairs = [tuple(blocks[i:i + 2]) for i in range(0, len(blocks) - 1, 2)]
    rng = random.Random(1)
    boots = sorted(pooled_ratio(rng.choices(pairs, k=len(pairs))) for _ in range(2000))
    bare = sum(c for m, c, _ in blocks if m == "bare") / sum(t for m, _, t in blocks if m == "bare")
    plugin = sum(c for m, c, _ in blocks if m == "plugin") / sum(t for m, _, t in blocks if m == "plugin")
    print(f"{label}: {len(pairs)} block pairs; requests per CPU-second bare {bare:.0f}, plugin half {plugin:.0f}; "
          f"ratio {pooled_ratio(pairs):.3f} (95% CI {boots[50]:.3f}-{boots[1949]:.3f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ab-seconds", type=int, default=120, help="length of the alternating run")
    ap.add_argument("--control", action="store_true", help="also run an A/A control of the same length first")
    ap.add_argument("--rounds", type=int, default=2, help="whole-process rounds (bare, plugin)")
    ap.add_argument("--seconds", type=int, default=8, help="length of each whole-process run")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--per-request", action="store_true", help="also time the plugin's calls inside a run")
    args = ap.parse_args()
    if not shutil.which("go"):
        sys.exit("bench_plugin_overhead: needs Go to build bench/fasttarget")
    binary = build_target(REPO / ".cache" / "bench")
    target, host = start_target(binary)
    results: dict[str, list[float]] = {"bare": [], "plugin": []}  # requests per CPU-second
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"target {host}; {args.users} users; plugin: 100 shards, 2 routers (mod + murmur3), "
                  f"X-Shard checked")
            if args.control:
                report_ab("A/A control (both halves bare)", run_ab(host, args.ab_seconds, args.users, Path(tmp), True))
            report_ab(f"one run, {BLOCK_S} s blocks alternating", run_ab(host, args.ab_seconds, args.users,
                                                                          Path(tmp), False))
            print(f"whole processes: {args.seconds} s per run, {args.rounds} rounds")
            print(f"{'round':>5} {'run':>7} {'req/s':>9} {'requests':>9} {'CPU s':>7} {'req/CPU-s':>10} "
                  f"{'peak RSS':>9}")
            for r in range(args.rounds):
                for name, locustfile in (("bare", "locust_bare.py"), ("plugin", "locust_plugin.py")):
                    rps, count, cpu, rss = run_locust(locustfile, host, args.seconds, args.users, Path(tmp))
                    results[name].append(count / cpu)
                    print(f"{r + 1:>5} {name:>7} {rps:>9.0f} {count:>9} {cpu:>7.2f} {count / cpu:>10.0f} "
                          f"{rss:>7.0f}MB", flush=True)
            bare, plugin = statistics.median(results["bare"]), statistics.median(results["plugin"])
            print(f"whole processes, median requests per CPU-second: bare {bare:.0f}, plugin {plugin:.0f}; "
                  f"ratio {plugin / bare:.3f} (drifts with the machine; the one-run ratio above is the measure)")
            if args.per_request:
                timed = subprocess.run(locust_cmd("locust_timed.py", host, args.seconds, args.users),
                                       capture_output=True, text=True, cwd=REPO, check=False)
                print(next((line for line in timed.stdout.splitlines() if line.startswith("per request:")),
                           timed.stderr[-500:]), flush=True)
    finally:
        target.terminate()
        target.wait()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
