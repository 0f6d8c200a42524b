"""Errors a user can cause, each mapped to the documented exit code, and how a validation error
becomes the one-line message the user reads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pydantic is a dependency, but this module must stay cheap to import
    from pydantic import ValidationError

EXIT_PASS = 0
EXIT_BLOCK = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3

MAX_LISTED_ERRORS = 5  # a file with more problems than this gets "... and N more"


class SkewcheckError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = EXIT_USAGE


class UsageError(SkewcheckError):
    """Bad flag, invalid configuration, unknown router, unreadable input: exit 2."""

    exit_code = EXIT_USAGE


class InconclusiveError(SkewcheckError):
    """Not enough evidence to judge (no data, unreachable source): exit 3."""

    exit_code = EXIT_INCONCLUSIVE


def read_text(path: str | Path, what: str) -> str:
    """A user's file as UTF-8 text, or one line naming `what` it is: "cannot read slot map x: ..."."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None


def field_path(loc: Sequence[Any], root: str = "", skip: Iterable[str] = ()) -> str:
    """A pydantic error location as the user wrote it: `keys[1].components[0].count`.

    `skip` drops the tags pydantic inserts for discriminated unions (`strided`, ...).
    """
    skipped = set(skip)
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in skipped:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def validation_message(exc: "ValidationError", *, root: str = "", source: str = "",
                       line_of: Callable[[tuple[Any, ...]], int | None] | None = None,
                       names: dict[str, str] | None = None, skip: Iterable[str] = (),
                       limit: int = MAX_LISTED_ERRORS, separator: str = "\n") -> str:
    """The project's one message for a validation error: `source:line: field: problem` per error.

    `names` renames a field (e.g. to the command-line flag that set it); `line_of` finds the
    line of a location in the source file.
    """
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:limit]:
        loc = tuple(err["loc"])
        dotted = ".".join(map(str, loc))
        field = (names or {}).get(dotted) or field_path(loc, root, skip)
        line = line_of(loc) if line_of else None
        where = f"{source}:{line}" if source and line else source
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {field}: {message}" if where else f"{field}: {message}")
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more")
    return separator.join(lines)
