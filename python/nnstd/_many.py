"""Many networks: cross-distances, a resumable store of finished tiles, and tiles on Dask.

The matrix of a run is cut into tiles (blocks of rows x columns). A tile is the unit of work
everywhere: a thread pool computes its pairs in-process, a Dask worker computes it on a cluster,
a SLURM array task computes a shard of them, and the store keeps every finished tile as one file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._errors import TopologyError
from nnstd._graph import GraphNetwork
from nnstd._loaders import byte_count, one_line, read_npz_arrays
from nnstd._network import Network, PathLike, load_network
from nnstd._options import DEFAULT_SOLVER, Layers, Options, Solver, check_comparable

if TYPE_CHECKING:
    from distributed import Client

Item: TypeAlias = "Network | PathLike"
Progress: TypeAlias = "Callable[[int, int], object] | None"
FloatArray: TypeAlias = "npt.NDArray[np.float64]"
BoolArray: TypeAlias = "npt.NDArray[np.bool_]"

# Tiles of 16 x 16 pairs: small enough that an interrupted run loses little and a cluster
# balances well, large enough that a tile's file and task overheads stay far below its work.
DEFAULT_TILE = 16
# Format 2: a tile carries its mode and which pairs it computed, and is named after both.
STORE_FORMAT = 2
MIN_CLUSTER_TILE = 4
# A tile nnstd writes is 16 x 16 pairs (a few MB even for a thousand layers); a file declaring
# more than this, or more than its own size on disk, is not one and is never allocated.
TILE_READ_LIMIT = 256 << 20
TILE_MEMBERS = ("format", "mode", "rows", "cols", "computed", "values")
NETWORK_KEY = re.compile(r"[0-9a-f]{32}")  # network_key's digest: 16 bytes in hex


class StoreWarning(UserWarning):
    """A tile of a store failed its checks or could not be written: its pairs are computed
    again (the message names the tile)."""


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


# ---- the store -----------------------------------------------------------------------------


class Store:
    """Finished tiles on disk, keyed by the networks' content and the mode.

    Layout: ``PATH/mode-<key>/mode.json`` (the mode in words) and ``tiles/<name>.npz``, one file
    per finished tile holding the store format, the mode's key, its row keys, column keys, which
    pairs it computed and their values; the name is a hash of all but the values. Every tile is
    written to a temporary file and renamed into place, so an interrupted run leaves whole tiles
    or none, and any number of writers (threads, Dask workers, SLURM tasks) can share a store
    without locks: no file is ever written twice with different content. Every tile read is
    checked (regular file, declared sizes, format, mode, keys, name, values in [0, 1]); one that
    fails is skipped with a `StoreWarning` and its pairs are computed again.
    """

    def __init__(self, path: PathLike, mode: Mode) -> None:
        if os.fspath(path) in ("", b""):
            raise ValueError("store must be a folder path, got an empty one")
        # Absolute from the start: Dask workers get this path, and their working folder is not
        # the caller's.
        self.root = Path(os.fspath(path)).absolute()
        if self.root.exists() and not self.root.is_dir():
            raise TopologyError(f"store {self.root}: exists and is not a folder")
        self.mode = mode
        self.folder = self.root / f"mode-{mode.key()}"
        self.tiles = self.folder / "tiles"
        self.tiles.mkdir(parents=True, exist_ok=True)
        self._reported: set[Path] = set()  # tiles already named in a warning by this process
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
        refused: list[str] = []
        for tile in sorted(self.tiles.glob("*.npz")):
            try:
                t_rows, t_cols, computed, values = _read_tile(tile, self.mode)
            except TopologyError as exc:
                refused.append(str(exc))  # its pairs are simply computed again
                self._reported.add(tile)
                continue
            src_r, dst_r = _matches(t_rows, row_at)
            src_c, dst_c = _matches(t_cols, col_at)
            if not len(src_r) or not len(src_c):
                continue
            found = values[np.ix_(src_r, src_c)]
            target = out[np.ix_(dst_r, dst_c)]
            stored = computed[np.ix_(src_r, src_c)]
            target[stored] = found[stored]
            out[np.ix_(dst_r, dst_c)] = target
        if refused:
            _warn_refused(refused)
        return out

    def write(
        self,
        row_keys: Sequence[str],
        col_keys: Sequence[str],
        computed: BoolArray,
        values: FloatArray,
    ) -> Path | None:
        """One finished tile, atomically; returns its file (None if a folder is in its place)."""
        mode_key = self.mode.key()
        target = self.tiles / f"{tile_name(mode_key, row_keys, col_keys, computed)}.npz"
        fd, tmp = _create_temporary(self.tiles)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    format=np.int64(STORE_FORMAT),
                    mode=np.str_(mode_key),
                    rows=np.array(row_keys, dtype="U32"),
                    cols=np.array(col_keys, dtype="U32"),
                    computed=computed,
                    values=np.where(computed[:, :, None], values, np.nan),
                )
            os.replace(tmp, target)
        except IsADirectoryError:
            Path(tmp).unlink(missing_ok=True)
            if target not in self._reported:
                self._reported.add(target)
                warnings.warn(
                    f"store: cannot write tile {target}: a folder is in its place; its pairs are "
                    "computed again on every run until it is removed",
                    StoreWarning,
                    stacklevel=2,
                )
            return None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def tile_name(
    mode_key: str, row_keys: Sequence[str], col_keys: Sequence[str], computed: BoolArray
) -> str:
    """A tile's file name: a hash of its mode, networks and computed pairs (not its values)."""
    h = hashlib.blake2b(digest_size=16)
    for key in (mode_key, "|", *row_keys, "|", *col_keys):
        h.update(key.encode() + b",")
    h.update(np.array(computed.shape, dtype=np.int64).tobytes())
    h.update(np.packbits(computed).tobytes())
    return h.hexdigest()


def _warn_refused(refused: list[str]) -> None:
    """One line for all the tiles a read skipped: how many, and the first one's problem."""
    if len(refused) == 1:
        text = f"store: skipped a tile, its pairs are computed again: {refused[0]}"
    else:
        text = (
            f"store: skipped {len(refused)} tiles, their pairs are computed again; the first: "
            f"{refused[0]}"
        )
    warnings.warn(text, StoreWarning, stacklevel=3)


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


StoredTile: TypeAlias = "tuple[npt.NDArray[np.str_], npt.NDArray[np.str_], BoolArray, FloatArray]"


def _read_tile(path: Path, mode: Mode) -> StoredTile:
    """A tile's row keys, column keys, computed pairs and values, read with the loaders' checks
    (a regular file; every declared size within the file's own size, so a forged header is
    never allocated; no pickle) and then checked as a tile of this mode: one-line
    TopologyError naming the file otherwise."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read ({exc.strerror})") from None
    arrays = read_npz_arrays(path, min(size, TILE_READ_LIMIT))

    def refuse(problem: str) -> TopologyError:
        return TopologyError(f"{path}: {problem}")

    missing = [name for name in TILE_MEMBERS if name not in arrays]
    if missing:
        raise refuse(f"not a tile of this store (no {', '.join(missing)})")
    fmt, mode_key = arrays["format"], arrays["mode"]
    if fmt.shape != () or fmt.dtype.kind not in "iu" or int(fmt) != STORE_FORMAT:
        raise refuse(f"not a tile of store format {STORE_FORMAT}")
    if mode_key.shape != () or mode_key.dtype.kind != "U" or str(mode_key) != mode.key():
        raise refuse("a tile of another mode (solver, depth, memory budget or version)")
    rows, cols, computed, values = (arrays[n] for n in ("rows", "cols", "computed", "values"))
    for keys in (rows, cols):
        if keys.ndim != 1 or keys.dtype.kind != "U" or not all(map(NETWORK_KEY.fullmatch, keys)):
            raise refuse("its network keys are malformed")
    if computed.dtype != np.bool_ or computed.shape != (len(rows), len(cols)):
        raise refuse("its computed pairs do not match its networks")
    if values.dtype != np.float64 or values.shape != (len(rows), len(cols), mode.depth):
        raise refuse(f"its values are not {len(rows)} x {len(cols)} x {mode.depth} float64")
    found = values[computed]
    if not np.all((found >= 0.0) & (found <= 1.0)):  # NaN fails both
        raise refuse("holds distances outside [0, 1] or not finite")
    if path.stem != tile_name(str(mode_key), list(map(str, rows)), list(map(str, cols)), computed):
        raise refuse("its name does not match its content")
    return rows, cols, computed, values


def _create_temporary(folder: Path) -> tuple[int, str]:
    """A new file in ``folder`` for writing, created with mode 0666 so that the umask (and any
    default ACL) decides who may read it, as for any other file the user creates; mkstemp's
    0600 would make a group-shared store unreadable to the group."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = os.path.join(folder, f".part-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = _create_temporary(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    load_budget: int | None = None  # bytes reading one network file may take (None: default)

    def keys(self, same: bool) -> tuple[list[str], list[str]]:
        """Content keys of the rows and columns (``same``: the columns are the rows)."""
        rows = [network_key(_materialise(item, self.load_budget)) for item in self.rows]
        if same:
            return rows, rows
        return rows, [network_key(_materialise(item, self.load_budget)) for item in self.cols]


def run_job(
    job: Job,
    options: Options,
    *,
    same: bool,
    store: PathLike | None,
    client: Client | None,
) -> FloatArray:
    """The job's matrix, ``(n_rows, n_cols, depth)``, NaN outside ``required``: stored tiles
    read back, the rest computed in-process (on ``options.threads``) or on ``client``'s
    workers (and stored), finished pairs reported to ``options.progress``."""
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
    counter = _Counter(total - sum(t.pairs for t in tiles), total, options.progress)
    if client is None:
        _run_here(job, tiles, row_keys, col_keys, stash, options.threads, counter, out)
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


def worker_tile(
    rows: Sequence[object],
    cols: Sequence[object],
    needed: BoolArray,
    mode: Mode,
    store: tuple[str, list[str], list[str]] | None,
    load_budget: int | None = None,
) -> tuple[FloatArray, list[str] | None, list[str] | None]:
    """A tile on a Dask worker: loads its networks itself (paths, or portable networks
    scattered to the workers), computes the needed pairs, writes the tile to the store under
    the content keys of what it loaded. Returns the values and, with a store, those keys."""
    row_nets, col_nets = tile_networks(
        _Loader(rows, len(rows), load_budget), _Loader(cols, len(cols), load_budget), needed
    )
    values = compute_tile(row_nets, col_nets, needed, mode, 1)
    if store is None:
        return values, None, None
    root, row_keys, col_keys = store
    actual_rows, actual_cols = loaded_keys(row_keys, row_nets), loaded_keys(col_keys, col_nets)
    Store(root, mode).write(actual_rows, actual_cols, needed, values)
    return values, actual_rows, actual_cols


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
    futures: dict[Any, tuple[Tile, tuple[list[str], list[str]]]] = {}
    try:
        rows = _portable(client, job.rows)
        cols = rows if job.cols is job.rows else _portable(client, job.cols)
        for tile in tiles:
            expected = ([row_keys[r] for r in tile.rows], [col_keys[c] for c in tile.cols])
            store_args = None if stash is None else (str(stash.root), *expected)
            future = dask.submit(
                worker_tile,
                [rows[r] for r in tile.rows],
                [cols[c] for c in tile.cols],
                tile.needed,
                job.mode,
                store_args,
                job.load_budget,
                pure=False,
            )
            futures[future] = (tile, expected)
        for future in _untyped(as_completed)(list(futures)):
            tile, expected = futures[future]
            values, actual_rows, actual_cols = future.result()
            _place(out, tile, values)
            _check_unchanged(job, tile, expected, (actual_rows, actual_cols))
            counter.add(tile.pairs)
    except _cluster_failures() as exc:
        raise TopologyError(
            f"the Dask cluster failed during the run ({type(exc).__name__}: {one_line(exc)})"
            + ("; finished tiles are in the store" if stash is not None else "")
        ) from None
    finally:
        if futures:
            with contextlib.suppress(Exception):  # a scheduler that is gone cancels nothing
                dask.cancel(list(futures))


def _cluster_failures() -> tuple[type[BaseException], ...]:
    """What Dask raises when the cluster, not a tile, fails: a scheduler gone (its futures
    cancelled, its connection closed), a tile whose workers kept dying, a timeout."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return (CancelledError, CommClosedError, KilledWorker, TimeoutError)


# ---- the public functions ------------------------------------------------------------------


def check_client(client: object) -> None:
    """``client`` is None or a ``dask.distributed.Client``; a TypeError otherwise (a scheduler
    address given as a string, say), before any work."""
    if client is None:
        return
    try:
        from distributed import Client as DaskClient

        is_client = isinstance(client, DaskClient)
    except ImportError:  # no Dask here: whatever was passed, it is not a Client
        is_client = False
    if not is_client:
        hint = ""
        if isinstance(client, str):
            hint = f" (connect first: dask.distributed.Client({client!r}))"
        raise TypeError(
            f"client must be a dask.distributed.Client, got {type(client).__name__}{hint}"
        )


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


def matrix(
    rows: Sequence[Item],
    cols: Sequence[Item] | None,
    required: BoolArray,
    options: Options,
    *,
    store: PathLike | None = None,
    client: Client | None = None,
    shard: tuple[int, int] | None = None,
    tile: int | None = None,
    load_budget: object = None,
) -> FloatArray:
    """The shared engine of `cross`, `pairwise` (with a store or a cluster) and the CLI:
    ``(len(rows), len(cols), layers)``, NaN outside ``required``. ``load_budget``: bytes
    reading any one network file may take (None: the loaders' default)."""
    check_client(client)
    loading = None if load_budget is None else byte_count(load_budget, "load_budget")
    row_items = check_items(rows, "networks")
    col_items = row_items if cols is None else check_items(cols, "b_networks")
    if not row_items or not col_items:
        raise ValueError("at least one network is needed on each side")
    mode, chosen = make_mode(row_items[0], options, loading)
    if tile is None:
        tile = DEFAULT_TILE if client is None else cluster_tile(required, client)
    job = Job(row_items, col_items, required, mode, tile, shard, loading)
    out = run_job(job, options, same=cols is None, store=store, client=client)
    return np.ascontiguousarray(out[:, :, list(chosen)])


def cross(
    a_networks: Sequence[Network | PathLike],
    b_networks: Sequence[Network | PathLike],
    *,
    layers: Layers = None,
    solver: Solver = DEFAULT_SOLVER,
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
        grown group computes only its new pairs. Every tile is checked when read; one that
        fails (damaged, of another mode, a value outside [0, 1]) is computed again with a
        ``StoreWarning``. See ``docs/many.md``.
    client
        A ``dask.distributed.Client`` (anything else is a TypeError): tiles run on its workers,
        each loading its networks from the paths itself (in-memory networks are scattered to
        the workers once). Needs the ``nnstd[dask]`` extra. With ``store``, workers write tiles
        as they finish, so the store must be a folder all workers can reach. A cluster that
        fails during the run (its scheduler gone) raises a TopologyError.

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
    options = Options.of(
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        layers=layers,
        progress=progress,
    )
    a_items = check_items(a_networks, "a_networks")
    b_items = check_items(b_networks, "b_networks")
    required = np.ones((len(a_items), len(b_items)), dtype=bool)
    return matrix(a_items, b_items, required, options, store=store, client=client)


def paired_matrix(
    networks: Sequence[Network | PathLike],
    options: Options,
    *,
    ordered: bool = False,
    store: PathLike | None = None,
    client: Client | None = None,
    shard: tuple[int, int] | None = None,
    tile: int | None = None,
    load_budget: object = None,
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
        options,
        store=store,
        client=client,
        shard=shard,
        tile=tile,
        load_budget=load_budget,
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
    solver: Solver = DEFAULT_SOLVER,
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
    options = Options.of(
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        layers=layers,
        progress=progress,
    )
    items = check_items(networks, "networks")
    if not items:
        raise ValueError("to_reference needs at least one network")
    index: int | None
    if isinstance(reference, str) and reference == "medoid":
        index = sample_medoid(items, options, sample=sample, seed=seed)
        ref: Item = items[index]
    elif isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if not 0 <= reference < len(items):
            raise ValueError(f"reference {reference} is not a position in 0..{len(items) - 1}")
        index = int(reference)
        ref = items[index]
    else:
        ref = check_items([reference], "reference")[0]  # type: ignore[list-item]
        index = None
    required = np.ones((1, len(items)), dtype=bool)
    out = matrix([ref], items, required, options, store=store, client=client)
    return out[0], index


def sample_medoid(items: Sequence[Item], options: Options, *, sample: int, seed: int) -> int:
    """The position of the medoid of a random sample of ``sample`` networks (computed with
    ``options``, without reporting progress)."""
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be a whole number >= 1, got {sample!r}")
    n = len(items)
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[: min(sample, n)])
    m = paired_matrix([items[k] for k in chosen], dataclasses.replace(options, progress=None))
    total_distance = m.mean(axis=2).sum(axis=1)  # layer-averaged, summed over the sample
    return int(chosen[int(np.argmin(total_distance))])
