"""The state file: a sidecar's counts and consumed offsets, carried across a restart.

Written atomically (temporary file, fsync, rename) before every offset commit, so the file is
never behind the committed offsets: a restart with the same file continues counting exactly
where the file left off (see skewcheck.kafka.consumer for what that guarantees).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from skewcheck.errors import UsageError


def save(path: Path, doc: dict[str, Any]) -> None:
    data = json.dumps(doc, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the rename must never expose a half-written file after a crash
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path: Path) -> dict[str, Any] | None:
    """The saved document, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read the state file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the state file {path} is not a skewcheck state (not UTF-8)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the state file {path} is not a skewcheck state: {exc}") from None


def check_writable(path: Path, what: str) -> None:
    """Fail at start, not at shutdown, when a file cannot be written where asked."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write the {what} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write the {what} {path}: {parent} is not writable")
    if path.is_dir():
        raise UsageError(f"cannot write the {what} {path}: it is a directory")
