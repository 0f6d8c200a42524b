"""A Redis Cluster slot map: which primary owns each of the 16384 hash slots.

Read from `CLUSTER NODES` output, from `CLUSTER SHARDS` output (as redis-cli prints it to a
terminal, into a pipe, or with `--json`), or given as slot ranges per shard. Primaries are
numbered by their lowest slot, so shard 0 owns slot 0.
"""

from __future__ import annotations

import re

import numpy as np

from skewcheck.errors import UsageError, read_text
from skewcheck.hashes import REDIS_SLOTS

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
# CLUSTER SHARDS as redis-cli prints it: quoted strings and "(integer) N", or bare JSON numbers
_SHARDS_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"'  # a quoted string
                           r"|\(integer\)\s*(-?\d+)"  # redis-cli's framed integer
                           r"|(?<![\w)])(-?\d+)(?=\s*[,\]\n]|$)")  # a JSON number


def _slot_range(text: str, where: str) -> tuple[int, int]:
    found = _RANGE.match(text.strip())
    if not found:
        raise UsageError(f"{where}: {text!r} is not a slot or a slot range such as 0-5460")
    lo = int(found.group(1))
    hi = int(found.group(2) or lo)
    if not lo <= hi < REDIS_SLOTS:
        raise UsageError(f"{where}: slot range {text!r} is not within 0-{REDIS_SLOTS - 1}")
    return lo, hi


def parse_cluster_nodes(text: str, source: str) -> dict[str, list[tuple[int, int]]]:
    """Each primary's slot ranges from CLUSTER NODES output (replicas and migrations ignored)."""
    owners: dict[str, list[tuple[int, int]]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2].split(","):
            continue
        address = fields[1].split("@", 1)[0]
        ranges = owners.setdefault(address, [])
        for slot in fields[8:]:
            if slot.startswith("["):  # [slot->-node] / [slot-<-node]: a migration in progress
                continue
            ranges.append(_slot_range(slot, f"{source} line {number}"))
    return owners


def parse_cluster_shards(text: str, source: str) -> dict[str, list[tuple[int, int]]]:
    """Each primary's slot ranges from `redis-cli [--json] CLUSTER SHARDS` output."""
    tokens: list[str | int] = []
    if '"' not in text:  # redis-cli into a pipe prints raw replies: one value a line
        for line in text.splitlines():
            value = line.strip()
            if value:
                tokens.append(int(value) if re.fullmatch(r"-?\d+", value) else value)
    for found in _SHARDS_TOKEN.finditer(text if '"' in text else ""):
        string, integer, bare = found.groups()
        number = integer if integer is not None else bare
        tokens.append(string if string is not None else int(number))
    owners: dict[str, list[tuple[int, int]]] = {}
    i = 0
    while i < len(tokens):
        if tokens[i] != "slots":
            i += 1
            continue
        i += 1
        bounds = []
        while i < len(tokens) and isinstance(tokens[i], int):
            bounds.append(tokens[i])
            i += 1
        if len(bounds) % 2:
            raise UsageError(f"{source}: a shard's slots are not start/end pairs")
        if i < len(tokens) and tokens[i] == "nodes":
            i += 1  # then each node's fields as name, value pairs, starting with its id
        node: dict[str, str | int] = {}
        primary = None
        while i < len(tokens) and tokens[i] != "slots":
            if tokens[i] == "id" and node:
                primary = primary or _primary(node)
                node = {}
            if i + 1 < len(tokens) and isinstance(tokens[i], str):
                node[str(tokens[i])] = tokens[i + 1]
                i += 2
            else:
                i += 1
        primary = primary or _primary(node)
        if primary is None:
            raise UsageError(f"{source}: a shard lists no node with role master")
        ranges = [(lo, hi) for lo, hi in zip(bounds[::2], bounds[1::2])]
        for lo, hi in ranges:
            if not 0 <= lo <= hi < REDIS_SLOTS:
                raise UsageError(f"{source}: slot range {lo}-{hi} is not within "
                                 f"0-{REDIS_SLOTS - 1}")
        owners.setdefault(primary, []).extend(ranges)
    return owners


def _primary(node: dict[str, str | int]) -> str | None:
    if node.get("role") != "master":
        return None
    return f"{node.get('ip') or node.get('endpoint')}:{node.get('port') or node.get('tls-port')}"


def slot_owners(ranges_by_node: dict[str, list[tuple[int, int]]], source: str
                ) -> tuple[np.ndarray, tuple[str, ...]]:
    """The shard of every slot (int64[16384]) and the primaries in shard order (lowest slot
    first); UsageError for a slot owned twice or not at all."""
    nodes = sorted((n for n, r in ranges_by_node.items() if r),
                   key=lambda n: min(lo for lo, _ in ranges_by_node[n]))
    owner = np.full(REDIS_SLOTS, -1, dtype=np.int64)
    for shard, node in enumerate(nodes):
        for lo, hi in ranges_by_node[node]:
            taken = np.flatnonzero(owner[lo:hi + 1] >= 0)
            if taken.size:
                raise UsageError(f"{source}: slot {lo + int(taken[0])} is owned twice")
            owner[lo:hi + 1] = shard
    free = np.flatnonzero(owner < 0)
    if not nodes:
        raise UsageError(f"{source}: no primary owns any slot")
    if free.size:
        raise UsageError(f"{source}: slot {int(free[0])} is owned by no primary "
                         f"({free.size} unassigned slots); the cluster is not fully covered")
    return owner, tuple(nodes)


def load_slot_map(path: str) -> tuple[np.ndarray, tuple[str, ...]]:
    source = f"slot map {path}"
    text = read_text(path, "slot map")
    shards_form = '"slots"' in text or "slots" in text.split()
    parse = parse_cluster_shards if shards_form else parse_cluster_nodes
    ranges = parse(text, source)
    return slot_owners(ranges, source)


def slot_ranges(per_shard: list[str], where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """A slot map given inline: entry i lists shard i's slots, e.g. "0-5460" or "0-99,200-299"."""
    ranges = {f"shard{i}": [_slot_range(part, where) for part in entry.split(",") if part.strip()]
              for i, entry in enumerate(per_shard)}
    owner, _ = slot_owners(ranges, where)
    # shards keep the numbers the user gave them, not the lowest-slot order
    renumber = {new: int(name.removeprefix("shard")) for new, name in
                enumerate(sorted((n for n, r in ranges.items() if r),
                                 key=lambda n: min(lo for lo, _ in ranges[n])))}
    return np.array([renumber[s] for s in range(len(renumber))], dtype=np.int64)[owner], \
        tuple(ranges)
