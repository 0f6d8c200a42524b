"""`skewcheck plan` at scale: 10^7 requests × 3 routers × the search over 2–4096 shards, from
generated keys and from a replay of the same keys (plain and gzip), side by side in one run;
then a 10^8-line replay file. Each plan runs in its own process; its wall and CPU time, keys per
second and peak RSS are printed, and the ratios replay / generated per round.

    .venv/bin/python bench/bench_plan.py [--requests 10000000] [--big-lines 100000000]
                                         [--rounds 3] [--no-big] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = """\
seed: 1
shards: 100
routing: {{primary: mod, compare: [murmur3, jump], key_type: int}}
keys: [{keys}]
plan:
  routers: [mod, murmur3, jump]
  target_qps: 200000
  shard_capacity_qps: 500
  headroom: 0.3
  search: {{min_shards: 2, max_shards: 4096}}
"""
GENERATED = "{kind: uniform, low: 100000000, high: 999999999}"  # 9-digit account IDs
WRITE_CHUNK = 1_000_000  # keys written per step: the file is streamed, never held
DISK_MARGIN = 2  # free disk wanted, as a multiple of the big file's size


def peak_rss_mb() -> float:
    """This process's own peak RSS: /proc's VmHWM (getrusage's maxrss would include what the
    parent held when it started this process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(config: str, requests: str) -> None:
    """Run one plan and print its costs as JSON (the parent reads the last line)."""
    from skewcheck.config import load_scenario
    from skewcheck.plan import run_plan

    scenario = load_scenario(config)
    wall, cpu = time.perf_counter(), time.process_time()
    doc = run_plan(scenario, int(requests) if requests != "-" else None)
    plan = doc["plan"]
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                      "rss_mb": peak_rss_mb(),
                      "requests": plan["requests"], "passes": plan["passes"],
                      "exact": plan["key_model"]["exact"],
                      "recommendation": plan["recommendation"]["message"]}))


def child_read(path: str) -> None:
    """Validate (read) a replay file once and print the cost as JSON."""
    from skewcheck.keys.replay import count_keys
    from skewcheck.keys.spec import ReplaySpec

    wall, cpu = time.perf_counter(), time.process_time()
    keys = count_keys(ReplaySpec(path=Path(path)), True)
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                      "rss_mb": peak_rss_mb(), "requests": keys}))


def run_child(config: Path, requests: int | None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(config),
                          str(requests) if requests else "-"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"plan of {config} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_keys(path: Path, lines: int, packed: bool = False) -> None:
    """The generated scenario's own keys, in order, one per line (gzip level 1 when packed)."""
    from skewcheck.config import parse_scenario

    dist = parse_scenario(SCENARIO.format(keys=GENERATED)).build_distribution()
    opener = (lambda p: gzip.open(p, "wt", compresslevel=1)) if packed else \
        (lambda p: open(p, "w"))
    with opener(path) as f:
        done = 0
        while done < lines:
            n = min(WRITE_CHUNK, lines - done)
            f.write("\n".join(map(str, dist.sample(n).tolist())) + "\n")
            done += n


def show(name: str, r: dict) -> None:
    print(f"  {name:<22} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  "
          f"{r['requests'] / r['wall'] / 1e6:5.2f} M keys/s  peak RSS {r['rss_mb']:5.0f} MB  "
          f"({r['passes']} passes, key model {'exact' if r['exact'] else 'sampled'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--big-lines", type=int, default=100_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-big", action="store_true", help="skip the 10^8-line replay")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the replay files go")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-read", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.child_read:
        child_read(args.child_read)
        return
    work = Path(tempfile.mkdtemp(prefix="skewcheck-bench-plan-", dir=args.dir))
    try:
        bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace, work: Path) -> None:
    n = args.requests
    configs = {"generated": work / "generated.yaml", "replay": work / "replay.yaml",
               "replay.gz": work / "replay-gz.yaml"}
    configs["generated"].write_text(SCENARIO.format(keys=GENERATED))
    configs["replay"].write_text(SCENARIO.format(keys="{kind: replay, path: ids.txt}"))
    configs["replay.gz"].write_text(SCENARIO.format(keys="{kind: replay, path: ids.txt.gz}"))
    print(f"writing {n:,} keys to a replay file and a gzip'd copy ...")
    write_keys(work / "ids.txt", n)
    write_keys(work / "ids.txt.gz", n, packed=True)
    print(f"plan of {n:,} requests × 3 routers (mod, murmur3, jump) × 2–4096 shards, "
          f"{args.rounds} rounds, each plan in its own process:")
    ratios: dict[str, list[tuple[float, float]]] = {"replay": [], "replay.gz": []}
    peaks = []
    for i in range(args.rounds):
        order = list(configs) if i % 2 == 0 else list(reversed(configs))  # no order advantage
        got = {name: run_child(configs[name], n if name == "generated" else None)
               for name in order}
        print(f" round {i + 1}:")
        for name in configs:
            show(name, got[name])
            peaks.append(got[name]["rss_mb"])
        for name in ratios:
            ratios[name].append((got[name]["wall"] / got["generated"]["wall"],
                                 got[name]["cpu"] / got["generated"]["cpu"]))
    for name, values in ratios.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        print(f"{name} / generated: wall {min(walls):.2f}–{max(walls):.2f} (median "
              f"{statistics.median(walls):.2f}), cpu {min(cpus):.2f}–{max(cpus):.2f} (median "
              f"{statistics.median(cpus):.2f})")
    print(f"peak RSS of the 10^7 plans: {min(peaks):.0f}–{max(peaks):.0f} MB")
    if args.no_big:
        return
    big = work / "big.txt"
    need = args.big_lines * 10 * DISK_MARGIN
    free = shutil.disk_usage(work).free
    if free < need:
        print(f"skipping the {args.big_lines:,}-line replay: {free / 1e9:.1f} GB free, "
              f"{need / 1e9:.1f} GB wanted")
        return
    print(f"writing a {args.big_lines:,}-line replay file ...")
    write_keys(big, args.big_lines)
    size = big.stat().st_size
    (work / "big.yaml").write_text(SCENARIO.format(keys="{kind: replay, path: big.txt}"))
    for name in ("ids.txt", "ids.txt.gz"):
        os.unlink(work / name)
    out = subprocess.run([sys.executable, __file__, "--child-read", str(big)],
                         capture_output=True, text=True, check=True)
    read = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"reading the {args.big_lines:,}-line replay ({size / 1e9:.2f} GB) once: wall "
          f"{read['wall']:.1f} s, cpu {read['cpu']:.1f} s, "
          f"{read['requests'] / read['cpu'] / 1e6:.1f} "
          f"M keys per CPU-second, peak RSS {read['rss_mb']:.0f} MB")
    print(f"plan of the {args.big_lines:,}-line replay, every key once:")
    show("replay 10^8", run_child(work / "big.yaml", None))


if __name__ == "__main__":
    main()
