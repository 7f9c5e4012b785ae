"""The distance functions of the public API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from nnstd import _core
from nnstd._blocks import all_pairs
from nnstd._loaders import check_flag
from nnstd._many import paired_matrix
from nnstd._network import Network, PathLike, as_network
from nnstd._options import DEFAULT_SOLVER, Layers, Options, Solver, check_comparable

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True, repr=False)
class Distance:
    """The NNSTD of network B from network A, layer by layer.

    Attributes
    ----------
    layer_indices
        The layers reported, in order.
    layers
        The layer distances (assignment cost / A's neuron count), each in [0, 1].
    costs
        The layer assignment costs (sums of matched neuron distances).
    matchings
        ``matchings[k][i]`` is the neuron of B, in B's own labels, matched to neuron ``i`` of A
        in layer ``layer_indices[k]``; -1 where B's layer is narrower and ``i`` has no partner.
    solvers
        The algorithm that matched each reported layer: ``"sparse"``, ``"dense"``,
        ``"paper"`` or ``"canonical"``.
    """

    layer_indices: tuple[int, ...]
    layers: npt.NDArray[np.float64]
    costs: npt.NDArray[np.float64]
    matchings: tuple[npt.NDArray[np.int64], ...]
    solvers: tuple[str, ...]

    @property
    def value(self) -> float:
        """The mean of the reported layer distances (the paper code's summary)."""
        return float(np.mean(self.layers)) if len(self.layers) else 0.0

    def __repr__(self) -> str:
        # One short line: the matchings (one entry per neuron) are left to the attribute.
        layers = ", ".join(f"{x:.6g}" for x in self.layers)
        widths = ", ".join(str(len(m)) for m in self.matchings)
        return (
            f"Distance(value={self.value:.6g}, layers=[{layers}], "
            f"solvers={self.solvers!r}, matchings of {widths} neurons)"
        )


def distance(
    a: Network | PathLike,
    b: Network | PathLike,
    *,
    layers: Layers = None,
    solver: Solver = DEFAULT_SOLVER,
    memory_budget: int | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> Distance:
    """The NNSTD of network ``b`` from network ``a``, layer by layer.

    Each layer's neurons are matched by a minimum-cost assignment of their input-set Jaccard
    distances; B's hidden neurons are renamed through the matching before the next layer
    (``docs/definition.md``: #neuron-distance, #layer-assignment, #carrying-the-matching).
    ``solver="paper"`` reproduces ``scipy.optimize.linear_sum_assignment``'s choice among
    optimal assignments, so the numbers equal the paper code's (run with SciPy >= 1.5).

    Parameters
    ----------
    a, b
        Networks, or paths that `load_network` reads. ``a`` is the reference: layer distances
        are divided by ``a``'s widths.
    layers
        A layer index or a list (tuple, range, 1-D integer array) of them (default: all); a
        bool, a float (even ``1.0``) or a string is a TypeError. Later layers need all earlier
        ones matched, so asking for layer 2 alone still matches layers 0 and 1.
    solver
        Every solver gives every layer an optimal assignment cost for the alignment carried
        into it, so layer 0 is the same for all; they differ in which optimal assignment they
        pick when there are several, which aligns the next layer
        (``docs/definition.md#solver-guarantees``).
        ``"canonical"`` (default): among the optimal assignments, the one chosen from the
        networks' structure alone (canonical labels, structural colours), so the numbers do
        not depend on how neurons are numbered: a relabelled copy is at distance 0, renaming
        B's neurons changes nothing, ``distance(a, b)`` and ``distance(b, a)`` make the same
        matchings, and the result is the same whichever algorithm found the optimum
        (``docs/definition.md#canonical-mode``).
        ``"auto"``: the fastest optimal algorithm for each layer, chosen by expected
        time: ``"sparse"`` when few neuron pairs share an input, ``"dense"`` when most do and
        the dense matrix fits ``memory_budget`` (``Distance.solvers`` says which ran); its
        choice among optimal assignments depends on labels.
        ``"paper"`` (``"exact"`` is its former name): SciPy's optimal assignment, reproduced
        choice for choice, so the numbers equal the paper algorithm's.
        ``"sparse"``: primal-dual phases on the neuron pairs that share an input, in memory
        proportional to them. ``"dense"``: Jonker-Volgenant on the dense cost matrix.
    memory_budget
        Bytes (a whole number, such as ``2**30``; default 4 GiB) that one layer's cost
        representation may take: the dense matrix, or the similarity graph with the sparse
        solver's arrays; a layer over it is refused with a TopologyError naming the layer and
        the size. Negative, fractional, infinite or NaN values, and values above 2**64 - 1, are
        refused with a ValueError.

    progress
        Called as ``progress(done, total)`` with the number of finished layers (of the
        ``total`` matched), about five times a second while layers are being matched and once
        at the end; an exception it raises stops the work and is raised here.

    Returns
    -------
    Distance

    Raises
    ------
    TopologyError
        If the networks differ in depth or input width, or a layer does not exist.
    ValueError
        If ``solver`` or ``memory_budget`` is not one of the accepted values.
    MemoryError
        If the system refuses memory that ``memory_budget`` allows (too little free memory, or
        an address-space limit): one line naming the layer, the buffer and its size.
    TypeError
        If ``layers`` is not a whole number or a sequence of them.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> a = nnstd.Network([np.array([[1, 0], [0, 1], [1, 1]])])
    >>> b = nnstd.Network([np.array([[0, 1], [1, 0], [1, 0]])])
    >>> d = nnstd.distance(a, b)
    >>> d.layers
    array([0.25])
    >>> d.matchings[0]
    array([1, 0])
    """
    options = Options.of(
        solver=solver, memory_budget=memory_budget, layers=layers, progress=progress
    )
    net_a, net_b = as_network(a), as_network(b)
    check_comparable(net_a, net_b, "distance")
    chosen = options.select(net_a.depth)
    total = max(chosen) + 1
    dists, costs, matchings, solvers = _core.distance(
        net_a._topology,
        net_b._topology,
        depth=total,
        solver=options.solver,
        memory_budget=options.memory_budget,
        progress=None if progress is None else (lambda done: progress(done, total)),
    )
    if progress is not None:
        progress(total, total)
    pick = list(chosen)
    return Distance(
        layer_indices=chosen,
        layers=dists[pick],
        costs=costs[pick],
        matchings=tuple(matchings[k] for k in chosen),
        solvers=tuple(solvers[k] for k in chosen),
    )


def pairwise(
    networks: Sequence[Network | PathLike],
    *,
    layers: Layers = None,
    solver: Solver = DEFAULT_SOLVER,
    ordered: bool = False,
    threads: int | None = None,
    progress: Callable[[int, int], object] | None = None,
    memory_budget: int | None = None,
    store: PathLike | None = None,
    client: Client | None = None,
) -> npt.NDArray[np.float64]:
    """Layer distances between all pairs of networks, computed in parallel.

    Parameters
    ----------
    networks
        Networks (or paths) of equal depth and input width. Paths are read one at a time and
        only each network's connection pattern is kept (about 4 bytes a connection), in blocks
        when there are more than 1 GiB of them (``docs/many.md``): the same numbers as with the
        networks loaded first.
    layers
        As in `distance`: a layer index or a list of them (default: all).
    solver, memory_budget
        As in `distance`.
    ordered
        ``False`` (default): the paper's convention, each unordered pair once with the
        higher-indexed network as A, ``[i, j] = [j, i]`` and a zero diagonal. ``True``: every
        ordered pair, ``[i, j]`` with network ``i`` as A (the diagonal is computed too). A
        bool: anything else (``"no"``, ``0``) is a TypeError.
    threads
        Worker threads, a whole number from 1 to 256; None (the default) or 0: one per core,
        as ``--threads 0`` on the command line. Negative and larger numbers are refused with a
        ValueError (more threads than cores only slow the work down). The result is the same
        for any number. In a process forked after nnstd has run (``multiprocessing``'s "fork"
        start method, PyTorch DataLoader workers), a fresh pool of threads is started for each
        call, with the same results.
    progress
        Called as ``progress(done, total)`` with the number of finished pairs, about five times a
        second while the work runs, and once at the end. Ctrl-C stops the work.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, n, len(layers))``, float64.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> orders = ([0, 1, 2, 3], [1, 0, 2, 3], [0, 1, 2, 2])
    >>> nets = [nnstd.Network([np.eye(4)[:, order]]) for order in orders]
    >>> nnstd.pairwise(nets)[:, :, 0]
    array([[0.  , 0.  , 0.25],
           [0.  , 0.  , 0.25],
           [0.25, 0.25, 0.  ]])
    """
    ordered = check_flag(ordered, "ordered")
    options = Options.of(
        solver=solver,
        memory_budget=memory_budget,
        threads=threads,
        layers=layers,
        progress=progress,
    )
    if store is not None or client is not None:
        return paired_matrix(networks, options, ordered=ordered, store=store, client=client)
    return all_pairs(list(networks), options, ordered)
