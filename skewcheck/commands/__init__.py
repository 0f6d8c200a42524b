"""One module per `skewcheck` subcommand, each with add_parser(subparsers) and run(args) -> int."""

from __future__ import annotations

import argparse
import math


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (nan and inf are no timeout)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds above 0")
    return value
