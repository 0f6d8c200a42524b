"""`skewcheck route`: print the shard of each key, one per line, in order.

Keys come from the command line; `-` reads keys from stdin, one per line, streamed in chunks
that are each routed in one vectorised call.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, TextIO

import numpy as np

from skewcheck.errors import UsageError
from skewcheck.keytext import KEY_TYPES, parse_key
from skewcheck.routing import ROUTER_NAMES, Router, make_router

STDIN_KEY = "-"
_READ_BYTES = 1 << 20  # stdin block size; each block's lines are routed together


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name, help="print the shard of each key",
        description="Print the shard each key routes to, one number per line, in order.")
    parser.add_argument("--router", required=True, metavar="R",
                        help=f"routing function: {', '.join(ROUTER_NAMES)}")
    parser.add_argument("--shards", required=True, type=int, metavar="N", help="number of shards")
    parser.add_argument("--key-type", default="int", metavar="T",
                        help=f"key type: {' or '.join(KEY_TYPES)} (default: int)")
    parser.add_argument("keys", nargs="+", metavar="KEY",
                        help="a key to route; '-' reads keys from stdin, one per line")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    router = make_router(args.router, args.shards, args.key_type)
    try:
        for batch in _batches(args.keys, args.key_type, sys.stdin.buffer):
            _write_shards(router, batch, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as other Unix filters do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _write_shards(router: Router, batch: list, out: TextIO) -> None:
    if batch:
        shards = router.shard_many(np.array(batch, dtype=np.int64) if router.key_type == "int"
                                   else batch)
        out.write("\n".join(map(str, shards.tolist())) + "\n")


def _batches(keys: list[str], key_type: str, stdin: object) -> Iterator[list]:
    """Keys in order, parsed, in batches: the command-line keys between '-', and stdin's blocks."""
    pending: list = []
    for text in keys:
        if text != STDIN_KEY:
            pending.append(parse_key(text, key_type))
            continue
        if pending:
            yield pending
            pending = []
        yield from _stdin_batches(stdin, key_type)
    if pending:
        yield pending


def _stdin_batches(stdin: object, key_type: str) -> Iterator[list]:
    line_no = 0
    for lines in _stdin_lines(stdin):
        if key_type == "str":
            yield lines
        else:
            yield [_parse(text, key_type, f"stdin line {line_no + i}")
                   for i, text in enumerate(lines, start=1)]
        line_no += len(lines)


def _stdin_lines(stdin: object) -> Iterator[list[str]]:
    """stdin's lines (without "\\n" or "\\r\\n") in blocks, decoded as UTF-8."""
    carry = b""
    offset = 0
    while True:
        block = stdin.read(_READ_BYTES)  # type: ignore[attr-defined]
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n") + 1  # a line is complete once its newline has arrived
        carry = block[cut:]
        if cut:
            yield _decode_lines(block[:cut], offset)
            offset += cut
    if carry:
        yield _decode_lines(carry, offset)


def _decode_lines(data: bytes, offset: int) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not UTF-8 text (byte {offset + exc.start})") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.removesuffix("\n").split("\n")


def _parse(text: str, key_type: str, where: str) -> int | str:
    try:
        return parse_key(text, key_type)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
