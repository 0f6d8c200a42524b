"""`skewcheck infer`: which router and shard count does a system use, from (key, shard) pairs.

Pairs come from a run's result.json (`observed.pairs`, the X-Shard answers the run sampled), a
CSV of key,shard, or a JSON-lines access log with key and shard fields. Exit 0 when a candidate
routes at least --min-agreement of the pairs to the shard the system reported, 3 when none does
(or the pairs are too few, or all on one shard).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from skewcheck.errors import EXIT_INCONCLUSIVE, EXIT_PASS, InconclusiveError, UsageError
from skewcheck.infer import DEFAULT_MIN_AGREEMENT, MAX_PAIRS, infer, sample_pairs
from skewcheck.keytext import INT64_MAX, KEY_TYPES
from skewcheck.routing import ROUTER_NAMES

FORMATS = ("auto", "result", "csv", "jsonl")


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name, help="find which router and shard count a system uses",
        description="Rank routers x shard counts x key types by how many observed (key, shard) "
                    "pairs each routes to the shard the system reported.")
    parser.add_argument("source", metavar="PAIRS",
                        help="result.json, a CSV of key,shard, or a JSON-lines log ('-': stdin)")
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="how to read PAIRS (default: by its name; result for *.json)")
    parser.add_argument("--key-field", default="key", metavar="F",
                        help="CSV column / JSON field holding the key (default: key)")
    parser.add_argument("--shard-field", default="shard", metavar="F",
                        help="CSV column / JSON field holding the shard (default: shard)")
    parser.add_argument("--shards", type=int, action="append", default=[], metavar="N",
                        help="also try this shard count (repeatable)")
    parser.add_argument("--key-type", choices=KEY_TYPES, action="append", metavar="T",
                        help="only this key type (default: int where every key is one, and str)")
    parser.add_argument("--router", action="append", metavar="R",
                        help=f"only these routers (default: all of {', '.join(ROUTER_NAMES)} "
                             "that need no parameters, and those --config gives)")
    parser.add_argument("--config", metavar="SCENARIO",
                        help="routers' parameters (rings, slot maps, servers, splits) from this "
                             "scenario's routing.params")
    parser.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT,
                        metavar="X", help=f"share of pairs a match must route right "
                                          f"(default {DEFAULT_MIN_AGREEMENT})")
    parser.add_argument("--max-pairs", type=int, default=MAX_PAIRS, metavar="N",
                        help=f"sample larger inputs down to N pairs (default {MAX_PAIRS})")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if not 0 < args.min_agreement <= 1:
        raise UsageError("--min-agreement must be in (0, 1]")
    if args.max_pairs < 1:
        raise UsageError("--max-pairs must be >= 1")
    bad_shards = [n for n in args.shards if n < 1]
    if bad_shards:
        raise UsageError(f"--shards must be >= 1, got {bad_shards[0]}")
    unknown = [r for r in args.router or [] if r not in ROUTER_NAMES]
    if unknown:
        raise UsageError(f"unknown router {unknown[0]!r}; valid routers: {', '.join(ROUTER_NAMES)}")
    params = None
    if args.config:
        from skewcheck.config import load_scenario

        params = load_scenario(args.config).routing.params
    reader = PairReader(args.key_field, args.shard_field)
    pairs, seen = sample_pairs(reader.read(args.source, args.format), args.max_pairs)
    if not pairs:
        raise InconclusiveError(f"{args.source}: no (key, shard) pairs found"
                                + (f" ({reader.skipped} records were not pairs)"
                                   if reader.skipped else ""))
    inference = infer(pairs, params=params, shards=args.shards,
                      key_types=args.key_type or KEY_TYPES, routers=args.router,
                      min_agreement=args.min_agreement)
    notes = []
    if seen > len(pairs):
        notes.append(f"sampled {len(pairs):,} of {seen:,} pairs")
    if reader.skipped:
        notes.append(f"skipped {reader.skipped:,} records that were not key/shard pairs")
    if args.json:
        doc = {**inference.to_json(), "seen": seen, "skipped": reader.skipped}
        print(json.dumps(doc, indent=2))
    else:
        print(inference.message())
        for note in notes:
            print(f"({note})")
    return EXIT_PASS if inference.match is not None else EXIT_INCONCLUSIVE


class PairReader:
    """(key text, shard) pairs from one of the input formats; malformed records are counted and
    skipped, never fatal."""

    def __init__(self, key_field: str, shard_field: str) -> None:
        self.key_field, self.shard_field = key_field, shard_field
        self.skipped = 0

    def read(self, source: str, fmt: str) -> Iterator[tuple[str, int]]:
        if fmt == "auto":
            fmt = _format_of(source)
        text = self._open(source)
        if fmt == "result":
            yield from self._result(text, source)
        elif fmt == "csv":
            yield from self._csv(text)
        else:
            yield from self._jsonl(text)

    @staticmethod
    def _open(source: str) -> io.TextIOBase:
        if source == "-":
            return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict",
                                    newline="")
        try:
            return open(source, encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None

    def _pair(self, key: Any, shard: Any) -> tuple[str, int] | None:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            return None
        if isinstance(shard, str) and shard.strip().isdigit() and shard.strip().isascii():
            shard = int(shard.strip())
        if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard <= INT64_MAX:
            return None
        return (key if isinstance(key, str) else str(key)), shard

    def _take(self, key: Any, shard: Any) -> Iterator[tuple[str, int]]:
        pair = self._pair(key, shard)
        if pair is None:
            self.skipped += 1
        else:
            yield pair

    def _result(self, text: io.TextIOBase, source: str) -> Iterator[tuple[str, int]]:
        try:
            with text:
                doc = json.load(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{source} is not a JSON result document ({exc})") from None
        observed = doc.get("observed") if isinstance(doc, dict) else None
        if not isinstance(observed, dict):
            raise InconclusiveError(f"{source} holds no observed shards: the run's target "
                                    "answered no X-Shard header")
        pairs = observed.get("pairs")
        if not isinstance(pairs, list):
            examples = observed.get("mismatch_examples") or []
            raise InconclusiveError(
                f"{source} has no observed.pairs (only {len(examples)} mismatch examples); "
                "give a CSV or an access log of key,shard instead")
        for item in pairs:
            if isinstance(item, list) and len(item) == 2:
                yield from self._take(*item)
            else:
                self.skipped += 1

    def _csv(self, text: io.TextIOBase) -> Iterator[tuple[str, int]]:
        try:
            with text:
                rows = csv.reader(text)
                first = next(rows, None)
                if first is None:
                    return
                if self.key_field in first and self.shard_field in first:
                    k, s = first.index(self.key_field), first.index(self.shard_field)
                else:  # no header: key, shard in the first two columns
                    k, s = 0, 1
                    rows = _chain([first], rows)
                for row in rows:
                    if len(row) > max(k, s):
                        yield from self._take(row[k], row[s])
                    elif row:
                        self.skipped += 1
        except UnicodeDecodeError as exc:
            raise UsageError(f"the CSV is not UTF-8 text (byte {exc.start})") from None
        except csv.Error as exc:
            raise UsageError(f"the CSV is malformed: {exc}") from None

    def _jsonl(self, text: io.TextIOBase) -> Iterator[tuple[str, int]]:
        try:
            with text:
                for line in text:
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        self.skipped += 1
                        continue
                    if isinstance(record, dict):
                        yield from self._take(record.get(self.key_field),
                                              record.get(self.shard_field))
                    else:
                        self.skipped += 1
        except UnicodeDecodeError as exc:
            raise UsageError(f"the log is not UTF-8 text (byte {exc.start})") from None


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def _format_of(source: str) -> str:
    suffix = Path(source).suffix.lower()
    if suffix == ".json":
        return "result"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "jsonl"
