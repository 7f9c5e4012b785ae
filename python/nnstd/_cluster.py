"""Tiles on a Dask cluster: the tile size for it, networks made portable to its workers, a
tile computed and stored on a worker, and the cluster's failures as one TopologyError."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nnstd._errors import TopologyError
from nnstd._jobs import Job, _check_unchanged, _Counter, _place
from nnstd._loaders import one_line
from nnstd._network import Network
from nnstd._store import Store
from nnstd._tiles import (
    DEFAULT_TILE,
    BoolArray,
    FloatArray,
    Item,
    Mode,
    PortableNetwork,
    Tile,
    _Loader,
    compute_tile,
    loaded_keys,
    plan_tiles,
    tile_networks,
)

if TYPE_CHECKING:
    from distributed import Client

MIN_CLUSTER_TILE = 4


def cluster_tile(required: BoolArray, client: Client) -> int:
    """The tile size for a cluster: the default, smaller while that gives fewer than four
    tiles per worker thread (tiles of unequal size on too few tasks leave workers idle)."""
    slots = max(1, sum(_untyped(client).nthreads().values()))
    tile = DEFAULT_TILE
    while tile > MIN_CLUSTER_TILE and len(plan_tiles(required, tile)) < 4 * slots:
        tile //= 2
    return tile


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
