"""Many networks: the routes of a matrix of distances (`cross`, `pairwise` with a store or a
cluster, `to_reference`, a sample's medoid) and the run that fills it: stored tiles read back,
the rest computed here or on a Dask cluster.

The pieces live by what they hold: `_tiles` (content keys, the mode, a tile computed through the
core), `_store` (the resumable store), `_jobs` (a job and its tiles run in-process) and
`_cluster` (tiles on Dask).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from nnstd._cluster import _run_on_cluster, check_client, cluster_tile
from nnstd._jobs import Job, _Counter, _run_here, _still_needed
from nnstd._loaders import byte_count
from nnstd._network import Network, PathLike
from nnstd._options import DEFAULT_SOLVER, Layers, Options, Solver
from nnstd._store import Store
from nnstd._tiles import (
    DEFAULT_TILE,
    BoolArray,
    FloatArray,
    Item,
    check_items,
    make_mode,
    plan_tiles,
)

if TYPE_CHECKING:
    from distributed import Client


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


# ---- the public functions ------------------------------------------------------------------


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
