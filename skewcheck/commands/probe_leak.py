"""`skewcheck probe-leak --pprof URL --target HOST:PORT [...]` — goroutine leaks of a Go server.

Takes a baseline goroutine profile, optionally sends a little load, holds silent,
partial-request and stalled-body connections (and, against TLS, stalled handshakes) for
--hold seconds, profiles again, closes them and waits up to --settle-timeout for the total
to return to baseline ± --tolerance. When the target serves Go's goroutineleak profile, the
goroutines its GC proves leaked after the load and after the drain are reported too. The
hold ends once the server has closed every probe, and the drain once a block is certain
(--full-wait waits both out). Exit 0 pass, 1 leak, 3 pprof unreachable or garbled, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from skewcheck.errors import UsageError
from skewcheck.leak.config import (
    DEFAULT_HOLD_S,
    DEFAULT_PROBE_PATH,
    DEFAULT_PROBES_PER_KIND,
    DEFAULT_SETTLE_TIMEOUT_S,
    DEFAULT_TOLERANCE,
    LeakConfig,
)
from skewcheck.leak.load import send_requests
from skewcheck.leak.probe import LeakProbe
from skewcheck.leak.report import render_check
from skewcheck.report.findings import printable
from skewcheck.verdict import Verdict

JSON_SCHEMA = "skewcheck.leak/1"
DEFAULT_LOAD_REQUESTS = 20  # per --load path: a per-request leak stands far above tolerance
_FLAGS = {
    "pprof_url": "--pprof", "metrics_url": "--metrics", "target": "--target", "hold_s": "--hold",
    "silent": "--silent", "partial": "--partial", "stalled": "--stalled",
    "probe_path": "--probe-path", "settle_timeout_s": "--settle-timeout",
    "tolerance": "--tolerance", "handshake": "--handshake", "tls": "--tls",
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="hold idle connections to a Go server; block if goroutines stay",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pprof", metavar="URL",
                   help="the target's net/http/pprof (…/debug/pprof/ or …/debug/pprof/goroutine)")
    p.add_argument("--metrics", metavar="URL",
                   help="Prometheus text with go_goroutines, when there is no pprof "
                        "(totals, no stacks)")
    p.add_argument("--target", metavar="HOST:PORT",
                   help="where the probes connect (default: the pprof URL's host:port)")
    p.add_argument("--hold", type=float, metavar="S", default=DEFAULT_HOLD_S,
                   help=f"seconds to hold the probe connections (default {DEFAULT_HOLD_S:g})")
    for kind, what in (("silent", "connections that send nothing"),
                       ("partial", "connections that send half a request line"),
                       ("stalled", "requests that declare a body and never send it"),
                       ("handshake", "TLS only: handshakes that send a ClientHello and stop")):
        p.add_argument(f"--{kind}", type=int, metavar="N", default=DEFAULT_PROBES_PER_KIND,
                       help=f"{what} (default {DEFAULT_PROBES_PER_KIND})")
    p.add_argument("--probe-path", metavar="PATH", default=DEFAULT_PROBE_PATH,
                   help="request path of the partial and stalled probes (default /)")
    p.add_argument("--settle-timeout", type=float, metavar="S", default=DEFAULT_SETTLE_TIMEOUT_S,
                   help="seconds to wait for goroutines to drain "
                        f"(default {DEFAULT_SETTLE_TIMEOUT_S:g})")
    p.add_argument("--tolerance", type=int, metavar="N", default=DEFAULT_TOLERANCE,
                   help=f"goroutines above baseline still a pass (default {DEFAULT_TOLERANCE})")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                   help="the target speaks TLS (default: when it is an https --pprof URL's)")
    p.add_argument("--no-goroutineleak", dest="goroutineleak", action="store_false",
                   help="do not read Go's goroutineleak profile even when the target serves it")
    p.add_argument("--full-wait", dest="early_verdict", action="store_false",
                   help="always hold for --hold and wait out --settle-timeout, even when the "
                        "verdict is already certain")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a target that is not a loopback address")
    p.add_argument("--load", metavar="PATH", action="append", default=[],
                   help="GET this path on the target before probing (repeatable): a minimal load")
    p.add_argument("--load-requests", type=int, metavar="N", default=DEFAULT_LOAD_REQUESTS,
                   help=f"requests per --load path (default {DEFAULT_LOAD_REQUESTS})")
    p.add_argument("--json", metavar="OUT", help="write the checks and verdict as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not (args.pprof or args.metrics):
        raise UsageError("--pprof URL (or --metrics URL) is required")
    if args.load_requests < 0:
        raise UsageError("--load-requests must be >= 0")
    config = LeakConfig.parse({
        "pprof_url": args.pprof, "metrics_url": args.metrics, "target": args.target,
        "hold_s": args.hold, "silent": args.silent, "partial": args.partial,
        "stalled": args.stalled, "handshake": args.handshake, "tls": args.tls,
        "probe_path": args.probe_path, "settle_timeout_s": args.settle_timeout,
        "tolerance": args.tolerance, "allow_remote": args.allow_remote,
        "goroutineleak": args.goroutineleak, "early_verdict": args.early_verdict,
    }, names=_FLAGS)
    started = time.monotonic()
    probe = LeakProbe(config, progress=_progress)
    host, port = probe.target
    _progress(f"{probe.source.description}; probing {host}:{port}"
              f"{' over TLS' if config.probe_tls else ''}")
    probe.baseline()
    if args.load and args.load_requests:
        load = send_requests(host, port, args.load, args.load_requests, tls=config.probe_tls)
        _progress(f"load: {load.sent} requests, {load.failed} failed")
    checks = tuple(probe.after_load())
    verdict = Verdict(checks)
    elapsed = time.monotonic() - started
    for check in checks:
        print(render_check(check))
    print(f"verdict: {verdict.status.upper()} in {elapsed:.1f} s")
    if args.json:
        _write_json(Path(args.json), config, verdict, elapsed, probe.leak_view.to_json())
    return verdict.exit_code


def _progress(message: str) -> None:
    print(f"probe-leak: {printable(message)}", file=sys.stderr, flush=True)


def _write_json(path: Path, config: LeakConfig, verdict: Verdict, elapsed: float,
                goroutineleak: dict) -> None:
    document = {
        "schema": JSON_SCHEMA, "kind": "probe-leak", "elapsed_s": round(elapsed, 3),
        "leak": {"config": config.model_dump(), "checks": [c.to_json() for c in verdict.checks],
                 "goroutineleak": goroutineleak},
        "verdict": verdict.to_json(),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
