"""Goroutine profiles as Go serves them: `?debug=1` and `?debug=2` text, and `go_goroutines`.

Both text forms become one `Profile` of `Stack`s, so the rest of the leak gate never
looks at text again. Every header form from Go 1.19 to 1.27 is accepted:
`created by F in goroutine N` (1.21), `(durable)` (1.25), `(leaked)` (1.26), pprof labels
inside or after the brackets (1.26 GODEBUG=tracebacklabels=1, 1.27), `, N minutes`,
`, locked to thread`, elided frames, tab-padded `#` lines and `# labels:` lines.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from skewcheck.errors import UsageError

ProfileFormat = Literal["debug=1", "debug=2", "go_goroutines"]

# runtime/pprof writes debug=1 headers for these two; anything else is another profile type
_GOROUTINE_PROFILE_NAMES = ("goroutine", "goroutineleak")
# the runtime truncates a debug=2 dump at 64 MiB; read a little more to notice the cut
MAX_PROFILE_BYTES = 80 << 20
_SNIPPET_CHARS = 60

_DEBUG1_HEADER = re.compile(r"^(?P<name>[\w.-]+) profile: total (?P<total>\d+)$")
_OTHER_PROFILE = re.compile(r"^(?P<name>[\w.-]+) profile:")
_DEBUG1_RECORD = re.compile(r"^(?P<count>\d+) @(?P<pcs>(?: 0x[0-9a-fA-F]+)*)\s*$")
_DEBUG1_LABELS = re.compile(r"^# labels: (?P<labels>\{.*\})\s*$")
_DEBUG1_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+$")
_DEBUG2_HEADER = re.compile(r"^goroutine (?P<id>\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[")
_CREATED_BY = re.compile(r"^created by (?P<func>.+?)(?: in goroutine (?P<creator>\d+))?$")
_ELIDED = re.compile(r"^\.\.\.(?:additional|\d+) frames elided\.\.\.$")
_ORIGINATING = re.compile(r"^\[originating from goroutine \d+\]:$")
_WAIT_MINUTES = re.compile(r"^(?P<minutes>\d+) minutes?$")
_STATE_FLAG = re.compile(r"\s*\((?P<flag>durable|leaked|scan)\)")
_LABEL_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_METRIC_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<value>\S+)(?:\s+-?\d+(?:\.\d+)?)?$")

_STACK_UNAVAILABLE = "goroutine running on other thread"
ELIDED_MARKER = "..."  # stands for frames the runtime left out, so deep stacks keep a stable shape


class ProfileError(UsageError):
    """Text that is not a goroutine profile (or not `go_goroutines`): one line, no traceback."""


@dataclass(frozen=True)
class Stack:
    """One goroutine (debug=2) or one group of goroutines with identical stacks (debug=1)."""

    functions: tuple[str, ...]  # innermost first; arguments and pc offsets removed
    created_by: str | None = None  # without "in goroutine N": ids differ between profiles
    count: int = 1
    state: str | None = None  # wait reason ("IO wait", "chan receive"); debug=1 has none
    wait_minutes: int | None = None  # a lower bound, printed only from 1 minute on
    goroutine_id: int | None = None
    creator_id: int | None = None
    locked_to_thread: bool = False
    durable: bool = False
    leaked: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    elided: bool = False
    locations: tuple[str, ...] = field(default=(), compare=False)  # file:line per function


@dataclass(frozen=True)
class Profile:
    format: ProfileFormat
    total: int
    stacks: tuple[Stack, ...] = ()
    truncated: bool = False  # debug=2 dump cut mid-goroutine (the 64 MiB limit)


def load_profile(path: str | Path) -> Profile:
    """Read a saved profile file (debug=1 or debug=2 text)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES)
    except OSError as exc:
        raise UsageError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    return parse_goroutine_profile(decode_profile(data, str(path)), source=str(path))


def decode_profile(data: bytes, source: str) -> str:
    if data[:2] == b"\x1f\x8b" or b"\x00" in data[:4096]:
        raise ProfileError(f"{source}: binary data, not a text goroutine profile "
                           "(a debug=0 protobuf?); fetch it with ?debug=1 or ?debug=2")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{source}: not UTF-8 text at byte {exc.start}; "
                           "not a goroutine profile") from None


def parse_goroutine_profile(text: str, source: str = "profile") -> Profile:
    """Parse `?debug=1` or `?debug=2` text, telling them apart by the first line."""
    lines = text.lstrip("\ufeff").splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ProfileError(f"{source}: empty, not a goroutine profile")
    head = lines[first].rstrip()
    header = _DEBUG1_HEADER.match(head)
    if header:
        if header["name"] not in _GOROUTINE_PROFILE_NAMES:
            raise ProfileError(f"{source}: a {header['name']} profile, not a goroutine profile")
        return _parse_debug1(lines, first, int(header["total"]), source)
    if _DEBUG2_HEADER.match(head):
        return _parse_debug2(lines, first, source)
    other = _OTHER_PROFILE.match(head)
    if other:
        raise ProfileError(f"{source}: a {other['name']} profile, not a goroutine profile")
    raise ProfileError(f"{source}: not a goroutine profile: line {first + 1} is {_snippet(head)} "
                       "(expected 'goroutine profile: total N' or 'goroutine N [state]:')")


def parse_go_goroutines(text: str, source: str = "metrics") -> Profile:
    """Read the `go_goroutines` gauge from Prometheus text: a total without stacks."""
    values: list[float] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sample = _METRIC_SAMPLE.match(line)
        if not sample:
            raise ProfileError(f"{source}: not Prometheus text: line {number} is {_snippet(line)}")
        if sample["name"] != "go_goroutines":
            continue
        try:
            value = float(sample["value"])
        except ValueError:
            raise ProfileError(f"{source}: line {number}: go_goroutines value "
                               f"{_snippet(sample['value'])} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ProfileError(f"{source}: line {number}: go_goroutines is {sample['value']}")
        values.append(value)
    if not values:
        raise ProfileError(f"{source}: no go_goroutines sample in the metrics")
    if len(values) > 1:
        raise ProfileError(f"{source}: {len(values)} go_goroutines series; "
                           "point the metrics URL at one Go process")
    return Profile(format="go_goroutines", total=int(values[0]))


def _parse_debug1(lines: list[str], first: int, total: int, source: str) -> Profile:
    stacks: list[Stack] = []
    record: dict | None = None

    def flush() -> None:
        nonlocal record
        if record is not None:
            stacks.append(Stack(functions=tuple(record["functions"]), count=record["count"],
                                labels=record["labels"], locations=tuple(record["locations"])))
            record = None

    for index in range(first + 1, len(lines)):
        line = lines[index].rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        start = _DEBUG1_RECORD.match(line)
        if start:
            flush()
            record = {"count": int(start["count"]), "functions": [], "locations": [], "labels": ()}
            continue
        if record is None:
            raise ProfileError(f"{source}: line {index + 1} is {_snippet(line)} where a "
                               "'N @ 0x…' stack record should start")
        labels = _DEBUG1_LABELS.match(line)
        if labels:
            record["labels"] = _parse_labels(labels["labels"])
            continue
        if not line.startswith("#"):
            raise ProfileError(f"{source}: line {index + 1} is {_snippet(line)}; "
                               "expected a '#' frame line")
        columns = [c for c in re.split(r"\t+", line[1:].strip()) if c]
        if len(columns) >= 2:  # a pc with no symbol has only the first column
            record["functions"].append(_DEBUG1_OFFSET.sub("", columns[1].strip()))
            record["locations"].append(columns[2].strip() if len(columns) > 2 else "")
    flush()
    return Profile(format="debug=1", total=total, stacks=tuple(stacks))


def _parse_debug2(lines: list[str], first: int, source: str) -> Profile:
    stacks: list[Stack] = []
    block: dict | None = None

    def flush() -> None:
        nonlocal block
        if block is not None:
            stacks.append(Stack(
                functions=tuple(block["functions"]), created_by=block["created_by"],
                state=block["state"], wait_minutes=block["wait_minutes"],
                goroutine_id=block["id"], creator_id=block["creator_id"],
                locked_to_thread=block["locked"], durable=block["durable"],
                leaked=block["leaked"], labels=block["labels"], elided=block["elided"],
                locations=tuple(block["locations"])))
            block = None

    for index in range(first, len(lines)):
        line = lines[index].rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        if block is None:
            if not _DEBUG2_HEADER.match(line):
                raise ProfileError(f"{source}: line {index + 1} is {_snippet(line)} where a "
                                   "'goroutine N [state]:' header should start")
            block = _parse_debug2_header(line, index + 1, source)
            continue
        if line.startswith("\t"):
            if block["in_frames"] and len(block["locations"]) < len(block["functions"]):
                block["locations"].append(line.strip().split(" +0x")[0])
            continue
        if not block["in_frames"]:
            continue  # an ancestor traceback (GODEBUG=tracebackancestors): not this goroutine
        created = _CREATED_BY.match(line)
        if created:
            block["created_by"] = created["func"]
            block["creator_id"] = int(created["creator"]) if created["creator"] else None
            block["in_frames"] = False
        elif _ELIDED.match(line):
            block["elided"] = True
            block["functions"].append(ELIDED_MARKER)
            block["locations"].append("")
        elif _ORIGINATING.match(line):
            block["in_frames"] = False
        elif line.startswith(_STACK_UNAVAILABLE):
            continue
        else:
            block["functions"].append(_function_name(line))
    # a dump cut at the runtime's 64 MiB limit ends inside a goroutine, before its last location
    truncated = block is not None and (
        not block["functions"] or len(block["locations"]) < len(block["functions"]))
    flush()
    return Profile(format="debug=2", total=len(stacks), stacks=tuple(stacks), truncated=truncated)


def _parse_debug2_header(line: str, number: int, source: str) -> dict:
    header = _DEBUG2_HEADER.match(line)
    assert header is not None
    open_at = header.end() - 1
    close_at = _closing(line, open_at, "[", "]")
    if close_at is None or not line.endswith(":"):
        raise ProfileError(f"{source}: line {number}: malformed goroutine header {_snippet(line)}")
    status, labels = _take_labels(line[open_at + 1:close_at])
    tail = line[close_at + 1:-1].strip()
    if tail.startswith("labels:"):
        tail = tail[len("labels:"):].strip()
    if tail.startswith("{"):
        labels = labels or _parse_labels(tail)
    parts = [part.strip() for part in status.split(",")]
    flags = {m["flag"] for m in _STATE_FLAG.finditer(parts[0])}
    block = {
        "id": int(header["id"]), "state": _STATE_FLAG.sub("", parts[0]).strip() or None,
        "durable": "durable" in flags, "leaked": "leaked" in flags, "wait_minutes": None,
        "locked": False, "labels": labels, "functions": [], "locations": [],
        "created_by": None, "creator_id": None, "elided": False, "in_frames": True,
    }
    for part in parts[1:]:
        minutes = _WAIT_MINUTES.match(part)
        if minutes:
            block["wait_minutes"] = int(minutes["minutes"])
        elif part == "locked to thread":
            block["locked"] = True
        elif part in ("durable", "leaked"):
            block[part] = True
        # anything else ("synctest bubble N", forms not yet invented) says nothing about leaks
    return block


def _take_labels(status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split `chan send labels:{"k": "v"}` (Go 1.26 GODEBUG=tracebacklabels=1) into its parts."""
    at = status.find("labels:{")
    if at < 0:
        return status, ()
    brace = at + len("labels:")
    end = _closing(status, brace, "{", "}")
    if end is None:
        return status[:at].rstrip(), _parse_labels(status[brace:])
    return (status[:at] + status[end + 1:]).strip(), _parse_labels(status[brace:end + 1])


def _closing(text: str, start: int, opening: str, closing: str) -> int | None:
    """Index of the bracket closing text[start], skipping quoted label keys and values."""
    depth, quoted, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index
    return None


def _parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((_unquote(key), _unquote(value)) for key, value in _LABEL_PAIR.findall(text))


def _unquote(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except ValueError:  # Go's \x escapes are not JSON; keep them as printed
        return text


def _function_name(line: str) -> str:
    """`net/http.(*conn).serve(0xc0000010e0, {…})` → `net/http.(*conn).serve`."""
    line = line.strip()
    if not line.endswith(")"):
        return line
    end = _closing_backwards(line)
    return line[:end] if end else line


def _closing_backwards(line: str) -> int | None:
    depth = 0
    for index in range(len(line) - 1, -1, -1):
        if line[index] == ")":
            depth += 1
        elif line[index] == "(":
            depth -= 1
            if depth == 0:
                return index
    return None


def _snippet(line: str) -> str:
    text = line if len(line) <= _SNIPPET_CHARS else line[:_SNIPPET_CHARS] + "…"
    return repr(text)
