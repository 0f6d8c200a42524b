"""`skewcheck route`: print the shard of each key, one per line, in order.

Keys come from the command line; `-` reads keys from stdin, one per line, streamed in chunks
that are each routed in one vectorised call. A router's parameters come from `--param KEY=VALUE`
(a YAML value: `--param vnodes=256`, `--param 'slots=[0-5460, 5461-16383]'`) or from a
scenario's `routing.params` (`--config`); `--describe` prints the router with its parameters.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, TextIO

import numpy as np
import yaml

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
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a router parameter (repeatable), e.g. vnodes=256 or ring=ring.txt")
    parser.add_argument("--config", metavar="SCENARIO",
                        help="take the router's parameters from this scenario's routing.params")
    parser.add_argument("--describe", action="store_true",
                        help="print the router with its parameters and shard count, then exit")
    parser.add_argument("keys", nargs="*", metavar="KEY",
                        help="a key to route; '-' reads keys from stdin, one per line")
    parser.set_defaults(run=run)
    return parser


def router_params(args: argparse.Namespace) -> dict:
    """The router's parameters: the scenario's routing.params for it, then each --param."""
    params: dict = {}
    if args.config:
        from skewcheck.config import load_scenario

        found = load_scenario(args.config).routing.params.of(args.router)
        params.update(found.model_dump(exclude_none=True) if found is not None else {})
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key.strip()] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            raise UsageError(f"--param {item!r}: the value is not valid YAML") from None
    return params


def run(args: argparse.Namespace) -> int:
    router = make_router(args.router, args.shards, args.key_type, router_params(args))
    if args.describe:
        print(f"{router.label} over {router.shards} shards, {router.key_type} keys")
        return 0
    if not args.keys:
        raise UsageError("give at least one KEY, or '-' to read keys from stdin")
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
