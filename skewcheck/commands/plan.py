"""`skewcheck plan CONFIG [--requests N] [--out DIR]` — the offline capacity planner."""

from __future__ import annotations

import argparse

from skewcheck.config import load_scenario
from skewcheck.errors import UsageError
from skewcheck.plan import run_plan
from skewcheck.progress import ProgressBar
from skewcheck.report import terminal, write_reports


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="simulate a scenario's keys through each router and shard count, offline",
                       description=__doc__)
    p.add_argument("config", help="scenario YAML (see configs/)")
    p.add_argument("--requests", type=int, help="requests to simulate (default: plan.requests, 10^6)")
    p.add_argument("--out", help="write result.json, junit.xml, summary.md and report.html here")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.config)
    if args.requests is not None and args.requests <= 0:
        raise UsageError("--requests must be > 0")
    doc = run_plan(scenario, args.requests, ProgressBar("plan", enabled=args.progress))
    print(terminal.render(doc))
    if args.out:
        written = write_reports(doc, args.out, scenario.report.formats)
        print("reports: " + ", ".join(str(p) for p in written.values()))
    return int(doc["verdict"]["exit_code"])
