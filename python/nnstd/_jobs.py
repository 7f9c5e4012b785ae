"""Jobs: one matrix to fill, its tiles run here (in-process, on a thread pool in the core),
finished pairs counted for progress and placed in the result."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from nnstd._errors import TopologyError
from nnstd._network import Network
from nnstd._store import Store
from nnstd._tiles import (
    DEFAULT_TILE,
    BoolArray,
    FloatArray,
    Item,
    Mode,
    Tile,
    _Loader,
    _materialise,
    compute_tile,
    loaded_keys,
    network_key,
    tile_networks,
)

Progress: TypeAlias = "Callable[[int, int], object] | None"


@dataclass
class Job:
    """One matrix to fill: row and column networks (or paths), which pairs it needs, and how."""

    rows: list[Item]
    cols: list[Item]
    required: BoolArray  # (n_rows, n_cols): the pairs the caller asked for
    mode: Mode
    tile: int = DEFAULT_TILE
    shard: tuple[int, int] | None = None  # (i, n): compute only tiles i, i+n, i+2n, ...
    load_budget: int | None = None  # bytes reading one network file may take (None: default)

    def keys(self, same: bool) -> tuple[list[str], list[str]]:
        """Content keys of the rows and columns (``same``: the columns are the rows)."""
        rows = [network_key(_materialise(item, self.load_budget)) for item in self.rows]
        if same:
            return rows, rows
        return rows, [network_key(_materialise(item, self.load_budget)) for item in self.cols]


def _still_needed(tile: Tile, needed: BoolArray) -> Tile:
    block = needed[tile.rows[0] : tile.rows[-1] + 1, tile.cols[0] : tile.cols[-1] + 1]
    return Tile(tile.rows, tile.cols, tile.needed & block)


class _Counter:
    """Finished pairs, reported as ``progress(done, total)`` at most every 0.2 s and at the end."""

    def __init__(self, done: int, total: int, progress: Progress) -> None:
        self.done, self.total, self.progress = done, total, progress
        self._lock = threading.Lock()
        self._last = 0.0
        if progress is not None:
            progress(done, total)

    def add(self, pairs: int = 1) -> None:
        with self._lock:
            self.done += pairs
            now = time.monotonic()
            due = now - self._last >= 0.2
            if due:
                self._last = now
        if due and self.progress is not None:
            self.progress(self.done, self.total)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def _run_here(
    job: Job,
    tiles: list[Tile],
    row_keys: list[str],
    col_keys: list[str],
    stash: Store | None,
    threads: int | None,
    counter: _Counter,
    out: FloatArray,
) -> None:
    keep = 2 * job.tile
    rows = _Loader(job.rows, keep, job.load_budget)
    cols = _Loader(job.cols, keep, job.load_budget)
    for tile in tiles:
        row_nets, col_nets = tile_networks(
            _Sub(rows, tile.rows), _Sub(cols, tile.cols), tile.needed
        )
        values = compute_tile(row_nets, col_nets, tile.needed, job.mode, threads, counter.add)
        _place(out, tile, values)
        if stash is not None:
            expected = ([row_keys[r] for r in tile.rows], [col_keys[c] for c in tile.cols])
            actual = (loaded_keys(expected[0], row_nets), loaded_keys(expected[1], col_nets))
            stash.write(*actual, tile.needed, values)
            _check_unchanged(job, tile, expected, actual)


def _check_unchanged(
    job: Job,
    tile: Tile,
    expected: tuple[list[str], list[str]],
    actual: tuple[list[str] | None, list[str] | None],
) -> None:
    """A network whose content is not what the run keyed at its start (its file changed
    since) is refused: the matrix would mix two versions of it. Its tile is already stored
    under the content it was computed from, so nothing is wrong in the store and a new run
    reuses it."""
    for items, positions, want, got in (
        (job.rows, tile.rows, expected[0], actual[0]),
        (job.cols, tile.cols, expected[1], actual[1]),
    ):
        if got is None:
            continue
        for k, (before, now) in enumerate(zip(want, got, strict=True)):
            if before != now:
                item = items[positions[k]]
                name = item.name if isinstance(item, Network) else os.fspath(item)
                raise TopologyError(
                    f"{name}: changed during the run (its content is not what it was when the "
                    "run started); run again to use its new content (pairs computed so far "
                    "are stored under the content they were computed from)"
                )


class _Sub:
    """Positions within a tile mapped to positions in the whole list."""

    def __init__(self, loader: _Loader, positions: tuple[int, ...]) -> None:
        self._loader, self._positions = loader, positions

    def __getitem__(self, i: int) -> Network:
        return self._loader[self._positions[i]]


def _place(out: FloatArray, tile: Tile, values: FloatArray) -> None:
    block = out[tile.rows[0] : tile.rows[-1] + 1, tile.cols[0] : tile.cols[-1] + 1]
    block[tile.needed] = values[tile.needed]
