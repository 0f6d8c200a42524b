"""`skewcheck plan [CONFIG] [--requests N] [--out DIR] [--reshard N:M] [--from RESULT.json]` —
the offline capacity planner."""

from __future__ import annotations

import argparse
from typing import Any

from skewcheck.config import load_scenario
from skewcheck.errors import UsageError
from skewcheck.plan import run_plan
from skewcheck.progress import ProgressBar
from skewcheck.report import terminal, write_reports
from skewcheck.result import load_result


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="which router and shard count carry the target load, offline",
                       description=__doc__)
    p.add_argument("config", nargs="?",
                   help="scenario YAML (see configs/); with --from, default: the run's scenario")
    p.add_argument("--requests", type=int,
                   help="requests to simulate (default: plan.requests, 10^6, or a replay's keys)")
    p.add_argument("--out", help="write result.json, junit.xml, summary.md and report.html here")
    p.add_argument("--reshard", metavar="N:M",
                   help="what moves going from N to M shards (default: plan.reshard)")
    p.add_argument("--from", dest="from_result", metavar="RESULT.json",
                   help="plan a saved run's observed key weights instead of the scenario's keys")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: when stderr is a terminal)")
    p.set_defaults(run=run)


def reshard_counts(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--reshard {text!r}: give two shard counts as N:M, e.g. 100:128")
    before, after = int(parts[0]), int(parts[1])
    if before < 1 or after < 1 or before == after:
        raise UsageError(f"--reshard {text!r}: two different shard counts, each at least 1")
    return before, after


def run(args: argparse.Namespace) -> int:
    result: tuple[str, dict[str, Any]] | None = None
    if args.from_result:
        raw, _ = load_result(args.from_result)
        result = (args.from_result, raw)
    if args.config is None and result is None:
        raise UsageError("give a scenario file, or --from RESULT.json")
    scenario = load_scenario(args.config) if args.config else _recorded_scenario(result)
    if args.requests is not None and args.requests <= 0:
        raise UsageError("--requests must be > 0")
    if args.requests is not None and result is not None:
        raise UsageError("--requests has no meaning with --from: the run's requests are planned")
    reshard = reshard_counts(args.reshard) if args.reshard else None
    doc = run_plan(scenario, args.requests,
                   lambda label: ProgressBar(f"plan: {label}", enabled=args.progress),
                   reshard=reshard, result=result)
    print(terminal.render(doc))
    if args.out:
        written = write_reports(doc, args.out, scenario.report.formats)
        print("reports: " + ", ".join(str(p) for p in written.values()))
    return int(doc["verdict"]["exit_code"])


def _recorded_scenario(result: tuple[str, dict[str, Any]] | None) -> Any:
    from pydantic import ValidationError

    from skewcheck.config import Scenario
    from skewcheck.errors import validation_message

    assert result is not None
    path, raw = result
    try:
        return Scenario.model_validate(raw.get("scenario") or {})
    except ValidationError as exc:
        raise UsageError(validation_message(exc, source=f"{path} (scenario)",
                                            separator="; ")) from None
