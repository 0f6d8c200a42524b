"""`skewcheck` command line: one subcommand per module in skewcheck.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from skewcheck import __version__
from skewcheck.errors import EXIT_INCONCLUSIVE, EXIT_USAGE, SkewcheckError
from skewcheck.report.escape import printable, printable_lines

# subcommand name -> module in skewcheck.commands exposing add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "route": "route",
    "infer": "infer",
    "plan": "plan",
    "gate": "gate",
    "leak-diff": "leak_diff",
    "probe-leak": "probe_leak",
    "sidecar": "sidecar",
    "demo-target": "demo_target",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep it to one line
        self.exit(EXIT_USAGE, f"skewcheck: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="skewcheck", description=__doc__)
    parser.add_argument("--version", action="version", version=f"skewcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"skewcheck.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("skewcheck.commands"):
                continue  # command not built into this installation
            raise
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except SkewcheckError as exc:
        print(printable_lines(f"skewcheck {args.command}: {exc}"), file=sys.stderr)  # keys come from data
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"skewcheck {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a verdict: never exit 1 (block) or 0 (pass) on it
        if os.environ.get("SKEWCHECK_DEBUG"):
            raise
        print(printable(f"skewcheck {args.command}: unexpected error: {type(exc).__name__}: {exc} "
                        "(set SKEWCHECK_DEBUG=1 for the traceback)"), file=sys.stderr)
        return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    sys.exit(main())
