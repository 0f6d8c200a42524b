"""Time to a leak verdict with the default probe settings, against both Go targets.

    .venv/bin/python bench/bench_leak_verdict.py [--hold S] [--settle-timeout S] [--json OUT]

Builds gotargets/orders into .cache/gotargets/, starts it as `leaky` and as `fixed` (its
default 2 s / 3 s / 3 s timeouts) on 127.0.0.1, and runs the LeakProbe as the CLI does:
baseline, a little load, 20 silent + 20 partial + 20 stalled connections held for the hold,
then the drain. The seed incident took about 3 minutes to show its leak; the budget here is
hold + settle (30 s by default at most).
"""

from __future__ import annotations

import argparse
import json
import os
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

BINARY = REPO / ".cache" / "gotargets" / "orders"
LOAD = ["/orders?user_id=2020", "/orders/notify?user_id=2020", "/orders/upstream?user_id=2020"]
LOAD_PER_PATH = 20  # the same 20 as the probes: one leak per request stands well above tolerance


def build() -> Path:
    subprocess.run(["go", "build", "-o", str(BINARY), "./orders"], cwd=REPO / "gotargets",
                   env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}, check=True)
    return BINARY


def measure(mode: str, hold_s: float, settle_s: float) -> dict:
    process = subprocess.Popen([str(BINARY), "-mode", mode, "-addr", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        address = process.stdout.readline().strip()
        host, port = address.rsplit(":", 1)
        config = LeakConfig(pprof_url=f"http://{address}/debug/pprof/", hold_s=hold_s,
                            settle_timeout_s=settle_s)
        probe = LeakProbe(config)
        started = time.monotonic()
        probe.baseline()
        send_requests(host, int(port), LOAD, LOAD_PER_PATH)
        survival = probe.run_probes()
        survival_s = time.monotonic() - started
        drain = probe.drain_check()
        verdict_s = time.monotonic() - started
    finally:
        process.kill()
        process.wait()
    verdict = Verdict((survival, drain))
    return {"target": mode, "verdict": verdict.status, "survival": survival.status,
            "drain": drain.status, "survival_s": round(survival_s, 2),
            "verdict_s": round(verdict_s, 2), "budget_s": hold_s + settle_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold", type=float, default=DEFAULT_HOLD_S)
    parser.add_argument("--settle-timeout", type=float, default=DEFAULT_SETTLE_TIMEOUT_S)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    build()
    rows = [measure(mode, args.hold, args.settle_timeout) for mode in ("leaky", "fixed")]
    print(f"hold {args.hold:g} s, settle timeout {args.settle_timeout:g} s, "
          f"20 silent + 20 partial + 20 stalled, {LOAD_PER_PATH} requests per load path")
    print(f"{'target':<7} {'verdict':<8} {'survival':<9} {'drain':<6} "
          f"{'survival at':>12} {'verdict at':>11} {'budget':>7}")
    for row in rows:
        print(f"{row['target']:<7} {row['verdict']:<8} {row['survival']:<9} {row['drain']:<6} "
              f"{row['survival_s']:>10.1f} s {row['verdict_s']:>9.1f} s {row['budget_s']:>5.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    expected = {"leaky": "block", "fixed": "pass"}
    return 0 if all(row["verdict"] == expected[row["target"]] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
