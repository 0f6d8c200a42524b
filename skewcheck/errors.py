"""Errors a user can cause, each mapped to the documented exit code."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_BLOCK = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3


class SkewcheckError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = EXIT_USAGE


class UsageError(SkewcheckError):
    """Bad flag, invalid configuration, unknown router, unreadable input: exit 2."""

    exit_code = EXIT_USAGE


class InconclusiveError(SkewcheckError):
    """Not enough evidence to judge (no data, unreachable source): exit 3."""

    exit_code = EXIT_INCONCLUSIVE
