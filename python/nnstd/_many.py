"""Many networks: cross-distances, a resumable store of finished tiles, and tiles on Dask.

The matrix of a run is cut into tiles (blocks of rows x columns). A tile is the unit of work
everywhere: a thread pool computes its pairs in-process, a Dask worker computes it on a cluster,
a SLURM array task computes a shard of them, and the store keeps every finished tile as one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._api import (
    DEFAULT_MEMORY_BUDGET,
    Layers,
    Solver,
    check_memory_budget,
    check_threads,
    pairwise,
)
from nnstd._api import _check_comparable as check_comparable
from nnstd._api import _check_solver as check_solver
from nnstd._api import _layer_selection as layer_selection
from nnstd._errors import TopologyError
from nnstd._network import Network, PathLike, as_network

if TYPE_CHECKING:
    from distributed import Client

Item: TypeAlias = "Network | PathLike"
Progress: TypeAlias = "Callable[[int, int], object] | None"
FloatArray: TypeAlias = "npt.NDArray[np.float64]"
BoolArray: TypeAlias = "npt.NDArray[np.bool_]"

# Tiles of 16 x 16 pairs: small enough that an interrupted run loses little and a cluster
# balances well, large enough that a tile's file and task overheads stay far below its work.
DEFAULT_TILE = 16
STORE_FORMAT = 1
MIN_CLUSTER_TILE = 4


# ---- networks: lazy loading and content keys -----------------------------------------------


def network_key(net: Network) -> str:
    """A content hash of a network's topology: equal for equal connection patterns and input
    groups, whatever file or name they came from (the distance depends on nothing else)."""
    h = hashlib.blake2b(digest_size=16)
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
    def of(cls, net: Network) -> PortableNetwork:
        return cls(tuple(net._patterns), net.name or "network", net.input_groups)

    def network(self) -> Network:
        return Network._from_patterns(list(self.patterns), self.name, self.input_groups)


def _materialise(item: object) -> Network:
    if isinstance(item, PortableNetwork):
        return item.network()
    return as_network(item)  # type: ignore[arg-type]


class _Loader:
    """Networks by position, loaded from their paths on first use; a few kept (least recently
    used first out) so that a tile's rows and columns are read once, not once per pair."""

    def __init__(self, items: Sequence[object], keep: int) -> None:
        self._items = items
        self._keep = max(keep, 1)
        self._cache: OrderedDict[int, Network] = OrderedDict()

    def __getitem__(self, i: int) -> Network:
        item = self._items[i]
        if isinstance(item, Network):
            return item
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        net = _materialise(item)
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
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def pair_distances(a: Network, b: Network, mode: Mode) -> FloatArray:
    """``distance(a, b)``'s first ``mode.depth`` layer distances, from the core."""
    layers, _, _, _ = _core.distance(
        a._topology,
        b._topology,
        depth=mode.depth,
        solver=mode.solver,
        memory_budget=mode.memory_budget,
    )
    return layers


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


def cluster_tile(required: BoolArray, client: Client) -> int:
    """The tile size for a cluster: the default, smaller while that gives fewer than four
    tiles per worker thread (tiles of unequal size on too few tasks leave workers idle)."""
    slots = max(1, sum(_untyped(client).nthreads().values()))
    tile = DEFAULT_TILE
    while tile > MIN_CLUSTER_TILE and len(plan_tiles(required, tile)) < 4 * slots:
        tile //= 2
    return tile


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


def compute_tile(
    rows: Networks,
    cols: Networks,
    needed: BoolArray,
    mode: Mode,
    threads: int | None,
    on_pair: Callable[[], None] | None = None,
) -> FloatArray:
    """The tile's needed pairs (NaN elsewhere): ``[r, c] = distance(rows[r], cols[c])``.

    Pairs run on a pool of threads (the core releases the GIL); networks are loaded here, in
    this thread, before any pair that needs them starts."""
    out = np.full((*needed.shape, mode.depth), np.nan)
    todo = [(int(r), int(c)) for r, c in zip(*np.nonzero(needed), strict=True)]
    if not todo:
        return out
    row_nets = {r: rows[r] for r, _ in todo}
    col_nets = {c: cols[c] for _, c in todo}
    first = next(iter(row_nets.values()))
    for k, net in [*row_nets.items(), *col_nets.items()]:
        check_comparable(first, net, f"{net.name or k} against {first.name or 'the first'}")
    workers = threads if threads is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(todo) == 1:
        for r, c in todo:
            out[r, c] = pair_distances(row_nets[r], col_nets[c], mode)
            if on_pair is not None:
                on_pair()
        return out
    pool = ThreadPoolExecutor(max_workers=min(workers, len(todo)))
    try:
        futures = {
            pool.submit(pair_distances, row_nets[r], col_nets[c], mode): (r, c) for r, c in todo
        }
        for future, (r, c) in futures.items():
            out[r, c] = future.result()
            if on_pair is not None:
                on_pair()
    finally:
        # Ctrl-C or an error: drop the queued pairs instead of finishing the whole tile.
        pool.shutdown(wait=True, cancel_futures=True)
    return out


# ---- the store -----------------------------------------------------------------------------


class Store:
    """Finished tiles on disk, keyed by the networks' content and the mode.

    Layout: ``PATH/mode-<key>/mode.json`` (the mode in words) and ``tiles/<name>.npz``, one file
    per finished tile holding its row keys, column keys and values (NaN: not in this tile).
    Every tile is written to a temporary file and renamed into place, so an interrupted run
    leaves whole tiles or none, and any number of writers (threads, Dask workers, SLURM tasks)
    can share a store without locks: no file is ever written twice with different content.
    """

    def __init__(self, path: PathLike, mode: Mode) -> None:
        self.root = Path(path)
        if self.root.exists() and not self.root.is_dir():
            raise TopologyError(f"store {self.root}: exists and is not a folder")
        self.mode = mode
        self.folder = self.root / f"mode-{mode.key()}"
        self.tiles = self.folder / "tiles"
        self.tiles.mkdir(parents=True, exist_ok=True)
        described = self.folder / "mode.json"
        if not described.exists():
            _atomic_write_bytes(
                described,
                json.dumps({"format": STORE_FORMAT, **asdict(mode)}, indent=1).encode(),
            )

    def known(self, row_keys: Sequence[str], col_keys: Sequence[str]) -> FloatArray:
        """Stored values for every (row, column) key pair; NaN where none is stored."""
        out = np.full((len(row_keys), len(col_keys), self.mode.depth), np.nan)
        row_at, col_at = _positions(row_keys), _positions(col_keys)
        for tile in sorted(self.tiles.glob("*.npz")):
            loaded = _read_tile(tile, self.mode.depth)
            if loaded is None:
                continue  # unreadable: its pairs are simply computed again
            t_rows, t_cols, values = loaded
            src_r, dst_r = _matches(t_rows, row_at)
            src_c, dst_c = _matches(t_cols, col_at)
            if not len(src_r) or not len(src_c):
                continue
            found = values[np.ix_(src_r, src_c)]
            target = out[np.ix_(dst_r, dst_c)]
            stored = ~np.isnan(found[:, :, 0])
            target[stored] = found[stored]
            out[np.ix_(dst_r, dst_c)] = target
        return out

    def write(self, row_keys: Sequence[str], col_keys: Sequence[str], values: FloatArray) -> Path:
        """One finished tile, atomically; returns its file."""
        computed = ~np.isnan(values[:, :, 0])
        h = hashlib.blake2b(digest_size=16)
        for key in (*row_keys, "|", *col_keys):
            h.update(key.encode() + b",")
        h.update(np.packbits(computed).tobytes())
        target = self.tiles / f"{h.hexdigest()}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.tiles, prefix=".part-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    rows=np.array(row_keys, dtype="U32"),
                    cols=np.array(col_keys, dtype="U32"),
                    values=values,
                )
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def _positions(keys: Sequence[str]) -> dict[str, list[int]]:
    at: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        at.setdefault(key, []).append(i)
    return at


def _matches(
    keys: npt.NDArray[np.str_], at: dict[str, list[int]]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(position in the tile, position in the run) for every key of the tile found in the run;
    a network given twice gets the stored values at both its positions."""
    src: list[int] = []
    dst: list[int] = []
    for k, key in enumerate(keys):
        for i in at.get(str(key), ()):
            src.append(k)
            dst.append(i)
    return np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp)


def _read_tile(
    path: Path, depth: int
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_], FloatArray] | None:
    """A tile's keys and values, or None if the file is not a whole tile of this depth."""
    try:
        with np.load(path, allow_pickle=False) as z:
            rows, cols, values = z["rows"], z["cols"], z["values"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if values.shape != (len(rows), len(cols), depth) or values.dtype != np.float64:
        return None
    return rows, cols, values


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---- running a matrix ----------------------------------------------------------------------


@dataclass
class Job:
    """One matrix to fill: row and column networks (or paths), which pairs it needs, and how."""

    rows: list[Item]
    cols: list[Item]
    required: BoolArray  # (n_rows, n_cols): the pairs the caller asked for
    mode: Mode
    tile: int = DEFAULT_TILE
    shard: tuple[int, int] | None = None  # (i, n): compute only tiles i, i+n, i+2n, ...

    def keys(self, same: bool) -> tuple[list[str], list[str]]:
        """Content keys of the rows and columns (``same``: the columns are the rows)."""
        rows = [network_key(as_network(item)) for item in self.rows]
        if same:
            return rows, rows
        return rows, [network_key(as_network(item)) for item in self.cols]


def run_job(
    job: Job,
    *,
    same: bool,
    store: PathLike | None,
    client: Client | None,
    threads: int | None,
    progress: Progress,
) -> FloatArray:
    """The job's matrix, ``(n_rows, n_cols, depth)``, NaN outside ``required``: stored tiles
    read back, the rest computed in-process or on ``client``'s workers (and stored)."""
    n_rows, n_cols = job.required.shape
    stash = None if store is None else Store(store, job.mode)
    if stash is not None:
        row_keys, col_keys = job.keys(same)
        out = stash.known(row_keys, col_keys)
    else:
        row_keys = [f"r{i}" for i in range(n_rows)]
        col_keys = row_keys if same else [f"c{j}" for j in range(n_cols)]
        out = np.full((n_rows, n_cols, job.mode.depth), np.nan)
    unknown = np.isnan(out[:, :, 0])
    needed = job.required & unknown
    # Tiles are cut from the required pairs, not the missing ones, so that every run (a resumed
    # one, each SLURM shard) cuts the same tiles whatever the store held when it started.
    tiles = plan_tiles(job.required, job.tile)
    if job.shard is not None:
        index, count = job.shard
        tiles = tiles[index::count]
    tiles = [t for t in (_still_needed(t, needed) for t in tiles) if t.pairs]
    total = int(job.required.sum())
    counter = _Counter(total - sum(t.pairs for t in tiles), total, progress)
    if client is None:
        _run_here(job, tiles, row_keys, col_keys, stash, threads, counter, out)
    else:
        _run_on_cluster(job, tiles, row_keys, col_keys, stash, client, counter, out)
    counter.finish()
    return out


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
    rows, cols = _Loader(job.rows, keep), _Loader(job.cols, keep)
    for tile in tiles:
        values = compute_tile(
            _Sub(rows, tile.rows),
            _Sub(cols, tile.cols),
            tile.needed,
            job.mode,
            threads,
            counter.add,
        )
        _place(out, tile, values)
        if stash is not None:
            stash.write([row_keys[r] for r in tile.rows], [col_keys[c] for c in tile.cols], values)


class _Sub:
    """Positions within a tile mapped to positions in the whole list."""

    def __init__(self, loader: _Loader, positions: tuple[int, ...]) -> None:
        self._loader, self._positions = loader, positions

    def __getitem__(self, i: int) -> Network:
        return self._loader[self._positions[i]]


def _place(out: FloatArray, tile: Tile, values: FloatArray) -> None:
    block = out[tile.rows[0] : tile.rows[-1] + 1, tile.cols[0] : tile.cols[-1] + 1]
    block[tile.needed] = values[tile.needed]


def worker_tile(
    rows: Sequence[object],
    cols: Sequence[object],
    needed: BoolArray,
    mode: Mode,
    store: tuple[str, list[str], list[str]] | None,
) -> FloatArray:
    """A tile on a Dask worker: loads its networks itself (paths, or portable networks
    scattered to the workers), computes the needed pairs, writes the tile to the store."""
    values = compute_tile(_Loader(rows, len(rows)), _Loader(cols, len(cols)), needed, mode, 1)
    if store is not None:
        root, row_keys, col_keys = store
        Store(root, mode).write(row_keys, col_keys, values)
    return values


def _untyped(obj: object) -> Any:
    """``distributed``'s API is only partly annotated: called through Any, not untyped calls."""
    return obj


def _portable(client: Client, items: Sequence[Item]) -> list[object]:
    """Paths as they are (workers read them); in-memory networks scattered to the workers once,
    so that no tile carries their arrays through the scheduler."""
    out: list[object] = [os.fspath(i) if not isinstance(i, Network) else None for i in items]
    memory = [k for k, i in enumerate(items) if isinstance(i, Network)]
    if memory:
        nets = [PortableNetwork.of(items[k]) for k in memory]  # type: ignore[arg-type]
        futures = _untyped(client).scatter(nets, hash=False)
        for k, future in zip(memory, futures, strict=True):
            out[k] = future
    return out


def _run_on_cluster(
    job: Job,
    tiles: list[Tile],
    row_keys: list[str],
    col_keys: list[str],
    stash: Store | None,
    client: Client,
    counter: _Counter,
    out: FloatArray,
) -> None:
    from distributed import as_completed

    dask = _untyped(client)
    rows = _portable(client, job.rows)
    cols = rows if job.cols is job.rows else _portable(client, job.cols)
    futures = {}
    for tile in tiles:
        store_args = None
        if stash is not None:
            store_args = (
                str(stash.root),
                [row_keys[r] for r in tile.rows],
                [col_keys[c] for c in tile.cols],
            )
        future = dask.submit(
            worker_tile,
            [rows[r] for r in tile.rows],
            [cols[c] for c in tile.cols],
            tile.needed,
            job.mode,
            store_args,
            pure=False,
        )
        futures[future] = tile
    try:
        for future in _untyped(as_completed)(list(futures)):
            tile = futures[future]
            _place(out, tile, future.result())
            counter.add(tile.pairs)
    finally:
        dask.cancel(list(futures))


# ---- the public functions ------------------------------------------------------------------


def _nnstd_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnstd")
    except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
        return "unknown"


def make_mode(
    first: Item, layers: Layers, solver: str, memory_budget: object
) -> tuple[Mode, tuple[int, ...]]:
    """The mode of a run and its chosen layers, validated (the first network gives the depth)."""
    check_solver(solver)
    budget = check_memory_budget(memory_budget)
    chosen = layer_selection(layers, as_network(first).depth)
    resolved = DEFAULT_MEMORY_BUDGET if budget is None else budget
    # "exact" is the paper mode's former name: one store key for both.
    canonical_name = "paper" if solver == "exact" else solver
    return Mode(canonical_name, max(chosen) + 1, resolved, _nnstd_version()), chosen


def matrix(
    rows: Sequence[Item],
    cols: Sequence[Item] | None,
    required: BoolArray,
    *,
    layers: Layers,
    solver: str,
    memory_budget: object,
    threads: object,
    progress: Progress,
    store: PathLike | None,
    client: Client | None,
    shard: tuple[int, int] | None = None,
    tile: int | None = None,
) -> FloatArray:
    """The shared engine of `cross`, `pairwise` (with a store or a cluster) and the CLI:
    ``(len(rows), len(cols), layers)``, NaN outside ``required``."""
    threads = check_threads(threads)
    row_items = check_items(rows, "networks")
    col_items = row_items if cols is None else check_items(cols, "b_networks")
    if not row_items or not col_items:
        raise ValueError("at least one network is needed on each side")
    mode, chosen = make_mode(row_items[0], layers, solver, memory_budget)
    if tile is None:
        tile = DEFAULT_TILE if client is None else cluster_tile(required, client)
    job = Job(row_items, col_items, required, mode, tile, shard)
    out = run_job(
        job, same=cols is None, store=store, client=client, threads=threads, progress=progress
    )
    return np.ascontiguousarray(out[:, :, list(chosen)])


def cross(
    a_networks: Sequence[Network | PathLike],
    b_networks: Sequence[Network | PathLike],
    *,
    layers: Layers = None,
    solver: Solver = "canonical",
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    memory_budget: int | None = None,
    store: PathLike | None = None,
    client: Client | None = None,
) -> FloatArray:
    """Layer distances of every network of one group from every network of another, in parallel.

    Entry ``[i, j]`` is ``distance(a_networks[i], b_networks[j]).layers``: ``a_networks[i]`` is
    the reference A. Paths are loaded when their tile needs them, so the groups need not fit in
    memory together.

    Parameters
    ----------
    a_networks, b_networks
        Networks, or paths that `load_network` reads, all of equal depth and input width.
    layers, solver, memory_budget
        As in `distance`.
    threads, progress
        As in `pairwise` (``threads`` is for in-process runs; with ``client`` each Dask worker
        thread computes one tile at a time).
    store
        A folder that keeps every finished tile of pairs (created if missing), keyed by the
        networks' content, the solver, depth, memory budget and the nnstd version: pairs
        already stored are read back instead of computed, so an interrupted run resumes and a
        grown group computes only its new pairs. See ``docs/many.md``.
    client
        A ``dask.distributed.Client``: tiles run on its workers, each loading its networks from
        the paths itself (in-memory networks are scattered to the workers once). Needs the
        ``nnstd[dask]`` extra. With ``store``, workers write tiles as they finish, so the store
        must be a folder all workers can reach.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(a_networks), len(b_networks), len(layers))``, float64.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> a = [nnstd.Network([np.eye(4)[:, order]]) for order in ([0, 1, 2, 3], [0, 1, 2, 2])]
    >>> b = [nnstd.Network([np.eye(4)[:, [1, 0, 2, 3]]])]
    >>> nnstd.cross(a, b)[:, :, 0]
    array([[0.  ],
           [0.25]])
    """
    a_items = check_items(a_networks, "a_networks")
    b_items = check_items(b_networks, "b_networks")
    required = np.ones((len(a_items), len(b_items)), dtype=bool)
    return matrix(
        a_items,
        b_items,
        required,
        layers=layers,
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        progress=progress,
        store=store,
        client=client,
    )


def paired_matrix(
    networks: Sequence[Network | PathLike],
    *,
    layers: Layers,
    solver: str,
    ordered: bool,
    threads: object,
    progress: Progress,
    memory_budget: object,
    store: PathLike | None,
    client: Client | None,
    shard: tuple[int, int] | None = None,
    tile: int | None = None,
) -> FloatArray:
    """`pairwise` through tiles: the same numbers as the core's all-pairs run, with a store,
    on a cluster or for one shard (entries of other shards' tiles left NaN)."""
    items = check_items(networks, "networks")
    if not items:
        raise ValueError("pairwise needs at least one network")
    n = len(items)
    rows, cols = np.indices((n, n))
    required = np.ones((n, n), dtype=bool) if ordered else rows > cols
    out = matrix(
        items,
        None,
        required,
        layers=layers,
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        progress=progress,
        store=store,
        client=client,
        shard=shard,
        tile=tile,
    )
    if not ordered:
        # The paper's convention: [i, j] = [j, i], computed once with the higher index as A.
        upper = rows < cols
        out[upper] = out.transpose(1, 0, 2)[upper]
        out[np.arange(n), np.arange(n)] = 0.0
    return out


def to_reference(
    networks: Sequence[Network | PathLike],
    reference: Network | PathLike | int | Literal["medoid"] = "medoid",
    *,
    sample: int = 32,
    seed: int = 0,
    layers: Layers = None,
    solver: Solver = "canonical",
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    memory_budget: int | None = None,
    store: PathLike | None = None,
    client: Client | None = None,
) -> tuple[FloatArray, int | None]:
    """Every network's layer distances from one reference: O(N) pairs instead of O(N^2).

    Parameters
    ----------
    networks
        Networks or paths of equal depth and input width.
    reference
        A network or path (compared as given), the position of one of ``networks``, or
        ``"medoid"`` (default): the medoid of a random sample of ``sample`` networks (the one
        with the smallest mean layer-averaged distance to the others of the sample, computed
        with `pairwise`), an O(sample^2) estimate of the whole set's medoid.
    sample, seed
        The sample size for ``"medoid"`` (all networks when there are fewer) and its random seed.
    layers, solver, threads, progress, memory_budget, store, client
        As in `cross`.

    Returns
    -------
    distances : numpy.ndarray
        Shape ``(len(networks), len(layers))``: row ``i`` is
        ``distance(reference, networks[i]).layers``, the reference being A (so every row is
        divided by the same widths).
    index : int or None
        The position of the reference within ``networks``, or None for an outside network.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> orders = ([0, 1, 2, 3], [1, 0, 2, 3], [0, 1, 2, 2])
    >>> nets = [nnstd.Network([np.eye(4)[:, order]]) for order in orders]
    >>> d, index = nnstd.to_reference(nets, 0)
    >>> d[:, 0], index
    (array([0.  , 0.  , 0.25]), 0)
    """
    items = check_items(networks, "networks")
    if not items:
        raise ValueError("to_reference needs at least one network")
    index: int | None
    if isinstance(reference, str) and reference == "medoid":
        index = sample_medoid(
            items,
            sample=sample,
            seed=seed,
            layers=layers,
            solver=solver,
            threads=threads,
            memory_budget=memory_budget,
        )
        ref: Item = items[index]
    elif isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if not 0 <= reference < len(items):
            raise ValueError(f"reference {reference} is not a position in 0..{len(items) - 1}")
        index = int(reference)
        ref = items[index]
    else:
        ref = check_items([reference], "reference")[0]  # type: ignore[list-item]
        index = None
    out = cross(
        [ref],
        items,
        layers=layers,
        solver=solver,
        threads=threads,
        progress=progress,
        memory_budget=memory_budget,
        store=store,
        client=client,
    )
    return out[0], index


def sample_medoid(
    items: Sequence[Item],
    *,
    sample: int,
    seed: int,
    layers: Layers,
    solver: Solver,
    threads: int | None,
    memory_budget: int | None,
) -> int:
    """The position of the medoid of a random sample of ``sample`` networks."""
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be a whole number >= 1, got {sample!r}")
    n = len(items)
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[: min(sample, n)])
    m = pairwise(
        [items[k] for k in chosen],
        layers=layers,
        solver=solver,
        threads=threads,
        memory_budget=memory_budget,
    )
    total_distance = m.mean(axis=2).sum(axis=1)  # layer-averaged, summed over the sample
    return int(chosen[int(np.argmin(total_distance))])
