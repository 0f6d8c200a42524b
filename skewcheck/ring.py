"""Token rings: sorted points on a hash circle, each owned by a node; a key belongs to the node of
the first point at or after its hash, wrapping past the last point to the first.

A Cassandra ring comes from `nodetool ring` output or a `system.peers` / `system.local` query
(cqlsh's `peer | tokens` table), or is assigned from a seed (random tokens, as Cassandra's
random allocation); ketama's continuum is built in skewcheck.ketama.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from skewcheck.errors import UsageError, read_text

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_TOKEN = re.compile(r"^[-+]?\d+$")
_SET = re.compile(r"\{([^}]*)\}")


@dataclass(frozen=True)
class Ring:
    """Points in ascending order and the node (shard number) owning each."""

    points: np.ndarray
    owners: np.ndarray
    nodes: tuple[str, ...]

    def owner(self, point: int) -> int:
        i = bisect_left(self._points_list, point)
        return self._owners_list[i if i < len(self._owners_list) else 0]

    def owners_of(self, values: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.points, values, side="left")
        i[i == self.points.size] = 0
        return self.owners[i].astype(np.int64)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_points_list", self.points.tolist())
        object.__setattr__(self, "_owners_list", self.owners.tolist())


def build_ring(points_by_node: dict[str, list[int]], dtype: type, what: str) -> Ring:
    """A Ring from each node's points (nodes numbered in the order given); UsageError when two
    nodes claim the same point."""
    nodes = tuple(points_by_node)
    points = np.array([p for ps in points_by_node.values() for p in ps], dtype=dtype)
    owners = np.array([i for i, ps in enumerate(points_by_node.values()) for _ in ps],
                      dtype=np.int64)
    order = np.argsort(points, kind="stable")
    points, owners = points[order], owners[order]
    clash = np.flatnonzero(points[1:] == points[:-1])
    if clash.size:
        raise UsageError(f"{what}: token {int(points[clash[0]])} appears more than once")
    return Ring(points, owners, nodes)


def parse_cassandra_ring(text: str, source: str) -> dict[str, list[int]]:
    """Each node's tokens from `nodetool ring` output or a `peer | tokens` table, in file order."""
    nodes: dict[str, list[int]] = {}
    for line in text.splitlines():
        found = _SET.search(line)
        if "|" in line and found:  # cqlsh: ` 127.0.0.2 | {'-9223...', '42'}`
            node = line.split("|", 1)[0].strip()
            tokens = re.findall(r"[-+]?\d+", found.group(1))
        else:  # nodetool ring: `127.0.0.1  rack1  Up  Normal  1.2 MiB  33.33%  -9223...`
            fields = line.split()
            if len(fields) < 2 or not _TOKEN.match(fields[-1]) or _TOKEN.match(fields[0]):
                continue
            node, tokens = fields[0], [fields[-1]]
        for token in tokens:
            value = int(token)
            if not INT64_MIN <= value <= INT64_MAX:
                raise UsageError(f"{source}: token {value} is outside the signed 64-bit range")
            nodes.setdefault(node, []).append(value)
    if not nodes:
        raise UsageError(f"{source}: no node tokens found (expected `nodetool ring` output or "
                         "a `peer | tokens` table from system.peers)")
    return nodes


def load_cassandra_ring(path: str) -> Ring:
    source = f"ring file {path}"
    return build_ring(parse_cassandra_ring(read_text(path, "ring file"), source), np.int64, source)


def seeded_cassandra_ring(nodes: int, vnodes: int, seed: int) -> Ring:
    """`nodes` nodes with `vnodes` random tokens each, drawn from a seeded generator: node i
    takes row i of the draw, so the same seed gives the same ring everywhere."""
    rng = np.random.default_rng(seed)
    # Long.MIN_VALUE is the partitioner's minimum token: no node or key holds it
    tokens = rng.integers(INT64_MIN + 1, INT64_MAX, size=(nodes, vnodes), dtype=np.int64,
                          endpoint=True)
    return build_ring({f"node{i}": row.tolist() for i, row in enumerate(tokens)}, np.int64,
                      f"a ring of seed {seed}")
