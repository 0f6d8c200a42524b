"""The planned keys as a stream: drawn again from the start for every pass (the same seeded
generators, or the replay file from its first line), and exact per-shard counts over it.

A pass holds one chunk of keys at a time, so memory is the chunk, the key model and the counts
asked for, whatever the number of requests.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from skewcheck.keytext import KeyBatch
from skewcheck.plan.keymodel import KeyModel, KeyModelBuilder
from skewcheck.plan.placement import Placement, prepare_all

CHUNK_KEYS = 1 << 18  # int keys drawn per step: a few MB of keys and their hashes
STR_CHUNK_KEYS = 1 << 16  # str keys per step: Python strings cost ~60 bytes each
ProgressFn = Callable[[int, int], None]
Progress = Callable[[str], ProgressFn | None]


class KeyStream:
    """`requests` keys drawn from a freshly built distribution, chunk by chunk."""

    def __init__(self, build: Callable[[], Any], requests: int, key_type: str,
                 progress: Progress | None = None) -> None:
        self.build = build
        self.requests = requests
        self.key_type = key_type
        self.progress = progress
        self.passes = 0

    def chunks(self, label: str) -> Iterator[np.ndarray]:
        self.passes += 1
        report = self.progress(label) if self.progress else None
        dist = self.build()
        done = 0
        chunk = CHUNK_KEYS if self.key_type == "int" else STR_CHUNK_KEYS
        while done < self.requests:
            n = min(chunk, self.requests - done)
            yield dist.sample(n)
            done += n
            if report:
                report(done, self.requests)

    def model(self) -> KeyModel:
        builder = KeyModelBuilder(self.key_type)
        for keys in self.chunks("reading keys"):
            builder.add(keys)
        return builder.model()


class ExactCounts:
    """Exact per-shard counts of every key of the stream, asked for in batches (one pass each)."""

    def __init__(self, stream: KeyStream, placements: dict[str, Placement]) -> None:
        self.stream = stream
        self.placements = placements
        self.loads: dict[str, dict[int, np.ndarray]] = {name: {} for name in placements}
        self.moved: dict[tuple[str, int, int], int] = {}  # requests whose shard changes N → M

    def count(self, wanted: dict[str, list[int]], moves: list[tuple[int, int]] = (),
              label: str = "exact counts") -> None:
        """Count the wanted (router, shard count) pairs and resharding moves not counted yet."""
        todo = {name: sorted({n for n in counts if n not in self.loads[name]})
                for name, counts in wanted.items()}
        todo = {name: counts for name, counts in todo.items() if counts}
        move_todo = [(name, a, b) for name in self.placements for a, b in moves
                     if (name, a, b) not in self.moved]
        if not todo and not move_todo:
            return
        names = sorted({*todo, *(name for name, _, _ in move_todo)},
                       key=list(self.placements).index)
        placements = [self.placements[name] for name in names]
        sums: dict[str, dict[int, np.ndarray]] = {
            name: {n: np.zeros(n, dtype=np.int64) for n in todo.get(name, [])} for name in names}
        moved = {key: 0 for key in move_todo}
        for keys in self.stream.chunks(label):
            batch = KeyBatch.of(keys, self.stream.key_type)
            prepared = prepare_all(placements, batch)
            for name, placement, values in zip(names, placements, prepared):
                if todo.get(name):
                    for n, load in placement.loads(values, batch, None, todo[name]).items():
                        sums[name][n] += load.astype(np.int64, copy=False)
            for key in move_todo:
                name, a, b = key
                placement = self.placements[name]
                values = prepared[names.index(name)]
                moved[key] += int(np.count_nonzero(placement.shards(values, batch, a)
                                                   != placement.shards(values, batch, b)))
        for name in names:
            self.loads[name].update(sums[name])
        self.moved.update(moved)
