"""Analyses of many networks and snapshots: what the ``nnstd`` commands compute, as functions.

The command line prints and plots these; a script calls them directly. Matrices are what
`nnstd.pairwise` returns, shape ``(n, n, layers)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from nnstd._network import Network, PathLike
from nnstd._options import DEFAULT_SOLVER, Layers, Options, Solver, layer_selection

__all__ = [
    "always_dense_layers",
    "consecutive_distances",
    "convergence_index",
    "cumulative_layers",
    "evolution_curves",
    "select_layer",
]


def cumulative_layers(matrix: npt.NDArray[np.float64], layer: int) -> npt.NDArray[np.float64]:
    """The paper's heat-map value for "layer L": the mean of layers 0..L (last axis).

    Examples
    --------
    >>> import numpy as np
    >>> cumulative_layers(np.array([[[0.2, 0.4, 0.9]]]), 1)
    array([[0.3]])
    """
    layer_selection(layer, matrix.shape[-1])  # the core's rule: an existing layer
    return np.asarray(matrix[..., : layer + 1].mean(axis=-1))


def select_layer(
    matrix: npt.NDArray[np.float64], layer: int, cumulative: bool
) -> npt.NDArray[np.float64]:
    """Layer ``layer`` alone, or the paper's cumulative value (`cumulative_layers`).

    Examples
    --------
    >>> import numpy as np
    >>> select_layer(np.array([[[0.2, 0.4, 0.9]]]), 1, cumulative=False)
    array([[0.4]])
    """
    if cumulative:
        return cumulative_layers(matrix, layer)
    layer_selection(layer, matrix.shape[-1])  # the core's rule: an existing layer
    return np.asarray(matrix[..., layer])


def always_dense_layers(networks: Sequence[Network]) -> set[int]:
    """Layers in which every network connects every neuron to every input: their distance is
    0 for every pair whatever the matching, so a plot of them says nothing.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> nets = [nnstd.Network([np.eye(3), np.ones((3, 2))]) for _ in range(2)]
    >>> always_dense_layers(nets)
    {1}
    """
    return {
        k
        for k, (n_in, n_out) in enumerate(networks[0].shapes)
        if all(net.connections[k] == n_in * n_out for net in networks)
    }


def evolution_curves(
    matrices: Sequence[npt.NDArray[np.float64]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean and standard deviation, over every unordered pair of networks, of each snapshot's
    matrix: how far apart the networks drift during training.

    Parameters
    ----------
    matrices
        One matrix per snapshot, each of shape ``(n, n, lines)`` (as `nnstd.pairwise`
        returns, one line per layer); entries above the diagonal are used.

    Returns
    -------
    (mean, spread)
        Each of shape ``(lines, snapshots)``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0, .2, .4], [.2, 0, .6], [.4, .6, 0]])[..., np.newaxis]
    >>> mean, spread = evolution_curves([m, m / 2])
    >>> mean.round(4), spread.round(4)
    (array([[0.4, 0.2]]), array([[0.1633, 0.0816]]))
    """
    n = len(matrices[0])
    upper = np.triu_indices(n, k=1)  # every unordered pair once
    values = np.stack([full[upper] for full in matrices], axis=1)  # (pairs, snapshots, lines)
    return values.mean(axis=0).T, values.std(axis=0).T  # (lines, snapshots)


def convergence_index(
    distances: Sequence[float] | npt.NDArray[np.float64], threshold: float, window: int
) -> int | None:
    """Early-Bird style convergence: the first index ``i`` such that ``distances[i - window +
    1 .. i]`` (``window`` consecutive values) are all below ``threshold``; None if never.

    Examples
    --------
    >>> convergence_index([0.5, 0.2, 0.05, 0.04, 0.2, 0.03, 0.02, 0.01], 0.1, 2)
    3
    >>> convergence_index([0.5, 0.2], 0.1, 2) is None
    True
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    run = 0
    for i, value in enumerate(distances):
        run = run + 1 if value < threshold else 0
        if run >= window:
            return i
    return None


def consecutive_distances(
    runs: Sequence[Sequence[Network | PathLike]],
    *,
    layers: Layers = None,
    solver: Solver = DEFAULT_SOLVER,
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    memory_budget: int | None = None,
) -> npt.NDArray[np.float64]:
    """Each run's distance between consecutive snapshots, the later snapshot as A, all pairs
    computed in parallel.

    Parameters
    ----------
    runs
        ``runs[r]`` is one run's snapshots in training order: networks, or paths that
        `nnstd.load_network` reads (loaded when their pairs run, a few at a time). Every run
        has the same number of snapshots, at least two.
    layers, solver, memory_budget
        As in `nnstd.distance`.
    threads, progress
        As in `nnstd.pairwise`: the pairs run on ``threads`` threads (default: one per core),
        each network prepared once however many pairs it is in; ``progress(done, total)``
        counts finished pairs.

    Returns
    -------
    numpy.ndarray
        Shape ``(runs, snapshots - 1, len(layers))``: ``[r, i]`` is
        ``nnstd.distance(runs[r][i + 1], runs[r][i]).layers``.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> run = [nnstd.Network([np.eye(4)[:, order]]) for order in ([0, 1, 2, 3], [0, 1, 2, 2])]
    >>> consecutive_distances([run])
    array([[[0.25]]])
    """
    from nnstd._many import matrix

    lengths = {len(run) for run in runs}
    if not runs or len(lengths) != 1 or min(lengths) < 2:
        raise ValueError(
            "consecutive_distances needs runs of equal length, each of at least two snapshots "
            f"(got lengths {sorted(lengths)})"
        )
    steps = lengths.pop() - 1
    items = [snapshot for run in runs for snapshot in run]
    # The pairs (later, earlier) of every run, in the flat list of all snapshots.
    later = np.array([r * (steps + 1) + i + 1 for r in range(len(runs)) for i in range(steps)])
    required = np.zeros((len(items), len(items)), dtype=bool)
    required[later, later - 1] = True
    options = Options.of(
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        layers=layers,
        progress=progress,
    )
    out = matrix(items, None, required, options)
    return np.asarray(out[later, later - 1].reshape(len(runs), steps, -1), dtype=np.float64)
