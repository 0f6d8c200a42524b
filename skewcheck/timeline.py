"""Hot shards over time: per-shard request counts of the primary router in time columns, the data
of the shard × time heatmap (like TiDB's Key Visualizer) and of the `gate.sustained_s` rule.

The tally hands over each window slot when it ends. Columns start `column_s` wide; when a run
outlasts COLUMNS of them, neighbouring columns are added pairwise and the width doubles, so memory
stays COLUMNS × shards int64 however long the run (100 shards: 96 KB; 10⁴ shards: 9.6 MB).
"""

from __future__ import annotations

import math

import numpy as np

COLUMNS = 120  # heatmap columns: a 20 s run shows 1 s columns, a 2 h run 1 min ones


class Timeline:
    __slots__ = ("shards", "base_s", "column_s", "columns", "start", "counts", "used")

    def __init__(self, shards: int, column_s: float = 1.0, columns: int = COLUMNS) -> None:
        if columns < 2 or columns % 2:
            raise ValueError("a timeline has an even number of columns (they merge pairwise)")
        self.shards = shards
        self.base_s = float(column_s)
        self.column_s = float(column_s)
        self.columns = columns
        self.start: float | None = None  # the first column's start (unix s)
        self.counts = np.zeros((columns, shards), dtype=np.int64)
        self.used = 0  # columns up to the last one that holds anything

    def add(self, ts: float, counts: np.ndarray) -> None:
        """Add one slot's per-shard counts at time `ts` (its start)."""
        if not counts.any():
            return
        if self.start is None:
            self.start = math.floor(ts / self.column_s) * self.column_s
        column = max(0, int((ts - self.start) // self.column_s))
        while column >= self.columns:
            self._halve()
            column = max(0, int((ts - self.start) // self.column_s))
        self.counts[column] += counts
        self.used = max(self.used, column + 1)

    def _halve(self) -> None:
        """Merge neighbouring columns: half as many, twice as wide."""
        merged = self.counts[0::2] + self.counts[1::2]
        self.counts[:] = 0
        self.counts[:len(merged)] = merged
        self.column_s *= 2
        self.used = (self.used + 1) // 2

    def view(self, current_ts: float | None = None, current: np.ndarray | None = None) -> Timeline:
        """A copy with the slot still being counted added (what a live read shows)."""
        other = self.copy()
        if current is not None and current_ts is not None:
            other.add(current_ts, current)
        return other

    def copy(self) -> Timeline:
        other = Timeline(self.shards, self.base_s, self.columns)
        other.column_s, other.start, other.used = self.column_s, self.start, self.used
        other.counts = self.counts.copy()
        return other

    def clear(self) -> None:
        self.column_s = self.base_s
        self.start = None
        self.counts[:] = 0
        self.used = 0

    def used_counts(self) -> np.ndarray:
        """columns × shards, the columns up to the last one counted."""
        return self.counts[:self.used]


HEATMAP_ROWS = 128  # shards drawn; beyond, the ones with the highest share in any column


def heatmap_json(timeline: Timeline, router: str) -> dict | None:
    """The heatmap section of a result: per column the requests, per shown shard its counts."""
    counts = timeline.used_counts()
    if not len(counts) or timeline.start is None:
        return None
    totals = counts.sum(axis=1)
    k = counts.shape[1]
    if k <= HEATMAP_ROWS:
        shards = list(range(k))
    else:
        peak = (counts / np.maximum(totals, 1)[:, None]).max(axis=0)
        order = np.lexsort((np.arange(k), -counts.sum(axis=0), -peak))
        shards = sorted(int(s) for s in order[:HEATMAP_ROWS])
    return {"router": router, "start": timeline.start, "column_s": timeline.column_s, "columns": len(counts),
            "shards": k, "totals": totals.tolist(),
            "rows": [{"shard": s, "counts": counts[:, s].tolist()} for s in shards]}


def timeline_of(section: dict) -> Timeline:
    """A timeline rebuilt from a saved heatmap section (shards not shown count zero)."""
    columns = int(section["columns"])
    timeline = Timeline(int(section["shards"]), float(section["column_s"]), columns + columns % 2)
    timeline.start = float(section["start"])
    for row in section["rows"]:
        timeline.counts[:columns, int(row["shard"])] = row["counts"]
    timeline.used = columns
    return timeline
