"""`skewcheck gate RESULT.json [--config CONFIG]` — re-judge a saved run result."""

from __future__ import annotations

import argparse

from skewcheck.config import load_scenario
from skewcheck.report import terminal, write_reports
from skewcheck.result import build_result, load_result, rejudge


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="judge a saved result (or a running sidecar) and exit 0/1/3",
                       description=__doc__)
    p.add_argument("result", nargs="?", help="result.json written by a run, plan or sidecar")
    p.add_argument("--config", help="scenario whose gate thresholds to apply (default: those in force at the run)")
    p.add_argument("--out", help="write the re-judged reports here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raw, doc = load_result(args.result)
    if args.config:
        gate_cfg = load_scenario(args.config).gate
    else:
        from skewcheck.gate import GateConfig

        gate_cfg = GateConfig.model_validate((raw.get("scenario") or {}).get("gate") or {})
    summary, judgement = rejudge(doc, gate_cfg)
    keep = {k: raw[k] for k in ("plan", "leak", "producer", "scenario", "kind") if k in raw}
    out = build_result(raw.get("kind", "run"), summary, judgement, raw.get("scenario"), keep)
    print(terminal.render(out))
    if args.out:
        write_reports(out, args.out, ["json", "junit", "markdown", "html"])
    return judgement.verdict.exit_code
