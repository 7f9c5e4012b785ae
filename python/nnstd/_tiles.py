"""Tiles of a matrix: networks' content keys, the mode a result depends on, and one tile's
pairs computed through the core.

The matrix of a run is cut into tiles (blocks of rows x columns). A tile is the unit of work
everywhere: a thread pool computes its pairs in-process, a Dask worker computes it on a cluster,
a SLURM array task computes a shard of them, and the store keeps every finished tile as one file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._graph import GraphNetwork
from nnstd._network import Network, PathLike, load_network
from nnstd._options import Options, check_comparable

Item: TypeAlias = "Network | PathLike"
FloatArray: TypeAlias = "npt.NDArray[np.float64]"
BoolArray: TypeAlias = "npt.NDArray[np.bool_]"

# Tiles of 16 x 16 pairs: small enough that an interrupted run loses little and a cluster
# balances well, large enough that a tile's file and task overheads stay far below its work.
DEFAULT_TILE = 16
# Format 2: a tile carries its mode and which pairs it computed, and is named after both.
STORE_FORMAT = 2


# ---- networks: lazy loading and content keys -----------------------------------------------


def network_key(net: Network) -> str:
    """A content hash of a network's topology: equal for equal connection patterns and input
    groups (for a graph: its spec, fixed outputs and connection patterns), whatever file or
    name they came from (the distance depends on nothing else)."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(net, GraphNetwork):
        h.update(b"graph:" + net.content_key())  # never equal to a chain's bytes
        return h.hexdigest()
    for pattern, group in zip(net._patterns, net.input_groups, strict=True):
        h.update(np.array([*pattern.shape, group], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(pattern.indptr, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(pattern.indices, dtype=np.int64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class PortableNetwork:
    """A network in a form that pickles (the native topology does not), for Dask workers."""

    patterns: tuple[Any, ...]
    name: str
    input_groups: tuple[int, ...]

    @classmethod
    def of(cls, net: Network) -> PortableNetwork | GraphNetwork:
        if isinstance(net, GraphNetwork):
            return net  # pickles as what its topology is built from
        return cls(tuple(net._patterns), net.name or "network", net.input_groups)

    def network(self) -> Network:
        return Network._from_patterns(list(self.patterns), self.name, self.input_groups)


def _materialise(item: object, load_budget: int | None) -> Network:
    if isinstance(item, PortableNetwork):
        return item.network()
    if isinstance(item, Network):
        return item
    return load_network(item, memory_budget=load_budget)  # type: ignore[arg-type]


class _Loader:
    """Networks by position, loaded from their paths on first use; a few kept (least recently
    used first out) so that a tile's rows and columns are read once, not once per pair."""

    def __init__(self, items: Sequence[object], keep: int, load_budget: int | None) -> None:
        self._items = items
        self._keep = max(keep, 1)
        self._budget = load_budget
        self._cache: OrderedDict[int, Network] = OrderedDict()

    def __getitem__(self, i: int) -> Network:
        item = self._items[i]
        if isinstance(item, Network):
            return item
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        net = _materialise(item, self._budget)
        self._cache[i] = net
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return net


def check_items(items: Sequence[Item], what: str) -> list[Item]:
    """The networks or paths, refused early (before any work) if one is neither."""
    out = list(items)
    for k, item in enumerate(out):
        if not isinstance(item, (Network, str, os.PathLike)):
            raise TypeError(
                f"{what}[{k}]: expected a nnstd.Network or a path, got {type(item).__name__}"
            )
    return out


# ---- the mode a result depends on ----------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """Everything besides the two networks that a stored distance depends on."""

    solver: str
    depth: int
    memory_budget: int
    version: str

    def key(self) -> str:
        text = json.dumps({"format": STORE_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _nnstd_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnstd")
    except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
        return "unknown"


def make_mode(
    first: Item, options: Options, load_budget: int | None = None
) -> tuple[Mode, tuple[int, ...]]:
    """The mode of a run and its chosen layers (the first network gives the depth). The
    options carry the solver's own name ("exact", the paper mode's former name, is "paper":
    one store key for both) and the budget with its default filled in."""
    chosen = options.select(_materialise(first, load_budget).depth)
    return Mode(options.solver, max(chosen) + 1, options.memory_budget, _nnstd_version()), chosen


# ---- tiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """A block of the matrix: row and column positions, and which of its pairs to compute."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]
    needed: BoolArray  # (len(rows), len(cols))

    @property
    def pairs(self) -> int:
        return int(self.needed.sum())


def plan_tiles(needed: BoolArray, tile: int) -> list[Tile]:
    """The blocks of ``tile`` x ``tile`` that hold at least one needed pair, row-major."""
    n_rows, n_cols = needed.shape
    out = []
    for r0 in range(0, n_rows, tile):
        for c0 in range(0, n_cols, tile):
            block = needed[r0 : r0 + tile, c0 : c0 + tile]
            if block.any():
                rows = tuple(range(r0, min(r0 + tile, n_rows)))
                cols = tuple(range(c0, min(c0 + tile, n_cols)))
                out.append(Tile(rows, cols, block.copy()))
    return out


class Networks(Protocol):
    """Networks by position (a list, or one that loads them when asked)."""

    def __getitem__(self, i: int, /) -> Network: ...


def tile_networks(
    rows: Networks, cols: Networks, needed: BoolArray
) -> tuple[dict[int, Network], dict[int, Network]]:
    """The rows and columns (by position in the tile) that the tile's needed pairs use, loaded
    here, in this thread, before any pair starts."""
    row_nets = {int(r): rows[int(r)] for r in np.flatnonzero(needed.any(axis=1))}
    col_nets = {int(c): cols[int(c)] for c in np.flatnonzero(needed.any(axis=0))}
    return row_nets, col_nets


def loaded_keys(expected: Sequence[str], nets: dict[int, Network]) -> list[str]:
    """The content keys of what a tile computed from: the loaded networks' own keys (a file may
    have changed since the run keyed it), ``expected`` for the positions it did not load."""
    return [network_key(nets[k]) if k in nets else key for k, key in enumerate(expected)]


def tile_distances(
    nets: Sequence[Network],
    pairs: npt.NDArray[np.int64],
    mode: Mode,
    threads: int | None,
    progress: Callable[[int], None] | None,
) -> FloatArray:
    """``(len(pairs), mode.depth)`` distances of ``nets[i]`` from ``nets[j]`` for each pair
    ``(i, j)``: the core's pair scheduler (each network prepared once)."""
    return _core.pairs(
        [net._topology for net in nets],
        pairs,
        depth=mode.depth,
        solver=mode.solver,
        threads=threads,
        progress=progress,
        memory_budget=mode.memory_budget,
    )


def compute_tile(
    row_nets: dict[int, Network],
    col_nets: dict[int, Network],
    needed: BoolArray,
    mode: Mode,
    threads: int | None,
    on_pair: Callable[[], None] | None = None,
) -> FloatArray:
    """The tile's needed pairs (NaN elsewhere): ``[r, c] = distance(row_nets[r], col_nets[c])``.

    The core's pair scheduler prepares each network once (the canonical labelling), whatever
    number of pairs it is in, and runs the pairs on ``threads`` threads without the GIL; Ctrl-C
    stops it within a fraction of a second."""
    out = np.full((*needed.shape, mode.depth), np.nan)
    todo = np.argwhere(needed)
    if not len(todo):
        return out
    # Each distinct network once (a tile of a pairwise matrix has the same networks as rows
    # and as columns), in the order first met.
    nets: list[Network] = []
    slot: dict[int, int] = {}
    for net in [*row_nets.values(), *col_nets.values()]:
        if id(net) not in slot:
            slot[id(net)] = len(nets)
            nets.append(net)
    for net in nets[1:]:
        check_comparable(nets[0], net)
    pairs = np.array(
        [(slot[id(row_nets[int(r)])], slot[id(col_nets[int(c)])]) for r, c in todo],
        dtype=np.int64,
    )
    reported = 0

    def progress(done: int) -> None:
        nonlocal reported
        if on_pair is not None:
            for _ in range(done - reported):
                on_pair()
        reported = max(reported, done)

    values = tile_distances(nets, pairs, mode, threads, progress)
    progress(len(todo))
    out[todo[:, 0], todo[:, 1]] = values
    return out
