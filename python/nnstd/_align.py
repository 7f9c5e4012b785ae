"""Alignment of one network to another through NNSTD's matchings, and mask overlap measures."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from nnstd._api import distance
from nnstd._errors import TopologyError
from nnstd._network import Network, PathLike, as_network
from nnstd._options import DEFAULT_SOLVER, Solver

Measure = Literal["iou", "hamming"]
MEASURES: tuple[str, ...] = ("iou", "hamming")


def order_from_matching(matching: npt.ArrayLike, width_b: int) -> npt.NDArray[np.int64]:
    """The new order of B's neurons given one layer's matching.

    ``matching[i]`` is the B-neuron matched to A's neuron ``i`` (-1: none). Matched B-neurons
    come first, in the order of their A partners; B-neurons without a partner (B wider) follow
    in their own order. ``order[j]`` is the old label of the neuron placed at position ``j``.
    """
    matched = np.asarray(matching, dtype=np.int64)
    matched = matched[matched >= 0]
    rest = np.setdiff1d(np.arange(width_b, dtype=np.int64), matched, assume_unique=True)
    order = np.concatenate([matched, rest])
    if len(order) != width_b or len(np.unique(order)) != width_b:  # a matching is one-to-one
        raise TopologyError(f"a matching is not one-to-one over {width_b} neurons")
    return order


def _chain_only(what: str, *nets: Network) -> None:
    """Refuses a graph network: renaming and mask overlap here are per layer of a chain."""
    for net in nets:
        if net.is_graph:
            raise TopologyError(
                f"{net.name}: {what} works on a chain of layers, and this network is a graph of "
                "permutation groups; nnstd.torch.align(reference, model, example_inputs=x) "
                "renames a model's groups (docs/aligning.md), and nnstd.distance(a, b)"
                ".matchings gives each group's matching"
            )


def alignment(
    a: Network | PathLike, b: Network | PathLike, *, solver: Solver = DEFAULT_SOLVER
) -> tuple[npt.NDArray[np.int64], ...]:
    """The renaming of B's hidden neurons that `align` applies, one order per hidden layer.

    Parameters
    ----------
    a, b
        Networks (or paths `nnstd.load_network` reads) of equal depth and input width; ``a``
        is the reference.
    solver
        As in `nnstd.distance` (default ``"canonical"``: ties broken by structure, so a
        relabelled copy is aligned back exactly).

    Returns
    -------
    tuple of numpy.ndarray
        One int64 array per hidden layer (every layer but the last): ``order[j]`` is B's
        neuron (in B's own labels) that goes to position ``j``. Each is a permutation of
        B's neurons of that layer.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> a = nnstd.Network([np.eye(3), np.ones((3, 1))])
    >>> b = nnstd.Network([np.eye(3)[:, [2, 0, 1]], np.ones((3, 1))])
    >>> nnstd.alignment(a, b)[0]
    array([1, 2, 0])
    """
    net_a, net_b = as_network(a), as_network(b)
    _chain_only("nnstd.alignment", net_a, net_b)
    found = distance(net_a, net_b, solver=solver)
    return tuple(
        order_from_matching(found.matchings[k], net_b.shapes[k][1]) for k in range(net_b.depth - 1)
    )


def _rename_columns(layer: sp.csc_array, order: npt.NDArray[np.int64]) -> sp.csc_array:
    return sp.csc_array(layer[:, order])


def _rename_rows(layer: sp.csc_array, order: npt.NDArray[np.int64], group: int) -> sp.csc_array:
    """Reorders the rows of a layer whose inputs come in blocks of ``group`` per neuron."""
    rows = (order[:, None] * group + np.arange(group, dtype=np.int64)[None, :]).ravel()
    return sp.csc_array(layer[rows, :])


def apply_alignment(net: Network, orders: tuple[npt.NDArray[np.int64], ...]) -> Network:
    """``net`` with the neurons of each hidden layer ``k`` put in ``orders[k]``'s order."""
    _chain_only("nnstd.align", net)
    if len(orders) != net.depth - 1:
        raise TopologyError(
            f"{net.name or 'network'}: {len(orders)} neuron orders for {net.depth - 1} hidden "
            "layers"
        )
    layers = [net.layer(k) for k in range(net.depth)]
    for k, order in enumerate(orders):
        if sorted(order.tolist()) != list(range(net.shapes[k][1])):
            raise TopologyError(
                f"{net.name or 'network'}: layer {k}: the order is not a permutation of its "
                f"{net.shapes[k][1]} neurons"
            )
        layers[k] = _rename_columns(layers[k], order)
        layers[k + 1] = _rename_rows(layers[k + 1], order, net.input_groups[k + 1])
    name = f"{net.name} (aligned)" if net.name else None
    return Network(layers, name=name, input_groups=net.input_groups)


def align(
    a: Network | PathLike, b: Network | PathLike, *, solver: Solver = DEFAULT_SOLVER
) -> Network:
    """Network B with its hidden neurons renamed after their partners in A.

    The matchings of `nnstd.distance` (``docs/definition.md#carrying-the-matching``) are
    applied: B's neuron matched to A's hidden neuron ``i`` becomes neuron ``i``, in its layer's
    columns and in the next layer's rows (whole input groups for convolutions and flatten
    blocks). Output neurons keep their labels. The result is the same graph as B, so that
    comparing A's neuron ``i`` with the aligned B's neuron ``i`` column by column gives the
    layer distances of the hidden layers, and `overlap` ``(a, align(a, b))`` gives the aligned
    overlap.

    Unequal widths: where B's layer is wider, its neurons without a partner follow the matched
    ones, in their own order (the column-wise property holds for A's neurons). Where B's layer
    is narrower, its neurons are put in the order of their partners in A, without gaps: B keeps
    its widths, so position ``i`` then no longer corresponds to A's neuron ``i``.

    Parameters
    ----------
    a, b
        Networks (or paths `nnstd.load_network` reads) of equal depth and input width; ``a``
        is the reference.
    solver
        As in `nnstd.distance`; default ``"canonical"``, which aligns a copy of A with its
        hidden neurons renamed back to A exactly.

    Returns
    -------
    Network
        B, relabelled; named ``"<B's name> (aligned)"``.

    Raises
    ------
    TopologyError
        If the networks differ in depth or input width.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> a = nnstd.Network([np.eye(3), np.eye(3)[:, :2]])
    >>> b = nnstd.Network([np.eye(3)[:, [2, 0, 1]], np.eye(3)[[2, 0, 1]][:, :2]])
    >>> nnstd.overlap(a, b)
    array([0., 0.])
    >>> nnstd.overlap(a, nnstd.align(a, b))
    array([1., 1.])
    """
    net_a, net_b = as_network(a), as_network(b)
    return apply_alignment(net_b, alignment(net_a, net_b, solver=solver))


def _layer_overlap(x: sp.csc_array, y: sp.csc_array, measure: str) -> float:
    both = int(x.multiply(y).nnz)
    either = int(x.nnz) + int(y.nnz) - both
    if measure == "iou":
        return 1.0 if either == 0 else both / either  # two empty layers are the same set
    size = x.shape[0] * x.shape[1]
    return (either - both) / size if size else 0.0


def overlap(
    a: Network | PathLike, b: Network | PathLike, *, measure: Measure = "iou"
) -> npt.NDArray[np.float64]:
    """Per-layer overlap of the connection sets of two networks, neuron labels as they are.

    Parameters
    ----------
    a, b
        Networks (or paths `nnstd.load_network` reads) whose layers have the same shapes.
        For the overlap up to renaming of hidden neurons, pass ``align(a, b)`` as ``b``.
    measure
        ``"iou"`` (default): the intersection over union of the two layers' connection sets
        (1 for identical layers; 1 for two empty layers). ``"hamming"``: the normalised
        Hamming distance of the two masks, the number of positions where exactly one of them
        has a connection divided by the layer's size (0 for identical layers).

    Returns
    -------
    numpy.ndarray
        One float64 per layer, layer 0 first.

    Raises
    ------
    TopologyError
        If the networks differ in depth or in the shape of a layer.
    ValueError
        If ``measure`` is not one of the accepted values.

    Examples
    --------
    >>> import numpy as np, nnstd
    >>> a = nnstd.Network([np.array([[1, 0], [1, 1]])])
    >>> b = nnstd.Network([np.array([[1, 1], [0, 1]])])
    >>> nnstd.overlap(a, b)
    array([0.5])
    >>> nnstd.overlap(a, b, measure="hamming")
    array([0.5])
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {', '.join(MEASURES)}")
    net_a, net_b = as_network(a), as_network(b)
    _chain_only("nnstd.overlap", net_a, net_b)
    if net_a.depth != net_b.depth:
        raise TopologyError(
            f"overlap: networks of different depth ({net_a.name or 'A'}: {net_a.depth} layers, "
            f"{net_b.name or 'B'}: {net_b.depth} layers)"
        )
    values = []
    for k, (sa, sb) in enumerate(zip(net_a.shapes, net_b.shapes, strict=True)):
        if sa != sb:
            raise TopologyError(
                f"overlap: layer {k} has shape {sa} in {net_a.name or 'A'} and {sb} in "
                f"{net_b.name or 'B'}; overlap compares masks of equal shapes"
            )
        values.append(_layer_overlap(net_a.layer(k), net_b.layer(k), measure))
    return np.array(values, dtype=np.float64)
