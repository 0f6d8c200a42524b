"""Time to a leak verdict with the default probe settings, against the bundled Go targets.

    .venv/bin/python bench/bench_leak_verdict.py [--hold S] [--settle-timeout S]
        [--variants http,tls,goroutineleak] [--rounds N] [--json OUT]

Builds gotargets/orders into .cache/gotargets/ twice — as is, and with
GOEXPERIMENT=goroutineleakprofile (Go 1.26; it then serves /debug/pprof/goroutineleak) — and
starts each as `leaky` and as `fixed` (its default 2 s / 3 s / 3 s timeouts) on 127.0.0.1,
over HTTP and, for `tls`, over HTTPS. Each is probed as the CLI does: baseline, a little load
on the leaking handlers, 20 connections of each kind held for the hold, then the drain. Every
target is judged twice, side by side in one run: `before` waits the whole hold and the whole
settle timeout (leak.early_verdict: false, which is how the probe worked before it could
stop early), `after` stops once the verdict is certain (the default). Peak RSS is the bench
process's and the largest target's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from skewcheck.leak import LeakConfig, LeakProbe  # noqa: E402
from skewcheck.leak.config import DEFAULT_HOLD_S, DEFAULT_SETTLE_TIMEOUT_S  # noqa: E402
from skewcheck.leak.load import send_requests  # noqa: E402
from skewcheck.verdict import Verdict  # noqa: E402

CACHE = REPO / ".cache" / "gotargets"
LOAD = ["/orders?user_id=2020", "/orders/notify?user_id=2020", "/orders/upstream?user_id=2020"]
LOAD_PER_PATH = 20  # the same 20 as the probes: one leak per request stands well above tolerance
EXPECTED = {"leaky": "block", "fixed": "pass"}
# variant → (binary, over TLS)
VARIANTS = {"http": ("orders", False), "tls": ("orders", True),
            "goroutineleak": ("orders-goroutineleak", False)}


def build(name: str) -> Path:
    out = CACHE / name
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    env.pop("GOEXPERIMENT", None)
    if name.endswith("-goroutineleak"):
        experiment = {**env, "GOEXPERIMENT": "goroutineleakprofile"}
        if subprocess.run(["go", "env", "GOEXPERIMENT"], env=experiment,
                          capture_output=True).returncode == 0:
            env = experiment  # else a Go before 1.26 (no profile) or after (on by default)
    subprocess.run(["go", "build", "-o", str(out), "./orders"], cwd=REPO / "gotargets", env=env,
                   check=True)
    return out


def measure(binary: Path, mode: str, tls: bool, hold_s: float, settle_s: float,
            early: bool) -> dict:
    flags = ["-tls"] if tls else []
    process = subprocess.Popen([str(binary), "-mode", mode, "-addr", "127.0.0.1:0", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = process.stdout.readline().strip()
        host, port = address.rsplit(":", 1)
        config = LeakConfig(pprof_url=f"{'https' if tls else 'http'}://{address}/debug/pprof/",
                            hold_s=hold_s, settle_timeout_s=settle_s, early_verdict=early)
        probe = LeakProbe(config)
        started = time.monotonic()
        probe.baseline()
        send_requests(host, int(port), LOAD, LOAD_PER_PATH, tls=tls)
        checks = probe.after_load()
        verdict_s = time.monotonic() - started
        target_rss_kib = _peak_rss_kib(process.pid)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    return {"mode": mode, "early_verdict": early, "verdict": Verdict(tuple(checks)).status,
            "checks": {c.rule: c.status for c in checks}, "verdict_s": round(verdict_s, 2),
            "target_rss_mib": round(target_rss_kib / 1024, 1)}


def _peak_rss_kib(pid: int) -> int:
    """The Go process's own high-water RSS (VmHWM), read before it is killed."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold", type=float, default=DEFAULT_HOLD_S)
    parser.add_argument("--settle-timeout", type=float, default=DEFAULT_SETTLE_TIMEOUT_S)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    binaries = {name: build(name) for name in sorted({VARIANTS[v][0] for v in variants})}
    rows = []
    for round_number in range(args.rounds):
        for variant in variants:
            name, tls = VARIANTS[variant]
            for mode in ("leaky", "fixed"):
                for early in (False, True):  # before, after: alternately, under the same load
                    row = measure(binaries[name], mode, tls, args.hold, args.settle_timeout, early)
                    rows.append({"variant": variant, "round": round_number + 1, **row})
    print(f"hold {args.hold:g} s, settle timeout {args.settle_timeout:g} s, 20 connections of "
          f"each kind (TLS adds 20 stalled handshakes), {LOAD_PER_PATH} requests per load path")
    print(f"{'variant':<14} {'target':<6} {'verdict':<8} {'before':>11} {'after':>11}  "
          f"{'rules (after)'}")
    ok = True
    for variant in variants:
        for mode in ("leaky", "fixed"):
            mine = [r for r in rows if r["variant"] == variant and r["mode"] == mode]
            before = [r["verdict_s"] for r in mine if not r["early_verdict"]]
            after = [r["verdict_s"] for r in mine if r["early_verdict"]]
            verdicts = {r["verdict"] for r in mine}
            ok &= verdicts == {EXPECTED[mode]}
            rules = ", ".join(f"{rule.removeprefix('leak_')} {status}" for rule, status in
                              next(r for r in mine if r["early_verdict"])["checks"].items())
            print(f"{variant:<14} {mode:<6} {'/'.join(sorted(verdicts)):<8} "
                  f"{_span(before):>11} {_span(after):>11}  {rules}")
    target_rss = max(r["target_rss_mib"] for r in rows)
    bench_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: bench {bench_rss:.0f} MiB, largest target {target_rss:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if ok else 1


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.1f}", f"{max(values):.1f}"
    return f"{low} s" if low == high else f"{low}–{high} s"


if __name__ == "__main__":
    sys.exit(main())
