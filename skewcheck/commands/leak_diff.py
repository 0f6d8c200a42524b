"""`skewcheck leak-diff BEFORE AFTER [--tolerance N]` — compare two saved goroutine profiles.

Either file may be `?debug=1` or `?debug=2` text. Exit 1 when AFTER holds more goroutines
than BEFORE + tolerance (the new stacks are shown grouped), 0 otherwise, 2 for a file that
is not a goroutine profile.
"""

from __future__ import annotations

import argparse

from skewcheck.errors import EXIT_BLOCK, EXIT_PASS, UsageError
from skewcheck.leak.finding import counted_total, new_goroutines
from skewcheck.leak.profile import load_profile
from skewcheck.leak.report import render_findings

DEFAULT_TOLERANCE = 0  # two saved profiles of a settled server hold exactly the same goroutines


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="compare two saved goroutine profiles; 1 when AFTER has more",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", metavar="BEFORE", help="goroutine profile text (debug=1 or debug=2)")
    p.add_argument("after", metavar="AFTER", help="goroutine profile text (debug=1 or debug=2)")
    p.add_argument("--tolerance", type=int, metavar="N", default=DEFAULT_TOLERANCE,
                   help=f"extra goroutines still a pass (default {DEFAULT_TOLERANCE})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tolerance < 0:
        raise UsageError("--tolerance must be >= 0")
    before, after = load_profile(args.before), load_profile(args.after)
    before_total, after_total = counted_total(before), counted_total(after)
    print(f"before: {before_total} goroutines ({before.format}, {args.before})")
    print(f"after:  {after_total} goroutines ({after.format}, {args.after})")
    for name, profile in (("BEFORE", before), ("AFTER", after)):
        if profile.truncated:
            print(f"warning: {name} ends mid-goroutine (the runtime cuts dumps at 64 MiB)")
    findings = new_goroutines(before, after)
    if findings:
        print("new stacks:")
        print(render_findings(findings))
    growth = after_total - before_total
    if growth > args.tolerance:
        print(f"leak: {growth} more goroutines after than before (tolerance {args.tolerance})")
        return EXIT_BLOCK
    print(f"no leak: {max(growth, 0)} more goroutines after than before "
          f"(tolerance {args.tolerance})")
    return EXIT_PASS
